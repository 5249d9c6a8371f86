"""A tiny in-test delivery service for :class:`clave.meeting.Meeting` instances.

``FakeRelay`` applies the relay rules that clave.wire and docs/PROTOCOL.md
describe: rooms keyed by room id holding SHA-256(access token); connection
ids from 1; per-connection FIFO delivery; a ``Handshake`` is accepted only
for the room's current epoch (a commit increments it and is confirmed with
``CommitAccepted`` to the sender; ``HandshakeFrom`` goes to every other
connection) and otherwise refused with ``Error(stale_epoch, epoch=current)``;
``JoinRequest``/``AppMessage`` and media go to every other connection
(media stamped with the sender's conn and filtered by ``Subscribe``);
``WelcomeTo``/``KeyframeRequest`` go to one connection; ``Leave`` or a
disconnect sends ``PeerLeft`` to the others.

``Net`` wires meetings to it with a deterministic rng, a fake monotonic clock
and a fixed Unix time, and pumps frames until nothing moves. Outgoing
frames can be held and released in a chosen order to force races.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clave import wire
from clave.meeting import (
    EpochChanged,
    Error,
    Event,
    LobbyRequest,
    Meeting,
    MeetingConfig,
    MeetingLink,
    new_link,
)
from clave.wire.media import StreamKind

NOW = 1_800_000_000


@dataclass
class Room:
    token_hash: bytes
    epoch: int = 0
    conns: list[int] = field(default_factory=list)


class FakeRelay:
    def __init__(self, *, check_tokens: bool = True) -> None:
        self.rooms: dict[str, Room] = {}
        self.room_of: dict[int, str] = {}
        self.inbox: dict[int, deque[bytes]] = {}
        self.subscriptions: dict[int, set[int]] = {}
        self.next_conn = 1
        self.check_tokens = check_tokens
        self.log: list[bytes] = []  # every frame delivered, for fuzzing
        self.stale_refusals = 0

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
        if isinstance(msg, wire.Create | wire.Join):
            self._enter(conn, msg)
            return
        if conn not in self.room_of:
            self._send(conn, wire.Error(code=wire.ErrorCode.not_joined, message="join first"))
            return
        room = self.rooms[self.room_of[conn]]
        if isinstance(msg, wire.Handshake):
            if msg.epoch != room.epoch:
                self.stale_refusals += 1
                self._send(
                    conn,
                    wire.Error(code=wire.ErrorCode.stale_epoch, message="stale", epoch=room.epoch),
                )
                return
            if msg.commit:
                room.epoch += 1
                self._send(conn, wire.CommitAccepted(epoch=room.epoch))
            for other in self._others(conn):
                self._send(
                    other,
                    wire.HandshakeFrom(
                        sender=conn, epoch=msg.epoch, commit=msg.commit, data=msg.data
                    ),
                )
        elif isinstance(msg, wire.WelcomeTo):
            if msg.to in room.conns:
                self._send(msg.to, wire.WelcomeFor(sender=conn, data=msg.data))
            else:
                self._send(conn, wire.Error(code=wire.ErrorCode.unknown_peer, message="gone"))
        elif isinstance(msg, wire.JoinRequest):
            for other in self._others(conn):
                self._send(other, wire.JoinRequestFrom(sender=conn, data=msg.data))
        elif isinstance(msg, wire.AppMessage):
            for other in self._others(conn):
                self._send(other, wire.AppFrom(sender=conn, epoch=msg.epoch, data=msg.data))
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

    def _enter(self, conn: int, msg: wire.Create | wire.Join) -> None:
        if conn in self.room_of:
            self._send(conn, wire.Error(code=wire.ErrorCode.bad_message, message="already in"))
            return
        if isinstance(msg, wire.Create):
            if msg.room in self.rooms:
                self._send(conn, wire.Error(code=wire.ErrorCode.room_exists, message="exists"))
                return
            self.rooms[msg.room] = Room(msg.token_hash)
        else:
            room_ = self.rooms.get(msg.room)
            if room_ is None:
                self._send(conn, wire.Error(code=wire.ErrorCode.unknown_room, message="no room"))
                return
            if self.check_tokens and hashlib.sha256(msg.token).digest() != room_.token_hash:
                self._send(conn, wire.Error(code=wire.ErrorCode.bad_token, message="bad token"))
                return
        room = self.rooms[msg.room]
        peers = list(room.conns)
        room.conns.append(conn)
        self.room_of[conn] = msg.room
        self._send(conn, wire.Joined(conn=conn, epoch=room.epoch, peers=peers))
        for other in peers:
            self._send(other, wire.PeerJoined(conn=conn))


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Client:
    name: str
    meeting: Meeting
    conn: int
    events: list[Event] = field(default_factory=list)
    held: bool = False

    def drain(self) -> list[Event]:
        new: list[Event] = []
        while (ev := self.meeting.next_event()) is not None:
            new.append(ev)
        self.events.extend(new)
        return new

    def of(self, cls: type[Any]) -> list[Any]:
        self.drain()
        return [e for e in self.events if isinstance(e, cls)]

    def errors(self) -> list[Error]:
        return self.of(Error)

    def clear(self) -> None:
        self.drain()
        self.events.clear()


class Net:
    def __init__(
        self, seed: int = 1, *, check_tokens: bool = True, config: MeetingConfig | None = None
    ) -> None:
        self.random = random.Random(seed)
        self.relay = FakeRelay(check_tokens=check_tokens)
        self.clock = FakeClock()
        self.config = config or MeetingConfig()
        self.clients: list[Client] = []
        self.link: MeetingLink | None = None
        self.unix = NOW

    def rng(self, n: int) -> bytes:
        return self.random.randbytes(n)

    def now(self) -> int:
        return self.unix

    def _add(self, name: str, meeting: Meeting) -> Client:
        client = Client(name, meeting, self.relay.connect())
        self.clients.append(client)
        return client

    def host(self, name: str = "Host", *, auto_admit: bool = False) -> Client:
        self.link = new_link("https://clave.example", self.rng)
        meeting = Meeting.create(
            self.link,
            name,
            rng=self.rng,
            clock=self.clock,
            now=self.now,
            config=self.config,
            auto_admit=auto_admit,
        )
        return self._add(name, meeting)

    def guest(self, name: str, link: MeetingLink | None = None) -> Client:
        use = link or self.link
        assert use is not None
        meeting = Meeting.join(
            use, name, rng=self.rng, clock=self.clock, now=self.now, config=self.config
        )
        return self._add(name, meeting)

    # ---------------------------------------------------------------- moving frames

    def flush(self, clients: Iterable[Client] | None = None) -> bool:
        """Hand the clients' outgoing frames to the relay, in the given client order."""
        moved = False
        for c in self.clients if clients is None else clients:
            for frame in c.meeting.frames_to_send():
                self.relay.handle(c.conn, frame)
                moved = True
        return moved

    def deliver(self, clients: Iterable[Client] | None = None) -> bool:
        moved = False
        for c in self.clients if clients is None else clients:
            box = self.relay.inbox.get(c.conn)
            while box:
                c.meeting.receive(box.popleft())
                c.drain()
                moved = True
        return moved

    def pump(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            active = [c for c in self.clients if not c.held]
            moved = self.flush(active)
            moved = self.deliver(active) or moved
            if not moved:
                return
        raise AssertionError("the network did not settle")

    def send_media(self, c: Client, kind: StreamKind, keyframe: bool, payload: bytes) -> bytes:
        self.flush([c])  # control frames queued before the media keep their order
        frame = c.meeting.protect_media(kind, keyframe, payload)
        self.relay.handle(c.conn, frame)
        return frame

    def disconnect(self, c: Client) -> None:
        self.relay.disconnect(c.conn)
        self.clients.remove(c)

    # ---------------------------------------------------------------- scenarios

    def admit_via_lobby(self, host: Client, guest: Client) -> None:
        self.pump()
        requests = [e for e in host.of(LobbyRequest) if e.request_id == guest.conn]
        assert requests, f"{guest.name} never reached {host.name}'s lobby: {host.events}"
        assert host.meeting.admit(guest.conn)
        self.pump()
        assert guest.meeting.phase == "in_meeting", guest.events

    def members(self) -> list[Client]:
        return [c for c in self.clients if c.meeting.phase == "in_meeting"]


def last_epoch_change(c: Client) -> EpochChanged:
    changes = c.of(EpochChanged)
    assert changes
    return changes[-1]


def view(c: Client) -> tuple[Any, ...]:
    """What must agree across members: epoch, security code, roster without is_self."""
    m = c.meeting
    roster = tuple((r.leaf, r.name, r.fingerprint, r.is_host) for r in m.roster)
    return (m.epoch, m.security_code, roster)
