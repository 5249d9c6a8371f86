"""Who is speaking, and whose video to receive (last-N), decided by the receiver (sans-I/O).

Speaking activity comes from the audio this member decrypts, never from anything the
relay sees: senders use Opus DTX (RFC 6716 section 2.1.9; the glass leaves out
packets of 2 bytes or fewer), so a member whose audio frames larger than
:data:`DTX_BYTES` arrived within the last :data:`SPEAKING_WINDOW` seconds is speaking.
:class:`SpeakerTracker` keeps, per member, when its current (or last) speech started
and when it was last heard; :meth:`SpeakerTracker.recent` orders members by most
recent start of speech, those speaking now first.

:func:`choose` is a pure function from what we know (members, our leaf, recent
speakers, pins, screen sharers, cameras turned off, N and a congestion cap) to whose
video to subscribe to and at which simulcast layer: fewer tiles, a higher layer; the
focus (the first pinned member, else the most recent speaker) one layer above the rest.
In speaker view the focus is shown large (the top layer) and the others in a filmstrip
(layer 0); with nobody pinned or heard, the first member on stage is the focus.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

SPEAKING_WINDOW = 1.5
"""Seconds after a member's last non-DTX audio frame during which it counts as speaking."""
DTX_BYTES = 2
"""Audio frames of this many bytes or fewer are DTX (silence), not speech."""
LAST_N = 9
"""Video streams received at most, pinned members included (the rest show as avatars)."""
TOP_LAYER = 2
"""Simulcast layers are 0 (smallest) to 2 (full size)."""


@dataclass(slots=True)
class _Heard:
    started: float
    """When the current (or last) speech began."""
    last: float
    """When a non-DTX frame last arrived."""


class SpeakerTracker:
    """Speaking activity per member from its decrypted audio frames (clock injected)."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        window: float = SPEAKING_WINDOW,
        dtx_bytes: int = DTX_BYTES,
    ) -> None:
        self._clock = clock
        self._window = window
        self._dtx_bytes = dtx_bytes
        self._heard: dict[int, _Heard] = {}

    def heard(self, leaf: int, size: int) -> bool:
        """An audio frame of ``size`` codec bytes from ``leaf``; True if it started a
        speech (the member was not speaking before), so the caller re-chooses now."""
        if size <= self._dtx_bytes:
            return False
        now = self._clock()
        entry = self._heard.get(leaf)
        if entry is None or now - entry.last > self._window:
            self._heard[leaf] = _Heard(started=now, last=now)
            return True
        entry.last = now
        return False

    def speaking(self) -> tuple[int, ...]:
        """Members speaking now, most recent start of speech first."""
        now = self._clock()
        live = [
            (-h.started, leaf) for leaf, h in self._heard.items() if now - h.last <= self._window
        ]
        return tuple(leaf for _, leaf in sorted(live))

    def recent(self) -> tuple[int, ...]:
        """Every member heard so far: those speaking now first, each group by most
        recent start of speech (a later start first)."""
        now = self._clock()

        def rank(item: tuple[int, _Heard]) -> tuple[bool, float, int]:
            leaf, h = item
            return (now - h.last > self._window, -h.started, leaf)

        return tuple(leaf for leaf, _ in sorted(self._heard.items(), key=rank))

    def retain(self, leaves: Collection[int]) -> None:
        """Forget members no longer in the meeting (their leaves may be reused)."""
        for leaf in [leaf for leaf in self._heard if leaf not in leaves]:
            del self._heard[leaf]

    def clear(self) -> None:
        self._heard.clear()


@dataclass(frozen=True, slots=True)
class Choice:
    """Whose video to receive and at which layer; who is in focus; whose screen."""

    video: Mapping[int, int] = field(default_factory=dict)
    """Leaf -> simulcast layer, for the members on stage (their video is received)."""
    order: tuple[int, ...] = ()
    """The members on stage, in the order they are chosen (pinned, speakers, the rest)."""
    focus: int | None = None
    """The first pinned member, else the most recent speaker on stage (None: neither)."""
    screen: frozenset[int] = frozenset()
    """Members sharing their screen (their share is received at the top layer)."""


def layer_for(tiles: int) -> int:
    """The layer for this many video tiles: 1 -> 2, 2 to 4 -> 1, more -> 0."""
    if tiles <= 1:
        return 2
    return 1 if tiles <= 4 else 0


def choose(
    *,
    members: Iterable[int],
    own: int | None,
    recent: Sequence[int] = (),
    pinned: Sequence[int] = (),
    sharers: Iterable[int] = (),
    cameras_off: Collection[int] = (),
    n: int = LAST_N,
    cap: int | None = None,
    speaker_view: bool = False,
) -> Choice:
    """Which members' video to receive: the pinned ones first, then the most recent
    speakers (``recent``, as :meth:`SpeakerTracker.recent` orders them), then the others
    by leaf, ``n`` at most; never ourselves, nor a member whose camera is announced off.
    Layers follow the tile count (:func:`layer_for`; with a screen share on, the videos
    are a strip: as for more than four), the focus one above, none above ``cap``.
    ``speaker_view`` (and no screen share): the focus at the top layer, the others at 0."""
    present = set(members) - {own}
    others = sorted(present)
    candidates = [leaf for leaf in others if leaf not in cameras_off]
    shown = set(candidates)
    order: list[int] = []
    for leaf in (*pinned, *recent, *candidates):
        if len(order) >= max(n, 0):
            break
        if leaf in shown and leaf not in order:
            order.append(leaf)
    screens = frozenset(leaf for leaf in sharers if leaf in present)
    base = layer_for(len(order)) if not screens else 0
    focus = next((leaf for leaf in (*pinned, *recent) if leaf in order), None)
    top = TOP_LAYER if cap is None else max(0, min(cap, TOP_LAYER))
    if speaker_view and not screens:
        focus = focus if focus is not None else next(iter(order), None)
        video = {leaf: top if leaf == focus else 0 for leaf in order}
    else:
        video = {leaf: min(top, base + 1 if leaf == focus else base) for leaf in order}
    return Choice(video=video, order=tuple(order), focus=focus, screen=screens)


__all__ = [
    "DTX_BYTES",
    "LAST_N",
    "SPEAKING_WINDOW",
    "TOP_LAYER",
    "Choice",
    "SpeakerTracker",
    "choose",
    "layer_for",
]
