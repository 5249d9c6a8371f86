"""Meeting roles by key: the owner, host certificates and their chains.

Every meeting has an **owner**: the MLS signature key (RFC 9420 section 5.1.2)
of the engine that created it, made for this meeting only. The invitation
carries its fingerprint (:func:`clave.meeting.link.owner_fingerprint`), so a
joiner knows which meeting it was invited to before it sees any Welcome.

A **host** is a member whose signature key the meeting policy lists together
with a certificate chain rooted at the owner key::

    cert_i = SignWithLabel(issuer_i, "clave host certificate",
                           opaque group_id<V> || certified key_i)

where ``issuer_0`` is the owner key and ``issuer_i`` the key certified by
``cert_{i-1}``; the last certified key is the host's. The owner's own entry
has an empty chain. A chain proves that the owner, or a host the owner made,
gave that key the role in *this* group (the group id is signed), so a member,
an ex-member or the relay cannot build a counterfeit meeting that a joiner
would accept: its Welcome would not be signed by a certified host. Only
someone the owner trusted with the role can; removing such a person offers
to replace the invitation, after which they cannot reach joiners at all.

Roles never follow leaf positions: a newcomer that fills a blank leaf gets
no role.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import msgspec

from ..mls.ciphersuite import CipherSuite, get_suite
from ..mls.codec import Writer
from ..mls.errors import MLSError
from .errors import RoleError

HOST_CERT_LABEL = "clave host certificate"
MAX_CHAIN = 8
"""Longest certificate chain accepted (a host certifies a host certifies ...)."""
MLS_CIPHER_SUITE = 1
"""MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (RFC 9420 section 17.1)."""

Key = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Signature = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
Rng = Callable[[int], bytes]


class Cert(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One link of a chain: ``sig`` certifies ``key``."""

    key: Key
    sig: Signature


class HostEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A key with the role, and the chain that proves the owner granted it."""

    key: Key
    chain: Annotated[tuple[Cert, ...], msgspec.Meta(max_length=MAX_CHAIN)] = ()


def suite() -> CipherSuite:
    return get_suite(MLS_CIPHER_SUITE)


def generate_owner_key(rng: Rng) -> tuple[bytes, bytes]:
    """A fresh owner signature key pair ``(private, public)`` for a new meeting."""
    return suite().generate_signature_key_pair(rng)


def _content(group_id: bytes, key: bytes) -> bytes:
    w = Writer()
    w.opaque(group_id)
    w.raw(key)
    return w.finish()


def certify(issuer_private: bytes, group_id: bytes, key: bytes) -> bytes:
    """The issuer's certificate signature for ``key`` in ``group_id``."""
    return suite().sign_with_label(issuer_private, HOST_CERT_LABEL, _content(group_id, key))


def owner_entry(owner: bytes) -> HostEntry:
    return HostEntry(owner, ())


def extend(issuer: HostEntry, issuer_private: bytes, group_id: bytes, key: bytes) -> HostEntry:
    """The entry ``issuer`` (a host) grants to ``key``: its own chain plus one link."""
    if len(issuer.chain) >= MAX_CHAIN:
        raise RoleError(
            f"certificate chains are limited to {MAX_CHAIN} links: the owner (or a host "
            "closer to the owner) must grant this role"
        )
    cert = Cert(key, certify(issuer_private, group_id, key))
    return HostEntry(key, (*issuer.chain, cert))


def verify_entry(owner: bytes, group_id: bytes, entry: HostEntry) -> None:
    """Check that ``entry``'s chain leads from ``owner`` to ``entry.key`` (RoleError if not)."""
    cs = suite()
    issuer = owner
    for cert in entry.chain:
        try:
            cs.verify_with_label(issuer, HOST_CERT_LABEL, _content(group_id, cert.key), cert.sig)
        except MLSError:
            raise RoleError("a host certificate does not verify") from None
        issuer = cert.key
    if issuer != entry.key:
        raise RoleError("a host certificate chain does not end at the host's key")
