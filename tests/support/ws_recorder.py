"""A recording TCP proxy for WebSocket traffic between clients and a relay (tests only).

Put it between clients and the relay to see exactly what crosses the wire::

    proxy = RecordingProxy("127.0.0.1", relay_port)
    port = await proxy.start()          # clients connect to ws://127.0.0.1:{port}/ws
    ...
    await proxy.stop()
    proxy.client_to_relay               # every complete message a client sent, unmasked
    proxy.relay_to_client               # every complete message the relay sent
    proxy.raw_client_to_relay           # the raw bytes (masked frames, HTTP upgrade)

Bytes are forwarded untouched as they arrive; in parallel, each direction is
parsed after its HTTP upgrade (RFC 6455 section 5): frames are unmasked
(client frames carry a 4-byte XOR mask) and fragments are joined into
messages, so the recorded payloads are the real bytes.

Compression would hide payloads: the relay refuses permessage-deflate
(``WebSocketResponse(compress=False)``) and aiohttp clients do not offer it
unless asked (``ws_connect(compress=0)``, the default). If a relay response
nevertheless negotiates an extension, :attr:`RecordedConnection.extensions`
says so and :attr:`RecordingProxy.compressed` is True: do not trust the
payload lists then.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


class FrameError(Exception):
    """The byte stream is not valid WebSocket framing."""


@dataclass(frozen=True, slots=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes
    """Unmasked payload."""
    masked: bool


def unmask(payload: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR ``payload`` with the repeating 4-byte masking ``key`` (RFC 6455 section 5.3)."""
    n = len(payload)
    if n == 0:
        return b""
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big")


class StreamParser:
    """Incremental parser of one direction: optional HTTP head, then WebSocket frames."""

    def __init__(self, http_head: bool = True) -> None:
        self._buf = bytearray()
        self.head: bytes | None = None if http_head else b""
        self.failed: str | None = None

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return the frames completed by them."""
        if self.failed is not None:
            return []
        buf = self._buf
        buf += data
        if self.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return []
            self.head = bytes(buf[: end + 4])
            del buf[: end + 4]
        frames: list[Frame] = []
        try:
            while (frame := self._next()) is not None:
                frames.append(frame)
        except FrameError as exc:
            self.failed = str(exc)
        return frames

    def _next(self) -> Frame | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        if b0 & 0x70:
            raise FrameError("reserved bits set (a negotiated extension?)")
        length = b1 & 0x7F
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return None
            length = int.from_bytes(buf[2:4], "big")
            pos = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length = int.from_bytes(buf[2:10], "big")
            pos = 10
        masked = bool(b1 & 0x80)
        key = b""
        if masked:
            if len(buf) < pos + 4:
                return None
            key = bytes(buf[pos : pos + 4])
            pos += 4
        if len(buf) < pos + length:
            return None
        body = bytes(buf[pos : pos + length])
        del buf[: pos + length]
        payload = unmask(body, key) if masked else body
        return Frame(fin=bool(b0 & 0x80), opcode=b0 & 0x0F, payload=payload, masked=masked)


class MessageAssembler:
    """Joins fragmented data frames into whole messages."""

    def __init__(self) -> None:
        self._opcode: int | None = None
        self._parts: list[bytes] = []

    def add(self, frame: Frame) -> tuple[int, bytes] | None:
        """(opcode, payload) when ``frame`` completes a data message, else None."""
        if frame.opcode >= OP_CLOSE:
            return None
        if frame.opcode != OP_CONTINUATION:
            self._opcode = frame.opcode
            self._parts = []
        self._parts.append(frame.payload)
        if not frame.fin or self._opcode is None:
            return None
        message = (self._opcode, b"".join(self._parts))
        self._opcode, self._parts = None, []
        return message


@dataclass
class Direction:
    """What crossed one direction of one connection."""

    raw: bytearray = field(default_factory=bytearray)
    frames: list[Frame] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    """Complete data messages (binary and text), unmasked."""
    parser: StreamParser = field(default_factory=StreamParser)
    assembler: MessageAssembler = field(default_factory=MessageAssembler)


@dataclass
class RecordedConnection:
    client_to_relay: Direction = field(default_factory=Direction)
    relay_to_client: Direction = field(default_factory=Direction)

    @property
    def extensions(self) -> str | None:
        """The Sec-WebSocket-Extensions the relay accepted, if any."""
        head = self.relay_to_client.parser.head or b""
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                return value.strip()
        return None


class RecordingProxy:
    """A TCP proxy to ``target_host:target_port`` that records WebSocket payloads."""

    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.connections: list[RecordedConnection] = []
        self.client_to_relay: list[bytes] = []
        """Every complete message any client sent, unmasked, in arrival order."""
        self.relay_to_client: list[bytes] = []
        """Every complete message the relay sent to any client, in arrival order."""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def raw_client_to_relay(self) -> bytes:
        """All bytes clients sent (HTTP upgrade and masked frames), connection after connection."""
        return b"".join(bytes(c.client_to_relay.raw) for c in self.connections)

    @property
    def raw_relay_to_client(self) -> bytes:
        return b"".join(bytes(c.relay_to_client.raw) for c in self.connections)

    @property
    def compressed(self) -> bool:
        return any(c.extensions for c in self.connections)

    async def start(self) -> int:
        """Listen on a free port; return it."""
        self._server = await asyncio.start_server(self._accept, self.listen_host, 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        """Stop listening and cut every proxied connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(c_writer)
        try:
            r_reader, r_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            c_writer.close()
            self._tasks.discard(task)
            return
        self._writers.add(r_writer)
        conn = RecordedConnection()
        self.connections.append(conn)
        try:
            await asyncio.gather(
                self._pipe(c_reader, r_writer, conn.client_to_relay, self.client_to_relay),
                self._pipe(r_reader, c_writer, conn.relay_to_client, self.relay_to_client),
            )
        finally:
            for writer in (c_writer, r_writer):
                writer.close()
                self._writers.discard(writer)
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: Direction,
        messages: list[bytes],
    ) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                record.raw += data
                for frame in record.parser.feed(data):
                    record.frames.append(frame)
                    message = record.assembler.add(frame)
                    if message is not None:
                        record.messages.append(message[1])
                        messages.append(message[1])
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                if writer.can_write_eof():
                    writer.write_eof()
