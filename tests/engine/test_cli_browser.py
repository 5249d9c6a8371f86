"""``clave meet`` / ``clave join`` in browser mode, as processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from typing import Any

import aiohttp
from engine_helpers import raw_request, run

CLI = [sys.executable, "-m", "clave.cli"]
OPEN = re.compile(r"^open: (http://127\.0\.0\.1:(\d+)/\?t=([A-Za-z0-9_-]+))$")


async def start(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI, *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


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


def test_meet_in_browser_mode_and_a_headless_guest() -> None:
    """``clave meet --no-browser``: prints the page and the link; the page's glass hosts,
    admits a ``clave join --headless`` guest from the lobby and sees the same code."""

    async def scenario() -> None:
        meet = await start("meet", "--no-browser", "--name", "Ada")
        guest: asyncio.subprocess.Process | None = None
        try:
            m = OPEN.match(await read_line(meet, "open: "))
            assert m is not None
            url, port, token = m.group(1), int(m.group(2)), m.group(3)
            link = (await read_line(meet, "link: ")).split(" ", 1)[1]
            assert "#" in link and link.startswith("http://127.0.0.1:")
            page = await raw_request(port, f"/?t={token}")
            assert page.status == 200 and b"<!doctype html" in page.body.lower()[:200]
            assert (await raw_request(port, "/")).status == 403
            origin = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(
                    f"{origin}/ws", origin=origin, headers={"Cookie": f"clave_t_{port}={token}"}
                )
                hello = await receive_until(ws, lambda o: o["type"] == "hello")
                assert hello[-1]["role"] == "host" and hello[-1]["link"] == link
                assert hello[-1]["default_name"] == "Ada"
                await ws.send_str(json.dumps({"type": "join", "name": "Ada"}))
                await receive_until(ws, lambda o: o["type"] == "padlock"
                                    and o["state"] == "encrypted")
                guest = await start("join", link, "--headless", "--name", "Linus",
                                    "--no-video", "--no-audio", "--duration", "1")
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
            assert url.endswith(token)
        finally:
            for proc in (meet, guest):
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    run(scenario(), timeout=40)


def test_without_a_display_the_browser_is_not_started() -> None:
    """No --no-browser but no display (CI): print the address, do not hang or crash."""

    async def scenario() -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        meet = await start("meet", "--duration", "1", env=env)
        out, err = await asyncio.wait_for(meet.communicate(), 20)
        text = out.decode()
        assert meet.returncode == 0, err.decode()
        assert re.search(r"^open: http://127\.0\.0\.1:\d+/\?t=\S+$", text, re.M)
        assert "no display found" in text

    run(scenario(), timeout=30)


def test_browser_mode_refuses_headless_only_options_and_bad_links() -> None:
    async def scenario() -> None:
        proc = await start("meet", "--chat", "hi", "--no-browser")
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 2 and b"--chat: only with --headless" in err
        proc = await start("join", "https://relay.example/m/nope", "--no-browser")
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 2 and err.startswith(b"clave: ")

    run(scenario(), timeout=30)
