"""The relay writes a connection's queued messages in batches, one socket write per tick.

Counted on the relay's side of a receiver's connection: the transport writes it makes
and what the receiver gets, in which order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from relay_helpers import Client, close_all, meeting, run

from clave.relay import RelayConfig
from clave.relay.connection import Connection, TickWriter
from clave.relay.server import STATE_KEY, start_relay
from clave.wire import AppFrom, AppMessage, MediaFrame, StreamKind, encode, encode_media


@contextlib.asynccontextmanager
async def relay_with_state(config: RelayConfig) -> AsyncIterator[tuple[int, Any]]:
    runner, port = await start_relay("127.0.0.1", 0, config)
    try:
        yield port, runner.app[STATE_KEY]
    finally:
        await runner.cleanup()


def count_writes(state: Any, conn: int) -> list[int]:
    """Record the size of every transport write the relay makes to connection ``conn``."""
    connection: Connection = next(c for c in state.connections if c.conn == conn)
    transport = connection.request.transport
    assert transport is not None
    writes: list[int] = []
    real = transport.write

    def write(data: bytes) -> None:
        writes.append(len(data))
        real(data)

    transport.write = write  # type: ignore[method-assign,assignment]
    return writes


def send_at_once(client: Client, messages: list[bytes]) -> None:
    """Send ``messages`` in one socket write (masked with an all-zero key, RFC 6455 5.3)."""
    frames = []
    for data in messages:
        assert 125 < len(data) < 65536 or len(data) < 126
        head = (
            bytes((0x82, 0x80 | len(data)))
            if len(data) < 126
            else (bytes((0x82, 0x80 | 126)) + len(data).to_bytes(2, "big"))
        )
        frames.append(head + bytes(4) + data)
    client.ws._writer.transport.write(b"".join(frames))


def seq(frame: MediaFrame) -> int:
    return int.from_bytes(frame.sframe[:4], "big")


def test_one_ticks_messages_go_out_in_one_write_control_first_media_in_order() -> None:
    async def scenario() -> None:
        async with relay_with_state(RelayConfig()) as (port, state):
            _, _, (a, b) = await meeting(port, 2)
            writes = count_writes(state, b.conn)
            # 20 frames, a chat message, 20 frames: in one socket write, so that the relay
            # reads all 41 in one tick.
            frames = [
                encode_media(StreamKind.video, i == 0, i.to_bytes(4, "big") + bytes(500))
                for i in range(40)
            ]
            send_at_once(a, [*frames[:20], encode(AppMessage(data=b"chat")), *frames[20:]])
            got = [await b.recv() for _ in range(41)]
            assert got[0] == AppFrom(sender=a.conn, data=b"chat")
            media = [f for f in got[1:] if isinstance(f, MediaFrame)]
            assert [seq(f) for f in media] == list(range(40))
            assert all(f.sender == a.conn for f in media)
            assert len(writes) == 1
            await b.silent(0.1)
            await close_all([a, b])

    run(scenario())


def test_a_receiver_that_pushes_back_gets_everything_in_order_once_it_reads() -> None:
    # Queues big enough that nothing is dropped: only back-pressure is at work.
    config = RelayConfig(
        media_high_water=8 * 1024 * 1024,
        media_hard_limit=8 * 1024 * 1024,
        socket_send_buffer=16 * 1024,
    )
    frames, size = 300, 10_000

    async def scenario() -> None:
        async with relay_with_state(config) as (port, state):
            room, token, (a,) = await meeting(port, 1)
            b = await Client.connect(port, rcvbuf=4096)
            await b.enter(room, token)
            await a.control()  # PeerJoined
            writes = count_writes(state, b.conn)
            for i in range(frames):
                await a.send_media(StreamKind.video, i == 0, i.to_bytes(4, "big") + bytes(size))
                await asyncio.sleep(0)
            got: list[MediaFrame] = []
            while len(got) < frames:  # skipping control (congestion notices, say)
                msg = await b.recv(5.0)
                if isinstance(msg, MediaFrame):
                    got.append(msg)
            assert [seq(f) for f in got] == list(range(frames))
            # Pushed back: the 3 MB went out in many writes of at most one batch each.
            assert len(writes) > 1
            assert max(writes) <= 64 * 1024 + size + 16
            await close_all([a, b])

    run(scenario(), timeout=30)


class FakeConnection:
    def __init__(self, conn: int, fail: bool = False) -> None:
        self.conn = conn
        self.fail = fail
        self.flushed = 0
        self.aborted = 0

    def _flush(self) -> None:
        self.flushed += 1
        if self.fail:
            raise RuntimeError("a bug")

    def _abort(self) -> None:
        self.aborted += 1


def test_one_write_out_callback_per_tick_for_all_connections_and_a_failure_stays_alone() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        scheduled: list[object] = []
        real = loop.call_soon

        def call_soon(callback: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(callback, "__self__", None) is ticks:
                scheduled.append(callback)
            return real(callback, *args, **kwargs)

        ticks = TickWriter()
        loop.call_soon = call_soon  # type: ignore[method-assign,assignment]
        fakes = [FakeConnection(1), FakeConnection(2, fail=True), FakeConnection(3)]
        for fake in fakes:
            ticks.add(fake)  # type: ignore[arg-type]
        assert len(scheduled) == 1
        await asyncio.sleep(0)
        assert [f.flushed for f in fakes] == [1, 1, 1]
        assert [f.aborted for f in fakes] == [0, 1, 0]
        ticks.add(fakes[0])  # type: ignore[arg-type]
        assert len(scheduled) == 2  # the next tick gets its own callback
        await asyncio.sleep(0)
        assert fakes[0].flushed == 2

    run(scenario())
