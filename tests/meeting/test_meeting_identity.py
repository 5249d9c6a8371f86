"""Display names, credential identities, fingerprints and application messages."""

from __future__ import annotations

import hashlib
import os
import re

import msgspec
import pytest

from clave.meeting import AppMessageError, IdentityError
from clave.meeting.app_messages import (
    Bye,
    Chat,
    Hello,
    decode_app_message,
    encode_app_message,
)
from clave.meeting.identity import (
    check_display_name,
    credential_validator,
    display_name,
    fingerprint,
    make_identity,
)
from clave.mls.ciphersuite import get_suite
from clave.mls.key_package import create_key_package
from clave.mls.structs import Credential


def test_identity_layout_and_uniqueness() -> None:
    ident = make_identity("Zoë", lambda n: b"\x01" * n)
    assert ident == b"\x01" * 16 + "Zoë".encode()
    assert display_name(ident) == "Zoë"
    assert make_identity("Bob", os.urandom) != make_identity("Bob", os.urandom)


@pytest.mark.parametrize("name", ["", " ", "a\nb", "tab\there", "x" * 65, "\u2028"])
def test_bad_names(name: str) -> None:
    with pytest.raises(IdentityError):
        check_display_name(name)


@pytest.mark.parametrize(
    "ident", [b"", b"\x00" * 16, b"\x00" * 16 + b"\xff", b"\x00" * 16 + b"a\x07"]
)
def test_bad_identities(ident: bytes) -> None:
    with pytest.raises(IdentityError):
        display_name(ident)


def test_fingerprint_format() -> None:
    fp = fingerprint(b"key")
    assert re.fullmatch(r"[0-9a-f]{4}( [0-9a-f]{4}){7}", fp)
    assert fp.replace(" ", "") == hashlib.sha256(b"key").hexdigest()[:32]


def test_credential_validator() -> None:
    suite = get_suite(1)
    good = create_key_package(
        suite, Credential.basic(make_identity("Bob", os.urandom)), rng=os.urandom, now=0
    ).key_package.leaf_node
    other = create_key_package(
        suite, Credential.basic(make_identity("Bob", os.urandom)), rng=os.urandom, now=0
    ).key_package.leaf_node
    bad = create_key_package(
        suite, Credential.basic(b"bob"), rng=os.urandom, now=0
    ).key_package.leaf_node
    assert credential_validator(good, None)
    assert credential_validator(good, good)
    assert not credential_validator(bad, None)
    assert not credential_validator(other, good)  # a member may not change its identity


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
