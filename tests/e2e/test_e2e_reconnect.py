"""Sessions against a real relay that restarts on the same port (in-process engines).

The multi-process fault tests (test_e2e_faults.py) cover every fault kind with
``clave`` processes; this one checks the session's own state machine: its link
state goes to "reconnecting" and back, it counts the reconnection, and media
decodes again between every pair. Counted, not timed.
"""

from __future__ import annotations

import asyncio

import pytest
from e2e_helpers import (
    BASE_URL,
    RecordingParticipant,
    invitation,
    run,
    stop_all,
    wait_for_frames,
    wait_until,
)

from clave.engine.session import Backoff
from clave.meeting import events as ev
from clave.relay.server import start_relay

pytestmark = pytest.mark.slow


def test_sessions_ride_through_a_relay_restart_on_the_same_port() -> None:
    async def scenario() -> None:
        runner, port = await start_relay("127.0.0.1", 0)
        link, owner_key = invitation(BASE_URL.format(port=port))
        host = RecordingParticipant(link, "host", host=True, owner_key=owner_key)
        people = [host]
        states: dict[str, list[str]] = {}
        try:
            await host.start()
            assert await host.wait_joined(15)
            for name in ("g1", "g2"):
                guest = RecordingParticipant(link, name)
                await guest.start()
                assert await guest.wait_joined(15)
                people.append(guest)
            await wait_for_frames(people)
            for p in people:
                session = p.session
                assert session is not None
                session._backoff = Backoff(first=0.2, cap=1.0)
                name = p.name
                states[name] = []

                def record(name: str = name, session: object = session) -> None:
                    state = session.link_state  # type: ignore[attr-defined]
                    if not states[name] or states[name][-1] != state:
                        states[name].append(state)

                session._on_change = record
            codes = {p.report.security_code for p in people}
            assert len(codes) == 1

            await runner.cleanup()  # the relay process dies: all state is gone
            await wait_until(
                lambda: all(p.session and p.session.link_state == "reconnecting" for p in people),
                15,
            )
            runner, _ = await start_relay("127.0.0.1", port)
            await wait_until(
                lambda: all(p.session and p.session.link_state == "connected" for p in people),
                30,
                explain=lambda: {p.name: p.session and p.session.link_state for p in people},
            )
            await wait_for_frames(people)
            for p in people:
                assert p.session is not None and p.session.reconnects == 1
                assert states[p.name][-2:] == ["reconnecting", "connected"], states
                assert states[p.name].count("reconnecting") == 1, states
                assert p.events_of(ev.ConnectionLost) and p.events_of(ev.Reconnected)
                assert not p.events_of(ev.MemberLeft), (p.name, p.events_of(ev.MemberLeft))
                assert not p.events_of(ev.Stranded)
            assert {p.report.security_code for p in people} == codes
            # ordering works in the re-established room: a key refresh reaches everyone
            epoch = host.session.meeting.epoch if host.session else None
            assert host.session is not None and epoch is not None
            await host.session.act(lambda m: m.refresh_keys())
            await wait_until(
                lambda: all(p.session and p.session.meeting.epoch == epoch + 1 for p in people),
                15,
            )
            await wait_for_frames(people)
            # a late joiner finds the meeting on the restarted relay
            late = RecordingParticipant(link, "late")
            await late.start()
            people.append(late)
            assert await late.wait_joined(15)
            await wait_for_frames(people)
        finally:
            await stop_all(people)
            await asyncio.sleep(0)
            await runner.cleanup()

    run(scenario(), timeout=120)
