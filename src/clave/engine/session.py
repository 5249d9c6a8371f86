"""Drive a sans-I/O :class:`~clave.meeting.meeting.Meeting` over a relay connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable

from ..meeting.events import Event
from ..meeting.link import MeetingLink
from ..meeting.meeting import Meeting, MeetingConfig, Phase
from ..wire import StreamKind
from .connection import RelayConnection, RelayConnectionError

log = logging.getLogger("clave.engine")

EventHandler = Callable[[Event], None]


def _now() -> int:
    return int(time.time())


class MeetingSession:
    """One participant's meeting: the core, its relay connection and an event handler.

    Every call into the core is followed by sending what it queued, in order.
    Events are handed to ``on_event`` synchronously, in order, from the reader.
    """

    def __init__(self, meeting: Meeting, connection: RelayConnection, on_event: EventHandler):
        self.meeting = meeting
        self._conn = connection
        self._on_event = on_event
        self._reader: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
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
    ) -> MeetingSession:
        """Connect to the link's relay and create (``host``) or join the meeting."""
        conn = RelayConnection(relay_url or link.relay_url)
        await conn.open()
        if host:
            meeting = Meeting.create(
                link,
                name,
                rng=os.urandom,
                clock=time.monotonic,
                now=_now,
                config=config,
                auto_admit=auto_admit,
            )
        else:
            meeting = Meeting.join(
                link, name, rng=os.urandom, clock=time.monotonic, now=_now, config=config
            )
        session = cls(meeting, conn, on_event)
        await session.flush()
        session._reader = asyncio.create_task(session._read(), name=f"clave-reader-{name}")
        return session

    async def flush(self) -> None:
        """Send every frame the core has queued (in order)."""
        frames = self.meeting.frames_to_send()
        if not frames:
            return
        async with self._send_lock:
            for frame in frames:
                await self._conn.send(frame)

    def _drain_events(self) -> None:
        while (event := self.meeting.next_event()) is not None:
            try:
                self._on_event(event)
            except Exception:  # a faulty handler must not stop the meeting
                log.exception("event handler failed on %s", type(event).__name__)

    observe_after_end: Callable[[bytes], None] | None = None
    """Called with every frame that arrives once the meeting has ended (audits)."""

    async def _read(self) -> None:
        try:
            async for frame in self._conn.frames():
                if self.meeting.phase is Phase.ended and self.observe_after_end is not None:
                    self.observe_after_end(frame)
                    continue
                self.meeting.receive(frame)
                self._drain_events()
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
        async with self._send_lock:
            await self._conn.send(frame)
        return True

    async def close(self, *, leave: bool = True) -> None:
        if leave:
            with contextlib.suppress(RelayConnectionError):
                await self.act(lambda m: m.leave())
        await self._conn.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self.closed.set()
