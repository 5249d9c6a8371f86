"""Rooms: admission by token hash, delivery-service ordering, fan-out to queues.

Everything here is synchronous and I/O-free: a :class:`Peer` is a connection
id, its subscription and its :class:`~clave.relay.queues.OutQueue`; delivering
means queueing. The asyncio side (:mod:`clave.relay.connection`) drains queues.

Ordering (the MLS delivery service): a room has an epoch, starting at 0. A
handshake is accepted only for the current epoch. The first commit for it
advances the epoch, is confirmed to its sender with ``CommitAccepted`` and
forwarded to everybody else; any later commit or proposal for an old epoch is
refused with ``Error(stale_epoch, epoch=current)`` so its sender can catch up.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator

from clave.wire import (
    AppFrom,
    AppMessage,
    CommitAccepted,
    Error,
    ErrorCode,
    Handshake,
    HandshakeFrom,
    Joined,
    JoinRequest,
    JoinRequestFrom,
    KeyframeRequest,
    KeyframeWanted,
    PeerJoined,
    PeerLeft,
    RelayMessage,
    Subscribe,
    WelcomeFor,
    WelcomeTo,
    encode,
)

from .queues import OutQueue

BAD_TOKEN = Error(ErrorCode.bad_token, "unknown room or bad token")
"""The one answer for an unknown room and a wrong token: the relay does not tell which."""


class Peer:
    """One admitted connection as the room sees it."""

    __slots__ = ("conn", "queue", "room", "wants")

    def __init__(self, conn: int, queue: OutQueue) -> None:
        self.conn = conn
        self.queue = queue
        self.wants = (True, True, True)
        """Subscribed media kinds, indexed by StreamKind (audio, video, screen)."""
        self.room: Room | None = None

    def send(self, msg: RelayMessage) -> None:
        """Queue a control message for this peer (never dropped)."""
        self.queue.push_control(encode(msg))


class Room:
    """One meeting's relay channel: members, epoch and fan-out lists."""

    __slots__ = ("_fanout", "_members", "epoch", "id", "peers", "serial", "token_hash")

    def __init__(self, room_id: str, token_hash: bytes, serial: int) -> None:
        self.id = room_id
        self.token_hash = token_hash
        self.serial = serial
        """A small number for logs (room ids stay out of logs)."""
        self.epoch = 0
        self.peers: dict[int, Peer] = {}
        self._members: tuple[Peer, ...] = ()
        self._fanout: tuple[tuple[Peer, ...], ...] = ((), (), ())

    def __len__(self) -> int:
        return len(self.peers)

    def _rebuild(self) -> None:
        # Immutable snapshots: iterating while a peer joins or leaves is safe.
        self._members = tuple(self.peers.values())
        self._fanout = tuple(tuple(p for p in self._members if p.wants[kind]) for kind in range(3))

    def _broadcast(self, sender: Peer, msg: RelayMessage) -> None:
        data = encode(msg)
        for peer in self._members:
            if peer is not sender:
                peer.queue.push_control(data)

    # ------------------------------------------------------------ membership

    def add(self, peer: Peer) -> None:
        """Admit ``peer``: it gets ``Joined``, everybody else ``PeerJoined``."""
        others = [p.conn for p in self._members]
        self.peers[peer.conn] = peer
        peer.room = self
        self._rebuild()
        peer.send(Joined(conn=peer.conn, epoch=self.epoch, peers=others))
        self._broadcast(peer, PeerJoined(conn=peer.conn))

    def remove(self, peer: Peer, reason: str) -> None:
        """Remove ``peer`` (idempotent); everybody else gets ``PeerLeft(reason)``."""
        if self.peers.pop(peer.conn, None) is None:
            return
        peer.room = None
        self._rebuild()
        self._broadcast(peer, PeerLeft(conn=peer.conn, reason=reason))
        for other in self._members:
            other.queue.forget(peer.conn)

    def subscribe(self, peer: Peer, msg: Subscribe) -> None:
        peer.wants = (msg.audio, msg.video, msg.screen)
        self._rebuild()

    # ------------------------------------------------------------ control

    def handshake(self, peer: Peer, msg: Handshake) -> None:
        """Order an MLS handshake message (see the module docstring)."""
        if msg.epoch != self.epoch:
            peer.send(
                Error(
                    ErrorCode.stale_epoch,
                    f"handshake for epoch {msg.epoch}, room is at {self.epoch}",
                    epoch=self.epoch,
                )
            )
            return
        if msg.commit:
            self.epoch += 1
            peer.send(CommitAccepted(epoch=self.epoch))
        self._broadcast(
            peer, HandshakeFrom(sender=peer.conn, epoch=msg.epoch, commit=msg.commit, data=msg.data)
        )

    def welcome(self, peer: Peer, msg: WelcomeTo) -> None:
        target = self.peers.get(msg.to)
        if target is None:
            peer.send(Error(ErrorCode.unknown_peer, f"no connection {msg.to} in this room"))
            return
        target.send(WelcomeFor(sender=peer.conn, data=msg.data))

    def join_request(self, peer: Peer, msg: JoinRequest) -> None:
        self._broadcast(peer, JoinRequestFrom(sender=peer.conn, data=msg.data))

    def app(self, peer: Peer, msg: AppMessage) -> None:
        self._broadcast(peer, AppFrom(sender=peer.conn, epoch=msg.epoch, data=msg.data))

    def keyframe_request(self, peer: Peer, msg: KeyframeRequest) -> None:
        target = self.peers.get(msg.to)
        if target is None:
            peer.send(Error(ErrorCode.unknown_peer, f"no connection {msg.to} in this room"))
            return
        target.send(KeyframeWanted(by=peer.conn, kind=msg.kind))

    # ------------------------------------------------------------ media

    def media(self, sender: Peer, data: bytes, kind: int, keyframe: bool, now: float) -> None:
        """Queue a (sender-stamped) media message for every other subscribed member."""
        conn = sender.conn
        for peer in self._fanout[kind]:
            if peer is not sender and peer.queue.push_media(data, conn, kind, keyframe, now):
                sender.send(KeyframeWanted(by=peer.conn, kind=kind))


class Rooms:
    """All rooms of one relay, in memory only."""

    def __init__(self, max_rooms: int, max_conns_per_room: int) -> None:
        self.max_rooms = max_rooms
        self.max_conns_per_room = max_conns_per_room
        self._rooms: dict[str, Room] = {}
        self._serial = 0
        self._decoy = hashlib.sha256(secrets.token_bytes(32)).digest()

    def __len__(self) -> int:
        return len(self._rooms)

    def __iter__(self) -> Iterator[Room]:
        return iter(tuple(self._rooms.values()))

    def create(self, room_id: str, token_hash: bytes) -> Room | Error:
        """A new empty room keyed by the token's hash, or the refusal."""
        if room_id in self._rooms:
            return Error(ErrorCode.room_exists, "room exists")
        if len(self._rooms) >= self.max_rooms:
            return Error(ErrorCode.room_full, "this relay has no room for another meeting")
        self._serial += 1
        room = Room(room_id, bytes(token_hash), self._serial)
        self._rooms[room_id] = room
        return room

    def admit(self, room_id: str, token: bytes) -> Room | Error:
        """The room if SHA-256(token) matches its hash; unknown room and bad token look alike."""
        room = self._rooms.get(room_id)
        expected = room.token_hash if room is not None else self._decoy
        good = hmac.compare_digest(hashlib.sha256(token).digest(), expected)
        if room is None or not good:
            return BAD_TOKEN
        if len(room) >= self.max_conns_per_room:
            return Error(ErrorCode.room_full, "room is full")
        return room

    def discard_if_empty(self, room: Room) -> bool:
        """Forget ``room`` if nobody is left in it; True if it vanished."""
        if room.peers or self._rooms.get(room.id) is not room:
            return False
        del self._rooms[room.id]
        return True
