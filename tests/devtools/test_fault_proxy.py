"""The fault proxy forwards bytes both ways and cuts, refuses and delays on demand.

Everything here is counted (bytes, connections, resets); nothing is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from bounded_run import run as bounded_run
from clave.devtools.fault_proxy import FaultProxy

T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    return bounded_run(scenario, 20)


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[int]:
    """An upstream that sends back every byte it receives (its port is yielded)."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@contextlib.asynccontextmanager
async def proxy_to_echo(*labels: str) -> AsyncIterator[FaultProxy]:
    async with echo_server() as port:
        proxy = FaultProxy("127.0.0.1", port)
        for label in labels:
            await proxy.open(label)
        try:
            yield proxy
        finally:
            await proxy.close()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, proxy: FaultProxy, label: str) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", proxy.ports[label]))

    async def echo(self, data: bytes) -> bytes:
        self.writer.write(data)
        await self.writer.drain()
        return await self.reader.readexactly(len(data))

    async def ended(self) -> str:
        """How the connection ended: "reset" or "eof" (reads until it does)."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionResetError:
            return "reset"
        return "eof"

    def close(self) -> None:
        self.writer.close()


async def until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_bytes_cross_both_ways_and_are_counted() -> None:
    async def scenario() -> None:
        async with proxy_to_echo("a", "b") as proxy:
            a, b = await Client.connect(proxy, "a"), await Client.connect(proxy, "b")
            payload = bytes(range(256)) * 1000  # larger than one chunk
            assert await a.echo(payload) == payload
            assert await b.echo(b"hello") == b"hello"
            sa, sb = proxy.stats["a"], proxy.stats["b"]
            assert (sa.accepted, sa.bytes_up, sa.bytes_down) == (1, len(payload), len(payload))
            assert (sb.accepted, sb.bytes_up, sb.bytes_down) == (1, 5, 5)
            assert proxy.connections() == 2
            a.close()
            await until(lambda: sa.closed == 1)
            assert (sa.open, sa.cut, proxy.connections("a"), proxy.connections("b")) == (0, 0, 0, 1)
            b.close()

    run(scenario())


def test_cut_resets_only_the_chosen_entrance() -> None:
    async def scenario() -> None:
        async with proxy_to_echo("a", "b") as proxy:
            a1, a2 = await Client.connect(proxy, "a"), await Client.connect(proxy, "a")
            b = await Client.connect(proxy, "b")
            for c in (a1, a2, b):
                assert await c.echo(b"x") == b"x"
            assert proxy.cut("a") == 2
            assert await a1.ended() == "reset" and await a2.ended() == "reset"
            assert await b.echo(b"still here") == b"still here"
            assert (proxy.stats["a"].cut, proxy.stats["a"].open, proxy.stats["b"].open) == (2, 0, 1)
            # The entrance still accepts: a cut is not a refusal.
            a3 = await Client.connect(proxy, "a")
            assert await a3.echo(b"back") == b"back"
            assert proxy.cut() == 2  # a3 and b
            assert await b.ended() == "reset"
            assert proxy.stats["b"].cut == 1
            for c in (a1, a2, a3, b):
                c.close()

    run(scenario())


def test_refused_connections_are_reset_until_accepted_again() -> None:
    async def scenario() -> None:
        async with proxy_to_echo("a", "b") as proxy:
            proxy.refuse("a")
            refused = await Client.connect(proxy, "a")
            assert await refused.ended() == "reset"
            b = await Client.connect(proxy, "b")
            assert await b.echo(b"b is not refused") == b"b is not refused"
            proxy.accept("a")
            a = await Client.connect(proxy, "a")
            assert await a.echo(b"accepted") == b"accepted"
            sa = proxy.stats["a"]
            assert (sa.refused, sa.accepted, sa.bytes_up) == (1, 1, len(b"accepted"))
            for c in (refused, a, b):
                c.close()

    run(scenario())


def test_a_blip_cuts_refuses_while_it_lasts_then_accepts() -> None:
    async def scenario() -> None:
        async with proxy_to_echo("a") as proxy:
            old = await Client.connect(proxy, "a")
            assert await old.echo(b"x") == b"x"
            blip = asyncio.create_task(proxy.blip(60))
            assert await old.ended() == "reset"
            during = await Client.connect(proxy, "a")
            assert await during.ended() == "reset"
            blip.cancel()  # the blip ends early: new connections are accepted again
            with contextlib.suppress(asyncio.CancelledError):
                await blip
            after = await Client.connect(proxy, "a")
            assert await after.echo(b"y") == b"y"
            s = proxy.stats["a"]
            assert (s.accepted, s.cut, s.refused, s.open) == (2, 1, 1, 1)
            for c in (old, during, after):
                c.close()

    run(scenario())


def test_delay_keeps_every_byte_in_order() -> None:
    async def scenario() -> None:
        async with proxy_to_echo("a") as proxy:
            proxy.delay = 0.05
            a = await Client.connect(proxy, "a")
            chunks = [bytes([i]) * (1 + 997 * i) for i in range(40)]
            for chunk in chunks:
                a.writer.write(chunk)
            await a.writer.drain()
            expected = b"".join(chunks)
            assert await a.reader.readexactly(len(expected)) == expected
            assert proxy.stats["a"].bytes_down == len(expected)
            a.close()

    run(scenario())


def test_an_unreachable_upstream_resets_the_client() -> None:
    async def scenario() -> None:
        async with echo_server() as port:
            pass  # closed again: nothing listens on port now
        proxy = FaultProxy("127.0.0.1", port)
        await proxy.open("a")
        try:
            c = await Client.connect(proxy, "a")
            assert await c.ended() == "reset"
            s = proxy.stats["a"]
            assert (s.upstream_failed, s.accepted) == (1, 0)
            c.close()
        finally:
            await proxy.close()

    run(scenario())
