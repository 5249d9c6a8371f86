"""One client connection: the read loop (limits, admission, dispatch) and its writer task.

The read loop never awaits another connection: delivering to a room only
queues (see :mod:`clave.relay.queues`). Once per event loop tick, each
connection with something queued writes it out as one batch (one socket write
for many frames, control first); when the socket pushes back, the connection's
writer task waits for it to drain while the queue's drop policy works. A
violation (malformed, oversized or too-frequent messages, anything before
admission) gets one ``Error`` and a close code; the connection leaves its
room and nobody else is affected. Refused commits (stale, unknown credential,
over the commit budget) are not violations: the sender gets an ``Error`` and
stays.

A connection dropped by another member's ``Rotate`` gets ``Error(rotated)``,
after which its writer closes the WebSocket with :attr:`CloseCode.rotated`.

Every connection counts against its client address's
:class:`~clave.relay.addresses.Account` (connection caps, rooms it creates, the
backlog its queue shares). Over a connection cap, or refused entry for capacity
(``room_full``, ``rate_limited``), a client gets one ``Error`` and the close code
:attr:`CloseCode.full` or :attr:`CloseCode.rate_limited`: it never got a room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from clave.wire import (
    CONTROL,
    MAX_MEDIA_BYTES,
    MEDIA,
    PROTOCOL_VERSION,
    Enter,
    Error,
    ErrorCode,
    Leave,
    WireError,
    decode_client,
    decode_media,
    encode,
    stamp_sender,
)

from .addresses import Account
from .close_codes import CloseCode as CloseCode
from .config import MAX_MESSAGE_BYTES
from .limits import RateLimit, TokenBucket
from .queues import OutQueue
from .room import HANDLERS, Peer, Room
from .state import RelayState
from .stats import Refused

log = logging.getLogger("clave.relay")

_ROTATED = CloseCode.rotated

BATCH_BYTES = 64 * 1024
"""Bytes written to a socket at once at most before checking its back-pressure again."""

_HEAD_SHORT = struct.Struct("!BB").pack
_HEAD_MEDIUM = struct.Struct("!BBH").pack
_HEAD_LONG = struct.Struct("!BBQ").pack


def _header(size: int) -> bytes:
    """The header of an unmasked, final, binary WebSocket frame (RFC 6455, section 5.2)."""
    if size < 126:
        return _HEAD_SHORT(0x82, size)
    if size < 65536:
        return _HEAD_MEDIUM(0x82, 126, size)
    return _HEAD_LONG(0x82, 127, size)


_ABORTS: dict[int, tuple[ErrorCode, str, CloseCode]] = {
    # aiohttp closes by itself on these reader errors; say why in the relay's terms.
    WSCloseCode.MESSAGE_TOO_BIG: (ErrorCode.too_large, "message too large", CloseCode.too_large),
    WSCloseCode.PROTOCOL_ERROR: (ErrorCode.bad_message, "bad frame", CloseCode.bad_message),
    WSCloseCode.INVALID_TEXT: (ErrorCode.bad_message, "text frame", CloseCode.bad_message),
}


class TickWriter:
    """The connections with something queued this loop tick, written out together by one
    callback at the next tick (one per tick for all of them: a callback per connection
    costs more than writing a small batch)."""

    __slots__ = ("_due",)

    def __init__(self) -> None:
        self._due: list[Connection] = []

    def add(self, connection: Connection) -> None:
        if not self._due:
            asyncio.get_running_loop().call_soon(self._run)
        self._due.append(connection)

    def _run(self) -> None:
        due, self._due = self._due, []
        for connection in due:
            try:
                connection._flush()
            except Exception:  # a relay bug: the others still get their batches
                log.exception("conn %d: write failed", connection.conn)
                connection._abort()


class RelayWebSocket(web.WebSocketResponse):
    """A WebSocketResponse that answers aiohttp's own protocol aborts with an ``Error``."""

    def __init__(self, *, final_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._final_timeout = final_timeout
        self.aborted = False
        """True once aiohttp refused a frame (too large, malformed) and closed."""

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        abort = _ABORTS.get(code)
        if abort is not None and not self.closed:
            self.aborted = True
            err, text, close_code = abort
            code = close_code
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.send_bytes(encode(Error(err, text))), self._final_timeout
                )
        return await super().close(code=code, message=message, drain=drain)


class _Fatal(Exception):
    """End this connection with an Error and a close code."""

    def __init__(
        self, code: ErrorCode, message: str, close: CloseCode, *, quiet: bool = False
    ) -> None:
        super().__init__(message)
        self.error = Error(code, message)
        self.close = close
        self.quiet = quiet
        """Counted in the relay's stats already: log at DEBUG only (floods)."""


def _capacity(refusal: Error) -> _Fatal:
    """A refusal for capacity (connection or entry): the client never gets a room."""
    close = CloseCode.full if refusal.code is ErrorCode.room_full else CloseCode.rate_limited
    return _Fatal(refusal.code, refusal.message, close, quiet=True)


def _bad(message: str) -> _Fatal:
    return _Fatal(ErrorCode.bad_message, message, CloseCode.bad_message)


class Connection:
    """One WebSocket client of the relay."""

    def __init__(
        self, state: RelayState, request: web.Request, ticks: TickWriter | None = None
    ) -> None:
        cfg = state.config
        self.state = state
        self.request = request
        self.conn = state.next_conn_id()
        self.ws = RelayWebSocket(
            final_timeout=cfg.close_timeout,
            heartbeat=cfg.heartbeat,
            timeout=cfg.close_timeout,
            compress=False,  # no permessage-deflate: payloads are ciphertext anyway
            max_msg_size=MAX_MESSAGE_BYTES,
            autoping=True,
        )
        self.queue = OutQueue(
            cfg.media_high_water,
            cfg.media_hard_limit,
            cfg.control_cap,
            cfg.keyframe_retry,
            on_ready=self._wake,
            on_overflow=self._overflow,
        )
        self.room: Room | None = None
        self.account: Account | None = None
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self._limit = RateLimit(cfg.msg_rate, cfg.msg_burst, cfg.byte_rate, cfg.byte_burst, now)
        commits = TokenBucket(cfg.commit_rate, cfg.commit_burst, now)
        self.peer = Peer(self.conn, self.queue, commits, on_drop=self._dropped)
        self._waiter: asyncio.Future[None] | None = None
        """Set while the writer task idles: ticks' batches are written by :meth:`_flush`."""
        self._flush_soon = False
        self._ticks = ticks or TickWriter()
        self._writer: asyncio.Task[None] | None = None
        self._stopping: CloseCode | None = None
        self._closing = False
        """True once the writer closes the WebSocket itself (after a drop)."""

    # ------------------------------------------------------------ lifecycle

    def _client_key(self) -> str:
        request = self.request
        peer = request.transport.get_extra_info("peername") if request.transport else None
        host = peer[0] if isinstance(peer, tuple) and peer else None
        forwarded = request.headers.getall("X-Forwarded-For", [])
        return self.state.accounts.key_for(host if isinstance(host, str) else None, forwarded)

    async def serve(self) -> web.WebSocketResponse:
        """Run this connection to its end (the aiohttp handler's body)."""
        accounts = self.state.accounts
        account = accounts.connect(self._client_key(), self._loop.time())
        if isinstance(account, Error):
            await self.ws.prepare(self.request)
            await self._close(_capacity(account))
            return self.ws
        self.account = self.peer.account = account
        self.queue.attach(account.backlog)
        try:
            return await self._serve()
        finally:
            self.queue.clear()
            self.queue.detach()
            accounts.disconnect(account, self._loop.time())

    async def _serve(self) -> web.WebSocketResponse:
        ws = self.ws
        await ws.prepare(self.request)
        self._tune_socket()
        self.state.connections.add(self)
        writer = self._writer = asyncio.create_task(self._write_loop())
        fatal: _Fatal | None = None
        reason = "disconnected"
        try:
            reason = await self._read_loop()
        except _Fatal as exc:
            fatal = exc
            reason = "error"
        except asyncio.CancelledError:
            reason = "relay stopping"
            raise
        except Exception:  # a relay bug: end this connection only, and say so
            log.exception("conn %d: internal error", self.conn)
            fatal = _Fatal(ErrorCode.internal, "internal error", CloseCode.internal)
            reason = "error"
        finally:
            self.leave(reason)
            if not self._closing:
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self.state.connections.discard(self)
            await self._close(fatal)
        return ws

    async def _close(self, fatal: _Fatal | None) -> None:
        ws = self.ws
        if ws.closed:
            return
        timeout = self.state.config.close_timeout
        code: int = self._stopping or CloseCode.normal
        if fatal is not None:
            code = fatal.close
            level = logging.DEBUG if fatal.quiet else logging.INFO
            log.log(level, "conn %d: closed (%s)", self.conn, fatal.error.code.name)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.send_bytes(encode(fatal.error)), timeout)
        try:
            await asyncio.wait_for(ws.close(code=code), timeout + 0.5)
        except (TimeoutError, ConnectionError):
            self._abort()

    def _abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def _tune_socket(self) -> None:
        size = self.state.config.socket_send_buffer
        if size is None:
            return
        sock = self.ws.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    async def stop(self, code: CloseCode = CloseCode.going_away) -> None:
        """Close from the relay's side (shutdown)."""
        self._stopping = code
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code), self.state.config.close_timeout)

    def leave(self, reason: str) -> None:
        """Leave the room (idempotent); the others get PeerLeft(reason)."""
        room = self.room
        if room is None:
            return
        self.room = None
        room.remove(self.peer, reason)
        self.queue.clear()
        log.debug("conn %d left room #%d: %s", self.conn, room.serial, reason)
        if self.state.cluster is not None:
            self.state.cluster.left(self.state.rooms, room, self._loop.time())
        if self.state.rooms.discard_if_empty(room, self._loop.time()):
            log.info("room #%d closed (%d rooms)", room.serial, len(self.state.rooms))

    # ------------------------------------------------------------ writing

    def _wake(self) -> None:
        """Something was queued: write it out at the next loop tick (once per tick)."""
        if not self._flush_soon:
            self._flush_soon = True
            self._ticks.add(self)

    def _flush(self) -> None:
        """This tick's batch: everything queued meanwhile, written while the writer task idles.

        The writer task takes over when the socket pushes back, the connection is
        closing, or a rotation dropped it (the task awaits; a callback cannot).
        """
        self._flush_soon = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # the writer task is busy (draining, closing) or gone: it writes itself
        if self._write_out():
            waiter.set_result(None)

    def _write_out(self) -> bool:
        """Write queued messages in batches of up to :data:`BATCH_BYTES`, one transport write
        each, control before media (:meth:`OutQueue.pop` order), until the queue is empty or
        the transport asks to pause; True if the writer task must act (paused, closing,
        rotated)."""
        request = self.request
        transport = request.transport
        if transport is None or transport.is_closing() or self.ws.closed:
            return True
        protocol = request.protocol
        pop = self.queue.pop
        while not protocol.writing_paused:
            data = pop()
            if data is None:
                break
            size = len(data)
            more = pop() if size < BATCH_BYTES else None
            if more is None:  # the usual case at light load: one message this tick
                transport.write(_header(size) + data)
                if size < BATCH_BYTES:
                    break
                continue
            parts = [_header(size), data]
            while more is not None:
                parts += (_header(len(more)), more)
                size += len(more)
                if size >= BATCH_BYTES:
                    break
                more = pop()
            transport.write(b"".join(parts))
            if more is None:
                break
        return protocol.writing_paused or self._stopping is _ROTATED

    async def _write_loop(self) -> None:
        """Own the socket when a tick's batch cannot: wait out back-pressure, close after
        a drop; otherwise idle on ``_waiter`` while :meth:`_flush` writes."""
        protocol = self.request.protocol
        loop = self._loop
        try:
            with contextlib.suppress(ConnectionError):
                while True:
                    transport = self.request.transport
                    if self.ws.closed or transport is None or transport.is_closing():
                        return
                    self._write_out()
                    if protocol.writing_paused:
                        await protocol._drain_helper()  # raises ConnectionError once lost
                    elif self._stopping is CloseCode.rotated:
                        # Dropped: the Error(rotated) is out; now close (bounded by stop()).
                        self._closing = True
                        await self.stop(CloseCode.rotated)
                        return
                    else:
                        self._waiter = loop.create_future()
                        await self._waiter
                        self._waiter = None
        finally:
            self._waiter = None

    def _overflow(self) -> None:
        # Called while another connection delivers to this one: act on the next tick.
        self._loop.call_soon(self._too_slow)

    def _dropped(self) -> None:
        """A member's Rotate removed this connection from its room (Error(rotated) queued)."""
        self.room = None
        self._stopping = CloseCode.rotated
        log.info("conn %d: dropped by a rotation", self.conn)
        self._wake()

    def _too_slow(self) -> None:
        """Its control backlog, or its address's backlog, is over the cap: it cannot stay."""
        if self._stopping is not None:
            return
        by_group = self.queue.overflowed_by_group
        self.state.stats.refuse(Refused.address_backlog if by_group else Refused.too_slow)
        log.debug("conn %d: too slow, disconnected", self.conn)
        self._stopping = CloseCode.too_slow
        self.leave("too slow")
        if self._writer is not None:
            self._writer.cancel()
        self._abort()

    # ------------------------------------------------------------ reading

    async def _read_loop(self) -> str:
        """Read until the client leaves or disconnects; return the PeerLeft reason."""
        reason = await self._admission()
        if reason is not None:
            return reason
        ws = self.ws
        receive = ws.receive
        allow = self._limit.allow
        clock = self._loop.time
        while True:
            msg = await receive()
            if msg.type is WSMsgType.BINARY:
                data: bytes = msg.data
                now = clock()
                if not allow(len(data), now):
                    raise _Fatal(ErrorCode.rate_limited, "rate limit", CloseCode.rate_limited)
                if len(data) < 2 or data[0] != PROTOCOL_VERSION:
                    raise _bad("bad frame prefix")
                if data[1] == MEDIA:
                    self._media(data, now)
                elif data[1] == CONTROL:
                    if await self._control(data):
                        return "left"
                else:
                    raise _bad("unknown channel")
            elif msg.type is WSMsgType.TEXT:
                raise _bad("text frames are not used")
            else:
                return self._ended()

    def _ended(self) -> str:
        if self._stopping is CloseCode.too_slow:
            return "too slow"
        if self._stopping is CloseCode.rotated:
            return "removed"
        if self._stopping is not None:
            return "relay stopping"
        if self.ws.aborted:
            return "error"
        if isinstance(self.ws.exception(), asyncio.TimeoutError):
            return "timeout"
        return "disconnected"

    async def _admission(self) -> str | None:
        """Wait for a successful Enter; a reason if the connection ended first."""
        ws = self.ws
        deadline = self._loop.time() + self.state.config.join_timeout
        while self.room is None:
            remaining = deadline - self._loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                msg = await ws.receive(timeout=remaining)
            except TimeoutError:
                raise _Fatal(
                    ErrorCode.not_joined, "no Enter in time", CloseCode.not_joined
                ) from None
            if msg.type is WSMsgType.TEXT:
                raise _bad("text frames are not used")
            if msg.type is not WSMsgType.BINARY:
                return self._ended()
            data: bytes = msg.data
            if not self._limit.allow(len(data), self._loop.time()):
                raise _Fatal(ErrorCode.rate_limited, "rate limit", CloseCode.rate_limited)
            if len(data) < 2 or data[0] != PROTOCOL_VERSION or data[1] != CONTROL:
                raise _Fatal(ErrorCode.not_joined, "Enter first", CloseCode.not_joined)
            request = self._decode(data)
            if isinstance(request, Leave):
                return "left"
            if not isinstance(request, Enter):
                raise _Fatal(ErrorCode.not_joined, "Enter first", CloseCode.not_joined)
            await self._enter(request)
        return None

    async def _enter(self, request: Enter) -> None:
        """Admission by ``Enter`` only (see :meth:`clave.relay.rooms.Rooms.enter`; on a
        cluster node, :meth:`clave.relay.cluster.node.ClusterNode.enter`)."""
        rooms, cluster, now = self.state.rooms, self.state.cluster, self._loop.time()
        if cluster is None:
            outcome = rooms.enter(request.room, request.token, now, self.account)
        else:
            outcome = await cluster.enter(rooms, request.room, request.token, now, self.account)
        if isinstance(outcome, Error):
            if outcome.code is not ErrorCode.bad_token:
                raise _capacity(outcome)
            self.peer.send(outcome)
            log.debug("conn %d: admission refused (%s)", self.conn, outcome.code.name)
            return
        if not outcome.peers:
            log.info("room #%d opened (%d rooms)", outcome.serial, len(rooms))
        if cluster is not None:
            await cluster.seed(outcome, self.peer, request.cred_hash)
        self.room = outcome
        outcome.add(self.peer, request.cred_hash)
        log.debug("conn %d joined room #%d (%d present)", self.conn, outcome.serial, len(outcome))

    def _decode(self, data: bytes) -> Any:
        try:
            return decode_client(memoryview(data)[2:])
        except WireError as exc:
            raise _bad(str(exc)) from None

    def _media(self, data: bytes, now: float) -> None:
        if len(data) > MAX_MEDIA_BYTES:
            raise _Fatal(ErrorCode.too_large, "media message too large", CloseCode.too_large)
        try:
            frame = decode_media(data)
        except WireError as exc:
            raise _bad(str(exc)) from None
        room = self.room
        if room is not None:
            room.media(
                self.peer,
                stamp_sender(data, self.conn),
                frame.kind,
                frame.keyframe,
                now,
                frame.layer,
            )

    async def _control(self, data: bytes) -> bool:
        """Dispatch one control message of an admitted client; True if it left. On a
        cluster node, commits wait for the cluster's order before the next message
        is read (a client's messages stay in order)."""
        msg = self._decode(data)
        room = self.room
        if room is None:
            # Removed while this message was in flight: too slow (end now), or dropped
            # by a rotation (ignore it; the writer closes after the Error).
            return self._stopping is not CloseCode.rotated
        handler = HANDLERS.get(type(msg))
        if handler is not None:
            cluster, now = self.state.cluster, self._loop.time()
            if cluster is None or not await cluster.ordered(room, self.peer, msg, now):
                handler(room, self.peer, msg, now)
            return False
        if isinstance(msg, Leave):
            return True
        raise _bad("already in a room")
