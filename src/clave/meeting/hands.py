"""Raised hands in raise order and a per-sender reaction rate limit (sans-I/O).

:class:`HandQueue` keeps each raised hand with the fingerprint of the member who
raised it: a leaf freed by someone leaving and reused by a newcomer does not
inherit the hand. :class:`ReactionLimit` is a token bucket per sender; the time
is passed in (the meeting's injected clock).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .events import RosterEntry

REACTION_BURST = 5
"""Reactions a member may send at once."""
REACTION_RATE = 1.0
"""Reactions per second a member may keep sending after a burst."""
MAX_SENDERS = 4096
"""Senders a limiter keeps a bucket for at most (the oldest go)."""


class HandQueue:
    """Raised hands, first raised first (by leaf, checked against the roster)."""

    def __init__(self) -> None:
        self._raised: dict[int, str] = {}  # leaf -> fingerprint, in raise order

    def raise_hand(self, leaf: int, fingerprint: str) -> bool:
        """True if the hand was not up (a repeat keeps its place)."""
        if self._raised.get(leaf) == fingerprint:
            return False
        self._raised.pop(leaf, None)
        self._raised[leaf] = fingerprint
        return True

    def lower(self, leaf: int) -> bool:
        """True if the hand was up."""
        return self._raised.pop(leaf, None) is not None

    def is_up(self, leaf: int, members: Mapping[int, RosterEntry]) -> bool:
        return leaf in self.queue(members)

    def queue(self, members: Mapping[int, RosterEntry]) -> tuple[int, ...]:
        """Leaves of present members with a raised hand, in raise order (hands of
        members gone, or of a leaf's previous member, are forgotten)."""
        for leaf, fp in list(self._raised.items()):
            entry = members.get(leaf)
            if entry is None or entry.fingerprint != fp:
                del self._raised[leaf]
        return tuple(self._raised)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    warned: bool = False


class ReactionLimit:
    """A token bucket per sender: ``burst`` at once, then ``rate`` per second."""

    def __init__(self, burst: int = REACTION_BURST, rate: float = REACTION_RATE) -> None:
        self._burst = burst
        self._rate = rate
        self._buckets: dict[int, _Bucket] = {}
        self.dropped = 0
        """Reactions refused so far (all senders)."""

    def allow(self, sender: int, now: float) -> bool:
        """True if ``sender`` may react at ``now``; counts a refusal otherwise."""
        bucket = self._buckets.get(sender)
        if bucket is None:
            if len(self._buckets) >= MAX_SENDERS:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[sender] = _Bucket(float(self._burst), now)
        elapsed = max(0.0, now - bucket.at)
        bucket.tokens = min(float(self._burst), bucket.tokens + elapsed * self._rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            if bucket.tokens >= self._burst - 1:
                bucket.warned = False  # quiet again: a later flood is reported again
            return True
        self.dropped += 1
        return False

    def first_refusal(self, sender: int) -> bool:
        """True once per flood: whether to report ``sender``'s latest refusal."""
        bucket = self._buckets.get(sender)
        if bucket is None or bucket.warned:
            return False
        bucket.warned = True
        return True

    def forget(self, sender: int) -> None:
        self._buckets.pop(sender, None)
