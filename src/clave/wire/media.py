"""The binary envelope of one protected media frame.

::

    0      version   (1)
    1      channel   (0x4D, "M")
    2      flags     bits 0-1 stream kind (0 audio, 1 video, 2 screen),
                     bits 2-3 simulcast layer (0 lowest .. 2; always 0 for audio),
                     bit 7 keyframe, other bits zero
    3..6   sender    uint32 connection id, big-endian: 0 from a client,
                     stamped by the relay when it forwards the frame
    7..    sframe    SFrame ciphertext (RFC 9605 header + AEAD output)

The SFrame metadata (associated data) is ``media_aad(flags)``: the version,
channel and flags byte. Every cleartext field a sender sets is therefore
authenticated end to end; the relay can read them for routing (drop deltas
before keyframes, route by kind) but cannot change them unnoticed. The
sender connection id is the relay's own routing data and is not trusted by
receivers: they identify the sender by the SFrame KID (RFC 9605 section 5.2).

Each (kind, layer) is its own SFrame stream: the sender protects it under its
own KID context (:func:`context_of`), so a receiver that gets only some layers
sees each stream's counters in order, and the relay can pick layers per
receiver without touching the ciphertext.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .errors import WireError
from .frames import MEDIA, PROTOCOL_VERSION

HEADER_BYTES = 7
MAX_MEDIA_BYTES = 256 * 1024
"""Largest accepted media message (a 1080p VP8 keyframe fits comfortably)."""

_KEYFRAME = 0x80
_KIND_MASK = 0x03
_LAYER_SHIFT = 2
_LAYER_MASK = 0x0C
MAX_LAYER = 2
"""Simulcast layers are 0 (lowest resolution) .. MAX_LAYER."""


class StreamKind(IntEnum):
    audio = 0
    video = 1
    screen = 2


@dataclass(frozen=True, slots=True)
class MediaFrame:
    kind: StreamKind
    keyframe: bool
    sender: int
    sframe: bytes
    layer: int = 0


def _check_layer(kind: StreamKind, layer: int) -> None:
    if not 0 <= layer <= MAX_LAYER or (layer and kind == StreamKind.audio):
        raise WireError(f"no layer {layer} for {kind.name}")


def flags_of(kind: StreamKind, keyframe: bool, layer: int = 0) -> int:
    _check_layer(kind, layer)
    return int(kind) | layer << _LAYER_SHIFT | (_KEYFRAME if keyframe else 0)


def context_of(kind: StreamKind, layer: int = 0) -> int:
    """The SFrame KID context (RFC 9605 section 5.2) of a stream: audio 0, video
    layers 1-3, screen layers 4-6. A receiver refuses a frame whose KID context is not
    the one its flags name."""
    _check_layer(kind, layer)
    return (0, 1, 4)[kind] + layer


MAX_CONTEXT = context_of(StreamKind.screen, MAX_LAYER)


def media_aad(kind: StreamKind, keyframe: bool, layer: int = 0) -> bytes:
    """The SFrame metadata for a frame: every cleartext field the sender sets."""
    return bytes((PROTOCOL_VERSION, MEDIA, flags_of(kind, keyframe, layer)))


def encode_media(
    kind: StreamKind, keyframe: bool, sframe: bytes, sender: int = 0, layer: int = 0
) -> bytes:
    if len(sframe) + HEADER_BYTES > MAX_MEDIA_BYTES:
        raise WireError(f"media frame of {len(sframe)} bytes exceeds {MAX_MEDIA_BYTES}")
    return (
        bytes((PROTOCOL_VERSION, MEDIA, flags_of(kind, keyframe, layer)))
        + sender.to_bytes(4, "big")
        + sframe
    )


def parse_flags(flags: int) -> tuple[StreamKind, bool, int]:
    """``(kind, keyframe, layer)`` of a flags byte; WireError if it is not one we send."""
    if flags & ~(_KEYFRAME | _KIND_MASK | _LAYER_MASK):
        raise WireError(f"media flags 0x{flags:02x} set reserved bits")
    kind = flags & _KIND_MASK
    if kind > StreamKind.screen:
        raise WireError(f"unknown stream kind {kind}")
    layer = (flags & _LAYER_MASK) >> _LAYER_SHIFT
    _check_layer(StreamKind(kind), layer)
    return StreamKind(kind), bool(flags & _KEYFRAME), layer


def decode_media(data: bytes) -> MediaFrame:
    """Parse a whole media message (prefix included); WireError if malformed."""
    if len(data) > MAX_MEDIA_BYTES:
        raise WireError(f"media frame of {len(data)} bytes exceeds {MAX_MEDIA_BYTES}")
    if len(data) <= HEADER_BYTES:
        raise WireError(f"media frame of {len(data)} bytes has no payload")
    if data[0] != PROTOCOL_VERSION or data[1] != MEDIA:
        raise WireError("not a version-1 media frame")
    kind, keyframe, layer = parse_flags(data[2])
    return MediaFrame(kind, keyframe, int.from_bytes(data[3:7], "big"), bytes(data[7:]), layer)


def stamp_sender(data: bytes, sender: int) -> bytes:
    """The relay's rewrite of a client's media message: set the sender connection id."""
    return data[:3] + sender.to_bytes(4, "big") + data[7:]


CAPTURE_TIME_BYTES = 8


def pack_payload(capture_time_us: int, codec_data: bytes) -> bytes:
    """The SFrame plaintext of a media frame: capture time (uint64 microseconds since
    the Unix epoch, big-endian) then the codec's encoded chunk. Carried encrypted,
    so the relay never learns it; receivers use it to measure end-to-end latency."""
    return capture_time_us.to_bytes(CAPTURE_TIME_BYTES, "big") + codec_data


def unpack_payload(plaintext: bytes) -> tuple[int, bytes]:
    if len(plaintext) <= CAPTURE_TIME_BYTES:
        raise WireError(f"media plaintext of {len(plaintext)} bytes has no codec data")
    return int.from_bytes(plaintext[:CAPTURE_TIME_BYTES], "big"), plaintext[CAPTURE_TIME_BYTES:]
