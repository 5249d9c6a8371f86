"""Admission against a real relay: the room id alone, or the token alone, admits nobody.

* A room id names a room only together with its access token (derived from the
  link secret): the relay refuses a room id that does not belong to the token
  (``Error(bad_token)`` on the wire, ``JoinRefused`` in the meeting layer), and
  a token of one's own names a different, empty room. A wrong secret therefore
  leads to a room of its own, where nobody can admit anyone. Not one byte of
  the meeting reaches any of them.
* With the access token but a wrong join key, the relay lets the connection
  into the room (it cannot tell), but its sealed join request opens for no
  member: the host never sees a LobbyRequest, no Welcome is ever sent, and
  the meeting goes on and keeps admitting real guests.
"""

from __future__ import annotations

import importlib
import os

import pytest
from e2e_helpers import (
    BASE_URL,
    RawClient,
    RecordingParticipant,
    invitation,
    random_room,
    relay,
    run,
    stop_all,
    wait_for_frames,
    wait_until,
)

from clave.engine.session import MeetingSession
from clave.meeting import events as ev
from clave.meeting.join_request import JoinRequestBody, seal_join_request
from clave.meeting.keys import RoomKeys, join_key
from clave.meeting.link import MeetingLink
from clave.meeting.meeting import Phase
from clave.relay.connection import CloseCode
from clave.wire import (
    AppMessage,
    Enter,
    Error,
    ErrorCode,
    Joined,
    JoinRequest,
    Leave,
    room_id_for_token,
)

pytestmark = pytest.mark.slow

core_module = importlib.import_module("clave.meeting.core")
"""Where a Meeting derives its keys from the link (patched to give one engine a wrong key)."""


async def _start_meeting(
    link: MeetingLink, owner_key: bytes, *guests: str
) -> list[RecordingParticipant]:
    """A host that admits exactly ``guests`` (no auto-admit), and those guests, joined."""
    host = RecordingParticipant(
        link, "Ada", host=True, owner_key=owner_key, auto_admit=False, admit=guests
    )
    people = [host]
    await host.start()
    assert await host.wait_joined(10)
    for name in guests:
        guest = RecordingParticipant(link, name)
        people.append(guest)
        await guest.start()
        assert await guest.wait_joined(15), f"{name} was not admitted"
    return people


def _healthy(people: list[RecordingParticipant]) -> None:
    for p in people:
        assert not p.events_of(ev.Error), (p.name, p.events_of(ev.Error))
        assert not p.events_of(ev.FrameRejected), p.name
        assert not p.events_of(ev.SecurityAlert), p.name
        assert p.report.alerts == [] and p.report.ordering_stalls == 0, p.report


def test_room_id_without_the_token_admits_nobody_and_sees_nothing() -> None:
    async def scenario() -> None:
        async with relay() as port:
            link, owner_key = invitation(BASE_URL.format(port=port))
            people = await _start_meeting(link, owner_key, "Grace")
            host, grace = people
            outsiders: list[RawClient] = []
            sessions: list[MeetingSession] = []
            try:
                await wait_for_frames(people)  # the meeting is under way
                codes = [p.report.security_code for p in people]
                assert None not in codes and len(set(codes)) == 1

                async def meeting_goes_on(text: str) -> None:
                    """A chat and a hundred-odd more frames each way: traffic Eve would see."""
                    await grace.chat(text)
                    await wait_until(lambda: (grace.name, text) in host.report.chats, 15)
                    await wait_for_frames(people, {"video": 60, "audio": 100})

                # 1. A raw client with the leaked room id and a guessed token.
                eve = await RawClient.connect(port)
                outsiders.append(eve)
                await eve.send(Enter(room=link.room_id, token=os.urandom(32)))
                err = await eve.control(Error)
                assert err.code == ErrorCode.bad_token
                # An unknown room gets the very same answer (no room oracle).
                await eve.send(Enter(room=random_room(), token=os.urandom(32)))
                assert (await eve.control(Error)) == err
                # Nor can it claim the room id with a token of its own: a room id must
                # belong to the token presented (same answer again) ...
                own = os.urandom(32)
                await eve.send(Enter(room=link.room_id, token=own))
                assert (await eve.control(Error)) == err
                # ... and a room id of some other token does not fit a guess either.
                await eve.send(Enter(room=room_id_for_token(own), token=os.urandom(32)))
                assert (await eve.control(Error)) == err
                # Media, commits and chat keep flowing in the room: none reaches Eve.
                seen, _ = await eve.silent_while(meeting_goes_on("while Eve waits"))
                assert seen == []
                await eve.send(AppMessage(data=b"let me in"))
                closed = await eve.closed()
                assert closed.error_codes == [ErrorCode.not_joined]
                assert closed.code == CloseCode.not_joined
                assert closed.messages == 1
                assert len(eve.received) == 4  # the four refusals, nothing else

                # A token of one's own names a room of one's own: empty, and nothing of
                # the meeting ever reaches it.
                squatter = await RawClient.connect(port)
                outsiders.append(squatter)
                joined = await squatter.enter(room_id_for_token(own), own)
                assert joined.peers == []
                seen, _ = await squatter.silent_while(meeting_goes_on("beside the squatter"))
                assert seen == []
                await squatter.send(Leave())
                assert (await squatter.closed()).code == CloseCode.normal

                # 2. A full client whose invitation has the right relay and owner but a
                #    wrong secret: that secret names another room, where nobody is.
                wrong = link.with_secret(os.urandom(32))
                assert wrong.room_id != link.room_id
                lost: list[ev.Event] = []
                sessions.append(
                    await MeetingSession.start(wrong, "Mallory", host=False, on_event=lost.append)
                )
                await wait_until(lambda: any(isinstance(e, ev.MeetingEnded) for e in lost), 10)
                assert [type(e) for e in lost] == [ev.Connected, ev.MeetingEnded], lost
                assert "nobody" in lost[1].reason  # type: ignore[attr-defined]
                assert sessions[-1].meeting.phase is Phase.ended

                # 3. A full client that presents the meeting's real room id with the token
                #    of a wrong secret: the relay refuses it before it is in any room.
                other = wrong.keys
                forged = RoomKeys(
                    other.access_token, other.token_hash, link.room_id, other.join_key
                )
                refused: list[ev.Event] = []
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr(core_module, "room_keys", lambda _link: forged)
                    sessions.append(
                        await MeetingSession.start(
                            link, "Trudy", host=False, on_event=refused.append
                        )
                    )
                await wait_until(lambda: bool(refused), 10)
                await wait_for_frames(people)  # anything else that might follow
                assert [type(e) for e in refused] == [ev.JoinRefused], refused
                assert isinstance(refused[0], ev.JoinRefused)
                assert refused[0].code == "bad_token"
                assert sessions[-1].meeting.phase is Phase.ended
                assert sessions[-1].meeting.conn is None

                # The meeting did not notice.
                await wait_for_frames(people)
                assert [p.report.security_code for p in people] == codes
                _healthy(people)
                assert [e.display_name for e in host.events_of(ev.LobbyRequest)] == ["Grace"]
                assert sorted(host.report.roster) == ["Ada", "Grace"]
            finally:
                for s in sessions:
                    await s.close(leave=False)
                for c in outsiders:
                    await c.close()
                await stop_all(people)

    run(scenario(), timeout=90)


def test_token_without_the_join_key_is_never_admitted() -> None:
    async def scenario() -> None:
        async with relay() as port:
            link, owner_key = invitation(BASE_URL.format(port=port))
            people = await _start_meeting(link, owner_key, "Grace")
            host, grace = people
            mallory_events: list[ev.Event] = []
            mallory: MeetingSession | None = None
            eve: RawClient | None = None
            try:
                await wait_for_frames(people)
                codes = [p.report.security_code for p in people]
                real = link.keys
                bad_key = join_key(os.urandom(32))

                # 1. A real engine whose join key is wrong (everything else right): patch
                #    the key derivation while this one Meeting is constructed.
                wrong = RoomKeys(real.access_token, real.token_hash, real.room_id, bad_key)
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr(core_module, "room_keys", lambda _link: wrong)
                    mallory = await MeetingSession.start(
                        link, "Mallory", host=False, on_event=mallory_events.append
                    )

                # 2. A hand-made request on a raw relay connection, sealed with a wrong key.
                eve = await RawClient.connect(port)
                joined: Joined = await eve.enter_link(link)
                assert joined.peers  # the relay let it into the room: it cannot tell
                body = JoinRequestBody(key_package=b"\x00\x01" * 8, name="Eve", conn=eve.conn)
                sealed = seal_join_request(bad_key, body, os.urandom)
                await eve.send(JoinRequest(data=sealed))

                # It does receive the room's ciphertext...
                seen_by_eve = await eve.collect(200, timeout=20)
                assert len(seen_by_eve) == 200

                # ... but nobody admits Mallory or Eve: both requests fail to open for
                # every member (host and guest alike).
                def refusals(p: RecordingParticipant) -> list[ev.Error]:
                    errors = p.events_of(ev.Error)
                    return [e for e in errors if e.code == ev.ErrorCode.bad_join_request]

                # (a waiting joiner knocks again after a while: count whose requests
                # were refused, not how many)
                knockers = {f"from connection {c}:" for c in (mallory.meeting.conn, eve.conn)}

                def refused(p: RecordingParticipant) -> set[str]:
                    return {e.message.split(" join request")[0] for e in refusals(p)}

                await wait_until(lambda: all(refused(p) == knockers for p in people), 15)
                await wait_for_frames(people)
                assert mallory.meeting.phase is Phase.lobby
                kinds = {type(e) for e in mallory_events}
                assert kinds == {ev.Connected}, mallory_events
                assert mallory.meeting.security_code is None
                for p in people:
                    errors = p.events_of(ev.Error)
                    assert refused(p) == knockers and errors == refusals(p), errors
                    assert all("does not open" in e.message for e in errors), errors
                    assert not p.events_of(ev.FrameRejected)
                    assert not p.events_of(ev.SecurityAlert)
                assert [e.display_name for e in host.events_of(ev.LobbyRequest)] == ["Grace"]
                assert [p.report.security_code for p in people] == codes
                assert sorted(host.report.roster) == ["Ada", "Grace"]

                # The meeting still admits people who hold the link.
                host.admit_names.add("Linus")
                linus = RecordingParticipant(link, "Linus")
                people.append(linus)
                await linus.start()
                assert await linus.wait_joined(15)
                await wait_for_frames(people)  # Linus decodes everyone, everyone Linus
                lobby = [e.display_name for e in host.events_of(ev.LobbyRequest)]
                assert lobby == ["Grace", "Linus"]
                assert sorted(linus.report.roster) == ["Ada", "Grace", "Linus"]
                assert linus.decoded("Ada") > 0 and grace.decoded("Linus") > 0
                assert len({p.report.security_code for p in people}) == 1
                assert mallory.meeting.phase is Phase.lobby
                assert {type(e) for e in mallory_events} == {ev.Connected}
            finally:
                if mallory is not None:
                    await mallory.close(leave=False)
                if eve is not None:
                    await eve.close()
                await stop_all(people)

    run(scenario(), timeout=90)
