"""What a relay node sends another node: deliveries to that node's connections, batched.

A connection on another node is, in this node's room, a peer like any other whose queue
is a :class:`NodeQueue`: what the room would queue for it (a control message, or a media
frame the room decided this receiver gets, at its layer) goes to that node's
:class:`Outbox` instead. Every ``FLUSH_DELAY`` (:mod:`.node`) the outbox becomes one or
a few NATS messages (:class:`Batch`, all rooms together), in which a frame for several
connections of that node travels once with their ids. The receiving node queues each
item for its own connections exactly as if the sender were local (:mod:`.node`).

So media goes only to nodes where someone gets it, at the layer they get: the choice
is made where the frame enters the cluster. Nothing here is decrypted or parsed
beyond the relay's own envelope; items carry the bytes a local receiver would get.

Plain data: no I/O (the node flushes on its loop's tick).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from ..queues import OutQueue

CONTROL = -1
"""``Item.kind`` of a control message (media kinds are 0..2)."""
MAX_BATCH_BYTES = 512 * 1024
"""A batch is closed once it holds this many bytes of items (NATS's payload cap is 1 MiB)."""
MAX_ITEMS = 4096
MAX_TARGETS = 2048


class Item(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    targets: list[int]
    """Connection ids on the receiving node."""
    data: bytes
    kind: int
    sender: int = 0
    keyframe: bool = False


class RoomItems(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    room: str
    """The room's cluster handle (random, see :mod:`.room_link`): never a token."""
    items: list[Item]


class Batch(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    rooms: list[RoomItems]


_encode = msgspec.msgpack.Encoder().encode
_decode_batch = msgspec.msgpack.Decoder(Batch).decode


class BatchError(Exception):
    """A batch another node sent that this node will not deliver."""


def decode_batch(data: bytes) -> Batch:
    """One batch, checked against this module's bounds; :class:`BatchError` otherwise."""
    if len(data) > 2 * MAX_BATCH_BYTES:
        raise BatchError(f"batch of {len(data)} bytes is over {2 * MAX_BATCH_BYTES}")
    try:
        batch = _decode_batch(data)
    except msgspec.DecodeError as exc:
        raise BatchError(f"malformed batch: {exc}") from None
    count = sum(len(r.items) for r in batch.rooms)
    if count > MAX_ITEMS:
        raise BatchError(f"batch of {count} items is over {MAX_ITEMS}")
    for part in batch.rooms:
        for item in part.items:
            if not CONTROL <= item.kind <= 2 or len(item.targets) > MAX_TARGETS:
                raise BatchError("batch item with a bad kind or too many targets")
    return batch


class Outbox:
    """Everything bound for one other node since the last tick."""

    def __init__(self, node: int, on_ready: Callable[[Outbox], None]) -> None:
        self.node = node
        """The node slot it is bound for."""
        self._on_ready = on_ready
        self._rooms: dict[str, dict[int, tuple[list[int], bytes, int, int, bool]]] = {}
        """Room handle -> id(data) -> (targets, data, kind, sender, keyframe)."""
        self._pending = False

    def __len__(self) -> int:
        return sum(len(items) for items in self._rooms.values())

    def add(self, room: str, target: int, data: bytes, kind: int, sender: int, key: bool) -> None:
        """Queue ``data`` for connection ``target`` (the same bytes object for several
        targets in one tick travels once)."""
        items = self._rooms.get(room)
        if items is None:  # (not setdefault: it would build a dict at every call)
            items = self._rooms[room] = {}
        item = items.get(id(data))  # the outbox holds ``data``: its id is not reused
        if item is not None and len(item[0]) < MAX_TARGETS:
            item[0].append(target)
        else:
            if item is not None:  # full: keep it under a key no id can take
                items[-len(items) - 1] = item
            items[id(data)] = ([target], data, kind, sender, key)
        if not self._pending:
            self._pending = True
            self._on_ready(self)

    def take(self) -> list[bytes]:
        """Everything since the last flush, as few encoded batches as the size cap allows
        (all rooms together), emptying the outbox."""
        self._pending = False
        rooms, self._rooms = self._rooms, {}
        out: list[bytes] = []
        parts: list[RoomItems] = []
        size = count = 0
        for room, entries in rooms.items():
            items: list[Item] = []
            for targets, data, kind, sender, key in entries.values():
                items.append(Item(targets, data, kind, sender, key))
                size += len(data) + 4 * len(targets)
                count += 1
                if size >= MAX_BATCH_BYTES or count >= MAX_ITEMS:
                    out.append(_encode(Batch([*parts, RoomItems(room, items)])))
                    parts, items, size, count = [], [], 0, 0
            if items:
                parts.append(RoomItems(room, items))
        if parts:
            out.append(_encode(Batch(parts)))
        return out


class NodeQueue(OutQueue):
    """The queue of a connection on another node: what is pushed goes to its outbox."""

    __slots__ = ("_outbox", "_room", "_target")

    def __init__(self, outbox: Outbox, room: str, target: int) -> None:
        super().__init__(1 << 62, 1 << 62, 1 << 62)
        self._outbox = outbox
        self._room = room
        self._target = target

    def push_control(self, data: bytes) -> bool:
        self._outbox.add(self._room, self._target, data, CONTROL, 0, False)
        return True

    def push_media(self, data: bytes, sender: int, kind: int, keyframe: bool, now: float) -> bool:
        """Forwarded as is; the receiving node's own queue decides about loss and keyframes."""
        self._outbox.add(self._room, self._target, data, kind, sender, keyframe)
        return False

    def rename(self, room: str) -> None:
        self._room = room


__all__ = [
    "CONTROL",
    "Batch",
    "BatchError",
    "Item",
    "NodeQueue",
    "Outbox",
    "RoomItems",
    "decode_batch",
]
