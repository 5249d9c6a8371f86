"""Sliding-window anti-replay for received CTR values (RFC 9605 sections 7.4, 9.3).

RFC 9605 leaves anti-replay to the application and points at the SRTP window
of RFC 3711 section 3.3.2; this is such a window, keyed by the SFrame CTR.  A
counter above the highest accepted one is always new; one at or below it is
accepted once if it is within ``size`` of the highest, rejected as a duplicate
(:class:`ReplayError`) if already seen, and rejected as too old
(:class:`CounterOutOfWindowError`) otherwise.

Representation: a ring of ``size`` slots where slot ``ctr % size`` holds the
last counter accepted there.  For a counter ``c`` inside the window, the slot
holds ``c`` exactly when ``c`` was accepted: any other counter in that slot
differs from ``c`` by a multiple of ``size`` and so is either out of the
window or was written before ``c`` could have been.  Every operation is O(1).

Callers must only :meth:`ReplayWindow.accept` a counter *after* the frame
authenticated, so forged frames cannot advance or poison the window.
"""

from __future__ import annotations

from array import array

from .errors import ConfigurationError, CounterOutOfWindowError, ReplayError

DEFAULT_WINDOW_SIZE = 1024
"""Default number of counters tracked up to and including the highest one."""

# Empty-slot marker.  It can only be compared against 2**64 - 1 when that is
# the highest accepted counter, i.e. when the slot really holds it.
_EMPTY = (1 << 64) - 1


class ReplayWindow:
    """Anti-replay window over CTR values for one KID."""

    __slots__ = ("_label", "_ring", "_size", "_top")

    def __init__(self, size: int = DEFAULT_WINDOW_SIZE, *, kid: int | None = None) -> None:
        if type(size) is not int or size < 1:
            raise ConfigurationError(f"replay window size must be a positive integer, got {size!r}")
        self._size = size
        self._label = "" if kid is None else f"kid={kid}, "
        self._ring = array("Q", [_EMPTY]) * size
        self._top = -1  # highest accepted counter; -1 before the first

    @property
    def size(self) -> int:
        """Number of counters (including the highest) the window covers."""
        return self._size

    @property
    def highest(self) -> int | None:
        """Highest accepted counter, or ``None`` before the first frame."""
        return None if self._top < 0 else self._top

    def check(self, ctr: int) -> None:
        """Raise if ``ctr`` would be rejected; does not record it."""
        top = self._top
        if ctr > top:
            return
        if top - ctr >= self._size:
            raise CounterOutOfWindowError(
                f"{self._label}ctr={ctr} is older than the replay window "
                f"(highest={top}, size={self._size})"
            )
        if self._ring[ctr % self._size] == ctr:
            raise ReplayError(f"replayed frame: {self._label}ctr={ctr} already accepted")

    def accept(self, ctr: int) -> None:
        """Record ``ctr`` as received, raising if it is a duplicate or too old."""
        if ctr <= self._top:
            self.check(ctr)
        else:
            self._top = ctr
        self._ring[ctr % self._size] = ctr

    def __contains__(self, ctr: object) -> bool:
        """True if ``ctr`` was accepted and is still inside the window."""
        if type(ctr) is not int:
            return False
        return 0 <= self._top - ctr < self._size and self._ring[ctr % self._size] == ctr


__all__ = ["DEFAULT_WINDOW_SIZE", "ReplayWindow"]
