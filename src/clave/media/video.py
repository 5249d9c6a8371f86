"""VP8/VP9 encoder and decoder tuned for real-time conferencing (libvpx + FFmpeg)."""

from __future__ import annotations

import threading
from fractions import Fraction
from typing import Any, Literal

import av
import av.error
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType

from clave.media.bitstream import keyframe_size
from clave.media.chunk import EncodedChunk
from clave.media.errors import MediaError

__all__ = ["DEFAULT_CPU_USED", "VideoCodec", "VideoDecoder", "VideoEncoder"]

VideoCodec = Literal["vp8", "vp9"]

_ENCODERS: dict[str, str] = {"vp8": "libvpx", "vp9": "libvpx-vp9"}
# FFmpeg's native decoders: faster than libvpx's and single-threaded here.
_DECODERS: dict[str, str] = {"vp8": "vp8", "vp9": "vp9"}
# libvpx speed in realtime mode: VP8 accepts -16..16, VP9 -9..9; higher is faster.
DEFAULT_CPU_USED: dict[str, int] = {"vp8": -12, "vp9": 8}
_US = 1_000_000
_TIME_BASE = Fraction(1, _US)


def _check_codec(codec: str) -> VideoCodec:
    if codec == "vp8":
        return "vp8"
    if codec == "vp9":
        return "vp9"
    raise MediaError(f"unsupported video codec {codec!r} (use 'vp8' or 'vp9')")


def _frame_time_us(frame: av.VideoFrame) -> int | None:
    if frame.pts is None or frame.time_base is None:
        return None
    return round(frame.pts * frame.time_base * _US)


class VideoEncoder:
    """Real-time VP8/VP9 encoder: one :class:`EncodedChunk` per input frame.

    libvpx runs with ``deadline=realtime``, a high ``cpu-used``, no lookahead
    (``lag-in-frames=0``, no alt-ref, no B-frames), error-resilient mode,
    CBR rate control, one thread and no frame dropping, so every ``encode``
    call returns exactly one chunk, immediately. A keyframe is produced on the
    first frame, after :meth:`request_keyframe`, and whenever
    ``keyframe_interval_s`` of media time has passed since the last one
    (``None`` or 0 disables periodic keyframes).

    Frames of another size or pixel format are converted. The encoder owns
    the frames it is given: it sets their ``pts``, ``time_base`` and
    ``pict_type``.
    """

    def __init__(
        self,
        codec: str = "vp8",
        width: int = 640,
        height: int = 360,
        fps: int = 30,
        bitrate: int = 500_000,
        keyframe_interval_s: float | None = 3.0,
        *,
        cpu_used: int | None = None,
        threads: int = 1,
    ) -> None:
        self.codec: VideoCodec = _check_codec(codec)
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise MediaError(f"video size must be positive and even, not {width}x{height}")
        if fps <= 0 or bitrate <= 0:
            raise MediaError("fps and bitrate must be positive")
        self.width = width
        self.height = height
        self.fps = fps
        self.bitrate = bitrate
        self.keyframe_interval_s = keyframe_interval_s or None
        self.cpu_used = DEFAULT_CPU_USED[self.codec] if cpu_used is None else cpu_used
        self.frames_encoded = 0
        self.keyframes_encoded = 0
        self.bytes_encoded = 0
        self._lock = threading.Lock()
        self._force_keyframe = True
        self._last_keyframe_us: int | None = None
        self._last_pts: int | None = None
        self._closed = False
        self._ctx = self._open(threads)

    def _open(self, threads: int) -> VideoCodecContext:
        try:
            ctx = av.CodecContext.create(_ENCODERS[self.codec], "w")
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaError(f"no {self.codec} encoder available: {exc}") from exc
        if not isinstance(ctx, VideoCodecContext):
            raise MediaError(f"{_ENCODERS[self.codec]} is not a video encoder")
        ctx.width = self.width
        ctx.height = self.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = _TIME_BASE  # pts in microseconds
        ctx.framerate = Fraction(self.fps)
        ctx.bit_rate = self.bitrate
        ctx.max_b_frames = 0
        ctx.gop_size = 1 << 30  # keyframes are forced from Python, by media time
        ctx.qmin = 4
        ctx.qmax = 56
        ctx.thread_count = threads
        rate = str(self.bitrate)
        options = {
            "deadline": "realtime",
            "cpu-used": str(self.cpu_used),
            "lag-in-frames": "0",
            "auto-alt-ref": "0",
            "error-resilient": "1",
            "drop-threshold": "0",
            "static-thresh": "0",
            "noise-sensitivity": "0",
            "max-intra-rate": "300",  # keyframes at most 3x an average frame
            "undershoot-pct": "100",
            "overshoot-pct": "15",
            # minrate == maxrate == bit_rate selects CBR in FFmpeg's libvpx wrapper.
            "minrate": rate,
            "maxrate": rate,
            "bufsize": str(self.bitrate),  # 1 s of buffer, as WebRTC uses
        }
        if self.codec == "vp9":
            options.update({"row-mt": "0", "tile-columns": "0", "aq-mode": "3"})
        ctx.options = options
        try:
            ctx.open()
        except av.error.FFmpegError as exc:
            raise MediaError(f"cannot open {self.codec} encoder: {exc}") from exc
        return ctx

    def request_keyframe(self) -> None:
        """Make the next encoded frame a keyframe (e.g. a receiver joined or lost sync)."""
        with self._lock:
            self._force_keyframe = True

    def encode(self, frame: av.VideoFrame, timestamp_us: int | None = None) -> list[EncodedChunk]:
        """Encode one frame; returns one chunk (an empty list only if libvpx drops it).

        The timestamp is ``timestamp_us`` if given, else the frame's
        ``pts * time_base``, else ``frames_encoded / fps``. Timestamps are
        forced strictly increasing.
        """
        with self._lock:
            if self._closed:
                raise MediaError("encoder is flushed/closed")
            ts = timestamp_us if timestamp_us is not None else _frame_time_us(frame)
            if ts is None:
                ts = self.frames_encoded * _US // self.fps
            if self._last_pts is not None and ts <= self._last_pts:
                ts = self._last_pts + 1
            self._last_pts = ts
            size = (frame.width, frame.height)
            if size != (self.width, self.height) or frame.format.name != "yuv420p":
                frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
            force = self._force_keyframe or (
                self.keyframe_interval_s is not None
                and self._last_keyframe_us is not None
                and ts - self._last_keyframe_us >= self.keyframe_interval_s * _US
            )
            frame.pict_type = PictureType.I if force else PictureType.NONE
            frame.pts = ts
            frame.time_base = _TIME_BASE
            try:
                packets = self._ctx.encode(frame)
            except av.error.FFmpegError as exc:
                raise MediaError(f"{self.codec} encode failed: {exc}") from exc
            self._force_keyframe = False
            return self._chunks(packets, ts)

    def flush(self) -> list[EncodedChunk]:
        """Drain the encoder at end of stream (empty with these settings); closes it."""
        with self._lock:
            if self._closed:
                return []
            self._closed = True
            try:
                packets = self._ctx.encode(None)
            except av.error.FFmpegError as exc:
                raise MediaError(f"{self.codec} flush failed: {exc}") from exc
            return self._chunks(packets, self._last_pts or 0)

    def _chunks(self, packets: list[av.Packet[Any]], default_ts: int) -> list[EncodedChunk]:
        chunks = []
        for packet in packets:
            data = bytes(packet)
            if not data:
                continue
            ts = packet.pts if packet.pts is not None else default_ts
            keyframe = bool(packet.is_keyframe)
            if keyframe:
                self._last_keyframe_us = ts
                self.keyframes_encoded += 1
            self.frames_encoded += 1
            self.bytes_encoded += len(data)
            chunks.append(EncodedChunk(data, keyframe, ts, "video"))
        return chunks


class VideoDecoder:
    """VP8/VP9 decoder that waits for a keyframe and never raises on bad input.

    Until a keyframe has been decoded, and again after any decode error,
    ``needs_keyframe`` is True and delta frames are dropped (counted in
    ``frames_dropped``); the caller should ask the sender for a keyframe.
    Undecodable bytes count in ``errors`` and yield no frames.
    """

    def __init__(self, codec: str = "vp8") -> None:
        self.codec: VideoCodec = _check_codec(codec)
        self.frames_decoded = 0
        self.keyframes_decoded = 0
        self.frames_dropped = 0
        self.errors = 0
        self.last_error: str | None = None
        self.frame_size: tuple[int, int] | None = None
        self._needs_keyframe = True
        self._lock = threading.Lock()
        ctx = av.CodecContext.create(_DECODERS[self.codec], "r")
        if not isinstance(ctx, VideoCodecContext):
            raise MediaError(f"{_DECODERS[self.codec]} is not a video decoder")
        ctx.thread_count = 1  # no frame-threading delay: one frame out per packet
        self._ctx = ctx

    @property
    def needs_keyframe(self) -> bool:
        """True while delta frames are being dropped for want of a keyframe."""
        return self._needs_keyframe

    def reset(self) -> None:
        """Forget decoder state (e.g. after lost frames): wait for the next keyframe."""
        with self._lock:
            self._needs_keyframe = True
            self._ctx.flush_buffers()

    def decode(self, data: bytes) -> int:
        """Decode one encoded frame; returns the number of frames output (0 or 1)."""
        return len(self.decode_frames(data))

    def decode_frames(self, data: bytes) -> list[av.VideoFrame]:
        """Decode one encoded frame and return the decoded pictures."""
        with self._lock:
            if not data:  # an empty packet would put FFmpeg into draining (EOF) state
                self._fail("empty frame")
                return []
            size = keyframe_size(self.codec, data)
            if self._needs_keyframe and size is None:
                self.frames_dropped += 1
                return []
            try:
                frames = self._ctx.decode(av.Packet(data))
            except (av.error.FFmpegError, ValueError, MemoryError) as exc:
                self._fail(str(exc))
                return []
            if size is not None:
                self._needs_keyframe = False
                self.keyframes_decoded += 1
            if frames:
                self.frames_decoded += len(frames)
                self.frame_size = (frames[-1].width, frames[-1].height)
            return frames

    def _fail(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        self._needs_keyframe = True
        self._ctx.flush_buffers()
