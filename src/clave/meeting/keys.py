"""Keys derived from the link secret (HKDF-SHA256, RFC 5869).

With ``room`` the 16 room-id bytes and an empty salt::

    access_token = HKDF(secret, salt="", info="clave v1 relay access token" || room, 32)
    token_hash   = SHA-256(access_token)
    join_key     = HKDF(secret, salt="", info="clave v1 join key" || room, 32)

The relay stores only ``token_hash`` (sent in ``Create``) and checks the
``access_token`` a joiner presents (in ``Join``); neither reveals the secret
or the join key. ``join_key`` is an AES-256-GCM key that seals join requests
(:mod:`.join_request`) so only members, who hold the link, can read them.
Distinct ``info`` labels keep the derived keys independent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .link import ROOM_ID_BYTES, SECRET_BYTES, MeetingLink

ACCESS_TOKEN_INFO = b"clave v1 relay access token"
JOIN_KEY_INFO = b"clave v1 join key"
KEY_BYTES = 32


def hkdf_sha256(ikm: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 (extract and expand) with an empty salt."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"", info=info).derive(ikm)


def _check(secret: bytes, room_id: bytes) -> None:
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"link secret must be {SECRET_BYTES} bytes")
    if len(room_id) != ROOM_ID_BYTES:
        raise ValueError(f"room id must be {ROOM_ID_BYTES} bytes")


def access_token(secret: bytes, room_id: bytes) -> bytes:
    """The relay access token presented in ``Join``."""
    _check(secret, room_id)
    return hkdf_sha256(secret, ACCESS_TOKEN_INFO + room_id)


def token_hash(token: bytes) -> bytes:
    """What the relay stores: SHA-256 of the access token (sent in ``Create``)."""
    return hashlib.sha256(token).digest()


def join_key(secret: bytes, room_id: bytes) -> bytes:
    """The AES-256-GCM key of join requests."""
    _check(secret, room_id)
    return hkdf_sha256(secret, JOIN_KEY_INFO + room_id)


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """Everything a participant derives from a link (``repr()`` hides the keys)."""

    access_token: bytes = field(repr=False)
    token_hash: bytes
    join_key: bytes = field(repr=False)


def room_keys(link: MeetingLink) -> RoomKeys:
    room = link.room_id_bytes
    token = access_token(link.secret, room)
    return RoomKeys(token, token_hash(token), join_key(link.secret, room))
