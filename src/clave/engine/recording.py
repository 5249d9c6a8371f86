"""A recorder: a headless participant that sends nothing, announces that it records, and
writes what it decrypts to one WebM file (:class:`~clave.media.mixed_recorder.MixedRecorder`).

It joins through the lobby like anyone and is in everyone's participant list; its
``media`` switches say ``rec`` (an MLS application message), so every glass shows
"Recording by <name>". It receives every member's audio (mixed) and the video the
last-N director chooses; the file shows the focus (a pin, else the most recent
speaker), or a screen share while there is one. The file is finished however the
participant stops: :meth:`MeetingRecorder.stop` (a signal, ``--duration``) or
a host removing it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from ..media.errors import MediaError
from ..media.mixed_recorder import MixedRecorder, RecordingCounts, Source
from ..meeting import events as ev
from ..meeting.link import MeetingLink
from ..meeting.meeting import Phase
from ..wire import StreamKind, WireError, unpack_payload
from .glass_recording import shown_source
from .headless import HeadlessParticipant, ParticipantReport

TICK_S = 0.1
"""How often the file is written up to the present, whether or not media arrives."""


class MeetingRecorder(HeadlessParticipant):
    """Join (or host) a meeting without camera or microphone and record it to ``out``."""

    def __init__(
        self, link: MeetingLink, name: str, out: str | os.PathLike[str], **options: Any
    ) -> None:
        super().__init__(link, name, video=False, audio=False, auto_admit=False, **options)
        self.recorder = MixedRecorder(out)
        """The file being written (raises :class:`MediaError` now on a bad path)."""
        self.counts: RecordingCounts = self.recorder.counts
        self._names: dict[int, str] = {}
        """Display names of the senders recorded, by leaf (also of those who left)."""
        self._announced: Source | None = None
        self.on_shown: Callable[[str], None] | None = None
        """Called with :meth:`describe` of the picture written whenever it changes."""

    async def start(self) -> None:
        await super().start()
        assert self.session is not None
        await self.session.act(lambda m: m.set_recording(True))  # before our first Hello
        tick = asyncio.create_task(self._tick(), name=f"record-{self.name}")
        tick.add_done_callback(self._media_task_done)
        self._tasks.append(tick)

    async def stop(self, *, leave: bool = True) -> ParticipantReport:
        """Leave and finish the file (a failure to is in ``report.media_errors``)."""
        try:
            return await super().stop(leave=leave)
        finally:
            try:
                self.recorder.close()
            except MediaError as exc:
                self.report.media_errors.append(f"recording: {exc}")

    def _failed(self, exc: MediaError) -> None:
        """The file cannot be written on: say so to everyone and stop."""
        self.report.media_errors.append(f"recording: {exc}")
        if self.session is not None and self.phase is Phase.in_meeting:
            self.session.meeting.set_recording(False)  # sent with the core's next frames
        self.ended.set()

    def _on_event(self, event: ev.Event) -> None:
        handler = _RECORDER_HANDLERS.get(type(event), HeadlessParticipant._on_event)
        handler(self, event)

    def _left(self, event: ev.MemberLeft) -> None:
        for kind in StreamKind:
            self.recorder.forget((event.leaf, kind))
        HeadlessParticipant._on_event(self, event)

    def _record(self, event: ev.MediaFrameDecrypted) -> None:
        try:
            _, data = unpack_payload(event.payload)
        except WireError:
            self.report.frames_rejected += 1
            return
        if not self.ended.is_set():
            try:
                self._write(event, data)
            except MediaError as exc:
                self._failed(exc)

    def _write(self, event: ev.MediaFrameDecrypted, data: bytes) -> None:
        source = (event.sender, event.kind)
        self._names[event.sender] = event.name
        if event.kind == StreamKind.audio:
            self.media.director.heard(event)
            self.recorder.audio(source, data)
            self.counter.add(event.name, "audio", 1)
        elif self.recorder.video(source, data):
            self.counter.add(event.name, "video", 1)
        elif self.recorder.needs_keyframe(source) and self.session is not None:
            self.media.keyframes.ask(self.session.meeting, event.sender, event.kind)
        self.recorder.show(shown_source(self.media.director.subscribed))

    def describe(self, source: Source | None) -> str:
        """A picture source in words: "Ada's screen", "Ada's camera", "blank"."""
        if source is None:
            return "blank"
        assert isinstance(source, tuple)  # (leaf, kind), as _write shows them
        leaf: int = source[0]
        what = "screen" if source[1] == StreamKind.screen else "camera"
        return f"{self._names.get(leaf, f'leaf {leaf}')}'s {what}"

    def pictures(self) -> list[tuple[str, int]]:
        """Whose pictures the file shows, most first: ("Ada's camera", 120), ("blank", 3)."""
        return [(self.describe(s), count) for s, count in self.counts.shown.most_common()]

    def _announce_shown(self) -> None:
        """Tell :attr:`on_shown` when the picture written is someone else's than before."""
        shown = self.recorder.last_shown
        current = shown[-1] if shown else None
        if shown and current != self._announced:
            self._announced = current
            if self.on_shown is not None:
                self.on_shown(self.describe(current))

    async def _tick(self) -> None:
        while not self.ended.is_set():
            await asyncio.sleep(TICK_S)
            try:
                self.recorder.advance()
            except MediaError as exc:
                self._failed(exc)
            self._announce_shown()


_RECORDER_HANDLERS: dict[type, Callable[[MeetingRecorder, Any], None]] = {
    ev.MediaFrameDecrypted: MeetingRecorder._record,
    ev.MemberLeft: MeetingRecorder._left,
}
"""Events a recorder handles its own way (the others as any headless participant)."""


async def record_until(me: MeetingRecorder, stop: asyncio.Event, duration: float | None) -> None:
    """Wait until ``stop`` is set, ``duration`` seconds pass or the meeting ends for us
    (removed, ended); :meth:`MeetingRecorder.stop` then finishes the file."""
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(me.ended.wait())]
    try:
        await asyncio.wait(waiters, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


__all__ = ["TICK_S", "MeetingRecorder", "record_until"]
