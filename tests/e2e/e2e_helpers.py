"""Helpers for the end-to-end tests: a relay, recording participants, raw relay clients.

Tests are plain functions that call :func:`run` on a scenario coroutine (a fresh
event loop and an overall timeout), as in tests/relay. Progress is measured in
events (frames decoded, frames delivered), never in rates: a wait for events has
a deadline only so that a broken meeting fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import WSMsgType

from bounded_run import run as run  # one scenario per test, bounded (re-exported)
from clave.devtools.ws_recorder import OP_CLOSE, StreamParser
from clave.engine.headless import HeadlessParticipant
from clave.media.chunk import MediaKind
from clave.meeting import events as ev
from clave.meeting.link import MeetingLink, new_link
from clave.meeting.roles import generate_owner_key
from clave.relay import RelayConfig
from clave.relay.server import start_relay
from clave.wire import (
    MEDIA,
    Enter,
    Error,
    Joined,
    MediaFrame,
    RelayMessage,
    StreamKind,
    WireError,
    decode_media,
    decode_relay,
    encode,
    unpack_payload,
)

T = TypeVar("T")
E = TypeVar("E")

BASE_URL = "http://127.0.0.1:{port}"




@contextlib.asynccontextmanager
async def relay(config: RelayConfig | None = None) -> AsyncIterator[int]:
    """A real relay on 127.0.0.1 and a free port (yielded), stopped afterwards."""
    runner, port = await start_relay("127.0.0.1", 0, config)
    try:
        yield port
    finally:
        await runner.cleanup()


async def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    step: float = 0.05,
    explain: Callable[[], object] | None = None,
) -> None:
    """Poll ``condition`` until it holds; AssertionError after ``timeout`` seconds
    (a deadline against hanging, not a performance requirement)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            detail = f": {explain()}" if explain is not None else ""
            raise AssertionError(f"condition not met within {timeout} s{detail}")
        await asyncio.sleep(step)


def invitation(base_url: str) -> tuple[MeetingLink, bytes]:
    """A new meeting's invitation and its owner's private key (the host's to keep)."""
    owner_private, owner_public = generate_owner_key(os.urandom)
    return new_link(base_url, os.urandom, owner_public), owner_private


def now_us() -> int:
    """The clock media capture stamps use (microseconds since the Unix epoch)."""
    return time.time_ns() // 1000


# ---------------------------------------------------------------- participants


class RecordingParticipant(HeadlessParticipant):
    """A headless participant that keeps every event except decrypted media frames.

    With ``admit`` (names), a host that does not auto-admit admits exactly those
    lobby requests and leaves every other one waiting.

    It also keeps the capture stamp of every media frame it sent and of every one
    it decrypted, so a test can count which frames of a stretch of time arrived.
    """

    def __init__(self, *args: Any, admit: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[ev.Event] = []
        self.admit_names = set(admit)
        self.sent_stamps: dict[StreamKind, list[int]] = {k: [] for k in StreamKind}
        self.received_stamps: dict[tuple[str, StreamKind], set[int]] = {}

    async def start(self) -> None:
        await super().start()
        session = self.session
        assert session is not None
        send = session.send_media  # the media loops have not sent anything yet

        async def recording_send(
            kind: StreamKind, keyframe: bool, payload: bytes, layer: int = 0
        ) -> bool:
            sent = await send(kind, keyframe, payload, layer)
            if sent:
                self.sent_stamps[kind].append(unpack_payload(payload)[0])
            return sent

        session.send_media = recording_send  # type: ignore[method-assign]

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.MediaFrameDecrypted):
            with contextlib.suppress(WireError):
                stamp = unpack_payload(event.payload)[0]
                self.received_stamps.setdefault((event.name, event.kind), set()).add(stamp)
        else:
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


Pair = tuple[str, str, MediaKind]
"""(receiver, sender, kind)."""


def pairs(people: Sequence[HeadlessParticipant]) -> list[tuple[Any, Any]]:
    """Every (receiver, sender) of the same meeting."""
    return [(p, q) for p in people for q in people if q is not p and q.link == p.link]


def decoded_counts(people: Sequence[HeadlessParticipant]) -> dict[Pair, int]:
    """Frames each member decoded from each other member of its meeting, per kind."""
    return {
        (p.name, q.name, kind): p.counter.count(q.name, kind)
        for p, q in pairs(people)
        for kind in ("video", "audio")
    }


FRAMES = {"video": 30, "audio": 50}
"""How many more frames of each kind :func:`wait_for_frames` waits for by default
(about a second's worth)."""


async def wait_for_frames(
    people: Sequence[HeadlessParticipant],
    more: dict[str, int] | None = None,
    timeout: float = 30.0,
) -> dict[Pair, int]:
    """Wait until every member decoded ``more`` further frames of each kind from every
    other member of its meeting; the counts at the end."""
    want = more or FRAMES
    start = decoded_counts(people)

    def done() -> bool:
        now = decoded_counts(people)
        return all(now[k] - start[k] >= want[k[2]] for k in start)

    def explain() -> object:
        now = decoded_counts(people)
        return {k: now[k] - start[k] for k in start if now[k] - start[k] < want[k[2]]}

    await wait_until(done, timeout, explain=explain)
    return decoded_counts(people)


def delivery(
    people: Sequence[RecordingParticipant], since_us: int, until_us: int
) -> dict[tuple[str, str, StreamKind], tuple[int, int]]:
    """For each (receiver, sender, kind) of a meeting: how many frames the sender sent
    with a capture stamp in ``[since_us, until_us)``, and how many of those exactly the
    receiver decrypted."""
    out: dict[tuple[str, str, StreamKind], tuple[int, int]] = {}
    for p, q in pairs(people):
        for kind in (StreamKind.video, StreamKind.audio):
            sent = [t for t in q.sent_stamps[kind] if since_us <= t < until_us]
            got = p.received_stamps.get((q.name, kind), set())
            out[(p.name, q.name, kind)] = (len(sent), sum(1 for t in sent if t in got))
    return out


async def wait_for_delivery(
    people: Sequence[RecordingParticipant],
    since_us: int,
    until_us: int,
    *,
    share: float,
    minimum: dict[str, int] | None = None,
    timeout: float = 15.0,
) -> dict[tuple[str, str, StreamKind], tuple[int, int]]:
    """Wait until every receiver decrypted at least ``share`` of the frames each sender
    of its meeting sent in ``[since_us, until_us)`` (frames still in flight arrive;
    lost ones never do). Each sender must have sent ``minimum`` frames of each kind."""
    least = minimum or FRAMES

    def short() -> dict[tuple[str, str, StreamKind], tuple[int, int]]:
        return {
            k: (sent, got)
            for k, (sent, got) in delivery(people, since_us, until_us).items()
            if got < share * sent
        }

    for k, (sent, _) in delivery(people, since_us, until_us).items():
        assert sent >= least[k[2].name], (k, sent, "too few frames sent to measure anything")
    await wait_until(lambda: not short(), timeout, explain=short)
    return delivery(people, since_us, until_us)


async def stop_all(people: Iterable[HeadlessParticipant]) -> None:
    """Stop every participant (each at most once), even if one of them fails."""
    for p in people:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(p.stop(), 10)


async def drain_control(ws: Any, seconds: float) -> list[Any]:
    """Control messages a raw aiohttp WebSocket receives until it is quiet for
    ``seconds`` or closes (media frames are skipped)."""
    got: list[Any] = []
    with contextlib.suppress(TimeoutError):
        while True:
            msg = await asyncio.wait_for(ws.receive(), seconds)
            if msg.type != WSMsgType.BINARY:
                break
            if msg.data[1] != MEDIA:
                got.append(decode_relay(memoryview(msg.data)[2:]))
    return got


def nonmedia_problems(p: RecordingParticipant) -> list[ev.Event]:
    """Errors and rejected frames a participant saw."""
    return [e for e in p.events if isinstance(e, ev.Error | ev.FrameRejected)]


# ---------------------------------------------------------------- raw relay clients


def random_room() -> str:
    """A well-formed room id that belongs to no token anybody holds."""
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
    peers: list[int] = field(default_factory=list)
    """The connections already in the room when it entered."""
    refusals: list[Error] = field(default_factory=list)
    """Errors the relay answered with while the connection stayed open."""

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

    async def enter(self, room: str, token: bytes) -> Joined:
        """Enter a room (created if nobody is in it) and wait for ``Joined``."""
        await self.send(Enter(room=room, token=token))
        joined = await self.control(Joined)
        self.conn = joined.conn
        return joined

    async def enter_link(self, link: MeetingLink) -> Joined:
        """Enter the link's room on the relay channel with its real access token."""
        keys = link.keys
        return await self.enter(keys.room_id, keys.access_token)

    async def first(self, kind: type[E], timeout: float = 5.0) -> E:
        """The next message that is a ``kind``, skipping everything else (media too)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.recv(max(0.0, deadline - loop.time()))
            if isinstance(msg, kind):
                return msg

    async def collect(self, count: int, timeout: float) -> list[bytes]:
        """The next ``count`` messages (the connection must stay open)."""
        got: list[bytes] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got) < count:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"only {len(got)} of {count} messages within {timeout} s")
            try:
                msg = await asyncio.wait_for(self.ws.receive(), left)
            except TimeoutError:
                continue
            if msg.type is not WSMsgType.BINARY:
                raise AssertionError(f"the relay closed the connection ({self.ws.close_code})")
            got.append(msg.data)
            self.received.append(msg.data)
        return got

    async def silent_while(self, busy: Coroutine[Any, Any, T]) -> tuple[list[bytes], T]:
        """Every message that arrives while ``busy`` runs (the connection must stay open),
        and ``busy``'s result: e.g. nothing while a meeting decodes a hundred frames."""
        task = asyncio.ensure_future(busy)
        got: list[bytes] = []
        try:
            while not task.done():
                receive = asyncio.ensure_future(self.ws.receive())
                await asyncio.wait({task, receive}, return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    receive.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await receive
                    break
                msg = receive.result()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    raise AssertionError(f"the relay closed the connection ({self.ws.close_code})")
                got.append(msg.data)
                self.received.append(msg.data)
        finally:
            if not task.done():
                task.cancel()
        return got, await task

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
