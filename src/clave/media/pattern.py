"""A moving synthetic camera: colour bars, a bouncing box, a frame counter."""

from __future__ import annotations

import threading
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

from clave.media.errors import MediaError

__all__ = ["TestPatternSource", "render_text"]

_U8 = npt.NDArray[np.uint8]

# 5x7 glyphs, one string of 5 bits per row. Lower case is drawn as upper case;
# characters without a glyph are drawn as "?".
_GLYPHS: dict[str, tuple[str, ...]] = {
    " ": ("00000",) * 7,
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11111", "00010", "00100", "00010", "00001", "10001", "01110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "B": ("11110", "10001", "10001", "11110", "10001", "10001", "11110"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "D": ("11100", "10010", "10001", "10001", "10001", "10010", "11100"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "F": ("11111", "10000", "10000", "11110", "10000", "10000", "10000"),
    "G": ("01110", "10001", "10000", "10111", "10001", "10001", "01111"),
    "H": ("10001", "10001", "10001", "11111", "10001", "10001", "10001"),
    "I": ("01110", "00100", "00100", "00100", "00100", "00100", "01110"),
    "J": ("00111", "00010", "00010", "00010", "00010", "10010", "01100"),
    "K": ("10001", "10010", "10100", "11000", "10100", "10010", "10001"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
    "M": ("10001", "11011", "10101", "10101", "10001", "10001", "10001"),
    "N": ("10001", "10001", "11001", "10101", "10011", "10001", "10001"),
    "O": ("01110", "10001", "10001", "10001", "10001", "10001", "01110"),
    "P": ("11110", "10001", "10001", "11110", "10000", "10000", "10000"),
    "Q": ("01110", "10001", "10001", "10001", "10101", "10010", "01101"),
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
    "U": ("10001", "10001", "10001", "10001", "10001", "10001", "01110"),
    "V": ("10001", "10001", "10001", "10001", "10001", "01010", "00100"),
    "W": ("10001", "10001", "10001", "10101", "10101", "10101", "01010"),
    "X": ("10001", "10001", "01010", "00100", "01010", "10001", "10001"),
    "Y": ("10001", "10001", "10001", "01010", "00100", "00100", "00100"),
    "Z": ("11111", "00001", "00010", "00100", "01000", "10000", "11111"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    "_": ("00000", "00000", "00000", "00000", "00000", "00000", "11111"),
    ".": ("00000", "00000", "00000", "00000", "00000", "01100", "01100"),
    ":": ("00000", "01100", "01100", "00000", "01100", "01100", "00000"),
    "/": ("00001", "00001", "00010", "00100", "01000", "10000", "10000"),
    "#": ("01010", "01010", "11111", "01010", "11111", "01010", "01010"),
    "+": ("00000", "00100", "00100", "11111", "00100", "00100", "00000"),
    "@": ("01110", "10001", "10111", "10101", "10111", "10000", "01111"),
    "?": ("01110", "10001", "00001", "00010", "00100", "00000", "00100"),
}
_GLYPH_W, _GLYPH_H = 5, 7

# BT.601 limited-range YUV of 75% colour bars: white, yellow, cyan, green,
# magenta, red, blue.
_BARS: tuple[tuple[int, int, int], ...] = (
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
)
_WHITE_Y, _BLACK_Y, _GREY_UV = 235, 16, 128


def render_text(text: str, scale: int = 1) -> npt.NDArray[np.bool_]:
    """Boolean mask (height 7*scale) of ``text`` in a 5x7 font, 1 column gap."""
    if scale < 1:
        raise MediaError("text scale must be >= 1")
    cell = _GLYPH_W + 1
    mask = np.zeros((_GLYPH_H, max(1, len(text) * cell)), dtype=np.bool_)
    for i, char in enumerate(text.upper()):
        rows = _GLYPHS.get(char, _GLYPHS["?"])
        for y, row in enumerate(rows):
            for x, bit in enumerate(row):
                if bit == "1":
                    mask[y, i * cell + x] = True
    return np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)


def _even(value: int) -> int:
    return value - (value & 1)


class TestPatternSource:
    """Synthetic moving video in yuv420p with ``pts = index``, ``time_base = 1/fps``.

    Each frame shows colour bars, a scrolling sine stripe, a bouncing white
    box, the frame index and (optionally) ``label``, so an encoder sees real
    motion and a human can tell senders and frames apart in a recording.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, width: int = 640, height: int = 360, fps: int = 30, label: str = "") -> None:
        if width < 64 or height < 64 or width % 2 or height % 2:
            raise MediaError(f"test pattern size must be even and >= 64x64, not {width}x{height}")
        if fps <= 0:
            raise MediaError(f"fps must be positive, not {fps}")
        self.width = width
        self.height = height
        self.fps = fps
        self.label = label
        self.time_base = Fraction(1, fps)
        self._lock = threading.Lock()
        self._next_index = 0
        self._scale = max(1, height // 120)
        self._box = _even(max(8, height // 8))
        self._stripe_top = _even(height * 2 // 3)
        self._stripe_h = _even(max(8, height // 8))
        self._digit_masks = [render_text(str(d), self._scale) for d in range(10)]
        self._background = self._draw_background()
        x = np.arange(width, dtype=np.float64)
        self._stripe_phase = 2 * np.pi * x / 48.0

    @property
    def frame_count(self) -> int:
        """Index of the next frame ``next_frame()`` will produce."""
        return self._next_index

    def _draw_background(self) -> _U8:
        w, h = self.width, self.height
        img = np.empty((h * 3 // 2, w), dtype=np.uint8)
        y_plane, u_plane, v_plane = self._planes(img)
        bars_h = self._stripe_top
        for i, (yv, uv, vv) in enumerate(_BARS):
            x0 = _even(i * w // len(_BARS))
            x1 = _even((i + 1) * w // len(_BARS)) if i < len(_BARS) - 1 else w
            y_plane[:bars_h, x0:x1] = yv
            u_plane[: bars_h // 2, x0 // 2 : x1 // 2] = uv
            v_plane[: bars_h // 2, x0 // 2 : x1 // 2] = vv
        ramp = np.linspace(_BLACK_Y, _WHITE_Y, w).astype(np.uint8)
        y_plane[bars_h:, :] = ramp[None, :]
        u_plane[bars_h // 2 :, :] = _GREY_UV
        v_plane[bars_h // 2 :, :] = _GREY_UV
        if self.label:
            mask = render_text(self.label, self._scale * 2)
            # Top right: the frame counter is top left, and meeting UIs put the name
            # tag bottom left.
            # A label wider than the frame starts at the left edge and is clipped.
            self._stamp(img, mask, _even(max(8, w - mask.shape[1] - 8)), _even(8))
        return img

    def _planes(self, img: _U8) -> tuple[_U8, _U8, _U8]:
        w, h = self.width, self.height
        y_plane = img[:h]
        chroma = img[h:].reshape(2, h // 2, w // 2)
        return y_plane, chroma[0], chroma[1]

    def _stamp(self, img: _U8, mask: npt.NDArray[np.bool_], x: int, y: int) -> None:
        """Draw white ``mask`` on a black, neutral-chroma box at (x, y), clipped."""
        y_plane, u_plane, v_plane = self._planes(img)
        pad = 2 * self._scale
        x0, y0 = max(0, _even(x - pad)), max(0, _even(y - pad))
        x1 = min(self.width, _even(x + mask.shape[1] + pad + 1))
        y1 = min(self.height, _even(y + mask.shape[0] + pad + 1))
        if x1 <= x0 or y1 <= y0:
            return
        y_plane[y0:y1, x0:x1] = _BLACK_Y
        u_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = _GREY_UV
        v_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = _GREY_UV
        mh = min(mask.shape[0], self.height - y)
        mw = min(mask.shape[1], self.width - x)
        if mh > 0 and mw > 0:
            region = y_plane[y : y + mh, x : x + mw]
            region[mask[:mh, :mw]] = _WHITE_Y

    def render(self, index: int) -> _U8:
        """The yuv420p image of frame ``index`` as a (h*3/2, w) uint8 array."""
        img = self._background.copy()
        y_plane, u_plane, v_plane = self._planes(img)
        w, h = self.width, self.height
        # A sine stripe scrolling left, so every frame has textured motion.
        top, sh = self._stripe_top, self._stripe_h
        row = 126 + 90 * np.sin(self._stripe_phase + index * 0.35)
        y_plane[top : top + sh, :] = row.astype(np.uint8)[None, :]
        # A box bouncing around the frame (triangle waves in x and y).
        b = self._box
        span_x, span_y = max(1, w - b), max(1, h - b)
        px, py = (index * 6) % (2 * span_x), (index * 4) % (2 * span_y)
        x = _even(px if px < span_x else 2 * span_x - px)
        y = _even(py if py < span_y else 2 * span_y - py)
        y_plane[y : y + b, x : x + b] = _WHITE_Y
        u_plane[y // 2 : (y + b) // 2, x // 2 : (x + b) // 2] = 90
        v_plane[y // 2 : (y + b) // 2, x // 2 : (x + b) // 2] = 240
        # The frame index, top left.
        digits = [self._digit_masks[int(c)] for c in str(index)]
        counter = np.concatenate(digits, axis=1)
        self._stamp(img, counter, 8, 8)
        return img

    def next_frame(self, index: int | None = None) -> av.VideoFrame:
        """Produce the next frame, or frame ``index`` (e.g. a pacer slot after skips).

        The frame has ``pts = index`` and ``time_base = 1/fps``; later calls
        without ``index`` continue from ``index + 1``.
        """
        with self._lock:
            if index is None:
                index = self._next_index
            if index < 0:
                raise MediaError(f"frame index must be >= 0, not {index}")
            self._next_index = index + 1
        frame = av.VideoFrame.from_ndarray(self.render(index), format="yuv420p")
        frame.pts = index
        frame.time_base = self.time_base
        return frame
