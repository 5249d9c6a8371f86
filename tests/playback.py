"""A recording as PyAV plays it back, for the recording tests of several folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass
class Played:
    kinds: list[str]
    """The file's stream types, sorted: ``["audio", "video"]``."""
    duration: float
    """Seconds, as the container says."""
    video: int
    """Pictures decoded."""
    audio: int
    """Audio frames decoded."""
    pcm: np.ndarray
    """Every decoded audio sample, in order."""
    chroma: list[float]
    """The mean of each picture's V plane (red pictures high, blue ones low)."""


def play(path: Path) -> Played:
    """Open ``path`` with PyAV and decode every frame of every stream."""
    with av.open(str(path)) as container:
        kinds = sorted(s.type for s in container.streams)
        duration = (container.duration or 0) / 1_000_000
        chroma: list[float] = []
        samples: list[np.ndarray] = []
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                planes = frame.to_ndarray(format="yuv420p")
                chroma.append(float(planes[planes.shape[0] * 5 // 6 :].mean()))
            else:
                samples.append(frame.to_ndarray().reshape(-1))
    pcm = np.concatenate(samples) if samples else np.zeros(0)
    return Played(kinds, duration, len(chroma), len(samples), pcm, chroma)
