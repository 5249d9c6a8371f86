"""Helpers for relay tests: a relay on a free port and a typed WebSocket client.

Tests are plain functions that call :func:`run` on a scenario coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiohttp import WSMsgType

from bounded_run import run as bounded_run
from clave.relay import RelayConfig
from clave.relay.server import start_relay
from clave.wire import (
    MEDIA,
    Enter,
    Error,
    Joined,
    MediaFrame,
    PeerJoined,
    RelayMessage,
    StreamKind,
    decode_media,
    decode_relay,
    encode,
    encode_media,
    room_id_for_token,
)

T = TypeVar("T")
M = TypeVar("M")


def run(scenario: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run one scenario in a fresh event loop, failing after ``timeout`` seconds."""
    return bounded_run(scenario, timeout)


def new_room() -> tuple[str, bytes]:
    """A fresh access token (32 bytes) and its room id (22 base64url chars)."""
    token = os.urandom(32)
    return room_id_for_token(token), token


@contextlib.asynccontextmanager
async def relay(config: RelayConfig | None = None) -> AsyncIterator[int]:
    """A relay on 127.0.0.1 and a free port (yielded), stopped afterwards."""
    runner, port = await start_relay("127.0.0.1", 0, config or RelayConfig())
    try:
        yield port
    finally:
        await runner.cleanup()


def small_rcvbuf(size: int) -> Callable[[Any], socket.socket]:
    """An aiohttp socket_factory whose sockets have a small receive buffer (a slow reader)."""

    def factory(addr_info: Any) -> socket.socket:
        family, type_, proto, _, _ = addr_info
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        sock.setblocking(False)
        return sock

    return factory


@dataclass
class Closed:
    """How a connection ended: the Error messages seen last, and the close code."""

    errors: list[Error]
    code: int | None


class Client:
    """A relay client over aiohttp: typed sends, typed receives."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self.conn = 0

    @classmethod
    async def connect(
        cls,
        port: int,
        *,
        rcvbuf: int | None = None,
        autoping: bool = True,
        source: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Client:
        """Connect to the relay; ``source`` is a local address to connect from (127.0.0.0/8
        is all loopback on Linux, so each is another client address to the relay)."""
        connector = aiohttp.TCPConnector(
            socket_factory=small_rcvbuf(rcvbuf) if rcvbuf is not None else None,
            local_addr=(source, 0) if source is not None else None,
        )
        session = aiohttp.ClientSession(connector=connector)
        ws = await session.ws_connect(
            f"http://127.0.0.1:{port}/ws", autoping=autoping, max_msg_size=0, headers=headers
        )
        return cls(session, ws)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        await self.session.close()

    # -- sending

    async def send(self, msg: Any) -> None:
        await self.ws.send_bytes(encode(msg))

    async def send_raw(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def send_media(self, kind: StreamKind, keyframe: bool, sframe: bytes) -> None:
        await self.ws.send_bytes(encode_media(kind, keyframe, sframe))

    # -- receiving

    async def recv(self, timeout: float = 3.0) -> RelayMessage | MediaFrame:
        """The next message (control or media); fails on close or timeout."""
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type is not WSMsgType.BINARY:
            raise AssertionError(f"expected a binary message, got {msg.type!r} {msg.data!r}")
        data: bytes = msg.data
        if data[1] == MEDIA:
            return decode_media(data)
        return decode_relay(memoryview(data)[2:])

    async def control(self, timeout: float = 3.0) -> RelayMessage:
        """The next control message, skipping media."""
        while True:
            msg = await self.recv(timeout)
            if not isinstance(msg, MediaFrame):
                return msg

    async def expect(
        self, kind: type[M], timeout: float = 3.0, skip: tuple[type, ...] = ()
    ) -> M:
        """The next control message not of a type in ``skip``, which must be a ``kind``."""
        msg = await self.control(timeout)
        while isinstance(msg, skip):
            msg = await self.control(timeout)
        assert isinstance(msg, kind), f"expected {kind.__name__}, got {msg!r}"
        return msg

    async def media(self, timeout: float = 3.0) -> MediaFrame:
        """The next media frame, which must come before any control message."""
        msg = await self.recv(timeout)
        assert isinstance(msg, MediaFrame), f"expected media, got {msg!r}"
        return msg

    async def silent(self, wait: float = 0.2) -> None:
        """Assert that nothing arrives within ``wait`` seconds."""
        try:
            msg = await asyncio.wait_for(self.ws.receive(), wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {msg.type!r} {msg.data!r}")

    async def closed(self, timeout: float = 3.0) -> Closed:
        """Read until the relay closes; the Error messages it sent and the close code."""
        errors: list[Error] = []
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type is WSMsgType.BINARY:
                if msg.data[1] != MEDIA:
                    decoded = decode_relay(memoryview(msg.data)[2:])
                    if isinstance(decoded, Error):
                        errors.append(decoded)
                continue
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                code = msg.data if msg.type is WSMsgType.CLOSE else self.ws.close_code
                return Closed(errors, code)
            if msg.type is WSMsgType.ERROR:
                return Closed(errors, self.ws.close_code)

    # -- admission

    async def enter(self, room: str, token: bytes, cred_hash: bytes | None = None) -> Joined:
        """Enter a room (created if nobody is in it) and wait for ``Joined``."""
        await self.send(Enter(room=room, token=token, cred_hash=cred_hash))
        joined = await self.expect(Joined)
        self.conn = joined.conn
        return joined

    async def answer(self, msg: Any, timeout: float = 3.0) -> bytes:
        """Send ``msg`` and return the raw bytes of the next message."""
        await self.send(msg)
        reply = await asyncio.wait_for(self.ws.receive(), timeout)
        assert reply.type is WSMsgType.BINARY, reply
        data: bytes = reply.data
        return data


async def meeting(
    port: int, n: int, cred_hash: bytes | None = None, **connect: Any
) -> tuple[str, bytes, list[Client]]:
    """A new room with ``n`` connections; every PeerJoined has been consumed.

    The first one enters with ``cred_hash`` (the room's first epoch slot), if given.
    """
    room, token = new_room()
    clients: list[Client] = []
    for i in range(n):
        c = await Client.connect(port, **connect)
        await c.enter(room, token, cred_hash if i == 0 else None)
        for earlier in clients:
            assert (await earlier.expect(PeerJoined)).conn == c.conn
        clients.append(c)
    return room, token, clients


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(c.close() for c in clients))


async def gather_all(*aws: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*aws))
