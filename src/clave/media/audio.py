"""Synthetic tone source and 20 ms Opus encoder/decoder."""

from __future__ import annotations

import math
import threading
from collections import deque
from fractions import Fraction
from typing import Any

import av
import av.error
import numpy as np
import numpy.typing as npt
from av.audio.codeccontext import AudioCodecContext

from clave.media.chunk import EncodedChunk
from clave.media.errors import MediaError

__all__ = ["OPUS_FRAME_MS", "OpusDecoder", "OpusEncoder", "ToneSource"]

OPUS_FRAME_MS = 20
_US = 1_000_000
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def _layout(channels: int) -> str:
    if channels == 1:
        return "mono"
    if channels == 2:
        return "stereo"
    raise MediaError(f"channels must be 1 or 2, not {channels}")


def _frame_samples(sample_rate: int) -> int:
    return sample_rate * OPUS_FRAME_MS // 1000


class ToneSource:
    """A continuous sine tone in 20 ms s16 frames, ``pts`` counted in samples.

    Each frame has ``sample_rate * 0.02`` samples (960 at 48 kHz), format
    ``s16`` (interleaved), ``time_base = 1/sample_rate``.
    """

    def __init__(
        self,
        frequency: float = 440.0,
        sample_rate: int = 48000,
        channels: int = 1,
        amplitude: float = 0.3,
    ) -> None:
        self.layout = _layout(channels)
        if sample_rate <= 0 or not 0 < frequency < sample_rate / 2:
            raise MediaError(f"bad tone {frequency} Hz at {sample_rate} Hz")
        if not 0.0 <= amplitude <= 1.0:
            raise MediaError("amplitude must be within [0, 1]")
        self.frequency = frequency
        self.sample_rate = sample_rate
        self.channels = channels
        self.amplitude = amplitude
        self.samples_per_frame = _frame_samples(sample_rate)
        self.time_base = Fraction(1, sample_rate)
        self._lock = threading.Lock()
        self._next_index = 0

    @property
    def frame_count(self) -> int:
        """Index of the next frame ``next_frame()`` will produce."""
        return self._next_index

    def next_frame(self, index: int | None = None) -> av.AudioFrame:
        """Produce the next 20 ms frame, or frame ``index``; phase-continuous in time."""
        with self._lock:
            if index is None:
                index = self._next_index
            if index < 0:
                raise MediaError(f"frame index must be >= 0, not {index}")
            self._next_index = index + 1
        n = self.samples_per_frame
        start = index * n
        t = np.arange(start, start + n, dtype=np.float64)
        phase = 2.0 * math.pi * self.frequency / self.sample_rate
        wave = self.amplitude * 32767.0 * np.sin(phase * t)
        pcm = np.repeat(wave.astype(np.int16), self.channels).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout=self.layout)
        frame.sample_rate = self.sample_rate
        frame.pts = start
        frame.time_base = self.time_base
        return frame


DTX_BYTES = 3
"""With ``dtx``, libopus (through FFmpeg) encodes silence as packets of this many bytes or
fewer: a sender leaves them out, so a silent member sends no audio at all."""


class OpusEncoder:
    """libopus encoder producing exactly one 20 ms packet per 20 ms of input.

    Constrained VBR at ``bitrate`` (a 440 Hz tone at 32 kbit/s gives ~32.5).

    Input of any sample format, layout, rate or frame size is converted and
    re-framed. Chunk timestamps are those of the input samples each packet
    starts with (libopus's 6.5 ms lookahead is hidden: packet *k* carries the
    timestamp of input frame *k*). :meth:`flush` emits the final packets at
    end of stream.
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        channels: int = 1,
        bitrate: int = 32_000,
        *,
        application: str = "voip",
        dtx: bool = False,
    ) -> None:
        self.layout = _layout(channels)
        if sample_rate not in _OPUS_RATES:
            raise MediaError(f"Opus sample rate must be one of {_OPUS_RATES}, not {sample_rate}")
        if bitrate <= 0:
            raise MediaError("bitrate must be positive")
        self.sample_rate = sample_rate
        self.channels = channels
        self.bitrate = bitrate
        self.samples_per_frame = _frame_samples(sample_rate)
        self.frames_encoded = 0
        self.bytes_encoded = 0
        self._lock = threading.Lock()
        self._pending_ts: deque[int] = deque()
        self._last_ts: int | None = None
        self._pts = 0
        self._fifo: av.AudioFifo | None = None
        self._fifo_ts = 0  # timestamp of the first sample waiting in the fifo
        self._resampler: av.AudioResampler | None = None
        self._closed = False
        try:
            ctx = av.CodecContext.create("libopus", "w")
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaError(f"no libopus encoder available: {exc}") from exc
        if not isinstance(ctx, AudioCodecContext):
            raise MediaError("libopus is not an audio encoder")
        ctx.sample_rate = sample_rate
        ctx.layout = self.layout
        ctx.format = "s16"
        ctx.bit_rate = bitrate
        ctx.time_base = Fraction(1, sample_rate)
        options = {
            "application": application,
            "frame_duration": str(OPUS_FRAME_MS),
            "vbr": "constrained",  # unconstrained VBR spends ~1.5x the target on tones
        }
        if dtx:  # RFC 6716 section 2.1.9: silence becomes packets of DTX_BYTES or fewer
            options["dtx"] = "1"
        ctx.options = options
        try:
            ctx.open()
        except av.error.FFmpegError as exc:
            raise MediaError(f"cannot open Opus encoder: {exc}") from exc
        if ctx.frame_size != self.samples_per_frame:
            raise MediaError(f"libopus frame size {ctx.frame_size} is not 20 ms")
        self._ctx = ctx

    @property
    def extradata(self) -> bytes:
        """The OpusHead (RFC 7845) for this stream, as a container needs it."""
        return bytes(self._ctx.extradata or b"")

    def _fits(self, frame: av.AudioFrame) -> bool:
        return (
            frame.samples == self.samples_per_frame
            and frame.sample_rate == self.sample_rate
            and frame.format.name == "s16"
            and frame.layout.nb_channels == self.channels
        )

    def encode(self, frame: av.AudioFrame, timestamp_us: int | None = None) -> list[EncodedChunk]:
        """Encode audio; returns one chunk per complete 20 ms of input so far.

        The timestamp is ``timestamp_us`` if given, else ``pts * time_base``
        of the frame, else continues from the previous frame.
        """
        with self._lock:
            if self._closed:
                raise MediaError("encoder is flushed/closed")
            ts = timestamp_us
            if ts is None and frame.pts is not None and frame.time_base is not None:
                ts = round(frame.pts * frame.time_base * _US)
            if self._fifo is None and self._fits(frame):
                if ts is None:
                    ts = self._next_ts()
                return self._encode_frame(frame, ts)
            return self._encode_via_fifo(frame, ts)

    def _next_ts(self) -> int:
        if self._last_ts is None:
            return 0
        return self._last_ts + OPUS_FRAME_MS * 1000

    def _encode_via_fifo(self, frame: av.AudioFrame, ts: int | None) -> list[EncodedChunk]:
        if self._resampler is None:
            self._resampler = av.AudioResampler("s16", self.layout, self.sample_rate)
        if self._fifo is None:
            self._fifo = av.AudioFifo()
        fifo = self._fifo
        frame.pts = None  # the fifo keeps its own sample count
        if fifo.samples == 0:
            self._fifo_ts = self._next_ts() if ts is None else ts
        chunks: list[EncodedChunk] = []
        for converted in self._resampler.resample(frame):
            fifo.write(converted)
        while fifo.samples >= self.samples_per_frame:
            piece = fifo.read(self.samples_per_frame)
            if piece is None:
                break
            chunks += self._encode_frame(piece, self._fifo_ts)
            self._fifo_ts += OPUS_FRAME_MS * 1000
        return chunks

    def _encode_frame(self, frame: av.AudioFrame, ts: int) -> list[EncodedChunk]:
        if self._last_ts is not None and ts <= self._last_ts:
            ts = self._last_ts + 1
        self._last_ts = ts
        frame.pts = self._pts
        frame.time_base = Fraction(1, self.sample_rate)
        self._pts += frame.samples
        self._pending_ts.append(ts)
        try:
            packets = self._ctx.encode(frame)
        except av.error.FFmpegError as exc:
            raise MediaError(f"Opus encode failed: {exc}") from exc
        return self._chunks(packets)

    def _chunks(self, packets: list[av.Packet[Any]]) -> list[EncodedChunk]:
        chunks = []
        for packet in packets:
            data = bytes(packet)
            if not data:
                continue
            if self._pending_ts:
                ts = self._pending_ts.popleft()
            else:  # the encoder's lookahead tail, after the last input frame
                ts = (self._last_ts or 0) + OPUS_FRAME_MS * 1000
                self._last_ts = ts
            self.frames_encoded += 1
            self.bytes_encoded += len(data)
            chunks.append(EncodedChunk(data, True, ts, "audio"))
        return chunks

    def flush(self) -> list[EncodedChunk]:
        """End of stream: encode buffered samples (padded with silence) and drain.

        Afterwards the encoder is closed; :meth:`encode` raises MediaError.
        """
        with self._lock:
            if self._closed:
                return []
            chunks: list[EncodedChunk] = []
            fifo = self._fifo
            if fifo is not None and fifo.samples:
                piece = fifo.read(fifo.samples, partial=True)
                if piece is not None:
                    pcm = np.zeros((1, self.samples_per_frame * self.channels), dtype=np.int16)
                    have = piece.to_ndarray().reshape(-1)
                    pcm[0, : have.size] = have
                    padded = av.AudioFrame.from_ndarray(pcm, format="s16", layout=self.layout)
                    padded.sample_rate = self.sample_rate
                    chunks += self._encode_frame(padded, self._fifo_ts)
            self._closed = True
            try:
                chunks += self._chunks(self._ctx.encode(None))
            except av.error.FFmpegError as exc:
                raise MediaError(f"Opus flush failed: {exc}") from exc
            return chunks


class OpusDecoder:
    """Opus decoder (FFmpeg's native one); never raises on bad input.

    Output frames are float planar (``fltp``) at ``sample_rate``.
    Undecodable packets count in ``errors`` and yield nothing.
    """

    def __init__(self, sample_rate: int = 48000, channels: int = 1) -> None:
        self.layout = _layout(channels)
        if sample_rate not in _OPUS_RATES:
            raise MediaError(f"Opus sample rate must be one of {_OPUS_RATES}, not {sample_rate}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.packets_decoded = 0
        self.samples_decoded = 0
        self.errors = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        ctx = av.CodecContext.create("opus", "r")
        if not isinstance(ctx, AudioCodecContext):
            raise MediaError("opus is not an audio decoder")
        ctx.sample_rate = sample_rate
        ctx.layout = self.layout
        self._ctx = ctx

    def decode(self, data: bytes) -> int:
        """Decode one packet; returns the number of samples (per channel) output."""
        return sum(frame.samples for frame in self.decode_frames(data))

    def decode_frames(self, data: bytes) -> list[av.AudioFrame]:
        """Decode one packet and return the decoded audio frames."""
        with self._lock:
            if not data:
                self.errors += 1
                self.last_error = "empty packet"
                return []
            try:
                frames = self._ctx.decode(av.Packet(data))
            except (av.error.FFmpegError, ValueError, MemoryError) as exc:
                self.errors += 1
                self.last_error = str(exc)
                self._ctx.flush_buffers()
                return []
            self.packets_decoded += 1
            self.samples_decoded += sum(frame.samples for frame in frames)
            return frames

    def decode_pcm(self, data: bytes) -> npt.NDArray[np.float32]:
        """Decode one packet to float32 samples shaped (channels, samples)."""
        frames = self.decode_frames(data)
        if not frames:
            return np.zeros((self.channels, 0), dtype=np.float32)
        arrays = [np.asarray(frame.to_ndarray(), dtype=np.float32) for frame in frames]
        return np.concatenate(arrays, axis=1)
