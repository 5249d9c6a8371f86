"""Raised hands and reactions (issue 15 requirement 2): MLS application messages,
queued in raise order on every member (the host reads the queue), lowered by their
owner or by a host, and reactions held to a per-sender rate limit. Counted in events."""

from __future__ import annotations

import pytest
from meeting_harness import Net, meeting_of_four

from clave.meeting import ErrorCode, StateError
from clave.meeting.app_messages import (
    REACTIONS,
    AppMessageError,
    React,
    decode_app_message,
    encode_app_message,
)
from clave.meeting.events import HandsChanged, ReactionReceived
from clave.meeting.hands import REACTION_BURST, REACTION_RATE


def test_hands_queue_in_raise_order_for_everyone() -> None:
    net = Net()
    alice, bob, carol, dave = meeting_of_four(net)
    for c in (carol, bob, dave):  # raised in this order
        c.meeting.raise_hand()
        net.pump()
    order = (carol.meeting.own_leaf, bob.meeting.own_leaf, dave.meeting.own_leaf)
    for c in (alice, bob, carol, dave):
        assert c.meeting.raised_hands == order
    ups = [e for e in alice.of(HandsChanged) if e.up]
    assert [e.name for e in ups] == ["Carol", "Bob", "Dave"]
    bob.meeting.raise_hand(False)  # a member lowers its own
    net.pump()
    assert alice.meeting.raised_hands == (order[0], order[2])
    lowered = HandsChanged(order[1], "Bob", False, alice.meeting.raised_hands)
    assert alice.of(HandsChanged)[-1] == lowered


def test_the_host_lowers_a_hand_for_everyone() -> None:
    net = Net()
    alice, bob, carol, dave = meeting_of_four(net)
    carol.meeting.raise_hand()
    dave.meeting.raise_hand()
    net.pump()
    alice.meeting.lower_hand(carol.meeting.own_leaf)
    net.pump()
    for c in (alice, bob, carol, dave):
        assert c.meeting.raised_hands == (dave.meeting.own_leaf,)
    lowered = carol.of(HandsChanged)[-1]
    assert (lowered.leaf, lowered.up, lowered.by) == (carol.meeting.own_leaf, False, "Alice")


def test_a_member_cannot_lower_anothers_hand() -> None:
    net = Net()
    _, bob, carol, _ = meeting_of_four(net)
    carol.meeting.raise_hand()
    net.pump()
    with pytest.raises(StateError):
        bob.meeting.lower_hand(carol.meeting.own_leaf)


def test_a_newcomer_hears_the_raised_hands() -> None:
    net = Net()
    _, bob, _, _ = meeting_of_four(net)
    bob.meeting.raise_hand()
    net.pump()
    eve = net.guest("Eve")
    net.pump()
    assert eve.meeting.raised_hands == (bob.meeting.own_leaf,)


def test_a_hand_leaves_with_its_member() -> None:
    net = Net()
    alice, bob, _, _ = meeting_of_four(net)
    bob.meeting.raise_hand()
    net.pump()
    bob.meeting.leave()
    net.pump()
    assert alice.meeting.raised_hands == ()


def test_reactions_reach_the_others() -> None:
    net = Net()
    alice, bob, carol, _ = meeting_of_four(net)
    assert bob.meeting.react(REACTIONS[0])
    net.pump()
    for c in (alice, carol, bob):  # bob sees its own too
        want = ReactionReceived(bob.meeting.own_leaf, "Bob", REACTIONS[0])
        assert c.of(ReactionReceived) == [want]
    with pytest.raises(StateError):
        bob.meeting.react("💩")


def test_a_reaction_outside_the_set_does_not_decode() -> None:
    emoji = REACTIONS[0].encode()
    data = encode_app_message(React(emoji=REACTIONS[0]))
    data = data.replace(bytes([0xA0 | len(emoji)]) + emoji, b"\xa1x")  # a string, not in the set
    assert decode_app_message(data.replace(b"\xa1x", b"\xa4" + emoji)) == React(REACTIONS[0])
    with pytest.raises(AppMessageError, match="Invalid enum value 'x'"):
        decode_app_message(data)


def test_a_flood_of_reactions_is_cut_to_the_rate_limit() -> None:
    """An attacker's engine skips its own limit: receivers hold it to theirs."""
    net = Net()
    alice, bob, _, _ = meeting_of_four(net)
    for _ in range(50):
        bob.meeting._send_app(React(emoji=REACTIONS[1]))
    net.pump()
    assert len(alice.of(ReactionReceived)) == REACTION_BURST
    assert alice.meeting.reactions_dropped == 50 - REACTION_BURST
    floods = [e for e in alice.errors() if e.code is ErrorCode.flooding]
    assert len(floods) == 1  # reported once, not once per reaction
    net.clock.advance(2 / REACTION_RATE)
    bob.meeting._send_app(React(emoji=REACTIONS[1]))
    net.pump()
    assert len(alice.of(ReactionReceived)) == REACTION_BURST + 1  # the bucket refills


def test_our_own_reactions_are_limited_too() -> None:
    net = Net()
    _, bob, _, _ = meeting_of_four(net)
    sent = [bob.meeting.react(REACTIONS[2]) for _ in range(REACTION_BURST + 3)]
    assert sent.count(True) == REACTION_BURST
