"""Key derivations from the link secret, recomputed independently (RFC 5869 by hand)."""

from __future__ import annotations

import hashlib
import hmac

from clave.meeting import parse_link
from clave.meeting.keys import (
    ACCESS_TOKEN_INFO,
    JOIN_KEY_INFO,
    access_token,
    join_key,
    room_keys,
    token_hash,
)

LINK = parse_link(
    "https://clave.example/m/AAECAwQFBgcICQoLDA0ODw#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
)


def rfc5869_sha256(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()  # empty salt = HashLen zeros
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def test_labels_are_the_documented_strings() -> None:
    assert ACCESS_TOKEN_INFO == b"clave v1 relay access token"
    assert JOIN_KEY_INFO == b"clave v1 join key"


def test_values_match_an_independent_hkdf() -> None:
    room, secret = LINK.room_id_bytes, LINK.secret
    token = rfc5869_sha256(secret, b"clave v1 relay access token" + room)
    key = rfc5869_sha256(secret, b"clave v1 join key" + room)
    assert access_token(secret, room) == token
    assert join_key(secret, room) == key
    assert token_hash(token) == hashlib.sha256(token).digest()
    keys = room_keys(LINK)
    assert (keys.access_token, keys.token_hash, keys.join_key) == (
        token,
        hashlib.sha256(token).digest(),
        key,
    )
    assert token.hex() not in repr(keys) and key.hex() not in repr(keys)


def test_known_answer() -> None:
    """The values docs/PROTOCOL.md lists for its example link."""
    keys = room_keys(LINK)
    assert keys.access_token.hex() == (
        "3d6c188568b1367d0badf2fba109304e7f74b3f6dbd275e3c8c01d68a7beb06b"
    )
    assert keys.token_hash.hex() == (
        "5f11a027e4686219df595abf1b0c2dbbc1e9982bc87f8c7b540975bd83356c3f"
    )
    assert keys.join_key.hex() == (
        "20557fb414eeace1b205c7717273aeaf358876adb8b034585df32c1b4f44651e"
    )


def test_room_id_and_secret_both_matter() -> None:
    room, secret = LINK.room_id_bytes, LINK.secret
    other_room = bytes(16)
    other_secret = bytes(32)
    assert access_token(secret, room) != access_token(secret, other_room)
    assert access_token(secret, room) != access_token(other_secret, room)
    assert join_key(secret, room) != join_key(secret, other_room)
