"""Drive a sans-I/O :class:`~clave.meeting.meeting.Meeting` over a relay connection.

The reader feeds relay frames to the core; a timer task sleeps until
:meth:`Meeting.get_timer` and calls :meth:`Meeting.handle_timer`; user actions
go through :meth:`MeetingSession.act`. After each of them the session hands
out the core's events, sends what it queued, and calls ``on_change``, so a UI
refreshes on change instead of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable

from ..meeting.events import Event
from ..meeting.identity import Identity
from ..meeting.link import MeetingLink
from ..meeting.meeting import Meeting, MeetingConfig, Phase
from ..meeting.people import PeopleBook
from ..wire import MEDIA, StreamKind
from .connection import RelayConnection, RelayConnectionError

log = logging.getLogger("clave.engine")
_MEDIA = bytes((MEDIA,))
HANDOVER_WAIT = 5.0
"""Seconds a leaving participant waits for the core to end the meeting (the core's own
handover timeout is shorter)."""

EventHandler = Callable[[Event], None]


def _now() -> int:
    return int(time.time())


class MeetingSession:
    """One participant's meeting: the core, its relay connection and an event handler.

    Every call into the core is followed by sending what it queued, in order.
    Events are handed to ``on_event`` synchronously, in order, from the reader.
    """

    def __init__(
        self,
        meeting: Meeting,
        connection: RelayConnection,
        on_event: EventHandler,
        on_change: Callable[[], None] | None = None,
    ):
        self.meeting = meeting
        self._conn = connection
        self._on_event = on_event
        self._on_change = on_change
        self._reader: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._ended = asyncio.Event()
        """Set once the core's phase is ``ended`` (e.g. a leaving host's handover is done)."""
        self.closed = asyncio.Event()

    @classmethod
    async def start(
        cls,
        link: MeetingLink,
        name: str,
        *,
        host: bool,
        on_event: EventHandler,
        auto_admit: bool = False,
        config: MeetingConfig | None = None,
        relay_url: str | None = None,
        owner_key: bytes | None = None,
        identity: Identity | None = None,
        people: PeopleBook | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> MeetingSession:
        """Connect to the link's relay and create (``host``, with the ``owner_key`` the
        invitation names) or join the meeting."""
        if host and owner_key is None:
            raise ValueError("hosting a new meeting needs its owner key")
        start: Callable[..., Meeting] = Meeting.join
        if owner_key is not None and host:
            start = functools.partial(Meeting.create, owner_key=owner_key, auto_admit=auto_admit)
        conn = RelayConnection(relay_url or link.relay_url)
        await conn.open()
        meeting = start(
            link, name, rng=os.urandom, clock=time.monotonic, now=_now, config=config,
            identity=identity, people=people,
        )  # fmt: skip
        session = cls(meeting, conn, on_event, on_change)
        await session.flush()
        session._reader = asyncio.create_task(session._read(), name=f"clave-reader-{name}")
        session._timer = asyncio.create_task(session._timers(), name=f"clave-timer-{name}")
        return session

    async def flush(self) -> None:
        """Send every frame the core has queued (in order)."""
        frames = self.meeting.frames_to_send()
        if not frames:
            return
        async with self._send_lock:
            for frame in frames:
                await self._conn.send(frame)

    def _drain_events(self, changed: bool = True) -> None:
        """Hand out the core's events; ``changed``: the input may have changed state
        (a media frame does not), so ``on_change`` runs."""
        while (event := self.meeting.next_event()) is not None:
            try:
                self._on_event(event)
            except Exception:  # a faulty handler must not stop the meeting
                log.exception("event handler failed on %s", type(event).__name__)
        if self.meeting.phase is Phase.ended:
            self._ended.set()
        if not changed:
            return
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("change handler failed")
        self._wake.set()  # the core's next deadline may have moved

    async def _timers(self) -> None:
        """Call :meth:`Meeting.handle_timer` whenever its deadline passes."""
        while self.meeting.phase is not Phase.ended:
            self._wake.clear()
            when = self.meeting.get_timer()
            delay = None if when is None else max(0.0, when - time.monotonic())
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            self.meeting.handle_timer(time.monotonic())
            self._drain_events()
            try:
                await self.flush()
            except RelayConnectionError:
                return
            await asyncio.sleep(0)

    observe_after_end: Callable[[bytes], None] | None = None
    """Called with every frame that arrives once the meeting has ended (audits)."""

    async def _read(self) -> None:
        try:
            async for frame in self._conn.frames():
                if self.meeting.phase is Phase.ended and self.observe_after_end is not None:
                    self.observe_after_end(frame)
                    continue
                self.meeting.receive(frame)
                self._drain_events(changed=frame[1:2] != _MEDIA)
                await self.flush()
        except RelayConnectionError as exc:
            log.warning("relay connection lost: %s", exc)
        finally:
            self.closed.set()

    async def act(self, action: Callable[[Meeting], object]) -> object:
        """Run a user action on the core, then send what it queued and hand out events."""
        result = action(self.meeting)
        self._drain_events()
        await self.flush()
        return result

    async def send_media(self, kind: StreamKind, keyframe: bool, payload: bytes) -> bool:
        """Protect and send one frame; False (nothing sent) unless media is encrypted."""
        if not self.meeting.encrypted:
            return False
        frame = self.meeting.protect_media(kind, keyframe, payload)
        queued = self.meeting.frames_to_send()  # the manifest covering it, when one is due
        async with self._send_lock:
            await self._conn.send(frame)
            for control in queued:
                await self._conn.send(control)
        self._wake.set()  # a manifest deadline may have moved
        return True

    async def _wait_ended(self) -> None:
        ended = asyncio.create_task(self._ended.wait())
        closed = asyncio.create_task(self.closed.wait())
        try:
            await asyncio.wait({ended, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            closed.cancel()

    async def close(self, *, leave: bool = True) -> None:
        """Leave (a host first hands its role over, bounded by the config's
        ``handover_timeout``), then close the relay connection."""
        if leave:
            with contextlib.suppress(RelayConnectionError):
                await self.act(lambda m: m.leave())
            # A handover commit needs the reader and the timers; the core ends the
            # meeting itself once it is ordered, or after its own handover timeout.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_ended(), HANDOVER_WAIT)
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        await self._conn.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self.closed.set()
