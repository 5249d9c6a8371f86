"""The relay's own TLS: a server-side :class:`ssl.SSLContext` from PEM files.

``clave serve --tls-cert FILE --tls-key FILE`` serves https and wss directly
(TLS 1.2 or later); :func:`server_context` checks the files first, so every
mistake is one line (:class:`TLSSetupError`) instead of OpenSSL's "PEM lib". Only
the standard library's :mod:`ssl` is used: the relay imports no crypto package.
The key is read once, by OpenSSL, and never logged or kept elsewhere.
"""

from __future__ import annotations

import ssl

CERT_MARKER = b"-----BEGIN CERTIFICATE-----"
KEY_MARKER = b"PRIVATE KEY-----"
_READ_LIMIT = 1 << 20
"""A certificate chain or key file larger than this is not one."""


class TLSSetupError(Exception):
    """The certificate or key cannot be used; the message is one line for the operator."""


class _EncryptedKey(Exception):
    """OpenSSL asked for the key's passphrase."""


def _no_passphrase() -> str:
    raise _EncryptedKey


def _read(path: str, option: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(_READ_LIMIT)
    except OSError as exc:
        raise TLSSetupError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context serving ``cert_file`` (PEM: the certificate, then any
    intermediates, e.g. Let's Encrypt's ``fullchain.pem``) with ``key_file`` (PEM,
    unencrypted, e.g. ``privkey.pem``)."""
    if CERT_MARKER not in _read(cert_file, "--tls-cert"):
        raise TLSSetupError(f"--tls-cert: {cert_file} holds no PEM certificate")
    if KEY_MARKER not in _read(key_file, "--tls-key"):
        raise TLSSetupError(f"--tls-key: {key_file} holds no PEM private key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(("http/1.1",))
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except _EncryptedKey:
        raise TLSSetupError(
            f"--tls-key: {key_file} is encrypted; give the relay the key without a "
            "passphrase (a file only the relay's user can read)"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TLSSetupError(
                f"--tls-key: {key_file} is not the private key of the certificate in {cert_file}"
            ) from None
        detail = exc.reason.replace("_", " ").lower() if exc.reason else "unreadable PEM"
        raise TLSSetupError(
            f"--tls-cert/--tls-key: cannot use {cert_file} with {key_file} ({detail})"
        ) from None
    except OSError as exc:
        raise TLSSetupError(
            f"--tls-cert/--tls-key: cannot read {cert_file} or {key_file}: {exc.strerror or exc}"
        ) from None
    return context


__all__ = ["TLSSetupError", "server_context"]
