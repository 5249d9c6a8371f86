"""Media for the headless participant: PyAV sources, encoders, decoders, recorder.

Everything here is synchronous and thread-safe per instance (each object holds
its own lock and codec context; there is no global state), so the asyncio
engine may call it directly or from a thread executor.
"""

from __future__ import annotations

from clave.media.audio import OPUS_FRAME_MS, OpusDecoder, OpusEncoder, ToneSource
from clave.media.bitstream import is_keyframe, keyframe_size
from clave.media.chunk import EncodedChunk, MediaKind
from clave.media.counter import MediaCounter
from clave.media.errors import MediaError
from clave.media.pacing import Pacer
from clave.media.pattern import TestPatternSource
from clave.media.recorder import WebMRecorder
from clave.media.video import DEFAULT_CPU_USED, VideoCodec, VideoDecoder, VideoEncoder

__all__ = [
    "DEFAULT_CPU_USED",
    "OPUS_FRAME_MS",
    "EncodedChunk",
    "MediaCounter",
    "MediaError",
    "MediaKind",
    "OpusDecoder",
    "OpusEncoder",
    "Pacer",
    "TestPatternSource",
    "ToneSource",
    "VideoCodec",
    "VideoDecoder",
    "VideoEncoder",
    "WebMRecorder",
    "is_keyframe",
    "keyframe_size",
]
