"""Display names, MLS credential identities and key fingerprints.

A member's basic credential (RFC 9420 section 5.3) has the identity
``16 random bytes || UTF-8 display name``: unique even when two people pick
the same name (MLS refuses two leaves with one identity, section 12.2). The
fingerprint is the first 16 bytes of SHA-256 of the leaf's signature public
key, shown as 8 groups of 4 hex digits.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable

from ..mls.structs import Credential, CredentialType, LeafNode
from .errors import IdentityError

IDENTITY_NONCE_BYTES = 16
MAX_NAME_CHARS = 64
FINGERPRINT_BYTES = 16

Rng = Callable[[int], bytes]


def check_display_name(name: str) -> str:
    """Return ``name`` if acceptable: 1-64 characters, no control or line separators."""
    if not isinstance(name, str):
        raise IdentityError(f"display name must be a str, not {type(name).__name__}")
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise IdentityError(f"display name must have 1 to {MAX_NAME_CHARS} characters")
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            raise IdentityError(f"display name contains the control character U+{ord(ch):04X}")
    if not name.strip():
        raise IdentityError("display name is blank")
    return name


def make_identity(name: str, rng: Rng) -> bytes:
    """``16 random bytes || UTF-8 name`` for :meth:`Credential.basic`."""
    nonce = rng(IDENTITY_NONCE_BYTES)
    if len(nonce) != IDENTITY_NONCE_BYTES:
        raise ValueError(f"rng returned {len(nonce)} bytes, expected {IDENTITY_NONCE_BYTES}")
    return bytes(nonce) + check_display_name(name).encode()


def make_credential(name: str, rng: Rng) -> Credential:
    return Credential.basic(make_identity(name, rng))


def display_name(identity: bytes) -> str:
    """The display name in a Clave credential identity (IdentityError if malformed)."""
    if len(identity) <= IDENTITY_NONCE_BYTES:
        raise IdentityError("credential identity is too short to carry a display name")
    try:
        name = identity[IDENTITY_NONCE_BYTES:].decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise IdentityError("credential display name is not valid UTF-8") from None
    return check_display_name(name)


def credential_name(credential: Credential) -> str:
    """The display name of a basic credential (IdentityError otherwise)."""
    if credential.credential_type != CredentialType.basic:
        raise IdentityError("only basic credentials are used in Clave meetings")
    return display_name(credential.identity)


def fingerprint(signature_key: bytes) -> str:
    """``"89ab cdef ..."``: SHA-256(signature public key)[:16] as 8 groups of 4 hex digits."""
    digest = hashlib.sha256(signature_key).hexdigest()[: 2 * FINGERPRINT_BYTES]
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def credential_validator(leaf: LeafNode, replaced: LeafNode | None) -> bool:
    """The Authentication Service hook (RFC 9420 section 5.3.1) of a Clave group.

    Every leaf must carry a basic credential with a well-formed Clave identity,
    and a member may never change its credential (its name) in an Update or
    commit path.
    """
    try:
        credential_name(leaf.credential)
    except IdentityError:
        return False
    return replaced is None or replaced.credential == leaf.credential
