"""The glass bridge: one browser tab (the glass) <-> one :class:`MeetingSession`.

The browser analogue of :mod:`clave.engine.headless`. The glass captures,
encodes, decodes and renders; it holds no keys. Over the local WebSocket
(:mod:`clave.engine.ui_server`) it sends JSON control messages and encoded
chunks; the bridge protects the chunks with SFrame and sends them to the
relay, and hands decrypted frames back. Everything here follows the
"Local UI channel" section of docs/PROTOCOL.md.

Fail closed: a chunk that arrives while media is not encrypted under the
current epoch is dropped, never sent (there is no unencrypted fallback), and
the glass is told so by a ``padlock`` message.

Nothing here logs key material, chat texts or display names, and no
plaintext media is kept: a chunk lives only until it is protected (or
handed to the glass) and forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

from ..meeting import events as ev
from ..meeting.errors import MeetingError
from ..meeting.identity import Identity
from ..meeting.link import MeetingLink
from ..meeting.meeting import Meeting, MeetingConfig, Phase
from ..meeting.names import normalize_display_name
from ..meeting.people import PeopleBook
from ..wire import StreamKind, WireError, pack_payload, unpack_payload
from .connection import RelayConnectionError
from .session import MeetingSession

log = logging.getLogger("clave.engine.bridge")

Json = dict[str, Any]

GLASS_CHUNK_HEADER = struct.Struct(">BBQ")
"""glass -> engine binary: kind, flags (bit 0 keyframe), capture time (µs since the Unix epoch)."""
ENGINE_FRAME_HEADER = struct.Struct(">BBIQ")
"""engine -> glass binary: kind, flags (bit 0 keyframe), sender leaf, capture time (µs)."""
FLAG_KEYFRAME = 0x01

MAX_TEXT_CHARS = 64 * 1024
"""Largest JSON control message accepted from the glass."""
MAX_MEDIA_QUEUE = 256
"""Decrypted frames waiting for a slow glass at most; newer ones are dropped."""
FRAME_FAILED_PER_SECOND = 3
"""``frame_failed`` messages per sender and second at most."""
DROP_NOTICE_INTERVAL = 1.0
"""Seconds between two padlock notices about dropped (unencrypted) chunks."""
_FORWARDED_ERRORS = (ev.ErrorCode.commit_failed, ev.ErrorCode.relay_error, ev.ErrorCode.lobby_full)
_KIND_NAMES = {StreamKind.video: "video", StreamKind.screen: "screen"}


class GlassBusy(Exception):
    """A glass is already connected to this engine (one at a time)."""


@dataclass
class BridgeCounters:
    """What crossed the bridge (numbers only, for tests and benchmarks)."""

    chunks_received: int = 0
    """Encoded chunks from the glass."""
    chunks_sent: int = 0
    """... protected with SFrame and sent to the relay."""
    chunks_dropped: int = 0
    """... dropped because media was not encrypted (before joining, in the lobby, rekeying,
    after leaving): never sent anywhere."""
    chunks_malformed: int = 0
    frames_to_glass: int = 0
    """Decrypted frames queued for the glass."""
    frames_dropped_slow_glass: int = 0
    """Decrypted frames dropped because the glass did not keep up (or was not connected)."""


class GlassOutbox:
    """Messages for one glass connection: JSON control first, then media (bounded)."""

    def __init__(self, max_media: int = MAX_MEDIA_QUEUE) -> None:
        self._control: deque[str] = deque()
        self._media: deque[bytes] = deque()
        self._max_media = max_media
        self._wake = asyncio.Event()
        self.closed = False

    def put_control(self, message: Json) -> None:
        if not self.closed:
            self._control.append(json.dumps(message, separators=(",", ":"), ensure_ascii=False))
            self._wake.set()

    def put_media(self, data: bytes) -> bool:
        """Queue a binary frame; False (dropped) if the queue is full or closed."""
        if self.closed or len(self._media) >= self._max_media:
            return False
        self._media.append(data)
        self._wake.set()
        return True

    def close(self) -> None:
        self.closed = True
        self._control.clear()
        self._media.clear()
        self._wake.set()

    async def get(self) -> str | bytes | None:
        """The next message to send (control before media); None once closed."""
        while True:
            if self.closed:
                return None
            if self._control:
                return self._control.popleft()
            if self._media:
                return self._media.popleft()
            self._wake.clear()
            await self._wake.wait()


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
    ) -> None:
        self.link = link
        self.owner_key = owner_key
        self.identity = identity
        self.people = people
        self._on_people_changed = on_people_changed
        self.host = host
        self.default_name = default_name
        self.auto_admit = auto_admit
        self.config = config
        self.relay_url = relay_url
        self.session: MeetingSession | None = None
        self.counters = BridgeCounters()
        self.ended = asyncio.Event()
        """Set once the meeting is over for this participant (left, removed, refused, lost)."""
        self.ended_reason: str | None = None
        self.ended_outcome: str | None = None
        self._last_stats: Json | None = None
        self._outbox: GlassOutbox | None = None
        self._joining = False
        self._closing = False
        self._sent_state: str | None = None
        self._sent_padlock: Json | None = None
        self._last_drop_notice = 0.0
        self._last_malformed_notice = 0.0
        self._failed_window: dict[int | None, tuple[float, int]] = {}
        self._needs_keyframe: set[tuple[int, int]] = set()
        self._last_kf_request: dict[tuple[int, int], float] = {}
        self._known_leaves: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.alerts: list[Json] = []
        """Security alerts reported to the glass (kept for a reconnecting tab)."""

    # ------------------------------------------------------------------ glass connection

    @property
    def glass_connected(self) -> bool:
        return self._outbox is not None

    def attach(self) -> GlassOutbox:
        """A glass connected: returns its outbox, already holding hello, state and padlock.

        Raises :class:`GlassBusy` if another glass is connected.
        """
        if self._outbox is not None:
            raise GlassBusy("another window is already connected to this engine")
        outbox = self._outbox = GlassOutbox()
        outbox.put_control(
            {
                "type": "hello",
                "role": "host" if self.host else "guest",
                "link": self.current_link.url,
                "info_url": self.current_link.info_url,
                "default_name": self.default_name,
                "fingerprint": self.identity.fingerprint if self.identity else None,
            }
        )
        self._sent_state = self._sent_padlock = None
        self._refresh()
        for alert in self.alerts:
            outbox.put_control(alert)
        if self.ended_reason is not None:
            outbox.put_control(
                {"type": "ended", "reason": self.ended_reason, "outcome": self.ended_outcome}
            )
        self._want_keyframes()  # a (re)connected glass has no decoder state
        return outbox

    def detach(self, outbox: GlassOutbox) -> None:
        """The glass disconnected; the meeting goes on (a reloaded tab reconnects)."""
        outbox.close()
        if self._outbox is outbox:
            self._outbox = None
            self._needs_keyframe.clear()

    @property
    def current_link(self) -> MeetingLink:
        """The invitation as it is now (a host may have replaced it)."""
        return self.session.meeting.link if self.session is not None else self.link

    def _send(self, message: Json) -> None:
        if self._outbox is not None:
            self._outbox.put_control(message)

    # ------------------------------------------------------------------ what the glass sees

    @property
    def phase(self) -> str:
        if self.ended_reason is not None:
            return "ended"
        if self.session is not None:
            return self.session.meeting.phase.value
        return "connecting" if self._joining else "prejoin"

    @property
    def last_stats(self) -> Json | None:
        """The last ``stats`` object the glass sent (latency measurements), if any."""
        return self._last_stats

    def state(self) -> Json:
        """The ``state`` message (engine -> glass)."""
        meeting = self.session.meeting if self.session is not None else None
        in_meeting = meeting is not None and meeting.phase is Phase.in_meeting
        is_host = bool(in_meeting and meeting is not None and meeting.is_host)
        roster: list[Json] = []
        lobby: list[Json] = []
        policy = {"locked": False, "auto_admit": self.auto_admit if self.host else False}
        pending: list[int] = []
        if meeting is not None and in_meeting:
            roster = [
                {
                    "leaf": e.leaf,
                    "name": e.name,
                    "fingerprint": e.fingerprint,
                    "is_host": e.is_host,
                    "is_self": e.is_self,
                    "role": e.role.value,
                    "familiarity": e.familiarity,
                    "verified": e.verified,
                    "confusable_with": e.confusable_with,
                }
                for e in meeting.roster
            ]
            if is_host:
                lobby = [
                    {
                        "id": r.request_id,
                        "name": r.display_name,
                        "fingerprint": r.fingerprint,
                        "familiarity": r.familiarity,
                        "confusable_with": r.confusable_with,
                    }
                    for r in meeting.lobby
                ]
            p = meeting.policy
            if p is not None:
                policy = {"locked": p.locked, "auto_admit": p.auto_admit}
            pending = list(meeting.pending_removals)
        return {
            "type": "state",
            "phase": self.phase,
            "self_leaf": meeting.own_leaf if meeting is not None else None,
            "is_host": is_host,
            "epoch": meeting.epoch if meeting is not None else None,
            "security_code": meeting.security_code if meeting is not None else None,
            "roster": roster,
            "lobby": lobby,
            "policy": policy,
            "pending_removals": pending,
            "ordering": meeting.ordering_stalled if meeting is not None else None,
            "link": self.current_link.url if in_meeting else None,
            "info_url": self.current_link.info_url,
        }

    def padlock(self) -> Json:
        """The ``padlock`` message: "encrypted" only while media is protected under the
        current epoch (:attr:`Meeting.encrypted`)."""
        meeting = self.session.meeting if self.session is not None else None
        if self.ended_reason is not None or (meeting is not None and meeting.phase is Phase.ended):
            return _padlock("not_encrypted", "not in the meeting any more: nothing is sent")
        if meeting is None:
            if self._joining:
                return _padlock("not_encrypted", "connecting to the relay: nothing is sent yet")
            return _padlock("not_encrypted", "not in the meeting yet: nothing is sent")
        if meeting.phase is Phase.connecting:
            return _padlock("not_encrypted", "connecting to the relay: nothing is sent yet")
        if meeting.phase is Phase.lobby:
            return _padlock("not_encrypted", "waiting to be admitted: nothing is sent yet")
        if not meeting.encrypted:
            return _padlock(
                "rekeying", "new keys are being installed: media is held back until they are"
            )
        if meeting.ordering_stalled is not None:
            return _padlock(
                "warning",
                "the relay is not ordering changes: "
                f"{meeting.ordering_stalled}. Media stays encrypted under epoch {meeting.epoch}",
            )
        if meeting.commit_in_flight:
            return _padlock(
                "rekeying",
                f"keys are being renegotiated; media stays encrypted under epoch {meeting.epoch}",
            )
        return _padlock(
            "encrypted",
            f"media is end-to-end encrypted (SFrame keys of MLS epoch {meeting.epoch})",
        )

    def _refresh(self) -> None:
        """Send ``state`` and ``padlock`` if they changed since last sent."""
        if self._outbox is None:
            return
        state = self.state()
        text = json.dumps(state, sort_keys=True)
        if text != self._sent_state:
            self._sent_state = text
            self._send(state)
        padlock = self.padlock()
        if padlock != self._sent_padlock:
            self._sent_padlock = padlock
            self._send(padlock)

    # ------------------------------------------------------------------ glass -> engine

    async def handle_text(self, text: str) -> None:
        """One JSON control message from the glass. Bad input gets an ``error`` reply."""
        if len(text) > MAX_TEXT_CHARS:
            self._error("control message too large")
            return
        try:
            msg = json.loads(text)
        except ValueError:
            self._error("control message is not JSON")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self._error('control message must be an object with a string "type"')
            return
        kind = msg["type"]
        handler = _HANDLERS.get(kind)
        if handler is None:
            self._error(f"unknown message type {kind[:40]!r}")
            return
        try:
            await handler(self, msg)
        except _BadMessage as exc:
            self._error(str(exc))
        self._refresh()

    async def handle_binary(self, data: bytes) -> None:
        """One encoded chunk from the glass: protect and send it, or drop it (fail closed)."""
        self.counters.chunks_received += 1
        head = GLASS_CHUNK_HEADER.size
        if len(data) <= head or data[0] > StreamKind.screen or data[1] & ~FLAG_KEYFRAME:
            self.counters.chunks_malformed += 1
            now = time.monotonic()
            if now - self._last_malformed_notice >= DROP_NOTICE_INTERVAL:
                self._last_malformed_notice = now
                self._error("malformed media chunk dropped (see Local UI channel in PROTOCOL.md)")
            return
        kind_b, flags, capture_us = GLASS_CHUNK_HEADER.unpack_from(data)
        kind = StreamKind(kind_b)
        session = self.session
        sent = False
        if session is not None and self.ended_reason is None:
            try:
                sent = await session.send_media(
                    kind, bool(flags & FLAG_KEYFRAME), pack_payload(capture_us, data[head:])
                )
            except WireError as exc:
                self._error(f"media chunk not sent: {exc}")
                return
            except RelayConnectionError:
                sent = False
        if sent:
            self.counters.chunks_sent += 1
            return
        self.counters.chunks_dropped += 1
        now = time.monotonic()
        if now - self._last_drop_notice >= DROP_NOTICE_INTERVAL:
            self._last_drop_notice = now
            padlock = self.padlock()
            self._sent_padlock = padlock
            self._send(padlock)

    async def _on_join(self, msg: Json) -> None:
        if self.session is not None or self._joining or self.ended_reason is not None:
            raise _BadMessage("already joined (one meeting per engine)")
        name = msg.get("name")
        if not isinstance(name, str):
            raise _BadMessage('join needs a string "name"')
        try:
            name = normalize_display_name(name)
        except MeetingError as exc:
            raise _BadMessage(str(exc)) from None
        self._joining = True
        self._spawn(self._start_session(name), "clave-glass-join")

    async def _start_session(self, name: str) -> None:
        try:
            session = await MeetingSession.start(
                self.link,
                name,
                host=self.host,
                on_event=self._on_event,
                auto_admit=self.auto_admit,
                config=self.config,
                relay_url=self.relay_url,
                owner_key=self.owner_key,
                identity=self.identity,
                people=self.people,
                on_change=self._refresh,
            )
        except RelayConnectionError as exc:
            self._joining = False
            self._error(str(exc))
            self._end("could not reach the relay")
            return
        except (MeetingError, ValueError) as exc:
            self._joining = False
            self._error(f"could not start the meeting: {exc}")
            self._end("could not start the meeting")
            return
        self._joining = False
        if self.ended_reason is not None:  # the glass left while we were connecting
            await session.close(leave=True)
            return
        self.session = session
        self._refresh()
        self._spawn(self._watch(session), "clave-glass-watch")

    async def _watch(self, session: MeetingSession) -> None:
        await session.closed.wait()
        self._end("the connection to the relay was lost")

    async def _act(self, what: str, action: Callable[[Meeting], object]) -> object:
        session = self.session
        if session is None or session.meeting.phase is not Phase.in_meeting:
            raise _BadMessage(f"cannot {what}: not in the meeting")
        try:
            return await session.act(action)
        except (MeetingError, ValueError) as exc:
            raise _BadMessage(f"cannot {what}: {exc}") from None
        except RelayConnectionError:
            raise _BadMessage(f"cannot {what}: the relay connection is lost") from None

    async def _on_chat(self, msg: Json) -> None:
        text = msg.get("text")
        if not isinstance(text, str):
            raise _BadMessage('chat needs a string "text"')
        await self._act("send a chat message", lambda m: m.send_chat(text))
        session = self.session
        if session is not None:  # echo: encrypted and sent, so the glass can mark it so
            meeting = session.meeting
            self._send(
                {
                    "type": "chat",
                    "sender": meeting.own_leaf,
                    "name": meeting.name,
                    "text": text,
                    "ts": time.time_ns() // 1_000_000,
                }
            )

    async def _on_admit(self, msg: Json) -> None:
        rid = _int(msg, "id")
        if await self._act("admit", lambda m: m.admit(rid)) is False:
            raise _BadMessage("that join request is gone")

    async def _on_deny(self, msg: Json) -> None:
        rid = _int(msg, "id")
        if await self._act("deny", lambda m: m.deny(rid)) is False:
            raise _BadMessage("that join request is gone or already being admitted")

    async def _on_lock(self, msg: Json) -> None:
        locked = _bool(msg, "locked")
        await self._act("lock the meeting", lambda m: m.set_locked(locked))

    async def _on_auto_admit(self, msg: Json) -> None:
        on = _bool(msg, "on")
        await self._act("change auto-admit", lambda m: m.set_auto_admit(on))

    def _check_person(self, msg: Json, leaf: int) -> None:
        """If the glass names the person (``fingerprint``), the leaf must still be theirs:
        a leaf freed by someone leaving may be reused by a newcomer meanwhile."""
        wanted = msg.get("fingerprint")
        if wanted is None:
            return
        session = self.session
        entry = None
        if session is not None:
            entry = next((e for e in session.meeting.roster if e.leaf == leaf), None)
        if not isinstance(wanted, str) or entry is None or entry.fingerprint != wanted:
            raise _BadMessage("that member is no longer in the meeting")

    async def _on_remove(self, msg: Json) -> None:
        leaf = _int(msg, "leaf")
        self._check_person(msg, leaf)
        rotate = msg.get("replace_invitation", False)
        if not isinstance(rotate, bool):
            raise _BadMessage('"replace_invitation" must be true or false')
        await self._act(
            "remove a member", lambda m: m.remove_member(leaf, replace_invitation=rotate)
        )

    async def _on_set_host(self, msg: Json) -> None:
        leaf = _int(msg, "leaf")
        self._check_person(msg, leaf)
        host = _bool(msg, "host")
        await self._act("change roles", lambda m: m.set_host(leaf, host))

    async def _on_verify(self, msg: Json) -> None:
        leaf = _int(msg, "leaf")
        self._check_person(msg, leaf)
        verified = _bool(msg, "verified")
        await self._act("mark a member verified", lambda m: m.set_verified(leaf, verified))
        self._people_changed()

    async def _on_rotate(self, msg: Json) -> None:
        await self._act("replace the invitation", lambda m: m.rotate_invitation())

    async def _on_request_keyframe(self, msg: Json) -> None:
        leaf = _int(msg, "leaf")
        kind = _stream_kind(msg)
        await self._act("request a keyframe", lambda m: m.request_keyframe(leaf, kind))

    async def _on_leave(self, msg: Json) -> None:
        await self.close()
        self._end("you left the meeting")

    async def _on_stats(self, msg: Json) -> None:
        self._last_stats = msg

    # ------------------------------------------------------------------ engine -> glass

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.MediaFrameDecrypted):
            self._forward_frame(event)
            return
        if isinstance(event, ev.ChatReceived):
            self._send(
                {
                    "type": "chat",
                    "sender": event.sender,
                    "name": event.name,
                    "text": event.text,
                    "ts": time.time_ns() // 1_000_000,
                }
            )
        elif isinstance(event, ev.KeyframeRequested):
            name = _KIND_NAMES.get(event.kind)
            if name is not None:
                self._send({"type": "keyframe_request", "kind": name})
        elif isinstance(event, ev.FrameRejected):
            self._frame_failed(event)
            return
        elif isinstance(event, ev.EpochChanged):
            leaves = {e.leaf for e in event.roster}
            if leaves - self._known_leaves:
                # Newcomers (or we ourselves, just admitted) need a keyframe to start decoding.
                self._send({"type": "keyframe_request", "kind": "video"})
                self._send({"type": "keyframe_request", "kind": "screen"})
                self._people_changed()  # whom we met: the core remembered them
            self._known_leaves = leaves
        elif isinstance(event, ev.JoinDeclined):
            self._end(event.reason, outcome=event.outcome)
        elif isinstance(event, (ev.Removed, ev.MeetingEnded)):
            self._end(event.reason)
        elif isinstance(event, ev.SecurityAlert):
            alert = {
                "type": "alert",
                "id": len(self.alerts) + 1,
                "kind": event.kind.value,
                "message": event.message,
            }
            if len(self.alerts) < 50:
                self.alerts.append(alert)
            self._send(alert)
        elif isinstance(event, ev.JoinRefused):
            self._end(f"the relay refused: {event.reason}")
        elif isinstance(event, ev.Error):
            log.info("meeting reported %s", event.code)  # messages may carry names: not logged
            if event.code in _FORWARDED_ERRORS:
                self._error(event.message)
        self._refresh()

    def _forward_frame(self, event: ev.MediaFrameDecrypted) -> None:
        try:
            capture_us, data = unpack_payload(event.payload)
        except WireError:
            self._frame_failed(ev.FrameRejected("media plaintext without codec data", event.sender))
            return
        key = (event.sender, int(event.kind))
        if event.kind != StreamKind.audio and key in self._needs_keyframe:
            if not event.keyframe:
                self.counters.frames_dropped_slow_glass += 1
                return
            self._needs_keyframe.discard(key)
        outbox = self._outbox
        flags = FLAG_KEYFRAME if event.keyframe else 0
        frame = ENGINE_FRAME_HEADER.pack(int(event.kind), flags, event.sender, capture_us) + data
        if outbox is not None and outbox.put_media(frame):
            self.counters.frames_to_glass += 1
            return
        self.counters.frames_dropped_slow_glass += 1
        if event.kind != StreamKind.audio and outbox is not None:
            # The glass's decoder has a gap now: skip deltas until a keyframe, and ask for one.
            self._needs_keyframe.add(key)
            self._ask_keyframe(event.sender, event.kind)

    def _ask_keyframe(self, leaf: int, kind: StreamKind) -> None:
        session = self.session
        if session is None or session.meeting.phase is not Phase.in_meeting:
            return
        now = time.monotonic()
        key = (leaf, int(kind))
        if now - self._last_kf_request.get(key, 0.0) < 0.5:
            return
        self._last_kf_request[key] = now
        # Called from the session's event handler: the reader flushes what this queues.
        session.meeting.request_keyframe(leaf, kind)

    def _want_keyframes(self) -> None:
        session = self.session
        if session is None or session.meeting.phase is not Phase.in_meeting:
            return
        me = session.meeting.own_leaf
        for entry in session.meeting.roster:
            if entry.leaf != me:
                for kind in (StreamKind.video, StreamKind.screen):
                    self._last_kf_request.pop((entry.leaf, int(kind)), None)
                    self._ask_keyframe(entry.leaf, kind)
        self._spawn(session.flush(), "clave-glass-flush")

    def _frame_failed(self, event: ev.FrameRejected) -> None:
        now = time.monotonic()
        start, count = self._failed_window.get(event.sender, (now, 0))
        if now - start >= 1.0:
            start, count = now, 0
        if count >= FRAME_FAILED_PER_SECOND:
            self._failed_window[event.sender] = (start, count)
            return
        self._failed_window[event.sender] = (start, count + 1)
        name: str | None = None
        if event.sender is not None and self.session is not None:
            for entry in self.session.meeting.roster:
                if entry.leaf == event.sender:
                    name = entry.name
        self._send(
            {"type": "frame_failed", "sender": event.sender, "name": name, "reason": event.reason}
        )

    def _error(self, message: str) -> None:
        self._send({"type": "error", "message": message})

    def _people_changed(self) -> None:
        if self.people is not None and self._on_people_changed is not None:
            try:
                self._on_people_changed(self.people)
            except Exception:  # a full disk must not end the meeting
                log.exception("could not save the people this engine met")

    def _end(self, reason: str, outcome: str | None = None) -> None:
        """The meeting is over for us; ``outcome`` is a lobby answer ("declined", "locked",
        "full") when a host turned us away."""
        if self.ended_reason is not None:
            return
        self.ended_reason = reason
        self.ended_outcome = outcome
        self._send({"type": "ended", "reason": reason, "outcome": outcome})
        self._refresh()
        self.ended.set()
        session = self.session
        if session is not None and not self._closing:
            # Off the reader task: close() cancels the reader.
            self._closing = True
            self._spawn(session.close(leave=False), "clave-glass-close")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Leave the meeting (Bye + Leave to the relay) and close the relay connection."""
        session = self.session
        if session is not None and not self._closing:
            self._closing = True
            await session.close(leave=True)
        self._end("you left the meeting")
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 5)

    def counters_dict(self) -> dict[str, int]:
        return asdict(self.counters)


class _BadMessage(Exception):
    pass


def _padlock(state: str, detail: str) -> Json:
    return {"type": "padlock", "state": state, "detail": detail}


def _int(msg: Json, key: str) -> int:
    """A non-negative integer field; a decimal string is accepted too (JavaScript glasses
    may keep ids as strings)."""
    value = msg.get(key)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise _BadMessage(f'"{key}" must be an integer')
    return value


def _bool(msg: Json, key: str) -> bool:
    value = msg.get(key)
    if not isinstance(value, bool):
        raise _BadMessage(f'"{key}" must be true or false')
    return value


def _stream_kind(msg: Json) -> StreamKind:
    kind = msg.get("kind")
    if kind == "video":
        return StreamKind.video
    if kind == "screen":
        return StreamKind.screen
    raise _BadMessage('"kind" must be "video" or "screen"')


_HANDLERS = {
    "join": GlassBridge._on_join,
    "chat": GlassBridge._on_chat,
    "admit": GlassBridge._on_admit,
    "deny": GlassBridge._on_deny,
    "lock": GlassBridge._on_lock,
    "auto_admit": GlassBridge._on_auto_admit,
    "remove": GlassBridge._on_remove,
    "set_host": GlassBridge._on_set_host,
    "verify": GlassBridge._on_verify,
    "rotate": GlassBridge._on_rotate,
    "request_keyframe": GlassBridge._on_request_keyframe,
    "leave": GlassBridge._on_leave,
    "stats": GlassBridge._on_stats,
}

__all__ = [
    "ENGINE_FRAME_HEADER",
    "FLAG_KEYFRAME",
    "GLASS_CHUNK_HEADER",
    "BridgeCounters",
    "GlassBridge",
    "GlassBusy",
    "GlassOutbox",
]
