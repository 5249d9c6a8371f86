"""What media we ask the relay for (docs/PROTOCOL.md, ``Subscribe``): each kind on or
off, for video and screen optionally only from some members, and for video the
simulcast layer of each member (``layers``, else ``layer``).

We choose by member (leaf); the relay knows connections. :meth:`Wanted.to_wire` maps
the leaves to their current connection ids, so the meeting re-sends the
subscription whenever a member's connection changes or ours is new (a relay
connection starts with everything). Leaves without a known connection are left out
until one is bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .. import wire

_VIDEO_CONTEXTS = range(
    wire.context_of(wire.StreamKind.video), wire.context_of(wire.StreamKind.screen)
)


@dataclass(frozen=True, slots=True)
class Wanted:
    audio: bool = True
    video: bool = True
    screen: bool = True
    video_from: frozenset[int] | None = None
    """Leaves whose video we want (None: everybody's)."""
    screen_from: frozenset[int] | None = None
    """Leaves whose screen share we want (None: everybody's)."""
    layer: int = wire.MAX_LAYER
    """The video layer wanted of members not in ``layers``."""
    layers: Mapping[int, int] = field(default_factory=dict)
    """Leaf -> video layer wanted of it."""

    @classmethod
    def of(
        cls,
        *,
        audio: bool,
        video: bool,
        screen: bool,
        video_from: Iterable[int] | None,
        screen_from: Iterable[int] | None,
        layer: int = wire.MAX_LAYER,
        layers: Mapping[int, int] | None = None,
    ) -> Wanted:
        chosen = dict(layers or {})
        if len(chosen) > wire.MAX_SUBSCRIBED:
            raise ValueError(f"at most {wire.MAX_SUBSCRIBED} layer choices")
        for wish in (layer, *chosen.values()):
            if not 0 <= wish <= wire.MAX_LAYER:
                raise ValueError(f"no video layer {wish}: layers are 0..{wire.MAX_LAYER}")
        return cls(audio, video, screen, _leaves(video_from), _leaves(screen_from), layer, chosen)

    def receives(self, leaf: int, context: int) -> bool:
        """Whether we receive stream ``context`` (clave.wire.context_of) of ``leaf``."""
        if context == 0:
            return self.audio
        if context in _VIDEO_CONTEXTS:
            return self.video and (self.video_from is None or leaf in self.video_from)
        return self.screen and (self.screen_from is None or leaf in self.screen_from)

    def to_wire(self, conn_of_leaf: Mapping[int, int]) -> wire.Subscribe:
        """The ``Subscribe`` for the connections these leaves have now."""
        return wire.Subscribe(
            audio=self.audio,
            video=self.video,
            screen=self.screen,
            video_from=_conns(self.video_from, conn_of_leaf),
            screen_from=_conns(self.screen_from, conn_of_leaf),
            layer=self.layer,
            layers={
                conn_of_leaf[leaf]: wish
                for leaf, wish in sorted(self.layers.items())
                if leaf in conn_of_leaf
            }
            or None,
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
