"""An in-memory delivery service for sans-I/O meetings (tests and benchmarks).

It is the relay without sockets: admission, commit ordering, routing and fan-out
are the relay's own I/O-free :class:`clave.relay.rooms.Rooms` and
:class:`~clave.relay.room.Room` (docs/PROTOCOL.md, "Relay channel"), so what the
meeting tests exercise cannot drift from what the relay does. Only the socket
side is replaced: connection ids from 1; each connection's
:class:`~clave.relay.queues.OutQueue` is drained at once into :attr:`inbox`
(per-connection FIFO, every frame also appended to :attr:`log`); ``Leave`` or
:meth:`disconnect` removes the peer as the relay's connection does.
:meth:`restart` forgets every room, as a relay process restart does.

The relay's limits stay on, generous by default (:data:`MEMORY_CONFIG`) so that
tests with an injected clock are not rate limited; time is ``clock()`` (0 by
default). ``check_tokens=False`` is a lax relay that lets any token into an
existing room (an attack model, never the real relay's behaviour).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from clave import wire
from clave.relay.config import RelayConfig
from clave.relay.limits import TokenBucket
from clave.relay.queues import OutQueue
from clave.relay.room import HANDLERS, Peer, Room
from clave.relay.rooms import Rooms

MEMORY_CONFIG = RelayConfig(
    commit_rate=1e9,
    commit_burst=1e9,
    room_commit_rate=1e9,
    room_commit_burst=1e9,
    media_high_water=1 << 40,
    media_hard_limit=1 << 40,
    control_cap=1 << 40,
)
"""The relay's rules without its rate limits and queue caps (time may not pass)."""
_REFUSAL_COUNTERS = {
    wire.ErrorCode.stale_epoch: "stale_refusals",
    wire.ErrorCode.bad_credential: "credential_refusals",
}


class MemoryRelay:
    """The relay's rooms behind in-memory connections."""

    def __init__(
        self,
        *,
        check_tokens: bool = True,
        config: RelayConfig = MEMORY_CONFIG,
        clock: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.config = config
        self.check_tokens = check_tokens
        self.clock = clock
        self.rooms = Rooms(config)
        self.peers: dict[int, Peer] = {}
        """Connections admitted to a room."""
        self.inbox: dict[int, deque[bytes]] = {}
        """What each open connection has been sent and not yet read."""
        self.next_conn = 1
        self.log: list[bytes] = []
        """Every frame delivered, in order (for fuzzing and audits)."""
        self.stale_refusals = 0
        self.credential_refusals = 0
        self.ordered = 0
        """Commits ordered (answered ``CommitAccepted``)."""

    def connect(self) -> int:
        conn = self.next_conn
        self.next_conn += 1
        self.inbox[conn] = deque()
        return conn

    def restart(self) -> None:
        """Forget every room and connection without telling anyone (a crash and a
        restart: the connections are gone, their owners reconnect). Connection ids
        start over, as a new relay process numbers them from 1 again."""
        self.rooms = Rooms(self.config)
        self.next_conn = 1
        self.peers.clear()
        self.inbox.clear()

    def disconnect(self, conn: int) -> None:
        """The connection is gone: the others get ``PeerLeft``."""
        self._leave(conn, "disconnected")
        self.inbox.pop(conn, None)

    # ------------------------------------------------------------------ delivery

    def _peer(self, conn: int) -> Peer:
        queue = OutQueue(
            self.config.media_high_water,
            self.config.media_hard_limit,
            self.config.control_cap,
            self.config.keyframe_retry,
        )
        peer = Peer(conn, queue, TokenBucket(self.config.commit_rate, self.config.commit_burst,
                                             self.clock()))  # fmt: skip
        queue.on_ready = lambda: self._drain(peer)
        peer.on_drop = lambda: self._dropped(conn)
        return peer

    def _drain(self, peer: Peer) -> None:
        box = self.inbox.get(peer.conn)
        while (frame := peer.queue.pop()) is not None:
            if box is not None:
                box.append(frame)
                self.log.append(frame)
                self._count(frame)

    def _count(self, frame: bytes) -> None:
        channel, body = wire.split_frame(frame)
        if channel != wire.CONTROL:
            return
        msg = wire.decode_relay(body)
        if isinstance(msg, wire.CommitAccepted):
            self.ordered += 1
        elif isinstance(msg, wire.Error) and msg.code in _REFUSAL_COUNTERS:
            name = _REFUSAL_COUNTERS[msg.code]
            setattr(self, name, getattr(self, name) + 1)

    def _send(self, conn: int, msg: wire.RelayMessage) -> None:
        """Deliver ``msg`` to ``conn`` directly (tests forging what a relay could send)."""
        frame = wire.encode(msg)
        box = self.inbox.get(conn)
        if box is not None:
            box.append(frame)
            self.log.append(frame)

    def _dropped(self, conn: int) -> None:
        """Dropped by a rotation: the socket stays open in this model, with nothing new."""
        self.peers.pop(conn, None)

    def _leave(self, conn: int, reason: str) -> None:
        peer = self.peers.pop(conn, None)
        if peer is None or peer.room is None:
            return
        room = peer.room
        room.remove(peer, reason)
        self.rooms.discard_if_empty(room, self.clock())

    # ------------------------------------------------------------------ input

    def handle(self, conn: int, frame: bytes) -> None:
        try:
            channel, body = wire.split_frame(frame)
            if channel == wire.MEDIA:
                self._media(conn, frame)
                return
            msg = wire.decode_client(body)
        except wire.WireError as exc:
            self._send(conn, wire.Error(code=wire.ErrorCode.bad_message, message=str(exc)[:200]))
            return
        peer = self.peers.get(conn)
        if isinstance(msg, wire.Enter):
            self._enter(conn, msg)
        elif isinstance(msg, wire.Leave):
            self._leave(conn, "left")
            self.inbox[conn] = deque()  # the socket itself stays open in this model
        elif peer is None or peer.room is None:
            self._send(conn, wire.Error(code=wire.ErrorCode.not_joined, message="join first"))
        else:
            HANDLERS[type(msg)](peer.room, peer, msg, self.clock())

    def _media(self, conn: int, frame: bytes) -> None:
        media = wire.decode_media(frame)
        peer = self.peers.get(conn)
        if peer is None or peer.room is None:
            raise wire.WireError("not joined")
        stamped = wire.stamp_sender(frame, conn)
        peer.room.media(peer, stamped, int(media.kind), media.keyframe, self.clock(), media.layer)

    def _enter(self, conn: int, msg: wire.Enter) -> None:
        if conn in self.peers:
            self._send(conn, wire.Error(code=wire.ErrorCode.bad_message, message="already in"))
            return
        room: Room | wire.Error | None = None
        if not self.check_tokens:
            room = self.rooms.get(msg.room)
        if room is None:
            room = self.rooms.enter(msg.room, msg.token, self.clock())
        if isinstance(room, wire.Error):
            self._send(conn, room)
            return
        peer = self._peer(conn)
        self.peers[conn] = peer
        room.add(peer, msg.cred_hash)


__all__ = ["MEMORY_CONFIG", "MemoryRelay"]
