"""MLS cipher suites and the labeled crypto helpers (RFC 9420 sections 5.1-5.2, 8, 17.1).

Supported suites (RFC 9420 section 17.1), all with HKDF-SHA256 / SHA-256 / HMAC:

* 1 MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519: DHKEM(X25519), AES-128-GCM, Ed25519
* 2 MLS_128_DHKEMP256_AES128GCM_SHA256_P256: DHKEM(P-256), AES-128-GCM, ECDSA P-256
* 3 MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519: DHKEM(X25519), ChaCha20-Poly1305,
  Ed25519

Keys are always handled in serialized form: HPKE keys as in RFC 9180 section
7.1, Ed25519 keys as RFC 8032 byte strings, ECDSA private keys as big-endian
scalars and public keys as uncompressed points (RFC 9420 section 5.1.1).
ECDSA signatures are DER-encoded (RFC 9420 section 5.1.2) and produced
deterministically (RFC 6979), so signing consumes no hidden randomness.

Randomness is never global: every operation needing it takes ``rng``, a
callable returning that many random bytes. Every decryption or verification
failure raises :class:`CryptoError` or :class:`SignatureError`.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import IntEnum
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .codec import encode_varint
from .errors import CryptoError, SignatureError, UnsupportedCipherSuiteError
from .hpke import Aead, Hpke, Kdf, Kem, Rng, draw

__all__ = [
    "SUPPORTED_CIPHER_SUITES",
    "CipherSuite",
    "CipherSuiteId",
    "Label",
    "Rng",
    "SignatureScheme",
    "get_suite",
]

Label = str | bytes
"""A label; ``str`` labels are UTF-8 encoded. ``"MLS 1.0 "`` is prepended where the RFC says."""

_MLS_PREFIX = b"MLS 1.0 "
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SIG_ERRORS = (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm, OverflowError)


class CipherSuiteId(IntEnum):
    """Cipher suite code points (RFC 9420 section 17.1)."""

    MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 = 0x0001
    MLS_128_DHKEMP256_AES128GCM_SHA256_P256 = 0x0002
    MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 = 0x0003


class SignatureScheme(IntEnum):
    """TLS SignatureScheme code points used by the supported suites (RFC 8446)."""

    ECDSA_SECP256R1_SHA256 = 0x0403
    ED25519 = 0x0807


def _label_bytes(label: Label) -> bytes:
    return label.encode() if isinstance(label, str) else bytes(label)


def _opaque2(a: bytes, b: bytes) -> bytes:
    """Encode ``struct { opaque a<V>; opaque b<V>; }``."""
    return b"".join((encode_varint(len(a)), a, encode_varint(len(b)), b))


def sign_content(label: Label, content: bytes) -> bytes:
    """The bytes SignWithLabel signs (RFC 9420 section 5.1.2): ``SignContent`` with the
    label prefixed by "MLS 1.0 "."""
    return _opaque2(_MLS_PREFIX + _label_bytes(label), content)


@lru_cache(maxsize=4096)
def _ed25519_public(pub: bytes) -> Ed25519PublicKey:
    if len(pub) != 32:
        raise ValueError(f"Ed25519 public key must be 32 bytes, got {len(pub)}")
    return Ed25519PublicKey.from_public_bytes(pub)


@lru_cache(maxsize=4096)
def _p256_public(pub: bytes) -> ec.EllipticCurvePublicKey:
    if len(pub) != 65 or pub[0] != 4:
        raise ValueError("P-256 public key must be a 65-byte uncompressed point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pub)


class CipherSuite:
    """The primitives of one MLS cipher suite plus the RFC 9420 labeled helpers.

    Obtain instances with :func:`get_suite`; they are immutable singletons.
    """

    __slots__ = (
        "_aead_cls",
        "_hash_ctor",
        "_hash_name",
        "hpke",
        "id",
        "name",
        "nh",
        "nk",
        "nn",
        "signature_scheme",
    )

    def __init__(
        self,
        suite_id: CipherSuiteId,
        kem: Kem,
        aead: Aead,
        signature_scheme: SignatureScheme,
    ) -> None:
        self.id: int = int(suite_id)
        self.name: str = suite_id.name
        self.signature_scheme = signature_scheme
        self.hpke = Hpke(kem, Kdf.HKDF_SHA256, aead)
        self._hash_name = "sha256"
        self._hash_ctor = hashlib.sha256
        self.nh: int = 32  # KDF.Nh: output size of KDF.Extract
        self._aead_cls: type[AESGCM] | type[ChaCha20Poly1305]
        if aead is Aead.AES128_GCM:
            self._aead_cls, self.nk = AESGCM, 16
        else:
            self._aead_cls, self.nk = ChaCha20Poly1305, 32
        self.nn: int = 12

    def __repr__(self) -> str:
        return f"CipherSuite({self.id:#06x} {self.name})"

    # Upper-case aliases matching the RFC's notation.
    @property
    def Nh(self) -> int:
        return self.nh

    @property
    def Nk(self) -> int:
        return self.nk

    @property
    def Nn(self) -> int:
        return self.nn

    # -- hash, MAC and KDF (RFC 9420 sections 5.1, 8) -------------------------

    def hash(self, data: bytes) -> bytes:
        """``Hash(data)`` of the suite."""
        return self._hash_ctor(data).digest()

    def mac(self, key: bytes, data: bytes) -> bytes:
        """``MAC(key, data)``: HMAC with the suite's hash (RFC 9420 section 5.1)."""
        return hmac.digest(key, data, self._hash_name)

    def verify_mac(self, key: bytes, data: bytes, tag: bytes) -> bool:
        """Constant-time check that ``tag == MAC(key, data)``."""
        return hmac.compare_digest(self.mac(key, data), tag)

    def kdf_extract(self, salt: bytes, ikm: bytes) -> bytes:
        """``KDF.Extract(salt, ikm)``: HKDF-Extract (RFC 5869 section 2.2)."""
        return hmac.digest(salt, ikm, self._hash_name)

    def kdf_expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        """``KDF.Expand(prk, info, length)``: HKDF-Expand (RFC 5869 section 2.3)."""
        if not 0 <= length <= 255 * self.nh:
            raise ValueError(f"HKDF-Expand length {length} out of range")
        name = self._hash_name
        block = hmac.digest(prk, info + b"\x01", name)
        if length <= self.nh:
            return block[:length]
        out = [block]
        counter = 1
        total = len(block)
        while total < length:
            counter += 1
            block = hmac.digest(prk, block + info + bytes((counter,)), name)
            out.append(block)
            total += len(block)
        return b"".join(out)[:length]

    def expand_with_label(self, secret: bytes, label: Label, context: bytes, length: int) -> bytes:
        """``ExpandWithLabel(Secret, Label, Context, Length)`` (RFC 9420 section 8)."""
        if not 0 <= length <= 0xFFFF:
            raise ValueError(f"ExpandWithLabel length {length} does not fit a uint16")
        kdf_label = length.to_bytes(2, "big") + _opaque2(_MLS_PREFIX + _label_bytes(label), context)
        return self.kdf_expand(secret, kdf_label, length)

    def derive_secret(self, secret: bytes, label: Label) -> bytes:
        """``DeriveSecret(Secret, Label)`` (RFC 9420 section 8)."""
        return self.expand_with_label(secret, label, b"", self.nh)

    def derive_tree_secret(
        self, secret: bytes, label: Label, generation: int, length: int
    ) -> bytes:
        """``DeriveTreeSecret(Secret, Label, Generation, Length)`` (RFC 9420 section 9.1)."""
        return self.expand_with_label(secret, label, generation.to_bytes(4, "big"), length)

    # -- hash-based identifiers (RFC 9420 section 5.2) ------------------------

    def ref_hash(self, label: Label, value: bytes) -> bytes:
        """``RefHash(label, value) = Hash(RefHashInput)``; the label is used verbatim."""
        return self.hash(_opaque2(_label_bytes(label), value))

    def make_key_package_ref(self, key_package: bytes) -> bytes:
        """``MakeKeyPackageRef`` over an encoded KeyPackage."""
        return self.ref_hash(b"MLS 1.0 KeyPackage Reference", key_package)

    def make_proposal_ref(self, authenticated_content: bytes) -> bytes:
        """``MakeProposalRef`` over the encoded AuthenticatedContent carrying the proposal."""
        return self.ref_hash(b"MLS 1.0 Proposal Reference", authenticated_content)

    # -- signatures (RFC 9420 section 5.1.2) ----------------------------------

    def _private_signer(self, priv: bytes) -> Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
        if len(priv) != 32:
            raise CryptoError(f"signature private key must be 32 bytes, got {len(priv)}")
        if self.signature_scheme is SignatureScheme.ED25519:
            return Ed25519PrivateKey.from_private_bytes(bytes(priv))
        d = int.from_bytes(priv, "big")
        if not 0 < d < _P256_ORDER:
            raise CryptoError("P-256 signature private key out of range")
        return ec.derive_private_key(d, ec.SECP256R1())

    def sign(self, priv: bytes, message: bytes) -> bytes:
        """``Signature.Sign`` over raw bytes (DER for ECDSA, R||S for Ed25519)."""
        key = self._private_signer(priv)
        if isinstance(key, Ed25519PrivateKey):
            return key.sign(message)
        return key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))

    def verify(self, pub: bytes, message: bytes, signature: bytes) -> None:
        """``Signature.Verify`` over raw bytes; raises SignatureError on any failure."""
        try:
            if self.signature_scheme is SignatureScheme.ED25519:
                _ed25519_public(bytes(pub)).verify(bytes(signature), message)
            else:
                _p256_public(bytes(pub)).verify(
                    bytes(signature), message, ec.ECDSA(hashes.SHA256())
                )
        except _SIG_ERRORS:
            raise SignatureError("signature verification failed") from None

    def sign_with_label(self, priv: bytes, label: Label, content: bytes) -> bytes:
        """``SignWithLabel(SignatureKey, Label, Content)`` (RFC 9420 section 5.1.2)."""
        return self.sign(priv, sign_content(label, content))

    def verify_with_label(self, pub: bytes, label: Label, content: bytes, signature: bytes) -> None:
        """``VerifyWithLabel``; returns normally iff valid, else raises SignatureError."""
        self.verify(pub, sign_content(label, content), signature)

    def signature_public_key(self, priv: bytes) -> bytes:
        """The SignaturePublicKey (raw, without length prefix) for a private key."""
        key = self._private_signer(priv)
        if isinstance(key, Ed25519PrivateKey):
            return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    def generate_signature_key_pair(self, rng: Rng) -> tuple[bytes, bytes]:
        """Generate a signature key pair from ``rng`` -> (private, public)."""
        while True:
            priv = draw(rng, 32)
            if self.signature_scheme is SignatureScheme.ED25519:
                break
            if 0 < int.from_bytes(priv, "big") < _P256_ORDER:
                break
        return priv, self.signature_public_key(priv)

    def validate_signature_public_key(self, pub: bytes) -> None:
        """Raise CryptoError unless ``pub`` is a well-formed SignaturePublicKey."""
        try:
            if self.signature_scheme is SignatureScheme.ED25519:
                _ed25519_public(bytes(pub))
            else:
                _p256_public(bytes(pub))
        except _SIG_ERRORS as exc:
            raise CryptoError(f"invalid signature public key: {exc}") from None

    # -- AEAD -----------------------------------------------------------------

    def aead_encrypt(self, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        """``AEAD.Seal(key, nonce, aad, pt)``: ciphertext with the tag appended."""
        if len(key) != self.nk or len(nonce) != self.nn:
            raise CryptoError("AEAD key or nonce has the wrong length")
        return self._aead_cls(bytes(key)).encrypt(bytes(nonce), bytes(plaintext), bytes(aad))

    def aead_decrypt(self, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        """``AEAD.Open(key, nonce, aad, ct)``; raises CryptoError on failure."""
        if len(key) != self.nk or len(nonce) != self.nn:
            raise CryptoError("AEAD key or nonce has the wrong length")
        try:
            return self._aead_cls(bytes(key)).decrypt(bytes(nonce), bytes(ciphertext), bytes(aad))
        except (InvalidTag, ValueError, OverflowError):
            raise CryptoError("AEAD decryption failed") from None

    # -- HPKE (RFC 9420 section 5.1.3; RFC 9180) ------------------------------

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """``KEM.DeriveKeyPair(ikm)`` -> (HPKE private key, HPKE public key)."""
        return self.hpke.derive_key_pair(ikm)

    def generate_hpke_key_pair(self, rng: Rng) -> tuple[bytes, bytes]:
        """A fresh HPKE key pair from ``rng`` -> (private, public)."""
        return self.hpke.generate_key_pair(rng)

    def hpke_public_key(self, priv: bytes) -> bytes:
        """The serialized HPKEPublicKey of a serialized HPKE private key."""
        return self.hpke.public_key(priv)

    def validate_hpke_public_key(self, pub: bytes) -> None:
        """Raise CryptoError unless ``pub`` is a valid serialized HPKEPublicKey."""
        self.hpke.validate_public_key(pub)

    def hpke_seal(
        self, pub: bytes, info: bytes, aad: bytes, plaintext: bytes, *, rng: Rng
    ) -> tuple[bytes, bytes]:
        """``SealBase`` -> (kem_output, ciphertext)."""
        return self.hpke.seal(pub, info, aad, plaintext, rng)

    def hpke_open(
        self, priv: bytes, kem_output: bytes, info: bytes, aad: bytes, ciphertext: bytes
    ) -> bytes:
        """``OpenBase``; raises CryptoError on failure."""
        return self.hpke.open(priv, kem_output, info, aad, ciphertext)

    def encrypt_with_label(
        self, pub: bytes, label: Label, context: bytes, plaintext: bytes, *, rng: Rng
    ) -> tuple[bytes, bytes]:
        """``EncryptWithLabel(PublicKey, Label, Context, Plaintext)`` -> (kem_output, ct)."""
        info = _opaque2(_MLS_PREFIX + _label_bytes(label), context)
        return self.hpke.seal(pub, info, b"", plaintext, rng)

    def decrypt_with_label(
        self, priv: bytes, label: Label, context: bytes, kem_output: bytes, ciphertext: bytes
    ) -> bytes:
        """``DecryptWithLabel(PrivateKey, Label, Context, KEMOutput, Ciphertext)``."""
        info = _opaque2(_MLS_PREFIX + _label_bytes(label), context)
        return self.hpke.open(priv, kem_output, info, b"", ciphertext)


_SUITES: dict[int, CipherSuite] = {
    s.id: s
    for s in (
        CipherSuite(
            CipherSuiteId.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
            Kem.DHKEM_X25519_HKDF_SHA256,
            Aead.AES128_GCM,
            SignatureScheme.ED25519,
        ),
        CipherSuite(
            CipherSuiteId.MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
            Kem.DHKEM_P256_HKDF_SHA256,
            Aead.AES128_GCM,
            SignatureScheme.ECDSA_SECP256R1_SHA256,
        ),
        CipherSuite(
            CipherSuiteId.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
            Kem.DHKEM_X25519_HKDF_SHA256,
            Aead.CHACHA20_POLY1305,
            SignatureScheme.ED25519,
        ),
    )
}

SUPPORTED_CIPHER_SUITES: tuple[int, ...] = tuple(sorted(_SUITES))


def get_suite(suite_id: int) -> CipherSuite:
    """The :class:`CipherSuite` for a code point; UnsupportedCipherSuiteError otherwise."""
    try:
        return _SUITES[suite_id]
    except (KeyError, TypeError):
        raise UnsupportedCipherSuiteError(f"unsupported cipher suite {suite_id!r}") from None
