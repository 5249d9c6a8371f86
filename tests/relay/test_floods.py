"""Floods from one client address, against the real relay over WebSockets.

Attackers connect from other loopback addresses (127.0.0.2 ...; on Linux all of
127/8 is loopback) than the honest meeting (127.0.0.1), so the per-address
limits tell them apart. Every refusal is checked by its Error, its close code and
the relay's refusal counts; tests count messages and never wait for time to pass
as an assertion (polling the relay's counts under the overall timeout is fine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable

from relay_helpers import Client, close_all, meeting, new_room, relay, run

from clave.relay import RelayConfig
from clave.relay.addresses import ROOMS_TOO_FAST, TOO_MANY_CONNS, TOO_MANY_ROOMS
from clave.relay.connection import CloseCode
from clave.relay.room import ROOM_CROWDED, ROOM_FULL
from clave.relay.server import STATE_KEY, start_relay
from clave.relay.state import RelayState
from clave.relay.stats import Refused
from clave.wire import (
    MAX_CONTROL_BYTES,
    AppFrom,
    AppMessage,
    Enter,
    Error,
    ErrorCode,
    Joined,
    Leave,
    MediaFrame,
    PeerJoined,
    PeerLeft,
    StreamKind,
    WelcomeTo,
)

EVIL = "127.0.0.2"


@contextlib.asynccontextmanager
async def relay_with_state(config: RelayConfig) -> AsyncIterator[tuple[int, RelayState]]:
    runner, port = await start_relay("127.0.0.1", 0, config)
    try:
        yield port, runner.app[STATE_KEY]
    finally:
        await runner.cleanup()


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the relay to get there (bounded by the scenario's overall timeout)."""
    while not condition():
        await asyncio.sleep(0.01)


async def refused(client: Client, error: Error | None, code: CloseCode) -> None:
    """The relay sent ``error`` (None: it was read already) and closed with ``code``."""
    closed = await client.closed()
    assert closed.errors == ([] if error is None else [error]), closed.errors
    assert closed.code == code


async def try_enter(port: int, source: str, room: str, token: bytes) -> Client:
    c = await Client.connect(port, source=source)
    await c.send(Enter(room=room, token=token))
    return c


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


# ------------------------------------------------------------ room flood


def test_room_flood_from_one_address_leaves_room_for_a_real_host() -> None:
    """No invitation needed: random tokens create rooms. One address gets 20, then 64
    connections in all; a host at another address still opens its meeting."""
    capture = Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    tokens = [os.urandom(32) for _ in range(64)]

    async def scenario() -> None:
        async with relay_with_state(RelayConfig()) as (port, state):
            flood = [await try_enter(port, EVIL, *new_room()) for _ in range(64)]
            answers = [await c.control() for c in flood]
            rooms = [c for c, a in zip(flood, answers, strict=True) if isinstance(a, Joined)]
            assert len(rooms) == 20 and len(state.rooms) == 20
            for c, answer in zip(flood, answers, strict=True):
                if c not in rooms:
                    assert answer == TOO_MANY_ROOMS
                    await refused(c, None, CloseCode.rate_limited)
            # connections without rooms, up to the address's cap; then refused at once
            await until(lambda: state.accounts.conns == 20)
            idle = [await Client.connect(port, source=EVIL) for _ in range(44)]
            extra = await Client.connect(port, source=EVIL)
            await refused(extra, TOO_MANY_CONNS, CloseCode.rate_limited)
            # the real host, from its own address
            room, token = new_room()
            host = await Client.connect(port, source="127.0.0.3")
            assert (await host.enter(room, token)).peers == []
            assert len(state.rooms) == 21
            assert state.stats.refused == {Refused.address_rooms: 44, Refused.address_conns: 1}
            # rooms emptied are freed, and the address's quota with them
            await close_all(rooms)
            await until(lambda: len(state.rooms) == 1)
            account = state.accounts.get(EVIL)
            assert account is not None and account.rooms == 0
            await close_all([*flood, *idle, extra, host])
            await until(lambda: state.accounts.conns == 0)

    try:
        run(scenario(), timeout=60)
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    text = "\n".join(capture.lines)
    assert "too many live rooms opened from one address" in text  # refusals are logged ...
    assert "127.0.0." not in text  # ... without addresses, tokens or room ids
    for token in tokens:
        assert token.hex() not in text


def test_room_creation_churn_is_rate_limited_per_address() -> None:
    config = RelayConfig(room_create_burst=3, room_create_rate=0.001)

    async def scenario() -> None:
        async with relay_with_state(config) as (port, state):
            for _ in range(3):  # create, leave, create again ...
                c = await try_enter(port, EVIL, *new_room())
                assert isinstance(await c.control(), Joined)
                await c.send(Leave())
                await c.closed()
            await until(lambda: len(state.rooms) == 0)
            churn = await try_enter(port, EVIL, *new_room())  # ... until the bucket is empty
            await refused(churn, ROOMS_TOO_FAST, CloseCode.rate_limited)
            # entering an existing room is not creating one; other addresses are unaffected
            room, token, (host,) = await meeting(port, 1)
            guest = await try_enter(port, EVIL, room, token)
            assert isinstance(await guest.control(), Joined)
            other = await try_enter(port, "127.0.0.3", *new_room())
            assert isinstance(await other.control(), Joined)
            assert state.stats.refused[Refused.room_rate] == 1
            await close_all([churn, host, guest, other])

    run(scenario())


def test_total_connection_cap() -> None:
    async def scenario() -> None:
        async with relay_with_state(RelayConfig(max_conns=6)) as (port, state):
            held = [await Client.connect(port, source=f"127.0.0.{2 + i // 2}") for i in range(6)]
            late = await Client.connect(port, source="127.0.0.9")
            full = Error(
                ErrorCode.room_full, "this relay is at its connection limit; try again later"
            )
            await refused(late, full, CloseCode.full)
            await held[0].close()
            await until(lambda: state.accounts.conns == 5)
            again = await try_enter(port, "127.0.0.9", *new_room())
            assert isinstance(await again.control(), Joined)
            assert state.stats.refused == {Refused.relay_full: 1}
            await close_all([*held, late, again])

    run(scenario())


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    config = RelayConfig(trusted_proxies=("127.0.0.5",), max_conns_per_address=1)

    def via(client: str) -> dict[str, str]:
        return {"X-Forwarded-For": client}

    async def scenario() -> None:
        async with relay(config) as port:
            proxy = "127.0.0.5"
            a = await Client.connect(port, source=proxy, headers=via("203.0.113.1"))
            b = await Client.connect(port, source=proxy, headers=via("198.51.100.1, 203.0.113.2"))
            for c in (a, b):  # two clients behind the proxy
                assert isinstance(await c.enter(*new_room()), Joined)
            again = await Client.connect(port, source=proxy, headers=via("203.0.113.1"))
            await refused(again, TOO_MANY_CONNS, CloseCode.rate_limited)
            # an untrusted peer cannot pick its address with the header
            d = await Client.connect(port, source="127.0.0.6", headers=via("203.0.113.3"))
            assert isinstance(await d.enter(*new_room()), Joined)
            e = await Client.connect(port, source="127.0.0.6", headers=via("203.0.113.4"))
            await refused(e, TOO_MANY_CONNS, CloseCode.rate_limited)
            await close_all([a, b, again, d, e])

    run(scenario())


# ------------------------------------------------------------ lobby flood


def test_lobby_flood_from_one_address_cannot_crowd_out_joiners() -> None:
    """A link holder opens connections into a meeting: 8 from its address get in."""
    config = RelayConfig(max_conns_per_room=12, max_room_conns_per_address=8)

    async def scenario() -> None:
        async with relay_with_state(config) as (port, state):
            room, token, (host, member) = await meeting(port, 2)
            crowd = [await try_enter(port, EVIL, room, token) for _ in range(12)]
            answers = [await c.control() for c in crowd]
            inside = [c for c, a in zip(crowd, answers, strict=True) if isinstance(a, Joined)]
            assert len(inside) == 8
            for c, answer in zip(crowd, answers, strict=True):
                if c not in inside:
                    assert answer == ROOM_CROWDED
                    await refused(c, None, CloseCode.rate_limited)
            joiner = await try_enter(port, "127.0.0.3", room, token)
            assert isinstance(await joiner.control(), Joined)
            # the room's own cap still stands, for every address
            second = await try_enter(port, "127.0.0.4", room, token)
            assert isinstance(await second.control(), Joined)
            third = await try_enter(port, "127.0.0.5", room, token)
            await refused(third, ROOM_FULL, CloseCode.full)
            # the meeting goes on
            await host.send(AppMessage(data=b"welcome"))
            while (msg := await member.control()) != AppFrom(sender=host.conn, data=b"welcome"):
                assert isinstance(msg, PeerJoined)
            assert state.stats.refused == {Refused.room_address_conns: 4, Refused.room_full: 1}
            await close_all([host, member, *crowd, joiner, second, third])

    run(scenario())


# ------------------------------------------------------------ big junk


SINKS = 7
JUNK = 256 * 1024
ROUNDS = 48
"""48 chats of 60 kB: 2.9 MB, under one honest address's 4 MiB even if it read nothing."""
FRAMES = 300
BIG_JUNK = RelayConfig(
    max_room_conns_per_address=8,
    heartbeat=60.0,  # the sinks never read, so never answer pings: cut off as too slow only
    address_backlog=4 * 1024 * 1024,
    address_media_backlog=2 * 1024 * 1024,
    socket_send_buffer=16 * 1024,
    msg_rate=100_000,
    msg_burst=100_000,
    byte_rate=10**9,
    byte_burst=10**9,
)
"""Small backlogs and no byte budget (it is not what is tested), so that the flood is quick."""


async def read_all(
    client: Client, stop: AppFrom, last_frame: bytes | None = None
) -> list[AppFrom | PeerLeft | MediaFrame]:
    """Everything ``client`` gets (media, chat, departures) up to ``stop`` and, if given,
    the frame ``last_frame`` (control overtakes queued media, so either may come first)."""
    seen: list[AppFrom | PeerLeft | MediaFrame] = []
    stopped = False
    framed = last_frame is None
    while not (stopped and framed):
        msg = await client.recv(timeout=20)
        if isinstance(msg, AppFrom | PeerLeft | MediaFrame):
            seen.append(msg)
        stopped = stopped or msg == stop
        framed = framed or (isinstance(msg, MediaFrame) and msg.sframe == last_frame)
    return seen


def test_big_junk_into_non_reading_sinks_is_bounded_per_address() -> None:
    """A link holder's sender pushes 1 MiB-class junk to its own connections, which never
    read, and to everyone: what the relay holds for that address stays under its backlog,
    only the sinks are cut off, and the honest meeting gets every frame and message."""

    async def scenario() -> None:
        async with relay_with_state(BIG_JUNK) as (port, state):
            room, token = new_room()
            host = await Client.connect(port, source="127.0.0.1")
            member = await Client.connect(port, source="127.0.0.3")
            await host.enter(room, token)
            await member.enter(room, token)
            await host.expect(PeerJoined)
            sender = await Client.connect(port, source=EVIL)
            await sender.enter(room, token)
            sinks = [await Client.connect(port, source=EVIL, rcvbuf=4096) for _ in range(SINKS)]
            for s in sinks:
                await s.enter(room, token)
            for _ in range(SINKS + 1):
                await host.expect(PeerJoined)
                await member.expect(PeerJoined)
            done = AppFrom(sender=sender.conn, data=b"done")
            last = (FRAMES - 1).to_bytes(4, "big")
            listening = [
                asyncio.create_task(read_all(host, done, last)),
                asyncio.create_task(read_all(member, done)),
            ]

            async def honest_media() -> None:
                for i in range(FRAMES):
                    await member.send_media(StreamKind.audio, False, i.to_bytes(4, "big"))
                    await asyncio.sleep(0.002)

            media = asyncio.create_task(honest_media())
            junk = bytes(JUNK)
            for i in range(ROUNDS):
                to = sinks[i % SINKS].conn
                await sender.send(WelcomeTo(to=to, data=junk))
                await sender.send(AppMessage(data=bytes(60_000)))
            await media
            await sender.send(AppMessage(data=b"done"))
            heard_host, heard_member = await asyncio.gather(*listening)

            account = state.accounts.get(EVIL)
            assert account is not None
            assert account.backlog.peak <= BIG_JUNK.address_backlog + MAX_CONTROL_BYTES
            assert state.stats.refused[Refused.address_backlog] >= 1
            # only sinks were cut off, as too slow; honest members got all of it
            for heard in (heard_host, heard_member):
                left = [m for m in heard if isinstance(m, PeerLeft)]
                assert left and all(m.reason == "too slow" for m in left)
                assert {m.conn for m in left} <= {s.conn for s in sinks}
                assert len([m for m in heard if isinstance(m, AppFrom)]) == ROUNDS + 1
            frames = [m for m in heard_host if isinstance(m, MediaFrame)]
            assert [int.from_bytes(f.sframe, "big") for f in frames] == list(range(FRAMES))
            await close_all([host, member, sender, *sinks])

    run(scenario(), timeout=60)
