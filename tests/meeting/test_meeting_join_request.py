"""Join requests: seal/open, wrong secret, tampering, strict decoding."""

from __future__ import annotations

import os

import msgspec
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clave.meeting import JoinRequestError
from clave.meeting.join_request import (
    JOIN_REQUEST_AAD,
    JoinRequestBody,
    open_join_request,
    seal_join_request,
)
from clave.meeting.keys import join_key

ROOM = bytes(range(16))
KEY = join_key(bytes(range(32)), ROOM)
BODY = JoinRequestBody(key_package=b"\x00\x01kp", name="Bob", conn=7)


def test_round_trip_and_layout() -> None:
    data = seal_join_request(KEY, ROOM, BODY, os.urandom)
    assert open_join_request(KEY, ROOM, data) == BODY
    # nonce || AES-256-GCM(plaintext) with aad = label || room id, plaintext a msgpack map
    plain = AESGCM(KEY).decrypt(data[:12], data[12:], b"clave v1 join request" + ROOM)
    assert msgspec.msgpack.decode(plain) == {"key_package": b"\x00\x01kp", "name": "Bob", "conn": 7}
    assert JOIN_REQUEST_AAD == b"clave v1 join request"


def test_nonce_comes_from_rng() -> None:
    data = seal_join_request(KEY, ROOM, BODY, lambda n: b"\x07" * n)
    assert data[:12] == b"\x07" * 12


def test_wrong_secret_or_room_is_rejected() -> None:
    data = seal_join_request(KEY, ROOM, BODY, os.urandom)
    with pytest.raises(JoinRequestError, match="join key"):
        open_join_request(join_key(bytes(32), ROOM), ROOM, data)
    with pytest.raises(JoinRequestError):
        open_join_request(KEY, bytes(16), data)


@pytest.mark.parametrize("cut", [0, 5, 27])
def test_truncated(cut: int) -> None:
    data = seal_join_request(KEY, ROOM, BODY, os.urandom)
    with pytest.raises(JoinRequestError):
        open_join_request(KEY, ROOM, data[:cut])


def test_tampered() -> None:
    data = bytearray(seal_join_request(KEY, ROOM, BODY, os.urandom))
    data[20] ^= 1
    with pytest.raises(JoinRequestError):
        open_join_request(KEY, ROOM, bytes(data))


@pytest.mark.parametrize(
    "plain",
    [
        b"not msgpack",
        msgspec.msgpack.encode({"key_package": b"x", "name": "Bob"}),
        msgspec.msgpack.encode({"key_package": b"x", "name": "Bob", "conn": 1, "extra": 1}),
        msgspec.msgpack.encode({"key_package": b"x", "name": "B" * 65, "conn": 1}),
        msgspec.msgpack.encode({"key_package": b"x", "name": "Bob", "conn": 0}),
        msgspec.msgpack.encode({"key_package": "x", "name": "Bob", "conn": 1}),
        b"\x83\xabkey_package\xc4\x01x\xa4name\xa2\xff\xfe\xa4conn\x01",  # bad UTF-8
    ],
)
def test_malformed_plaintext_under_the_right_key(plain: bytes) -> None:
    nonce = os.urandom(12)
    data = nonce + AESGCM(KEY).encrypt(nonce, plain, JOIN_REQUEST_AAD + ROOM)
    with pytest.raises(JoinRequestError):
        open_join_request(KEY, ROOM, data)


def test_known_answer() -> None:
    """The example of docs/PROTOCOL.md (all-zero nonce, for the record only)."""
    body = JoinRequestBody(key_package=b"\x00\x01", name="Bob", conn=7)
    data = seal_join_request(KEY, ROOM, body, lambda n: bytes(n))
    assert data.hex() == (
        "000000000000000000000000"
        "5525a45ef63cdb7f99dcabb0b9acd7cc934c2473a75aeb179d2033be1d41fa9c"
        "a97a5db84c4f68cf60449b19876e3913"
    )
