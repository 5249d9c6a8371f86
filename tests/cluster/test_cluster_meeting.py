"""One meeting on three relay nodes joined through a real NATS server (issue 14).

Four headless participants (real engines: MLS, SFrame, VP8, Opus) connect to three
different relays of one cluster: Ada (host) and Bo on node 1, Cy on node 2, Di on
node 3. Everybody decodes everybody, all agree on one security code, and commits
sent at once from members on different nodes converge: every member ends in the
same epoch with the same code (one commit won each epoch, the others were told).
"""

from __future__ import annotations

import asyncio

from cluster_helpers import join_each
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
from clave.relay.server import STATE_KEY, start_relay


def _codes(people: list[RecordingParticipant]) -> set[str | None]:
    return {p.report.security_code for p in people}


def test_a_meeting_spans_three_relay_nodes(nats_server: NatsServer) -> None:
    async def scenario() -> None:
        relays = [await start_relay("127.0.0.1", 0, nats=[nats_server.url]) for _ in range(3)]
        ports = [port for _, port in relays]
        link, owner_key = invitation(BASE_URL.format(port=ports[0]))
        where = {"Ada": 0, "Bo": 0, "Cy": 1, "Di": 2}
        people: list[RecordingParticipant] = []
        try:
            port_of = {name: ports[node] for name, node in where.items()}
            await join_each(people, link, owner_key, port_of)
            await wait_for_frames(people, timeout=60)
            codes = _codes(people)
            assert len(codes) == 1 and None not in codes, codes
            epochs = {p.session.meeting.epoch for p in people if p.session}
            assert len(epochs) == 1, epochs
            # members on three nodes each ask for a key refresh at once
            before = epochs.pop()
            sessions = [p.session for p in people[1:] if p.session]
            await asyncio.gather(*(s.act(lambda m: m.refresh_keys()) for s in sessions))
            await wait_until(
                lambda: len({p.session.meeting.epoch for p in people if p.session}) == 1
                and all(p.session and p.session.meeting.epoch > before for p in people),
                30,
                explain=lambda: [(p.name, p.session and p.session.meeting.epoch) for p in people],
            )
            await wait_for_frames(people, timeout=60)
            assert len(_codes(people)) == 1
            for p in people:
                assert not p.events_of(ev.SecurityAlert), p.name
                assert not p.events_of(ev.FrameRejected), p.name
            for receiver in people:
                for sender in people:
                    if sender is not receiver:
                        assert receiver.decoded(sender.name) > 0, (receiver.name, sender.name)
            # it went through the cluster: each node delivered the others' media and
            # control to its own connections, and each ordered commits through the log
            nodes = [runner.app[STATE_KEY].cluster for runner, _ in relays]
            assert sorted(n.slot for n in nodes if n) == [1, 2, 3]
            for node in nodes:
                assert node is not None and node.bad_batches == 0
                audio, video, _, control = node.delivered
                assert audio > 0 and video > 0 and control > 0, node.delivered
            logs = [link.order.replica.seq for n in nodes if n for link in n.rooms.values()]
            assert len(logs) == 3 and len(set(logs)) == 1 and logs[0] > 3, logs
        finally:
            await stop_all(people)
            for runner, _ in relays:
                await runner.cleanup()

    run(scenario(), 150)
