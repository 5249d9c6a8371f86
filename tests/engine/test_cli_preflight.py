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
