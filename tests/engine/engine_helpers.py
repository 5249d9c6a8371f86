"""Helpers for engine tests: raw HTTP requests and a scripted glass.

Tests are plain functions that call :func:`run` on a scenario coroutine
(no pytest plugin needed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import WSMsgType

from bounded_run import run as bounded_run
from clave.engine.ui_server import UIServer
from clave.media import OpusEncoder, TestPatternSource, ToneSource, VideoEncoder

T = TypeVar("T")
Json = dict[str, Any]

AUDIO, VIDEO = 0, 1
ENGINE_FRAME = struct.Struct(">BBIQ")
GLASS_CHUNK = struct.Struct(">BBQ")


def run(scenario: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run one scenario in a fresh event loop, failing after ``timeout`` seconds."""
    return bounded_run(scenario, timeout)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def raw_request(
    port: int,
    target: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
    host: str | None = "default",
    version: str = "HTTP/1.1",
) -> RawResponse:
    """Send exactly this request line and these headers (no client-side normalization)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {target} {version}"]
    if host == "default":
        lines.append(f"Host: 127.0.0.1:{port}")
    elif host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["Connection: close", "", ""]
    writer.write("\r\n".join(lines).encode("latin-1"))
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split()[1]), parsed, body)


def cookie_header(server: UIServer, value: str | None = None) -> dict[str, str]:
    """The session cookie (by default the server's own: ``open_session()`` spends the
    one-time URL token as the first ``GET /?t=TOKEN`` would)."""
    session = value if value is not None else server.open_session()
    return {"Cookie": f"{server.cookie_name}={session}"}


@dataclass
class GlassFrame:
    """A decrypted frame the engine handed to the glass."""

    kind: int
    keyframe: bool
    sender: int
    capture_us: int
    data: bytes
    received: float


@dataclass
class Glass:
    """A scripted glass: the local protocol over an aiohttp WebSocket client."""

    session: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    messages: list[Json] = field(default_factory=list)
    frames: list[GlassFrame] = field(default_factory=list)
    on_message: Callable[[Json], None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, server: UIServer) -> Glass:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(
                f"{server.origin}/ws",
                origin=server.origin,
                headers=cookie_header(server),
                max_msg_size=0,
            )
        except BaseException:
            await session.close()
            raise
        glass = cls(session, ws)
        glass._reader = asyncio.create_task(glass._read())
        return glass

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == WSMsgType.TEXT:
                obj = json.loads(msg.data)
                self.messages.append(obj)
                if self.on_message is not None:
                    self.on_message(obj)
            elif msg.type == WSMsgType.BINARY:
                kind, flags, sender, ts = ENGINE_FRAME.unpack_from(msg.data)
                self.frames.append(
                    GlassFrame(
                        kind, bool(flags & 1), sender, ts, msg.data[ENGINE_FRAME.size :],
                        time.time(),
                    )
                )
            self._changed.set()
        self._changed.set()

    async def send(self, message: Json) -> None:
        await self.ws.send_str(json.dumps(message))

    async def send_chunk(self, kind: int, keyframe: bool, data: bytes, capture_us: int) -> None:
        await self.ws.send_bytes(GLASS_CHUNK.pack(kind, 1 if keyframe else 0, capture_us) + data)

    def of_type(self, kind: str) -> list[Json]:
        return [m for m in self.messages if m.get("type") == kind]

    def last(self, kind: str) -> Json | None:
        found = self.of_type(kind)
        return found[-1] if found else None

    async def wait_for(self, check: Callable[[], T | None], timeout: float = 10.0) -> T:
        """Until ``check()`` returns something truthy (re-checked on every message)."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; last messages: {self.messages[-5:]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))

    async def wait_message(
        self, kind: str, check: Callable[[Json], bool] = lambda m: True, timeout: float = 10.0
    ) -> Json:
        return await self.wait_for(
            lambda: next((m for m in reversed(self.of_type(kind)) if check(m)), None), timeout
        )

    async def wait_state(self, check: Callable[[Json], bool], timeout: float = 10.0) -> Json:
        """Until the *latest* state satisfies ``check``."""

        def latest() -> Json | None:
            state = self.last("state")
            return state if state is not None and check(state) else None

        return await self.wait_for(latest, timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self.session.close()


async def until(check: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


class GlassMedia:
    """What a browser's WebCodecs would produce: VP8 frames and 20 ms Opus packets."""

    def __init__(self, glass: Glass, label: str) -> None:
        self.glass = glass
        self.video = VideoEncoder("vp8", 320, 180, 25, 300_000)
        self.source = TestPatternSource(320, 180, 25, label=label)
        self.audio = OpusEncoder()
        self.tone = ToneSource(660.0)
        self.sent: list[bytes] = []
        glass.on_message = self._on_message

    def _on_message(self, msg: Json) -> None:
        if msg.get("type") == "keyframe_request" and msg.get("kind") == "video":
            self.video.request_keyframe()

    async def send(self, ticks: int) -> None:
        """``ticks`` x 20 ms: one Opus packet each, a video frame every other tick."""
        for i in range(ticks):
            now_us = time.time_ns() // 1000
            for chunk in self.audio.encode(self.tone.next_frame()):
                await self.glass.send_chunk(AUDIO, False, chunk.data, now_us)
                self.sent.append(chunk.data)
            if i % 2 == 0:
                for chunk in self.video.encode(self.source.next_frame()):
                    await self.glass.send_chunk(VIDEO, chunk.keyframe, chunk.data, now_us)
                    self.sent.append(chunk.data)
            await asyncio.sleep(0.02)


def run_node_module(module: Path, alias: str, script: str, stdin: str = "") -> Any:
    """Run ``script`` as an ES module under node with ``module`` imported as ``alias``
    (``import * as alias``); what it writes to stdout, as JSON. Skipped without node."""
    exe = shutil.which("node")
    if exe is None:
        pytest.skip("node is not installed")
    source = f"import * as {alias} from '{module.as_uri()}';\n{script}"
    done = subprocess.run(
        [exe, "--input-type=module", "-e", source],
        input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
