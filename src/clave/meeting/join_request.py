"""Join requests: a joiner's KeyPackage and display name, sealed to the members.

::

    data      = nonce || AES-256-GCM(join_key, nonce, plaintext, aad)
    nonce     = 12 random bytes
    aad       = "clave v2 join request"
    plaintext = msgpack map {"key_package": bin (an MLSMessage with a KeyPackage),
                             "name": str (1-64 characters),
                             "conn": uint (the joiner's relay connection id)}

The relay forwards ``data`` as ``JoinRequest``/``JoinRequestFrom`` without
being able to read it. ``conn`` binds the request to the connection that sent
it: members drop a request whose ``conn`` differs from the relay's
``JoinRequestFrom.sender``, so the relay cannot replay an old request from
another connection. Without the link secret nobody can produce a request
that opens, so a leaked room id admits nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import JoinRequestError
from .names import MAX_NAME_CHARS

JOIN_REQUEST_AAD = b"clave v2 join request"
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_KEY_PACKAGE_BYTES = 16 * 1024

Rng = Callable[[int], bytes]


class JoinRequestBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The plaintext of a join request."""

    key_package: Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_KEY_PACKAGE_BYTES)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
    conn: Annotated[int, msgspec.Meta(ge=1, le=0xFFFFFFFF)]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(JoinRequestBody)


def seal_join_request(join_key: bytes, body: JoinRequestBody, rng: Rng) -> bytes:
    """``nonce || AES-256-GCM(join_key, nonce, msgpack(body), aad)``."""
    nonce = rng(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"rng returned {len(nonce)} bytes, expected {NONCE_BYTES}")
    ciphertext = AESGCM(join_key).encrypt(bytes(nonce), _encoder.encode(body), JOIN_REQUEST_AAD)
    return bytes(nonce) + ciphertext


def open_join_request(join_key: bytes, data: bytes) -> JoinRequestBody:
    """Decrypt and decode; :class:`JoinRequestError` if anything is wrong."""
    if len(data) < NONCE_BYTES + TAG_BYTES:
        raise JoinRequestError(f"join request of {len(data)} bytes is too short")
    try:
        plaintext = AESGCM(join_key).decrypt(
            bytes(data[:NONCE_BYTES]), bytes(data[NONCE_BYTES:]), JOIN_REQUEST_AAD
        )
    except InvalidTag:
        raise JoinRequestError(
            "join request does not open under this meeting's join key "
            "(sealed with another link secret, or corrupted)"
        ) from None
    try:
        return _decoder.decode(plaintext)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 raises the latter
        raise JoinRequestError(f"malformed join request: {exc}") from None
