"""Admission against a real relay: the room id alone, or the token alone, admits nobody.

* Without the access token (derived from the link secret) the relay refuses
  the connection: ``Error(bad_token)`` on the wire, ``JoinRefused`` in the
  meeting layer, and not one byte of the meeting reaches it.
* With the access token but a wrong join key, the relay lets the connection
  into the room (it cannot tell), but its sealed join request opens for no
  member: the host never sees a LobbyRequest, no Welcome is ever sent, and
  the meeting goes on and keeps admitting real guests.
"""

from __future__ import annotations

import asyncio
import importlib
import os

import pytest
from e2e_helpers import (
    BASE_URL,
    RawClient,
    RecordingParticipant,
    random_room,
    relay,
    run,
    stop_all,
    wait_until,
)

from clave.engine.session import MeetingSession
from clave.meeting import events as ev
from clave.meeting.join_request import JoinRequestBody, seal_join_request
from clave.meeting.keys import RoomKeys, join_key, room_keys
from clave.meeting.link import MeetingLink, new_link
from clave.meeting.meeting import Phase
from clave.relay.connection import CloseCode
from clave.wire import AppMessage, Create, Error, ErrorCode, Join, JoinRequest

pytestmark = pytest.mark.slow

meeting_module = importlib.import_module("clave.meeting.meeting")


async def _start_meeting(link: MeetingLink, *guests: str) -> list[RecordingParticipant]:
    """A host that admits exactly ``guests`` (no auto-admit), and those guests, joined."""
    host = RecordingParticipant(link, "Ada", host=True, auto_admit=False, admit=guests)
    people = [host]
    await host.start()
    assert await host.wait_joined(10)
    for name in guests:
        guest = RecordingParticipant(link, name)
        people.append(guest)
        await guest.start()
        assert await guest.wait_joined(15), f"{name} was not admitted"
    return people


def _video(people: list[RecordingParticipant]) -> dict[tuple[str, str], int]:
    return {(p.name, q.name): p.decoded(q.name) for p in people for q in people if q is not p}


def _assert_kept_going(
    before: dict[tuple[str, str], int], after: dict[tuple[str, str], int], seconds: float
) -> None:
    for pair, n in before.items():
        assert after[pair] - n >= 10 * seconds, f"{pair}: {n} -> {after[pair]} in {seconds} s"


def test_room_id_without_the_token_admits_nobody_and_sees_nothing() -> None:
    async def scenario() -> None:
        async with relay() as port:
            link = new_link(BASE_URL.format(port=port), os.urandom)
            people = await _start_meeting(link, "Grace")
            outsiders: list[RawClient] = []
            refused: list[ev.Event] = []
            session: MeetingSession | None = None
            try:
                await asyncio.sleep(1.0)
                codes = [p.report.security_code for p in people]
                before = _video(people)

                # 1. A raw client with the leaked room id and a guessed token.
                eve = await RawClient.connect(port)
                outsiders.append(eve)
                await eve.send(Join(room=link.room_id, token=os.urandom(32)))
                err = await eve.control(Error)
                assert err.code == ErrorCode.bad_token
                # An unknown room gets the very same answer (no room oracle).
                await eve.send(Join(room=random_room(), token=os.urandom(32)))
                assert (await eve.control(Error)) == err
                # Nor can it take over the room id with a token of its own.
                await eve.send(Create(room=link.room_id, token_hash=os.urandom(32)))
                assert (await eve.control(Error)).code == ErrorCode.room_exists
                # Media, handshakes and chat keep flowing in the room: none reaches Eve.
                assert await eve.silent_for(1.5) == []
                await eve.send(AppMessage(epoch=0, data=b"let me in"))
                closed = await eve.closed()
                assert closed.error_codes == [ErrorCode.not_joined]
                assert closed.code == CloseCode.not_joined
                assert closed.messages == 1
                assert len(eve.received) == 3  # the three refusals, nothing else

                # 2. A full client holding a link with the right room id, wrong secret.
                wrong = MeetingLink(link.scheme, link.netloc, link.room_id, os.urandom(32))
                session = await MeetingSession.start(
                    wrong, "Mallory", host=False, on_event=refused.append
                )
                await wait_until(lambda: bool(refused), 5)
                await asyncio.sleep(0.5)  # anything else that might follow
                assert [type(e) for e in refused] == [ev.JoinRefused], refused
                assert isinstance(refused[0], ev.JoinRefused)
                assert refused[0].code == "bad_token"
                assert session.meeting.phase is Phase.ended
                assert session.meeting.conn is None

                # The meeting did not notice.
                _assert_kept_going(before, _video(people), 2.5)
                assert [p.report.security_code for p in people] == codes
                for p in people:
                    assert not p.events_of(ev.Error), p.events_of(ev.Error)
                    assert not p.events_of(ev.FrameRejected)
                assert [e.display_name for e in people[0].events_of(ev.LobbyRequest)] == ["Grace"]
            finally:
                if session is not None:
                    await session.close(leave=False)
                for c in outsiders:
                    await c.close()
                await stop_all(people)

    run(scenario(), timeout=40)


def test_token_without_the_join_key_is_never_admitted() -> None:
    async def scenario() -> None:
        async with relay() as port:
            link = new_link(BASE_URL.format(port=port), os.urandom)
            people = await _start_meeting(link, "Grace")
            host, grace = people
            mallory_events: list[ev.Event] = []
            mallory: MeetingSession | None = None
            eve: RawClient | None = None
            try:
                await asyncio.sleep(1.0)
                codes = [p.report.security_code for p in people]
                before = _video(people)
                real = room_keys(link)
                bad_key = join_key(os.urandom(32), link.room_id_bytes)

                # 1. A real engine whose join key is wrong (everything else right): patch
                #    the key derivation while this one Meeting is constructed.
                wrong = RoomKeys(real.access_token, real.token_hash, bad_key)
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr(meeting_module, "room_keys", lambda _link: wrong)
                    mallory = await MeetingSession.start(
                        link, "Mallory", host=False, on_event=mallory_events.append
                    )

                # 2. A hand-made request on a raw relay connection, sealed with a wrong key.
                eve = await RawClient.connect(port)
                joined = await eve.join_link(link)
                assert joined.peers  # the relay let it into the room: it cannot tell
                body = JoinRequestBody(key_package=b"\x00\x01" * 8, name="Eve", conn=eve.conn)
                sealed = seal_join_request(bad_key, link.room_id_bytes, body, os.urandom)
                await eve.send(JoinRequest(data=sealed))

                seen_by_eve = await eve.silent_for(2.5)
                assert len(seen_by_eve) > 50  # it does receive the room's ciphertext...

                # ... but nobody admits Mallory or Eve.
                assert mallory.meeting.phase is Phase.lobby
                kinds = {type(e) for e in mallory_events}
                assert kinds == {ev.Connected}, mallory_events
                assert mallory.meeting.security_code is None
                for p in people:
                    errors = p.events_of(ev.Error)
                    assert len(errors) == 2, errors
                    assert all(e.code == ev.ErrorCode.bad_join_request for e in errors)
                    assert all("does not open" in e.message for e in errors), errors
                    assert not p.events_of(ev.FrameRejected)
                assert [e.display_name for e in host.events_of(ev.LobbyRequest)] == ["Grace"]
                assert [p.report.security_code for p in people] == codes
                assert sorted(host.report.roster) == ["Ada", "Grace"]
                _assert_kept_going(before, _video(people), 2.5)

                # The meeting still admits people who hold the link.
                host.admit_names.add("Linus")
                linus = RecordingParticipant(link, "Linus")
                people.append(linus)
                await linus.start()
                assert await linus.wait_joined(15)
                await asyncio.sleep(1.5)
                lobby = [e.display_name for e in host.events_of(ev.LobbyRequest)]
                assert lobby == ["Grace", "Linus"]
                assert sorted(linus.report.roster) == ["Ada", "Grace", "Linus"]
                assert linus.decoded("Ada") > 0 and grace.decoded("Linus") > 0
                assert mallory.meeting.phase is Phase.lobby
                assert {type(e) for e in mallory_events} == {ev.Connected}
            finally:
                if mallory is not None:
                    await mallory.close(leave=False)
                if eve is not None:
                    await eve.close()
                await stop_all(people)

    run(scenario(), timeout=40)
