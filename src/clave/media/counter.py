"""Thread-safe tally of decoded frames per sender and kind."""

from __future__ import annotations

import threading

from clave.media.chunk import MediaKind
from clave.media.errors import MediaError

__all__ = ["MediaCounter"]

_KINDS: tuple[MediaKind, ...] = ("video", "audio")


class MediaCounter:
    """Counts decoded frames per ``(sender, kind)``; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[MediaKind, int]] = {}

    def add(self, sender: str, kind: MediaKind, frames: int = 1) -> None:
        """Record ``frames`` decoded frames of ``kind`` from ``sender``."""
        if kind not in _KINDS:
            raise MediaError(f"kind must be 'audio' or 'video', not {kind!r}")
        if frames < 0:
            raise MediaError("frame count must not be negative")
        with self._lock:
            per_kind = self._counts.setdefault(sender, {"video": 0, "audio": 0})
            per_kind[kind] += frames

    def count(self, sender: str, kind: MediaKind) -> int:
        """Frames of ``kind`` decoded from ``sender`` so far (0 if unknown)."""
        with self._lock:
            return self._counts.get(sender, {}).get(kind, 0)

    def total(self, kind: MediaKind | None = None) -> int:
        """Frames decoded from all senders, of ``kind`` or of both kinds."""
        kinds = _KINDS if kind is None else (kind,)
        with self._lock:
            return sum(c[k] for c in self._counts.values() for k in kinds)

    def senders(self) -> list[str]:
        """Senders seen so far, sorted."""
        with self._lock:
            return sorted(self._counts)

    def summary(self) -> dict[str, dict[str, int]]:
        """``{sender: {"video": n, "audio": m}}``, senders sorted; a snapshot copy."""
        with self._lock:
            return {s: {k: self._counts[s][k] for k in _KINDS} for s in sorted(self._counts)}

    def format(self) -> str:
        """One line per sender: ``alice: video=120 audio=200``."""
        lines = [
            f"{sender}: video={counts['video']} audio={counts['audio']}"
            for sender, counts in self.summary().items()
        ]
        return "\n".join(lines) if lines else "(no frames decoded)"

    def reset(self) -> None:
        """Forget all counts."""
        with self._lock:
            self._counts.clear()
