"""A dead or wrong relay is said before anything is shown (issue 10, requirement 6).

``clave meet --relay URL`` and ``clave join`` check the relay first: ``GET /healthz``
must answer the relay's ``ok`` and ``/ws`` must accept a WebSocket. Otherwise the
command prints one line on standard error and exits with status 3, before any
meeting page (no ``open:`` line, no launcher file) or headless join: no traceback,
no hang, no "meeting ended" for a meeting never joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from engine_helpers import run

from clave.engine.preflight import RelayUnusable, check_relay
from clave.meeting.errors import LinkError
from clave.meeting.link import new_link, relay_netloc
from clave.relay.server import start_relay

CLI = [sys.executable, "-m", "clave.cli"]
RELAY_UNUSABLE = 3
TIMEOUT = 30.0


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def web_server(
    routes: list[web.RouteDef], host: str = "127.0.0.1"
) -> AsyncIterator[int]:
    """A small aiohttp server that is not a Clave relay; yields its port."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def say(text: str, status: int = 200) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler that answers ``text``."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, status=status)

    return handler


async def clave(
    *args: str, runtime: Path, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """Run ``clave ARGS`` to its end: exit status, stdout, stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["XDG_RUNTIME_DIR"] = str(runtime)
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin or b""), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def assert_refused(result: tuple[int, str, str], runtime: Path, *needles: str) -> str:
    """Exit status 3, one line on stderr holding every needle, nothing shown or served."""
    code, out, err = result
    lines = err.splitlines()
    assert code == RELAY_UNUSABLE, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("clave: "), err
    assert "Traceback" not in err and "meeting ended" not in out + err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "open: " not in out and "invitation: " not in out and "joined as" not in out, out
    assert list(runtime.glob("clave/*.html")) == [], "a meeting page was offered"
    return lines[0]


def test_a_closed_port_is_said_before_anything_is_shown(tmp_path: Path) -> None:
    async def scenario() -> None:
        port = closed_port()
        base = f"http://127.0.0.1:{port}"
        for args in (
            ("meet", "--no-browser", "--relay", base),
            ("meet", "--headless", "--relay", base, "--duration", "1"),
        ):
            line = assert_refused(await clave(*args, runtime=tmp_path), tmp_path)
            assert line == (
                f"clave: nothing is listening at 127.0.0.1:{port} (connection refused): "
                "is the relay running?"
            )
        # A guest's invitation naming a relay that is down.
        link = new_link(base, os.urandom, os.urandom(32))
        for mode in ("--no-browser", "--headless"):
            result = await clave("join", mode, runtime=tmp_path, stdin=link.url.encode() + b"\n")
            assert_refused(result, tmp_path, f"127.0.0.1:{port}", "connection refused")
            assert link.url.split("#")[1] not in result[1] + result[2]  # never the secret

    run(scenario(), timeout=90)


def test_a_web_server_that_is_not_a_relay_is_named(tmp_path: Path) -> None:
    """Something answers, but not a Clave relay: a plain web site (404 at /healthz),
    one answering something else, and a relay behind a proxy that does not pass
    WebSocket upgrades (healthz fine, /ws not)."""

    async def scenario() -> None:
        async with web_server([web.get("/", say("<h1>My blog</h1>"))]) as port:
            result = await clave("meet", "--no-browser", "--relay", f"http://127.0.0.1:{port}",
                                 runtime=tmp_path)  # fmt: skip
            assert_refused(result, tmp_path, "is not a Clave relay", "HTTP 404")
        async with web_server([web.get("/healthz", say("healthy!"))]) as port:
            link = new_link(f"http://127.0.0.1:{port}", os.urandom, os.urandom(32))
            result = await clave("join", "--no-browser", runtime=tmp_path,
                                 stdin=link.url.encode() + b"\n")  # fmt: skip
            assert_refused(result, tmp_path, "is not a Clave relay", "something else")
        async with web_server([
            web.get("/healthz", say("ok")),
            web.get("/ws", say("no upgrades here", 400)),
        ]) as port:  # fmt: skip
            result = await clave("meet", "--headless", "--relay", f"http://127.0.0.1:{port}",
                                 runtime=tmp_path)  # fmt: skip
            assert_refused(result, tmp_path, "refused the upgrade (HTTP 400)", "WebSocket")

    run(scenario(), timeout=90)


def _non_loopback_name() -> str | None:
    """A name of this machine that resolves to one of its addresses but that an invitation
    does not treat as loopback (so Clave insists on https for it), or None."""
    name = socket.gethostname().lower()
    try:
        address = socket.gethostbyname(name)
        relay_netloc(f"https://{name}")  # a name Clave accepts, reached with TLS
    except (OSError, LinkError):
        return None
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return None
    return name


def test_https_to_a_plain_http_port_is_named(tmp_path: Path) -> None:
    """``https://`` to a port that speaks plain http: the TLS handshake fails, and the
    line says so (the check itself, then the command with a non-loopback name)."""

    async def scenario() -> None:
        async with web_server([web.get("/healthz", say("ok"))], host="0.0.0.0") as port:
            with pytest.raises(RelayUnusable, match=r"no TLS at https://127\.0\.0\.1"):
                await check_relay(f"https://127.0.0.1:{port}", f"wss://127.0.0.1:{port}/ws")
            name = _non_loopback_name()
            if name is None:
                pytest.skip("this machine has no non-loopback name to reach itself by")
            result = await clave("meet", "--no-browser", "--relay", f"https://{name}:{port}",
                                 runtime=tmp_path)  # fmt: skip
            assert_refused(result, tmp_path, f"no TLS at https://{name}:{port}", "plain-http")

    run(scenario(), timeout=60)


def test_a_silent_port_times_out_and_a_real_relay_passes() -> None:
    """A port that accepts and never answers is a bounded wait, not a hang; a real
    relay passes both checks."""

    async def scenario() -> None:
        accepted: list[asyncio.StreamWriter] = []

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # keep it open, say nothing

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(RelayUnusable, match="no answer from the relay") as caught:
                await check_relay(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws",
                                  timeout=0.5)  # fmt: skip
            assert accepted, "the check never reached the silent port"
            assert "\n" not in str(caught.value)
        finally:
            for writer in accepted:
                writer.close()
            server.close()
            await server.wait_closed()
        runner, relay_port = await start_relay("127.0.0.1", 0)
        try:
            base = f"http://127.0.0.1:{relay_port}"
            await check_relay(base, f"ws://127.0.0.1:{relay_port}/ws")
        finally:
            await runner.cleanup()

    run(scenario(), timeout=30)


# ---------------------------------------------------------------------- TLS

USAGE = 2


def _usage_error(result: tuple[int, str, str], expected: str) -> None:
    """Exit status 2 and exactly ``expected`` as the one line on standard error."""
    code, out, err = result
    assert code == USAGE, (code, out, err)
    assert err.splitlines() == [f"clave: {expected}"], err
    assert "Traceback" not in err and "relay listening" not in out


def test_serve_says_in_one_line_what_is_wrong_with_its_certificate(tmp_path: Path) -> None:
    """Missing files, a key that is not the certificate's, both or neither: one line,
    status 2, nothing served."""
    from clave.cli.serve import self_signed_pem

    cert_pem, key_pem = self_signed_pem("127.0.0.1")
    cert, key, other = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "other.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    other.write_bytes(self_signed_pem("127.0.0.1")[1])
    missing = tmp_path / "missing.pem"

    async def scenario() -> None:
        serve = ("serve", "--port", "0")
        _usage_error(
            await clave(*serve, "--tls-cert", str(missing), "--tls-key", "x", runtime=tmp_path),
            f"--tls-cert: cannot read {missing}: No such file or directory",
        )
        mismatched = ("--tls-cert", str(cert), "--tls-key", str(other))
        _usage_error(
            await clave(*serve, *mismatched, runtime=tmp_path),
            f"--tls-key: {other} is not the private key of the certificate in {cert}",
        )
        _usage_error(
            await clave(*serve, "--tls-cert", str(cert), runtime=tmp_path),
            "--tls-cert and --tls-key go together: give both",
        )
        _usage_error(
            await clave(*serve, "--self-signed", "--tls-key", str(key), runtime=tmp_path),
            "--self-signed makes its own certificate: not with --tls-cert/--tls-key",
        )
        _usage_error(
            await clave(*serve, "--trusted-proxy", "proxy.example", runtime=tmp_path),
            "--trusted-proxy: not an IP address or network: 'proxy.example'",
        )

    run(scenario(), timeout=60)


def test_a_malformed_or_pointless_pin_is_a_usage_error(tmp_path: Path, live_relay: str) -> None:
    async def scenario() -> None:
        link = new_link(live_relay, os.urandom, os.urandom(32))
        result = await clave("join", "--headless", "--relay-fingerprint", "WRONG",
                             runtime=tmp_path, stdin=link.url.encode() + b"\n")  # fmt: skip
        _usage_error(
            result,
            "--relay-fingerprint: expected a SHA-256 certificate fingerprint: 64 hex digits, "
            "colons and a sha256: prefix optional",
        )
        result = await clave("meet", "--headless", "--relay", live_relay,
                             "--relay-fingerprint", "ab" * 32, runtime=tmp_path)  # fmt: skip
        _usage_error(
            result,
            f"--relay-fingerprint: the relay at {live_relay} is reached without TLS, so there "
            "is no certificate to pin",
        )

    run(scenario(), timeout=60)


def test_a_self_signed_relay_needs_its_exact_pin(tmp_path: Path) -> None:
    """A relay with a ``--self-signed`` certificate: without a pin, and with a wrong one,
    ``join`` and ``meet`` stop with the exact line and status 3 before anything is shown
    (the pin is checked before any HTTP is sent); with the right pin, the check passes."""
    import ssl

    from clave.cli.serve import self_signed_pem
    from clave.engine.tls import RelayTrust, certificate_fingerprint, tls_message
    from clave.relay.tls import server_context

    name = _non_loopback_name()
    if name is None:
        pytest.skip("this machine has no non-loopback name to reach itself by")
    address = socket.gethostbyname(name)
    cert_pem, key_pem = self_signed_pem(address)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    context = server_context(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    real = certificate_fingerprint(ssl.PEM_cert_to_DER_cert(cert_pem.decode()))
    wrong = "sha256:" + ":".join(["5A"] * 32)

    async def scenario() -> None:
        runner, port = await start_relay(address, 0, None, context)
        try:
            base = f"https://{name}:{port}"
            link = new_link(base, os.urandom, os.urandom(32))
            invitation = link.url.encode() + b"\n"
            result = await clave("join", "--headless", "--relay-fingerprint", wrong,
                                 runtime=tmp_path, stdin=invitation)  # fmt: skip
            line = assert_refused(result, tmp_path)
            assert line == "clave: " + tls_message(
                "pin_mismatch", where=base, got=real, expected=wrong
            )
            result = await clave("meet", "--no-browser", "--relay", base,
                                 "--relay-fingerprint", wrong, runtime=tmp_path)  # fmt: skip
            assert assert_refused(result, tmp_path) == line
            result = await clave("join", "--no-browser", runtime=tmp_path, stdin=invitation)
            line = assert_refused(result, tmp_path)
            assert line == "clave: " + tls_message("self_signed", where=base)
            await check_relay(base, link.relay_url, trust=RelayTrust.pinned(real))
        finally:
            await runner.cleanup()

    run(scenario(), timeout=90)


def test_serve_options_make_the_relay_config_and_a_self_signed_certificate() -> None:
    """``--trusted-proxy`` and ``--set`` reach the relay's settings; ``--self-signed``
    names the bound address, localhost and the loopback addresses, for a short time."""
    import datetime
    import ipaddress

    from cryptography import x509

    from clave.cli import parser
    from clave.cli.serve import SELF_SIGNED_DAYS, _config, self_signed_pem

    args = parser().parse_args(
        ["serve", "--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/8",
         "--set", "max_rooms=5", "--heartbeat", "2"]
    )  # fmt: skip
    config = _config(args)
    assert config is not None
    assert config.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert (config.max_rooms, config.heartbeat) == (5, 2.0)
    assert _config(parser().parse_args(["serve"])) is None

    cert = x509.load_pem_x509_certificate(self_signed_pem("192.0.2.7")[0])
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address(a) for a in ("192.0.2.7", "127.0.0.1", "::1")
    }
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=SELF_SIGNED_DAYS, minutes=5)
    named = x509.load_pem_x509_certificate(self_signed_pem("relay.test")[0])
    sans = named.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "relay.test"]
