"""A member's own mute and camera switches reach the others as an authenticated MLS
application message, not inferred from silence (issue 13 requirement 4, issue 15
requirement 5): announced when they change and carried in every Hello, so a
newcomer learns them too. Counted in events, on the relay's own rules."""

from __future__ import annotations

from meeting_harness import Client, Net, host_and_bob

from clave.meeting import MemberMedia
from clave.meeting.app_messages import MediaState


def media_events(c: Client) -> list[MemberMedia]:
    return c.of(MemberMedia)


def test_a_mute_is_announced_once_and_shown_as_a_mute() -> None:
    net = Net()
    alice, bob = host_and_bob(net)
    alice.clear()
    bob.meeting.set_media_state(mic=False, cam=True)
    net.pump()
    leaf = bob.meeting.own_leaf
    assert media_events(alice) == [MemberMedia(leaf, "Bob", False, True, False)]
    assert alice.meeting.media_states == {leaf: MediaState(mic=False, cam=True)}
    bob.meeting.set_media_state(mic=False, cam=True)  # no change: nothing sent
    net.pump()
    net.ticks(3)
    assert len(media_events(alice)) == 1
    bob.meeting.set_media_state(mic=True, cam=True, screen=True)
    net.pump()
    assert media_events(alice)[-1] == MemberMedia(leaf, "Bob", True, True, True)


def test_a_newcomer_learns_the_switches_from_the_hellos() -> None:
    net = Net()
    alice, bob = host_and_bob(net)
    bob.meeting.set_media_state(mic=False, cam=False)
    net.pump()
    carol = net.guest("Carol")
    carol.meeting.set_media_state(mic=True, cam=False)  # chosen before being admitted
    net.admit_via_lobby(alice, carol)
    net.pump()
    states = carol.meeting.media_states
    assert states[bob.meeting.own_leaf] == MediaState(mic=False, cam=False)
    assert alice.meeting.own_leaf not in states  # Alice never said: unknown, not muted
    assert alice.meeting.media_states[carol.meeting.own_leaf] == MediaState(mic=True, cam=False)


def test_a_member_who_left_has_no_switches_any_more() -> None:
    net = Net()
    alice, bob = host_and_bob(net)
    bob.meeting.set_media_state(mic=False, cam=False)
    net.pump()
    bob.meeting.leave()
    net.pump()
    assert alice.meeting.media_states == {}
