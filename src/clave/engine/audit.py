"""Check recorded relay traffic for plaintext: media, chat, names, keys.

Used by ``clave demo`` and the end-to-end tests. A sender's encoded media
frames are cut into 32-byte windows (every 16 bytes, so any copy of 47 or
more consecutive bytes of a frame contains a whole window); the recorded
traffic is scanned at every offset. Chat texts, display names and keys are
searched for whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

WINDOW = 32
STRIDE = 16


@dataclass(frozen=True)
class LeakReport:
    bytes_scanned: int
    frames_checked: int
    windows_checked: int
    frame_windows_found: int
    texts_checked: int
    texts_found: tuple[str, ...]
    keys_checked: int
    keys_found: int

    @property
    def clean(self) -> bool:
        return not (self.frame_windows_found or self.texts_found or self.keys_found)


def _windows(frames: Iterable[bytes]) -> set[bytes]:
    out: set[bytes] = set()
    for f in frames:
        for i in range(0, len(f) - WINDOW + 1, STRIDE):
            out.add(f[i : i + WINDOW])
    return out


def _count_windows(stream: bytes, windows: set[bytes]) -> int:
    """How many offsets of ``stream`` start one of ``windows`` (numpy prefilter, exact check)."""
    if len(stream) < WINDOW or not windows:
        return 0
    buf = np.frombuffer(stream, dtype=np.uint8)
    n = len(stream) - WINDOW + 1
    # 8-byte big-endian prefix at every offset, then exact comparison on candidates.
    prefix = np.zeros(n, dtype=np.uint64)
    for k in range(8):
        prefix = (prefix << np.uint64(8)) | buf[k : k + n].astype(np.uint64)
    anchors = np.array(sorted({int.from_bytes(w[:8], "big") for w in windows}), dtype=np.uint64)
    candidates = np.nonzero(np.isin(prefix, anchors))[0]
    return sum(1 for i in candidates.tolist() if stream[i : i + WINDOW] in windows)


def find_leaks(
    recorded: Sequence[bytes],
    *,
    frames: Sequence[bytes],
    texts: Iterable[str] = (),
    keys: Iterable[bytes] = (),
) -> LeakReport:
    """Search every recorded message (each direction, unmasked) for the given plaintexts."""
    stream = b"\x00".join(recorded)
    windows = _windows(frames)
    text_list = [t for t in texts if t]
    key_list = [k for k in keys if k]
    return LeakReport(
        bytes_scanned=len(stream),
        frames_checked=len(frames),
        windows_checked=len(windows),
        frame_windows_found=_count_windows(stream, windows),
        texts_checked=len(text_list),
        texts_found=tuple(t for t in text_list if t.encode() in stream),
        keys_checked=len(key_list),
        keys_found=sum(1 for k in key_list if k in stream),
    )
