"""A tiny in-test delivery service for :class:`clave.meeting.Meeting` instances.

``FakeRelay`` is :class:`clave.devtools.memory_relay.MemoryRelay`: the relay's own
I/O-free rooms (admission by token, commit ordering by epoch credential, commit
replay, rotation, routing and fan-out) behind in-memory connections, so these
tests follow the product's relay rules, not a copy of them.

``Net`` wires meetings to it with a deterministic rng, a fake monotonic clock
and a fixed Unix time, and pumps frames until nothing moves. Outgoing
frames can be held and released in a chosen order to force races.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clave import wire
from clave.devtools.memory_relay import MemoryRelay as FakeRelay
from clave.meeting import (
    EpochChanged,
    Error,
    ErrorCode,
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

    def guest(
        self, name: str, link: MeetingLink | None = None, identity: Identity | None = None
    ) -> Client:
        use = link or self.link
        assert use is not None
        meeting = Meeting.join(
            use,
            name,
            rng=self.rng,
            clock=self.clock,
            now=self.now,
            config=self.config,
            identity=identity or Identity.generate(self.rng),
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

    def send_media(
        self, c: Client, kind: StreamKind, keyframe: bool, payload: bytes, layer: int = 0
    ) -> bytes:
        self.flush([c])  # control frames queued before the media keep their order
        frame = c.meeting.protect_media(kind, keyframe, payload, layer)
        self.relay.handle(c.conn, frame)
        c.meeting.send_manifest_now()  # in real time it follows within 20 ms
        self.flush([c])
        return frame

    def disconnect(self, c: Client) -> None:
        """``c`` is gone for good without a goodbye (a crash): the relay reports it."""
        self.relay.disconnect(c.conn)
        self.clients.remove(c)

    def wait_out_resume_window(self) -> None:
        """Let the resume window of members whose connection vanished run out (in steps
        of a second, so hosts keep saying they are alive)."""
        self.pump()
        self.ticks(self.config.resume_window)

    def ticks(self, seconds: float, step: float = 1.0) -> None:
        """:meth:`tick` in steps of ``step`` seconds, ``seconds`` in all."""
        while seconds > 1e-9:
            self.tick(min(step, seconds))
            seconds -= step

    def cut(self, c: Client) -> None:
        """``c``'s relay connection drops (the others get PeerLeft); ``c`` stays a member
        until :meth:`reconnect`."""
        self.relay.disconnect(c.conn)
        c.meeting.connection_lost()
        c.meeting.frames_to_send()  # nothing reaches the relay on a dead connection
        c.held = True

    def reconnect(self, c: Client) -> None:
        """``c`` opens a new relay connection and comes back."""
        c.conn = self.relay.connect()
        c.held = False
        c.meeting.reconnect()
        self.pump()

    def restart_relay(self) -> None:
        """The relay process restarts: every room and connection is forgotten."""
        self.relay.restart()
        for c in self.clients:
            c.meeting.connection_lost()
            c.meeting.frames_to_send()
            c.held = True

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


def host_and_bob(net: Net) -> tuple[Client, Client]:
    """Alice hosts; Bob is admitted through the lobby."""
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    return host, bob


def meeting_of_three(net: Net) -> tuple[Client, Client, Client]:
    """Ada hosts; Bob, then Carol, are admitted through the lobby."""
    host = net.host("Ada")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    carol = net.guest("Carol")
    net.admit_via_lobby(host, carol)
    return host, bob, carol


def meeting_of_four(net: Net) -> tuple[Client, Client, Client, Client]:
    """Host + Bob through the lobby, then Carol and Dave auto-admitted."""
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    host.meeting.set_auto_admit(True)
    net.pump()
    carol = net.guest("Carol")
    dave = net.guest("Dave")
    net.pump()
    return host, bob, carol, dave


def assert_agree(clients: list[Client]) -> None:
    views = {view(c) for c in clients}
    assert len(views) == 1, views
    for c in clients:
        assert c.meeting.encrypted
        assert not [e for e in c.errors() if e.code != ErrorCode.stale_message], c.errors()
