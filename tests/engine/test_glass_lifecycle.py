"""The tab and the engine (issue 10, requirement 4), with a scripted glass.

* A reload (the glass goes and comes back within the grace) keeps the meeting and
  hands the glass its microphone, camera and screen switches back in ``hello``.
* A tab that stays closed past the grace makes the engine leave; the bridge then
  says nobody is looking (``abandoned``), which ends ``clave meet``/``join``.
* After Leave the engine still serves the page and ``join`` starts a fresh
  admission: a guest knocks again; the meeting's owner, alone, starts its meeting
  again under the same invitation; with others left it knocks like a guest; and if
  it finds nobody there it starts the meeting again by itself.

The grace is waited for through ``GlassBridge.grace_timer``, which these tests
replace with a gate they open: nothing here depends on how long anything takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

from engine_helpers import Glass, Json, run, until

from clave.engine.bridge import GlassBridge
from clave.engine.glass_messages import MediaSwitches
from clave.engine.headless import HeadlessParticipant
from clave.engine.ui_server import UIServer
from clave.meeting.link import MeetingLink, new_link
from clave.meeting.roles import generate_owner_key
from clave.relay.server import start_relay

SWITCHES = {"mic": False, "cam": False, "screen": True}


@dataclass
class Relay:
    link: MeetingLink
    owner_key: bytes


@contextlib.asynccontextmanager
async def relay() -> AsyncIterator[Relay]:
    runner, port = await start_relay("127.0.0.1", 0)
    owner_private, owner_public = generate_owner_key(os.urandom)
    try:
        yield Relay(new_link(f"http://127.0.0.1:{port}", os.urandom, owner_public), owner_private)
    finally:
        await runner.cleanup()


class Gate:
    """Stands in for the grace's sleep: returns once opened; records what was asked."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.opened.wait()


@contextlib.asynccontextmanager
async def serving(bridge: GlassBridge) -> AsyncIterator[UIServer]:
    server = UIServer(bridge)
    await server.start()
    try:
        yield server
    finally:
        await bridge.close()
        await server.stop()


async def reconnect(server: UIServer, old: Glass) -> Glass:
    """Close ``old`` (the tab goes away) and connect a new glass (the reload)."""
    await old.close()
    await until(lambda: not server.bridge.glass_connected, what="the old tab gone")
    glass = await Glass.connect(server)
    await glass.wait_message("hello")
    return glass


def in_meeting(state: Json) -> bool:
    return state["phase"] == "in_meeting"


def test_a_reload_keeps_the_meeting_and_the_switches_a_closed_tab_leaves() -> None:
    async def scenario() -> None:
        async with relay() as r:
            host = HeadlessParticipant(r.link, "Hedy", host=True, owner_key=r.owner_key,
                                       video=False, audio=False)  # fmt: skip
            await host.start()
            assert await host.wait_joined(10)
            bridge = GlassBridge(r.link, host=False, default_name="Grace", tab_grace=7.0)
            gate = bridge.grace_timer = Gate()
            glass: Glass | None = None
            try:
                async with serving(bridge) as server:
                    glass = await Glass.connect(server)
                    assert (await glass.wait_message("hello"))["media"] is None
                    await glass.send({"type": "join", "name": "Grace"})
                    await glass.wait_state(in_meeting)
                    await glass.send({"type": "media_state", **SWITCHES})
                    await glass.send({"type": "media_state", "mic": False})
                    await glass.wait_message("error", lambda m: '"cam"' in m["message"])
                    # The bad one changed nothing.
                    assert bridge.media_state == MediaSwitches(**SWITCHES)

                    # The reload: the tab goes, the grace starts, the tab is back.
                    glass = await reconnect(server, glass)
                    assert gate.asked == [7.0]
                    hello = glass.of_type("hello")[0]
                    assert hello["media"] == SWITCHES and hello["default_name"] == "Grace"
                    await glass.wait_state(in_meeting)  # no join: the meeting went on
                    assert bridge.counters.tabs_returned == 1
                    gate.opened.set()  # the cancelled grace must not leave now
                    await glass.send({"type": "chat", "text": "still here"})
                    await until(lambda: ("Grace", "still here") in host.report.chats,
                                what="the chat after the reload")  # fmt: skip
                    assert host.report.members_left == [] and bridge.ended_reason is None
                    assert not bridge.abandoned.is_set()

                    # The tab closes for good: past the grace the engine leaves.
                    await glass.close()
                    await until(lambda: "Grace" in host.report.members_left,
                                what="the host seeing Grace leave")  # fmt: skip
                    assert bridge.ended_reason == "the meeting's tab was closed"
                    await until(bridge.abandoned.is_set, what="the bridge abandoned")
                    assert gate.asked == [7.0, 7.0] and bridge.counters.tabs_returned == 1
            finally:
                if glass is not None:
                    await glass.close()
                await host.stop()

    run(scenario(), timeout=40)


def test_a_tab_closed_before_joining_does_not_stop_the_engine() -> None:
    """Closing the pre-join page changes nothing (the user may open it again); closing
    the page of a meeting that is over lets the engine stop."""

    async def scenario() -> None:
        async with relay() as r:
            bridge = GlassBridge(r.link, host=True, owner_key=r.owner_key)
            gate = bridge.grace_timer = Gate()
            gate.opened.set()
            async with serving(bridge) as server:
                glass = await Glass.connect(server)
                await glass.wait_message("hello")
                await glass.close()  # the pre-join page closed: its grace runs out
                await until(lambda: len(gate.asked) == 1 and not bridge.grace_running,
                            what="the grace over")  # fmt: skip
                assert bridge.phase == "prejoin" and not bridge.abandoned.is_set()
                glass = await Glass.connect(server)  # opened again, as before
                await glass.send({"type": "join", "name": "Ada"})
                await glass.wait_state(in_meeting)
                await glass.send({"type": "leave"})
                await glass.wait_state(lambda s: s["phase"] == "ended")
                assert not bridge.abandoned.is_set()  # the page still shows why
                await glass.close()
                await until(bridge.abandoned.is_set, what="the bridge abandoned")
                assert bridge.ended_reason == "you left the meeting"

    run(scenario(), timeout=30)


def test_a_guest_rejoins_after_leaving() -> None:
    async def scenario() -> None:
        async with relay() as r:
            host = HeadlessParticipant(r.link, "Hedy", host=True, owner_key=r.owner_key,
                                       video=False, audio=False)  # fmt: skip
            await host.start()
            assert await host.wait_joined(10) and host.session is not None
            bridge = GlassBridge(r.link, host=False)
            try:
                async with serving(bridge) as server:
                    glass = await Glass.connect(server)
                    try:
                        await glass.send({"type": "join", "name": "Grace"})
                        first = await glass.wait_state(in_meeting)
                        await glass.send({"type": "leave"})
                        ended = await glass.wait_state(lambda s: s["phase"] == "ended")
                        assert ended["rejoin"] == "knock" and ended["connection"] is None
                        await until(lambda: "Grace" in host.report.members_left)
                        await glass.send({"type": "join", "name": "Grace"})
                        again = await glass.wait_state(
                            lambda s: in_meeting(s) and len(s["roster"]) == 2
                        )
                        code = host.session.meeting.security_code
                        await glass.wait_state(lambda s: s["security_code"] == code)
                        assert again["security_code"] != first["security_code"]
                        assert again["rejoin"] is None and again["connection"] == "connected"
                        assert bridge.counters.sessions == 2 and bridge.ended_reason is None
                        await glass.send({"type": "join", "name": "Grace"})  # once is enough
                        await glass.wait_message("error", lambda m: "already" in m["message"])
                    finally:
                        await glass.close()
            finally:
                await host.stop()

    run(scenario(), timeout=40)


def test_the_owner_restarts_alone_knocks_with_others_and_restarts_if_they_left() -> None:
    async def scenario() -> None:
        async with relay() as r:
            bridge = GlassBridge(r.link, host=True, owner_key=r.owner_key)
            async with serving(bridge) as server:
                glass = await Glass.connect(server)
                guest: HeadlessParticipant | None = None
                try:
                    await glass.send({"type": "join", "name": "Ada"})
                    await glass.wait_state(in_meeting)
                    await glass.send({"type": "leave"})
                    ended = await glass.wait_state(lambda s: s["phase"] == "ended")
                    assert ended["rejoin"] == "restart"  # alone: the meeting is gone
                    await glass.send({"type": "join", "name": "Ada"})
                    s = await glass.wait_state(lambda s: in_meeting(s) and s["is_host"])
                    assert [e["role"] for e in s["roster"]] == ["owner"]

                    # Grace joins; the owner leaves: Grace keeps the meeting (a handover).
                    guest = HeadlessParticipant(r.link, "Grace", video=False, audio=False)
                    await guest.start()
                    s = await glass.wait_state(lambda s: bool(s["lobby"]))
                    await glass.send({"type": "admit", "id": s["lobby"][0]["id"]})
                    assert await guest.wait_joined(10) and guest.session is not None
                    await glass.wait_state(lambda s: len(s["roster"]) == 2)
                    await glass.send({"type": "leave"})
                    ended = await glass.wait_state(lambda s: s["phase"] == "ended")
                    assert ended["rejoin"] == "knock"  # the group is Grace's now
                    gmeeting = guest.session.meeting
                    await until(lambda: gmeeting.is_host and len(gmeeting.roster) == 1,
                                what="Grace the host, alone")  # fmt: skip

                    # The owner knocks; Grace, now the host, admits it.
                    await glass.send({"type": "join", "name": "Ada"})
                    await glass.wait_state(lambda s: s["phase"] == "lobby")
                    await until(lambda: bool(gmeeting.lobby), what="Ada in Grace's lobby")
                    rid = gmeeting.lobby[0].request_id
                    await guest.session.act(lambda m: m.admit(rid))
                    s = await glass.wait_state(lambda s: in_meeting(s) and len(s["roster"]) == 2)
                    assert s["is_host"] is False  # back, without the host role
                    assert bridge.counters.sessions == 3

                    # The owner leaves again, then Grace: nobody is left. Rejoin knocks,
                    # finds the room empty, and starts the meeting again as its owner.
                    await glass.send({"type": "leave"})
                    await glass.wait_state(lambda s: s["phase"] == "ended")
                    await guest.stop()
                    guest = None
                    await glass.send({"type": "join", "name": "Ada"})
                    s = await glass.wait_state(lambda s: in_meeting(s) and s["is_host"])
                    assert [e["role"] for e in s["roster"]] == ["owner"]
                    assert bridge.counters.sessions == 5  # the knock, then the restart
                    assert not glass.of_type("ended")[3:]  # the empty knock ended nothing
                finally:
                    if guest is not None:
                        await guest.stop()
                    await glass.close()

    run(scenario(), timeout=60)
