"""An in-memory delivery service for sans-I/O meetings (tests and benchmarks).

It applies the rules of the relay (docs/PROTOCOL.md, "Relay channel") without
sockets: a room is named by ``room_id_for_token(token)`` and entered with
``Enter`` (created when absent); connection ids from 1; per-connection FIFO
delivery. Commit ordering is the relay's own
(:class:`clave.relay.ordering.EpochSlots`): an entering member registers its
epoch's credential hash until the room has ordered a commit, a ``Commit`` is
ordered when SHA-256 of its credential is an open slot (``CommitAccepted`` to
the sender and ``CommitFrom`` to everybody else), refused with ``stale_epoch``
for a consumed slot and with ``bad_credential`` for an unknown one; ``Reopen``
reopens a consumed slot; a member entering with the hash of a consumed slot is
first replayed the commits ordered since. ``Rotate`` renames the room and drops
connections; ``JoinRequest``, ``AppMessage`` and ``Manifest`` go to every other
connection, media too (stamped with the sender's conn and filtered by
``Subscribe``); ``WelcomeTo``, ``ReplyTo`` and ``KeyframeRequest`` go to one
connection; ``Leave`` or a disconnect sends ``PeerLeft`` to the others;
:meth:`MemoryRelay.restart` forgets every room, as a relay process restart does.
No limits, queues or timing: the real relay (``clave.relay``) has those.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clave import wire
from clave.relay.ordering import EpochSlots, Verdict

_REFUSALS = {
    Verdict.stale: wire.ErrorCode.stale_epoch,
    Verdict.unknown: wire.ErrorCode.bad_credential,
    Verdict.owner_limit: wire.ErrorCode.rate_limited,
    Verdict.full: wire.ErrorCode.rate_limited,
}


@dataclass
class Room:
    token_hash: bytes
    conns: list[int] = field(default_factory=list)
    slots: EpochSlots = field(default_factory=EpochSlots)


class MemoryRelay:
    def __init__(self, *, check_tokens: bool = True) -> None:
        self.rooms: dict[str, Room] = {}
        self.room_of: dict[int, str] = {}
        self.inbox: dict[int, deque[bytes]] = {}
        self.subscriptions: dict[int, set[int]] = {}
        self.next_conn = 1
        self.check_tokens = check_tokens
        self.log: list[bytes] = []  # every frame delivered, for fuzzing
        self.stale_refusals = 0
        self.credential_refusals = 0
        self.ordered = 0

    def connect(self) -> int:
        conn = self.next_conn
        self.next_conn += 1
        self.inbox[conn] = deque()
        self.subscriptions[conn] = {0, 1, 2}
        return conn

    def restart(self) -> None:
        """Forget every room and connection without telling anyone (a crash and a
        restart: the connections are gone, their owners reconnect)."""
        self.rooms.clear()
        self.room_of.clear()
        self.inbox.clear()
        self.subscriptions.clear()

    def _to(self, conn: int, frame: bytes) -> None:
        if conn in self.inbox:
            self.inbox[conn].append(frame)
            self.log.append(frame)

    def _send(self, conn: int, msg: Any) -> None:
        self._to(conn, wire.encode(msg))

    def _error(self, conn: int, code: wire.ErrorCode, message: str) -> None:
        self._send(conn, wire.Error(code=code, message=message))

    def _others(self, conn: int) -> list[int]:
        room = self.rooms[self.room_of[conn]]
        return [c for c in room.conns if c != conn]

    def _to_others(self, conn: int, msg: Any) -> None:
        for other in self._others(conn):
            self._send(other, msg)

    def disconnect(self, conn: int) -> None:
        name = self.room_of.pop(conn, None)
        if name is not None:
            room = self.rooms[name]
            room.conns.remove(conn)
            for other in room.conns:
                self._send(other, wire.PeerLeft(conn=conn))
            if not room.conns:
                del self.rooms[name]
        self.inbox.pop(conn, None)

    def handle(self, conn: int, frame: bytes) -> None:
        try:
            channel, body = wire.split_frame(frame)
            if channel == wire.MEDIA:
                self._media(conn, frame)
                return
            msg = wire.decode_client(body)
        except wire.WireError as exc:
            self._error(conn, wire.ErrorCode.bad_message, str(exc)[:200])
            return
        if isinstance(msg, wire.Enter):
            self._enter(conn, msg)
        elif conn not in self.room_of:
            self._error(conn, wire.ErrorCode.not_joined, "join first")
        else:
            _HANDLERS[type(msg)](self, conn, self.rooms[self.room_of[conn]], msg)

    def _media(self, conn: int, frame: bytes) -> None:
        media = wire.decode_media(frame)
        if conn not in self.room_of:
            raise wire.WireError("not joined")
        stamped = wire.stamp_sender(frame, conn)
        for other in self._others(conn):
            if int(media.kind) in self.subscriptions[other]:
                self._to(other, stamped)

    def _enter(self, conn: int, msg: wire.Enter) -> None:
        if conn in self.room_of:
            self._error(conn, wire.ErrorCode.bad_message, "already in")
            return
        if self.check_tokens and wire.room_id_for_token(msg.token) != msg.room:
            self._error(conn, wire.ErrorCode.bad_token, "bad token")
            return
        room = self.rooms.get(msg.room)
        if room is None:
            room = self.rooms[msg.room] = Room(hashlib.sha256(msg.token).digest())
        elif self.check_tokens and hashlib.sha256(msg.token).digest() != room.token_hash:
            self._error(conn, wire.ErrorCode.bad_token, "bad token")
            return
        if msg.cred_hash is not None:
            for sender, data in room.slots.chain(bytes(msg.cred_hash)):
                self._send(conn, wire.CommitFrom(sender=sender, data=data))
            room.slots.seed(bytes(msg.cred_hash), conn)
        peers = list(room.conns)
        room.conns.append(conn)
        self.room_of[conn] = msg.room
        self._send(conn, wire.Joined(conn=conn, peers=peers))
        for other in peers:
            self._send(other, wire.PeerJoined(conn=conn))

    # ------------------------------------------------------------------ admitted

    def _commit(self, conn: int, room: Room, msg: wire.Commit) -> None:
        cred = wire.credential_hash(msg.cred)
        verdict = room.slots.commit(cred, bytes(msg.next), conn, room.conns, bytes(msg.data))
        if verdict is not Verdict.accepted:
            self.stale_refusals += verdict is Verdict.stale
            self.credential_refusals += verdict is Verdict.unknown
            self._error(conn, _REFUSALS[verdict], verdict.value)
            return
        self.ordered += 1
        self._send(conn, wire.CommitAccepted())
        self._to_others(conn, wire.CommitFrom(sender=conn, data=msg.data))

    def _reopen(self, conn: int, room: Room, msg: wire.Reopen) -> None:
        room.slots.reopen(wire.credential_hash(msg.cred))

    def _rotate(self, conn: int, room: Room, msg: wire.Rotate) -> None:
        if not room.slots.is_open(wire.credential_hash(msg.cred)):
            self._error(conn, wire.ErrorCode.bad_credential, "unknown")
            return
        old = self.room_of[conn]
        new = wire.room_id_for_token(msg.token)
        del self.rooms[old]
        self.rooms[new] = room
        room.token_hash = hashlib.sha256(msg.token).digest()
        for c in room.conns:
            self.room_of[c] = new
        for c in list(msg.drop):
            if c in room.conns and c != conn:
                self._error(c, wire.ErrorCode.rotated, "rotated")
                self.disconnect(c)
                self.inbox[c] = deque()
        self._to_others(conn, wire.Rotated(by=conn))

    def _welcome(self, conn: int, room: Room, msg: wire.WelcomeTo) -> None:
        if msg.to in room.conns:
            self._send(msg.to, wire.WelcomeFor(sender=conn, data=msg.data))
        else:
            self._error(conn, wire.ErrorCode.unknown_peer, "gone")

    def _reply(self, conn: int, room: Room, msg: wire.ReplyTo) -> None:
        if msg.to in room.conns:
            self._send(msg.to, wire.ReplyFrom(sender=conn, data=msg.data))

    def _keyframe(self, conn: int, room: Room, msg: wire.KeyframeRequest) -> None:
        if msg.to in room.conns:
            self._send(msg.to, wire.KeyframeWanted(by=conn, kind=msg.kind))

    def _subscribe(self, conn: int, room: Room, msg: wire.Subscribe) -> None:
        wanted = (msg.audio, msg.video, msg.screen)
        self.subscriptions[conn] = {kind for kind, on in enumerate(wanted) if on}

    def _leave(self, conn: int, room: Room, msg: wire.Leave) -> None:
        self.disconnect(conn)
        self.inbox[conn] = deque()  # the socket itself stays open in this model


_HANDLERS: dict[type, Callable[[MemoryRelay, int, Room, Any], None]] = {
    wire.Commit: MemoryRelay._commit,
    wire.Reopen: MemoryRelay._reopen,
    wire.Rotate: MemoryRelay._rotate,
    wire.WelcomeTo: MemoryRelay._welcome,
    wire.ReplyTo: MemoryRelay._reply,
    wire.KeyframeRequest: MemoryRelay._keyframe,
    wire.Subscribe: MemoryRelay._subscribe,
    wire.Leave: MemoryRelay._leave,
    wire.JoinRequest: lambda r, c, room, m: r._to_others(
        c, wire.JoinRequestFrom(sender=c, data=m.data)
    ),
    wire.AppMessage: lambda r, c, room, m: r._to_others(c, wire.AppFrom(sender=c, data=m.data)),
    wire.Manifest: lambda r, c, room, m: r._to_others(
        c, wire.ManifestFrom(sender=c, data=m.data)
    ),
}
