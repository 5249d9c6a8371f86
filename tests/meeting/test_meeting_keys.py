"""Key derivations from the link secret, recomputed independently (RFC 5869 by hand)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from clave.meeting import MeetingLink
from clave.meeting.keys import (
    ACCESS_TOKEN_INFO,
    JOIN_KEY_INFO,
    access_token,
    join_key,
    token_hash,
)
from clave.wire import ROOM_ID_LABEL, room_id_for_token

SECRET = bytes(range(32))
LINK = MeetingLink("clave.example", SECRET, bytes(16))


def rfc5869_sha256(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()  # empty salt = HashLen zeros
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def room_id_by_hand(token: bytes) -> str:
    digest = hashlib.sha256(b"clave v2 room id" + token).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_labels_are_the_documented_strings() -> None:
    assert ACCESS_TOKEN_INFO == b"clave v2 relay access token"
    assert JOIN_KEY_INFO == b"clave v2 join key"
    assert ROOM_ID_LABEL == b"clave v2 room id"


def test_values_match_an_independent_hkdf() -> None:
    token = rfc5869_sha256(SECRET, b"clave v2 relay access token")
    key = rfc5869_sha256(SECRET, b"clave v2 join key")
    assert access_token(SECRET) == token
    assert join_key(SECRET) == key
    assert token_hash(token) == hashlib.sha256(token).digest()
    assert room_id_for_token(token) == room_id_by_hand(token)
    keys = LINK.keys
    assert (keys.access_token, keys.token_hash, keys.room_id, keys.join_key) == (
        token,
        hashlib.sha256(token).digest(),
        room_id_by_hand(token),
        key,
    )
    assert keys.room_id == LINK.room_id and keys.access_token == LINK.access_token
    # repr() hides the keys (the room id and token hash are what the relay sees anyway).
    assert token.hex() not in repr(keys) and key.hex() not in repr(keys)
    assert repr(token) not in repr(keys) and repr(key) not in repr(keys)


def test_known_answer() -> None:
    """Pinned values for secret = bytes 0..31 (recomputed by hand above).

    docs/PROTOCOL.md still lists the v1 values (room-bound labels) for its example.
    """
    keys = LINK.keys
    assert keys.access_token.hex() == (
        "404c1031831f2ae765cf14055506f35f6f4a8f966d88dfdcb774f2c44da97eb4"
    )
    assert keys.token_hash.hex() == (
        "524baaa3f648ff57207b29bbd3f07d507a929475599412d5206679d01de7935a"
    )
    assert keys.room_id == "Y_dSY-bMRsJbGbyPJg3vTA"
    assert keys.join_key.hex() == (
        "3089f4aa815b27cb7c42584acbe62a8bfd7d6b4b63a60eaee7c40e83bea3481e"
    )


def test_secret_and_label_both_matter() -> None:
    other_secret = bytes(32)
    # Another secret: another token, another room, another join key.
    assert access_token(SECRET) != access_token(other_secret)
    assert join_key(SECRET) != join_key(other_secret)
    assert room_id_for_token(access_token(SECRET)) != room_id_for_token(access_token(other_secret))
    # One secret: the relay's token and the members' join key are independent keys.
    assert access_token(SECRET) != join_key(SECRET)
    # Neither derived value is the secret itself.
    keys = LINK.keys
    assert SECRET not in (keys.access_token, keys.join_key)
    # A replaced invitation (new secret) replaces every derived value.
    rotated = LINK.with_secret(other_secret).keys
    assert rotated.access_token != keys.access_token
    assert rotated.token_hash != keys.token_hash
    assert rotated.room_id != keys.room_id
    assert rotated.join_key != keys.join_key


def test_wrong_lengths_are_refused() -> None:
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(ValueError):
            access_token(bad)
        with pytest.raises(ValueError):
            join_key(bad)
