"""Frame scheduling arithmetic; the caller owns the clock and does the sleeping."""

from __future__ import annotations

import math
import threading

from clave.media.errors import MediaError

__all__ = ["Pacer"]


class Pacer:
    """Schedule of frame slots ``start + k / fps`` on an injected clock.

    Typical asyncio use (``now`` from ``loop.time()``)::

        pacer = Pacer(30, start=loop.time())
        while running:
            await asyncio.sleep(pacer.delay(loop.time()))
            frame = source.next_frame(pacer.index)
            ...encode and send...
            pacer.advance(loop.time())

    When the caller falls more than ``max_lag`` slots behind, :meth:`advance`
    skips the missed slots instead of bursting to catch up.
    """

    def __init__(self, fps: float, start: float = 0.0, *, max_lag: int = 2) -> None:
        if not fps > 0 or not math.isfinite(fps):
            raise MediaError(f"fps must be positive, not {fps}")
        if max_lag < 1:
            raise MediaError("max_lag must be >= 1")
        self.fps = fps
        self.interval = 1.0 / fps
        self.start = start
        self.max_lag = max_lag
        self.skipped = 0
        self._index = 0
        self._lock = threading.Lock()

    @property
    def index(self) -> int:
        """The slot number of the next frame to produce."""
        return self._index

    def deadline(self, index: int | None = None) -> float:
        """Clock time at which slot ``index`` (default: the next one) is due."""
        return self.start + (self._index if index is None else index) * self.interval

    def timestamp_us(self, index: int | None = None) -> int:
        """Media timestamp of slot ``index`` (default: the next one), in microseconds."""
        slot = self._index if index is None else index
        return round(slot * 1_000_000 / self.fps)

    def delay(self, now: float) -> float:
        """Seconds to wait before producing the next frame (never negative)."""
        return max(0.0, self.deadline() - now)

    def due(self, now: float) -> bool:
        """True if the next frame is due at ``now``."""
        return now >= self.deadline()

    def advance(self, now: float) -> int:
        """Move to the next slot; returns how many slots were skipped (usually 0)."""
        with self._lock:
            self._index += 1
            behind = (now - self.deadline()) / self.interval
            if behind <= self.max_lag:
                return 0
            current = math.floor((now - self.start) / self.interval)
            skipped = max(0, current - self._index)
            self._index += skipped
            self.skipped += skipped
            return skipped
