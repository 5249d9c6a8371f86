"""One participant's meeting state machine (sans-I/O).

Bytes in, bytes and events out, in the aioquic style: feed every WebSocket
binary message from the relay to :meth:`Meeting.receive`, send what
:meth:`Meeting.frames_to_send` returns, read :meth:`Meeting.next_event` until
it returns None, and call :meth:`Meeting.handle_timer` once the time
:meth:`Meeting.get_timer` names has come. User actions (:meth:`admit`,
:meth:`send_chat`, :meth:`protect_media`, ...) queue frames and events the
same way. Randomness (``rng``), monotonic time (``clock``) and Unix time
(``now``, for MLS lifetimes and the people book) are injected.

The meeting is an MLS group (RFC 9420) whose policy extension names the owner,
hosts and successors by key (:mod:`.policy`, :mod:`.roles`); media keys come
from its exporter (RFC 9605 section 5.2). The relay orders commits by epoch
credential (docs/PROTOCOL.md, "Ordering"): a commit presents
``MLS-Exporter("clave v2 commit credential", "", 32)`` of its epoch and the
hash of the next one's. Exactly one commit of ours is in flight at a time;
queued changes are committed together when it resolves (:mod:`.committer`).

The class is built in layers, one module each: :mod:`.core` (state and shared
helpers), :mod:`.meeting_actions` (user actions, committing), :mod:`.resume`
(dropped connections and coming back), :mod:`.meeting_handlers` (relay input)
and this facade (construction, I/O, timers). Parts with their own state: :mod:`.admission` (joiner),
:mod:`.lobby`, :mod:`.presence`, :mod:`.roster`, :mod:`.media`, :mod:`.timers`.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import wire
from .config import MeetingConfig
from .core import Clock, Phase, Rng, UnixTime
from .events import ErrorCode, Event
from .identity import Identity
from .link import MeetingLink
from .meeting_handlers import MeetingInput
from .people import PeopleBook
from .timers import Timer

__all__ = ["Meeting", "MeetingConfig", "Phase"]


class Meeting(MeetingInput):
    """One participant of a Clave meeting. Build with :meth:`create` or :meth:`join`."""

    @classmethod
    def create(
        cls,
        link: MeetingLink,
        name: str,
        *,
        owner_key: bytes,
        rng: Rng,
        clock: Clock,
        now: UnixTime,
        config: MeetingConfig | None = None,
        identity: Identity | None = None,
        auto_admit: bool = False,
        people: PeopleBook | None = None,
    ) -> Meeting:
        """Start a new meeting as its owner and host (``owner_key``: the private key
        whose public half the invitation names)."""
        return cls(
            link, name, create=True, rng=rng, clock=clock, now=now,
            config=config or MeetingConfig(), identity=identity, owner_key=owner_key,
            auto_admit=auto_admit, people=people,
        )  # fmt: skip

    @classmethod
    def join(
        cls,
        link: MeetingLink,
        name: str,
        *,
        rng: Rng,
        clock: Clock,
        now: UnixTime,
        config: MeetingConfig | None = None,
        identity: Identity | None = None,
        people: PeopleBook | None = None,
    ) -> Meeting:
        """Join an existing meeting: enters the relay room, then asks the hosts."""
        return cls(
            link, name, create=False, rng=rng, clock=clock, now=now,
            config=config or MeetingConfig(), identity=identity, people=people,
        )  # fmt: skip

    # ------------------------------------------------------------------ I/O

    def receive(self, frame: bytes) -> None:
        """Handle one whole WebSocket binary message from the relay. Never raises."""
        if self._phase is Phase.ended:
            return
        try:
            if self._receive(bytes(frame)):
                self._settle()
        except Exception as exc:  # last line of defence: network input never raises
            self._error(ErrorCode.internal, f"{type(exc).__name__} while handling input: {exc}")

    def frames_to_send(self) -> list[bytes]:
        """Whole wire frames for the relay, in order (the list is handed over)."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` wants to be called (``clock`` time), or None."""
        return None if self._phase is Phase.ended else self._timers.next()

    def handle_timer(self, now: float | None = None) -> None:
        """Act on every deadline that has passed. Never raises."""
        if self._phase is Phase.ended:
            return
        try:
            due = self._timers.pop_due(self._clock() if now is None else now)
            for timer in due:
                _TIMER_HANDLERS[timer](self)
            if any(t is not Timer.media for t in due):  # media timers change no plan
                self._settle()
        except Exception as exc:  # same defence as receive()
            self._error(ErrorCode.internal, f"{type(exc).__name__} while handling a timer: {exc}")

    def _receive(self, frame: bytes) -> bool:
        """Handle one frame; True if it may have changed what to commit or announce
        (media and manifests never do, so they skip the settling that follows)."""
        try:
            channel, body = wire.split_frame(frame)
        except wire.WireError as exc:
            self._error(ErrorCode.bad_frame, str(exc))
            return False
        if channel == wire.MEDIA:
            group = self._group
            if self._in_meeting() and group is not None:  # else nothing we could decrypt
                for event in self._media.receive(frame, self._rosters, group, self._members):
                    self._emit(event)
                self._media_out()
            return False
        try:
            msg = wire.decode_relay(body)
        except wire.WireError as exc:
            self._error(ErrorCode.bad_frame, str(exc))
            return False
        self._dispatch(msg)
        return not isinstance(msg, wire.ManifestFrom)


_TIMER_HANDLERS: dict[Timer, Callable[[Meeting], None]] = {
    Timer.alive: Meeting._timer_alive,
    Timer.takeover: lambda m: None,  # the settle that follows re-plans
    Timer.ordering: Meeting._timer_ordering,
    Timer.retry: Meeting._timer_retry,
    Timer.refresh: Meeting._timer_refresh,
    Timer.previous: Meeting._timer_previous,
    Timer.handover: Meeting._finish_leaving,
    Timer.media: Meeting._timer_media,
    Timer.presence: Meeting._timer_presence,
    Timer.announce: Meeting._timer_announce,
    Timer.knock: Meeting._timer_knock,
    Timer.catchup: Meeting._timer_catchup,
}
