"""Last-N for the glass (docs/PROTOCOL.md, "Local UI channel", ``stage``): who is on
stage, decided by this engine from the audio it decrypts (:mod:`clave.meeting.speakers`).

:class:`StageDirector` feeds every decrypted audio frame to a
:class:`~clave.meeting.speakers.SpeakerTracker`, chooses (:func:`~clave.meeting.
speakers.choose`) whose video to receive and at which simulcast layer, and calls
``Meeting.subscribe`` only when that choice changes, never per frame. It tells the glass
who is on stage and who speaks (a ``stage`` message, sent when it changes), so the grid
shows video for the stage and avatars for the others. Pins come from the glass
(``pin``/``unpin``), and so does its layout (``view``: in speaker view the focus is
received at the top layer, the filmstrip at the lowest); a ``LayerCapped`` from the
relay (our queue there grew) bounds every layer until a later one raises the cap.

The relay learns what we subscribe to (connection ids and layers), as it learns sizes
and timing; it learns nothing of who speaks (docs/SECURITY.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from ..meeting import events as ev
from ..meeting.meeting import Meeting, Phase
from ..meeting.speakers import LAST_N, TOP_LAYER, Choice, SpeakerTracker, choose
from ..wire import StreamKind
from ..wire.media import CAPTURE_TIME_BYTES
from .connection import RelayConnectionError
from .glass_messages import Stage, ToGlass
from .session import MeetingSession

STAGE_TICK = 0.25
"""Seconds between two looks at who stopped speaking (starts are seen as they come)."""
MAX_PINS = LAST_N
"""Pinned members at most (a pin beyond the oldest one unpins it)."""


class StageDirector:
    """Speaking activity, pins and the congestion cap -> subscriptions and ``stage``."""

    def __init__(
        self,
        meeting: Callable[[], Meeting | None],
        send: Callable[[ToGlass], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        n: int = LAST_N,
    ) -> None:
        self._meeting = meeting
        self._send = send
        self.n = n
        self.speakers = SpeakerTracker(clock)
        self.pinned: list[int] = []
        self.speaker_view = False
        """The glass shows speaker view (kept across meetings: it is the page's layout)."""
        self.cap: int | None = None
        self.subscribed: Choice | None = None
        """The choice last given to ``Meeting.subscribe`` (None: nothing yet)."""
        self.subscriptions = 0
        """Times ``Meeting.subscribe`` was called (for tests: not once per frame)."""
        self._sent: Stage | None = None

    def reset(self) -> None:
        """A new meeting core: its leaves are other people, its subscription is new."""
        self.speakers.clear()
        self.pinned.clear()
        self.cap = None
        self.subscribed = None
        self._sent = None

    def glass_connected(self) -> None:
        """A (re)connected glass gets the stage anew."""
        self._sent = None
        self.refresh()

    def heard(self, event: ev.MediaFrameDecrypted) -> None:
        """A decrypted frame: audio counts towards speaking activity."""
        if event.kind != StreamKind.audio:
            return
        # The codec bytes' count, without copying them out of the plaintext (a payload
        # with no codec data counts as silence, as a DTX packet does).
        size = len(event.payload) - CAPTURE_TIME_BYTES
        if self.speakers.heard(event.sender, size):
            self.refresh()  # a start of speech: maybe a new face on stage

    def capped(self, layer: int) -> None:
        """The relay lowered our layers (``LayerCapped``): choose at most ``layer``."""
        self.cap = None if layer >= TOP_LAYER else max(0, layer)
        self.refresh()

    def pin(self, leaf: int, on: bool) -> None:
        if leaf in self.pinned:
            self.pinned.remove(leaf)
        if on:
            self.pinned.insert(0, leaf)
            del self.pinned[MAX_PINS:]
        self.refresh()

    def set_view(self, speaker: bool) -> None:
        """The glass switched between grid (False) and speaker view (True)."""
        self.speaker_view = speaker
        self.refresh()

    def refresh(self) -> bool:
        """Choose again; subscribe if the choice changed (True: the core queued a
        ``Subscribe``, the caller sends it) and tell the glass if the stage changed."""
        meeting = self._meeting()
        if meeting is None or meeting.phase is not Phase.in_meeting:
            return False
        leaves = {entry.leaf for entry in meeting.roster}
        self.speakers.retain(leaves)
        self.pinned = [leaf for leaf in self.pinned if leaf in leaves]
        states = meeting.media_states
        choice = choose(
            members=leaves,
            own=meeting.own_leaf,
            recent=self.speakers.recent(),
            pinned=self.pinned,
            sharers=[leaf for leaf, s in states.items() if s.screen],
            cameras_off={leaf for leaf, s in states.items() if not s.cam},
            n=self.n,
            cap=self.cap,
            speaker_view=self.speaker_view,
        )
        subscribed = False
        if self.subscribed is None or dict(self.subscribed.video) != dict(choice.video):
            meeting.subscribe(
                video_from=choice.video.keys(), layers=dict(choice.video), layer=TOP_LAYER
            )
            self.subscriptions += 1
            subscribed = True
        self.subscribed = choice
        message = Stage(
            video=list(choice.order),
            layers={str(leaf): layer for leaf, layer in choice.video.items()},
            speaking=list(self.speakers.speaking()),
            active=choice.focus,
            pinned=list(self.pinned),
        )
        if message != self._sent:
            self._sent = message
            self._send(message)
        return subscribed

    async def run(self, session: MeetingSession, current: Callable[[], bool]) -> None:
        """Look again every :data:`STAGE_TICK` (speech that stopped) while ``current()``
        and the session is open; send what a change queued."""
        while current() and not session.closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.closed.wait(), STAGE_TICK)
            if current() and not session.closed.is_set() and self.refresh():
                with contextlib.suppress(RelayConnectionError):
                    await session.flush()


__all__ = ["MAX_PINS", "STAGE_TICK", "StageDirector"]
