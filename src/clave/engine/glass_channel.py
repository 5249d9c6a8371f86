"""The Local UI channel's framing (docs/PROTOCOL.md, "Local UI channel"): binary
media headers, the bounded outbox of one glass connection, and the one place where
a control message from the glass is decoded and checked (:func:`parse_control`)."""

from __future__ import annotations

import asyncio
import re
import struct
from collections import deque
from typing import get_args

import msgspec

from .glass_messages import GlassMessage, ToGlass

GLASS_CHUNK_HEADER = struct.Struct(">BBQ")
"""glass -> engine binary: kind, flags (bit 0 keyframe, bits 1-2 simulcast layer), capture
time (µs since the Unix epoch)."""
ENGINE_FRAME_HEADER = struct.Struct(">BBIQ")
"""engine -> glass binary: kind, flags (as above), sender leaf, capture time (µs)."""
FLAG_KEYFRAME = 0x01
LAYER_SHIFT = 1
LAYER_MASK = 0x06
"""Bits 1-2 of the flags: the simulcast layer, 0 (smallest) to :data:`MAX_LAYER`."""
MAX_LAYER = 2


def media_flags(keyframe: bool, layer: int) -> int:
    """The flags byte of a media header."""
    return (FLAG_KEYFRAME if keyframe else 0) | (layer << LAYER_SHIFT)


def flags_layer(flags: int) -> int | None:
    """The layer a flags byte names; None if its bits are not a valid layer."""
    layer = (flags & LAYER_MASK) >> LAYER_SHIFT
    return layer if layer <= MAX_LAYER else None


MAX_TEXT_CHARS = 64 * 1024
"""Largest JSON control message accepted from the glass."""
MAX_MEDIA_QUEUE = 256
"""Decrypted frames waiting for a slow glass at most; newer ones are dropped."""


class GlassBusy(Exception):
    """A glass is already connected to this engine (one at a time)."""


class BadMessage(Exception):
    """A control message from the glass was refused; the text goes back as ``error``."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(GlassMessage)


class GlassOutbox:
    """Messages for one glass connection: JSON control first, then media (bounded)."""

    def __init__(self, max_media: int = MAX_MEDIA_QUEUE) -> None:
        self._control: deque[str] = deque()
        self._media: deque[bytes] = deque()
        self._max_media = max_media
        self._wake = asyncio.Event()
        self.closed = False

    def put_control(self, message: ToGlass) -> None:
        if not self.closed:
            self._control.append(_encoder.encode(message).decode())
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


def parse_control(text: str) -> GlassMessage:
    """One JSON control message from the glass, decoded and checked (types, bounds, no
    unknown field), else :class:`BadMessage` saying what was wrong in one line."""
    if len(text) > MAX_TEXT_CHARS:
        raise BadMessage("control message too large")
    try:
        return _decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise BadMessage(refusal(str(exc))) from None
    except (msgspec.DecodeError, UnicodeError):  # a lone surrogate cannot be UTF-8
        raise BadMessage("control message is not JSON") from None


NOT_A_MESSAGE = 'control message must be an object with a string "type"'
_WHERE = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?:\.(?P<path>[^`]*))?`)?$", re.DOTALL)
_TYPE_WORDS = {
    "bool": "true or false",
    "int": "an integer",
    "int | str": "an integer",
    "str": "a string",
    "str | null": "a string or null",
    "float": "a number",
    "float | null": "a number or null",
    "object": "an object",
    "array": "a list",
}
_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Object missing required field `(?P<field>\w+)`"), "is missing"),
    (re.compile(r"Object contains unknown field `(?P<field>[^`]*)`"), "is not expected here"),
    (re.compile(r"Expected `(?P<type>[^`]*)`, got `[^`]*`"), "must be {type}"),
    (re.compile(r"Expected `(?P<type>[^`]*)`$"), "must be {type}"),
    (re.compile(r"Expected `[^`]*` of length >= 1$"), "must not be empty"),
    (re.compile(r"Expected `[^`]*` of length <= (?P<n>\d+)$"), "is too long (at most {n})"),
    (re.compile(r"Expected `[^`]*` >= (?P<n>-?\d+)$"), "must be at least {n}"),
    (re.compile(r"Expected `[^`]*` <= (?P<n>-?\d+)$"), "must be at most {n}"),
    (re.compile(r"Expected `str` matching regex"), "must be an integer"),  # only ids match
    (re.compile(r"Invalid enum value "), "must be {choices}"),
)
"""msgspec's descriptions of a refusal, in the engine's words (its own are a library's)."""


def _choices() -> dict[str, str]:
    """The allowed values of each enumerated field of a glass message, in words."""
    words: dict[str, str] = {}
    for info in msgspec.inspect.multi_type_info(get_args(GlassMessage)):
        assert isinstance(info, msgspec.inspect.StructType)
        for field in info.fields:
            if isinstance(field.type, msgspec.inspect.LiteralType):
                words[field.name] = " or ".join(f'"{v}"' for v in field.type.values)
    return words


_CHOICES = _choices()


def refusal(error: str) -> str:
    """The one-line ``error`` for a message msgspec refused (``error``: its description)."""
    match = _WHERE.match(error)
    problem = match.group("problem") if match else error
    path = match.group("path") if match else None
    if path == "type":
        tag = re.match(r"Invalid value '(.*)'$", problem, re.DOTALL)
        return f"unknown message type {tag.group(1)[:40]!r}" if tag else NOT_A_MESSAGE
    if path is None and (
        problem.startswith("Expected `object`") or problem.endswith("field `type`")
    ):
        return NOT_A_MESSAGE
    for pattern, words in _PROBLEMS:
        found = pattern.match(problem)
        if found is not None:
            parts = found.groupdict()
            field = parts.pop("field", None) or path or "message"
            if "type" in parts:
                parts["type"] = _TYPE_WORDS.get(parts["type"], f"of type {parts['type']}")
            parts["choices"] = _CHOICES.get(field, "one of the values the engine knows")
            return f'"{field[:40]}" {words.format(**parts)}'
    return f'"{(path or "message")[:40]}" is not valid'


__all__ = [
    "ENGINE_FRAME_HEADER",
    "FLAG_KEYFRAME",
    "GLASS_CHUNK_HEADER",
    "LAYER_MASK",
    "LAYER_SHIFT",
    "MAX_LAYER",
    "MAX_MEDIA_QUEUE",
    "MAX_TEXT_CHARS",
    "BadMessage",
    "GlassBusy",
    "GlassOutbox",
    "flags_layer",
    "media_flags",
    "parse_control",
    "refusal",
]
