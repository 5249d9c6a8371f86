"""The relay's memory stays bounded under each flood while an honest meeting goes on.

The relay runs in its own process (``python -m clave.relay --port 0``), so its
resident memory can be read from ``/proc/PID/status``: VmRSS once the honest
meeting runs (the baseline), then the high-water mark VmHWM (reset after the
baseline through ``/proc/PID/clear_refs``) after a fixed count of attack
messages and connections. Meanwhile two honest clients at 127.0.0.1 exchange
media, and the test waits (under an overall timeout) until a fixed number of
frames got through after the attack began: counted, not timed.

Each attack's ceiling above the baseline is derived from what the relay bounds:
the attacking address's backlog (``address_backlog``, 32 MiB, for whatever is
queued for its connections), plus per-connection I/O that no queue holds: an
idle connection's state, and for each connection moving 1 MiB frames one frame
being read plus one complete (``READ_SIDE``) or one frame being written
(``WRITE_SIDE``), plus ``SLACK``. The relay runs with a fixed glibc mmap
threshold so that RSS measures live memory rather than heap fragmentation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from relay_helpers import Client, close_all, new_room, run

from clave.relay import RelayConfig
from clave.relay.addresses import TOO_MANY_CONNS, TOO_MANY_ROOMS
from clave.relay.connection import CloseCode
from clave.relay.room import ROOM_CROWDED
from clave.wire import (
    MAX_CONTROL_BYTES,
    AppMessage,
    Enter,
    Error,
    ErrorCode,
    Joined,
    MediaFrame,
    PeerJoined,
    PeerLeft,
    StreamKind,
    WelcomeTo,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; uses 127.0.0.0/8 as many clients"
)

MiB = 1024 * 1024
BACKLOG = RelayConfig().address_backlog
PER_CONN = 32 * 1024
"""An idle connection's state at the relay (measured: about 20 KiB)."""
READ_SIDE = 2 * MAX_CONTROL_BYTES
WRITE_SIDE = MAX_CONTROL_BYTES
SLACK = 16 * MiB
FRAMES_AFTER_ATTACK = 300
"""Honest frames that must arrive after the attack began."""


@dataclass
class Relay:
    pid: int
    port: int
    log: Path

    def memory(self, field: str) -> int:
        """VmRSS or VmHWM of the relay, in bytes."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
        assert match is not None, field
        return int(match.group(1)) * 1024

    def reset_peak(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")


@contextlib.asynccontextmanager
async def relay_process(tmp_path: Path, *settings: str) -> AsyncIterator[Relay]:
    log = tmp_path / "relay.log"
    args = [sys.executable, "-m", "clave.relay", "--port", "0", "--verbose"]
    for setting in settings:
        args += ["--set", setting]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=err, env=env
        )
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line.startswith("listening on "), line
            yield Relay(proc.pid, int(line.split()[-1]), log)
        finally:
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 30)


class HonestMeeting:
    """Two clients at 127.0.0.1: ``member`` streams audio, ``host`` counts it; both read all."""

    def __init__(self, host: Client, member: Client) -> None:
        self.host, self.member = host, member
        self.frames = 0
        self.left: list[PeerLeft] = []
        self._tasks = [
            asyncio.create_task(self._read(host, count=True)),
            asyncio.create_task(self._read(member, count=False)),
            asyncio.create_task(self._stream()),
        ]

    @classmethod
    async def start(cls, port: int) -> tuple[HonestMeeting, str, bytes]:
        room, token = new_room()
        host = await Client.connect(port, source="127.0.0.1")
        member = await Client.connect(port, source="127.0.0.1")
        await host.enter(room, token)
        await member.enter(room, token)
        await host.expect(PeerJoined)
        return cls(host, member), room, token

    async def _read(self, client: Client, count: bool) -> None:
        while True:
            msg = await client.recv(timeout=60)
            if isinstance(msg, MediaFrame) and count and msg.sender == self.member.conn:
                self.frames += 1
            elif isinstance(msg, PeerLeft) and count:
                self.left.append(msg)

    async def _stream(self) -> None:
        for i in range(10**9):
            await self.member.send_media(StreamKind.audio, False, i.to_bytes(8, "big"))
            await asyncio.sleep(0.002)  # pacing of the stream only; nothing waits on time

    async def until(self, frames: int) -> None:
        while self.frames < frames:
            for task in self._tasks:
                if task.done():
                    task.result()  # a reader ended: the honest meeting broke
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._tasks[-1].cancel()  # the stream; the readers end when their sockets close
        await close_all([self.host, self.member])
        await asyncio.gather(*self._tasks, return_exceptions=True)


Attack = Callable[[int, str, bytes, list[Client]], Awaitable[None]]


async def enter(port: int, source: str, room: str, token: bytes) -> Client:
    """Connect from ``source`` and send ``Enter`` (the answer is left to read)."""
    c = await Client.connect(port, source=source)
    await c.send(Enter(room=room, token=token))
    return c


async def room_flood(port: int, room: str, token: bytes, held: list[Client]) -> None:
    """8 addresses, each: 64 Enters with random tokens (20 rooms, 44 refused), then
    connections up to its cap of 64 and one more (refused); then a real host enters."""

    async def one_address(source: str) -> None:
        flood = [await enter(port, source, *new_room()) for _ in range(64)]
        answers = [await c.control(timeout=30) for c in flood]
        rooms = [c for c, a in zip(flood, answers, strict=True) if isinstance(a, Joined)]
        refused = [c for c in flood if c not in rooms]
        assert len(rooms) == 20
        assert all(a == TOO_MANY_ROOMS for a in answers if not isinstance(a, Joined))
        for c in refused:
            assert (await c.closed(timeout=30)).code == CloseCode.rate_limited
        await close_all(refused)
        held.extend(rooms)
        # then idle connections until refused: an admitted one answers a wrong token with
        # bad_token and stays, a refused one gets TOO_MANY_CONNS first
        idle = 0
        while True:
            c = await enter(port, source, new_room()[0], os.urandom(32))
            first = await c.control(timeout=30)
            if first == TOO_MANY_CONNS:
                await c.close()
                break
            assert isinstance(first, Error) and first.code is ErrorCode.bad_token, first
            held.append(c)
            idle += 1
        assert 20 + idle <= 64

    await asyncio.gather(*(one_address(f"127.0.0.{i}") for i in range(2, 10)))
    host = await enter(port, "127.0.0.10", *new_room())
    assert isinstance(await host.control(timeout=30), Joined)
    held.append(host)


async def lobby_flood(port: int, room: str, token: bytes, held: list[Client]) -> None:
    """4 link holders' addresses open 16 connections each into the meeting: 8 get in."""
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
        crowd = [await enter(port, source, room, token) for _ in range(16)]
        answers = [await c.control(timeout=30) for c in crowd]
        inside = [c for c, a in zip(crowd, answers, strict=True) if isinstance(a, Joined)]
        assert len(inside) == 8
        for c, answer in zip(crowd, answers, strict=True):
            if c not in inside:
                assert answer == ROOM_CROWDED
                assert (await c.closed(timeout=30)).code == CloseCode.rate_limited
        held.extend(crowd)
    joiner = await enter(port, "127.0.0.10", room, token)
    assert isinstance(await joiner.control(timeout=30), Joined)
    held.append(joiner)


CHATS = 100 * 64 * 1024
"""Bytes of junk chat a link holder sends into the honest meeting (within its burst)."""
JUNK_WELCOMES = 7
"""1 MiB Welcomes per sender: within its byte burst (8 MB), so no pacing is needed."""


async def big_junk(port: int, room: str, token: bytes, held: list[Client]) -> None:
    """A client at 127.0.0.2 opens 4 rooms of its own, each with 4 senders and 4 sinks
    that never read; each sender sends 7 Welcomes of 1 MiB to the sinks: 112 MiB for 16
    sinks, which their own caps (16 MiB each) would let them hold. Another link holder,
    at 127.0.0.3, sends 100 chats of 64 KiB into the honest meeting, which reads them."""
    junk = bytes(MAX_CONTROL_BYTES - 64)
    senders: list[tuple[Client, list[Client]]] = []
    for _ in range(4):
        own_room, own_token = new_room()
        group = [await Client.connect(port, source="127.0.0.2") for _ in range(4)]
        sinks = [await Client.connect(port, source="127.0.0.2", rcvbuf=4096) for _ in range(4)]
        held.extend([*group, *sinks])
        for c in (*group, *sinks):
            await c.enter(own_room, own_token)
        senders.extend((c, sinks) for c in group)
    knocker = await Client.connect(port, source="127.0.0.3")
    held.append(knocker)
    await knocker.enter(room, token)

    async def flood(sender: Client, sinks: list[Client], offset: int) -> None:
        for i in range(JUNK_WELCOMES):
            to = sinks[(i + offset) % len(sinks)].conn
            await sender.send(WelcomeTo(to=to, data=junk))

    async def chats() -> None:
        for _ in range(CHATS // (64 * 1024)):
            await knocker.send(AppMessage(data=bytes(64 * 1024)))

    await asyncio.gather(chats(), *(flood(c, s, i) for i, (c, s) in enumerate(senders)))


ATTACKS: dict[str, tuple[Attack, tuple[str, ...], int]] = {
    # 8 addresses x (64 + 45) connections, at most 64 each held
    "room flood": (room_flood, (), 8 * 64 * PER_CONN + SLACK),
    "lobby flood": (lobby_flood, ("max_room_conns_per_address=8",), 4 * 16 * PER_CONN + SLACK),
    # The sinks' address: its backlog and one message over it; 16 senders, 16 sinks; the
    # chats (shared by the honest receivers). A small SO_SNDBUF keeps the junk in the
    # relay, not in kernel buffers.
    "big junk": (
        big_junk,
        ("socket_send_buffer=16384",),
        BACKLOG + MAX_CONTROL_BYTES + 16 * READ_SIDE + 16 * WRITE_SIDE + CHATS + SLACK,
    ),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_memory_ceiling_under_attack(name: str, tmp_path: Path) -> None:
    attack, settings, ceiling = ATTACKS[name]

    async def scenario() -> tuple[int, int]:
        async with relay_process(tmp_path, *settings) as relay:
            honest, room, token = await HonestMeeting.start(relay.port)
            held: list[Client] = []
            try:
                await honest.until(50)
                baseline = relay.memory("VmRSS")
                relay.reset_peak()
                start = honest.frames
                await attack(relay.port, room, token, held)
                await honest.until(start + FRAMES_AFTER_ATTACK)
                peak = relay.memory("VmHWM")
                assert not [p for p in honest.left if p.reason != "too slow"]
                assert {p.conn for p in honest.left} <= {c.conn for c in held}
            finally:
                await honest.stop()
                await close_all(held)
            return baseline, peak

    baseline, peak = run(scenario(), timeout=240)
    print(f"\n{name}: baseline {baseline / MiB:.1f} MiB, peak {peak / MiB:.1f} MiB, "
          f"+{(peak - baseline) / MiB:.1f} MiB (ceiling +{ceiling / MiB:.0f})")  # fmt: skip
    assert peak - baseline <= ceiling
    log = (tmp_path / "relay.log").read_text()
    assert "127.0.0." not in log
    assert "refused" in log or "disconnected" in log
    assert os.path.getsize(tmp_path / "relay.log") < 1024 * 1024
