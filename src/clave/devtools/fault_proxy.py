"""A TCP proxy that injects network faults between engines and a relay (tests, benchmarks).

It works on bytes and knows nothing of HTTP or WebSocket. Each *entrance* is a
listening port with a label; give every engine its own entrance and a fault can
target one engine's traffic. The proxy runs in the caller's event loop and is
controlled by plain method calls::

    proxy = FaultProxy("127.0.0.1", relay_port)
    port = await proxy.open("g1")   # g1 connects to 127.0.0.1:port instead of the relay
    proxy.cut()                     # reset every proxied connection (RST both ways)
    proxy.cut("g1")                 # only those that came in through g1's entrance
    await proxy.blip(3.0)           # cut, refuse new connections for 3 s, accept again
    proxy.refuse("g1"); proxy.accept("g1")
    proxy.delay = 0.2               # seconds added to every chunk, in each direction
    proxy.stats["g1"].accepted      # connections, resets and bytes, counted per entrance
    await proxy.close()

A cut closes both sockets with ``SO_LINGER`` 0, so both ends see a reset, as
after a broken NAT or a crashed middlebox, not an orderly close. A refused
connection is accepted and reset at once (the listening port stays bound, so
nobody else can take it meanwhile). A connection whose upstream (the relay)
cannot be reached is reset too: a client sees the relay down as it would
without the proxy. The delay is added when a chunk is read and the order of
chunks is kept; each direction's queue is bounded, so a slow reader slows the
sender down as TCP would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field

CHUNK = 65536
QUEUE_CHUNKS = 256
_LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass
class EntranceStats:
    """What crossed one entrance (counted since it was opened)."""

    accepted: int = 0
    """Connections forwarded to the upstream."""
    refused: int = 0
    """Connections reset on arrival because the entrance was refusing."""
    upstream_failed: int = 0
    """Connections reset because the upstream could not be reached."""
    cut: int = 0
    """Forwarded connections reset by :meth:`FaultProxy.cut`."""
    closed: int = 0
    """Forwarded connections that ended otherwise (either side closed)."""
    bytes_up: int = 0
    """Bytes from clients to the upstream."""
    bytes_down: int = 0
    """Bytes from the upstream to clients."""

    @property
    def open(self) -> int:
        """Forwarded connections still open."""
        return self.accepted - self.cut - self.closed


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close abruptly: RST instead of FIN, nothing buffered is sent."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    """One proxied connection: a client socket, its upstream socket and two pumps."""

    label: str
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    was_cut: bool = False

    def reset(self) -> None:
        self.was_cut = True
        _reset(self.client)
        _reset(self.upstream)
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """Forward every entrance to ``upstream_host:upstream_port``, with faults on demand."""

    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = host
        self.delay = 0.0
        """Seconds added to every chunk in each direction (0: forward at once)."""
        self.stats: dict[str, EntranceStats] = {}
        self.ports: dict[str, int] = {}
        self._servers: dict[str, asyncio.Server] = {}
        self._refusing: set[str] = set()
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def open(self, label: str, port: int = 0) -> int:
        """Listen for ``label``'s connections on ``port`` (0: a free one); return the port."""
        if label in self._servers:
            raise ValueError(f"entrance {label!r} is already open")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(label, reader, writer)

        server = await asyncio.start_server(handle, self.host, port)
        self._servers[label] = server
        self.stats[label] = EntranceStats()
        self.ports[label] = server.sockets[0].getsockname()[1]
        return self.ports[label]

    def _labels(self, label: str | None) -> set[str]:
        if label is None:
            return set(self._servers)
        if label not in self._servers:
            raise KeyError(f"no entrance {label!r}")
        return {label}

    def connections(self, label: str | None = None) -> int:
        """Forwarded connections open now (through ``label``'s entrance, or any)."""
        labels = self._labels(label)
        return sum(1 for link in self._links if link.label in labels)

    def cut(self, label: str | None = None) -> int:
        """Reset every open connection (of ``label``'s entrance); return how many."""
        labels = self._labels(label)
        doomed = [link for link in self._links if link.label in labels]
        for link in doomed:
            self._links.discard(link)
            self.stats[link.label].cut += 1
            link.reset()
        return len(doomed)

    def refuse(self, label: str | None = None) -> None:
        """Reset new connections (to ``label``'s entrance) on arrival until :meth:`accept`."""
        self._refusing |= self._labels(label)

    def accept(self, label: str | None = None) -> None:
        """Forward new connections again."""
        self._refusing -= self._labels(label)

    async def blip(self, seconds: float, label: str | None = None) -> int:
        """A network outage: cut, refuse new connections for ``seconds``, then accept
        again. Returns how many connections were cut."""
        self.refuse(label)
        try:
            cut = self.cut(label)
            await asyncio.sleep(seconds)
        finally:
            self.accept(label)
        return cut

    async def close(self) -> None:
        """Stop listening and reset every connection."""
        for server in self._servers.values():
            server.close()
        self._refusing |= set(self._servers)
        self.cut()
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for server in self._servers.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()

    async def __aenter__(self) -> FaultProxy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ forwarding

    async def _serve(
        self, label: str, reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        stats = self.stats[label]
        if label in self._refusing:
            stats.refused += 1
            _reset(client)
            return
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        link: _Link | None = None
        try:
            try:
                up_reader, upstream = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
            except OSError:
                stats.upstream_failed += 1
                _reset(client)
                return
            if label in self._refusing:  # a cut came while we were connecting
                stats.refused += 1
                _reset(client)
                _reset(upstream)
                return
            stats.accepted += 1
            link = _Link(label, client, upstream)
            link.tasks = [
                asyncio.create_task(self._pump(reader, upstream, stats, up=True)),
                asyncio.create_task(self._pump(up_reader, client, stats, up=False)),
            ]
            self._links.add(link)
            # Either direction ending (EOF, error or a cut) ends the connection.
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass  # close(): end quietly
        finally:
            if link is not None and not link.was_cut:
                self._links.discard(link)
                stats.closed += 1
                for task in link.tasks:
                    task.cancel()
                for writer in (link.client, link.upstream):
                    writer.close()
            if link is not None:
                for task in link.tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            self._handlers.discard(handler)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stats: EntranceStats,
        *,
        up: bool,
    ) -> None:
        """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds after it was read."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if data == b"":
                    if writer.can_write_eof():
                        writer.write_eof()
                    await writer.drain()
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
                if up:
                    stats.bytes_up += len(data)
                else:
                    stats.bytes_down += len(data)

        sender = asyncio.create_task(deliver())
        try:
            while True:
                read = asyncio.ensure_future(reader.read(CHUNK))
                await asyncio.wait({read, sender}, return_when=asyncio.FIRST_COMPLETED)
                if sender.done():  # the other side is gone: stop reading
                    read.cancel()
                    return
                data = read.result()
                await queue.put((loop.time() + self.delay, data))
                if not data:
                    await sender
                    return
        except (ConnectionError, OSError):
            return
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
