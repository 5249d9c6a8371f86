"""SFrame cipher suites, key derivation and the AES-CTR+HMAC AEAD.

* RFC 9605 section 4.5: the five registered suites (0x0001-0x0005) with their
  ``Nh``, ``Nka``, ``Nk``, ``Nn`` and ``Nt`` constants.
* RFC 9605 section 4.4.2: ``derive_key_salt`` (HKDF with the suite's hash).
* RFC 9605 section 4.4.3: nonce = ``sframe_salt`` XOR the CTR (``Nn`` bytes).
* RFC 9605 section 4.5.1: the compound AES-CTR + HMAC AEAD with truncated tags.

Suites 0x0006-0x0008 (AES-256-CTR with HMAC-SHA512, tags of 80/64/32 bits) are
*not* in the RFC 9605 registry; they are the extension suites of the SFrame
working group's test vectors (``test-vectors-aes256.json``) and use the same
section 4.5.1 construction with ``Nka = 32`` and ``Nh = 64``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives import constant_time, hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from .errors import AuthenticationError, ConfigurationError, UnsupportedCipherSuiteError
from .header import MAX_VALUE

Buffer = bytes | bytearray | memoryview
"""Bytes-like inputs accepted by the SFrame API."""


class Aead(Protocol):
    """RFC 5116 AEAD interface (``AESGCM`` and :class:`AesCtrHmac` both satisfy it).

    ``decrypt`` raises ``cryptography.exceptions.InvalidTag`` or
    :class:`AuthenticationError` on authentication failure.
    """

    def encrypt(self, nonce: Buffer, data: Buffer, associated_data: Buffer | None) -> bytes:
        """Return ciphertext followed by the tag."""
        ...

    def decrypt(self, nonce: Buffer, data: Buffer, associated_data: Buffer | None) -> bytes:
        """Verify the tag and return the plaintext."""
        ...


@dataclass(frozen=True, slots=True)
class CipherSuite:
    """One SFrame cipher suite (RFC 9605 section 4.5, registry of section 8.1).

    ``nk`` is the AEAD key size; for the CTR+HMAC suites it is ``nka + nh``.
    ``nka`` is ``None`` for the AES-GCM suites.
    """

    id: int
    name: str
    nh: int
    nka: int | None
    nk: int
    nn: int
    nt: int
    hash: hashes.HashAlgorithm = field(compare=False, repr=False)

    @property
    def is_ctr_hmac(self) -> bool:
        """True for the section 4.5.1 compound AES-CTR + HMAC suites."""
        return self.nka is not None

    def aead(self, key: bytes) -> Aead:
        """Return a reusable AEAD object keyed with ``sframe_key`` (``nk`` bytes)."""
        if len(key) != self.nk:
            raise ConfigurationError(f"{self.name} needs a {self.nk}-byte key, got {len(key)}")
        if self.nka is None:
            return AESGCM(key)
        return AesCtrHmac(self, key)

    def derive_key_salt(self, kid: int, base_key: Buffer) -> tuple[bytes, bytes]:
        """``derive_key_salt(KID, base_key)`` of RFC 9605 section 4.4.2."""
        return derive_key_salt(self, kid, base_key)


def _suite(id: int, name: str, nh: int, nka: int | None, nk: int, nt: int) -> CipherSuite:
    h: hashes.HashAlgorithm = hashes.SHA256() if nh == 32 else hashes.SHA512()
    return CipherSuite(id=id, name=name, nh=nh, nka=nka, nk=nk, nn=12, nt=nt, hash=h)


#                                  id      name                          Nh  Nka   Nk  Nt
AES_128_CTR_HMAC_SHA256_80 = _suite(0x0001, "AES_128_CTR_HMAC_SHA256_80", 32, 16, 48, 10)
AES_128_CTR_HMAC_SHA256_64 = _suite(0x0002, "AES_128_CTR_HMAC_SHA256_64", 32, 16, 48, 8)
AES_128_CTR_HMAC_SHA256_32 = _suite(0x0003, "AES_128_CTR_HMAC_SHA256_32", 32, 16, 48, 4)
AES_128_GCM_SHA256_128 = _suite(0x0004, "AES_128_GCM_SHA256_128", 32, None, 16, 16)
AES_256_GCM_SHA512_128 = _suite(0x0005, "AES_256_GCM_SHA512_128", 64, None, 32, 16)
# Extension suites of the working group's test vectors (not registered by RFC 9605).
AES_256_CTR_HMAC_SHA512_80 = _suite(0x0006, "AES_256_CTR_HMAC_SHA512_80", 64, 32, 96, 10)
AES_256_CTR_HMAC_SHA512_64 = _suite(0x0007, "AES_256_CTR_HMAC_SHA512_64", 64, 32, 96, 8)
AES_256_CTR_HMAC_SHA512_32 = _suite(0x0008, "AES_256_CTR_HMAC_SHA512_32", 64, 32, 96, 4)

RFC9605_SUITES: tuple[CipherSuite, ...] = (
    AES_128_CTR_HMAC_SHA256_80,
    AES_128_CTR_HMAC_SHA256_64,
    AES_128_CTR_HMAC_SHA256_32,
    AES_128_GCM_SHA256_128,
    AES_256_GCM_SHA512_128,
)
"""The five suites registered by RFC 9605 section 8.1."""

EXTENSION_SUITES: tuple[CipherSuite, ...] = (
    AES_256_CTR_HMAC_SHA512_80,
    AES_256_CTR_HMAC_SHA512_64,
    AES_256_CTR_HMAC_SHA512_32,
)

SUITES: dict[int, CipherSuite] = {s.id: s for s in RFC9605_SUITES + EXTENSION_SUITES}
"""All supported suites by identifier."""


def get_suite(suite: CipherSuite | int) -> CipherSuite:
    """Return the :class:`CipherSuite` for an identifier (or pass a suite through)."""
    if isinstance(suite, CipherSuite):
        return suite
    try:
        return SUITES[suite]
    except (KeyError, TypeError):
        raise UnsupportedCipherSuiteError(f"unsupported SFrame cipher suite {suite!r}") from None


# -- HKDF (RFC 5869) -----------------------------------------------------------


def hkdf_extract(algorithm: hashes.HashAlgorithm, salt: Buffer, ikm: Buffer) -> bytes:
    """HKDF-Extract: ``HMAC-Hash(salt, IKM)`` (an empty salt equals ``Nh`` zero bytes)."""
    mac = hmac.HMAC(bytes(salt) if salt else bytes(algorithm.digest_size), algorithm)
    mac.update(ikm)
    return mac.finalize()


def hkdf_expand(algorithm: hashes.HashAlgorithm, prk: Buffer, info: bytes, length: int) -> bytes:
    """HKDF-Expand(PRK, info, L)."""
    return HKDFExpand(algorithm, length, info).derive(prk)


# -- Key derivation (RFC 9605 section 4.4.2) ----------------------------------


def _check_kid(kid: int) -> None:
    if type(kid) is not int or not 0 <= kid <= MAX_VALUE:
        raise ConfigurationError(f"kid must be an integer in 0..2**64-1, got {kid!r}")


def key_label(suite: CipherSuite, kid: int) -> bytes:
    """``"SFrame 1.0 Secret key " + KID (8 bytes BE) + cipher_suite (2 bytes BE)``."""
    _check_kid(kid)
    return b"SFrame 1.0 Secret key " + kid.to_bytes(8, "big") + suite.id.to_bytes(2, "big")


def salt_label(suite: CipherSuite, kid: int) -> bytes:
    """``"SFrame 1.0 Secret salt " + KID (8 bytes BE) + cipher_suite (2 bytes BE)``."""
    _check_kid(kid)
    return b"SFrame 1.0 Secret salt " + kid.to_bytes(8, "big") + suite.id.to_bytes(2, "big")


def sframe_secret(suite: CipherSuite, base_key: Buffer) -> bytes:
    """``sframe_secret = HKDF-Extract("", base_key)`` with the suite's hash."""
    if len(base_key) == 0:
        raise ConfigurationError("base_key must not be empty")
    return hkdf_extract(suite.hash, b"", base_key)


def derive_key_salt(suite: CipherSuite, kid: int, base_key: Buffer) -> tuple[bytes, bytes]:
    """Return ``(sframe_key, sframe_salt)`` for ``kid`` (RFC 9605 section 4.4.2)."""
    secret = sframe_secret(suite, base_key)
    key = hkdf_expand(suite.hash, secret, key_label(suite, kid), suite.nk)
    salt = hkdf_expand(suite.hash, secret, salt_label(suite, kid), suite.nn)
    return key, salt


def form_nonce(suite: CipherSuite, salt: bytes, ctr: int) -> bytes:
    """``nonce = sframe_salt XOR encode_big_endian(CTR, Nn)`` (RFC 9605 section 4.4.3)."""
    return (int.from_bytes(salt, "big") ^ ctr).to_bytes(suite.nn, "big")


# -- AES-CTR + HMAC (RFC 9605 section 4.5.1) ----------------------------------


class AesCtrHmac:
    """The compound encrypt-then-MAC AEAD of RFC 9605 section 4.5.1.

    ``enc_key = key[:Nka]``, ``auth_key = key[Nka:]``; the tag is
    ``HMAC(auth_key, len(aad) || len(ct) || Nt || nonce || aad || ct)``
    (lengths as 8-byte big-endian) truncated to ``Nt`` bytes; AES-CTR starts
    at ``nonce || 0x00000000``.  ``decrypt`` raises
    :class:`AuthenticationError` on a bad or missing tag.
    """

    __slots__ = ("_aes", "_mac", "_nn", "_nt", "_tag_len", "auth_key", "enc_key")

    def __init__(self, suite: CipherSuite, key: bytes) -> None:
        if suite.nka is None:
            raise ConfigurationError(f"{suite.name} is not an AES-CTR+HMAC suite")
        if len(key) != suite.nk:
            raise ConfigurationError(f"{suite.name} needs a {suite.nk}-byte key, got {len(key)}")
        self.enc_key = bytes(key[: suite.nka])
        self.auth_key = bytes(key[suite.nka :])
        self._aes = algorithms.AES(self.enc_key)
        self._mac = hmac.HMAC(self.auth_key, suite.hash)
        self._nn = suite.nn
        self._nt = suite.nt
        self._tag_len = suite.nt.to_bytes(8, "big")

    def _tag(self, nonce: Buffer, aad: Buffer, ct: Buffer) -> bytes:
        mac = self._mac.copy()
        mac.update(
            len(aad).to_bytes(8, "big") + len(ct).to_bytes(8, "big") + self._tag_len + nonce
        )
        mac.update(aad)
        mac.update(ct)
        return mac.finalize()[: self._nt]

    def _ctr(self, nonce: Buffer, data: Buffer) -> bytes:
        ctx = Cipher(self._aes, modes.CTR(bytes(nonce) + b"\x00\x00\x00\x00")).encryptor()
        return ctx.update(data) + ctx.finalize()

    def encrypt(self, nonce: Buffer, data: Buffer, associated_data: Buffer | None) -> bytes:
        """``AEAD.Encrypt(key, nonce, aad, pt)``: returns ``ct || tag``."""
        if len(nonce) != self._nn:
            raise ConfigurationError(f"nonce must be {self._nn} bytes, got {len(nonce)}")
        aad = b"" if associated_data is None else associated_data
        ct = self._ctr(nonce, data)
        return ct + self._tag(nonce, aad, ct)

    def decrypt(self, nonce: Buffer, data: Buffer, associated_data: Buffer | None) -> bytes:
        """``AEAD.Decrypt(key, nonce, aad, ct)``: verifies the tag, returns the plaintext."""
        if len(nonce) != self._nn:
            raise ConfigurationError(f"nonce must be {self._nn} bytes, got {len(nonce)}")
        nt = self._nt
        if len(data) < nt:
            raise AuthenticationError(f"ciphertext shorter than the {nt}-byte tag")
        aad = b"" if associated_data is None else associated_data
        view = memoryview(data)
        inner = view[: len(view) - nt]
        if not constant_time.bytes_eq(self._tag(nonce, aad, inner), bytes(view[len(view) - nt :])):
            raise AuthenticationError("authentication tag mismatch")
        return self._ctr(nonce, inner)


__all__ = [
    "AES_128_CTR_HMAC_SHA256_32",
    "AES_128_CTR_HMAC_SHA256_64",
    "AES_128_CTR_HMAC_SHA256_80",
    "AES_128_GCM_SHA256_128",
    "AES_256_CTR_HMAC_SHA512_32",
    "AES_256_CTR_HMAC_SHA512_64",
    "AES_256_CTR_HMAC_SHA512_80",
    "AES_256_GCM_SHA512_128",
    "EXTENSION_SUITES",
    "RFC9605_SUITES",
    "SUITES",
    "Aead",
    "AesCtrHmac",
    "Buffer",
    "CipherSuite",
    "derive_key_salt",
    "form_nonce",
    "get_suite",
    "hkdf_expand",
    "hkdf_extract",
    "key_label",
    "salt_label",
    "sframe_secret",
]
