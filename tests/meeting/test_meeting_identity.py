"""Long-term identities, vouched credentials, fingerprints and application messages."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clave.meeting.app_messages import (
    Bye,
    Chat,
    Hello,
    decode_app_message,
    encode_app_message,
)
from clave.meeting.errors import AppMessageError, IdentityError
from clave.meeting.identity import (
    CREDENTIAL_MAGIC,
    Identity,
    MemberIdentity,
    credential_name,
    credential_validator,
    fingerprint,
    make_credential,
    parse_credential,
)
from clave.mls.ciphersuite import get_suite
from clave.mls.errors import MLSError
from clave.mls.group import Group, GroupConfig, Signer
from clave.mls.key_package import create_key_package
from clave.mls.structs import Credential, CredentialType, LeafNode

SUITE = get_suite(1)


def _leaf(identity: Identity, name: str, sig_priv: bytes | None = None) -> LeafNode:
    """A real signed KeyPackage leaf whose credential vouches for its signature key."""
    sig_priv = sig_priv if sig_priv is not None else os.urandom(32)
    cred = make_credential(identity, name, SUITE.signature_public_key(sig_priv))
    kp = create_key_package(SUITE, cred, rng=os.urandom, now=0, signature_priv=sig_priv)
    return kp.key_package.leaf_node


GRACE = Identity.generate(lambda n: b"\x01" * n)
MALLORY = Identity.generate(lambda n: b"\x02" * n)


# -- Identity -------------------------------------------------------------------


def test_identity_key_and_signature() -> None:
    same = Identity.from_private_bytes(b"\x01" * 32)
    assert same == GRACE and hash(same) == hash(GRACE)
    assert GRACE != MALLORY
    assert len(GRACE.public_key) == 32 and GRACE.private_bytes == b"\x01" * 32
    assert GRACE.fingerprint == fingerprint(GRACE.public_key)
    Ed25519PublicKey.from_public_bytes(GRACE.public_key).verify(GRACE.sign(b"hi"), b"hi")


def test_identity_repr_hides_private_key() -> None:
    ident = Identity.generate(lambda n: bytes(range(n)))
    text = repr(ident) + str(ident)
    assert "private" not in text
    assert bytes(range(32)).hex() not in text and repr(bytes(range(32))) not in text


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33])
def test_identity_needs_32_bytes(bad: bytes) -> None:
    with pytest.raises(IdentityError):
        Identity.from_private_bytes(bad)
    with pytest.raises(ValueError):
        Identity.generate(lambda n: bad)


def test_fingerprint_format() -> None:
    fp = fingerprint(b"key")
    assert re.fullmatch(r"[0-9a-f]{4}( [0-9a-f]{4}){7}", fp)
    assert fp.replace(" ", "") == hashlib.sha256(b"key").hexdigest()[:32]


# -- credentials ------------------------------------------------------------------


def test_credential_layout_and_round_trip() -> None:
    sig_pub = SUITE.signature_public_key(b"\x05" * 32)
    cred = make_credential(GRACE, "Zoë", sig_pub)
    ident = cred.identity
    assert cred.credential_type == CredentialType.basic
    assert ident[:4] == CREDENTIAL_MAGIC == b"CLV2"
    assert ident[4:36] == GRACE.public_key
    assert ident[100:] == "Zoë".encode()
    Ed25519PublicKey.from_public_bytes(GRACE.public_key).verify(
        ident[36:100], b"clave v2 member key" + sig_pub + "Zoë".encode()
    )
    member = parse_credential(Credential.from_bytes(cred.to_bytes()))
    assert member == MemberIdentity("Zoë", GRACE.public_key, ident[36:100])
    assert member.fingerprint == GRACE.fingerprint
    assert member.vouches_for(sig_pub)
    assert not member.vouches_for(SUITE.signature_public_key(b"\x06" * 32))
    assert credential_name(cred) == "Zoë"


@pytest.mark.parametrize("name", ["Grace ", "Gr\u200bace", "", "Ｇrace"])
def test_make_credential_needs_a_normalized_name(name: str) -> None:
    with pytest.raises(IdentityError):
        make_credential(GRACE, name, b"\x00" * 32)


def test_make_credential_needs_an_ed25519_key() -> None:
    with pytest.raises(IdentityError, match="32 bytes"):
        make_credential(GRACE, "Grace", b"\x04" + b"\x00" * 64)  # a P-256 point


_GOOD = make_credential(GRACE, "Bob", b"\x00" * 32).identity


@pytest.mark.parametrize(
    "cred",
    [
        Credential.x509([b"cert"]),
        Credential.basic(b""),
        Credential.basic(_GOOD[:100]),  # no name
        Credential.basic(b"CLV1" + _GOOD[4:]),  # wrong magic
        Credential.basic(_GOOD[:100] + b"\xff"),  # bad UTF-8
        Credential.basic(_GOOD[:100] + b"a\x07"),  # control character
        Credential.basic(_GOOD[:100] + b"Bob "),  # not in normal form
        Credential.basic(_GOOD[:100] + "Gr\u200bace".encode()),
        Credential.basic(b"\x01" * 16 + b"Bob"),  # the old v1 format
    ],
)
def test_bad_credentials(cred: Credential) -> None:
    with pytest.raises(IdentityError):
        parse_credential(cred)
    with pytest.raises(IdentityError):
        credential_name(cred)


# -- the Authentication Service hook ------------------------------------------------


def test_validator_accepts_a_vouched_leaf() -> None:
    assert credential_validator(_leaf(GRACE, "Grace"), None)


def test_vouch_is_bound_to_the_mls_signature_key() -> None:
    """Mallory copies Grace's credential onto a leaf with her own signature key."""
    grace = _leaf(GRACE, "Grace")
    stolen = _leaf(MALLORY, "Mallory")
    moved = create_key_package(
        SUITE, grace.credential, rng=os.urandom, now=0
    ).key_package.leaf_node  # properly signed by a fresh key, but not the vouched one
    assert not credential_validator(moved, None)
    assert not credential_validator(dataclasses.replace(stolen, credential=grace.credential), None)


def test_name_tampering_fails() -> None:
    grace = _leaf(GRACE, "Grace")
    ident = grace.credential.identity
    for name in ("Grace Hopper", "Mallory", "grace"):
        forged = Credential.basic(ident[:100] + name.encode())
        assert not credential_validator(dataclasses.replace(grace, credential=forged), None)


def test_vouch_by_another_identity_fails() -> None:
    grace = _leaf(GRACE, "Grace")
    ident = grace.credential.identity
    swapped = Credential.basic(ident[:4] + MALLORY.public_key + ident[36:])
    assert not credential_validator(dataclasses.replace(grace, credential=swapped), None)
    flipped = Credential.basic(ident[:40] + bytes([ident[40] ^ 1]) + ident[41:])
    assert not credential_validator(dataclasses.replace(grace, credential=flipped), None)


def test_unparsable_credentials_fail() -> None:
    grace = _leaf(GRACE, "Grace")
    for cred in (Credential.basic(b"grace"), Credential.x509([b"cert"])):
        assert not credential_validator(dataclasses.replace(grace, credential=cred), None)


def test_replaced_leaf_rules() -> None:
    """Updates and commit paths keep both credential and signature key (RFC 9420 5.3.1)."""
    sig_priv = os.urandom(32)
    old = _leaf(GRACE, "Grace", sig_priv)
    refreshed = dataclasses.replace(old, encryption_key=os.urandom(32))  # key refresh
    assert credential_validator(refreshed, old)
    assert credential_validator(old, old)
    renamed = _leaf(GRACE, "Grace Hopper", sig_priv)  # same keys, new (vouched) name
    assert credential_validator(renamed, None)
    assert not credential_validator(renamed, old)
    rekeyed = _leaf(GRACE, "Grace")  # same identity and name, new signature key
    assert credential_validator(rekeyed, None)
    assert not credential_validator(rekeyed, old)
    assert not credential_validator(_leaf(MALLORY, "Grace"), old)


def test_mls_group_refuses_a_moved_credential() -> None:
    """End to end: a group with the hook refuses to add a leaf with a stolen credential."""
    config = GroupConfig(credential_validator=credential_validator)
    sig_priv = os.urandom(32)
    host = Signer(make_credential(GRACE, "Grace", SUITE.signature_public_key(sig_priv)), sig_priv)
    group = Group.create(1, b"g", host, rng=os.urandom, now=lambda: 0, config=config)
    bob_priv = os.urandom(32)
    bob = make_credential(MALLORY, "Bob", SUITE.signature_public_key(bob_priv))
    ok = create_key_package(SUITE, bob, rng=os.urandom, now=0, signature_priv=bob_priv)
    stolen = create_key_package(SUITE, bob, rng=os.urandom, now=0)
    with pytest.raises(MLSError):
        group.commit(add=[stolen.key_package.to_bytes()])
    group.commit(add=[ok.key_package.to_bytes()])
    group.merge_pending_commit()
    assert [credential_name(m.credential) for m in group.roster()] == ["Grace", "Bob"]


# -- application messages ----------------------------------------------------------


def test_app_messages_round_trip() -> None:
    for msg in (Hello(conn=5, name="Bob"), Chat(text="hi ✓"), Bye()):
        assert decode_app_message(encode_app_message(msg)) == msg
    assert msgspec.msgpack.decode(encode_app_message(Chat(text="x"))) == {"t": "chat", "text": "x"}
    assert msgspec.msgpack.decode(encode_app_message(Bye())) == {"t": "bye"}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        msgspec.msgpack.encode({"t": "nope"}),
        msgspec.msgpack.encode({"t": "chat"}),
        msgspec.msgpack.encode({"t": "chat", "text": ""}),
        msgspec.msgpack.encode({"t": "chat", "text": "x" * 4001}),
        msgspec.msgpack.encode({"t": "chat", "text": "x", "more": 1}),
        msgspec.msgpack.encode({"t": "hello", "conn": 0, "name": "a"}),
        msgspec.msgpack.encode({"t": "hello", "conn": 1, "name": "a" * 65}),
        msgspec.msgpack.encode([1, 2]),
        b"\x82\xa1t\xa4chat\xa4text\xa2\xff\xfe",  # invalid UTF-8
    ],
)
def test_app_messages_strict(data: bytes) -> None:
    with pytest.raises(AppMessageError):
        decode_app_message(data)
