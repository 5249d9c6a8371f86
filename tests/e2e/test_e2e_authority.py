"""The admission-and-authority attacks, run against a real relay and real engines.

Every engine here is the real asyncio engine (``MeetingSession`` under a
headless participant) talking to the real aiohttp relay over WebSockets. The
attacker is a member whose engine is tampered with (it sends what an honest
engine never would, with its real keys and credentials), a link holder, or a
relay patched to lie. Each test counts what honest engines did; none times
anything. Attack 1 (the relay's own page) is in tests/browser; attack 9 (the
secret in argv) in tests/cli and tests/engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from e2e_helpers import RecordingParticipant, drain_control, relay, run, stop_all, wait_until

from clave import wire
from clave.meeting import events as ev
from clave.meeting.identity import Identity, make_credential
from clave.meeting.link import MeetingLink, new_link, parse_link
from clave.meeting.lobby import Outcome, ReplyBody, seal_reply
from clave.meeting.meeting import MeetingConfig
from clave.meeting.people import PeopleBook
from clave.meeting.policy import CAPABILITIES, MeetingPolicy, initial_extensions, with_policy
from clave.meeting.roles import HostEntry, generate_owner_key, suite
from clave.mls.events import allow_all
from clave.mls.group import Group, GroupConfig, Signer
from clave.relay import room as relay_room

pytestmark = pytest.mark.slow

FAST = MeetingConfig(order_timeout=1.0, refresh_interval=0)


def quiet(link: MeetingLink, name: str, **kw: Any) -> RecordingParticipant:
    """A participant without media (these tests are about control, not frames)."""
    kw.setdefault("config", FAST)
    return RecordingParticipant(link, name, video=False, audio=False, **kw)


@contextlib.asynccontextmanager
async def meeting(
    *guests: str, guest_config: MeetingConfig = FAST, **host_kw: Any
) -> AsyncIterator[list[RecordingParticipant]]:
    """A real relay, a host Ada (owner) and ``guests`` admitted one by one."""
    async with relay() as port:
        owner_private, owner_public = generate_owner_key(os.urandom)
        link = new_link(f"http://127.0.0.1:{port}", os.urandom, owner_public)
        host = quiet(link, "Ada", host=True, owner_key=owner_private, auto_admit=False,
                     admit=guests, **host_kw)  # fmt: skip
        people = [host]
        try:
            await host.start()
            assert await host.wait_joined(10)
            for name in guests:
                g = quiet(link, name, config=guest_config)
                people.append(g)
                await g.start()
                assert await g.wait_joined(15), f"{name} was not admitted"
            await wait_until(lambda: all(len(p.report.roster) == len(people) for p in people), 10)
            yield people
        finally:
            await stop_all(people)


def m(p: RecordingParticipant) -> Any:
    assert p.session is not None
    return p.session.meeting


async def send(p: RecordingParticipant, msg: Any) -> None:
    assert p.session is not None
    await p.session._conn.send(wire.encode(msg))


async def rogue_commit(p: RecordingParticipant, **commit: Any) -> None:
    """A tampered engine commits anything with its real epoch credential."""
    group = m(p)._group
    group._policy = allow_all
    out = group.commit(**commit)
    cred = m(p)._credential(group)
    nxt = hashlib.sha256(group.pending_export_secret("clave v2 commit credential", b"", 32))
    group.discard_pending_commit()  # the tampered engine does not follow its own commit
    await send(p, wire.Commit(cred=cred, next=nxt.digest(), data=out.commit))


def rejected(p: RecordingParticipant) -> list[ev.Error]:
    return [e for e in p.events_of(ev.Error) if e.code == ev.ErrorCode.rejected_commit]


def alerts(p: RecordingParticipant, kind: ev.AlertKind) -> list[ev.SecurityAlert]:
    return [a for a in p.events_of(ev.SecurityAlert) if a.kind == kind]


# ---------------------------------------------------------------- 2. counterfeit Welcome


@pytest.mark.parametrize("auto", [False, True], ids=["by hand", "auto-admit"])
def test_counterfeit_welcome_loses_to_the_real_host(auto: bool) -> None:
    async def scenario() -> None:
        async with meeting("Bob") as (ada, bob):
            link = ada.link
            grace = quiet(link, "Grace")
            await grace.start()
            await wait_until(lambda: any(e.name == "Grace" for e in m(bob)._lobby.values()), 10)
            # Bob, a member, holds the link: he reads Grace's request and answers it
            # with a Welcome to a group of his own (same group id, host named "Ada").
            (req,) = [e for e in m(bob)._lobby.values() if e.name == "Grace"]
            priv, pub = suite().generate_signature_key_pair(os.urandom)
            signer = Signer(make_credential(Identity.generate(os.urandom), "Ada", pub), priv)
            policy = MeetingPolicy(owner=m(ada).policy.owner, hosts=(HostEntry(pub, ()),))
            fake = Group.create(1, m(bob)._group.group_id, signer, rng=os.urandom,
                                now=lambda: int(__import__("time").time()),
                                extensions=initial_extensions(policy),
                                config=GroupConfig(capabilities=CAPABILITIES))  # fmt: skip
            out = fake.commit(add=[req.key_package])
            assert out.welcome is not None
            await send(bob, wire.WelcomeTo(to=req.request_id, data=out.welcome))
            await wait_until(lambda: bool(alerts(grace, ev.AlertKind.counterfeit_welcome)), 10)
            assert grace.phase == "lobby"
            assert ada.session is not None
            if auto:
                await ada.session.act(lambda mt: mt.set_auto_admit(True))
            else:
                await ada.session.act(lambda mt: mt.admit(req.request_id))
            assert await grace.wait_joined(10)
            await wait_until(lambda: m(grace).security_code == m(ada).security_code, 10)
            assert [r.name for r in m(grace).roster] == ["Ada", "Bob", "Grace"]
            assert len(alerts(grace, ev.AlertKind.counterfeit_welcome)) == 1
            await stop_all([grace])

    run(scenario(), 60)


# ---------------------------------------------------------------- 3. the first guest seizes


def test_first_guest_cannot_seize_the_meeting() -> None:
    async def scenario() -> None:
        async with meeting("Bob", "Carol") as (ada, bob, carol):
            before = m(carol).security_code
            policy = m(bob).policy
            seized = policy.replace(hosts=(policy.successors[0],), successors=())
            group = m(bob)._group
            await rogue_commit(bob, remove=[0, 2], extensions=with_policy(group.extensions, seized))
            await wait_until(lambda: bool(rejected(ada)) and bool(rejected(carol)), 10)
            assert alerts(ada, ev.AlertKind.refused_takeover)
            assert m(ada).is_host and m(carol).security_code == before
            # The host still rules: it removes Bob, which the relay orders.
            assert ada.session is not None
            await ada.session.act(lambda mt: mt.remove_member(1))
            await wait_until(lambda: [r.name for r in m(carol).roster] == ["Ada", "Carol"], 10)
            assert m(carol).security_code == m(ada).security_code

    run(scenario(), 60)


# ---------------------------------------------------------------- 4. freezing the meeting


async def raw_enter(port: int, link: MeetingLink) -> tuple[aiohttp.ClientSession, Any]:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws")
    await ws.send_bytes(wire.encode(wire.Enter(room=link.room_id, token=link.access_token)))
    return session, ws


def test_a_knocker_cannot_get_commits_ordered() -> None:
    async def scenario() -> None:
        async with meeting("Bob", "Carol") as (ada, bob, _carol):
            port = int(ada.link.netloc.rsplit(":", 1)[1])
            session, ws = await raw_enter(port, ada.link)
            try:
                for _ in range(200):
                    junk = wire.Commit(cred=os.urandom(32), next=os.urandom(32), data=b"junk")
                    await ws.send_bytes(wire.encode(junk))
                got = await drain_control(ws, 1.0)
                refusals = [x for x in got if isinstance(x, wire.Error)]
                assert len(refusals) == 200
                assert {x.code for x in refusals} <= {
                    wire.ErrorCode.bad_credential,
                    wire.ErrorCode.rate_limited,
                }
                assert ada.session is not None
                await ada.session.act(lambda mt: mt.remove_member(2))
                await wait_until(lambda: [r.name for r in m(bob).roster] == ["Ada", "Bob"], 10)
                # None of the junk ever reached a member as a commit to process.
                assert not [e for p in (ada, bob) for e in p.events_of(ev.Error)
                            if e.code == ev.ErrorCode.bad_handshake]  # fmt: skip
            finally:
                await ws.close()
                await session.close()

    run(scenario(), 60)


def test_a_lying_relay_turns_the_padlock_into_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    lies = {"left": 2}
    honest = relay_room.Room.commit

    def lying(self: Any, peer: Any, msg: Any, now: float) -> None:
        if lies["left"] > 0:
            lies["left"] -= 1
            peer.send(wire.Error(code=wire.ErrorCode.stale_epoch, message="stale"))
            return
        honest(self, peer, msg, now)

    async def scenario() -> None:
        async with meeting("Bob", "Carol") as (ada, bob, _carol):
            monkeypatch.setitem(relay_room.HANDLERS, wire.Commit, lying)
            assert ada.session is not None
            await ada.session.act(lambda mt: mt.remove_member(2))
            await wait_until(lambda: ada.report.ordering_stalls >= 1, 15)
            assert 2 in m(ada).pending_removals or [r.name for r in m(bob).roster] == [
                "Ada", "Bob"
            ]  # fmt: skip
            await wait_until(lambda: [r.name for r in m(bob).roster] == ["Ada", "Bob"], 30)
            assert ada.events_of(ev.OrderingResumed)
            assert m(ada).ordering_stalled is None

    run(scenario(), 90)


# ---------------------------------------------------------------- 5. the security code


def test_back_to_back_refreshes_do_not_move_the_code() -> None:
    async def scenario() -> None:
        async with meeting("Bob", "Carol") as (ada, bob, carol):
            code = m(ada).security_code
            epoch = m(ada).epoch
            for _ in range(20):
                await rogue_commit(bob)
                await asyncio.sleep(0.02)
            await wait_until(lambda: len([e for e in rejected(ada) if "in a row" in e.message])
                             + (m(ada).epoch - epoch) >= 1, 10)  # fmt: skip
            assert m(ada).security_code == m(carol).security_code == code
            assert ada.report.security_codes[-1][1] == code

    run(scenario(), 60)


def test_engines_refresh_periodically_and_the_code_holds() -> None:
    async def scenario() -> None:
        cfg = MeetingConfig(order_timeout=1.0, refresh_interval=0.5)
        async with meeting("Bob", "Carol", config=cfg, guest_config=cfg) as (ada, bob, carol):
            code, epoch = m(ada).security_code, m(ada).epoch
            # Everyone refreshes about every 0.5 s here (10 minutes by default).
            await wait_until(lambda: m(ada).epoch >= epoch + 6, 20)
            await wait_until(lambda: m(bob).epoch == m(ada).epoch == m(carol).epoch, 10)
            changes = [
                c for p in (ada, bob, carol) for e, c in p.report.security_codes if e > epoch
            ]
            assert len(changes) >= 12 and set(changes) == {code}
            assert not [e for p in (ada, bob, carol) for e in rejected(p)]

    run(scenario(), 60)


# ---------------------------------------------------------------- 6. knocking as someone else


def test_the_lobby_tells_a_known_grace_from_an_impostor() -> None:
    async def scenario() -> None:
        grace_id = Identity.generate(os.urandom)
        book = PeopleBook()
        book.remember(grace_id.public_key, "Grace", 1_700_000_000)
        async with meeting(people=book) as (ada,):
            real = quiet(ada.link, "Grace", identity=grace_id)
            impostor = quiet(ada.link, "Grace")
            lookalike = quiet(ada.link, "Gr\u0430ce")
            for p in (real, impostor, lookalike):
                await p.start()
            await wait_until(lambda: len(ada.events_of(ev.LobbyRequest)) == 3, 10)
            by_conn = {r.request_id: r for r in ada.events_of(ev.LobbyRequest)}
            assert by_conn[m(real).conn].familiarity.startswith("known since 2023-")
            assert by_conn[m(impostor).conn].familiarity == (
                "⚠ a different key than the Grace you met before"
            )
            assert by_conn[m(lookalike).conn].confusable_with == "Grace"
            await stop_all([real, impostor, lookalike])

    run(scenario(), 60)


# ---------------------------------------------------------------- 7. the old link after removal


def test_removal_with_a_new_invitation_locks_the_ex_member_out() -> None:
    async def scenario() -> None:
        async with meeting("Bob", "Carol") as (ada, _bob, carol):
            old = ada.link
            port = int(old.netloc.rsplit(":", 1)[1])
            lurk_session, lurker = await raw_enter(port, old)  # someone sitting in the room
            await drain_control(lurker, 0.3)
            assert ada.session is not None
            await ada.session.act(lambda mt: mt.remove_member(1, replace_invitation=True))
            await wait_until(lambda: bool(carol.events_of(ev.InvitationReplaced)), 10)
            new = m(ada).link
            assert carol.events_of(ev.InvitationReplaced)[-1].url == new.url != old.url
            closing = await drain_control(lurker, 2.0)
            assert any(isinstance(x, wire.Error) and x.code == wire.ErrorCode.rotated
                       for x in closing)  # fmt: skip
            await lurker.close()
            await lurk_session.close()
            # Bob comes back with the old link: told it was replaced, no room of his own.
            again = quiet(old, "Bob")
            await again.start()
            await wait_until(lambda: again.ended.is_set(), 10)
            assert again.report.refused == "rotated"
            assert "invitation was replaced" in again.report.ended_reason
            # Dave, with the new link, is admitted.
            ada.admit_names.add("Dave")
            dave = quiet(parse_link(new.url), "Dave")
            await dave.start()
            assert await dave.wait_joined(10)
            await wait_until(lambda: m(dave).security_code == m(carol).security_code, 10)
            assert not alerts(carol, ev.AlertKind.unexpected_rotation)
            await stop_all([again, dave])

    run(scenario(), 60)


# ---------------------------------------------------------------- 8. the room id alone


def test_a_room_id_alone_reveals_and_blocks_nothing() -> None:
    async def scenario() -> None:
        async with relay() as port:
            owner_private, owner_public = generate_owner_key(os.urandom)
            link = new_link(f"http://127.0.0.1:{port}", os.urandom, owner_public)
            answers: list[bytes] = []
            for room in (link.room_id, wire.room_id_for_token(os.urandom(32))):
                async with aiohttp.ClientSession() as s, s.ws_connect(
                    f"ws://127.0.0.1:{port}/ws"
                ) as ws:
                    await ws.send_bytes(wire.encode(wire.Enter(room=room, token=os.urandom(32))))
                    answers.append((await ws.receive()).data)
            # ... before the meeting exists: the same refusal, byte for byte
            ada = quiet(link, "Ada", host=True, owner_key=owner_private)
            await ada.start()
            assert await ada.wait_joined(10)
            async with aiohttp.ClientSession() as s, s.ws_connect(
                f"ws://127.0.0.1:{port}/ws"
            ) as ws:
                await ws.send_bytes(wire.encode(wire.Enter(room=link.room_id,
                                                           token=os.urandom(32))))
                live = (await ws.receive()).data
            assert answers[0] == answers[1] == live  # no liveness oracle
            assert isinstance(wire.decode_relay(live[2:]), wire.Error)
            await stop_all([ada])
            # After everyone left, an outsider cannot take the id; the link holder can.
            async with aiohttp.ClientSession() as s, s.ws_connect(
                f"ws://127.0.0.1:{port}/ws"
            ) as ws:
                await ws.send_bytes(wire.encode(wire.Enter(room=link.room_id,
                                                           token=os.urandom(32))))
                assert (await ws.receive()).data == live
            late = quiet(link, "Late")
            await late.start()
            await wait_until(lambda: late.ended.is_set(), 10)
            assert "bad token" not in late.report.ended_reason
            await stop_all([late])

    run(scenario(), 60)


# ---------------------------------------------------------------- 10. lobby outcomes


def test_declined_and_locked_joiners_are_told_and_forgeries_ignored() -> None:
    async def scenario() -> None:
        async with meeting("Bob") as (ada, bob):
            grace = quiet(ada.link, "Grace")
            await grace.start()
            await wait_until(lambda: any(e.name == "Grace" for e in m(bob)._lobby.values()), 10)
            (req,) = [e for e in m(bob)._lobby.values() if e.name == "Grace"]
            # Bob (no host) forges a "declined"; Grace ignores it and keeps waiting.
            body = ReplyBody(Outcome.declined, req.key_package_ref, m(bob)._group.group_id,
                             m(bob).policy.owner, HostEntry(m(bob)._sig_pub, ()))  # fmt: skip
            data = seal_reply(m(bob)._keys.join_key, body,
                              m(bob)._signer.signature_private_key, os.urandom)  # fmt: skip
            await send(bob, wire.ReplyTo(to=req.request_id, data=data))
            await wait_until(lambda: bool(alerts(grace, ev.AlertKind.forged_reply)), 10)
            assert grace.phase == "lobby"
            assert ada.session is not None
            await ada.session.act(lambda mt: mt.deny(req.request_id))
            await wait_until(lambda: grace.ended.is_set(), 10)
            assert grace.report.declined == "declined"
            # Locked: a knocker is told at once, and the host is not asked.
            await ada.session.act(lambda mt: mt.set_locked(True))
            await wait_until(lambda: m(bob).policy.locked, 10)
            eve = quiet(ada.link, "Eve")
            await eve.start()
            await wait_until(lambda: eve.ended.is_set(), 10)
            assert eve.report.declined == "locked"
            assert [r.display_name for r in ada.events_of(ev.LobbyRequest)] == ["Bob", "Grace"]
            await stop_all([grace, eve])

    run(scenario(), 60)


def test_honest_meeting_has_no_alerts() -> None:
    """Positive control: the checks above do not fire in an honest meeting."""

    async def scenario() -> None:
        async with meeting("Bob", "Carol") as people:
            assert people[0].session is not None
            await people[0].session.act(lambda mt: mt.remove_member(2))
            await wait_until(lambda: len(m(people[1]).roster) == 2, 10)
            for p in people[:2]:
                assert not p.events_of(ev.SecurityAlert)
                assert not rejected(p)
                assert not p.report.ordering_stalls

    run(scenario(), 60)

