"""A host's moderation (issue 15 requirement 5), as MLS application messages: asking
someone to unmute (they choose), muting someone's outgoing audio (their engine honours
it until they unmute), and the refusal of those requests from a member that is not a
host. Counted in events."""

from __future__ import annotations

from pathlib import Path

import pytest
from meeting_harness import Net, meeting_of_four

from clave.meeting import ErrorCode, SecurityAlert, StateError
from clave.meeting.app_messages import (
    REACTIONS,
    AskUnmute,
    Hand,
    LowerHand,
    MediaState,
    Mute,
    React,
    encode_app_message,
)
from clave.meeting.events import AlertKind, HandsChanged, MemberMedia, MutedByHost, UnmuteAsked


def test_ask_to_unmute_reaches_only_the_target_and_unmutes_nothing() -> None:
    net = Net()
    alice, bob, carol, _ = meeting_of_four(net)
    bob.meeting.set_media_state(mic=False, cam=True)
    net.pump()
    alice.meeting.ask_to_unmute(bob.meeting.own_leaf)
    net.pump()
    assert bob.of(UnmuteAsked) == [UnmuteAsked(alice.meeting.own_leaf, "Alice")]
    assert carol.of(UnmuteAsked) == []
    assert alice.meeting.media_states[bob.meeting.own_leaf].mic is False  # bob chooses
    bob.meeting.set_media_state(mic=True, cam=True)  # ... and does
    net.pump()
    assert alice.meeting.media_states[bob.meeting.own_leaf].mic is True


def test_a_host_mute_is_honoured_and_shown_to_all() -> None:
    net = Net()
    alice, bob, carol, _ = meeting_of_four(net)
    bob.meeting.set_media_state(mic=True, cam=True)
    net.pump()
    carol.clear()
    alice.meeting.mute_member(bob.meeting.own_leaf)
    net.pump()
    assert bob.of(MutedByHost) == [MutedByHost(alice.meeting.own_leaf, "Alice")]
    assert bob.meeting.muted_by == "Alice"
    leaf = bob.meeting.own_leaf
    assert carol.of(MemberMedia) == [MemberMedia(leaf, "Bob", False, True, False)]
    assert alice.meeting.media_states[leaf] == MediaState(mic=False, cam=True)
    bob.meeting.set_media_state(mic=True, cam=True)  # the user's own click ends it
    assert bob.meeting.muted_by is None


def test_a_mute_from_a_member_is_refused() -> None:
    """Attack: Carol's engine skips the local role check and sends a mute for Bob."""
    net = Net()
    alice, bob, carol, dave = meeting_of_four(net)
    bob.meeting.set_media_state(mic=True, cam=True)
    net.pump()
    bob.clear()
    target = bob.meeting.own_leaf
    carol.meeting._send_app(Mute(leaf=target))
    carol.meeting._send_app(AskUnmute(leaf=target))
    net.pump()
    assert bob.meeting.muted_by is None
    assert bob.of(MutedByHost) == [] and bob.of(UnmuteAsked) == []
    refusals = [e for e in bob.errors() if e.code is ErrorCode.not_host]
    assert len(refusals) == 2
    alerts = bob.of(SecurityAlert)
    assert [a.kind for a in alerts] == [AlertKind.refused_takeover] * 2
    assert alice.meeting.media_states[target].mic is True  # nothing changed for anyone
    assert dave.of(MemberMedia)[-1].mic is True


def test_a_forged_lower_hand_is_refused() -> None:
    net = Net()
    alice, bob, carol, _ = meeting_of_four(net)
    bob.meeting.raise_hand()
    net.pump()
    carol.meeting._send_app(LowerHand(leaf=bob.meeting.own_leaf))
    net.pump()
    assert alice.meeting.raised_hands == (bob.meeting.own_leaf,)
    assert [e for e in alice.errors() if e.code is ErrorCode.not_host]
    assert not [e for e in alice.of(HandsChanged) if not e.up]


def test_a_member_cannot_moderate_through_the_api() -> None:
    net = Net()
    alice, bob, carol, _ = meeting_of_four(net)
    with pytest.raises(StateError):
        bob.meeting.mute_member(carol.meeting.own_leaf)
    with pytest.raises(StateError):
        bob.meeting.ask_to_unmute(carol.meeting.own_leaf)
    with pytest.raises(StateError):  # not a member
        alice.meeting.mute_member(999)


def test_a_promoted_host_may_mute() -> None:
    net = Net()
    alice, bob, carol, _ = meeting_of_four(net)
    alice.meeting.set_host(bob.meeting.own_leaf, True)
    net.pump()
    bob.meeting.mute_member(carol.meeting.own_leaf)
    net.pump()
    assert carol.meeting.muted_by == "Bob"


def test_the_documented_examples_match() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    for msg in (Hand(up=True), React(emoji=REACTIONS[0]), LowerHand(leaf=2),
                AskUnmute(leaf=2), Mute(leaf=2)):  # fmt: skip
        assert f"`{encode_app_message(msg).hex()}`" in doc, msg
