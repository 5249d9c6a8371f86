"""The Local UI channel's framing (docs/PROTOCOL.md, "Local UI channel"): binary
media headers, the bounded outbox of one glass connection, and the checks of the
fields a glass sends."""

from __future__ import annotations

import asyncio
import json
import struct
from collections import deque
from typing import Any

from ..wire import StreamKind

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


class GlassBusy(Exception):
    """A glass is already connected to this engine (one at a time)."""


class BadMessage(Exception):
    """A control message from the glass was refused; the text goes back as ``error``."""


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


def parse_control(text: str) -> Json:
    """One JSON control message: an object with a string ``type``, else :class:`BadMessage`."""
    if len(text) > MAX_TEXT_CHARS:
        raise BadMessage("control message too large")
    try:
        msg = json.loads(text)
    except ValueError:
        raise BadMessage("control message is not JSON") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise BadMessage('control message must be an object with a string "type"')
    return msg


def int_field(msg: Json, key: str) -> int:
    """A non-negative integer field; a decimal string is accepted too (JavaScript glasses
    may keep ids as strings)."""
    value = msg.get(key)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise BadMessage(f'"{key}" must be an integer')
    return value


def bool_field(msg: Json, key: str) -> bool:
    value = msg.get(key)
    if not isinstance(value, bool):
        raise BadMessage(f'"{key}" must be true or false')
    return value


def stream_kind_field(msg: Json) -> StreamKind:
    kind = msg.get("kind")
    if kind == "video":
        return StreamKind.video
    if kind == "screen":
        return StreamKind.screen
    raise BadMessage('"kind" must be "video" or "screen"')


MEDIA_SWITCHES = ("mic", "cam", "screen")
"""The glass's own capture switches, remembered by the engine across reloads."""


def media_state_field(msg: Json) -> dict[str, bool]:
    """``{"mic": bool, "cam": bool, "screen": bool}`` of a ``media_state`` message."""
    return {key: bool_field(msg, key) for key in MEDIA_SWITCHES}


__all__ = [
    "ENGINE_FRAME_HEADER",
    "FLAG_KEYFRAME",
    "GLASS_CHUNK_HEADER",
    "MAX_MEDIA_QUEUE",
    "MAX_TEXT_CHARS",
    "MEDIA_SWITCHES",
    "BadMessage",
    "GlassBusy",
    "GlassOutbox",
    "Json",
    "bool_field",
    "int_field",
    "media_state_field",
    "parse_control",
    "stream_kind_field",
]
