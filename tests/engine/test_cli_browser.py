"""``clave meet`` / ``clave join`` in browser mode, as processes.

The documented flow: ``clave meet --no-browser`` prints ``open: file://…`` (a 0600
launcher file whose meta refresh holds the one-time page address), then the
``clave://`` invitation and the relay's secret-free page for invitees. A guest's
``clave join`` reads the invitation from standard input, never from its arguments.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from engine_helpers import raw_request, run

from clave.engine.launcher import read_target
from clave.meeting.link import b64url_encode, parse_link

CLI = [sys.executable, "-m", "clave.cli"]
OPEN = re.compile(r"^open: (file:///\S+)$")
TARGET = re.compile(r"http://127\.0\.0\.1:(\d+)/\?t=([A-Za-z0-9_-]+)")
SET_COOKIE = re.compile(r"^(clave_t_\d+)=([A-Za-z0-9_-]{40,}); HttpOnly; SameSite=Strict; Path=/$")
WEB_PAGE = "web page for invitees (no secret): "


async def start(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> asyncio.subprocess.Process:
    """``clave ARGS``; with ``stdin``, those bytes are its standard input (then EOF)."""
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        await proc.stdin.drain()
        proc.stdin.close()
    return proc


async def read_line(proc: asyncio.subprocess.Process, prefix: str) -> str:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode().rstrip("\n")
        if not line:
            raise AssertionError(f"no {prefix!r} line before end of output")
        if line.startswith(prefix):
            return line


async def receive_until(ws: aiohttp.ClientWebSocketResponse, check: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while True:
        try:
            msg = await asyncio.wait_for(ws.receive(), 15)
        except TimeoutError:
            raise AssertionError(f"timed out; saw {seen[-6:]}") from None
        if msg.type != aiohttp.WSMsgType.TEXT:
            if msg.type == aiohttp.WSMsgType.BINARY:
                continue
            raise AssertionError(f"glass connection ended: {msg.type!r}; saw {seen[-5:]}")
        obj = json.loads(msg.data)
        seen.append(obj)
        if check(obj):
            return seen


def launcher_path(line: str) -> Path:
    m = OPEN.match(line)
    assert m is not None, line
    return Path(unquote(urlsplit(m.group(1)).path))


def test_meet_in_browser_mode_and_a_headless_guest() -> None:
    """``clave meet --no-browser``: prints the launcher file, the invitation and the page for
    invitees; the launcher's one-time address is traded for the session cookie; the page's
    glass hosts, admits a ``clave join --headless`` guest (invitation on stdin) from the
    lobby and sees the same code."""

    async def scenario() -> None:
        meet = await start("meet", "--no-browser", "--name", "Ada")
        guest: asyncio.subprocess.Process | None = None
        try:
            launcher = launcher_path(await read_line(meet, "open: "))
            assert launcher.stat().st_mode & 0o777 == 0o600
            tm = TARGET.fullmatch(read_target(launcher))
            assert tm is not None
            port, token = int(tm.group(1)), tm.group(2)
            invitation = (await read_line(meet, "invitation: ")).split(" ", 1)[1]
            info_url = (await read_line(meet, WEB_PAGE))[len(WEB_PAGE):]
            link = parse_link(invitation)
            assert invitation.startswith("clave://127.0.0.1:") and link.url == invitation
            assert info_url == link.info_url == f"{link.base_url}/m/{link.room_id}"
            assert "#" not in info_url and b64url_encode(link.secret) not in info_url

            # The one-time address: a hop page and the session cookie, then it is dead.
            hop = await raw_request(port, f"/?t={token}")
            assert hop.status == 200 and b"<script" not in hop.body
            cookie = SET_COOKIE.match(hop.headers["set-cookie"])
            assert cookie is not None and cookie.group(1) == f"clave_t_{port}"
            session = {"Cookie": f"{cookie.group(1)}={cookie.group(2)}"}
            assert (await raw_request(port, f"/?t={token}")).status == 403
            assert (await raw_request(port, "/")).status == 403
            page = await raw_request(port, "/", session)
            assert page.status == 200 and b"<!doctype html" in page.body.lower()[:200]

            origin = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(f"{origin}/ws", origin=origin, headers=session)
                hello = (await receive_until(ws, lambda o: o["type"] == "hello"))[-1]
                assert hello["role"] == "host" and hello["link"] == invitation
                assert hello["info_url"] == info_url and hello["default_name"] == "Ada"
                assert "fingerprint" in hello
                await ws.send_str(json.dumps({"type": "join", "name": "Ada"}))
                seen = await receive_until(
                    ws, lambda o: o["type"] == "padlock" and o["state"] == "encrypted"
                )
                state = [o for o in seen if o["type"] == "state"][-1]
                assert state["phase"] == "in_meeting" and state["link"] == invitation
                assert [e["role"] for e in state["roster"]] == ["owner"]
                guest = await start(
                    "join", "--headless", "--name", "Linus", "--no-video", "--no-audio",
                    "--duration", "1", stdin=invitation.encode() + b"\n",
                )
                seen = await receive_until(ws, lambda o: o["type"] == "state" and o["lobby"])
                request = seen[-1]["lobby"][0]
                assert request["name"] == "Linus"
                await ws.send_str(json.dumps({"type": "admit", "id": request["id"]}))
                joined = await read_line(guest, "joined as Linus; security code ")
                code = joined.split("security code ", 1)[1]
                await receive_until(ws, lambda o: o["type"] == "state"
                                    and o["security_code"] == code and len(o["roster"]) == 2)
                assert await asyncio.wait_for(guest.wait(), 15) == 0
                await receive_until(ws, lambda o: o["type"] == "state" and len(o["roster"]) == 1)
                await ws.close()
            meet.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(meet.wait(), 10) == 0
            assert not launcher.exists()  # removed when the engine stopped
        finally:
            for proc in (meet, guest):
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    run(scenario(), timeout=40)


def test_without_a_display_the_browser_is_not_started() -> None:
    """No --no-browser but no display (CI): print the launcher, do not hang or crash."""

    async def scenario() -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        meet = await start("meet", "--duration", "1", env=env)
        out, err = await asyncio.wait_for(meet.communicate(), 20)
        text = out.decode()
        assert meet.returncode == 0, err.decode()
        assert re.search(r"^open: file:///\S+\.html$", text, re.M)
        assert "?t=" not in text  # the page's token is only in the launcher file
        assert re.search(r"^invitation: clave://127\.0\.0\.1:\d+/m/\S+#\S+$", text, re.M)
        assert "no display found" in text

    run(scenario(), timeout=30)


def test_browser_mode_refuses_headless_only_options_and_bad_links() -> None:
    async def scenario() -> None:
        proc = await start("meet", "--chat", "hi", "--no-browser")
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 2 and b"--chat: only with --headless" in err
        # An invitation (or anything) as an argument is refused: argv is public.
        proc = await start("join", "https://relay.example/m/nope", "--no-browser")
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 2 and err.startswith(b"clave: refusing an invitation")
        # On stdin: the relay's web address is not an invitation; nor is junk.
        for text, why in (
            (b"https://relay.example/m/nope#x\n", b"this is a web address"),
            (b"clave://relay.example/m/nope#x\n", b"clave: "),
        ):
            proc = await start("join", "--no-browser", stdin=text)
            _, err = await asyncio.wait_for(proc.communicate(), 20)
            assert proc.returncode == 2 and err.startswith(b"clave: ") and why in err, err

    run(scenario(), timeout=30)


async def open_page(meet: asyncio.subprocess.Process) -> tuple[str, dict[str, str]]:
    """Follow ``meet``'s launcher as a browser would: the page's origin and its cookie."""
    launcher = launcher_path(await read_line(meet, "open: "))
    tm = TARGET.fullmatch(read_target(launcher))
    assert tm is not None
    port, token = int(tm.group(1)), tm.group(2)
    hop = await raw_request(port, f"/?t={token}")
    cookie = SET_COOKIE.match(hop.headers["set-cookie"])
    assert cookie is not None
    return f"http://127.0.0.1:{port}", {"Cookie": f"{cookie.group(1)}={cookie.group(2)}"}


def test_the_page_outlives_the_meeting_and_the_engine_stops_with_its_tab() -> None:
    """Browser mode: after Leave the engine still serves the page, which can rejoin
    (the owner, alone, starts its meeting again); once the tab is closed past the
    grace (0 here) with the meeting over, the engine says so and exits by itself."""

    async def scenario() -> None:
        meet = await start("meet", "--no-browser", "--name", "Ada", "--tab-grace", "0")
        try:
            origin, session = await open_page(meet)
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(f"{origin}/ws", origin=origin, headers=session)
                await receive_until(ws, lambda o: o["type"] == "hello")
                for _ in range(2):  # join, leave, then the same again (a rejoin)
                    await ws.send_str(json.dumps({"type": "join", "name": "Ada"}))
                    await receive_until(
                        ws, lambda o: o["type"] == "padlock" and o["state"] == "encrypted"
                    )
                    await ws.send_str(json.dumps({"type": "leave"}))
                    seen = await receive_until(
                        ws, lambda o: o["type"] == "state" and o["phase"] == "ended"
                    )
                    assert seen[-1]["rejoin"] == "restart"
                    assert meet.returncode is None  # still serving the page
                await ws.close()
            assert await asyncio.wait_for(meet.wait(), 20) == 0
            assert meet.stdout is not None
            rest = (await meet.stdout.read()).decode()
            ended = re.findall(r"^meeting ended: you left the meeting", rest, re.M)
            assert len(ended) == 2, rest
            assert rest.rstrip().endswith("the meeting's page was closed: stopping"), rest
        finally:
            if meet.returncode is None:
                meet.kill()
                await meet.wait()

    run(scenario(), timeout=60)
