"""Rosters: which connections each node has in a room, with their subscriptions, and
what a new roster of one node changes on another (clave.relay.cluster.roster)."""

from __future__ import annotations

import pytest

from clave.relay.cluster.roster import (
    MAX_ROSTER,
    RosterError,
    decode_roster,
    diff,
    encode_roster,
)
from clave.wire import Subscribe

SHIFT = 24


def conn(slot: int, n: int) -> int:
    return slot << SHIFT | n


def test_a_roster_round_trips_with_subscriptions() -> None:
    mine = {conn(2, 1): Subscribe(layer=0, video_from=[conn(3, 1)]), conn(2, 9): None}
    assert decode_roster(encode_roster(mine), 2, SHIFT) == (mine, {})
    assert decode_roster(b"", 2, SHIFT) == ({}, {})  # a deleted entry: nobody there
    gone = decode_roster(encode_roster({}, {conn(2, 5): "timeout"}), 2, SHIFT)
    assert gone == ({}, {conn(2, 5): "timeout"})  # why someone left travels with it


def test_a_node_cannot_speak_for_another_nodes_connections() -> None:
    forged = encode_roster({conn(2, 1): None, conn(3, 4): None})
    with pytest.raises(RosterError, match="not one of node 2's"):
        decode_roster(forged, 2, SHIFT)
    with pytest.raises(RosterError, match="not one of node 2's"):
        decode_roster(encode_roster({}, {conn(3, 4): "left"}), 2, SHIFT)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xc1", "malformed"),
        (b"\x00" * ((1 << 20) + 1), "over"),
        (encode_roster({conn(2, i): None for i in range(1, MAX_ROSTER + 2)}), "over"),
    ],
)
def test_a_bad_roster_is_refused_with_a_reason(data: bytes, problem: str) -> None:
    with pytest.raises(RosterError, match=problem):
        decode_roster(data, 2, SHIFT)


def test_diff_says_who_joined_left_and_changed_subscription() -> None:
    a, b, c = conn(2, 1), conn(2, 2), conn(2, 3)
    old = {a: Subscribe(layer=1), b: None}
    new = {a: Subscribe(layer=0), c: Subscribe(video=False)}
    changes = diff(old, new)
    assert changes.joined == [c]
    assert changes.left == [b]
    assert changes.subscribed == {a: Subscribe(layer=0), c: Subscribe(video=False)}
    assert diff(new, new).joined == diff(new, new).left == []
    assert diff(new, new).subscribed == {}
