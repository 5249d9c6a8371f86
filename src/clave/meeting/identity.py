"""Long-term identities, vouched MLS credentials and key fingerprints.

Each engine has a long-term Ed25519 *identity key*. For every meeting it makes
a fresh MLS signature key pair and a basic credential (RFC 9420 section 5.3)
whose identity is::

    b"CLV2" || identity_public_key (32) || vouch (64) || UTF-8 display name
    vouch = Ed25519-Sign(identity_key, b"clave v2 member key" || signature_key || name)

so the per-meeting leaf is bound to a key that other engines can remember
across meetings. :func:`credential_validator` is the Authentication Service
hook (RFC 9420 section 5.3.1) that checks this binding on every leaf. Clave
uses Ed25519 cipher suites only, so MLS signature keys are 32 bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..mls.structs import Credential, CredentialType, LeafNode
from .errors import IdentityError
from .names import MAX_NAME_CHARS, check_display_name, normalize_display_name

__all__ = [
    "CREDENTIAL_MAGIC",
    "MAX_NAME_CHARS",
    "Identity",
    "MemberIdentity",
    "check_display_name",
    "credential_name",
    "credential_validator",
    "fingerprint",
    "make_credential",
    "normalize_display_name",
    "parse_credential",
]

CREDENTIAL_MAGIC = b"CLV2"
VOUCH_LABEL = b"clave v2 member key"
KEY_BYTES = 32
SIGNATURE_BYTES = 64
FINGERPRINT_BYTES = 16
_HEADER = len(CREDENTIAL_MAGIC) + KEY_BYTES + SIGNATURE_BYTES

Rng = Callable[[int], bytes]


def fingerprint(key: bytes) -> str:
    """``"89ab cdef ..."``: SHA-256(key)[:16] as 8 groups of 4 lower-case hex digits."""
    digest = hashlib.sha256(key).hexdigest()[: 2 * FINGERPRINT_BYTES]
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def _vouch_message(signature_key: bytes, name: str) -> bytes:
    if len(signature_key) != KEY_BYTES:
        raise IdentityError(f"MLS signature key must be {KEY_BYTES} bytes (Ed25519)")
    return VOUCH_LABEL + bytes(signature_key) + name.encode()


@dataclass(frozen=True, slots=True)
class Identity:
    """An engine's long-term Ed25519 identity key pair (compared by public key)."""

    private_bytes: bytes = field(repr=False, compare=False)
    public_key: bytes = field(init=False)
    _key: Ed25519PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.private_bytes, bytes) or len(self.private_bytes) != KEY_BYTES:
            raise IdentityError(f"identity private key must be {KEY_BYTES} bytes")
        key = Ed25519PrivateKey.from_private_bytes(self.private_bytes)
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "public_key", public)

    @classmethod
    def generate(cls, rng: Rng) -> Identity:
        """A new identity whose private key is ``rng(32)``."""
        seed = rng(KEY_BYTES)
        if len(seed) != KEY_BYTES:
            raise ValueError(f"rng returned {len(seed)} bytes, expected {KEY_BYTES}")
        return cls(bytes(seed))

    @classmethod
    def from_private_bytes(cls, data: bytes) -> Identity:
        return cls(bytes(data))

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (RFC 8032) over ``data``."""
        return self._key.sign(bytes(data))


@dataclass(frozen=True, slots=True)
class MemberIdentity:
    """What a Clave credential claims: a name, vouched for by an identity key."""

    name: str
    identity_key: bytes
    vouch: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.identity_key)

    def vouches_for(self, signature_key: bytes) -> bool:
        """True if :attr:`vouch` binds ``signature_key`` and :attr:`name` to the identity key."""
        try:
            message = _vouch_message(signature_key, self.name)
            Ed25519PublicKey.from_public_bytes(self.identity_key).verify(self.vouch, message)
        except (IdentityError, InvalidSignature, ValueError):
            return False
        return True


def make_credential(identity: Identity, name: str, mls_signature_key: bytes) -> Credential:
    """The basic credential vouching for ``mls_signature_key`` under ``name``.

    ``name`` must already be in normal form (see :func:`normalize_display_name`).
    """
    check_display_name(name)
    vouch = identity.sign(_vouch_message(mls_signature_key, name))
    return Credential.basic(CREDENTIAL_MAGIC + identity.public_key + vouch + name.encode())


def parse_credential(credential: Credential) -> MemberIdentity:
    """Split a Clave credential (IdentityError if it is not one); the vouch is not verified."""
    if credential.credential_type != CredentialType.basic:
        raise IdentityError("only basic credentials are used in Clave meetings")
    data = bytes(credential.identity)
    if len(data) <= _HEADER:
        raise IdentityError("credential identity is too short to be a Clave identity")
    if not data.startswith(CREDENTIAL_MAGIC):
        raise IdentityError("credential identity is not in the Clave v2 format")
    key_end = len(CREDENTIAL_MAGIC) + KEY_BYTES
    try:
        name = data[_HEADER:].decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise IdentityError("credential display name is not valid UTF-8") from None
    return MemberIdentity(
        check_display_name(name), data[len(CREDENTIAL_MAGIC) : key_end], data[key_end:_HEADER]
    )


def credential_name(credential: Credential) -> str:
    """The display name in a Clave credential (IdentityError otherwise)."""
    return parse_credential(credential).name


def credential_validator(leaf: LeafNode, replaced: LeafNode | None) -> bool:
    """The Authentication Service hook of a Clave group (RFC 9420 section 5.3.1).

    The leaf's credential must parse and its vouch must bind the leaf's
    signature key and name to the identity key. A member never changes its
    credential or signature key in an Update or commit path (sections 12.1.2,
    12.4.2), so the security code, derived from both, survives key refreshes.
    """
    try:
        member = parse_credential(leaf.credential)
    except IdentityError:
        return False
    if not member.vouches_for(bytes(leaf.signature_key)):
        return False
    return replaced is None or (
        replaced.credential == leaf.credential
        and bytes(replaced.signature_key) == bytes(leaf.signature_key)
    )
