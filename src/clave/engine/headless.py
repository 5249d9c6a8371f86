"""A headless participant: test-pattern VP8 video and an Opus tone, decoded per sender.

The same engine as a person's, with PyAV instead of a browser. Used by
``clave meet/join --headless``, ``clave demo``, tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..media import (
    EncodedChunk,
    MediaCounter,
    OpusDecoder,
    OpusEncoder,
    Pacer,
    TestPatternSource,
    ToneSource,
    VideoDecoder,
    VideoEncoder,
)
from ..meeting import events as ev
from ..meeting.identity import Identity
from ..meeting.link import MeetingLink
from ..meeting.meeting import Meeting, MeetingConfig, Phase
from ..meeting.people import PeopleBook
from ..sframe.errors import SFrameError
from ..sframe.header import decode_header
from ..sframe.mls import BASE_KEY_LABEL
from ..sframe.suites import get_suite
from ..wire import StreamKind, WireError, decode_media, pack_payload, unpack_payload
from .audit import base_key_opens
from .session import MeetingSession

log = logging.getLogger("clave.engine.headless")

VIDEO_FPS = 30
AUDIO_FRAME_S = 0.020


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
    """Media frames that reached us after our removal (``depart_and_observe``)."""
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
    alerts: list[str] = field(default_factory=list)
    """Security alerts (counterfeit Welcomes, forged replies, ...): none in a healthy run."""
    declined: str = ""
    """A host's answer to our join request, if it turned us away."""
    ordering_stalls: int = 0

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
    ) -> None:
        self.link = link
        self.name = name
        self.host = host
        self.auto_admit = auto_admit
        self.send_video = video
        self.send_audio = audio
        self.config = config
        self.relay_url = relay_url
        self.owner_key = owner_key
        self.identity = identity
        self.people = people
        self.report = ParticipantReport(name)
        self.counter = MediaCounter()
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
        """While departing for an audit: our newest epoch and its SFrame base key."""
        self._video_decoders: dict[tuple[int, StreamKind], VideoDecoder] = {}
        self._audio_decoders: dict[int, OpusDecoder] = {}
        self._last_kf_request: dict[tuple[int, StreamKind], float] = defaultdict(float)
        self._video_encoder: VideoEncoder | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._epoch_seen: asyncio.Event = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.session = await MeetingSession.start(
            self.link,
            self.name,
            host=self.host,
            auto_admit=self.auto_admit,
            on_event=self._on_event,
            config=self.config,
            relay_url=self.relay_url,
            owner_key=self.owner_key,
            identity=self.identity,
            people=self.people,
        )
        if self.send_video:
            self._tasks.append(asyncio.create_task(self._video_loop(), name=f"video-{self.name}"))
        if self.send_audio:
            self._tasks.append(asyncio.create_task(self._audio_loop(), name=f"audio-{self.name}"))
        for task in self._tasks:
            task.add_done_callback(self._media_task_done)

    def _media_task_done(self, task: asyncio.Task[None]) -> None:
        """A media loop that dies must not do so silently."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.report.media_errors.append(f"{task.get_name()}: {type(exc).__name__}: {exc}")
        log.error("%s stopped: %s: %s", task.get_name(), type(exc).__name__, exc)

    async def wait_joined(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.in_meeting.wait(), timeout)
        except TimeoutError:
            return False
        return True

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

    async def depart_and_observe(self, seconds: float) -> None:
        """Say Bye over MLS but stay connected to the relay for ``seconds`` after the
        committer removed us, trying every media frame that still arrives with our last
        epoch's SFrame base key: the key and salt it gives for the frame's own KID, a KID
        of a later epoch, must not authenticate it (counted in the report)."""
        assert self.session is not None
        session = self.session
        config = self._config()
        mask = (1 << config.epoch_bits) - 1

        def observe(frame: bytes) -> None:  # called once the meeting has ended for us
            if self._last_keys is None or frame[1:2] != b"M":
                return
            r = self.report
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
            if opens or session.meeting.try_decrypt_media(frame):
                r.decrypted_after_removal += 1

        session.observe_after_end = observe
        for task in self._tasks:
            task.cancel()

        def depart(m: Meeting) -> None:
            epoch = m.epoch
            assert epoch is not None
            self._last_keys = (epoch, self._base_key(m))
            m.depart_for_audit()

        await session.act(depart)
        try:
            await asyncio.wait_for(self.ended.wait(), 10)
        except TimeoutError:
            return
        await asyncio.sleep(seconds)

    async def stop(self, *, leave: bool = True) -> ParticipantReport:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.session is not None:
            await self.session.close(leave=leave)
        self.report.decoded = self.counter.summary()
        return self.report

    # ------------------------------------------------------------------ events

    def _on_event(self, event: ev.Event) -> None:
        r = self.report
        assert self.session is not None
        meeting = self.session.meeting
        if isinstance(event, ev.MediaFrameDecrypted):
            self._decode(event)
        elif isinstance(event, ev.EpochChanged):
            r.joined = True
            r.security_codes.append((event.epoch, event.security_code))
            epoch = meeting.epoch
            if meeting.phase is Phase.in_meeting and epoch is not None:
                if self.audit:
                    self.audit_epoch_keys.append((epoch, self._base_key(meeting)))
                if self._last_keys is not None:  # departing: a commit came before ours
                    self._last_keys = (epoch, self._base_key(meeting))
            r.roster = [e.name for e in event.roster]
            self.in_meeting.set()
            if self._video_encoder is not None:
                self._video_encoder.request_keyframe()  # newcomers need one to start decoding
        elif isinstance(event, ev.LobbyRequest):
            if self.host and self.auto_admit and meeting.is_host:
                meeting.admit(event.request_id)
        elif isinstance(event, ev.ChatReceived):
            r.chats.append((event.name, event.text))
        elif isinstance(event, ev.KeyframeRequested):
            if event.kind == StreamKind.video and self._video_encoder is not None:
                self._video_encoder.request_keyframe()
        elif isinstance(event, ev.FrameRejected):
            r.frames_rejected += 1
            if len(r.rejections) < 20:
                r.rejections.append(event.reason)
        elif isinstance(event, ev.MemberLeft):
            r.members_left.append(event.name)
        elif isinstance(event, ev.Removed):
            r.removed = True
            r.ended_reason = event.reason
            self.ended.set()
        elif isinstance(event, (ev.MeetingEnded, ev.JoinRefused)):
            r.ended_reason = getattr(event, "reason", "")
            self.ended.set()
        elif isinstance(event, ev.JoinDeclined):
            r.declined = event.outcome
            r.ended_reason = event.reason
            self.ended.set()
        elif isinstance(event, ev.SecurityAlert):
            r.alerts.append(f"{event.kind}: {event.message}")
            log.warning("%s: security alert %s", self.name, event.kind)
        elif isinstance(event, ev.OrderingStalled):
            r.ordering_stalls += 1
        elif isinstance(event, ev.Error):
            log.info("%s: %s %s", self.name, event.code, event.message)

    def _decode(self, event: ev.MediaFrameDecrypted) -> None:
        try:
            capture_us, data = unpack_payload(event.payload)
        except WireError:
            self.report.frames_rejected += 1
            return
        if event.kind == StreamKind.audio:
            dec_a = self._audio_decoders.get(event.sender)
            if dec_a is None:
                dec_a = self._audio_decoders[event.sender] = OpusDecoder()
            if dec_a.decode(data) > 0:
                self.counter.add(event.name, "audio")
            return
        # Camera and screen share are separate streams: one decoder each.
        key = (event.sender, event.kind)
        dec = self._video_decoders.get(key)
        if dec is None:
            dec = self._video_decoders[key] = VideoDecoder("vp8")
        n = dec.decode(data)
        if n:
            if event.kind == StreamKind.video:
                self.counter.add(event.name, "video", n)
                if len(self.report.latencies_ms) < 100_000:
                    self.report.latencies_ms.append(time.time() * 1000 - capture_us / 1000)
            else:
                screen = self.report.screen_frames
                screen[event.name] = screen.get(event.name, 0) + n
        elif dec.needs_keyframe:
            now = time.monotonic()
            if now - self._last_kf_request[key] > 0.5 and self.session is not None:
                self._last_kf_request[key] = now
                self.session.meeting.request_keyframe(event.sender, event.kind)

    # ------------------------------------------------------------------ media loops

    async def _video_loop(self) -> None:
        source = TestPatternSource(640, 360, VIDEO_FPS, label=self.name)
        encoder = self._video_encoder = VideoEncoder("vp8", 640, 360, VIDEO_FPS, 500_000)
        await self.in_meeting.wait()
        encoder.request_keyframe()
        await self._send_loop(
            StreamKind.video, VIDEO_FPS, lambda i: encoder.encode(source.next_frame(i))
        )

    async def _audio_loop(self) -> None:
        source = ToneSource(440.0 + 110.0 * (zlib.crc32(self.name.encode()) % 5))
        encoder = OpusEncoder()
        await self.in_meeting.wait()
        await self._send_loop(
            StreamKind.audio, 1 / AUDIO_FRAME_S, lambda i: encoder.encode(source.next_frame(i))
        )

    async def _send_loop(
        self, kind: StreamKind, rate: float, encode: Callable[[int], list[EncodedChunk]]
    ) -> None:
        """Every 1/rate s: encode slot ``pacer.index``, protect and send its chunks."""
        assert self.session is not None
        pacer = Pacer(rate, start=time.monotonic())
        name = "audio" if kind == StreamKind.audio else "video"
        while not self.ended.is_set():
            await asyncio.sleep(pacer.delay(time.monotonic()))
            for chunk in encode(pacer.index):
                keyframe = chunk.keyframe and kind != StreamKind.audio
                payload = pack_payload(time.time_ns() // 1000, chunk.data)
                if await self.session.send_media(kind, keyframe, payload):
                    self.report.frames_sent[name] += 1
                    self._keep(chunk.data)
            pacer.advance(time.monotonic())

    def _keep(self, data: bytes) -> None:
        if len(self.sent_chunks) < self.keep_chunks:
            self.sent_chunks.append(data)

    @property
    def phase(self) -> Phase | None:
        return None if self.session is None else self.session.meeting.phase
