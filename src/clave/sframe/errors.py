"""Typed errors of the SFrame layer (RFC 9605).

Every failure of :mod:`clave.sframe` raises a subclass of :class:`SFrameError`
whose message says what was wrong (with the KID and CTR where known).  In
particular ``unprotect`` raises nothing but :class:`SFrameError` subclasses on
any input.
"""

from __future__ import annotations


class SFrameError(Exception):
    """Base class of every error raised by :mod:`clave.sframe`."""


class ConfigurationError(SFrameError, ValueError):
    """Invalid argument when configuring keys, suites or windows (API misuse)."""


class UnsupportedCipherSuiteError(ConfigurationError):
    """Unknown cipher suite identifier (RFC 9605 section 8.1)."""


class InvalidInputError(SFrameError, TypeError):
    """A ciphertext, metadata or plaintext argument is not a bytes-like object."""


class HeaderError(SFrameError):
    """Truncated, non-minimal or out-of-range SFrame header (RFC 9605 section 4.3)."""


class UnknownKeyError(SFrameError):
    """No usable key for the KID (never provisioned, expired or retired)."""


class AuthenticationError(SFrameError):
    """AEAD authentication failed (RFC 9605 section 4.4.4): ciphertext discarded."""


class ReplayError(SFrameError):
    """The (KID, CTR) pair was already accepted (RFC 9605 sections 7.4, 9.3)."""


class CounterOutOfWindowError(ReplayError):
    """The CTR is older than the receiver's replay window."""


class CounterExhaustedError(SFrameError):
    """The sender's CTR for a KID is used up; encrypting again would reuse a nonce."""


__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "CounterExhaustedError",
    "CounterOutOfWindowError",
    "HeaderError",
    "InvalidInputError",
    "ReplayError",
    "SFrameError",
    "UnknownKeyError",
    "UnsupportedCipherSuiteError",
]
