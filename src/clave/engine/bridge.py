"""The glass bridge: one browser tab (the glass) <-> one :class:`MeetingSession` at a time.

The browser analogue of :mod:`clave.engine.headless`. The glass captures,
encodes, decodes and renders; it holds no keys. Over the local WebSocket
(:mod:`clave.engine.ui_server`) it sends JSON control messages
(:mod:`.glass_actions`) and encoded chunks; the bridge protects the chunks with
SFrame and sends them to the relay, and hands decrypted frames back
(:mod:`.glass_media`) with what the meeting reports (:mod:`.glass_events`) and who
is on stage (:mod:`.stage`: last-N, decided from the audio it decrypts). What
the glass is shown is built by :mod:`.glass_view`; the framing is
:mod:`.glass_channel`. Everything here follows the "Local UI channel" section
of docs/PROTOCOL.md.

Lifecycle: the bridge outlives its meetings. After Leave or a failure the page
stays served and ``join`` starts a fresh session (a fresh admission, same
identity). When the tab goes away, the meeting waits :attr:`GlassBridge.tab_grace`
seconds for it (a reload); then the engine leaves, and :attr:`abandoned` tells the
command that nobody is looking any more.

Fail closed: a chunk that arrives while media is not encrypted under the
current epoch, or while the relay link is being restored, is dropped, never
sent or queued (there is no unencrypted fallback), and the glass is told so by
a ``padlock`` message.

Nothing here logs key material, chat texts or display names, and no
plaintext media is kept: a chunk lives only until it is protected (or
handed to the glass) and forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict
from typing import Any

from ..meeting import events as ev
from ..meeting.errors import MeetingError
from ..meeting.identity import Identity
from ..meeting.link import MeetingLink
from ..meeting.meeting import Meeting, MeetingConfig, Phase
from ..meeting.people import PeopleBook
from . import glass_messages as gm
from .connection import RelayConnectionError
from .glass_actions import HANDLERS, share_media_state
from .glass_channel import BadMessage, GlassBusy, GlassOutbox, parse_control
from .glass_events import EVENT_HANDLERS, QUIET_EVENTS, relay_failure, start_failure
from .glass_media import BridgeCounters, ChunkSender, FrameForwarder
from .glass_prefs import RememberedChoices
from .glass_recording import GlassRecording
from .glass_view import (
    CONNECTED,
    MEETING_PHASES,
    RECONNECTING,
    View,
    ended_message,
    hello_message,
    padlock_message,
    state_message,
)
from .session import MeetingSession
from .stage import StageDirector
from .tls import RelayTrust

log = logging.getLogger("clave.engine.bridge")

TAB_GRACE = 10.0
"""Seconds the meeting waits for a closed tab to come back (a reload) before leaving."""


class GlassBridge:
    """One participant driven by a glass: ``hello``/``state``/``padlock`` out,
    ``join``/``chat``/host actions in, encoded chunks both ways."""

    def __init__(
        self,
        link: MeetingLink,
        *,
        host: bool,
        default_name: str = "",
        auto_admit: bool = False,
        config: MeetingConfig | None = None,
        relay_url: str | None = None,
        owner_key: bytes | None = None,
        identity: Identity | None = None,
        people: PeopleBook | None = None,
        on_people_changed: Callable[[PeopleBook], None] | None = None,
        tab_grace: float = TAB_GRACE,
        on_ended: Callable[[str, bool], None] | None = None,
        relay_trust: RelayTrust | None = None,
        remembered: RememberedChoices | None = None,
    ) -> None:
        """``on_ended(reason, joined)``: a meeting is over (``joined``: we had been in it);
        not called when the engine stops (:meth:`close`). ``remembered``: the page's
        choices kept across meetings (default: for this engine's life only)."""
        self.link = link
        """The invitation to (re)join with: the latest one a meeting of ours knew."""
        self.owner_key = owner_key
        self.identity = identity
        self.people = people
        self._on_people_changed = on_people_changed
        self.host = host
        self.default_name = default_name
        self.auto_admit = auto_admit
        self.config = config
        self.relay_url = relay_url
        self.relay_trust = relay_trust
        self.remembered = remembered or RememberedChoices()
        """How the relay's TLS certificate is checked (None: the system's CAs)."""
        self.tab_grace = tab_grace
        self.grace_timer: Callable[[float], Awaitable[None]] = asyncio.sleep
        """How the grace is waited for (tests replace it with a gate they open)."""
        self._on_ended = on_ended
        self.session: MeetingSession | None = None
        self.counters = BridgeCounters()
        self.ended = asyncio.Event()
        """Set while the meeting is over for this participant (left, removed, refused, lost);
        cleared by a rejoin."""
        self.ended_reason: str | None = None
        self.ended_outcome: str | None = None
        self.abandoned = asyncio.Event()
        """Set once the tab has been gone for :attr:`tab_grace` seconds with the meeting over
        (or left because of it): nobody is looking, the engine may stop."""
        self.media_state: gm.MediaSwitches | None = None
        """The glass's microphone, camera and screen switches (``media_state``), handed back
        in ``hello`` so a reloaded tab starts as it was."""
        self.last_stats: gm.Stats | None = None
        """The last ``stats`` object the glass sent (latency measurements), if any."""
        self.alerts: list[gm.Alert] = []
        """Security alerts reported to the glass (kept for a reconnecting tab)."""
        self._name: str | None = None
        self._outbox: GlassOutbox | None = None
        self._joining = False
        self._closing = False
        self._leave_reason: str | None = None
        self._shut = False
        self._sent_state: gm.State | None = None
        self._sent_padlock: gm.Padlock | None = None
        self.chunks = ChunkSender(self.counters, self._dropped_notice, self._error)
        self.frames = FrameForwarder(
            self.counters, self._current_meeting, self.send, lambda leaf: leaf in self.away
        )
        self.stage = StageDirector(self._current_meeting, self.send)
        self.recording = GlassRecording(
            self.send, self._current_meeting, lambda: self.stage.subscribed
        )
        self.known_leaves: set[int] = set()
        """Leaves of the last epoch (newcomers need keyframes)."""
        self.away: set[int] = set()
        """Leaves whose relay connection vanished without a goodbye (``MemberAway``)."""
        self._meeting: Meeting | None = None
        """The meeting core last seen (a fresh admission replaces the session's)."""
        self.stranded: str | None = None
        """Why the current core was stranded (``Stranded``): until the session replaces it
        with a fresh joiner, the glass is shown a rejoin, not an end."""
        self._link_state: str | None = None
        self._others = 0
        """Other members last seen (a knock that reached the lobby counts one)."""
        self._saw_lobby = False
        self._knocking_as_owner = False
        self._in_meeting_once = False
        self._grace: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._lifecycle = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ glass connection

    @property
    def glass_connected(self) -> bool:
        return self._outbox is not None

    @property
    def grace_running(self) -> bool:
        """The tab went away and the engine is waiting for it (a reload) before leaving."""
        return self._grace is not None

    def attach(self) -> GlassOutbox:
        """A glass connected: its outbox, holding hello, state and padlock (else
        :class:`GlassBusy`: another glass is connected)."""
        if self._outbox is not None:
            raise GlassBusy("another window is already connected to this engine")
        if self._grace is not None:  # back within the grace: a reload
            self._grace.cancel()
            self._grace = None
            self.counters.tabs_returned += 1
        outbox = self._outbox = self.frames.outbox = GlassOutbox()
        hello = hello_message(self.host, self.current_link, self._name or self.default_name,
                              self.identity, self.media_state, self.remembered.kept())  # fmt: skip
        outbox.put_control(hello)
        self._sent_state = self._sent_padlock = None
        self._refresh()
        for alert in self.alerts:
            outbox.put_control(alert)
        if self.ended_reason is not None:
            outbox.put_control(
                ended_message(self.ended_reason, self.ended_outcome, self._in_meeting_once)
            )
        self._want_keyframes()  # a (re)connected glass has no decoder state
        self.stage.glass_connected()
        return outbox

    def detach(self, outbox: GlassOutbox) -> None:
        """The glass disconnected. The meeting goes on for :attr:`tab_grace` seconds, so a
        reloaded tab finds it; then the engine leaves."""
        outbox.close()
        if self._outbox is not outbox:
            return
        self._outbox = None
        self.frames.outbox = None
        self.frames.decoders_gone()
        if not self._shut:
            if self._grace is not None:
                self._grace.cancel()
            self._grace = asyncio.create_task(self._tab_gone(), name="clave-glass-grace")

    async def _tab_gone(self) -> None:
        await self.grace_timer(self.tab_grace)
        self._grace = None  # from here on, a returning tab no longer cancels this
        phase = self.phase
        if phase == "prejoin":
            return  # never joined: keep waiting for a tab
        if phase != "ended":
            log.info("the meeting's tab stayed closed: leaving")
            await self.leave("the meeting's tab was closed")
        if self._outbox is None:
            self.abandoned.set()

    def _current_meeting(self) -> Meeting | None:
        return self.session.meeting if self.session is not None else None

    @property
    def current_link(self) -> MeetingLink:
        """The invitation as it is now (a host may have replaced it)."""
        return self.session.meeting.link if self.session is not None else self.link

    def send(self, message: gm.ToGlass) -> None:
        """Queue a control message for the glass, if one is connected."""
        if self._outbox is not None:
            self._outbox.put_control(message)

    # ------------------------------------------------------------------ what the glass sees

    @property
    def phase(self) -> gm.GlassPhase:
        if self.ended_reason is not None:
            return "ended"
        if self.session is not None:
            if self.stranded is not None:
                return "connecting"  # the session is about to knock again
            return MEETING_PHASES[self.session.meeting.phase]
        return "connecting" if self._joining else "prejoin"

    @property
    def link_up(self) -> bool:
        """In a session whose relay link is connected (not reconnecting, not closed)."""
        return self.session is not None and self.session.link_state == CONNECTED

    @property
    def rejoin_mode(self) -> gm.RejoinMode:
        """What a ``join`` after the meeting ended does: ``restart`` (the owner, alone,
        starts its meeting again under the same invitation) or ``knock`` (ask through the
        lobby: an MLS group cannot be re-created under members who are still in it)."""
        return "restart" if self._may_create() and self._others == 0 else "knock"

    def _may_create(self) -> bool:
        return self.host and self.owner_key is not None

    def _view(self) -> View:
        session = self.session
        live = session is not None and self.ended_reason is None
        meeting = session.meeting if session is not None and self.stranded is None else None
        rejoining = self.stranded
        if session is not None and meeting is not None and meeting.phase is not Phase.in_meeting:
            rejoining = session.rejoining  # shown until admitted again
        return View(
            phase=self.phase,
            meeting=meeting,
            link=self.current_link,
            auto_admit=self.auto_admit if self.host else False,
            joining=self._joining or self.stranded is not None,
            connection=session.link_state if session is not None and live else None,
            reconnects=session.reconnects if session is not None else 0,
            rejoining=rejoining,
            rejoin=self.rejoin_mode,
            away=frozenset(self.away),
        )

    def state(self) -> gm.State:
        """The ``state`` message (:func:`.glass_view.state_message`)."""
        return state_message(self._view())

    def padlock(self) -> gm.Padlock:
        """The ``padlock`` message (:func:`.glass_view.padlock_message`)."""
        return padlock_message(self._view())

    def _refresh(self) -> None:
        """Send ``state`` and ``padlock`` if they changed since last sent."""
        if self._outbox is None:
            return
        state = self.state()
        if state != self._sent_state:
            self._sent_state = state
            self.send(state)
        padlock = self.padlock()
        if padlock != self._sent_padlock:
            self._sent_padlock = padlock
            self.send(padlock)

    def _on_change(self) -> None:
        """The session's state changed (after every input): note what matters, refresh."""
        session = self.session
        if session is not None:
            self._observe(session)
        self._refresh()

    def _observe(self, session: MeetingSession) -> None:
        meeting = session.meeting
        if meeting is not self._meeting:  # a fresh admission: a new core, new leaves
            self._meeting = meeting
            self.stranded = None
            self.known_leaves.clear()
            self.away.clear()
            self.frames.reset()
            self.stage.reset()
        if meeting.phase is Phase.lobby:
            self._saw_lobby = True
            self._others = max(self._others, 1)
        elif meeting.phase is Phase.in_meeting:
            self._in_meeting_once = True
            self._knocking_as_owner = False
            self._others = max(0, len(meeting.roster) - 1)
        link_state = session.link_state
        if link_state != self._link_state:
            self._link_state = link_state
            if link_state == RECONNECTING:
                self.frames.expect_keyframes()  # what comes after the gap needs one

    def back_in_room(self) -> None:
        """The relay took us back (``Reconnected``): frames were lost both ways. The glass
        sends keyframes; members still connected are asked for theirs (the others when
        they are back, ``MemberBack``: their connection is not known until then)."""
        self.counters.reconnects_seen += 1
        self.send(gm.KeyframeRequest(kind="video"))
        self.send(gm.KeyframeRequest(kind="screen"))
        self._want_keyframes()

    def member_back(self, leaf: int) -> None:
        """A member that was away is bound to its new connection: ask it for keyframes."""
        self.away.discard(leaf)
        session = self.session
        if session is not None and self.frames.ask_everyone(only=leaf):
            self._spawn(self._flush(session), "clave-glass-flush")

    # ------------------------------------------------------------------ glass -> engine

    async def handle_text(self, text: str) -> None:
        """One JSON control message from the glass, to its handler (:data:`.glass_actions.
        HANDLERS`). Bad input gets an ``error`` reply."""
        try:
            msg = parse_control(text)
            await HANDLERS[type(msg)](self, msg)
        except BadMessage as exc:
            self._error(str(exc))
        self._refresh()

    async def handle_binary(self, data: bytes) -> None:
        """One encoded chunk from the glass: protect and send it, or drop it (fail closed)."""
        live = self.ended_reason is None and self.link_up
        await self.chunks.handle(data, self.session if live else None)
        self.recording.own(data, self.session if live else None)  # glass_recording.py

    def _dropped_notice(self) -> None:
        padlock = self.padlock()
        self._sent_padlock = padlock
        self.send(padlock)

    async def act(self, what: str, action: Callable[[Meeting], object]) -> object:
        """Run a user action on the meeting core (in the meeting only)."""
        session = self.session
        if session is None or session.meeting.phase is not Phase.in_meeting:
            raise BadMessage(f"cannot {what}: not in the meeting")
        if session.link_state != CONNECTED:
            raise BadMessage(f"cannot {what}: reconnecting to the relay")
        try:
            return await session.act(action)
        except MeetingError as exc:  # the meeting core's own sentences
            raise BadMessage(f"cannot {what}: {exc}") from None
        except ValueError as exc:
            log.info("could not %s: %s", what, type(exc).__name__)  # texts may carry names
            raise BadMessage(f"could not {what}: the meeting did not accept it") from None
        except RelayConnectionError:
            raise BadMessage(f"cannot {what}: the relay connection is lost") from None

    # ------------------------------------------------------------------ meetings

    async def join(self, name: str) -> None:
        """Start a meeting session as ``name``: the first join (host: create the meeting),
        or, once a meeting is over, a rejoin (:attr:`rejoin_mode`)."""
        if self._shut:
            raise BadMessage("the engine is stopping")
        if self._joining or (self.session is not None and self.ended_reason is None):
            raise BadMessage("already joined (one meeting at a time)")
        async with self._lifecycle:
            create = self.rejoin_mode == "restart"
            await self._reset()
            self._name = name
            self._joining = True
            self._knocking_as_owner = self._may_create() and not create
            self._saw_lobby = False
        self._spawn(self._start_session(name, create=create), "clave-glass-join")

    async def _reset(self) -> None:
        """Forget the meeting that ended (its session is closed first)."""
        if self._close_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._close_task
            self._close_task = None
        session = self.session
        if session is not None:
            self.link = session.meeting.link
            if not self._closing:
                await session.close(leave=False)
        self.session = None
        self._closing = False
        self._leave_reason = None
        self.ended_reason = self.ended_outcome = None
        self.ended.clear()
        self._link_state = None
        self.stranded = None
        self._in_meeting_once = False

    async def _start_session(self, name: str, *, create: bool) -> None:
        self.counters.sessions += 1
        try:
            session = await MeetingSession.start(
                self.link,
                name,
                host=create,
                on_event=self._on_event,
                auto_admit=self.auto_admit,
                config=self.config,
                relay_url=self.relay_url,
                owner_key=self.owner_key if create else None,
                identity=self.identity,
                people=self.people,
                on_change=self._on_change,
                trust=self.relay_trust,
            )
        except RelayConnectionError as exc:
            self._joining = False
            self.end(relay_failure(exc))
            return
        except (MeetingError, ValueError) as exc:
            self._joining = False
            self.end(start_failure(exc))
            return
        self._joining = False
        if self.ended_reason is not None:  # the glass left while we were connecting
            await session.close(leave=True)
            return
        self.session = session
        self._on_change()
        self._spawn(self._watch(session), "clave-glass-watch")
        self._spawn(self.stage.run(session, lambda: self.session is session), "clave-stage")
        await share_media_state(self)  # chosen on the pre-join screen: in our Hellos

    async def _watch(self, session: MeetingSession) -> None:
        await session.closed.wait()
        if self.session is session:
            self.end(session.closed_reason or "the connection to the relay was lost")

    def restart(self) -> None:
        """The owner knocked and nobody was there to admit it: start the meeting again.
        The knocking session is dropped at once, so its closing ends nothing."""
        session = self.session
        if session is None:
            return
        self.link = session.meeting.link
        self.session = None
        self._joining = True
        self._knocking_as_owner = False
        self._spawn(self._restart(session), "clave-glass-restart")

    async def _restart(self, session: MeetingSession) -> None:
        async with self._lifecycle:
            await session.close(leave=False)
        self._refresh()
        await self._start_session(self._name or self.default_name, create=True)

    async def leave(self, reason: str) -> None:
        """Leave the meeting (Bye + Leave to the relay); the page stays served."""
        session = self.session
        if session is not None and not self._closing and self.ended_reason is None:
            self._closing = True
            self._leave_reason = reason  # the core's own "you left" comes first
            await session.close(leave=True)
        self.end(reason)

    # ------------------------------------------------------------------ engine -> glass

    def _on_event(self, event: ev.Event) -> None:
        handler = EVENT_HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
        if type(event) not in QUIET_EVENTS:
            self._refresh()

    def nobody_answered(self) -> bool:
        """The meeting's owner knocked and the relay room was empty (the knock ended before
        any lobby): nobody can admit it, but it may start its meeting again."""
        return (
            self.session is not None
            and self._knocking_as_owner
            and not self._saw_lobby
            and not self._closing
        )

    def _want_keyframes(self) -> None:
        session = self.session
        if session is not None and self.frames.ask_everyone():
            self._spawn(self._flush(session), "clave-glass-flush")

    @staticmethod
    async def _flush(session: MeetingSession) -> None:
        with contextlib.suppress(RelayConnectionError):
            await session.flush()

    def _error(self, message: str) -> None:
        self.send(gm.Error(message=message))

    def people_changed(self) -> None:
        """Hand the people book to the store (whom we met, whom we verified)."""
        if self.people is not None and self._on_people_changed is not None:
            try:
                self._on_people_changed(self.people)
            except Exception:  # a full disk must not end the meeting
                log.exception("could not save the people this engine met")

    def end(self, reason: str, outcome: str | None = None) -> None:
        """The meeting is over for us; ``outcome`` is a lobby answer ("declined", "locked",
        "full") when a host turned us away."""
        if self.ended_reason is not None:
            return
        if self._leave_reason is not None:
            reason, outcome = self._leave_reason, None
        self.ended_reason = reason
        self.ended_outcome = outcome
        self.send(ended_message(reason, outcome, self._in_meeting_once))
        self.recording.close()  # the file is finished: playable
        self._refresh()
        self.ended.set()
        if self._on_ended is not None and not self._shut:
            self._on_ended(reason, self._in_meeting_once)
        session = self.session
        if session is not None and not self._closing:
            # Off the reader task: close() cancels the reader.
            self._closing = True
            self._close_task = asyncio.create_task(
                session.close(leave=False), name="clave-glass-close"
            )
        if self._outbox is None and self._grace is None and self.counters.sessions:
            self.abandoned.set()  # over with no tab to show it (and none coming back)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """The engine stops: leave the meeting (Bye + Leave to the relay), close the relay
        connection, and accept no new meeting."""
        self._shut = True
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        await self.leave("you left the meeting")
        pending = [t for t in (*self._tasks, self._close_task) if t is not None]
        for task in pending:
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 5)

    def counters_dict(self) -> dict[str, int]:
        return asdict(self.counters)


__all__ = [
    "TAB_GRACE",
    "BridgeCounters",
    "GlassBridge",
    "GlassBusy",
    "GlassOutbox",
]
