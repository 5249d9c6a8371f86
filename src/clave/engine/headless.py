"""A headless participant: test-pattern VP8 video (optionally in simulcast layers) and
an Opus tone with DTX, decoded per sender; whose video it receives follows who speaks
(:mod:`.headless_media`).

The same engine as a person's, with PyAV instead of a browser. Used by
``clave meet/join --headless``, ``clave demo``, tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..media import MediaCounter
from ..meeting import events as ev
from ..meeting.identity import Identity
from ..meeting.link import MeetingLink
from ..meeting.meeting import Meeting, MeetingConfig, Phase
from ..meeting.people import PeopleBook
from ..sframe.errors import SFrameError
from ..sframe.header import decode_header
from ..sframe.mls import BASE_KEY_LABEL
from ..sframe.suites import get_suite
from ..tasks import cancel_and_wait
from ..wire import StreamKind, WireError, decode_media
from .audit import base_key_opens
from .headless_media import VIDEO_FPS, HeadlessMedia, MediaReport
from .removal_audit import RemovalAudit
from .session import MeetingSession
from .tls import RelayTrust

log = logging.getLogger("clave.engine.headless")

STATUS_SIGNAL: signal.Signals | None = getattr(signal, "SIGUSR1", None)
"""``kill -USR1 PID`` makes every headless participant of a process print one
``status: {JSON}`` line to standard output: its report so far (see
:meth:`HeadlessParticipant.status`), so a supervisor can follow a meeting without
stopping it."""
STATUS_PREFIX = "status: "
GAP_S = 0.1
"""A pause at least this long in one sender's stream, in decoding or in capture times
(frames lost), is listed in the report (``media_gaps``)."""
MAX_GAPS = 200
MAX_AUDIT = 20_000
"""Frames tried with an old key after our membership ended, at most."""
_MAX_REASONS = 20
_MAX_NAMES = 100


@dataclass
class ParticipantReport:
    """What one headless participant saw, for printing and for tests (no secrets)."""

    name: str
    joined: bool = False
    security_codes: list[tuple[int, str]] = field(default_factory=list)
    roster: list[str] = field(default_factory=list)
    decoded: dict[str, dict[str, int]] = field(default_factory=dict)
    screen_frames: dict[str, int] = field(default_factory=dict)
    """Decoded screen-share frames per sender (a separate stream from the camera)."""
    chats: list[tuple[str, str]] = field(default_factory=list)
    frames_sent: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    frames_rejected: int = 0
    media_errors: list[str] = field(default_factory=list)
    """Media loops that stopped on an error (none in a healthy run)."""
    rejections: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    removed: bool = False
    ended_reason: str = ""
    frames_after_removal: int = 0
    """Media frames that reached us after our removal: after saying Bye
    (``depart_and_observe``) or after a host removed us (e.g. away past the resume
    window), while the relay still sent us frames."""
    attempts_after_removal: int = 0
    """Of those, frames under a KID of a later epoch, each tried with the key and salt our
    last epoch's SFrame base key gives for that KID (RFC 9605 section 4.4.2)."""
    decrypted_after_removal: int = 0
    """How many of those attempts authenticated: must be 0."""
    old_epoch_frames_after_removal: int = 0
    """Frames of our last epoch still in flight after our removal, tried the same way ..."""
    old_epoch_frames_opened: int = 0
    """... and how many opened (all of them: the attempt itself works)."""
    members_left: list[str] = field(default_factory=list)
    recorders: list[str] = field(default_factory=list)
    """Members that announced they record the meeting, in the order first announced."""
    alerts: list[str] = field(default_factory=list)
    """Security alerts (counterfeit Welcomes, forged replies, ...): none in a healthy run."""
    declined: str = ""
    """A host's answer to our join request, if it turned us away."""
    refused: str = ""
    """The relay's error code (e.g. ``room_full``) if it refused us the room."""
    ordering_stalls: int = 0
    link_state: str = "connected"
    """The relay link when the report was taken: connected, reconnecting or closed."""
    connections_lost: int = 0
    """Times the relay connection dropped (``ConnectionLost`` events)."""
    lost_reasons: list[str] = field(default_factory=list)
    """Why, for the first 20 of them."""
    reconnects: int = 0
    """Times a dropped connection was re-established and the meeting resumed on it."""
    decoded_at_reconnect: dict[str, dict[str, int]] = field(default_factory=dict)
    """``decoded`` as it stood at the last reconnect: ``decoded`` minus this is what was
    decoded since, per sender."""
    stranded: list[str] = field(default_factory=list)
    """Reasons the engine gave up on resuming its membership (``Stranded`` events)."""
    rejoins: list[str] = field(default_factory=list)
    """Reasons the engine fell back to a fresh admission through the lobby."""
    closed_reason: str = ""
    """Why the relay link was closed for good, if it was."""
    members_away: list[str] = field(default_factory=list)
    """Members whose connection vanished without a goodbye, each time it happened."""
    members_back: list[str] = field(default_factory=list)
    """Members that came back within the resume window, each time."""
    newest_capture: dict[str, float] = field(default_factory=dict)
    """Per sender, the capture time (Unix seconds, the sender's clock) of the newest
    camera frame decoded: on one machine, proof that a frame captured after some
    moment was decoded."""
    media_gaps: list[tuple[str, str, float, float, float, float]] = field(default_factory=list)
    """``(sender, kind, decoded before, decoded after, captured before, captured after)``
    in Unix seconds, for each pair of consecutively decoded frames of one sender's
    stream at least ``GAP_S`` apart in decoding or in capture time (the last
    ``MAX_GAPS``): when live media came back after a fault, for benchmarks."""
    media: MediaReport = field(default_factory=MediaReport)
    """Simulcast layers sent and decoded, DTX, the last-N choice and congestion caps."""

    @property
    def security_code(self) -> str | None:
        return self.security_codes[-1][1] if self.security_codes else None


class HeadlessParticipant:
    """Join (or host) a meeting and exchange real VP8 video and Opus audio."""

    def __init__(
        self,
        link: MeetingLink,
        name: str,
        *,
        host: bool = False,
        auto_admit: bool = True,
        video: bool = True,
        audio: bool = True,
        config: MeetingConfig | None = None,
        relay_url: str | None = None,
        keep_chunks: int = 0,
        audit: bool = False,
        owner_key: bytes | None = None,
        identity: Identity | None = None,
        people: PeopleBook | None = None,
        relay_trust: RelayTrust | None = None,
        simulcast: int = 1,
        speaking: bool = True,
        fps: int = VIDEO_FPS,
    ) -> None:
        self.link = link
        self.name = name
        self.host = host
        self.auto_admit = auto_admit
        self.send_video = video
        self.send_audio = audio
        self.config = config
        self.relay_url = relay_url
        self.relay_trust = relay_trust
        """How the relay's TLS certificate is checked (None: the system's CAs)."""
        self.owner_key = owner_key
        self.identity = identity
        self.people = people
        self.report = ParticipantReport(name)
        self.counter = MediaCounter()
        self.media = HeadlessMedia(
            name, self.counter, self._current, simulcast=simulcast, speaking=speaking, fps=fps
        )
        """Encoders (``simulcast`` layers at ``fps``), DTX while not ``speaking``, last-N."""
        self.media.report = self.report.media
        self.media.on_sent = self._sent
        self.session: MeetingSession | None = None
        self.in_meeting = asyncio.Event()
        self.ended = asyncio.Event()
        self.keep_chunks = keep_chunks
        self.sent_chunks: list[bytes] = []
        self.audit = audit
        self.audit_epoch_keys: list[tuple[int, bytes]] = []
        """With ``audit``: ``(epoch, SFrame base key)`` of each epoch (RFC 9605 section
        5.2), kept in memory only so an audit can search the relay's traffic for the keys
        in use (:func:`clave.engine.audit.collect_sframe_keys` checks they are)."""
        self._last_keys: tuple[int, bytes] | None = None
        """After we left (``--linger``) or were stranded: the epoch and SFrame base key
        that frames arriving since are tried with."""
        self._last_decode: dict[tuple[str, str], tuple[float, float]] = {}
        """Per (sender, kind): when its last frame was decoded, and captured."""
        self._tasks: list[asyncio.Task[None]] = []
        self._epoch_seen: asyncio.Event = asyncio.Event()
        self._stranded_audit = False
        """Set once our membership ended without our Bye (``Stranded``): every frame a
        later core receives is also tried with our last epoch's key."""
        self._tapped: Meeting | None = None
        self._core: Meeting | None = None
        self._newest_keys: tuple[int, bytes] | None = None
        """Our newest epoch and its SFrame base key. A headless participant also plays
        the removed member who keeps what it had: stranded (removed while away), it tries
        every frame that still reaches it with this key (counted in the report, which
        must show that none opens). The key stays in this process's memory, where the
        meeting's own secrets are."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.session = await MeetingSession.start(
            self.link,
            self.name,
            host=self.host,
            auto_admit=self.auto_admit,
            on_event=self._on_event,
            on_change=self._on_change,
            config=self.config,
            relay_url=self.relay_url,
            owner_key=self.owner_key,
            identity=self.identity,
            people=self.people,
            trust=self.relay_trust,
        )
        mic, cam = self.send_audio, self.send_video
        await self.session.act(lambda m: m.set_media_state(mic=mic, cam=cam))  # in our Hellos
        session, ready, ended = self.session, self.in_meeting, self.ended
        loops = [(self.send_video, self.media.video_loop, "video"),
                 (self.send_audio, self.media.audio_loop, "audio")]  # fmt: skip
        for wanted, loop, kind in loops:
            if wanted:
                task = asyncio.create_task(loop(session, ready, ended), name=f"{kind}-{self.name}")
                self._tasks.append(task)
        stage = self.media.director.run(session, lambda: not self.ended.is_set())
        self._tasks.append(asyncio.create_task(stage, name=f"stage-{self.name}"))
        for task in self._tasks:
            task.add_done_callback(self._media_task_done)
        _status_signal_watch(self)

    def _media_task_done(self, task: asyncio.Task[None]) -> None:
        """A media loop that dies must not do so silently."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.report.media_errors.append(f"{task.get_name()}: {type(exc).__name__}: {exc}")
        log.error("%s stopped: %s: %s", task.get_name(), type(exc).__name__, exc)

    async def wait_joined(self, timeout: float) -> bool:
        """True once in the meeting; False if not within ``timeout`` seconds or once the
        meeting is over for us before that (declined, refused: see :attr:`report`)."""
        waiters = [
            asyncio.create_task(self.in_meeting.wait()),
            asyncio.create_task(self.ended.wait()),
        ]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        return self.in_meeting.is_set()

    async def chat(self, text: str) -> None:
        assert self.session is not None
        await self.session.act(lambda m: m.send_chat(text))

    @property
    def audit_keys(self) -> list[bytes]:
        """With ``audit``: each epoch's SFrame base key."""
        return [key for _, key in self.audit_epoch_keys]

    def _config(self) -> MeetingConfig:
        return self.config or MeetingConfig()

    def _base_key(self, meeting: Meeting) -> bytes:
        """The current epoch's SFrame base key (RFC 9605 section 5.2), for audits only."""
        nk = get_suite(self._config().sframe_suite).nk
        return meeting.export_secret(BASE_KEY_LABEL.decode(), b"", nk)

    def status(self) -> dict[str, Any]:
        """The report so far as JSON-ready data (decoded counts included, the latency
        samples left out), as the status signal prints it."""
        self._refresh_report()
        data = asdict(self.report)
        data.pop("latencies_ms")
        data["security_code"] = self.report.security_code
        return data

    def _refresh_report(self) -> None:
        r = self.report
        r.decoded = self.counter.summary()
        session = self.session
        if session is not None:
            r.link_state = session.link_state
            r.closed_reason = session.closed_reason or r.closed_reason
            self._note_rejoin()

    def _note_rejoin(self) -> None:
        reason = None if self.session is None else self.session.rejoining
        rejoins = self.report.rejoins
        if reason and (not rejoins or rejoins[-1] != reason) and len(rejoins) < _MAX_REASONS:
            rejoins.append(reason)

    def _audit_frame(self, frame: bytes) -> None:
        """Try a media frame that reached us after our membership ended with our last
        epoch's SFrame base key: the key and salt it gives for the frame's own KID, a
        KID of a later epoch, must not authenticate it (counted in the report)."""
        r = self.report
        if self._last_keys is None or frame[1:2] != b"M" or r.frames_after_removal >= MAX_AUDIT:
            return
        config = self._config()
        mask = (1 << config.epoch_bits) - 1
        r.frames_after_removal += 1
        try:
            kid = decode_header(decode_media(frame).sframe)[0]
        except (WireError, SFrameError):
            return
        epoch, base_key = self._last_keys
        opens = base_key_opens(frame, base_key, suite=config.sframe_suite)
        if kid & mask == epoch & mask:  # still in flight from our last epoch
            r.old_epoch_frames_after_removal += 1
            r.old_epoch_frames_opened += opens
            return
        r.attempts_after_removal += 1
        if opens:
            r.decrypted_after_removal += 1

    def _on_change(self) -> None:
        """After the session fell back to a fresh admission (a new core): keep trying
        what arrives with the old membership's key."""
        session = self.session
        if session is None:
            return
        self._note_rejoin()
        core = session.meeting
        if core is not self._core:
            self._core = core
            self.media.forget()  # its leaves are other people
        if self._stranded_audit and core is not self._tapped:
            self._tapped = core
            receive = core.receive

            def tapped(frame: bytes) -> None:
                self._audit_frame(frame)
                receive(frame)

            core.receive = tapped  # type: ignore[method-assign]

    async def depart_and_observe(self, seconds: float) -> None:
        """Leave as anyone leaves, but first put a bare connection in the relay room, as
        an ex-member holding the invitation could (:class:`.removal_audit.RemovalAudit`):
        for ``seconds`` after leaving, every media frame it receives is tried with our
        last epoch's SFrame base key (see :meth:`_audit_frame`)."""
        assert self.session is not None
        session = self.session
        for task in self._tasks:
            task.cancel()
        meeting = session.meeting
        epoch = meeting.epoch
        assert epoch is not None
        self._last_keys = (epoch, self._base_key(meeting))
        audit = RemovalAudit(
            meeting.link, self._audit_frame, relay_url=self.relay_url, trust=self.relay_trust
        )
        await audit.start()
        try:
            await session.act(lambda m: m.leave())
            await asyncio.sleep(seconds)
        finally:
            await audit.stop()

    async def stop(self, *, leave: bool = True) -> ParticipantReport:
        _status_signal_unwatch(self)
        await cancel_and_wait(*self._tasks)
        if self.session is not None:
            await self.session.close(leave=leave)
        self._refresh_report()
        return self.report

    # ------------------------------------------------------------------ events

    def _on_event(self, event: ev.Event) -> None:
        handler = _EVENT_HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _current(self) -> Meeting | None:
        return None if self.session is None else self.session.meeting

    @property
    def _meeting(self) -> Meeting:
        assert self.session is not None
        return self.session.meeting

    def _on_frame(self, event: ev.MediaFrameDecrypted) -> None:
        if not self.media.decode(event, self._meeting, self._decoded):
            self.report.frames_rejected += 1

    def _decoded(self, event: ev.MediaFrameDecrypted, kind: str, n: int, capture_us: int) -> None:
        if kind == "screen":
            screen = self.report.screen_frames
            screen[event.name] = screen.get(event.name, 0) + n
            return
        self.counter.add(event.name, "audio" if kind == "audio" else "video", n)
        self._decoded_at(event.name, kind, capture_us)
        if kind == "video":
            captured = capture_us / 1e6
            newest = self.report.newest_capture
            newest[event.name] = max(captured, newest.get(event.name, 0.0))
            if len(self.report.latencies_ms) < 100_000:
                self.report.latencies_ms.append(time.time() * 1000 - capture_us / 1000)

    def _on_epoch(self, event: ev.EpochChanged) -> None:
        r, meeting = self.report, self._meeting
        r.joined = True
        r.security_codes.append((event.epoch, event.security_code))
        epoch = meeting.epoch
        if meeting.phase is Phase.in_meeting and epoch is not None:
            self._newest_keys = (epoch, self._base_key(meeting))
            if self.audit:
                self.audit_epoch_keys.append(self._newest_keys)
        r.roster = [e.name for e in event.roster]
        self._note_rejoin()
        self.in_meeting.set()
        self.media.request_keyframe()  # newcomers need one to start decoding
        self.media.director.refresh()

    def _on_lobby(self, event: ev.LobbyRequest) -> None:
        meeting = self._meeting
        if self.host and self.auto_admit and meeting.is_host:
            meeting.admit(event.request_id)

    def _on_keyframe_wanted(self, event: ev.KeyframeRequested) -> None:
        if event.kind == StreamKind.video:
            self.media.request_keyframe(event.layer)

    def _on_rejected(self, event: ev.FrameRejected) -> None:
        r = self.report
        r.frames_rejected += 1
        if len(r.rejections) < 20:
            r.rejections.append(event.reason)

    def _on_removed(self, event: ev.Removed) -> None:
        self.report.removed = True
        self.report.ended_reason = event.reason
        self.ended.set()

    def _on_lost(self, event: ev.ConnectionLost) -> None:
        r = self.report
        r.connections_lost += 1
        r.link_state = "reconnecting"
        if len(r.lost_reasons) < _MAX_REASONS:
            r.lost_reasons.append(event.reason)

    def _on_reconnected(self, event: ev.Reconnected) -> None:
        r = self.report
        r.reconnects += 1
        r.link_state = "connected"
        r.decoded_at_reconnect = self.counter.summary()
        self.media.request_keyframe()  # the others' decoders may need one

    def _on_stranded(self, event: ev.Stranded) -> None:
        if len(self.report.stranded) < _MAX_REASONS:
            self.report.stranded.append(event.reason)
        if self._last_keys is None and self._newest_keys is not None:
            self._last_keys = self._newest_keys
            self._stranded_audit = True

    def _on_away(self, event: ev.MemberAway) -> None:
        if len(self.report.members_away) < _MAX_NAMES:
            self.report.members_away.append(event.name)

    def _on_back(self, event: ev.MemberBack) -> None:
        if len(self.report.members_back) < _MAX_NAMES:
            self.report.members_back.append(event.name)

    def _on_ended(self, event: ev.MeetingEnded) -> None:
        self.report.ended_reason = event.reason
        self.ended.set()

    def _on_refused(self, event: ev.JoinRefused) -> None:
        self.report.refused = event.code
        self.report.ended_reason = event.reason
        self.ended.set()

    def _on_declined(self, event: ev.JoinDeclined) -> None:
        self.report.declined = event.outcome
        self.report.ended_reason = event.reason
        self.ended.set()

    def _on_alert(self, event: ev.SecurityAlert) -> None:
        self.report.alerts.append(f"{event.kind}: {event.message}")
        log.warning("%s: security alert %s", self.name, event.kind)

    def _on_stall(self, event: ev.OrderingStalled) -> None:
        self.report.ordering_stalls += 1

    def _on_error(self, event: ev.Error) -> None:
        log.info("%s: %s %s", self.name, event.code, event.message)

    def _on_capped(self, event: ev.LayerCapped) -> None:
        self.media.capped(event.layer)

    def _on_roster_change(self, event: ev.MemberMedia | ev.MemberLeft) -> None:
        if isinstance(event, ev.MemberLeft):
            self.report.members_left.append(event.name)
        elif event.recording and event.name not in self.report.recorders:
            self.report.recorders.append(event.name)
        self.media.director.refresh()

    def _decoded_at(self, sender: str, kind: str, capture_us: int) -> None:
        now, captured = time.time(), capture_us / 1e6
        last = self._last_decode.get((sender, kind))
        self._last_decode[sender, kind] = (now, captured)
        if last is not None and (now - last[0] >= GAP_S or captured - last[1] >= GAP_S):
            gaps = self.report.media_gaps
            gaps.append((sender, kind, last[0], now, last[1], captured))
            del gaps[:-MAX_GAPS]

    def _sent(self, kind: StreamKind, data: bytes) -> None:
        self.report.frames_sent["audio" if kind == StreamKind.audio else "video"] += 1
        if len(self.sent_chunks) < self.keep_chunks:
            self.sent_chunks.append(data)

    @property
    def phase(self) -> Phase | None:
        return None if self.session is None else self.session.meeting.phase


_EVENT_HANDLERS: dict[type, Callable[[HeadlessParticipant, Any], None]] = {
    ev.MediaFrameDecrypted: HeadlessParticipant._on_frame,
    ev.EpochChanged: HeadlessParticipant._on_epoch,
    ev.LobbyRequest: HeadlessParticipant._on_lobby,
    ev.ChatReceived: lambda p, e: p.report.chats.append((e.name, e.text)),
    ev.KeyframeRequested: HeadlessParticipant._on_keyframe_wanted,
    ev.FrameRejected: HeadlessParticipant._on_rejected,
    ev.MemberLeft: HeadlessParticipant._on_roster_change,
    ev.MemberMedia: HeadlessParticipant._on_roster_change,
    ev.Removed: HeadlessParticipant._on_removed,
    ev.ConnectionLost: HeadlessParticipant._on_lost,
    ev.Reconnected: HeadlessParticipant._on_reconnected,
    ev.Stranded: HeadlessParticipant._on_stranded,
    ev.MemberAway: HeadlessParticipant._on_away,
    ev.MemberBack: HeadlessParticipant._on_back,
    ev.MeetingEnded: HeadlessParticipant._on_ended,
    ev.JoinRefused: HeadlessParticipant._on_refused,
    ev.JoinDeclined: HeadlessParticipant._on_declined,
    ev.SecurityAlert: HeadlessParticipant._on_alert,
    ev.OrderingStalled: HeadlessParticipant._on_stall,
    ev.Error: HeadlessParticipant._on_error,
    ev.LayerCapped: HeadlessParticipant._on_capped,
}
"""What a headless participant does with each meeting event (others are ignored)."""


# ---------------------------------------------------------------------- status signal

_watched: list[HeadlessParticipant] = []
_status_loop: asyncio.AbstractEventLoop | None = None


def _print_statuses() -> None:
    for participant in list(_watched):
        line = json.dumps(participant.status(), separators=(",", ":"))
        print(f"{STATUS_PREFIX}{line}", flush=True)


def _status_signal_watch(participant: HeadlessParticipant) -> None:
    """Print ``participant``'s status on :data:`STATUS_SIGNAL` (main thread only)."""
    global _status_loop
    if STATUS_SIGNAL is None:
        return
    loop = asyncio.get_running_loop()
    if _status_loop is not loop:  # first participant of this loop
        try:
            loop.add_signal_handler(STATUS_SIGNAL, _print_statuses)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            return
        _status_loop = loop
        _watched.clear()
    _watched.append(participant)


def _status_signal_unwatch(participant: HeadlessParticipant) -> None:
    global _status_loop
    if participant not in _watched:
        return
    _watched.remove(participant)
    if not _watched and _status_loop is not None and STATUS_SIGNAL is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            _status_loop.remove_signal_handler(STATUS_SIGNAL)
        _status_loop = None
