"""An in-memory delivery service for sans-I/O meetings (tests and benchmarks).

It applies the rules of the relay (docs/PROTOCOL.md, "Relay channel") without
sockets: a room is named by ``room_id_for_token(token)`` and entered with
``Enter`` (created when absent; the first member credential hash registered);
connection ids from 1; per-connection FIFO delivery; a ``Commit`` is ordered
when SHA-256 of its credential is an open slot (the slot is consumed, the
``next`` hash opened, ``CommitAccepted`` to the sender and ``CommitFrom`` to
everybody else), refused with ``stale_epoch`` for a consumed slot and with
``bad_credential`` for an unknown one; ``Reopen`` reopens a consumed slot;
``Rotate`` renames the room and drops connections; ``JoinRequest``,
``AppMessage`` and ``Manifest`` go to every other connection, media too
(stamped with the sender's conn and filtered by ``Subscribe``); ``WelcomeTo``,
``ReplyTo`` and ``KeyframeRequest`` go to one connection; ``Leave`` or a
disconnect sends ``PeerLeft`` to the others. No limits, queues or timing: the
real relay (``clave.relay``) has those.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from clave import wire


@dataclass
class Room:
    token_hash: bytes
    conns: list[int] = field(default_factory=list)
    slots: dict[bytes, bool] = field(default_factory=dict)
    """credential hash -> consumed"""


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

    def connect(self) -> int:
        conn = self.next_conn
        self.next_conn += 1
        self.inbox[conn] = deque()
        self.subscriptions[conn] = {0, 1, 2}
        return conn

    def _to(self, conn: int, frame: bytes) -> None:
        if conn in self.inbox:
            self.inbox[conn].append(frame)
            self.log.append(frame)

    def _send(self, conn: int, msg: Any) -> None:
        self._to(conn, wire.encode(msg))

    def _others(self, conn: int) -> list[int]:
        room = self.rooms[self.room_of[conn]]
        return [c for c in room.conns if c != conn]

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
                media = wire.decode_media(frame)
                if conn not in self.room_of:
                    raise wire.WireError("not joined")
                stamped = wire.stamp_sender(frame, conn)
                for other in self._others(conn):
                    if int(media.kind) in self.subscriptions[other]:
                        self._to(other, stamped)
                return
            msg = wire.decode_client(body)
        except wire.WireError as exc:
            self._send(conn, wire.Error(code=wire.ErrorCode.bad_message, message=str(exc)[:200]))
            return
        if isinstance(msg, wire.Enter):
            self._enter(conn, msg)
            return
        if conn not in self.room_of:
            self._send(conn, wire.Error(code=wire.ErrorCode.not_joined, message="join first"))
            return
        room = self.rooms[self.room_of[conn]]
        if isinstance(msg, wire.Commit):
            h = wire.credential_hash(msg.cred)
            state = room.slots.get(h)
            if state is None:
                self.credential_refusals += 1
                self._send(conn, wire.Error(code=wire.ErrorCode.bad_credential, message="unknown"))
                return
            if state:
                self.stale_refusals += 1
                self._send(conn, wire.Error(code=wire.ErrorCode.stale_epoch, message="stale"))
                return
            room.slots[h] = True
            room.slots.setdefault(msg.next, False)
            self._send(conn, wire.CommitAccepted())
            for other in self._others(conn):
                self._send(other, wire.CommitFrom(sender=conn, data=msg.data))
        elif isinstance(msg, wire.Reopen):
            h = wire.credential_hash(msg.cred)
            if room.slots.get(h):
                room.slots[h] = False
        elif isinstance(msg, wire.Rotate):
            if wire.credential_hash(msg.cred) not in room.slots:
                self._send(conn, wire.Error(code=wire.ErrorCode.bad_credential, message="unknown"))
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
                    self._send(c, wire.Error(code=wire.ErrorCode.rotated, message="rotated"))
                    self.disconnect(c)
                    self.inbox[c] = deque()
            for other in self._others(conn):
                self._send(other, wire.Rotated(by=conn))
        elif isinstance(msg, wire.WelcomeTo):
            if msg.to in room.conns:
                self._send(msg.to, wire.WelcomeFor(sender=conn, data=msg.data))
            else:
                self._send(conn, wire.Error(code=wire.ErrorCode.unknown_peer, message="gone"))
        elif isinstance(msg, wire.ReplyTo):
            if msg.to in room.conns:
                self._send(msg.to, wire.ReplyFrom(sender=conn, data=msg.data))
        elif isinstance(msg, wire.JoinRequest):
            for other in self._others(conn):
                self._send(other, wire.JoinRequestFrom(sender=conn, data=msg.data))
        elif isinstance(msg, wire.AppMessage):
            for other in self._others(conn):
                self._send(other, wire.AppFrom(sender=conn, data=msg.data))
        elif isinstance(msg, wire.Manifest):
            for other in self._others(conn):
                self._send(other, wire.ManifestFrom(sender=conn, data=msg.data))
        elif isinstance(msg, wire.KeyframeRequest):
            if msg.to in room.conns:
                self._send(msg.to, wire.KeyframeWanted(by=conn, kind=msg.kind))
        elif isinstance(msg, wire.Subscribe):
            kinds = {0} if msg.audio else set()
            kinds |= {1} if msg.video else set()
            kinds |= {2} if msg.screen else set()
            self.subscriptions[conn] = kinds
        elif isinstance(msg, wire.Leave):
            self.disconnect(conn)
            self.inbox[conn] = deque()  # the socket itself stays open in this model

    def _enter(self, conn: int, msg: wire.Enter) -> None:
        if conn in self.room_of:
            self._send(conn, wire.Error(code=wire.ErrorCode.bad_message, message="already in"))
            return
        bad = wire.Error(code=wire.ErrorCode.bad_token, message="bad token")
        if self.check_tokens and wire.room_id_for_token(msg.token) != msg.room:
            self._send(conn, bad)
            return
        room = self.rooms.get(msg.room)
        if room is None:
            room = self.rooms[msg.room] = Room(hashlib.sha256(msg.token).digest())
        elif self.check_tokens and hashlib.sha256(msg.token).digest() != room.token_hash:
            self._send(conn, bad)
            return
        if msg.cred_hash is not None and not room.slots:
            room.slots[msg.cred_hash] = False
        peers = list(room.conns)
        room.conns.append(conn)
        self.room_of[conn] = msg.room
        self._send(conn, wire.Joined(conn=conn, peers=peers))
        for other in peers:
            self._send(other, wire.PeerJoined(conn=conn))
