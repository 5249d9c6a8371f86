"""Just enough VP8/VP9 frame-header parsing to find keyframes and their size.

VP8: RFC 6386 section 9.1 (3-byte frame tag, then on keyframes the start code
``9d 01 2a`` and two 16-bit little-endian size fields, 14 bits used).
VP9: the uncompressed header of the VP9 bitstream specification, section 6.2.
"""

from __future__ import annotations

__all__ = ["is_keyframe", "keyframe_size", "vp8_keyframe_size", "vp9_keyframe_size"]

_VP8_START_CODE = b"\x9d\x01\x2a"
_VP9_SYNC_CODE = 0x498342
_VP9_CS_RGB = 7


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if ``data`` starts a VP8 keyframe, else None."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != _VP8_START_CODE:
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    if width == 0 or height == 0:
        return None
    return width, height


class _Bits:
    """MSB-first bit reader over a short prefix of a frame."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self._pos >> 3
            if byte >= len(self._data):
                raise IndexError("truncated VP9 header")
            value = (value << 1) | ((self._data[byte] >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value


def vp9_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if ``data`` starts a VP9 keyframe, else None."""
    bits = _Bits(data[:32])
    try:
        if bits.read(2) != 2:  # frame_marker
            return None
        profile = bits.read(1) | (bits.read(1) << 1)
        if profile == 3 and bits.read(1):  # reserved_zero
            return None
        if bits.read(1):  # show_existing_frame
            return None
        if bits.read(1) != 0:  # frame_type: 0 = KEY_FRAME
            return None
        bits.read(2)  # show_frame, error_resilient_mode
        if bits.read(24) != _VP9_SYNC_CODE:
            return None
        if profile >= 2:
            bits.read(1)  # ten_or_twelve_bit
        color_space = bits.read(3)
        if color_space != _VP9_CS_RGB:
            bits.read(1)  # color_range
            if profile in (1, 3):
                bits.read(3)  # subsampling_x, subsampling_y, reserved_zero
        elif profile in (1, 3):
            bits.read(1)  # reserved_zero
        width = bits.read(16) + 1
        height = bits.read(16) + 1
    except IndexError:
        return None
    return width, height


def keyframe_size(codec: str, data: bytes) -> tuple[int, int] | None:
    """(width, height) of a ``codec`` ("vp8" or "vp9") keyframe, else None."""
    if codec == "vp8":
        return vp8_keyframe_size(data)
    if codec == "vp9":
        return vp9_keyframe_size(data)
    raise ValueError(f"unsupported video codec {codec!r}")


def is_keyframe(codec: str, data: bytes) -> bool:
    """True if ``data`` is a well-formed ``codec`` keyframe header."""
    return keyframe_size(codec, data) is not None
