"""Hundreds waiting in the lobby (issue 13, requirement 6): the glass's ``state`` lists
the first ``LOBBY_SHOWN`` requests and counts them all, and ``admit_all`` admits every
one of them in batches (``MeetingConfig.admit_batch`` Adds per commit)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "meeting"))

from meeting_harness import Client, Net

from clave.engine import glass_messages as gm
from clave.engine.glass_actions import HANDLERS
from clave.engine.glass_port import GlassPort
from clave.engine.glass_view import View, state_message
from clave.meeting import EpochChanged, Meeting, MeetingConfig

WAITING = 60


def lobby_of(net: Net, n: int) -> tuple[Client, list[Client]]:
    host = net.host("Host")
    net.pump()
    guests = [net.guest(f"Guest {i:03d}") for i in range(n)]
    net.pump()
    return host, guests


def state(net: Net, host: Client) -> gm.State:
    assert net.link is not None
    return state_message(
        View(phase="in_meeting", meeting=host.meeting, link=net.link, auto_admit=False)
    )


class Port:
    """Just enough of the bridge for the lobby's handlers: they act on the meeting."""

    def __init__(self, meeting: Meeting) -> None:
        self.meeting = meeting

    async def act(self, what: str, action: Callable[[Meeting], object]) -> object:
        return action(self.meeting)


def send(host: Client, msg: gm.ToEngine) -> None:
    port = cast(GlassPort, Port(host.meeting))
    asyncio.run(HANDLERS[type(msg)](port, cast(Any, msg)))


def test_the_state_lists_the_first_requests_and_counts_them_all() -> None:
    net = Net()
    host, guests = lobby_of(net, WAITING)
    s = state(net, host)
    assert s.lobby_waiting == WAITING
    assert [e.id for e in s.lobby] == [g.conn for g in guests[: gm.LOBBY_SHOWN]]
    assert [e.name for e in s.lobby][:2] == ["Guest 000", "Guest 001"]


def test_admit_all_admits_everyone_waiting_in_batches() -> None:
    net = Net(config=MeetingConfig(admit_batch=25))
    host, guests = lobby_of(net, WAITING)
    send(host, gm.AdmitAll())
    net.pump()
    assert all(g.meeting.phase == "in_meeting" for g in guests)
    sizes = [len(e.roster) for e in host.of(EpochChanged)]
    assert sizes == [1, 26, 51, 61]  # Adds per commit: 25, 25, 10
    s = state(net, host)
    assert s.lobby == [] and s.lobby_waiting == 0 and len(s.roster) == WAITING + 1


def test_a_guest_sees_no_lobby() -> None:
    net = Net()
    host, guests = lobby_of(net, 3)
    host.meeting.admit(guests[0].conn)
    net.pump()
    assert net.link is not None
    s = state_message(
        View(phase="in_meeting", meeting=guests[0].meeting, link=net.link, auto_admit=False)
    )
    assert s.lobby == [] and s.lobby_waiting == 0
