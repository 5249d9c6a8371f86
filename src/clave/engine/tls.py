"""How the engine checks the relay's TLS certificate, and what it says when that fails.

:class:`RelayTrust` is the whole trust setting, passed from the command line down to
every connection to the relay (the preflight check, each WebSocket of a meeting):

* by default (:data:`SYSTEM_TRUST`) the certificate must chain to the system's CA store
  (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` are honoured; ``cafile`` names a bundle instead)
  and name the relay's host;
* pinned (``clave meet/join --relay-fingerprint``), exactly the certificate whose DER
  encoding has that SHA-256 digest is accepted, checked before a byte of HTTP is sent;
  CA and hostname checks are replaced by the pin (a self-signed relay).

:func:`tls_failure` turns a failed connection into one line; every line is a template
in :data:`MESSAGES`, so tests can assert exact text. Nothing here is secret: a
certificate fingerprint is public.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import ssl
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import urlsplit

import aiohttp

AiohttpSsl: TypeAlias = ssl.SSLContext | aiohttp.Fingerprint
"""What aiohttp takes as a request's ``ssl=`` argument (here: never "no checks")."""

FINGERPRINT_PREFIX = "sha256:"
FINGERPRINT_BYTES = 32
_HEX = re.compile(r"^[0-9a-f]{64}$")
_NO_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG",
     "RECORD_LAYER_FAILURE"}
)  # fmt: skip
"""OpenSSL's reasons when the server answered bytes that are not TLS (plain http)."""

# OpenSSL X509_V_ERR_* codes (ssl.SSLCertVerificationError.verify_code).
_NOT_YET_VALID = 9
_EXPIRED = 10
_SELF_SIGNED = 18
_UNKNOWN_ISSUER = frozenset({2, 19, 20, 21})
_HOSTNAME_MISMATCH = frozenset({62, 64})  # host name, IP address

MESSAGES: dict[str, str] = {
    "untrusted": (
        "the relay at {where} has a TLS certificate this computer does not trust (unknown "
        "issuer): give the relay a certificate from a public CA, or pin its certificate "
        "with --relay-fingerprint"
    ),
    "self_signed": (
        "the relay at {where} has a self-signed TLS certificate this computer does not "
        "trust: pin it with --relay-fingerprint (its operator has the fingerprint), or "
        "give the relay a certificate from a public CA"
    ),
    "hostname": (
        "the relay's TLS certificate is not for {host} (hostname mismatch): check the "
        "address, or the certificate the relay at {where} serves"
    ),
    "expired": (
        "the relay at {where} has an expired TLS certificate (or this computer's clock is wrong)"
    ),
    "not_yet_valid": (
        "the relay at {where} has a TLS certificate that is not valid yet (or this "
        "computer's clock is wrong)"
    ),
    "invalid": "the relay at {where} has a TLS certificate this computer refuses ({reason})",
    "pin_mismatch": (
        "the relay at {where} has TLS certificate {got}, not the pinned {expected} "
        "(--relay-fingerprint): not connecting"
    ),
    "no_tls": (
        "no TLS at {where}: the port answers, but not with https (a plain-http port?); "
        "a relay reached over the internet needs TLS in front of it"
    ),
    "handshake": "the TLS handshake with the relay at {where} failed ({reason})",
}
"""Every TLS failure line, by kind (``str.format`` templates)."""


def tls_message(kind: str, **fields: str) -> str:
    """The line :data:`MESSAGES` has for ``kind``, filled in."""
    return MESSAGES[kind].format(**fields)


def format_fingerprint(digest: bytes) -> str:
    """``sha256:AB:CD:...`` (the colon-separated upper-case hex ``openssl x509
    -fingerprint -sha256`` prints, with a ``sha256:`` prefix)."""
    return FINGERPRINT_PREFIX + ":".join(f"{b:02X}" for b in digest)


def certificate_fingerprint(der: bytes) -> str:
    """The formatted SHA-256 fingerprint of a DER-encoded certificate."""
    return format_fingerprint(hashlib.sha256(der).digest())


def parse_fingerprint(text: str) -> bytes:
    """The 32 bytes of a SHA-256 fingerprint: 64 hex digits in any case, colons and a
    ``sha256:`` (or openssl's ``sha256 Fingerprint=``) prefix optional; ValueError
    otherwise."""
    value = text.strip().lower()
    for prefix in ("sha256 fingerprint=", FINGERPRINT_PREFIX, "sha256="):
        if value.startswith(prefix):
            value = value[len(prefix) :]
            break
    value = value.replace(":", "")
    if not _HEX.match(value):
        raise ValueError(
            "expected a SHA-256 certificate fingerprint: 64 hex digits, colons and a "
            "sha256: prefix optional"
        )
    return bytes.fromhex(value)


@functools.lru_cache(maxsize=8)
def _verifying_context(cafile: str | None, env: tuple[str | None, str | None]) -> ssl.SSLContext:
    """A client context that checks CA and host name (``env``: SSL_CERT_FILE and
    SSL_CERT_DIR, which OpenSSL reads when the default store is loaded)."""
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(("http/1.1",))
    return context


@dataclass(frozen=True, slots=True)
class RelayTrust:
    """Which relay certificate the engine accepts: one pinned certificate, or any that
    chains to the CAs (``cafile``, or the system store) and names the relay's host."""

    pin: bytes | None = None
    """SHA-256 of the accepted certificate's DER encoding (None: CA verification)."""
    cafile: str | None = None
    """A PEM bundle of CAs to trust instead of the system store (ignored with a pin)."""

    def __post_init__(self) -> None:
        if self.pin is not None and len(self.pin) != FINGERPRINT_BYTES:
            raise ValueError("a pinned fingerprint is a SHA-256 digest (32 bytes)")

    @classmethod
    def pinned(cls, fingerprint: str) -> RelayTrust:
        """Trust exactly the certificate with this fingerprint (:func:`parse_fingerprint`)."""
        return cls(pin=parse_fingerprint(fingerprint))

    @property
    def fingerprint(self) -> str | None:
        """The pin as :func:`format_fingerprint` writes it."""
        return None if self.pin is None else format_fingerprint(self.pin)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context for CA verification (TLS 1.2 or later, host name checked)."""
        env = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        return _verifying_context(self.cafile, env)

    def aiohttp_ssl(self) -> AiohttpSsl:
        """The ``ssl=`` argument of an aiohttp request to the relay (unused for http)."""
        if self.pin is not None:
            return aiohttp.Fingerprint(self.pin)
        return self.ssl_context()


SYSTEM_TRUST = RelayTrust()
"""The default: the system's CAs (what a browser would accept)."""


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.replace("_", " ").lower()
    return type(exc).__name__


def tls_failure(where: str, exc: BaseException) -> str | None:
    """One line for a connection to ``where`` (``https://HOST[:PORT]``) that failed in
    TLS, or None if ``exc`` is not a TLS failure."""
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return tls_message(
            "pin_mismatch",
            where=where,
            got=format_fingerprint(exc.got),
            expected=format_fingerprint(exc.expected),
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        code = getattr(error, "verify_code", None)
        if code in _HOSTNAME_MISMATCH:
            host = urlsplit(where).hostname or where
            return tls_message("hostname", where=where, host=host)
        if code == _SELF_SIGNED:
            return tls_message("self_signed", where=where)
        if code in _UNKNOWN_ISSUER:
            return tls_message("untrusted", where=where)
        if code == _EXPIRED:
            return tls_message("expired", where=where)
        if code == _NOT_YET_VALID:
            return tls_message("not_yet_valid", where=where)
        reason = getattr(error, "verify_message", None) or _reason(error)
        return tls_message("invalid", where=where, reason=str(reason))
    if isinstance(exc, aiohttp.ClientSSLError):
        os_error = exc.os_error
        if getattr(os_error, "reason", None) in _NO_TLS_REASONS:
            return tls_message("no_tls", where=where)
        return tls_message("handshake", where=where, reason=_reason(os_error))
    secure = urlsplit(where).scheme in ("https", "wss")
    if (
        secure
        and isinstance(exc, aiohttp.ClientConnectorError)
        and isinstance(exc.os_error, ConnectionResetError | ssl.SSLError)
    ):
        return tls_message("handshake", where=where, reason="the relay closed the connection")
    return None


__all__ = [
    "MESSAGES",
    "SYSTEM_TRUST",
    "AiohttpSsl",
    "RelayTrust",
    "certificate_fingerprint",
    "format_fingerprint",
    "parse_fingerprint",
    "tls_failure",
    "tls_message",
]
