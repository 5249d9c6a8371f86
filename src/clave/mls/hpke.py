"""HPKE base mode (RFC 9180) for the MLS cipher suites, on top of ``pyhpke``.

MLS uses HPKE for public-key encryption (RFC 9420 section 5.1.3), for node key
pairs derived from path secrets (section 7.4, ``KEM.DeriveKeyPair``), and for
the external-init exporter (section 8.3). This wrapper

* works on serialized keys only (``SerializePublicKey`` / ``SerializePrivateKey``
  of RFC 9180 section 7.1), validating their encodings strictly;
* takes randomness from an injected ``rng``: the ephemeral key pair of
  ``SetupBaseS`` is ``DeriveKeyPair(rng(Nsk))``, which RFC 9180 section 7.1.3
  allows as ``GenerateKeyPair``;
* turns every failure into :class:`~clave.mls.errors.CryptoError`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Any

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey, KEMKeyInterface
from pyhpke.exceptions import PyHPKEError

from .errors import CryptoError

Rng = Callable[[int], bytes]

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# Everything the underlying libraries may raise on bad keys or ciphertexts.
_LIB_ERRORS = (PyHPKEError, ValueError, TypeError, InvalidTag, UnsupportedAlgorithm, OverflowError)


def draw(rng: Rng, n: int) -> bytes:
    """``n`` bytes from ``rng``; ValueError if it returns a different amount."""
    out = rng(n)
    if len(out) != n:
        raise ValueError(f"rng returned {len(out)} bytes, {n} requested")
    return bytes(out)


class Kem(IntEnum):
    """HPKE KEM identifiers used by the supported MLS cipher suites."""

    DHKEM_P256_HKDF_SHA256 = 0x0010
    DHKEM_X25519_HKDF_SHA256 = 0x0020


class Kdf(IntEnum):
    """HPKE KDF identifiers."""

    HKDF_SHA256 = 0x0001


class Aead(IntEnum):
    """HPKE AEAD identifiers."""

    AES128_GCM = 0x0001
    CHACHA20_POLY1305 = 0x0003


class Hpke:
    """One HPKE configuration (KEM, KDF, AEAD) in base mode (RFC 9180 section 5.1.1)."""

    __slots__ = ("_kem_id", "_suite", "npk", "nsk")

    def __init__(self, kem: Kem, kdf: Kdf, aead: Aead) -> None:
        self._kem_id = kem
        self._suite = CipherSuite.new(KEMId(int(kem)), KDFId(int(kdf)), AEADId(int(aead)))
        # Nsk / Npk of RFC 9180 section 7.1.
        self.nsk = 32
        self.npk = 65 if kem is Kem.DHKEM_P256_HKDF_SHA256 else 32

    # -- key handling ---------------------------------------------------------

    def _load_public(self, pk: bytes) -> KEMKeyInterface:
        if len(pk) != self.npk or (self._kem_id is Kem.DHKEM_P256_HKDF_SHA256 and pk[0] != 4):
            raise CryptoError(f"malformed HPKE public key ({len(pk)} bytes)")
        try:
            return self._suite.kem.deserialize_public_key(bytes(pk))
        except _LIB_ERRORS as exc:
            raise CryptoError(f"invalid HPKE public key: {exc}") from None

    def _load_private(self, sk: bytes) -> KEMKeyInterface:
        if len(sk) != self.nsk:
            raise CryptoError(f"malformed HPKE private key ({len(sk)} bytes)")
        if self._kem_id is Kem.DHKEM_P256_HKDF_SHA256:
            d = int.from_bytes(sk, "big")
            if not 0 < d < _P256_ORDER:
                raise CryptoError("HPKE P-256 private key out of range")
        try:
            return self._suite.kem.deserialize_private_key(bytes(sk))
        except _LIB_ERRORS as exc:
            raise CryptoError(f"invalid HPKE private key: {exc}") from None

    def validate_public_key(self, pk: bytes) -> None:
        """Raise CryptoError unless ``pk`` is a valid serialized public key."""
        self._load_public(pk)

    def _serialize_private(self, key: KEMKeyInterface) -> bytes:
        # SerializePrivateKey (RFC 9180 section 7.1.2): Nsk-byte big-endian scalar
        # for P-256 (pyhpke's to_private_bytes mis-sizes it), raw bytes for X25519.
        if self._kem_id is Kem.DHKEM_P256_HKDF_SHA256:
            value: int = key.raw.private_numbers().private_value
            return value.to_bytes(self.nsk, "big")
        return key.to_private_bytes()

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """``DeriveKeyPair(ikm)`` of RFC 9180 section 7.1.3 -> (private, public)."""
        try:
            kp = self._suite.kem.derive_key_pair(bytes(ikm))
            return self._serialize_private(kp.private_key), kp.public_key.to_public_bytes()
        except _LIB_ERRORS as exc:
            raise CryptoError(f"DeriveKeyPair failed: {exc}") from None

    def generate_key_pair(self, rng: Rng) -> tuple[bytes, bytes]:
        """``GenerateKeyPair()`` as ``DeriveKeyPair(rng(Nsk))`` -> (private, public)."""
        return self.derive_key_pair(draw(rng, self.nsk))

    def public_key(self, sk: bytes) -> bytes:
        """The serialized public key of a serialized private key."""
        key = self._load_private(sk)
        try:
            return KEMKey.from_pyca_cryptography_key(key.raw.public_key()).to_public_bytes()
        except _LIB_ERRORS as exc:
            raise CryptoError(f"invalid HPKE private key: {exc}") from None

    # -- base-mode encryption ------------------------------------------------

    def seal(
        self, pk: bytes, info: bytes, aad: bytes, plaintext: bytes, rng: Rng
    ) -> tuple[bytes, bytes]:
        """``SealBase(pkR, info, aad, pt)`` (RFC 9180 section 6.1) -> (enc, ciphertext)."""
        enc, ctx = self._setup_sender(pk, info, rng, "seal")
        try:
            return enc, ctx.seal(bytes(plaintext), bytes(aad))
        except _LIB_ERRORS as exc:
            raise CryptoError(f"HPKE seal failed: {exc}") from None

    def open(self, sk: bytes, enc: bytes, info: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        """``OpenBase(enc, skR, info, aad, ct)`` (RFC 9180 section 6.1); CryptoError on failure."""
        skr = self._load_private(sk)
        self._load_public(enc)
        try:
            ctx = self._suite.create_recipient_context(bytes(enc), skr, bytes(info))
            return ctx.open(bytes(ciphertext), bytes(aad))
        except _LIB_ERRORS:
            raise CryptoError("HPKE open failed") from None

    def export_sender(
        self, pk: bytes, info: bytes, exporter_context: bytes, length: int, rng: Rng
    ) -> tuple[bytes, bytes]:
        """``SetupBaseS(pkR, info)`` then ``Export(ctx, L)`` -> (enc, exported secret)."""
        enc, ctx = self._setup_sender(pk, info, rng, "export")
        try:
            return enc, ctx.export(bytes(exporter_context), length)
        except _LIB_ERRORS as exc:
            raise CryptoError(f"HPKE export failed: {exc}") from None

    def _setup_sender(self, pk: bytes, info: bytes, rng: Rng, what: str) -> tuple[bytes, Any]:
        """``SetupBaseS`` (RFC 9180 section 5.1.1) with the ephemeral key pair
        ``DeriveKeyPair(rng(Nsk))``, so encryption is deterministic under an injected rng."""
        pkr = self._load_public(pk)
        ikm_e = draw(rng, self.nsk)
        try:
            eks = self._suite.kem.derive_key_pair(ikm_e)
            return self._suite.create_sender_context(pkr, bytes(info), eks=eks)
        except _LIB_ERRORS as exc:
            raise CryptoError(f"HPKE {what} failed: {exc}") from None

    def export_receiver(
        self, sk: bytes, enc: bytes, info: bytes, exporter_context: bytes, length: int
    ) -> bytes:
        """``SetupBaseR(enc, skR, info)`` then ``Export(ctx, L)``."""
        skr = self._load_private(sk)
        self._load_public(enc)
        try:
            ctx = self._suite.create_recipient_context(bytes(enc), skr, bytes(info))
            return ctx.export(bytes(exporter_context), length)
        except _LIB_ERRORS as exc:
            raise CryptoError(f"HPKE export failed: {exc}") from None
