"""The lobby: join requests the hosts decide on, and the hosts' signed answers.

A joiner's request (:mod:`.join_request`) reaches every member; members keep
the valid ones (so a new host inherits them) and hosts show them. A host
answers a request it will not admit with a **lobby reply**, so nobody waits
forever on "the host has been told you are here"::

    reply  = msgpack {"body": bin (msgpack ReplyBody), "sig": bin (64)}
    body   = {"outcome": "declined" | "locked" | "full",
              "key_package_ref": bin,  # the request's KeyPackageRef (RFC 9420 5.2)
              "group_id": bin, "owner": bin (32), "host": HostEntry}
    sig    = SignWithLabel(host key, "clave lobby reply", body)
    sealed = nonce (12) || AES-256-GCM(join_key, nonce, reply, "clave v2 lobby reply")

The joiner accepts a reply only if its owner matches the invitation's owner
fingerprint, the host's certificate chain leads from that owner, the
signature verifies and it names the joiner's own KeyPackage: the relay cannot
turn a joiner away with a forged refusal, and a reply cannot be replayed to
another request. Sealing under the join key keeps the outcome from the relay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..mls.errors import KeyPackageError, MLSError
from ..mls.group import Group
from ..mls.key_package import key_package_ref, validate_key_package_for_group
from ..mls.leaf_node import check_capabilities_support
from ..mls.structs import KeyPackage, MLSMessage
from .errors import LobbyError, RoleError
from .identity import MemberIdentity, credential_validator, parse_credential
from .link import owner_fingerprint
from .roles import HostEntry, Key, Signature, suite, verify_entry

REPLY_LABEL = "clave lobby reply"
REPLY_AAD = b"clave v2 lobby reply"
NONCE_BYTES = 12

Rng = Callable[[int], bytes]


class Outcome(StrEnum):
    """Why a host turned a join request away."""

    declined = "declined"
    locked = "locked"
    full = "full"


OUTCOME_TEXT = {
    Outcome.declined: "The host declined your request to join.",
    Outcome.locked: "The meeting is locked: the host is not admitting anyone right now.",
    Outcome.full: "The lobby is full: the host cannot take more requests right now.",
}


class ReplyBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    outcome: Outcome
    key_package_ref: Annotated[bytes, msgspec.Meta(min_length=1, max_length=64)]
    group_id: Annotated[bytes, msgspec.Meta(min_length=1, max_length=255)]
    owner: Key
    host: HostEntry


class _Reply(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    body: Annotated[bytes, msgspec.Meta(max_length=8192)]
    sig: Signature


_encoder = msgspec.msgpack.Encoder()
_reply_decoder = msgspec.msgpack.Decoder(_Reply)
_body_decoder = msgspec.msgpack.Decoder(ReplyBody)


def seal_reply(join_key: bytes, body: ReplyBody, host_private: bytes, rng: Rng) -> bytes:
    """Sign ``body`` with the host's MLS signature key and seal it under the join key."""
    encoded = _encoder.encode(body)
    sig = suite().sign_with_label(host_private, REPLY_LABEL, encoded)
    nonce = rng(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"rng returned {len(nonce)} bytes, expected {NONCE_BYTES}")
    sealed = AESGCM(join_key).encrypt(nonce, _encoder.encode(_Reply(encoded, sig)), REPLY_AAD)
    return bytes(nonce) + sealed


def open_reply(join_key: bytes, data: bytes, *, owner: bytes, key_package_ref: bytes) -> Outcome:
    """Open and authenticate a lobby reply (:class:`LobbyError` if anything is wrong).

    ``owner`` is the invitation's owner fingerprint; ``key_package_ref`` our own.
    """
    if len(data) < NONCE_BYTES + 16:
        raise LobbyError(f"lobby reply of {len(data)} bytes is too short")
    try:
        plain = AESGCM(join_key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], REPLY_AAD)
    except InvalidTag:
        raise LobbyError("lobby reply does not open under this meeting's join key") from None
    try:
        reply = _reply_decoder.decode(plain)
        body = _body_decoder.decode(reply.body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise LobbyError(f"malformed lobby reply: {exc}") from None
    if owner_fingerprint(body.owner) != owner:
        raise LobbyError("lobby reply names another meeting owner than the invitation")
    try:
        verify_entry(body.owner, body.group_id, body.host)
        suite().verify_with_label(body.host.key, REPLY_LABEL, reply.body, reply.sig)
    except (RoleError, MLSError):
        raise LobbyError("lobby reply is not signed by a host of the invited meeting") from None
    if body.key_package_ref != key_package_ref:
        raise LobbyError("lobby reply answers another join request")
    return body.outcome


@dataclass(slots=True)
class LobbyEntry:
    """A validated join request, keyed by the requester's relay connection."""

    request_id: int
    member: MemberIdentity
    key_package: bytes
    signature_key: bytes
    key_package_ref: bytes
    announced: bool = False
    answered: bool = False

    @property
    def name(self) -> str:
        return self.member.name


def check_key_package(group: Group, data: bytes, now: int) -> tuple[KeyPackage, MemberIdentity]:
    """Validate an encoded KeyPackage for this group (RFC 9420 section 10.1) and its
    Clave credential (the long-term identity's vouch for the leaf signature key)."""
    msg = MLSMessage.from_bytes(data)
    kp = msg.body
    if not isinstance(kp, KeyPackage):
        raise KeyPackageError(f"expected a KeyPackage, got a {msg.wire_format.name}")
    validate_key_package_for_group(kp, group.group_context, now=now)
    check_capabilities_support(kp.leaf_node.capabilities, group.extensions)
    if not credential_validator(kp.leaf_node, None):
        raise KeyPackageError(
            "the KeyPackage's credential is not a Clave identity vouched for by its key"
        )
    sig = kp.leaf_node.signature_key
    member = parse_credential(kp.leaf_node.credential)
    for m in group.roster():
        if m.signature_key == sig:
            raise KeyPackageError("the KeyPackage's signature key belongs to a member")
        if m.identity == kp.leaf_node.credential.identity:
            raise KeyPackageError("the KeyPackage's credential belongs to a member")
    return kp, member


def entry_for(request_id: int, data: bytes, kp: KeyPackage, member: MemberIdentity) -> LobbyEntry:
    return LobbyEntry(request_id, member, data, kp.leaf_node.signature_key, key_package_ref(kp))
