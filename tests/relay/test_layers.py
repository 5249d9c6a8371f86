"""Simulcast at the relay: per-receiver layer choice, switching at keyframes,
fallback when a sender stops a layer, and the congestion cap (clave.relay.layers)."""

from __future__ import annotations

from collections import Counter

from test_room import inbox, room_of

from clave.relay import RelayConfig
from clave.relay.layers import RESOLVE, STALE_AFTER, STALE_FRAMES
from clave.relay.room import Peer, Room
from clave.wire import (
    KeyframeWanted,
    LayerCap,
    StreamKind,
    Subscribe,
    decode_media,
    encode_media,
)

VIDEO = StreamKind.video


def send(room: Room, sender: Peer, layer: int, keyframe: bool, now: float, size: int = 1) -> None:
    frame = encode_media(VIDEO, keyframe, bytes([layer]) * size, sender.conn, layer=layer)
    room.media(sender, frame, VIDEO, keyframe, now, layer)


def send_all_layers(room: Room, sender: Peer, keyframe: bool, now: float) -> None:
    for layer in (0, 1, 2):
        send(room, sender, layer, keyframe, now)


def warm_up(room: Room, senders: list[Peer], now: float = 0.0) -> None:
    """A first keyframe on every layer of each sender, then empty every inbox: while the
    relay learns a sender's layers, its first frames may reach a receiver on the way
    up to the layer it chose (a one-time cost of a few keyframes)."""
    for sender in senders:
        send_all_layers(room, sender, True, now)
    for p in room.peers.values():
        inbox(p)


def layers_received(p: Peer) -> Counter[int]:
    """Media frames queued for ``p`` by layer (control messages are left out)."""
    return Counter(decode_media(m).layer for m in inbox(p) if isinstance(m, bytes))


def test_resolve_picks_the_highest_sent_layer_at_or_below_the_wish() -> None:
    assert RESOLVE[0b111] == (0, 1, 2)
    assert RESOLVE[0b011] == (0, 1, 1)  # no 720p sent: 360p for whoever wants 720p
    assert RESOLVE[0b100] == (2, 2, 2)  # only the top layer: everybody gets it
    assert RESOLVE[0b101] == (0, 0, 2)
    assert RESOLVE[0] == (-1, -1, -1)


def test_each_receiver_gets_the_layer_it_chose_per_sender() -> None:
    room, (a, b, low, mixed) = room_of(1, 2, 3, 4)
    room.subscribe(low, Subscribe(layer=0), 0.0)
    room.subscribe(mixed, Subscribe(layer=0, layers={1: 2}), 0.0)
    warm_up(room, [a, b])
    for i in range(10):
        send_all_layers(room, a, False, 0.03 + i * 0.03)
        send_all_layers(room, b, False, 0.03 + i * 0.03)
    assert layers_received(low) == {0: 20}
    received = [decode_media(m) for m in inbox(mixed) if isinstance(m, bytes)]
    assert Counter((f.sender, f.layer) for f in received) == {(1, 2): 10, (2, 0): 10}
    # a receiver that chose nothing gets the top layer of each of them
    assert layers_received(b) == {2: 10}


def test_a_layer_switch_waits_for_a_keyframe_of_the_new_layer_and_asks_for_it() -> None:
    room, (a, b) = room_of(1, 2)
    room.subscribe(b, Subscribe(layer=0), 0.0)
    warm_up(room, [a])
    send_all_layers(room, a, False, 0.05)
    assert layers_received(b) == {0: 1}
    room.subscribe(b, Subscribe(layer=2), 0.1)
    send_all_layers(room, a, False, 0.2)
    # still the old layer (a delta of the new one would not decode), and a is asked
    assert layers_received(b) == {0: 1}
    assert inbox(a) == [KeyframeWanted(by=b.conn, kind=VIDEO, layer=2)]
    send_all_layers(room, a, False, 0.3)
    assert inbox(a) == []  # asked at most once per keyframe_retry
    send(room, a, 0, False, 0.4)
    send(room, a, 1, False, 0.4)
    send(room, a, 2, True, 0.4)  # the keyframe: from now on layer 2 only
    send_all_layers(room, a, False, 0.5)
    assert layers_received(b) == {0: 2, 2: 2}  # 0.3, 0.4, then from the keyframe on
    assert [m for m in inbox(b) if not isinstance(m, bytes)] == []


def test_a_receiver_falls_back_when_the_sender_stops_its_top_layer() -> None:
    room, (a, b) = room_of(1, 2)
    warm_up(room, [a])
    send_all_layers(room, a, False, 0.1)
    assert layers_received(b) == {2: 1}
    later = STALE_AFTER + 1.0
    frames = STALE_FRAMES + 2  # the sender is too slow for 720p now: 360p only
    for i in range(frames):
        send(room, a, 1, False, later + 0.1 * i)
    assert layers_received(b) == {}  # a 360p delta cannot start a stream
    assert inbox(a) == [KeyframeWanted(by=b.conn, kind=VIDEO, layer=1)]
    send(room, a, 1, True, later + 0.1 * frames)
    send(room, a, 1, False, later + 0.1 * (frames + 1))
    assert layers_received(b) == {1: 2}


def test_a_sender_that_pauses_altogether_keeps_its_layers() -> None:
    """A busy machine pauses the sender's whole process for longer than STALE_AFTER;
    it resumes with its lowest layer first (its encoders run in order). Its top layers
    did not stop: the receiver stays on the layer it chose, and no keyframe of another
    layer is asked for."""
    room, (a, b, low) = room_of(1, 2, 3)
    room.subscribe(b, Subscribe(layer=1), 0.0)
    room.subscribe(low, Subscribe(layer=0), 0.0)
    warm_up(room, [a])
    for i in range(5):
        send_all_layers(room, a, False, 0.1 + 0.1 * i)
    assert layers_received(b) == {1: 5} and layers_received(low) == {0: 5}
    inbox(a)
    resumed = 0.5 + STALE_AFTER + 1.0  # three seconds of nothing at all
    for i in range(3 * STALE_FRAMES):
        send_all_layers(room, a, False, resumed + 0.1 * i)
    assert layers_received(b) == {1: 3 * STALE_FRAMES}
    assert layers_received(low) == {0: 3 * STALE_FRAMES}
    assert inbox(a) == []


def test_a_congested_receiver_gets_a_lower_layer_before_losing_frames() -> None:
    config = RelayConfig(media_downgrade_at=4000, layer_hold=2.0, layer_restore_after=10.0)
    room, (a, slow, fast) = room_of(1, 2, 3, config=config)
    warm_up(room, [a])
    now = 0.0
    sent = 0
    fast_got: Counter[int] = Counter()
    # the slow receiver never reads: its queue grows past the downgrade mark
    while slow.layers.cap == 2:
        for layer in (0, 1, 2):
            send(room, a, layer, False, now, size=1000)
        fast_got += layers_received(fast)  # the fast one reads everything at once
        sent += 1
        now += 0.033
        assert sent < 100
    assert slow.queue.dropped == 0  # the cap came first
    assert slow.layers.cap == 1
    assert fast_got == {2: sent}  # the others are not touched
    assert fast.layers.cap == 2
    queued = inbox(slow)
    assert [m for m in queued if not isinstance(m, bytes)] == [LayerCap(layer=1)]
    assert Counter(decode_media(m).layer for m in queued if isinstance(m, bytes)) == {2: sent}
    send(room, a, 1, True, now)  # the relay switches it at layer 1's next keyframe
    send(room, a, 2, False, now)
    assert layers_received(slow) == {1: 1}
    assert layers_received(fast) == {2: 1}
    # a calm spell (its queue empty) raises the cap again, and the engine is told
    now += 10.5
    send(room, a, 1, False, now)
    assert LayerCap(layer=2) in inbox(slow)
    assert slow.layers.cap == 2


def test_a_frame_costs_its_receivers_not_a_walk_over_the_room() -> None:
    """Last-N: of 60 members each watching 2 senders, a frame of sender 1 reaches the
    receivers that named it through the room's index of who watches whom: the walk
    for it covers them and the two who chose nobody (everything), not all 60."""
    room, peers = room_of(*range(1, 61))
    for p in peers[2:]:
        room.subscribe(p, Subscribe(video_from=[1 + p.conn % 2, 50]), 0.0)
    watchers = [p for p in peers[2:] if 1 + p.conn % 2 == 1]
    walked = [*room._fanout[VIDEO], *room._chosen[VIDEO].get(1, ())]
    assert sorted(p.conn for p in walked) == sorted([1, 2] + [p.conn for p in watchers])
    send(room, peers[0], 0, True, 0.0)
    assert all(layers_received(p) == {0: 1} for p in [peers[1], *watchers])
    assert all(layers_received(p) == {} for p in peers[2:] if p not in watchers)
