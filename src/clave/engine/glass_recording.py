"""A host's recording from the meeting page: the engine writes the file, the glass asks.

``record {on}`` (host only) starts or stops a :class:`~clave.media.mixed_recorder.
MixedRecorder` under :func:`recordings_dir`; the meeting announces ``rec`` in our
``media`` switches (an MLS application message), so every glass shows "Recording by
<name>", and the glass is told the file's path (``recording``). Every member's audio
is mixed with our own microphone (the glass's plaintext Opus chunks); the video is a
screen share while there is one, else our own camera while we are the one who last
started speaking (the glass's VP8 chunks of its highest layer), else the stage's focus.
The file is finished when the user stops, when the meeting ends for us and when the
engine stops.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..media.errors import MediaError
from ..media.mixed_recorder import MixedRecorder, Source
from ..meeting import events as ev
from ..meeting.meeting import Meeting, Phase
from ..meeting.speakers import Choice, SpeakerTracker
from ..wire import StreamKind, WireError, unpack_payload
from .glass_channel import GLASS_CHUNK_HEADER
from .glass_messages import Error, KeyframeRequest, Recording, ToGlass
from .session import MeetingSession

log = logging.getLogger("clave.engine.recording")

OWN = "self"
"""The source name of our own microphone and camera in the recording."""
OWN_VIDEO_FRESH = 1.0
"""Seconds after our camera's last chunk that its picture may still be shown (camera off:
the glass sends nothing, and a frozen picture must not stand in for us)."""
KEYFRAME_ASK_EVERY = 1.0
"""Seconds between two keyframe requests to our glass for the recording."""
WRITE_FAILED = (
    "The recording stopped: its file could not be written (is the disk full?). "
    "What was recorded until then is kept."
)


def recordings_dir() -> Path:
    """``$CLAVE_RECORDINGS_DIR``, else ``$XDG_DATA_HOME/clave/recordings``, else
    ``~/.local/share/clave/recordings``."""
    explicit = os.environ.get("CLAVE_RECORDINGS_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "clave" / "recordings"


def shown_source(choice: Choice | None) -> Source | None:
    """Whose picture a recording shows: a screen share, else the stage's focus (a pin,
    else the most recent speaker), else the first on stage."""
    if choice is None:
        return None
    if choice.screen:
        return (min(choice.screen), StreamKind.screen)
    leaf = choice.focus if choice.focus is not None else next(iter(choice.order), None)
    return None if leaf is None else (leaf, StreamKind.video)


class GlassRecording:
    """At most one recording at a time, written by this engine for its glass."""

    def __init__(
        self,
        send: Callable[[ToGlass], None],
        meeting: Callable[[], Meeting | None],
        stage: Callable[[], Choice | None],
        directory: Callable[[], Path] = recordings_dir,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._meeting = meeting
        self._stage = stage
        self._directory = directory
        self._clock = clock
        self._speech = SpeakerTracker(clock)
        """Who speaks, ourselves included (the stage never puts us on it)."""
        self._own_layer = -1
        """The simulcast layer of our camera being recorded (the highest the glass sends)."""
        self._own_video_at = -OWN_VIDEO_FRESH
        self._keyframe_asked_at = -KEYFRAME_ASK_EVERY
        self.recorder: MixedRecorder | None = None
        self.path: str | None = None
        """The file being written, or the last one finished."""

    @property
    def on(self) -> bool:
        return self.recorder is not None

    async def start(self, session: MeetingSession) -> None:
        """Open a new file and announce that we record (MediaError: no file)."""
        if self.recorder is not None:  # a reloaded glass asks again: tell it
            self._send(Recording(on=True, path=self.path))
            return
        folder = self._directory()
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise MediaError(f"cannot create {folder}: {exc.strerror}") from None
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        path = folder / f"clave-{stamp}.webm"
        for n in range(2, 100):
            if not path.exists():
                break
            path = folder / f"clave-{stamp}-{n}.webm"
        self.recorder = MixedRecorder(path)
        self.path = self.recorder.path
        self._own_layer = -1  # the new file's decoder starts from a keyframe
        self._send(Recording(on=True, path=self.path))
        await session.act(lambda m: m.set_recording(True))

    async def stop(self, session: MeetingSession | None) -> None:
        """Finish the file and announce that we no longer record."""
        self.close()
        if session is not None and not session.closed.is_set():
            await session.act(lambda m: m.set_recording(False))

    def close(self) -> None:
        """Finish the file (the meeting is over for us, or the engine stops)."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        try:
            recorder.close()
        except MediaError as exc:
            log.warning("recording not finished: %s", type(exc).__name__)
        self._send(Recording(on=False, path=self.path))

    def failed(self, exc: MediaError) -> None:
        """The file cannot be written on (a full disk): stop, say so to the glass and
        to everyone (the announcement goes with the next frames the core sends)."""
        log.warning("recording stopped: %s", type(exc).__name__)
        self.close()
        self._send(Error(message=WRITE_FAILED))
        meeting = self._meeting()
        if meeting is not None and meeting.phase is Phase.in_meeting:
            meeting.set_recording(False)

    def frame(self, event: ev.MediaFrameDecrypted) -> bool:
        """A decrypted frame of a member; False if its video needs a keyframe."""
        recorder = self.recorder
        if recorder is None:
            return True
        try:
            _, data = unpack_payload(event.payload)
        except WireError:
            return True
        source = (event.sender, event.kind)
        try:
            if event.kind == StreamKind.audio:
                recorder.audio(source, data)
                self._speech.heard(event.sender, len(data))
            elif not recorder.video(source, data):
                return not recorder.needs_keyframe(source)
            recorder.show(self._shown())
            recorder.advance()
        except MediaError as exc:
            self.failed(exc)
        return True

    def own(self, chunk: bytes, session: MeetingSession | None) -> None:
        """A chunk the glass captured (``GLASS_CHUNK_HEADER`` + codec bytes): our own
        microphone goes into the mix while the others can hear it (``session``: media
        may be sent; nothing while a host muted us)."""
        recorder = self.recorder
        head = GLASS_CHUNK_HEADER.size
        if recorder is None or session is None or len(chunk) <= head:
            return
        kind, flags, _ = GLASS_CHUNK_HEADER.unpack_from(chunk)
        data = chunk[head:]
        try:
            if kind == StreamKind.audio and not session.meeting.muted_by:
                recorder.audio((OWN, StreamKind.audio), data)
                own = session.meeting.own_leaf
                if own is not None:
                    self._speech.heard(own, len(data))
            elif kind == StreamKind.video:
                self._own_video(recorder, (flags >> 1) & 3, data)
            recorder.show(self._shown())
        except MediaError as exc:
            self.failed(exc)

    def _own_video(self, recorder: MixedRecorder, layer: int, data: bytes) -> None:
        """Our camera's chunk of simulcast ``layer``: only the highest layer is decoded
        (a new higher one starts over from a keyframe, asked of the glass)."""
        source = (OWN, StreamKind.video)
        if layer > self._own_layer:
            self._own_layer = layer
            recorder.forget(source)
        if layer != self._own_layer:
            return
        if recorder.video(source, data):
            self._own_video_at = self._clock()
        elif recorder.needs_keyframe(source):
            now = self._clock()
            if now - self._keyframe_asked_at >= KEYFRAME_ASK_EVERY:
                self._keyframe_asked_at = now
                self._send(KeyframeRequest(kind="video", layer=layer))

    def _shown(self) -> Source | None:
        """A screen share; else our camera while we last started speaking (and it is
        on); else the stage's focus (:func:`shown_source`)."""
        choice = self._stage()
        if choice is None or not choice.screen:
            meeting = self._meeting()
            speaking = self._speech.speaking()
            own = meeting.own_leaf if meeting is not None else None
            fresh = self._clock() - self._own_video_at < OWN_VIDEO_FRESH
            if own is not None and speaking[:1] == (own,) and fresh:
                return (OWN, StreamKind.video)
        return shown_source(choice)


__all__ = ["OWN", "GlassRecording", "recordings_dir", "shown_source"]
