"""Media across the bridge (docs/PROTOCOL.md, "Local UI channel"): the glass's
encoded chunks protected and sent, or dropped (fail closed); decrypted frames into
the glass's bounded outbox, keyframe requests when its decoders have a gap, and
rate-limited ``frame_failed`` notices. Video chunks carry their simulcast layer
(flags bits 1-2) both ways: each layer is protected and sent on its own. Counters are
numbers only (no plaintext is kept: a chunk or frame lives until it is protected or
queued for the glass)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..meeting import events as ev
from ..meeting.meeting import Meeting, Phase
from ..wire import StreamKind, WireError, unpack_payload
from .driver import KeyframeAsker, send_chunk
from .glass_channel import (
    ENGINE_FRAME_HEADER,
    FLAG_KEYFRAME,
    GLASS_CHUNK_HEADER,
    LAYER_MASK,
    GlassOutbox,
    flags_layer,
    media_flags,
)
from .glass_messages import FrameFailed, ToGlass
from .session import MeetingSession

log = logging.getLogger("clave.engine.bridge")

FRAME_FAILED_PER_SECOND = 3
"""``frame_failed`` messages per sender and second at most."""
NOTICE_INTERVAL = 1.0
"""Seconds between two notices about dropped or malformed chunks."""
MALFORMED_CHUNK = (
    "Some of your audio or video was not sent: this page sent something Clave did not "
    "understand. If it goes on, reload the page."
)
OVERSIZED_CHUNK = (
    "Some of your video was too large to send and was left out. If the picture freezes "
    "for the others, turn your camera or screen share off and on again."
)


@dataclass
class BridgeCounters:
    """What crossed the bridge (numbers only, for tests and benchmarks)."""

    chunks_received: int = 0
    """Encoded chunks from the glass."""
    chunks_sent: int = 0
    """... protected with SFrame and sent to the relay."""
    chunks_dropped: int = 0
    """... dropped because media was not encrypted (before joining, in the lobby, rekeying,
    reconnecting, after leaving): never sent anywhere."""
    chunks_malformed: int = 0
    frames_to_glass: int = 0
    """Decrypted frames queued for the glass."""
    frames_dropped_slow_glass: int = 0
    """Decrypted frames dropped because the glass did not keep up (or was not connected)."""
    sessions: int = 0
    """Meeting sessions started (a join, then each rejoin)."""
    tabs_returned: int = 0
    """Times a glass came back within the grace after its tab went away (reloads)."""
    reconnects_seen: int = 0
    """Times the relay link came back after an outage (keyframes were asked for)."""
    audio_held: int = 0
    """Audio chunks not sent because a host muted us (until the user unmutes)."""


class FrameForwarder:
    """Frames to one glass at a time; ``meeting()`` is the meeting core now (or None)."""

    def __init__(
        self,
        counters: BridgeCounters,
        meeting: Callable[[], Meeting | None],
        send: Callable[[ToGlass], None],
        away: Callable[[int], bool],
    ) -> None:
        self.counters = counters
        self.outbox: GlassOutbox | None = None
        self._meeting = meeting
        self._send = send
        self._away = away
        self._needs_keyframe: set[tuple[int, int]] = set()
        self._asker = KeyframeAsker()
        self._failed_window: dict[int | None, tuple[float, int]] = {}

    def reset(self) -> None:
        """A new meeting core (a fresh admission): its leaves are new."""
        self._needs_keyframe.clear()
        self._asker.clear()
        self._failed_window.clear()

    def decoders_gone(self) -> None:
        """The glass's decoders start afresh (a new glass): nothing to skip for them."""
        self._needs_keyframe.clear()

    def expect_keyframes(self) -> None:
        """Every member's video and screen have a gap (the relay link dropped): skip their
        deltas until each sends a keyframe, so the glass never decodes a broken picture."""
        meeting = self._meeting()
        if meeting is None or meeting.phase is not Phase.in_meeting:
            return
        for entry in meeting.roster:
            if entry.leaf != meeting.own_leaf:
                for kind in (StreamKind.video, StreamKind.screen):
                    self._needs_keyframe.add((entry.leaf, int(kind)))

    def forward(self, event: ev.MediaFrameDecrypted) -> None:
        try:
            capture_us, data = unpack_payload(event.payload)
        except WireError:
            self.failed(ev.FrameRejected("media plaintext without codec data", event.sender))
            return
        key = (event.sender, int(event.kind))
        if event.kind != StreamKind.audio and key in self._needs_keyframe:
            if not event.keyframe:
                self.counters.frames_dropped_slow_glass += 1
                self.ask_keyframe(event.sender, event.kind)  # until one comes (rate-limited)
                return
            self._needs_keyframe.discard(key)
        outbox = self.outbox
        flags = media_flags(event.keyframe, event.layer)
        frame = ENGINE_FRAME_HEADER.pack(int(event.kind), flags, event.sender, capture_us) + data
        if outbox is not None and outbox.put_media(frame):
            self.counters.frames_to_glass += 1
            return
        self.counters.frames_dropped_slow_glass += 1
        if event.kind != StreamKind.audio and outbox is not None:
            # The glass's decoder has a gap now: skip deltas until a keyframe, and ask for one.
            self._needs_keyframe.add(key)
            self.ask_keyframe(event.sender, event.kind)

    def ask_keyframe(self, leaf: int, kind: StreamKind) -> bool:
        """Queue a keyframe request to ``leaf`` (at most one per interval; none while it is
        away: its connection is not known); True if queued. The caller sends what the core
        queued (the session's reader does, after events)."""
        meeting = self._meeting()
        if meeting is None or meeting.phase is not Phase.in_meeting or self._away(leaf):
            return False
        return self._asker.ask(meeting, leaf, kind)

    def ask_everyone(self, only: int | None = None) -> bool:
        """Ask every other member (or just leaf ``only``) for video and screen keyframes
        (a glass with new decoders, or a gap); True if anything was queued."""
        meeting = self._meeting()
        if meeting is None or meeting.phase is not Phase.in_meeting:
            return False
        asked = False
        for entry in meeting.roster:
            if entry.leaf != meeting.own_leaf and only in (None, entry.leaf):
                for kind in (StreamKind.video, StreamKind.screen):
                    self._asker.allow_now(entry.leaf, kind)
                    asked = self.ask_keyframe(entry.leaf, kind) or asked
        return asked

    def failed(self, event: ev.FrameRejected) -> None:
        """Tell the glass a frame failed (at most FRAME_FAILED_PER_SECOND per sender)."""
        now = time.monotonic()
        start, count = self._failed_window.get(event.sender, (now, 0))
        if now - start >= 1.0:
            start, count = now, 0
        if count >= FRAME_FAILED_PER_SECOND:
            self._failed_window[event.sender] = (start, count)
            return
        self._failed_window[event.sender] = (start, count + 1)
        name: str | None = None
        meeting = self._meeting()
        if event.sender is not None and meeting is not None:
            for entry in meeting.roster:
                if entry.leaf == event.sender:
                    name = entry.name
        self._send(FrameFailed(sender=event.sender, name=name, reason=event.reason))


def _chunk_header_ok(kind: int, flags: int) -> bool:
    """A known kind, no reserved flag bit, a valid layer (audio: layer 0 only)."""
    if kind > StreamKind.screen or flags & ~(FLAG_KEYFRAME | LAYER_MASK):
        return False
    layer = flags_layer(flags)
    return layer is not None and (layer == 0 or kind != StreamKind.audio)


class ChunkSender:
    """Encoded chunks from the glass: protected with SFrame and sent, or dropped (fail
    closed: nothing is sent or queued unless media is encrypted under the current epoch
    and the relay link is up). ``dropped()`` tells the glass why (the padlock), and
    ``error(text)`` what was malformed; each at most once per NOTICE_INTERVAL."""

    def __init__(
        self,
        counters: BridgeCounters,
        dropped: Callable[[], None],
        error: Callable[[str], None],
    ) -> None:
        self.counters = counters
        self._dropped = dropped
        self._error = error
        self._last_drop_notice = 0.0
        self._last_malformed_notice = 0.0

    async def handle(self, data: bytes, session: MeetingSession | None) -> None:
        """One chunk; ``session`` is None while nothing may be sent at all."""
        self.counters.chunks_received += 1
        head = GLASS_CHUNK_HEADER.size
        if len(data) <= head or not _chunk_header_ok(data[0], data[1]):
            self.counters.chunks_malformed += 1
            now = time.monotonic()
            if now - self._last_malformed_notice >= NOTICE_INTERVAL:
                self._last_malformed_notice = now
                self._error(MALFORMED_CHUNK)
            return
        kind_b, flags, capture_us = GLASS_CHUNK_HEADER.unpack_from(data)
        sent = False
        if session is not None and kind_b == StreamKind.audio and session.meeting.muted_by:
            self.counters.audio_held += 1  # a host's mute: honoured here, never sent
            return
        if session is not None:
            try:
                kind, keyframe = StreamKind(kind_b), bool(flags & FLAG_KEYFRAME)
                layer = flags_layer(flags) or 0
                sent = await send_chunk(
                    session, kind, keyframe, capture_us, data[head:], layer=layer
                )
            except WireError as exc:
                log.info("media chunk not sent: %s", exc)  # sizes only, no content
                now = time.monotonic()
                if now - self._last_malformed_notice >= NOTICE_INTERVAL:
                    self._last_malformed_notice = now
                    self._error(OVERSIZED_CHUNK)
                return
        if sent:
            self.counters.chunks_sent += 1
            return
        self.counters.chunks_dropped += 1
        now = time.monotonic()
        if now - self._last_drop_notice >= NOTICE_INTERVAL:
            self._last_drop_notice = now
            self._dropped()


__all__ = ["FRAME_FAILED_PER_SECOND", "BridgeCounters", "ChunkSender", "FrameForwarder"]
