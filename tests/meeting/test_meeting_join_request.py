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
from clave.meeting.keys import access_token, join_key

SECRET = bytes(range(32))
KEY = join_key(SECRET)
BODY = JoinRequestBody(key_package=b"\x00\x01kp", name="Bob", conn=7)


def test_round_trip_and_layout() -> None:
    data = seal_join_request(KEY, BODY, os.urandom)
    assert open_join_request(KEY, data) == BODY
    # nonce || AES-256-GCM(plaintext) with aad = label, plaintext a msgpack map
    plain = AESGCM(KEY).decrypt(data[:12], data[12:], b"clave v2 join request")
    assert msgspec.msgpack.decode(plain) == {"key_package": b"\x00\x01kp", "name": "Bob", "conn": 7}
    assert JOIN_REQUEST_AAD == b"clave v2 join request"
    assert len(data) == 12 + len(plain) + 16


def test_nonce_comes_from_rng() -> None:
    data = seal_join_request(KEY, BODY, lambda n: b"\x07" * n)
    assert data[:12] == b"\x07" * 12
    with pytest.raises(ValueError):
        seal_join_request(KEY, BODY, lambda n: bytes(n - 1))


def test_wrong_secret_key_or_label_is_rejected() -> None:
    """Only the join key of this link's secret opens a request, and only under its label."""
    data = seal_join_request(KEY, BODY, os.urandom)
    with pytest.raises(JoinRequestError, match="join key"):
        open_join_request(join_key(bytes(32)), data)  # another invitation's secret
    with pytest.raises(JoinRequestError, match="join key"):
        open_join_request(access_token(SECRET), data)  # what the relay holds: no use
    # A ciphertext under the right key but another associated data (say, the v1 label
    # bound to a room id) does not open either.
    nonce = os.urandom(12)
    plain = msgspec.msgpack.encode({"key_package": b"\x00\x01kp", "name": "Bob", "conn": 7})
    for aad in (b"clave v1 join request" + bytes(16), b"", JOIN_REQUEST_AAD + b"x"):
        other = nonce + AESGCM(KEY).encrypt(nonce, plain, aad)
        with pytest.raises(JoinRequestError, match="join key"):
            open_join_request(KEY, other)
    assert open_join_request(KEY, nonce + AESGCM(KEY).encrypt(nonce, plain, JOIN_REQUEST_AAD))


@pytest.mark.parametrize("cut", [0, 5, 27])
def test_truncated(cut: int) -> None:
    data = seal_join_request(KEY, BODY, os.urandom)
    with pytest.raises(JoinRequestError):
        open_join_request(KEY, data[:cut])


def test_tampered() -> None:
    data = bytearray(seal_join_request(KEY, BODY, os.urandom))
    for i in (0, 11, 12, 20, len(data) - 1):  # nonce, ciphertext and tag alike
        data[i] ^= 1
        with pytest.raises(JoinRequestError):
            open_join_request(KEY, bytes(data))
        data[i] ^= 1
    assert open_join_request(KEY, bytes(data)) == BODY


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
    data = nonce + AESGCM(KEY).encrypt(nonce, plain, JOIN_REQUEST_AAD)
    with pytest.raises(JoinRequestError, match="malformed"):
        open_join_request(KEY, data)


def test_known_answer() -> None:
    """Pinned for secret = bytes 0..31 and an all-zero nonce (for the record only).

    docs/PROTOCOL.md still lists the v1 value (room id in the associated data).
    """
    body = JoinRequestBody(key_package=b"\x00\x01", name="Bob", conn=7)
    data = seal_join_request(KEY, body, lambda n: bytes(n))
    assert data.hex() == (
        "000000000000000000000000"
        "de7288b35100e03c0a97f817b298e36a1c51832041d00b52edee8e55c2ad9436"
        "fce794138515c000e700719574fe5293"
    )
    # The same bytes by hand: AES-256-GCM of the msgpack map under the documented AAD.
    plain = msgspec.msgpack.encode({"key_package": b"\x00\x01", "name": "Bob", "conn": 7})
    assert data == bytes(12) + AESGCM(KEY).encrypt(bytes(12), plain, b"clave v2 join request")
