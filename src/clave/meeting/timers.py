"""Named deadlines for the sans-I/O meeting core (the aioquic ``get_timer`` style).

The core never sleeps or reads a clock on its own schedule: it records when it
wants to be woken (:meth:`Timers.set`), the driver asks for the earliest
deadline (:meth:`Timers.next`) and calls back when it has passed.
"""

from __future__ import annotations

from enum import StrEnum


class Timer(StrEnum):
    """What a deadline is for."""

    alive = "alive"
    """A host's next ``Alive`` message."""
    takeover = "takeover"
    """A successor's next check whether every host has fallen silent."""
    ordering = "ordering"
    """Our commit has not been ordered by the relay: warn the user."""
    retry = "retry"
    """Try to commit the queued changes again (after a refusal)."""
    refresh = "refresh"
    """Our next periodic key refresh (RFC 9420 section 16.6, post-compromise security)."""
    previous = "previous"
    """The previous epoch's grace period ends."""
    handover = "handover"
    """A leaving host stops waiting for its handover commit."""
    media = "media"
    """Send a due media manifest, or drop frames no manifest covered in time."""
    presence = "presence"
    """A member that is away reaches the end of its resume window."""
    announce = "announce"
    """Send our Hello again: a member coming back asked who is there."""
    knock = "knock"
    """In the lobby: send our join request again (a host may have missed it)."""
    catchup = "catchup"
    """After reconnecting: check that we reached the meeting's current epoch."""


class Timers:
    """At most one deadline per :class:`Timer` (monotonic seconds)."""

    __slots__ = ("_due",)

    def __init__(self) -> None:
        self._due: dict[Timer, float] = {}

    def set(self, timer: Timer, at: float) -> None:
        self._due[timer] = at

    def set_if_unset(self, timer: Timer, at: float) -> None:
        self._due.setdefault(timer, at)

    def cancel(self, timer: Timer) -> None:
        self._due.pop(timer, None)

    def get(self, timer: Timer) -> float | None:
        return self._due.get(timer)

    def next(self) -> float | None:
        """The earliest deadline, or None."""
        return min(self._due.values(), default=None)

    def pop_due(self, now: float) -> list[Timer]:
        """Remove and return every timer whose deadline is at or before ``now``."""
        due = [t for t, at in self._due.items() if at <= now]
        for t in due:
            del self._due[t]
        return due

    def clear(self) -> None:
        self._due.clear()
