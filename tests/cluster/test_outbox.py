"""Deliveries to another relay node (clave.relay.cluster.outbox): batched per tick, a
frame for several of that node's connections travels once, and a real room sends a
node only the streams and layers its connections subscribed to (issue 14, req. 3)."""

from __future__ import annotations

import hashlib
from collections import Counter

import msgspec
import pytest

from clave.relay import RelayConfig
from clave.relay.cluster.outbox import (
    CONTROL,
    MAX_BATCH_BYTES,
    Batch,
    BatchError,
    Item,
    NodeQueue,
    Outbox,
    RoomItems,
    decode_batch,
)
from clave.relay.limits import TokenBucket
from clave.relay.queues import OutQueue
from clave.relay.room import Peer, Room
from clave.wire import StreamKind, Subscribe, decode_media, encode_media

ROOM = "A" * 22
VIDEO = StreamKind.video


def items(outbox: Outbox) -> list[Item]:
    return [i for data in outbox.take() for part in decode_batch(data).rooms for i in part.items]


def test_one_frame_for_three_connections_travels_once_per_tick() -> None:
    ready: list[Outbox] = []
    box = Outbox(2, ready.append)
    frame, other = b"\x01frame", b"\x01other"
    for target in (7, 8, 9):
        box.add(ROOM, target, frame, 1, 3, True)
    box.add(ROOM, 7, other, CONTROL, 0, False)
    assert ready == [box]  # one flush asked for, however much was added
    got = items(box)
    assert got == [Item([7, 8, 9], frame, 1, 3, True), Item([7], other, CONTROL, 0, False)]
    assert items(box) == [] and len(box) == 0
    box.add(ROOM, 1, frame, 0, 3, False)
    assert ready == [box, box]  # the next tick asks again


def test_several_rooms_travel_in_one_batch() -> None:
    box = Outbox(2, lambda _: None)
    for room in ("r1", "r2", "r3"):
        box.add(room, 4, room.encode(), 0, 3, False)
    batches = box.take()
    assert len(batches) == 1  # one NATS message per node and flush, whatever the rooms
    assert [p.room for p in decode_batch(batches[0]).rooms] == ["r1", "r2", "r3"]


def test_big_ticks_are_split_into_batches_under_the_cap() -> None:
    box = Outbox(2, lambda _: None)
    chunks = [bytes([i]) * 100_000 for i in range(12)]
    for chunk in chunks:
        box.add(ROOM, 5, chunk, 1, 3, False)
    batches = box.take()
    assert len(batches) > 1 and all(len(b) < 2 * MAX_BATCH_BYTES for b in batches)
    got = [i.data for b in batches for part in decode_batch(b).rooms for i in part.items]
    assert got == chunks


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xc1", "malformed"),
        (b"\x00" * (2 * MAX_BATCH_BYTES + 1), "over"),
        (msgspec.msgpack.encode(Batch([RoomItems(ROOM, [Item([1], b"x", 7)])])), "bad kind"),
        (
            msgspec.msgpack.encode(Batch([RoomItems(ROOM, [Item(list(range(3000)), b"x", 1)])])),
            "targets",
        ),
    ],
)
def test_a_bad_batch_is_refused_with_a_reason(data: bytes, problem: str) -> None:
    with pytest.raises(BatchError, match=problem):
        decode_batch(data)


def _peer(conn: int, queue: OutQueue) -> Peer:
    return Peer(conn, queue, TokenBucket(100, 100, 0.0))


def test_a_room_sends_another_node_only_what_its_connections_chose() -> None:
    """Node A's room: Ada (local, sends 3 layers); on node B, Bo wants Ada's layer 0,
    Cy layer 2, Di no video; on node C, Ed no video at all. Node B gets each frame of
    layers 0 and 2 once, addressed to the one who chose it; node C gets no video."""
    config = RelayConfig()
    room = Room(ROOM, hashlib.sha256(b"t").digest(), 1, config, 0.0)
    to_b, to_c = Outbox(2, lambda _: None), Outbox(3, lambda _: None)
    ada = _peer(1, OutQueue(1 << 20, 1 << 21, 1 << 20))
    bo, cy, di = (_peer(c, NodeQueue(to_b, ROOM, c)) for c in (2, 3, 4))
    ed = _peer(5, NodeQueue(to_c, ROOM, 5))
    for p in (ada, bo, cy, di, ed):
        room.add(p)
    room.subscribe(bo, Subscribe(layer=0), 0.0)
    room.subscribe(cy, Subscribe(layer=2), 0.0)
    room.subscribe(di, Subscribe(video=False), 0.0)
    room.subscribe(ed, Subscribe(video=False), 0.0)
    for i in range(11):  # a keyframe on each layer first, as a sender starts
        for layer in (0, 1, 2):
            frame = encode_media(VIDEO, i == 0, bytes([layer]) * 50, ada.conn, layer=layer)
            room.media(ada, frame, VIDEO, i == 0, 0.1 * i, layer)
        if i == 0:  # while the relay learns Ada's layers, the first keyframes may reach
            items(to_b), items(to_c)  # a receiver on the way up to its layer (once)
    got = items(to_b)
    layers = Counter((tuple(i.targets), decode_media(i.data).layer) for i in got)
    assert layers == {((2,), 0): 10, ((3,), 2): 10}
    assert all(i.kind == VIDEO and i.sender == ada.conn for i in got)
    assert items(to_c) == []  # nobody on node C gets video: no video goes there
    # audio goes to everyone subscribed: one copy per node with all its targets
    audio = encode_media(StreamKind.audio, False, b"opus", ada.conn)
    room.media(ada, audio, StreamKind.audio, False, 2.0)
    assert [i.targets for i in items(to_b)] == [[2, 3, 4]]
    assert [i.targets for i in items(to_c)] == [[5]]
