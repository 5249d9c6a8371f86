"""A relay cluster survives a dead node and a restarted NATS server (issue 14, req. 4).

Three relay nodes run as processes (``clave serve --nats``); four real engines reach
them through a front door that prefers one node per engine (a deployment's load
balancer): Ada and Bo on node A, Cy on B, Di on C.

* SIGKILL node C: Di's engine reconnects through its own reconnection, the front door
  takes it to another node, and everybody decodes everybody again (frames counted
  after the kill), with one security code.
* Restart the NATS server: the cluster's state was in its memory only, so each node
  starts afresh as a restarted relay does (it closes its connections); the engines
  come back and the meeting goes on, frames counted after the restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_helpers import FrontDoor, RelayNode, join_each
from e2e_helpers import (
    BASE_URL,
    RecordingParticipant,
    invitation,
    stop_all,
    wait_for_frames,
    wait_until,
)
from nats_helpers import NatsServer

from bounded_run import run
from clave.meeting import events as ev

WHERE = {"Ada": 0, "Bo": 0, "Cy": 1, "Di": 2}


def _one_code(people: list[RecordingParticipant]) -> None:
    codes = {p.report.security_code for p in people}
    assert len(codes) == 1 and None not in codes, codes


async def _meeting(nodes: list[RelayNode], door: FrontDoor) -> list[RecordingParticipant]:
    ports = [n.port for n in nodes]
    entrances = {}
    for name, first in WHERE.items():
        entrances[name] = await door.open(name, ports[first:] + ports[:first])
    link, owner_key = invitation(BASE_URL.format(port=entrances["Ada"]))
    people: list[RecordingParticipant] = []
    try:
        await join_each(people, link, owner_key, {name: entrances[name] for name in WHERE})
    except BaseException:
        await stop_all(people)
        raise
    await wait_for_frames(people, timeout=60)
    _one_code(people)
    return people


def _healthy(people: list[RecordingParticipant]) -> None:
    for p in people:
        assert not p.events_of(ev.SecurityAlert), (p.name, p.events_of(ev.SecurityAlert))


@pytest.fixture
def nodes(nats_server: NatsServer, tmp_path: Path) -> Iterator[list[RelayNode]]:
    """Relay nodes A, B and C as processes on ``nats_server``, stopped afterwards."""
    started: list[RelayNode] = []
    try:
        for name in "ABC":
            started.append(RelayNode(nats_server.url, tmp_path, name))
        yield started
    finally:
        for node in started:
            node.stop()


def test_a_killed_node_moves_its_participants_to_another(nodes: list[RelayNode]) -> None:

    async def scenario() -> None:
        door = FrontDoor()
        people: list[RecordingParticipant] = []
        try:
            people = await _meeting(nodes, door)
            di = people[3]
            assert door.routed["Di"] == [nodes[2].port]
            before = di.decoded("Ada")
            nodes[2].kill()
            # Di's engine reconnects; the front door takes it to node A this time
            await wait_until(lambda: len(door.routed["Di"]) >= 2, 30)
            assert door.routed["Di"][-1] == nodes[0].port
            counts = await wait_for_frames(people, timeout=90)  # all pairs, after the kill
            assert di.decoded("Ada") > before
            assert counts[("Ada", "Di", "video")] > 0
            _one_code(people)
            _healthy(people)
        finally:
            await stop_all(people)
            await door.close()

    run(scenario(), 200)


def test_the_meeting_survives_a_nats_restart(
    nats_server: NatsServer, nodes: list[RelayNode]
) -> None:

    async def scenario() -> None:
        door = FrontDoor()
        people: list[RecordingParticipant] = []
        try:
            people = await _meeting(nodes, door)
            routed = {name: len(ports) for name, ports in door.routed.items()}
            nats_server.restart()  # memory-only state: every stream and bucket is gone
            # every engine was reconnected (its node started afresh) ...
            await wait_until(
                lambda: all(len(door.routed[n]) > routed[n] for n in WHERE),
                60,
                explain=lambda: door.routed,
            )
            # ... and everybody decodes everybody again
            await wait_for_frames(people, timeout=90)
            _one_code(people)
            _healthy(people)
            assert all("starts afresh" in node.output() for node in nodes)
        finally:
            await stop_all(people)
            await door.close()

    run(scenario(), 200)
