"""Commit order across relay nodes: a room's ordering operations as a log.

On one relay, :class:`~clave.relay.ordering.EpochSlots` decides which commit a room
orders for each epoch. Across nodes, each room has one append-only log (a JetStream
subject, see :mod:`.jetstream_order`) of the operations that change its slots:

* :class:`Seed`: an entering member registers its epoch credential's hash;
* :class:`Order`: a commit was ordered (its slot consumed, the next one opened);
* :class:`Reopen`: a member refused the commit ordered for a slot and opened it again;
* :class:`Move`: a host replaced the invitation (the room's new id, the connections
  dropped), appended only while its credential's slot is open.

Every node replays the log, in order, into its own :class:`OrderReplica`, so every
node holds the same slots. A node proposes an operation only after checking it
against its replica as of log position ``s`` and appends it only if the log still
ends at ``s`` (JetStream's expected-last-subject-sequence check): the check and the
append are one atomic step for the whole cluster. So exactly one commit wins each
epoch, and every commit gets exactly one answer: accepted once appended, or refused
by the check at the newest position (PROTOCOL.md, "Relay clusters").

Only refusals never appended differ from one relay: the log holds accepted
operations only. Eviction under the room's slot bound treats every owner as
present (a node cannot know when another node's connections left in log order),
so replicas evict alike.

Plain data: no I/O, no clock, no randomness.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import msgspec

from clave.wire import MAX_DROP

from ..ordering import ByteBudget, EpochSlots, Verdict

HASH_BYTES = 32
MAX_ENTRY_BYTES = 512 * 1024
"""A log entry is at most this big (an Order carries its commit: the relay's message cap)."""


class _Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="t"):
    """Base of the log's entries (MessagePack, tagged)."""


class Seed(_Entry, tag="seed", frozen=True):
    owner: int
    key: bytes


class Order(_Entry, tag="order", frozen=True):
    owner: int
    cred: bytes
    """SHA-256 of the epoch credential presented (never the credential itself)."""
    next: bytes
    data: bytes


class Reopen(_Entry, tag="reopen", frozen=True):
    key: bytes


class Move(_Entry, tag="move", frozen=True):
    """A host replaced the invitation (``Rotate``): the room's id becomes ``room``."""

    owner: int
    cred: bytes
    """SHA-256 of the current epoch's credential (an open slot when appended)."""
    room: Annotated[str, msgspec.Meta(max_length=64)]
    token_hash: bytes
    drop: Annotated[list[int], msgspec.Meta(max_length=MAX_DROP)]


Entry = Seed | Order | Reopen | Move

_HASH_FIELDS: dict[type[Entry], tuple[str, ...]] = {
    Seed: ("key",),
    Order: ("cred", "next"),
    Reopen: ("key",),
    Move: ("cred", "token_hash"),
}
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)


class LogError(Exception):
    """A log entry that cannot be applied: malformed, oversized or out of sequence."""


def encode_entry(entry: Entry) -> bytes:
    return _encoder.encode(entry)


def decode_entry(data: bytes) -> Entry:
    """One entry, checked (size, hash lengths); :class:`LogError` otherwise."""
    if len(data) > MAX_ENTRY_BYTES:
        raise LogError(f"log entry of {len(data)} bytes is over {MAX_ENTRY_BYTES}")
    try:
        entry = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise LogError(f"malformed log entry: {exc}") from None
    for name in _HASH_FIELDS[type(entry)]:
        if len(getattr(entry, name)) != HASH_BYTES:
            raise LogError(f"log entry {type(entry).__name__}.{name} is not a SHA-256")
    return entry


class _Everyone:
    """Every owner counts as present (see the module docstring)."""

    def __contains__(self, conn: object) -> bool:
        return True


EVERYONE = _Everyone()


@dataclass(frozen=True)
class Applied:
    """What applying one entry did (the node that appended it answers its client)."""

    seq: int
    entry: Entry
    verdict: Verdict | None
    """For an Order, the verdict of the replica (accepted unless replicas diverged)."""


def _apply_seed(slots: EpochSlots, entry: Entry) -> None:
    assert isinstance(entry, Seed)
    slots.seed(entry.key, entry.owner)


def _apply_order(slots: EpochSlots, entry: Entry) -> Verdict:
    assert isinstance(entry, Order)
    return slots.commit(entry.cred, entry.next, entry.owner, EVERYONE, entry.data)


def _apply_reopen(slots: EpochSlots, entry: Entry) -> None:
    assert isinstance(entry, Reopen)
    if entry.key in slots and not slots.is_open(entry.key):
        slots.reopen(entry.key)


def _apply_move(slots: EpochSlots, entry: Entry) -> None:
    """No slot changes: the node that follows the room renames it (:mod:`.room_link`)."""


_APPLY: dict[type[Entry], Callable[[EpochSlots, Entry], Verdict | None]] = {
    Seed: _apply_seed,
    Order: _apply_order,
    Reopen: _apply_reopen,
    Move: _apply_move,
}
"""How each kind of entry changes a replica's slots."""


class OrderReplica:
    """One node's copy of a room's slots, as of log position :attr:`seq`."""

    def __init__(
        self,
        max_slots: int,
        max_open_per_owner: int,
        max_log_bytes: int,
        budget: ByteBudget | None = None,
    ) -> None:
        self.slots = EpochSlots(max_slots, max_open_per_owner, max_log_bytes, budget)
        self.seq = 0
        """The log position (stream sequence) of the last entry applied; 0: none yet."""

    # ------------------------------------------------------------ proposals

    def check_commit(self, cred: bytes, next_: bytes, owner: int) -> Verdict:
        """The verdict a commit gets if appended now (nothing changes)."""
        return self.slots.check(cred, next_, owner, EVERYONE)

    def may_seed(self, key: bytes, owner: int) -> bool:
        """Whether a Seed of ``key`` by ``owner`` would register it now."""
        slots = self.slots
        return (
            not slots.ordered
            and not slots.registered(owner)
            and key not in slots
            and slots.open_count(owner) < slots.max_open_per_owner
            and len(slots) < slots.max_slots
        )

    def may_reopen(self, key: bytes) -> bool:
        return key in self.slots and not self.slots.is_open(key)

    # ------------------------------------------------------------ the log

    def apply(self, seq: int, data: bytes) -> Applied | None:
        """Apply the entry at log position ``seq``: None for one applied already (a
        redelivery); :class:`LogError` for a malformed entry (the position still counts,
        so one bad entry cannot stall the room)."""
        if seq <= self.seq:
            return None
        self.seq = seq
        entry = decode_entry(data)
        verdict = _APPLY[type(entry)](self.slots, entry)
        return Applied(seq, entry, verdict)


__all__ = [
    "EVERYONE",
    "Applied",
    "Entry",
    "LogError",
    "Move",
    "Order",
    "OrderReplica",
    "Reopen",
    "Seed",
    "decode_entry",
    "encode_entry",
]
