"""Several Meeting instances connected through the in-test delivery service."""

from __future__ import annotations

import dataclasses

import pytest
from meeting_harness import Net, assert_agree, meeting_of_four, rogue_commit, view
from removal_check import assert_departed_cannot_decrypt, last_base_key

from clave import wire
from clave.meeting import (
    Admitted,
    ChatReceived,
    Connected,
    EpochChanged,
    ErrorCode,
    FrameRejected,
    JoinDeclined,
    JoinRefused,
    KeyframeRequested,
    LobbyRequest,
    LobbyWithdrawn,
    MediaFrameDecrypted,
    MeetingEnded,
    MeetingLink,
    MemberAway,
    MemberJoined,
    MemberLeft,
    Removed,
    StateError,
)
from clave.wire.media import StreamKind, stamp_sender


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
    carol_key, carol_epoch = last_base_key(carol), carol.meeting.epoch  # as she departs

    net.disconnect(carol)  # no Bye: the relay reports PeerLeft
    net.pump()
    remaining = [host, bob, dave]
    # Carol keeps her place for the resume window: she may come back
    assert view(host) == before and host.meeting.away == (2,)
    for c in remaining:
        assert [(e.leaf, e.name) for e in c.of(MemberAway)] == [(2, "Carol")]
        assert not c.of(MemberLeft)
    net.wait_out_resume_window()
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
    assert carol_epoch is not None
    assert_departed_cannot_decrypt(carol_key, carol_epoch, [fresh], net.config)

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


def test_host_crashes_and_the_first_successor_takes_over() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    assert [r.role for r in dave.meeting.roster] == ["owner", "successor", "successor", "member"]
    code = view(bob)[1]
    net.disconnect(host)
    net.pump()
    net.ticks(net.config.resume_window - 1)
    assert not bob.meeting.is_host, "no takeover while the host may still come back"
    net.tick(1)  # its resume window has run out, and it was silent all along
    assert_agree([bob, carol, dave])
    assert view(bob)[1] != code
    assert bob.meeting.is_host and not carol.meeting.is_host
    assert [(r.name, r.role) for r in carol.meeting.roster] == [
        ("Bob", "host"),
        ("Carol", "successor"),
        ("Dave", "successor"),
    ]
    # The new host admits a newcomer, who fills the blank leaf 0 and gains no role.
    eve = net.guest("Eve")
    net.pump()
    assert eve.meeting.phase == "in_meeting"
    assert_agree([bob, carol, dave, eve])
    assert eve.meeting.own_leaf == 0  # the freed leaf is reused ...
    assert not eve.meeting.is_host  # ... but roles follow keys, not positions
    assert [r.role for r in eve.meeting.roster if r.leaf == 0] == ["member"]


def test_host_and_first_successor_crash_together() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    net.disconnect(host)
    net.disconnect(bob)
    net.wait_out_resume_window()
    assert_agree([carol, dave])
    assert carol.meeting.is_host
    assert [r.name for r in dave.meeting.roster] == ["Carol", "Dave"]


def test_successor_maps_connections_from_hello() -> None:
    """Bob never saw Dave's join request: he maps Dave's conn from his Hello."""
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    net.disconnect(host)
    net.wait_out_resume_window()
    net.disconnect(dave)
    net.wait_out_resume_window()
    assert_agree([bob, carol])
    assert [r.name for r in carol.meeting.roster] == ["Bob", "Carol"]


def test_leaving_host_hands_over_by_commit() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    host.meeting.leave()
    net.pump()
    assert host.meeting.phase == "ended"
    assert_agree([bob, carol, dave])
    assert bob.meeting.is_host
    assert [r.name for r in bob.meeting.roster] == ["Bob", "Carol", "Dave"]
    assert not [e for e in bob.errors() if e.code == ErrorCode.rejected_commit]


def test_wrong_secret_names_another_room() -> None:
    """The room id belongs to the token: a wrong secret never reaches the meeting."""
    net = Net()
    host = net.host("Alice")
    net.pump()
    assert net.link is not None
    wrong = dataclasses.replace(net.link, secret=bytes(32))
    mallory = net.guest("Mallory", wrong)
    net.pump()
    assert mallory.meeting.phase == "ended"
    assert "nobody is in the meeting" in mallory.of(MeetingEnded)[0].reason
    assert not host.of(LobbyRequest) and not host.errors()


def test_wrong_room_for_token_is_refused() -> None:
    net = Net()
    net.host("Alice")
    net.pump()
    assert net.link is not None
    mallory = net.guest("Mallory", dataclasses.replace(net.link, secret=bytes(32)))
    enter = wire.Enter(room=net.link.room_id, token=bytes(32))  # real room, wrong token
    mallory.meeting._out[0] = wire.encode(enter)
    net.pump()
    assert mallory.of(JoinRefused)[0].code == "bad_token"
    assert mallory.meeting.phase == "ended"


def test_wrong_secret_joiner_is_never_admitted_even_past_a_lax_relay() -> None:
    net = Net(check_tokens=False)  # a relay that lets anyone into any room
    host = net.host("Alice", auto_admit=True)
    net.pump()
    assert net.link is not None
    wrong: MeetingLink = dataclasses.replace(net.link, secret=bytes(range(32)))
    mallory = net.guest("Mallory", wrong)
    mallory.meeting._out[0] = wire.encode(wire.Enter(room=net.link.room_id, token=bytes(32)))
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
    net.pump()
    # Eve is told, by a reply only a host of this meeting can sign.
    assert [e.outcome for e in eve.of(JoinDeclined)] == ["declined"]
    assert eve.meeting.phase == "ended"
    net.disconnect(bob)
    net.pump()
    assert host.of(LobbyWithdrawn) == [LobbyWithdrawn(bob.conn)]
    assert not host.meeting.admit(bob.conn)
    assert host.meeting.lobby == ()
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


def test_takeover_commit_races_a_key_refresh() -> None:
    """The host crashed; Bob's takeover loses the epoch to Carol's key refresh."""
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    net.disconnect(host)
    net.pump()
    net.ticks(net.config.resume_window - 1)
    net.clock.advance(1)  # the host's resume window runs out
    carol.meeting.refresh_keys()
    for c in (bob, carol, dave):
        c.meeting.handle_timer()  # Bob's takeover check
        c.drain()
    net.flush([carol, bob])  # Carol's refresh reaches the relay first
    net.pump()
    assert net.relay.stale_refusals == 1
    assert_agree([bob, carol, dave])
    assert [r.name for r in dave.meeting.roster] == ["Bob", "Carol", "Dave"]
    assert bob.meeting.is_host


def test_locked_meeting_refuses_adds_and_tells_knockers() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    waiting = net.guest("Walt")
    net.pump()
    assert [e.display_name for e in host.of(LobbyRequest)] == ["Bob", "Walt"]
    host.meeting.set_locked(True)
    net.pump()
    assert host.meeting.policy.locked and bob.meeting.policy.locked
    # A request waiting when the host locked is answered, not left with an Admit button.
    assert [e.outcome for e in waiting.of(JoinDeclined)] == ["locked"]
    assert host.meeting.lobby == ()
    eve = net.guest("Eve")
    net.pump()
    assert [e.display_name for e in host.of(LobbyRequest)] == ["Bob", "Walt"]
    assert [e.outcome for e in eve.of(JoinDeclined)] == ["locked"]
    assert eve.meeting.phase == "ended"
    with pytest.raises(StateError):
        bob.meeting.set_locked(False)  # only a host
    host.meeting.set_locked(False)
    net.pump()
    frank = net.guest("Frank")
    net.admit_via_lobby(host, frank)
    assert_agree([host, bob, frank])


def test_locked_meeting_guests_reject_a_bypassing_host() -> None:
    """A tampered host engine commits an Add while locked; every guest refuses it,
    reopens the epoch at the relay, and the meeting goes on."""
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    carol = net.guest("Carol")
    net.admit_via_lobby(host, carol)
    net.guest("Eve")
    net.pump()
    (eve_request,) = [e for e in host.meeting._lobby.values() if e.name == "Eve"]
    host.meeting.set_locked(True)
    net.pump()
    honest_view = view(bob)
    rogue_commit(net, host, add=[eve_request.key_package])
    net.pump()
    for g in (bob, carol):
        rejected = [e for e in g.errors() if e.code == ErrorCode.rejected_commit]
        assert len(rejected) == 1 and "locked" in rejected[0].message
        assert view(g) == honest_view
        assert "Eve" not in [r.name for r in g.meeting.roster]
    # The honest members reopened the epoch: their next commit is ordered.
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
    """A request validated by every member survives the host's crash."""
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    eve = net.guest("Eve")
    net.pump()
    assert not bob.of(LobbyRequest)  # only hosts are asked
    net.disconnect(host)
    net.wait_out_resume_window()
    assert bob.meeting.is_host
    assert [e.display_name for e in bob.of(LobbyRequest)] == ["Eve"]
    assert bob.meeting.admit(eve.conn)
    net.pump()
    assert_agree([bob, eve])


def test_own_commit_replayed_by_the_relay_counts_as_ordered() -> None:
    """After a reconnection the relay replays the commits ordered since our epoch; ours
    among them means it was ordered while its CommitAccepted was lost."""
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    host.clear()
    host.meeting.refresh_keys()
    (frame,) = host.meeting.frames_to_send()
    hs = wire.decode_client(wire.split_frame(frame)[1])
    assert isinstance(hs, wire.Commit)
    net.relay.handle(host.conn, frame)
    net.relay.inbox[host.conn].clear()  # the CommitAccepted is lost
    host.meeting.receive(wire.encode(wire.CommitFrom(sender=host.conn, data=hs.data)))
    net.pump()
    assert view(host) == view(bob)
    assert not host.errors() and not bob.errors()


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
    # A fresh Hello of Bob's (as he answers one asking for him), delivered as if it
    # came from another connection.
    bob.meeting._timer_announce()
    sent = [wire.decode_client(wire.split_frame(f)[1]) for f in bob.meeting.frames_to_send()]
    (hello,) = [m for m in sent if isinstance(m, wire.AppMessage)]
    host.clear()
    host.meeting.receive(wire.encode(wire.AppFrom(sender=77, data=hello.data)))
    assert "claims connection" in host.errors()[0].message
    assert 77 not in host.meeting._presence.leaf_of_conn
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
