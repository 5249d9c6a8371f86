"""The relay over TLS, and how an engine checks its certificate.

A relay runs in-process with a server context (``start_relay(..., ssl_context)``) and
a certificate from a throwaway CA (:mod:`tls_helpers`). The engine's preflight and its
WebSocket accept it when the CA is trusted (``SSL_CERT_FILE`` or the trust object's
``cafile``) or when the exact certificate is pinned, and otherwise fail with one of
the exact lines of :data:`clave.engine.tls.MESSAGES`.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from relay_helpers import run
from tls_helpers import Issued, TestCA, encrypted_key, other_key

from clave.engine.connection import RelayConnection, RelayConnectionError
from clave.engine.preflight import RelayUnusable, check_relay
from clave.engine.tls import (
    MESSAGES,
    SYSTEM_TRUST,
    RelayTrust,
    format_fingerprint,
    parse_fingerprint,
    tls_message,
)
from clave.relay.server import start_relay
from clave.relay.tls import TLSSetupError, server_context


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def good(ca: TestCA) -> Issued:
    return ca.issue("good", ["127.0.0.1", "localhost"])


@contextlib.asynccontextmanager
async def tls_relay(issued: Issued, context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """A relay on 127.0.0.1 serving ``issued`` over TLS; yields ``https://127.0.0.1:PORT``."""
    context = context or server_context(str(issued.cert), str(issued.key))
    runner, port = await start_relay("127.0.0.1", 0, None, context)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def ws(base: str) -> str:
    return "wss" + base.removeprefix("https") + "/ws"


async def refusal(base: str, trust: RelayTrust | None = None) -> str:
    """The one line the preflight of ``base`` fails with."""
    with pytest.raises(RelayUnusable) as caught:
        await check_relay(base, ws(base), trust=trust, timeout=5)
    line = str(caught.value)
    assert "\n" not in line
    return line


# ---------------------------------------------------------------------- accepted


def test_a_relay_certificate_from_a_trusted_ca_passes(ca: TestCA, good: Issued) -> None:
    """The CA given to the trust object; the WebSocket of a meeting opens too."""

    async def scenario() -> None:
        trust = RelayTrust(cafile=str(ca.pem))
        async with tls_relay(good) as base:
            await check_relay(base, ws(base), trust=trust)
            await check_relay(base.replace("127.0.0.1", "localhost"), ws(base), trust=trust)
            conn = RelayConnection(ws(base), trust=trust)
            await conn.open()
            assert not conn.closed
            await conn.close()

    run(scenario())


def test_ssl_cert_file_is_honoured_by_the_default_trust(
    ca: TestCA, good: Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a pin the system store is used, and OpenSSL's SSL_CERT_FILE names it."""

    async def scenario() -> str:
        async with tls_relay(good) as base:
            line = await refusal(base)
            monkeypatch.setenv("SSL_CERT_FILE", str(ca.pem))
            await check_relay(base, ws(base))  # no trust given: SYSTEM_TRUST
            await check_relay(base, ws(base), trust=SYSTEM_TRUST)
            return line

    line = run(scenario())
    assert line.startswith("the relay at https://127.0.0.1:")


def test_the_right_pin_passes_on_a_self_signed_certificate(ca: TestCA) -> None:
    """A pin replaces CA and host-name checks: a self-signed certificate for another name."""
    issued = ca.issue("pinned", ["relay.invalid"], self_signed=True)

    async def scenario() -> None:
        trust = RelayTrust.pinned(format_fingerprint(issued.digest))
        async with tls_relay(issued) as base:
            await check_relay(base, ws(base), trust=trust)
            conn = RelayConnection(ws(base), trust=trust)
            await conn.open()
            await conn.close()

    run(scenario())


# ---------------------------------------------------------------------- refused


def test_an_unknown_ca_is_one_exact_line(good: Issued) -> None:
    async def scenario() -> tuple[str, str]:
        async with tls_relay(good) as base:
            return base, await refusal(base, RelayTrust())

    base, line = run(scenario())
    assert line == tls_message("untrusted", where=base)
    assert line.startswith(f"the relay at {base} has a TLS certificate this computer does not")


def test_a_self_signed_certificate_without_a_pin_is_one_exact_line(ca: TestCA) -> None:
    issued = ca.issue("self", ["127.0.0.1"], self_signed=True)

    async def scenario() -> tuple[str, str]:
        async with tls_relay(issued) as base:
            return base, await refusal(base, RelayTrust(cafile=str(ca.pem)))

    base, line = run(scenario())
    assert line == tls_message("self_signed", where=base)
    assert "--relay-fingerprint" in line


def test_a_hostname_mismatch_is_one_exact_line(ca: TestCA) -> None:
    """Signed by the trusted CA, but for other names (by address and by name)."""
    issued = ca.issue("elsewhere", ["relay.invalid", "10.0.0.1"])
    for_address_only = ca.issue("address-only", ["127.0.0.1"])
    trust = RelayTrust(cafile=str(ca.pem))

    async def scenario() -> list[tuple[str, str]]:
        lines = []
        async with tls_relay(issued) as base:
            lines.append((base, await refusal(base, trust)))
        async with tls_relay(for_address_only) as base:
            by_name = base.replace("127.0.0.1", "localhost")
            lines.append((by_name, await refusal(by_name, trust)))
        return lines

    (first, line1), (second, line2) = run(scenario())
    assert line1 == tls_message("hostname", host="127.0.0.1", where=first)
    assert line2 == tls_message("hostname", host="localhost", where=second)
    assert line2.startswith("the relay's TLS certificate is not for localhost (hostname mismatch)")


def test_an_expired_certificate_is_one_exact_line(ca: TestCA) -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    issued = ca.issue("expired", ["127.0.0.1"], not_after=past)

    async def scenario() -> tuple[str, str]:
        async with tls_relay(issued) as base:
            return base, await refusal(base, RelayTrust(cafile=str(ca.pem)))

    base, line = run(scenario())
    assert line == tls_message("expired", where=base)


def test_a_pin_mismatch_names_both_fingerprints(ca: TestCA, good: Issued) -> None:
    """Even a certificate the CAs accept is refused when another one is pinned; the
    WebSocket of a meeting says the same line."""
    wanted = bytes(range(32))
    trust = RelayTrust(pin=wanted, cafile=str(ca.pem))

    async def scenario() -> tuple[str, str, str]:
        async with tls_relay(good) as base:
            line = await refusal(base, trust)
            conn = RelayConnection(ws(base), trust=trust)
            with pytest.raises(RelayConnectionError) as caught:
                await conn.open()
            return base, line, str(caught.value)

    base, line, ws_line = run(scenario())
    got, expected = format_fingerprint(good.digest), format_fingerprint(wanted)
    assert line == tls_message("pin_mismatch", where=base, got=got, expected=expected)
    assert line == (
        f"the relay at {base} has TLS certificate {got}, not the pinned {expected} "
        "(--relay-fingerprint): not connecting"
    )
    assert ws_line == tls_message("pin_mismatch", where=ws(base), got=got, expected=expected)


def test_https_to_a_plain_http_relay_is_one_exact_line() -> None:
    async def scenario() -> tuple[str, str]:
        runner, port = await start_relay("127.0.0.1", 0)
        try:
            base = f"https://127.0.0.1:{port}"
            return base, await refusal(base)
        finally:
            await runner.cleanup()

    base, line = run(scenario())
    assert line == tls_message("no_tls", where=base)


def test_a_failed_handshake_is_one_line(ca: TestCA, good: Issued) -> None:
    """A relay that offers no cipher suite the engine takes (an RSA-only suite for an EC
    key, TLS 1.2 at most): the handshake fails."""
    context = server_context(str(good.cert), str(good.key))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")

    async def scenario() -> tuple[str, str]:
        async with tls_relay(good, context) as base:
            return base, await refusal(base, RelayTrust(cafile=str(ca.pem)))

    base, line = run(scenario())
    prefix = MESSAGES["handshake"].split("{reason}")[0].format(where=base)
    assert line.startswith(prefix) and line.endswith(")"), line


def test_a_refused_handshake_leaves_nothing_in_the_relays_logs(
    good: Issued, caplog: pytest.LogCaptureFixture
) -> None:
    """Clients that reject the certificate or speak plain http: the relay logs nothing
    about them (no address, no warning)."""

    async def scenario() -> None:
        async with tls_relay(good) as base:
            for _ in range(3):
                await refusal(base, RelayTrust())
                await refusal(base.replace("https", "http"))

    with caplog.at_level(logging.DEBUG):
        run(scenario())
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or "127.0.0.1" in r.message]
    assert noisy == []


# ---------------------------------------------------------------------- fingerprints


def test_a_fingerprint_is_read_with_or_without_prefix_and_colons() -> None:
    digest = bytes(range(0xA0, 0xC0))
    text = format_fingerprint(digest)
    assert text.startswith("sha256:A0:A1:") and len(text) == len("sha256:") + 32 * 3 - 1
    for variant in (
        text,
        text.lower(),
        text.removeprefix("sha256:"),
        text.removeprefix("sha256:").replace(":", ""),
        " SHA256:" + digest.hex() + "\n",
        "sha256 Fingerprint=" + text.removeprefix("sha256:"),  # openssl x509 -fingerprint
    ):
        assert parse_fingerprint(variant) == digest, variant
    for bad in ("", "WRONG", "sha1:" + digest.hex(), digest.hex()[:-2], digest.hex() + "00"):
        with pytest.raises(ValueError, match="64 hex digits"):
            parse_fingerprint(bad)


# ---------------------------------------------------------------------- relay side


def test_server_context_files_are_checked_in_one_line(
    ca: TestCA, good: Issued, tmp_path: Path
) -> None:
    cert, key = str(good.cert), str(good.key)
    context = server_context(cert, key)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    missing = str(tmp_path / "missing.pem")
    wrong_key = str(other_key(tmp_path))
    locked = str(encrypted_key(tmp_path))
    cases = {
        (missing, key): f"--tls-cert: cannot read {missing}: No such file or directory",
        (cert, missing): f"--tls-key: cannot read {missing}: No such file or directory",
        (key, key): f"--tls-cert: {key} holds no PEM certificate",
        (cert, cert): f"--tls-key: {cert} holds no PEM private key",
        (cert, wrong_key): f"--tls-key: {wrong_key} is not the private key of the "
        f"certificate in {cert}",
        (cert, locked): f"--tls-key: {locked} is encrypted; give the relay the key without "
        "a passphrase (a file only the relay's user can read)",
    }
    for (c, k), expected in cases.items():
        with pytest.raises(TLSSetupError) as caught:
            server_context(c, k)
        assert str(caught.value) == expected
