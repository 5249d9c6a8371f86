"""EncodedChunk, MediaCounter, Pacer, TestPatternSource and bitstream parsing."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from clave.media import (
    EncodedChunk,
    MediaCounter,
    MediaError,
    Pacer,
    TestPatternSource,
    is_keyframe,
    keyframe_size,
)
from clave.media.pattern import render_text


def test_encoded_chunk_is_frozen_and_checked() -> None:
    chunk = EncodedChunk(b"abc", True, 10, "video")
    with pytest.raises(dataclasses.FrozenInstanceError):
        chunk.keyframe = False  # type: ignore[misc]
    with pytest.raises(MediaError):
        EncodedChunk(b"", False, 0, "data")  # type: ignore[arg-type]


def test_counter_summary() -> None:
    counter = MediaCounter()
    assert counter.format() == "(no frames decoded)"
    counter.add("bob", "video")
    counter.add("alice", "audio", 3)
    counter.add("alice", "video", 2)
    assert counter.summary() == {
        "alice": {"video": 2, "audio": 3},
        "bob": {"video": 1, "audio": 0},
    }
    assert counter.count("alice", "audio") == 3
    assert counter.count("carol", "video") == 0
    assert counter.total() == 6 and counter.total("video") == 3
    assert counter.senders() == ["alice", "bob"]
    assert counter.format() == "alice: video=2 audio=3\nbob: video=1 audio=0"
    with pytest.raises(MediaError):
        counter.add("bob", "data")  # type: ignore[arg-type]
    counter.reset()
    assert counter.summary() == {}


def test_counter_is_thread_safe() -> None:
    counter = MediaCounter()

    def work(sender: str) -> None:
        for _ in range(2000):
            counter.add(sender, "video")
            counter.add("shared", "audio")

    threads = [threading.Thread(target=work, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.count("shared", "audio") == 8000
    assert counter.total("video") == 8000


def test_pacer_schedule() -> None:
    pacer = Pacer(25, start=100.0)
    assert pacer.interval == 0.04
    assert pacer.delay(99.99) == pytest.approx(0.01)
    assert pacer.due(100.0) and pacer.delay(100.5) == 0.0
    assert pacer.advance(100.001) == 0
    assert pacer.index == 1
    assert pacer.deadline() == pytest.approx(100.04)
    assert pacer.delay(100.01) == pytest.approx(0.03)
    assert pacer.timestamp_us() == 40_000
    assert pacer.timestamp_us(25) == 1_000_000


def test_pacer_small_lag_catches_up_without_skipping() -> None:
    pacer = Pacer(10, start=0.0)
    assert pacer.advance(0.15) == 0  # slot 1 was due at 0.1: 0.5 slots late
    assert pacer.delay(0.15) == 0.0
    assert pacer.advance(0.19) == 0
    assert pacer.index == 2 and pacer.deadline() == pytest.approx(0.2)


def test_pacer_skips_when_far_behind() -> None:
    pacer = Pacer(10, start=0.0, max_lag=2)
    skipped = pacer.advance(1.05)  # a 1 s stall: slots 1..9 are gone
    assert skipped == 9
    assert pacer.index == 10 and pacer.skipped == 9
    assert pacer.delay(1.05) == 0.0
    pacer.advance(1.06)
    assert pacer.delay(1.06) == pytest.approx(0.04)


def test_pacer_rejects_bad_rate() -> None:
    with pytest.raises(MediaError):
        Pacer(0)
    with pytest.raises(MediaError):
        Pacer(30, max_lag=0)


def test_pattern_moves_and_has_timing() -> None:
    source = TestPatternSource(label="alice")
    frames = [source.next_frame() for _ in range(3)]
    assert [f.pts for f in frames] == [0, 1, 2]
    assert frames[0].time_base == source.time_base and float(source.time_base) == 1 / 30
    assert (frames[0].width, frames[0].height, frames[0].format.name) == (640, 360, "yuv420p")
    a, b = (f.to_ndarray() for f in frames[:2])
    assert np.count_nonzero(a != b) > 1000  # it moves
    assert source.frame_count == 3
    assert source.next_frame(100).pts == 100 and source.frame_count == 101


def test_pattern_is_deterministic_and_label_visible() -> None:
    plain, labelled = TestPatternSource(), TestPatternSource(label="bob")
    assert np.array_equal(plain.render(7), TestPatternSource().render(7))
    assert not np.array_equal(plain.render(7), labelled.render(7))


def test_pattern_other_sizes() -> None:
    frame = TestPatternSource(160, 90, fps=15).next_frame()
    assert (frame.width, frame.height) == (160, 90)
    with pytest.raises(MediaError):
        TestPatternSource(641, 360)
    with pytest.raises(MediaError):
        TestPatternSource(fps=0)


def test_render_text() -> None:
    mask = render_text("A1?", scale=2)
    assert mask.shape == (14, 36)
    assert mask.any()
    assert np.array_equal(render_text("a"), render_text("A"))
    assert np.array_equal(render_text("~"), render_text("?"))


def test_vp8_header_parsing() -> None:
    header = b"\x10\x02\x00\x9d\x01\x2a" + (640).to_bytes(2, "little") + (360).to_bytes(2, "little")
    assert keyframe_size("vp8", header) == (640, 360)
    assert not is_keyframe("vp8", b"\x11" + header[1:])  # inter frame bit set
    assert not is_keyframe("vp8", header[:9])
    assert not is_keyframe("vp8", header[:3] + b"\x00\x00\x00" + header[6:])


def test_vp9_header_parsing() -> None:
    # frame_marker=2 (10), profile 0 (00), show_existing_frame=0, frame_type=0
    # (key), show_frame=1, error_resilient=0, the sync code, color space 2
    # (010), color range 0, then width and height minus one.
    bits = "10" + "00" + "0" + "0" + "1" + "0" + f"{0x498342:024b}" + "010" + "0"
    bits += f"{319:016b}{179:016b}"
    bits += "0" * (-len(bits) % 8)
    data = int(bits, 2).to_bytes(len(bits) // 8, "big")
    assert keyframe_size("vp9", data) == (320, 180)
    assert keyframe_size("vp9", data[:6]) is None  # truncated
    inter = bytes([data[0] | 0x04]) + data[1:]  # frame_type = 1
    assert not is_keyframe("vp9", inter)
    with pytest.raises(ValueError):
        is_keyframe("h264", data)
