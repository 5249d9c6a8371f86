"""A meeting recording: every sender's Opus audio mixed, one sender's video, one WebM file.

Unlike :class:`~clave.media.recorder.WebMRecorder` (one sender's chunks, muxed as they
came) this decodes and re-encodes: each sender's Opus packets are decoded and summed
into 20 ms slots of one timeline, each sender's VP8 frames are decoded and the picture
of the *shown* sender (:meth:`MixedRecorder.show`: the active speaker, a screen share)
is encoded at a fixed frame rate, fitted into the file's frame with black bars when its
shape differs (a portrait window or a 4:3 share is never stretched). The timeline is
the arrival time (an injected clock) since the first packet or frame: senders' capture
clocks need not agree, and time spent before any media (waiting in the lobby) is not
recorded. A slot is written once it is ``latency`` seconds old
(:meth:`MixedRecorder.advance`); later packets for it are dropped and counted. The
encoded chunks go to a :class:`WebMRecorder`, which writes VP8 + Opus.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import av
import numpy as np
import numpy.typing as npt

from clave.media.audio import OpusDecoder, OpusEncoder
from clave.media.bitstream import keyframe_size
from clave.media.errors import MediaError
from clave.media.recorder import WebMRecorder
from clave.media.video import VideoDecoder, VideoEncoder

__all__ = ["MixedRecorder", "RecordingCounts", "fit"]

RATE = 48_000
SLOT = 960
"""Samples in one 20 ms audio slot (mono, 48 kHz)."""
SLOT_S = SLOT / RATE
LATENCY_S = 0.3
"""How long a slot stays open for late packets before it is written."""
MAX_LEAD_S = 1.0
"""A sender whose packets run this far ahead of their arrival time is put back in step."""

SHOWN_KEPT = 64
"""Pictures whose source :attr:`MixedRecorder.last_shown` keeps."""

Source = Hashable
"""Whatever tells senders (and their streams) apart: a leaf, ``(leaf, kind)``."""


@dataclass
class RecordingCounts:
    """What went into the file and what did not (for reports and tests)."""

    audio_in: int = 0
    """Opus packets received and decoded."""
    video_in: int = 0
    """VP8 frames received and decoded."""
    audio_slots: int = 0
    """20 ms slots written (mixed speech or silence)."""
    video_frames: int = 0
    """Pictures written."""
    late: int = 0
    """Audio packets that came after their slot was written (dropped)."""
    undecodable: int = 0
    """Packets or frames that did not decode (a VP8 decoder then waits for a keyframe)."""
    shown: Counter[Source | None] = field(default_factory=Counter)
    """Pictures written, by whose picture it was (None: blank)."""


def _codec_of(data: bytes) -> str | None:
    """The codec of a keyframe (None: not a keyframe of VP8 or VP9)."""
    for codec in ("vp8", "vp9"):
        if keyframe_size(codec, data) is not None:
            return codec
    return None


def _black_planes(width: int, height: int) -> npt.NDArray[np.uint8]:
    """A black yuv420p picture as PyAV lays it out (Y rows, then U, then V)."""
    planes = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
    planes[:height] = 16
    return planes


def _black(width: int, height: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(_black_planes(width, height), format="yuv420p")


def fit(picture: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``picture`` scaled to fit ``width`` x ``height`` whole, centred on black (as is if
    its shape is the frame's, within a pixel: the encoder scales it)."""
    pw, ph = picture.width, picture.height
    if pw <= 0 or ph <= 0 or abs(pw * height - ph * width) <= max(pw, ph):
        return picture
    scale = min(width / pw, height / ph)
    w = max(2, min(width, round(pw * scale)) // 4 * 4)
    h = max(2, min(height, round(ph * scale)) // 4 * 4)
    small = picture.reformat(width=w, height=h, format="yuv420p").to_ndarray()
    planes = _black_planes(width, height)
    x, y = (width - w) // 4 * 2, (height - h) // 4 * 2
    planes[y : y + h, x : x + w] = small[:h]
    # U and V are quarter-size planes, stored two rows of the width per chroma row pair.
    for plane in range(2):
        src = small[h + plane * h // 4 : h + (plane + 1) * h // 4].reshape(h // 2, w // 2)
        dst = planes[height + plane * height // 4 : height + (plane + 1) * height // 4]
        dst = dst.reshape(height // 2, width // 2)
        dst[y // 2 : y // 2 + h // 2, x // 2 : x // 2 + w // 2] = src
    return av.VideoFrame.from_ndarray(planes, format="yuv420p")


class MixedRecorder:
    """Mix audio from many senders and write the shown sender's video, re-encoded."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int = 640,
        height: int = 360,
        fps: int = 15,
        latency: float = LATENCY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= fps <= 60:
            raise MediaError(f"recording frame rate must be 1..60, not {fps}")
        self.counts = RecordingCounts()
        self._clock = clock
        self._latency = latency
        self._fps = fps
        self._file = WebMRecorder(path, width=width, height=height, fps=fps)
        self.path = self._file.path
        self._opus = OpusEncoder(RATE, 1, 64_000)
        self._vp8 = VideoEncoder("vp8", width, height, fps, 800_000)
        self._origin: float | None = None
        """When the first packet or frame came: the file's time 0."""
        self._mix: dict[int, npt.NDArray[np.float32]] = {}
        self._next_sample: dict[Source, int] = {}
        self._written_slots = 0
        self._written_frames = 0
        self._audio_decoders: dict[Source, OpusDecoder] = {}
        self._video_decoders: dict[Source, VideoDecoder] = {}
        self._pictures: dict[Source, av.VideoFrame] = {}
        self._newest: Source | None = None
        self._shown: Source | None = None
        self._size = (width, height)
        self._blank = _black(width, height)
        self._fitted: tuple[av.VideoFrame | None, av.VideoFrame] = (None, self._blank)
        """The last picture fitted to the file's shape, and the result (a picture is
        usually written several times: fitted once)."""
        self.last_shown: deque[Source | None] = deque(maxlen=SHOWN_KEPT)
        """Whose picture each of the last pictures written was (None: blank)."""
        self._closed = False

    # ------------------------------------------------------------------ input

    def audio(self, source: Source, data: bytes) -> None:
        """An Opus packet from ``source``, arriving now."""
        decoder = self._audio_decoders.get(source)
        if decoder is None:
            decoder = self._audio_decoders[source] = OpusDecoder(RATE, 1)
        pcm = decoder.decode_pcm(data)
        if pcm.shape[1] == 0:
            self.counts.undecodable += 1
            return
        self.counts.audio_in += 1
        arrived = round(self._elapsed() * RATE)
        start = self._next_sample.get(source, arrived)
        if start < arrived - round(self._latency * RATE) or start > arrived + MAX_LEAD_S * RATE:
            start = arrived  # after silence (DTX sends nothing) or a burst: back in step
        self._next_sample[source] = start + pcm.shape[1]
        self._add(start, pcm[0])

    def video(self, source: Source, data: bytes) -> bool:
        """A VP8 or VP9 frame from ``source``; False if it could not be decoded (the
        caller asks the sender for a keyframe when :meth:`needs_keyframe` says so).

        The codec is the one of the sender's keyframe (a page may send VP9), and a
        keyframe of the other codec while the decoder waits for one starts over."""
        decoder = self._video_decoders.get(source)
        if decoder is None or decoder.needs_keyframe:
            codec = _codec_of(data)
            if codec is None and decoder is None:
                self.counts.undecodable += 1  # a delta before any keyframe
                return False
            if codec is not None and (decoder is None or decoder.codec != codec):
                decoder = self._video_decoders[source] = VideoDecoder(codec)
        assert decoder is not None
        frames = decoder.decode_frames(data)
        if not frames:
            self.counts.undecodable += 1
            return False
        self.counts.video_in += 1
        self._elapsed()  # the first media starts the timeline
        self._pictures[source] = frames[-1]
        self._newest = source
        return True

    def needs_keyframe(self, source: Source) -> bool:
        """After :meth:`video` returned False: whether to ask ``source`` for a keyframe."""
        decoder = self._video_decoders.get(source)
        return decoder is None or decoder.needs_keyframe

    def show(self, source: Source | None) -> None:
        """Whose picture to record from now on (None, or one with no picture yet: the
        sender whose picture came last)."""
        self._shown = source

    def forget(self, source: Source) -> None:
        """A sender left: its decoders and picture go."""
        self._audio_decoders.pop(source, None)
        self._video_decoders.pop(source, None)
        self._pictures.pop(source, None)
        self._next_sample.pop(source, None)
        if self._newest == source:
            self._newest = None

    # ------------------------------------------------------------------ output

    def _elapsed(self) -> float:
        """Seconds since the first media (which starts the file's timeline now)."""
        now = self._clock()
        if self._origin is None:
            self._origin = now
        return now - self._origin

    def advance(self) -> None:
        """Write every audio slot and picture older than the latency (nothing before
        the first media)."""
        if self._origin is not None:
            self._write_until(self._elapsed() - self._latency)

    def close(self) -> RecordingCounts:
        """Write everything received, finish the file (idempotent; playable even if
        nothing came)."""
        if self._closed:
            return self.counts
        self._closed = True
        try:
            # No media at all: one blank picture (and its silence), so the file still plays.
            end = 1 / self._fps if self._origin is None else self._elapsed()
            last = max(self._mix, default=-1)
            self._write_until(max(end, (last + 1) * SLOT_S))
            for chunk in self._opus.flush() + self._vp8.flush():
                self._file.write(chunk)
        finally:
            self._file.close()
        return self.counts

    def _add(self, start: int, pcm: npt.NDArray[np.float32]) -> None:
        pos = 0
        while pos < len(pcm):
            slot, offset = divmod(start + pos, SLOT)
            take = min(SLOT - offset, len(pcm) - pos)
            if slot < self._written_slots:
                self.counts.late += 1
                pos += take
                continue
            buf = self._mix.get(slot)
            if buf is None:
                buf = self._mix[slot] = np.zeros(SLOT, dtype=np.float32)
            buf[offset : offset + take] += pcm[pos : pos + take]
            pos += take

    def _write_until(self, seconds: float) -> None:
        if seconds <= 0:
            return
        for slot in range(self._written_slots, int(seconds / SLOT_S)):
            pcm = self._mix.pop(slot, None)
            self._write_audio(slot, pcm)
            self._written_slots = slot + 1
        for index in range(self._written_frames, int(seconds * self._fps)):
            self._write_picture(index)
            self._written_frames = index + 1

    def _fit(self, picture: av.VideoFrame) -> av.VideoFrame:
        if self._fitted[0] is not picture:
            self._fitted = (picture, fit(picture, *self._size))
        return self._fitted[1]

    def _write_audio(self, slot: int, pcm: npt.NDArray[np.float32] | None) -> None:
        samples = np.zeros(SLOT, dtype=np.int16)
        if pcm is not None:
            samples = (np.clip(pcm, -1.0, 1.0) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, SLOT), format="s16", layout="mono")
        frame.sample_rate = RATE
        for chunk in self._opus.encode(frame, slot * SLOT * 1_000_000 // RATE):
            self._file.write(chunk)
        self.counts.audio_slots += 1

    def _write_picture(self, index: int) -> None:
        source = self._shown if self._shown in self._pictures else self._newest
        if source not in self._pictures:
            source = None
        picture = self._blank if source is None else self._fit(self._pictures[source])
        self.last_shown.append(source)
        self.counts.shown[source] += 1
        for chunk in self._vp8.encode(picture, index * 1_000_000 // self._fps):
            self._file.write(chunk)
        self.counts.video_frames += 1
