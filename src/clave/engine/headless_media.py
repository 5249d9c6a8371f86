"""The media of a headless participant: what it sends and how it picks what it receives.

* **Video**: a test pattern, VP8, in up to three simulcast layers (a quarter, half
  and full 640x360; :data:`LAYER_SIZES`), each its own encoder and SFrame stream; a
  keyframe request names the layer it wants (the relay asks when it switches a
  receiver to that layer).
* **Audio**: an Opus tone with DTX (RFC 6716 section 2.1.9). While the participant
  does not speak (:attr:`HeadlessMedia.speaking`) the encoder makes DTX packets of
  :data:`clave.media.audio.DTX_BYTES` or fewer, which are not sent: audio traffic
  grows with the people speaking, not with the meeting.
* **Last-N**: the glass's :class:`~.stage.StageDirector` (speaking activity from the
  audio we decrypt picks whose video we subscribe to and at which layer, never above
  the relay's congestion cap); the stage it chooses is kept in the report.
"""

from __future__ import annotations

import asyncio
import time
import zlib
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
from ..media.audio import DTX_BYTES
from ..meeting import events as ev
from ..meeting.meeting import Meeting
from ..meeting.speakers import LAST_N
from ..wire import MAX_LAYER, StreamKind, WireError, unpack_payload
from .driver import KeyframeAsker, send_chunk
from .glass_messages import Stage, ToGlass
from .session import MeetingSession
from .stage import StageDirector

VIDEO_FPS = 30
MAX_FPS = 60
AUDIO_FRAME_S = 0.020
PRIME_FRAMES = 10
LAYER_SIZES = ((160, 90, 150_000), (320, 180, 300_000), (640, 360, 500_000))
"""Width, height and bitrate of each simulcast layer (the top one is the single-layer
stream when simulcast is off)."""


@dataclass
class MediaReport:
    """What the media side did, counted (part of the participant's report)."""

    layers_sent: dict[int, int] = field(default_factory=dict)
    """Video frames sent per simulcast layer."""
    video_layers: dict[str, dict[int, int]] = field(default_factory=dict)
    """Video frames decoded per sender and layer."""
    audio_dtx_skipped: int = 0
    """Audio packets not sent because they were DTX (we were silent)."""
    subscriptions: int = 0
    """Times the last-N choice changed and we subscribed anew."""
    stage: list[str] = field(default_factory=list)
    """Whose video we receive now (the last-N choice), by name."""
    layer_caps: list[int] = field(default_factory=list)
    """Each congestion cap the relay set on us."""


Decoded = Callable[[ev.MediaFrameDecrypted, str, int, int], None]
"""``(event, kind name, frames decoded, capture µs)``: told of each decoded frame."""


class HeadlessMedia:
    """Encoders, decoders and the last-N choice of one headless participant."""

    def __init__(
        self,
        name: str,
        counter: MediaCounter,
        meeting: Callable[[], Meeting | None],
        *,
        simulcast: int = 1,
        speaking: bool = True,
        fps: int = VIDEO_FPS,
        last_n: int = LAST_N,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= simulcast <= MAX_LAYER + 1:
            raise ValueError(f"simulcast layers must be 1..{MAX_LAYER + 1}")
        if not 1 <= fps <= MAX_FPS:
            raise ValueError(f"video frames per second must be 1..{MAX_FPS}")
        self.name = name
        self.fps = fps
        self.counter = counter
        self.report = MediaReport()
        self.speaking = speaking
        """Whether our microphone hears speech (the tone) or silence (DTX)."""
        self._layers = LAYER_SIZES[MAX_LAYER + 1 - simulcast :]
        self._first_layer = MAX_LAYER + 1 - simulcast if simulcast > 1 else 0
        self.encoders: list[VideoEncoder] = []
        self._video_decoders: dict[tuple[int, StreamKind], VideoDecoder] = {}
        self._audio_decoders: dict[int, OpusDecoder] = {}
        self.keyframes = KeyframeAsker()
        self._meeting = meeting
        self.director = StageDirector(meeting, self._staged, clock=clock, n=last_n)
        """Whose video we receive (``director.n`` at most; ``director.pin`` to pin)."""
        self.on_sent: Callable[[StreamKind, bytes], None] | None = None
        """Told of every chunk sent (the participant counts and keeps them)."""

    # ------------------------------------------------------------------ sending

    def layer_of(self, index: int) -> int:
        """The wire layer of our ``index``-th encoder (0 when simulcast is off)."""
        return self._first_layer + index if len(self._layers) > 1 else 0

    def request_keyframe(self, layer: int | None = None) -> None:
        """The next frame of ``layer`` (None: of every layer) is a keyframe."""
        for index, encoder in enumerate(self.encoders):
            if layer is None or self.layer_of(index) == layer:
                encoder.request_keyframe()

    async def video_loop(self, session: MeetingSession, ready: asyncio.Event,
                         ended: asyncio.Event) -> None:  # fmt: skip
        source = TestPatternSource(640, 360, self.fps, label=self.name)
        self.encoders = [VideoEncoder("vp8", w, h, self.fps, rate) for w, h, rate in self._layers]
        await ready.wait()
        self.request_keyframe()
        pacer = Pacer(self.fps, start=time.monotonic())
        sent = self.report.layers_sent
        while not ended.is_set():
            await asyncio.sleep(pacer.delay(time.monotonic()))
            frame = source.next_frame(pacer.index)
            for index, encoder in enumerate(self.encoders):
                layer = self.layer_of(index)
                for chunk in encoder.encode(frame):
                    if await self._send(session, StreamKind.video, chunk, layer):
                        sent[layer] = sent.get(layer, 0) + 1
            pacer.advance(time.monotonic())

    async def audio_loop(self, session: MeetingSession, ready: asyncio.Event,
                         ended: asyncio.Event) -> None:  # fmt: skip
        tone = ToneSource(440.0 + 110.0 * (zlib.crc32(self.name.encode()) % 5))
        silence = ToneSource(amplitude=0.0)
        encoder = OpusEncoder(dtx=True)
        # libopus classifies its input before DTX starts: on digital silence from the
        # first sample it stays in a mode without DTX (8-byte packets). 200 ms of the
        # tone then silence until the first DTX packet, encoded and thrown away (never
        # sent), settle it as a voice encoder that falls silent.
        for index in range(PRIME_FRAMES):
            encoder.encode(tone.next_frame(index))
        for index in range(PRIME_FRAMES * 3):
            if any(len(c.data) <= DTX_BYTES for c in encoder.encode(silence.next_frame(index))):
                break
        await ready.wait()
        pacer = Pacer(1 / AUDIO_FRAME_S, start=time.monotonic())
        while not ended.is_set():
            await asyncio.sleep(pacer.delay(time.monotonic()))
            source = tone if self.speaking else silence
            for chunk in encoder.encode(source.next_frame(pacer.index)):
                if len(chunk.data) <= DTX_BYTES:
                    self.report.audio_dtx_skipped += 1
                    continue
                await self._send(session, StreamKind.audio, chunk, 0)
            pacer.advance(time.monotonic())

    async def _send(
        self, session: MeetingSession, kind: StreamKind, chunk: EncodedChunk, layer: int
    ) -> bool:
        keyframe = chunk.keyframe and kind != StreamKind.audio
        capture_us = time.time_ns() // 1000
        sent = await send_chunk(session, kind, keyframe, capture_us, chunk.data, layer)
        if sent and self.on_sent is not None:
            self.on_sent(kind, chunk.data)
        return sent

    # ------------------------------------------------------------------ receiving

    def decode(self, event: ev.MediaFrameDecrypted, meeting: Meeting | None,
               decoded: Decoded) -> bool:  # fmt: skip
        """Decode one frame; False if its payload was malformed."""
        try:
            capture_us, data = unpack_payload(event.payload)
        except WireError:
            return False
        if event.kind == StreamKind.audio:
            dec_a = self._audio_decoders.get(event.sender)
            if dec_a is None:
                dec_a = self._audio_decoders[event.sender] = OpusDecoder()
            self.director.heard(event)
            if dec_a.decode(data) > 0:
                decoded(event, "audio", 1, capture_us)
            return True
        key = (event.sender, event.kind)  # camera and screen: one decoder each
        dec = self._video_decoders.get(key)
        if dec is None:
            dec = self._video_decoders[key] = VideoDecoder("vp8")
        n = dec.decode(data)
        if n:
            if event.kind == StreamKind.video:
                per = self.report.video_layers.setdefault(event.name, {})
                per[event.layer] = per.get(event.layer, 0) + n
            decoded(event, "video" if event.kind == StreamKind.video else "screen", n, capture_us)
        elif dec.needs_keyframe and meeting is not None:
            self.keyframes.ask(meeting, event.sender, event.kind)
        return True

    # ------------------------------------------------------------------ last-N

    def _staged(self, message: ToGlass) -> None:
        """The director's news for a glass: we keep who is on stage, by name."""
        meeting = self._meeting()
        if isinstance(message, Stage) and meeting is not None:
            names = {m.leaf: m.name for m in meeting.roster}
            self.report.stage = [names.get(leaf, "?") for leaf in message.video]
            self.report.subscriptions = self.director.subscriptions

    def capped(self, layer: int) -> None:
        """The relay's congestion cap moved: choose again under it."""
        self.report.layer_caps.append(layer)
        self.director.capped(layer)

    def forget(self) -> None:
        """A new meeting core (a fresh admission): its leaves are other people."""
        self.director.reset()
        self.keyframes.clear()
        self._video_decoders.clear()
        self._audio_decoders.clear()
