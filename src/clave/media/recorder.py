"""Mux received VP8/VP9 and Opus chunks into a WebM file, without re-encoding."""

from __future__ import annotations

import os
import threading
from collections import deque
from fractions import Fraction
from types import TracebackType

import av
import av.error
from av.container import OutputContainer
from av.stream import Stream

from clave.media.bitstream import keyframe_size
from clave.media.chunk import EncodedChunk, MediaKind
from clave.media.errors import MediaError
from clave.media.video import VideoCodec

__all__ = ["WebMRecorder"]

_TIME_BASE = Fraction(1, 1_000_000)
_OPUS_PACKET_US = 20_000
_FALLBACK_SIZE = (640, 360)


class WebMRecorder:
    """Write one sender's encoded video and/or audio chunks to a WebM file.

    The file header needs the video size, so nothing is written before the
    first video keyframe: earlier audio is held back (at most ``max_buffered``
    chunks) and earlier delta frames are dropped, because they cannot be
    decoded. The size comes from ``width``/``height`` or else from the
    keyframe itself. Timestamps are shifted so the file starts at 0 and are
    forced strictly increasing per track; chunks from before the start are
    dropped. Call :meth:`close` (or use ``with``) to finish the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        video: bool = True,
        audio: bool = True,
        video_codec: str = "vp8",
        width: int | None = None,
        height: int | None = None,
        fps: int = 30,
        audio_sample_rate: int = 48000,
        audio_channels: int = 1,
        max_buffered: int = 500,
    ) -> None:
        if not video and not audio:
            raise MediaError("a recording needs video, audio or both")
        if video_codec not in ("vp8", "vp9"):
            raise MediaError(f"unsupported video codec {video_codec!r} (use 'vp8' or 'vp9')")
        if audio_channels not in (1, 2):
            raise MediaError(f"audio channels must be 1 or 2, not {audio_channels}")
        self.path = os.fspath(path)
        self.video_codec: VideoCodec = "vp8" if video_codec == "vp8" else "vp9"
        self.video_packets = 0
        self.audio_packets = 0
        self.dropped = 0
        self._video = video
        self._audio = audio
        self._size = (width, height) if width and height else None
        self._fps = fps
        self._sample_rate = audio_sample_rate
        self._channels = audio_channels
        self._pending: deque[EncodedChunk] = deque()
        self._max_buffered = max_buffered
        self._lock = threading.Lock()
        self._origin: int | None = None
        self._last: dict[MediaKind, int] = {}
        self._streams: dict[MediaKind, Stream] = {}
        self._closed = False
        try:
            # FFmpeg opens the file only when the header is written; create it
            # now so that a bad path fails here rather than mid-meeting.
            with open(self.path, "wb"):
                pass
            self._container: OutputContainer = av.open(self.path, "w", format="webm")
        except (av.error.FFmpegError, OSError) as exc:
            raise MediaError(f"cannot create {self.path}: {exc}") from exc

    @property
    def started(self) -> bool:
        """True once the file header is written (after the first video keyframe)."""
        return self._origin is not None

    def __enter__(self) -> WebMRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, chunk: EncodedChunk) -> bool:
        """Record a chunk; returns False if it was dropped (see class docstring)."""
        with self._lock:
            if self._closed:
                raise MediaError("recorder is closed")
            wanted = self._video if chunk.kind == "video" else self._audio
            if not wanted:
                self.dropped += 1
                return False
            if self._origin is not None:
                return self._mux(chunk)
            if chunk.kind == "audio" and self._video:
                if len(self._pending) >= self._max_buffered:
                    self._pending.popleft()
                    self.dropped += 1
                self._pending.append(chunk)
                return True
            if chunk.kind == "video" and not chunk.keyframe:
                self.dropped += 1
                return False
            if chunk.kind == "video" and self._size is None:
                self._size = keyframe_size(self.video_codec, chunk.data)
            self._start(min([chunk.timestamp_us] + [c.timestamp_us for c in self._pending]))
            for held in self._pending:
                self._mux(held)
            self._pending.clear()
            return self._mux(chunk)

    def _start(self, origin: int) -> None:
        container = self._container
        try:
            if self._video:
                width, height = self._size or _FALLBACK_SIZE
                self._streams["video"] = container.add_mux_stream(
                    self.video_codec, rate=self._fps, width=width, height=height
                )
            if self._audio:
                # An encoder-backed stream, so FFmpeg writes a proper OpusHead
                # (channels, 312-sample pre-skip as libopus produces).
                layout = "mono" if self._channels == 1 else "stereo"
                self._streams["audio"] = container.add_stream(
                    "libopus", rate=self._sample_rate, layout=layout
                )
            container.start_encoding()
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaError(f"cannot start WebM file {self.path}: {exc}") from exc
        self._origin = origin

    def _mux(self, chunk: EncodedChunk) -> bool:
        assert self._origin is not None
        ts = chunk.timestamp_us - self._origin
        if ts < 0:
            self.dropped += 1
            return False
        last = self._last.get(chunk.kind)
        if last is not None and ts <= last:
            ts = last + 1
        packet = av.Packet(chunk.data)
        packet.stream = self._streams[chunk.kind]
        packet.time_base = _TIME_BASE
        packet.pts = ts
        packet.dts = ts
        packet.is_keyframe = chunk.keyframe
        if chunk.kind == "audio":
            packet.duration = _OPUS_PACKET_US
        try:
            self._container.mux(packet)
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaError(f"cannot write to {self.path}: {exc}") from exc
        self._last[chunk.kind] = ts
        if chunk.kind == "video":
            self.video_packets += 1
        else:
            self.audio_packets += 1
        return True

    def close(self) -> None:
        """Flush and finish the file (idempotent). Held-back audio is written
        even if no video keyframe ever came (the video track is then empty)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._origin is None:
                    pending = list(self._pending)
                    self._pending.clear()
                    self._start(min((c.timestamp_us for c in pending), default=0))
                    for held in pending:
                        self._mux(held)
            finally:
                try:
                    self._container.close()
                except (av.error.FFmpegError, ValueError) as exc:
                    raise MediaError(f"cannot finish {self.path}: {exc}") from exc
