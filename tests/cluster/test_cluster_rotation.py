"""Replacing the invitation after a removal, on a relay cluster (as on one relay).

Ada (host) is on node 1, Bob on node 2, Carol on node 3, and someone holding the link
sits in the room on node 2 without ever being admitted. Ada removes Bob and replaces
the invitation: the room moves to the new id on every node (a Move in the room's
log); Carol, on another node than Ada, adopts the new invitation; the lurker on
node 2 is dropped (``Error(rotated)``). Bob, back with the old link on node 4, is told
the invitation was replaced (``Error(rotated)``), with no room of his own; Dave, with
the new link, is admitted through node 2 and everybody agrees on one security code.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
from e2e_helpers import RecordingParticipant, drain_control, stop_all, wait_until
from nats_helpers import NatsServer

from bounded_run import run
from clave import wire
from clave.meeting import events as ev
from clave.meeting.link import MeetingLink, new_link, parse_link
from clave.meeting.meeting import MeetingConfig
from clave.meeting.roles import generate_owner_key
from clave.relay.server import start_relay

FAST = MeetingConfig(order_timeout=1.0, refresh_interval=0)


def quiet(link: MeetingLink, name: str, port: int, **kw: Any) -> RecordingParticipant:
    kw.setdefault("config", FAST)
    return RecordingParticipant(
        link, name, video=False, audio=False, relay_url=f"ws://127.0.0.1:{port}/ws", **kw
    )


def test_removal_with_a_new_invitation_moves_the_room_on_every_node(
    nats_server: NatsServer,
) -> None:
    async def scenario() -> None:
        # the fourth node never carries the room: only the cluster can tell it of the move
        relays = [await start_relay("127.0.0.1", 0, nats=[nats_server.url]) for _ in range(4)]
        ports = [port for _, port in relays]
        owner_private, owner_public = generate_owner_key(os.urandom)
        old = new_link(f"http://127.0.0.1:{ports[0]}", os.urandom, owner_public)
        ada = quiet(old, "Ada", ports[0], host=True, owner_key=owner_private,
                    auto_admit=False, admit={"Bob", "Carol"})  # fmt: skip
        people = [ada]
        http = aiohttp.ClientSession()
        try:
            await ada.start()
            assert await ada.wait_joined(10)
            for name, node in (("Bob", 1), ("Carol", 2)):
                p = quiet(old, name, ports[node])
                people.append(p)
                await p.start()
                assert await p.wait_joined(20), name
            _, bob, carol = people
            await wait_until(lambda: all(len(p.report.roster) == 3 for p in people), 15)
            lurker = await http.ws_connect(f"ws://127.0.0.1:{ports[1]}/ws")
            await lurker.send_bytes(
                wire.encode(wire.Enter(room=old.room_id, token=old.access_token))
            )
            await drain_control(lurker, 0.5)
            assert ada.session is not None
            bob_leaf = ada.session.meeting._presence.leaf_of_conn[bob.session.meeting.conn]  # type: ignore[union-attr]
            await ada.session.act(lambda mt: mt.remove_member(bob_leaf, replace_invitation=True))
            await wait_until(lambda: bool(carol.events_of(ev.InvitationReplaced)), 15)
            new = ada.session.meeting.link
            assert new.room_id != old.room_id
            assert carol.events_of(ev.InvitationReplaced)[-1].url == new.url
            closing = await drain_control(lurker, 3.0)
            assert any(isinstance(x, wire.Error) and x.code == wire.ErrorCode.rotated
                       for x in closing), closing  # fmt: skip
            await lurker.close()
            # Bob comes back with the old link, through node 4, which never had the room:
            # the cluster's record of the old id says the invitation was replaced.
            again = quiet(old, "Bob", ports[3])
            people.append(again)
            await again.start()
            await wait_until(lambda: again.ended.is_set(), 15)
            assert again.report.refused == "rotated"
            assert "invitation was replaced" in again.report.ended_reason
            # Dave, with the new link, through node 2, is admitted.
            ada.admit_names.add("Dave")
            dave = quiet(parse_link(new.url), "Dave", ports[1])
            people.append(dave)
            await dave.start()
            assert await dave.wait_joined(20)
            assert dave.session is not None and carol.session is not None
            await wait_until(
                lambda: dave.session.meeting.security_code  # type: ignore[union-attr]
                == carol.session.meeting.security_code  # type: ignore[union-attr]
                == ada.session.meeting.security_code,  # type: ignore[union-attr]
                15,
            )
            for p in (ada, carol, dave):
                kinds = [a.kind for a in p.events_of(ev.SecurityAlert)]
                assert ev.AlertKind.unexpected_rotation not in kinds, (p.name, kinds)
        finally:
            await http.close()
            await stop_all(people)
            for runner, _ in relays:
                await runner.cleanup()

    run(scenario(), 120)
