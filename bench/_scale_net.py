"""Light meeting members on a relay, for bench/meeting_scale.py.

A :class:`Member` is one sans-I/O :class:`clave.meeting.Meeting` (MLS and control
only, no media) whose calls are timed: ``cpu`` adds up the process time spent in
its ``receive``/``handle_timer`` calls, so one process hosting many members still
knows what each one cost (one thread: process time between two points is that
member's). Two fabrics carry their frames:

* :class:`WsFabric`: a real relay (``python -m clave.relay``) in a process of its
  own (the other core), one WebSocket per member from this process, as engines
  connect; timers fire from one task scanning every member.
* :class:`MemoryFabric`: the relay's own rooms in this process
  (:class:`clave.devtools.memory_relay.MemoryRelay`), frames moved by a pump.

A member may be *held*: what reaches it is queued with its arrival time
(``time.perf_counter``) instead of being handled, so a commit's fan-out can be
timed apart from the members' processing, and then :meth:`Member.release`\\ d.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from clave import wire
from clave.devtools.memory_relay import MEMORY_CONFIG, MemoryRelay
from clave.meeting import Error, ErrorCode, Meeting, Phase
from clave.relay.config import RelayConfig

Rng = Callable[[int], bytes]


def frame_kind(frame: bytes, decode: Callable[[bytes], object]) -> object | None:
    """The control message in ``frame`` (None for media or junk)."""
    try:
        channel, body = wire.split_frame(frame)
        return decode(bytes(body)) if channel == wire.CONTROL else None
    except wire.WireError:
        return None


@dataclass
class Member:
    """One light member: a meeting, its timed calls and what it sent."""

    meeting: Meeting
    started: float = field(default_factory=time.perf_counter)
    joined: float | None = None
    """``perf_counter`` when it entered the meeting (a Welcome processed)."""
    cpu: float = 0.0
    errors: list[str] = field(default_factory=list)
    held: bool = False
    inbox: deque[tuple[float, bytes]] = field(default_factory=deque)
    watch: bool = False
    """Record the sizes of our Commit and WelcomeTo frames and when a Commit left."""
    commits: list[tuple[float, float, int]] = field(default_factory=list)
    """(time sent, duration of the call that made it, bytes of MLS commit)."""
    welcomes: list[int] = field(default_factory=list)
    last_call: float = 0.0
    last_commit_seen: float | None = None
    """perf_counter when a held member was handed a relayed commit (CommitFrom)."""
    process_commit: float | None = None
    """Wall seconds its last ``receive`` of a CommitFrom took."""

    def call(self, fn: Callable[[], None]) -> list[bytes]:
        t, c = time.perf_counter(), time.process_time()
        fn()
        self.cpu += time.process_time() - c
        self.last_call = time.perf_counter() - t
        while (ev := self.meeting.next_event()) is not None:
            if isinstance(ev, Error) and ev.code != ErrorCode.stale_message:
                self.errors.append(f"{ev.code.name}: {ev.message}"[:200])
        if self.joined is None and self.meeting.phase is Phase.in_meeting:
            self.joined = time.perf_counter()
        out = self.meeting.frames_to_send()
        if self.watch:
            self._watch(out)
        return out

    def _watch(self, out: list[bytes]) -> None:
        for frame in out:
            msg = frame_kind(frame, wire.decode_client)
            if isinstance(msg, wire.Commit):
                self.commits.append((time.perf_counter(), self.last_call, len(msg.data)))
            elif isinstance(msg, wire.WelcomeTo):
                self.welcomes.append(len(msg.data))

    def feed(self, frame: bytes) -> list[bytes]:
        if self.held:
            self.inbox.append((time.perf_counter(), frame))
            if self.last_commit_seen is None and isinstance(
                frame_kind(frame, wire.decode_relay), wire.CommitFrom
            ):
                self.last_commit_seen = time.perf_counter()
            return []
        return self.call(lambda: self.meeting.receive(frame))

    def release(self) -> list[bytes]:
        """Handle what was queued while held; time the commit's handling."""
        self.held = False
        out: list[bytes] = []
        while self.inbox:
            _, frame = self.inbox.popleft()
            is_commit = isinstance(frame_kind(frame, wire.decode_relay), wire.CommitFrom)
            out += self.call(lambda f=frame: self.meeting.receive(f))  # type: ignore[misc]
            if is_commit:
                self.process_commit = self.last_call
        return out

    def timer(self, now: float) -> list[bytes]:
        when = self.meeting.get_timer()
        if when is None or when > now:
            return []
        return self.call(lambda: self.meeting.handle_timer(now))


def relay_config(members: int) -> RelayConfig:
    """The relay's defaults, but room for ``members`` connections from one address, a
    backlog that a busy client process may build up, and pings rare enough that a
    process busy for seconds with hundreds of members is not dropped as dead."""
    return RelayConfig(
        heartbeat=600.0,
        join_timeout=600.0,
        max_conns_per_room=members + 16,
        max_conns_per_address=members + 16,
        max_room_conns_per_address=members + 16,
        address_backlog=1 << 34,
        address_media_backlog=1 << 30,
        control_cap=1 << 30,
    )


SETTINGS = ("max_conns_per_room", "max_conns_per_address", "max_room_conns_per_address",
            "join_timeout", "address_backlog", "address_media_backlog", "control_cap")  # fmt: skip


class WsFabric:
    """A relay process and one WebSocket per member."""

    kind = "ws"

    def __init__(self, members: int) -> None:
        self.config = relay_config(members)
        self.members: list[Member] = []
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._session: aiohttp.ClientSession | None = None
        self._sockets: dict[int, aiohttp.ClientWebSocketResponse] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        sets = [f"--set={name}={getattr(self.config, name)}" for name in SETTINGS]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clave.relay", "--port", "0",
             "--heartbeat", str(self.config.heartbeat), *sets],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if not line.startswith("listening on"):
            raise RuntimeError(f"the relay did not start: {line!r}")
        self.url = f"ws://127.0.0.1:{int(line.split()[-1])}/ws"
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._tasks.append(asyncio.create_task(self._timers()))

    def relay_cpu(self) -> float:
        """Seconds of CPU the relay process has used (Linux /proc)."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def add(self, make: Callable[[], Meeting], *, watch: bool = False) -> Member:
        assert self._session is not None
        started = time.perf_counter()
        ws = await self._session.ws_connect(self.url, compress=0, max_msg_size=1 << 24)
        member = Member(make(), started=started, watch=watch)
        self.members.append(member)
        self._sockets[id(member)] = ws
        await self._send(member, member.call(lambda: None))
        self._tasks.append(asyncio.create_task(self._read(member, ws)))
        return member

    async def _send(self, member: Member, frames: list[bytes]) -> None:
        ws = self._sockets.get(id(member))
        for frame in frames:
            if ws is not None and not ws.closed:
                await ws.send_bytes(frame)

    async def _read(self, member: Member, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                await self._send(member, member.feed(msg.data))

    async def _timers(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            for m in list(self.members):
                if not m.held:
                    out = m.timer(now)
                    if out:
                        await self._send(m, out)

    async def flush(self, member: Member, frames: list[bytes]) -> None:
        await self._send(member, frames)

    async def drop(self, member: Member) -> None:
        """Close a member's connection (after it left) and forget it."""
        self.members.remove(member)
        ws = self._sockets.pop(id(member), None)
        if ws is not None:
            await ws.close()

    async def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                return False
            await asyncio.sleep(0.02)
        return True

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for ws in self._sockets.values():
            await ws.close()
        if self._session is not None:
            await self._session.close()
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


class MemoryFabric:
    """The relay's rooms in this process; frames moved by :meth:`wait`'s pump."""

    kind = "memory"

    def __init__(self, members: int) -> None:
        cfg = relay_config(members)
        config = dataclasses.replace(MEMORY_CONFIG, **{n: getattr(cfg, n) for n in SETTINGS})
        self.relay = MemoryRelay(config=config, clock=time.monotonic)
        self.members: list[Member] = []
        self._conn: dict[int, int] = {}
        self.fanout: list[float] = []
        """Seconds each relayed commit took in the relay's room (all copies queued)."""
        self._cpu = 0.0

    async def start(self) -> None:
        pass

    def relay_cpu(self) -> float:
        return self._cpu

    async def add(self, make: Callable[[], Meeting], *, watch: bool = False) -> Member:
        started = time.perf_counter()
        conn = self.relay.connect()
        member = Member(make(), started=started, watch=watch)
        self.members.append(member)
        self._conn[id(member)] = conn
        await self.flush(member, member.call(lambda: None))
        return member

    async def flush(self, member: Member, frames: list[bytes]) -> None:
        self._hand(member, frames)

    def _hand(self, member: Member, frames: list[bytes]) -> None:
        """Give ``member``'s frames to the relay (timing what a commit's fan-out costs)."""
        conn = self._conn[id(member)]
        for frame in frames:
            c, t = time.process_time(), time.perf_counter()
            self.relay.handle(conn, frame)
            self._cpu += time.process_time() - c
            if member.watch and isinstance(frame_kind(frame, wire.decode_client), wire.Commit):
                self.fanout.append(time.perf_counter() - t)

    async def drop(self, member: Member) -> None:
        self.members.remove(member)
        self.relay.disconnect(self._conn.pop(id(member)))

    def _pump(self) -> bool:
        moved = False
        now = time.monotonic()
        for m in list(self.members):
            box = self.relay.inbox.get(self._conn[id(m)])
            out: list[bytes] = []
            while box:
                out += m.feed(box.popleft())
                moved = True
            if not m.held:
                out += m.timer(now)
            moved = moved or bool(out)
            self._hand(m, out)
        return moved

    async def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                return False
            if not self._pump():
                await asyncio.sleep(0.01)
        return True

    async def close(self) -> None:
        pass


Fabric = WsFabric | MemoryFabric
