"""The unit that leaves an encoder and enters a decoder or recorder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from clave.media.errors import MediaError

__all__ = ["EncodedChunk", "MediaKind"]

MediaKind = Literal["audio", "video"]


@dataclass(frozen=True, slots=True)
class EncodedChunk:
    """One encoded frame: a VP8/VP9 frame or a 20 ms Opus packet.

    ``timestamp_us`` is the capture time of the frame's first sample in
    microseconds on the sender's media clock (starts near 0 for the built-in
    sources). ``keyframe`` is always True for audio.
    """

    data: bytes
    keyframe: bool
    timestamp_us: int
    kind: MediaKind

    def __post_init__(self) -> None:
        if self.kind not in ("audio", "video"):
            raise MediaError(f"chunk kind must be 'audio' or 'video', not {self.kind!r}")
