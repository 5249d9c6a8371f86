"""A tiny in-test delivery service for :class:`clave.meeting.Meeting` instances.

``FakeRelay`` applies the relay rules that clave.wire and docs/PROTOCOL.md
describe: a room is named by ``room_id_for_token(token)`` and entered with
``Enter`` (created when absent; the first member credential hash registered);
connection ids from 1; per-connection FIFO delivery; a ``Commit`` is ordered
when SHA-256 of its credential is an open slot (the slot is consumed, the
``next`` hash opened, ``CommitAccepted`` to the sender and ``CommitFrom`` to
everybody else), refused with ``stale_epoch`` for a consumed slot and with
``bad_credential`` for an unknown one; ``Reopen`` reopens a consumed slot;
``Rotate`` renames the room and drops connections; ``JoinRequest``/
``AppMessage`` and media go to every other connection (media stamped with
the sender's conn and filtered by ``Subscribe``); ``WelcomeTo``/``ReplyTo``/
``KeyframeRequest`` go to one connection; ``Leave`` or a disconnect sends
``PeerLeft`` to the others.

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
    Identity,
    LobbyRequest,
    Meeting,
    MeetingConfig,
    MeetingLink,
    generate_owner_key,
    new_link,
)
from clave.mls.events import allow_all
from clave.wire.media import StreamKind

NOW = 1_800_000_000


@dataclass
class Room:
    token_hash: bytes
    conns: list[int] = field(default_factory=list)
    slots: dict[bytes, bool] = field(default_factory=dict)
    """credential hash -> consumed"""


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
        owner_private, owner_public = generate_owner_key(self.rng)
        self.link = new_link("https://clave.example", self.rng, owner_public)
        meeting = Meeting.create(
            self.link,
            name,
            owner_key=owner_private,
            rng=self.rng,
            clock=self.clock,
            now=self.now,
            config=self.config,
            identity=Identity.generate(self.rng),
            auto_admit=auto_admit,
        )
        return self._add(name, meeting)

    def guest(self, name: str, link: MeetingLink | None = None) -> Client:
        use = link or self.link
        assert use is not None
        meeting = Meeting.join(
            use,
            name,
            rng=self.rng,
            clock=self.clock,
            now=self.now,
            config=self.config,
            identity=Identity.generate(self.rng),
        )
        return self._add(name, meeting)

    def tick(self, seconds: float) -> None:
        """Advance the clock, fire due timers of every client, and pump."""
        self.clock.advance(seconds)
        for c in self.clients:
            when = c.meeting.get_timer()
            if when is not None and when <= self.clock.t:
                c.meeting.handle_timer(self.clock.t)
                c.drain()
        self.pump()

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
        c.meeting.send_manifest_now()  # in real time it follows within 20 ms
        self.flush([c])
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


def rogue_commit(net: Net, c: Client, **commit: Any) -> Any:
    """A tampered engine: commit anything (its own policy hook off) and send it for
    ordering with its real epoch credential. Returns the CommitOutput."""
    m = c.meeting
    group = m._group
    assert group is not None
    group._policy = allow_all
    if group.has_pending_commit:
        group.discard_pending_commit()
    out = group.commit(**commit)
    cred = m._credential(group)
    nxt = hashlib.sha256(group.pending_export_secret("clave v2 commit credential", b"", 32))
    net.relay.handle(
        c.conn, wire.encode(wire.Commit(cred=cred, next=nxt.digest(), data=out.commit))
    )
    return out


def view(c: Client) -> tuple[Any, ...]:
    """What must agree across members: epoch, security code, roster without is_self."""
    m = c.meeting
    roster = tuple((r.leaf, r.name, r.fingerprint, r.is_host) for r in m.roster)
    return (m.epoch, m.security_code, roster)
