"""Several Meeting instances connected through the in-test delivery service."""

from __future__ import annotations

import dataclasses

import pytest
from meeting_harness import Client, Net, view

from clave import wire
from clave.meeting import (
    Admitted,
    ChatReceived,
    Connected,
    EpochChanged,
    ErrorCode,
    FrameRejected,
    JoinRefused,
    KeyframeRequested,
    LobbyRequest,
    LobbyWithdrawn,
    MediaFrameDecrypted,
    Meeting,
    MeetingEnded,
    MeetingLink,
    MeetingPolicy,
    MemberJoined,
    MemberLeft,
    Removed,
    StateError,
)
from clave.mls.events import allow_all
from clave.sframe.errors import SFrameError
from clave.wire.media import StreamKind, decode_media, media_aad, stamp_sender


def meeting_of_four(net: Net) -> tuple[Client, Client, Client, Client]:
    """Host + Bob through the lobby, then Carol and Dave auto-admitted."""
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    host.meeting.set_auto_admit(True)
    net.pump()
    carol = net.guest("Carol")
    dave = net.guest("Dave")
    net.pump()
    return host, bob, carol, dave


def assert_agree(clients: list[Client]) -> None:
    views = {view(c) for c in clients}
    assert len(views) == 1, views
    for c in clients:
        assert c.meeting.encrypted
        assert not [e for e in c.errors() if e.code != ErrorCode.stale_message], c.errors()


def test_host_and_three_guests_agree_on_code_roster_media_and_chat() -> None:
    net = Net()
    host, bob, carol, dave = everyone = list(meeting_of_four(net))
    assert_agree(everyone)
    assert not host.of(LobbyRequest)[1:], "auto-admitted guests are not shown in the lobby"
    _epoch, code, roster = view(host)
    assert [r[1] for r in roster] == ["Alice", "Bob", "Carol", "Dave"]
    assert [r[3] for r in roster] == [True, False, False, False]
    assert len(code.replace(" ", "")) == 35
    for c in everyone:
        assert [r.is_self for r in c.meeting.roster].count(True) == 1
        assert c.of(EpochChanged)[-1].security_code == code
    for c in (bob, carol, dave):
        assert c.of(Connected) and c.of(Admitted)
    assert [e.name for e in host.of(MemberJoined)] == ["Bob", "Carol", "Dave"]

    for c in everyone:
        c.clear()
    for i, sender in enumerate(everyone):
        net.send_media(sender, StreamKind.video, i == 0, f"frame from {sender.name}".encode())
    net.pump()
    for receiver in everyone:
        got = {(e.sender, e.name, e.payload) for e in receiver.of(MediaFrameDecrypted)}
        want = {
            (s.meeting.own_leaf, s.name, f"frame from {s.name}".encode())
            for s in everyone
            if s is not receiver
        }
        assert got == want
        assert not receiver.of(FrameRejected)

    bob.meeting.send_chat("hello, everyone")
    net.pump()
    for c in everyone:
        chats = c.of(ChatReceived)
        if c is bob:
            assert not chats
        else:
            assert [(e.sender, e.name, e.text) for e in chats] == [(1, "Bob", "hello, everyone")]


def test_chat_reaches_exactly_the_current_members() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    waiting = net.guest("Eve")  # in the room, in the lobby, not admitted
    net.pump()
    host.meeting.send_chat("members only")
    net.pump()
    assert [e.text for e in bob.of(ChatReceived)] == ["members only"]
    assert not waiting.of(ChatReceived)
    # Admitted later, Eve still cannot read what was said before she joined.
    host.meeting.admit(waiting.conn)
    net.pump()
    assert waiting.meeting.phase == "in_meeting"
    assert not waiting.of(ChatReceived)
    assert not [e for e in waiting.errors()], waiting.errors()
    bob.meeting.send_chat("welcome Eve")
    net.pump()
    assert [e.text for e in waiting.of(ChatReceived)] == ["welcome Eve"]


def test_guest_disconnect_is_removed_with_new_keys_and_grace_period() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    before = view(host)
    # A frame of the old epoch, protected before Carol leaves and delivered late.
    late = host.meeting.protect_media(StreamKind.audio, False, b"old epoch, too late")
    carol_keys = carol.meeting._media  # Carol's key state as she departs

    net.disconnect(carol)  # no Bye: the relay reports PeerLeft
    net.pump()
    remaining = [host, bob, dave]
    assert_agree(remaining)
    after = view(host)
    assert after[0] == before[0] + 1
    assert after[1] != before[1], "the security code changes with the membership"
    assert [r[1] for r in after[2]] == ["Alice", "Bob", "Dave"]
    for c in remaining:
        assert [(e.leaf, e.name) for e in c.of(MemberLeft)] == [(2, "Carol")]

    # Carol's keys cannot decrypt anything of the new epoch.
    bob.clear()
    fresh = net.send_media(host, StreamKind.video, True, b"after Carol left")
    net.pump()
    assert [e.payload for e in bob.of(MediaFrameDecrypted)] == [b"after Carol left"]
    env = decode_media(fresh)
    with pytest.raises(SFrameError):
        carol_keys.unprotect(env.sframe, media_aad(env.kind, env.keyframe))

    # Past the 2 s grace period the previous epoch no longer decrypts.
    net.clock.advance(2.5)
    bob.meeting.receive(stamp_sender(late, host.conn))
    assert not bob.of(MediaFrameDecrypted)[1:]
    rejected = bob.of(FrameRejected)
    assert len(rejected) == 1 and "expired" in rejected[0].reason


def test_previous_epoch_frame_decrypts_within_grace_period() -> None:
    net = Net()
    host, bob, carol, _dave = meeting_of_four(net)
    held = host.meeting.protect_media(StreamKind.video, True, b"sent just before")
    net.disconnect(carol)
    net.pump()
    bob.clear()
    net.clock.advance(1.9)
    bob.meeting.receive(stamp_sender(held, host.conn))
    assert [(e.sender, e.payload) for e in bob.of(MediaFrameDecrypted)] == [
        (0, b"sent just before")
    ]


def test_guest_leaves_with_bye_and_late_chat_still_arrives() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    # Bob's chat is still on its way when the relay orders Carol's departure commit.
    bob.held = True
    bob.meeting.send_chat("sent in the old epoch")
    carol.meeting.leave()
    net.pump()
    assert carol.meeting.phase == "ended" and carol.of(MeetingEnded)
    assert view(host)[0] == view(dave)[0]
    bob.held = False
    net.pump()
    for c in (host, dave):
        assert [e.text for e in c.of(ChatReceived)] == ["sent in the old epoch"]
    assert_agree([host, bob, dave])
    assert len(host.meeting.roster) == 3


def test_host_removes_a_member() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    with pytest.raises(StateError):
        bob.meeting.remove_member(2)
    host.meeting.remove_member(dave.meeting.own_leaf or 0)
    net.pump()
    assert dave.of(Removed) and dave.meeting.phase == "ended"
    assert not dave.meeting.encrypted
    with pytest.raises(StateError):
        dave.meeting.protect_media(StreamKind.audio, False, b"x")
    assert_agree([host, bob, carol])
    assert [r.name for r in host.meeting.roster] == ["Alice", "Bob", "Carol"]


def test_host_leaves_and_the_lowest_leaf_takes_over() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    code = view(bob)[1]
    net.disconnect(host)
    net.pump()
    assert_agree([bob, carol, dave])
    assert view(bob)[1] != code
    assert bob.meeting.is_host and not carol.meeting.is_host
    assert [(r.name, r.is_host) for r in carol.meeting.roster] == [
        ("Bob", True),
        ("Carol", False),
        ("Dave", False),
    ]
    # The new host admits a newcomer; it was in the lobby during the handover.
    eve = net.guest("Eve")
    net.pump()
    assert [e.display_name for e in bob.of(LobbyRequest)] == []  # auto-admit is on
    assert eve.meeting.phase == "in_meeting"
    assert_agree([bob, carol, dave, eve])
    assert eve.meeting.own_leaf == 0  # the freed leaf is reused


def test_host_and_next_in_line_leave_together() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    net.disconnect(host)
    net.disconnect(bob)
    net.pump()
    assert_agree([carol, dave])
    assert carol.meeting.is_host
    assert [r.name for r in dave.meeting.roster] == ["Carol", "Dave"]


def test_handover_to_a_member_that_learned_connections_from_hello() -> None:
    """Carol never saw Dave's join request: she maps Dave's conn from his Hello."""
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    net.disconnect(host)
    net.pump()
    net.disconnect(dave)
    net.pump()
    assert_agree([bob, carol])
    assert [r.name for r in carol.meeting.roster] == ["Bob", "Carol"]


def test_wrong_secret_is_refused_by_the_relay() -> None:
    net = Net()
    net.host("Alice")
    net.pump()
    assert net.link is not None
    wrong = dataclasses.replace(net.link, secret=bytes(32))
    mallory = net.guest("Mallory", wrong)
    net.pump()
    assert mallory.of(JoinRefused)[0].code == "bad_token"
    assert mallory.meeting.phase == "ended"


def test_wrong_secret_joiner_is_never_admitted_even_past_a_lax_relay() -> None:
    net = Net(check_tokens=False)  # a relay that lets anyone into the room
    host = net.host("Alice", auto_admit=True)
    net.pump()
    assert net.link is not None
    wrong: MeetingLink = dataclasses.replace(net.link, secret=bytes(range(32)))
    mallory = net.guest("Mallory", wrong)
    net.pump()
    assert mallory.meeting.phase == "lobby"
    assert not host.of(LobbyRequest) and not host.of(MemberJoined)
    assert [e.code for e in host.errors()] == [ErrorCode.bad_join_request]
    assert len(host.meeting.roster) == 1
    with pytest.raises(StateError):
        mallory.meeting.protect_media(StreamKind.video, True, b"x")


def test_deny_and_withdrawn_requests() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    eve = net.guest("Eve")
    net.pump()
    assert {e.request_id for e in host.of(LobbyRequest)} == {bob.conn, eve.conn}
    assert host.meeting.deny(eve.conn)
    assert not host.meeting.deny(eve.conn)
    net.disconnect(bob)
    net.pump()
    assert host.of(LobbyWithdrawn) == [LobbyWithdrawn(bob.conn)]
    assert not host.meeting.admit(bob.conn)
    assert host.meeting.lobby == ()
    assert eve.meeting.phase == "lobby"
    assert len(host.meeting.roster) == 1


def test_two_admissions_race_with_another_commit() -> None:
    """The host's Add loses the epoch to a guest's key refresh and is retried."""
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    carol = net.guest("Carol")
    dave = net.guest("Dave")
    net.pump()
    host.clear()
    start = view(host)[0]
    assert start is not None
    # Both commit for the same epoch; the relay sees Bob's first.
    host.meeting.admit(carol.conn)
    host.meeting.admit(dave.conn)  # queued behind the commit in flight
    bob.meeting.refresh_keys()
    net.flush([bob, host])
    net.pump()
    assert net.relay.stale_refusals == 1
    assert not [e for e in host.errors() if e.code == ErrorCode.relay_error]
    everyone = [host, bob, carol, dave]
    assert_agree(everyone)
    assert [r.name for r in host.meeting.roster] == ["Alice", "Bob", "Carol", "Dave"]
    assert view(host)[0] is not None and view(host)[0] >= start + 2


def test_handover_commit_races_a_key_refresh() -> None:
    """The host leaves; Bob's handover Remove loses the epoch to Carol's key refresh."""
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    net.disconnect(host)
    carol.meeting.refresh_keys()
    net.deliver([bob])  # Bob learns of the departure and commits the Remove
    net.flush([carol, bob])  # ... but Carol's refresh reaches the relay first
    net.pump()
    assert net.relay.stale_refusals == 1
    assert_agree([bob, carol, dave])
    assert [r.name for r in dave.meeting.roster] == ["Bob", "Carol", "Dave"]
    assert bob.meeting.is_host


def test_locked_meeting_refuses_adds() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    host.meeting.set_locked(True)
    net.pump()
    assert host.meeting.policy.locked and bob.meeting.policy.locked
    eve = net.guest("Eve")
    net.pump()
    assert [e.display_name for e in host.of(LobbyRequest)] == ["Bob", "Eve"]
    with pytest.raises(StateError):
        host.meeting.admit(eve.conn)
    with pytest.raises(StateError):
        bob.meeting.set_locked(False)  # only the host
    host.meeting.set_locked(False)
    net.pump()
    assert host.meeting.admit(eve.conn)
    net.pump()
    assert eve.meeting.phase == "in_meeting"
    assert_agree([host, bob, eve])


def test_locked_meeting_guests_reject_a_bypassing_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tampered host engine commits an Add while locked; every guest refuses it."""
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    carol = net.guest("Carol")
    net.admit_via_lobby(host, carol)
    host.meeting.set_locked(True)
    net.pump()
    honest_view = view(bob)
    eve = net.guest("Eve")
    net.pump()
    # Tamper with the host only: its MLS policy hook allows everything and its
    # engine believes the meeting is unlocked.
    group = host.meeting._group
    assert group is not None
    monkeypatch.setattr(group, "_policy", allow_all)
    real_policy = Meeting.policy

    def tampered(self: Meeting) -> MeetingPolicy:
        return MeetingPolicy() if self is host.meeting else real_policy.fget(self)  # type: ignore[misc]

    monkeypatch.setattr(Meeting, "policy", property(tampered))
    assert host.meeting.admit(eve.conn)
    net.pump()
    assert net.relay.rooms[net.link.room_id].epoch == (honest_view[0] or 0) + 1  # type: ignore[union-attr]
    for g in (bob, carol):
        rejected = [e for e in g.errors() if e.code == ErrorCode.rejected_commit]
        assert len(rejected) == 1 and "locked" in rejected[0].message
        assert view(g) == honest_view
        assert "Eve" not in [r.name for r in g.meeting.roster]
    # Eve ended up in the tampered host's fork only: the guests cannot read her,
    # and comparing security codes exposes the fork.
    assert eve.meeting.encrypted
    assert eve.meeting.security_code != bob.meeting.security_code
    bob.clear()
    net.send_media(eve, StreamKind.video, True, b"from the fork")
    net.pump()
    assert not bob.of(MediaFrameDecrypted)
    # The honest members stay in step with each other and with the relay.
    bob.meeting.refresh_keys()
    net.pump()
    assert view(bob) == view(carol)
    assert view(bob)[0] == (honest_view[0] or 0) + 1


def test_keyframe_requests_and_subscriptions() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    assert bob.meeting.request_keyframe(0, StreamKind.screen)
    assert not bob.meeting.request_keyframe(7)
    net.pump()
    assert host.of(KeyframeRequested) == [KeyframeRequested(StreamKind.screen, 1)]
    bob.meeting.subscribe(audio=True, video=False, screen=False)
    net.pump()
    net.send_media(host, StreamKind.video, True, b"v")
    net.send_media(host, StreamKind.audio, False, b"a")
    net.pump()
    assert [e.payload for e in bob.of(MediaFrameDecrypted)] == [b"a"]


def test_tampered_media_flags_are_rejected() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    frame = host.meeting.protect_media(StreamKind.video, False, b"delta")
    forged = frame[:2] + bytes([frame[2] | 0x80]) + stamp_sender(frame, host.conn)[3:]
    bob.meeting.receive(forged)
    rejected = bob.of(FrameRejected)
    assert rejected and rejected[0].sender == 0
    assert not bob.of(MediaFrameDecrypted)


def test_api_misuse_raises_state_error() -> None:
    net = Net()
    host = net.host("Alice")
    with pytest.raises(StateError):
        host.meeting.protect_media(StreamKind.audio, False, b"x")  # not connected yet
    with pytest.raises(StateError):
        host.meeting.send_chat("too early")
    net.pump()
    with pytest.raises(ValueError):
        host.meeting.send_chat("x" * 4001)
    with pytest.raises(StateError):
        host.meeting.remove_member(0)
    bob = net.guest("Bob")
    net.pump()
    with pytest.raises(StateError):
        bob.meeting.admit(1)
    assert not bob.meeting.encrypted
    host.meeting.leave()
    assert host.meeting.phase == "ended"
    with pytest.raises(StateError):
        host.meeting.send_chat("after leaving")


def test_lobby_joiner_gives_up_when_everyone_leaves() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.pump()
    host.meeting.leave()
    net.pump()
    assert bob.of(MeetingEnded) and bob.meeting.phase == "ended"


def test_new_host_inherits_the_lobby() -> None:
    """A request validated by every member survives the host's departure."""
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    eve = net.guest("Eve")
    net.pump()
    assert not bob.of(LobbyRequest)  # only the host is asked
    net.disconnect(host)
    net.pump()
    assert bob.meeting.is_host
    assert [e.display_name for e in bob.of(LobbyRequest)] == ["Eve"]
    assert bob.meeting.admit(eve.conn)
    net.pump()
    assert_agree([bob, eve])


def test_echoed_own_commit_is_not_mistaken_for_a_rival() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    host.meeting.refresh_keys()
    (frame,) = host.meeting.frames_to_send()
    hs = wire.decode_client(wire.split_frame(frame)[1])
    assert isinstance(hs, wire.Handshake)
    echo = wire.HandshakeFrom(sender=bob.conn, epoch=hs.epoch, commit=True, data=hs.data)
    host.meeting.receive(wire.encode(echo))
    assert [e.code for e in host.errors()] == [ErrorCode.protocol_violation]
    net.relay.handle(host.conn, frame)
    net.pump()
    assert view(host) == view(bob)


def test_joiner_applies_commits_that_overtake_its_welcome() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    carol = net.guest("Carol")
    dave = net.guest("Dave")
    net.pump()
    carol.held = True
    host.meeting.admit(carol.conn)
    net.pump()
    host.meeting.admit(dave.conn)
    net.pump()
    host.meeting.send_chat("after both")
    net.pump()
    box = net.relay.inbox[carol.conn]
    frames = list(box)

    def is_welcome(f: bytes) -> bool:
        return isinstance(wire.decode_relay(wire.split_frame(f)[1]), wire.WelcomeFor)

    box.clear()
    box.extend([f for f in frames if not is_welcome(f)] + [f for f in frames if is_welcome(f)])
    carol.held = False
    net.pump()
    assert_agree([host, carol, dave])
    assert [e.text for e in carol.of(ChatReceived)] == ["after both"]
    assert [e.name for e in carol.of(MemberJoined)] == ["Dave"]
    assert not carol.errors()


def test_late_chat_expires_with_the_grace_period() -> None:
    net = Net()
    host, bob, carol, _dave = meeting_of_four(net)
    bob.held = True
    bob.meeting.send_chat("too late")
    carol.meeting.leave()
    net.pump()
    net.clock.advance(2.5)
    bob.held = False
    net.pump()
    assert not host.of(ChatReceived)
    assert "past epoch" in host.of(FrameRejected)[0].reason


def test_relay_lies_are_caught() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    eve = net.guest("Eve")
    net.pump()
    # A fresh Hello of Bob's, delivered as if it came from another connection.
    bob.meeting.refresh_keys()
    net.flush([bob])
    net.deliver([bob, host])
    sent = [wire.decode_client(wire.split_frame(f)[1]) for f in bob.meeting.frames_to_send()]
    (hello,) = [m for m in sent if isinstance(m, wire.AppMessage)]
    host.clear()
    host.meeting.receive(wire.encode(wire.AppFrom(sender=77, epoch=hello.epoch, data=hello.data)))
    assert "claims connection" in host.errors()[0].message
    assert 77 not in host.meeting._leaf_of_conn
    # Eve's join request replayed from another connection.
    (request,) = [
        m
        for m in (wire.decode_relay(wire.split_frame(f)[1]) for f in net.relay.log)
        if isinstance(m, wire.JoinRequestFrom) and m.sender == eve.conn
    ][:1]
    host.clear()
    host.meeting.receive(wire.encode(wire.JoinRequestFrom(sender=99, data=request.data)))
    assert "replayed" in host.errors()[0].message
    assert [r.request_id for r in host.meeting.lobby] == [eve.conn]
    # A garbage Welcome leaves a joiner in the lobby.
    eve.meeting.receive(wire.encode(wire.WelcomeFor(sender=1, data=b"\x00\x01garbage")))
    assert [e.code for e in eve.errors()] == [ErrorCode.bad_welcome]
    assert eve.meeting.phase == "lobby"


def test_expired_key_package_is_not_admitted() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.pump()
    net.unix += 2 * 24 * 3600  # Bob's KeyPackage (valid 24 h) has expired
    assert host.meeting.admit(bob.conn)
    net.pump()
    (error,) = host.errors()
    assert error.code == ErrorCode.commit_failed and "lifetime" in error.message
    assert host.meeting.lobby == () and len(host.meeting.roster) == 1
    assert bob.meeting.phase == "lobby"
