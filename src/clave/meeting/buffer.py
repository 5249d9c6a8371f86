"""MLS messages kept for a later epoch, bounded in count and bytes, per sender too.

A joiner keeps what members send until its Welcome arrives; a member keeps a
commit or message of an epoch it has not reached yet (RFC 9420 section 14: the
delivery service may deliver out of order). Anyone in the relay room can send
such messages, including a link holder who is not a member, so the store is
bounded: per sending connection (one sender cannot push the others out) and in
total; what does not fit is dropped, oldest first, and counted.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
H = TypeVar("H", bound=Hashable)


class RecentSet(Generic[H]):
    """A set that keeps only its ``size`` most recently added members."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[H, None] = OrderedDict()

    def add(self, item: H) -> None:
        self._items[item] = None
        self._items.move_to_end(item)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class BufferLimits:
    count: int = 512
    bytes: int = 4 * 1024 * 1024
    bytes_per_sender: int = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    epoch: int | None
    sender: int
    size: int
    item: T


class FutureBuffer(Generic[T]):
    """Items tagged with the MLS epoch they belong to (None: not readable yet)."""

    def __init__(self, limits: BufferLimits) -> None:
        self.limits = limits
        self._items: deque[_Entry[T]] = deque()
        self._bytes = 0
        self._by_sender: dict[int, int] = {}
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def add(self, epoch: int | None, sender: int, size: int, item: T) -> list[int]:
        """Keep ``item``; returns the senders of the items dropped to make room."""
        self._items.append(_Entry(epoch, sender, size, item))
        self._bytes += size
        self._by_sender[sender] = self._by_sender.get(sender, 0) + size
        dropped: list[int] = []
        lim = self.limits
        while self._by_sender.get(sender, 0) > lim.bytes_per_sender:
            dropped.append(self._drop(next(e for e in self._items if e.sender == sender)))
        while len(self._items) > lim.count or self._bytes > lim.bytes:
            dropped.append(self._drop(self._items[0]))
        self.dropped += len(dropped)
        return dropped

    def pop_ready(self, current: int) -> T | None:
        """The oldest item of an epoch at or before ``current`` (or of unknown epoch)."""
        for entry in self._items:
            if entry.epoch is None or entry.epoch <= current:
                self._remove(entry)
                return entry.item
        return None

    def senders_after(self, current: int) -> set[int]:
        """Connections that sent items for an epoch later than ``current``."""
        return {e.sender for e in self._items if e.epoch is not None and e.epoch > current}

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0
        self._by_sender.clear()

    def _drop(self, entry: _Entry[T]) -> int:
        self._remove(entry)
        return entry.sender

    def _remove(self, entry: _Entry[T]) -> None:
        self._items.remove(entry)
        self._bytes -= entry.size
        left = self._by_sender[entry.sender] - entry.size
        if left:
            self._by_sender[entry.sender] = left
        else:
            del self._by_sender[entry.sender]
