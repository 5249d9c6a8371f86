"""What the glass handlers (:mod:`.glass_actions`, :mod:`.glass_events`) may use of the
bridge: a structural type, so they depend on this and not on :mod:`.bridge` (which
dispatches to them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..meeting.meeting import Meeting
from .glass_media import FrameForwarder
from .glass_messages import Alert, MediaSwitches, Stats, ToGlass
from .glass_prefs import RememberedChoices
from .glass_recording import GlassRecording
from .session import MeetingSession
from .stage import StageDirector


class GlassPort(Protocol):
    """The bridge as its handlers see it (see :class:`~clave.engine.bridge.GlassBridge`)."""

    session: MeetingSession | None
    frames: FrameForwarder
    stage: StageDirector
    recording: GlassRecording
    remembered: RememberedChoices
    alerts: list[Alert]
    away: set[int]
    known_leaves: set[int]
    media_state: MediaSwitches | None
    last_stats: Stats | None
    stranded: str | None

    @property
    def link_up(self) -> bool: ...

    def send(self, message: ToGlass) -> None: ...

    async def act(self, what: str, action: Callable[[Meeting], object]) -> object: ...

    async def join(self, name: str) -> None: ...

    async def leave(self, reason: str) -> None: ...

    def end(self, reason: str, outcome: str | None = None) -> None: ...

    def restart(self) -> None: ...

    def nobody_answered(self) -> bool: ...

    def people_changed(self) -> None: ...

    def member_back(self, leaf: int) -> None: ...

    def back_in_room(self) -> None: ...


__all__ = ["GlassPort"]
