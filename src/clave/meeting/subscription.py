"""What media we ask the relay for (docs/PROTOCOL.md, ``Subscribe``): each kind on or
off and, for video and screen, optionally only from some members.

We choose by member (leaf); the relay knows connections. :meth:`Wanted.to_wire` maps
the leaves to their current connection ids, so the meeting re-sends the
subscription whenever a member's connection changes or ours is new (a relay
connection starts with everything). Leaves without a known connection are left out
until one is bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .. import wire


@dataclass(frozen=True, slots=True)
class Wanted:
    audio: bool = True
    video: bool = True
    screen: bool = True
    video_from: frozenset[int] | None = None
    """Leaves whose video we want (None: everybody's)."""
    screen_from: frozenset[int] | None = None
    """Leaves whose screen share we want (None: everybody's)."""

    @classmethod
    def of(
        cls,
        *,
        audio: bool,
        video: bool,
        screen: bool,
        video_from: Iterable[int] | None,
        screen_from: Iterable[int] | None,
    ) -> Wanted:
        return cls(audio, video, screen, _leaves(video_from), _leaves(screen_from))

    def to_wire(self, conn_of_leaf: Mapping[int, int]) -> wire.Subscribe:
        """The ``Subscribe`` for the connections these leaves have now."""
        return wire.Subscribe(
            audio=self.audio,
            video=self.video,
            screen=self.screen,
            video_from=_conns(self.video_from, conn_of_leaf),
            screen_from=_conns(self.screen_from, conn_of_leaf),
        )


def _leaves(leaves: Iterable[int] | None) -> frozenset[int] | None:
    if leaves is None:
        return None
    chosen = frozenset(leaves)
    if len(chosen) > wire.MAX_SUBSCRIBED:
        raise ValueError(f"at most {wire.MAX_SUBSCRIBED} senders per kind")
    return chosen


def _conns(leaves: frozenset[int] | None, conn_of_leaf: Mapping[int, int]) -> list[int] | None:
    if leaves is None:
        return None
    return sorted(conn_of_leaf[leaf] for leaf in leaves if leaf in conn_of_leaf)


__all__ = ["Wanted"]
