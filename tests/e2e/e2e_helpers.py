"""Helpers for the end-to-end tests: a relay, recording participants, raw relay clients.

Tests are plain functions that call :func:`run` on a scenario coroutine (a fresh
event loop and an overall timeout), as in tests/relay.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import WSMsgType

from clave.devtools.ws_recorder import OP_CLOSE, StreamParser
from clave.engine.headless import HeadlessParticipant
from clave.media.chunk import MediaKind
from clave.meeting import events as ev
from clave.meeting.keys import room_keys
from clave.meeting.link import MeetingLink
from clave.relay import RelayConfig
from clave.relay.server import start_relay
from clave.wire import (
    MEDIA,
    Create,
    Error,
    Join,
    Joined,
    MediaFrame,
    RelayMessage,
    decode_media,
    decode_relay,
    encode,
)

T = TypeVar("T")
E = TypeVar("E")

BASE_URL = "http://127.0.0.1:{port}"


def run(scenario: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run one scenario in a fresh event loop, failing after ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(scenario, timeout))


@contextlib.asynccontextmanager
async def relay(config: RelayConfig | None = None) -> AsyncIterator[int]:
    """A real relay on 127.0.0.1 and a free port (yielded), stopped afterwards."""
    runner, port = await start_relay("127.0.0.1", 0, config)
    try:
        yield port
    finally:
        await runner.cleanup()


async def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    """Poll ``condition`` until it holds; AssertionError after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


# ---------------------------------------------------------------- participants


class RecordingParticipant(HeadlessParticipant):
    """A headless participant that keeps every event except decrypted media frames.

    With ``admit`` (names), a host that does not auto-admit admits exactly those
    lobby requests and leaves every other one waiting.
    """

    def __init__(self, *args: Any, admit: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[ev.Event] = []
        self.admit_names = set(admit)

    def _on_event(self, event: ev.Event) -> None:
        if not isinstance(event, ev.MediaFrameDecrypted):
            self.events.append(event)
        super()._on_event(event)
        if (
            isinstance(event, ev.LobbyRequest)
            and event.display_name in self.admit_names
            and self.session is not None
        ):
            self.session.meeting.admit(event.request_id)

    def events_of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def decoded(self, sender: str, kind: MediaKind = "video") -> int:
        return self.counter.count(sender, kind)


async def stop_all(people: Iterable[HeadlessParticipant]) -> None:
    """Stop every participant (each at most once), even if one of them fails."""
    for p in people:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(p.stop(), 10)


def nonmedia_problems(p: RecordingParticipant) -> list[ev.Event]:
    """Errors and rejected frames a participant saw."""
    return [e for e in p.events if isinstance(e, ev.Error | ev.FrameRejected)]


# ---------------------------------------------------------------- raw relay clients


def random_room() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


@dataclass
class Closed:
    """How the relay ended a connection: the Error messages it sent, and the close code."""

    errors: list[Error]
    code: int | None
    messages: int = 0
    """Every message received (media included) before the close."""

    @property
    def error_codes(self) -> list[int]:
        return [int(e.code) for e in self.errors]


@dataclass
class RawClient:
    """A WebSocket client that speaks the relay protocol by hand (no meeting layer)."""

    session: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    conn: int = 0
    received: list[bytes] = field(default_factory=list)
    target_room: str = ""
    """A room id an attack may aim at."""

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws", max_msg_size=0)
        except BaseException:
            await session.close()
            raise
        return cls(session, ws)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        await self.session.close()

    async def send(self, msg: Any) -> None:
        await self.ws.send_bytes(encode(msg))

    async def send_raw(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def recv(self, timeout: float = 3.0) -> RelayMessage | MediaFrame:
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type is not WSMsgType.BINARY:
            raise AssertionError(f"expected a binary message, got {msg.type!r} {msg.data!r}")
        data: bytes = msg.data
        self.received.append(data)
        if data[1] == MEDIA:
            return decode_media(data)
        return decode_relay(memoryview(data)[2:])

    async def control(self, kind: type[E], timeout: float = 3.0) -> E:
        """The next control message (media skipped), which must be a ``kind``."""
        while True:
            msg = await self.recv(timeout)
            if isinstance(msg, MediaFrame):
                continue
            assert isinstance(msg, kind), f"expected {kind.__name__}, got {msg!r}"
            return msg

    async def join(self, room: str, token: bytes) -> Joined:
        await self.send(Join(room=room, token=token))
        joined = await self.control(Joined)
        self.conn = joined.conn
        return joined

    async def join_link(self, link: MeetingLink) -> Joined:
        """Join the link's room on the relay channel with its real access token."""
        return await self.join(link.room_id, room_keys(link).access_token)

    async def create(self, room: str, token: bytes) -> Joined:
        await self.send(Create(room=room, token_hash=hashlib.sha256(token).digest()))
        joined = await self.control(Joined)
        self.conn = joined.conn
        return joined

    async def silent_for(self, seconds: float) -> list[bytes]:
        """Every message that arrives within ``seconds`` (the connection must stay open)."""
        got: list[bytes] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await asyncio.wait_for(self.ws.receive(), left)
            except TimeoutError:
                break
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                raise AssertionError(f"the relay closed the connection ({self.ws.close_code})")
            got.append(msg.data)
        return got

    async def closed(self, timeout: float = 5.0) -> Closed:
        """Read until the relay closes; its Error messages and the close code."""
        errors: list[Error] = []
        count = 0
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type is WSMsgType.BINARY:
                count += 1
                if msg.data[1] != MEDIA:
                    decoded = decode_relay(memoryview(msg.data)[2:])
                    if isinstance(decoded, Error):
                        errors.append(decoded)
                continue
            if msg.type is WSMsgType.CLOSE:
                return Closed(errors, int(msg.data), count)
            if msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return Closed(errors, self.ws.close_code, count)


# ---------------------------------------------------------------- hand-made WebSocket frames


def ws_frame(payload: bytes, opcode: int = 0x2, *, fin: bool = True, rsv: int = 0) -> bytes:
    """One masked client frame (RFC 6455 section 5.2); ``rsv`` sets the reserved bits."""
    b0 = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode
    n = len(payload)
    if n < 126:
        head = bytes((b0, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((b0, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


class RawSocket:
    """A WebSocket over a plain TCP stream, to send frames aiohttp would never produce."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = StreamParser(http_head=False)

    @classmethod
    async def connect(cls, port: int) -> RawSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed(self, timeout: float = 5.0) -> Closed:
        """Read frames until the relay's close frame (or EOF)."""
        errors: list[Error] = []
        count = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            data = await asyncio.wait_for(self.reader.read(65536), deadline - loop.time())
            if not data:
                return Closed(errors, None, count)
            for frame in self.parser.feed(data):
                if frame.opcode == OP_CLOSE:
                    code = int.from_bytes(frame.payload[:2], "big") if frame.payload else None
                    return Closed(errors, code, count)
                if frame.opcode == 0x2:
                    count += 1
                    if frame.payload[1] != MEDIA:
                        decoded = decode_relay(frame.payload[2:])
                        if isinstance(decoded, Error):
                            errors.append(decoded)

    def close(self) -> None:
        self.writer.close()
