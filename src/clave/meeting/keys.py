"""Keys derived from the link secret (HKDF-SHA256, RFC 5869).

With an empty salt::

    access_token = HKDF(secret, salt="", info="clave v2 relay access token", 32)
    token_hash   = SHA-256(access_token)
    room_id      = base64url(SHA-256("clave v2 room id" || access_token)[:16])
    join_key     = HKDF(secret, salt="", info="clave v2 join key", 32)

The relay receives ``access_token`` in ``Enter`` and keeps only its hash; it
checks that the room id belongs to the token, so holding a room id alone
names no room one could enter, create or squat. ``join_key`` is an AES-256-GCM
key that seals join requests and lobby replies (:mod:`.join_request`,
:mod:`.lobby`) so only link holders can read them. Distinct ``info`` labels keep
the derived keys independent; replacing the secret (a rotated invitation)
replaces all of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..wire.control import room_id_for_token

SECRET_BYTES = 32
ACCESS_TOKEN_INFO = b"clave v2 relay access token"
JOIN_KEY_INFO = b"clave v2 join key"
KEY_BYTES = 32


def hkdf_sha256(ikm: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 (extract and expand) with an empty salt."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"", info=info).derive(ikm)


def _check(secret: bytes) -> None:
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"link secret must be {SECRET_BYTES} bytes")


def access_token(secret: bytes) -> bytes:
    """The relay access token presented in ``Enter``."""
    _check(secret)
    return hkdf_sha256(secret, ACCESS_TOKEN_INFO)


def token_hash(token: bytes) -> bytes:
    """What the relay keeps: SHA-256 of the access token."""
    return hashlib.sha256(token).digest()


def join_key(secret: bytes) -> bytes:
    """The AES-256-GCM key of join requests and lobby replies."""
    _check(secret)
    return hkdf_sha256(secret, JOIN_KEY_INFO)


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """Everything a participant derives from a link (``repr()`` hides the keys)."""

    access_token: bytes = field(repr=False)
    token_hash: bytes
    room_id: str
    join_key: bytes = field(repr=False)


def room_keys(secret: bytes) -> RoomKeys:
    """Everything derived from an invitation's secret (``MeetingLink.keys``)."""
    token = access_token(secret)
    return RoomKeys(token, token_hash(token), room_id_for_token(token), join_key(secret))
