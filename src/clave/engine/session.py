"""Drive a sans-I/O :class:`~clave.meeting.meeting.Meeting` over a relay connection.

The reader feeds relay frames to the core; a timer task sleeps until
:meth:`Meeting.get_timer` and calls :meth:`Meeting.handle_timer`; user actions
go through :meth:`MeetingSession.act`. After each of them the session hands
out the core's events, sends what it queued, and calls ``on_change``, so a UI
refreshes on change instead of polling.

When the relay connection drops, the session tells the core
(:meth:`Meeting.connection_lost`), opens a new connection with exponential
backoff and jitter (:class:`Backoff`) and lets the core come back
(:meth:`Meeting.reconnect`): see :mod:`clave.meeting.resume`. If the core
missed too much while away (:class:`~clave.meeting.events.Stranded`), the
session asks to be admitted again through the lobby with a fresh
:meth:`Meeting.join` (``rejoining`` says why). It gives up only after
``Backoff.give_up`` seconds without a relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..meeting.events import ConnectionLost, Event, Stranded
from ..meeting.identity import Identity
from ..meeting.link import MeetingLink
from ..meeting.meeting import Meeting, MeetingConfig, Phase
from ..meeting.people import PeopleBook
from ..tasks import cancel_and_wait
from ..wire import MEDIA, StreamKind
from .connection import RelayConnection, RelayConnectionError
from .tls import RelayTrust

log = logging.getLogger("clave.engine")
_MEDIA = bytes((MEDIA,))
HANDOVER_WAIT = 5.0
"""Seconds a leaving participant waits for the core to end the meeting (the core's own
handover timeout is shorter)."""

EventHandler = Callable[[Event], None]
Connect = Callable[[], Awaitable[RelayConnection]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """When to try the relay again after the connection dropped."""

    first: float = 0.2
    """The first attempt comes within this many seconds (uniformly spread, so a relay
    restart is not met by every engine at once)."""
    cap: float = 2.0
    """Attempt ``n`` waits ``min(cap, first * 2**n)`` seconds, of which the last half
    is jittered."""
    give_up: float = 300.0
    """Seconds without a relay after which the meeting ends for us."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        if attempt == 0:
            return rng.uniform(0.0, self.first)
        step = min(self.cap, self.first * 2.0**attempt)
        return step * rng.uniform(0.5, 1.0)


class LinkState:
    """Values of :attr:`MeetingSession.link_state`."""

    connected = "connected"
    reconnecting = "reconnecting"
    closed = "closed"


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
        *,
        connect: Connect | None = None,
        rejoin: Callable[[Meeting], Meeting] | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ):
        self.meeting = meeting
        self._conn = connection
        self._on_event = on_event
        self._on_change = on_change
        self._connect = connect
        """Opens a new relay connection (None: never reconnect)."""
        self._rejoin = rejoin
        """A fresh joiner for the meeting of a stranded core (None: never rejoin)."""
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._reader: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._ended = asyncio.Event()
        """Set once the core's phase is ``ended`` (e.g. a leaving host's handover is done)."""
        self._drop: str | None = None
        """Why the current connection must be dropped (the core asked for a new one)."""
        self._stranded: str | None = None
        self.closed = asyncio.Event()
        """Set when the session is over for good (see :attr:`closed_reason`)."""
        self.closed_reason: str | None = None
        self.link_state = LinkState.connected
        self.reconnects = 0
        """Successful reconnections so far."""
        self.outage_since: float | None = None
        """``time.monotonic()`` when the current outage began (None: connected)."""
        self.rejoining: str | None = None
        """Why we are asking to be admitted again (the core missed too much while away)."""

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
        backoff: Backoff | None = None,
        trust: RelayTrust | None = None,
    ) -> MeetingSession:
        """Connect to the link's relay and create (``host``, with the ``owner_key`` the
        invitation names) or join the meeting; every connection, reconnections included,
        checks the relay's certificate as ``trust`` says (default: the system's CAs)."""
        if host and owner_key is None:
            raise ValueError("hosting a new meeting needs its owner key")
        start: Callable[..., Meeting] = Meeting.join
        if owner_key is not None and host:
            start = functools.partial(Meeting.create, owner_key=owner_key, auto_admit=auto_admit)
        url = relay_url or link.relay_url

        async def connect() -> RelayConnection:
            conn = RelayConnection(url, trust=trust)
            await conn.open()
            return conn

        def rejoin(stranded: Meeting) -> Meeting:
            return Meeting.join(
                stranded.link, name, rng=os.urandom, clock=time.monotonic, now=_now,
                config=config, identity=identity, people=people,
            )  # fmt: skip

        conn = await connect()
        meeting = start(
            link, name, rng=os.urandom, clock=time.monotonic, now=_now, config=config,
            identity=identity, people=people,
        )  # fmt: skip
        session = cls(
            meeting, conn, on_event, on_change, connect=connect, rejoin=rejoin, backoff=backoff
        )
        await session.flush()
        session._reader = asyncio.create_task(session._run(), name=f"clave-reader-{name}")
        session._timer = asyncio.create_task(session._timers(), name=f"clave-timer-{name}")
        return session

    async def flush(self) -> None:
        """Send every frame the core has queued (in order); none while reconnecting
        (the core drops them when it comes back)."""
        if self.link_state != LinkState.connected:
            return
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
            if isinstance(event, ConnectionLost) and self.link_state == LinkState.connected:
                self._drop = event.reason  # the relay would not let us back in
            elif isinstance(event, Stranded) and self._rejoin is not None:
                self._stranded = event.reason
            try:
                self._on_event(event)
            except Exception:  # a faulty handler must not stop the meeting
                log.exception("event handler failed on %s", type(event).__name__)
        if self.meeting.phase is Phase.ended and self._stranded is None:
            self._ended.set()
        if not changed:
            return
        self._changed()
        self._wake.set()  # the core's next deadline may have moved

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("change handler failed")

    def _set_state(self, state: str) -> None:
        if state != self.link_state:
            self.link_state = state
            self.outage_since = time.monotonic() if state == LinkState.reconnecting else None
            self._changed()

    async def _timers(self) -> None:
        """Call :meth:`Meeting.handle_timer` whenever its deadline passes."""
        while not self.closed.is_set():
            self._wake.clear()
            when = self.meeting.get_timer()
            delay = None if when is None else max(0.0, when - time.monotonic())
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            self.meeting.handle_timer(time.monotonic())
            self._drain_events()
            with contextlib.suppress(RelayConnectionError):  # the reader notices it too
                await self.flush()
            await asyncio.sleep(0)

    # ------------------------------------------------------------------ connection

    async def _run(self) -> None:
        """Read relay frames; across dropped connections, reconnect; rejoin if stranded."""
        try:
            while not self._stop.is_set():
                reason = await self._read()
                if self._stop.is_set():
                    break
                if self._stranded is not None:
                    if not await self._rejoin_meeting():
                        break
                    continue
                if self.meeting.phase is Phase.ended:
                    break
                if self._connect is None:
                    self.closed_reason = reason
                    break
                self.meeting.connection_lost(reason)
                self._drain_events()
                if not await self._come_back():
                    break
        finally:
            self._set_state(LinkState.closed)
            self._ended.set()
            self.closed.set()

    async def _read(self) -> str:
        """Feed frames to the core until the connection ends; why it ended."""
        self._drop = None
        try:
            async for frame in self._conn.frames():
                self.meeting.receive(frame)
                self._drain_events(changed=frame[1:2] != _MEDIA)
                await self.flush()
                if self._drop is not None or self._stranded is not None:
                    reason = self._drop or "rejoining"
                    await self._conn.close()
                    return reason
                if self.meeting.phase is Phase.ended:
                    await self._conn.close()
                    return "the meeting ended"
        except RelayConnectionError as exc:
            log.warning("relay connection lost: %s", exc)
            return str(exc)
        code = self._conn.close_code
        log.warning("relay connection closed (code %s)", code)
        return "the connection to the relay dropped" + (f" (code {code})" if code else "")

    async def _open_again(self) -> bool:
        """Open a new relay connection (backoff and jitter between attempts); False if
        the session is closing or ``give_up`` seconds passed without a relay."""
        assert self._connect is not None
        await self._conn.close()  # the dropped one: its resources go now
        self._set_state(LinkState.reconnecting)
        began = time.monotonic()
        attempt = 0
        last = "no attempt yet"
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._backoff.delay(attempt, self._rng))
            if self._stop.is_set():
                return False
            try:
                self._conn = await self._connect()
                return True
            except RelayConnectionError as exc:
                last = str(exc)
            attempt += 1
            if time.monotonic() - began >= self._backoff.give_up:
                self.closed_reason = (
                    f"the relay has been unreachable for {self._backoff.give_up:g} s ({last})"
                )
                self.meeting.abandon(self.closed_reason)
                self._drain_events()
                return False
        return False

    async def _come_back(self) -> bool:
        """Reconnect and let the core enter the room again."""
        if not await self._open_again():
            return False
        self.meeting.reconnect()
        self._set_state(LinkState.connected)
        self.reconnects += 1
        await self._flush_quietly()
        return True

    async def _rejoin_meeting(self) -> bool:
        """The core is stranded: ask to be admitted again with a fresh joiner."""
        assert self._rejoin is not None
        self.rejoining, self._stranded = self._stranded, None
        old = self.meeting
        self.meeting = self._rejoin(old)
        self._changed()
        if not await self._open_again():
            return False
        self._set_state(LinkState.connected)
        await self._flush_quietly()
        return True

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(RelayConnectionError):  # the reader notices it
            await self.flush()

    # ------------------------------------------------------------------ use

    async def act(self, action: Callable[[Meeting], object]) -> object:
        """Run a user action on the core, then send what it queued and hand out events."""
        result = action(self.meeting)
        self._drain_events()
        await self.flush()
        return result

    async def send_media(
        self, kind: StreamKind, keyframe: bool, payload: bytes, layer: int = 0
    ) -> bool:
        """Protect and send one frame (of simulcast ``layer``); False (not sent) unless
        media is encrypted and the relay link is up (a frame lost with a dropping
        connection counts as not sent). No audio while a host's mute holds
        (:attr:`Meeting.muted_by`: until the user unmutes)."""
        meeting = self.meeting
        if not meeting.encrypted or not meeting.link_up or self.link_state != "connected":
            return False
        if kind is StreamKind.audio and meeting.muted_by is not None:
            return False
        frame = meeting.protect_media(kind, keyframe, payload, layer)
        queued = meeting.frames_to_send()  # the manifest covering it, when one is due
        try:
            async with self._send_lock:
                await self._conn.send(frame)
                for control in queued:
                    await self._conn.send(control)
        except RelayConnectionError:
            return False  # the reader notices the dropped connection and reconnects
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
        if leave and self.link_state == LinkState.connected:
            with contextlib.suppress(RelayConnectionError):
                await self.act(lambda m: m.leave())
            # A handover commit needs the reader and the timers; the core ends the
            # meeting itself once it is ordered, or after its own handover timeout.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_ended(), HANDOVER_WAIT)
        elif leave:  # no relay to say goodbye to: the others see us away, then gone
            self.meeting.leave()
            self._drain_events()
        self._stop.set()
        if self._timer is not None:
            await cancel_and_wait(self._timer)
        await self._conn.close()
        if self._reader is not None:
            await cancel_and_wait(self._reader)
        self._set_state(LinkState.closed)
        self.closed.set()
