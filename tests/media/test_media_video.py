"""VP8/VP9 encoder and decoder: round trips, keyframes, robustness, bitrate."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest

from clave.media import (
    EncodedChunk,
    MediaError,
    TestPatternSource,
    VideoDecoder,
    VideoEncoder,
    is_keyframe,
    keyframe_size,
)


def _encode(encoder: VideoEncoder, source: TestPatternSource, n: int) -> list[EncodedChunk]:
    chunks: list[EncodedChunk] = []
    for _ in range(n):
        chunks += encoder.encode(source.next_frame())
    return chunks


def _psnr(a: av.VideoFrame, b: av.VideoFrame) -> float:
    ya = a.to_ndarray()[: a.height].astype(np.float64)
    yb = b.to_ndarray()[: b.height].astype(np.float64)
    mse = float(((ya - yb) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def test_round_trip_60_frames() -> None:
    source = TestPatternSource()
    encoder = VideoEncoder()
    decoder = VideoDecoder()
    originals = [source.next_frame() for _ in range(60)]
    decoded: list[av.VideoFrame] = []
    for frame in originals:
        chunks = encoder.encode(frame)
        assert len(chunks) == 1  # no lookahead, no frame dropping
        decoded += decoder.decode_frames(chunks[0].data)
    assert len(decoded) == 60
    assert decoder.frames_decoded == 60
    assert decoder.errors == 0 and decoder.frames_dropped == 0
    assert decoder.frame_size == (640, 360)
    assert not decoder.needs_keyframe
    assert _psnr(originals[59], decoded[59]) > 30


def test_decode_returns_frame_count(vp8_clip: list[EncodedChunk]) -> None:
    decoder = VideoDecoder()
    assert [decoder.decode(c.data) for c in vp8_clip[:5]] == [1, 1, 1, 1, 1]


def test_chunks_are_video_with_frame_timestamps(vp8_clip: list[EncodedChunk]) -> None:
    assert len(vp8_clip) == 150
    assert all(c.kind == "video" for c in vp8_clip)
    assert [c.timestamp_us for c in vp8_clip[:4]] == [0, 33333, 66667, 100000]


def test_first_chunk_is_keyframe(vp8_clip: list[EncodedChunk]) -> None:
    assert vp8_clip[0].keyframe
    assert is_keyframe("vp8", vp8_clip[0].data)
    assert keyframe_size("vp8", vp8_clip[0].data) == (640, 360)
    assert not vp8_clip[1].keyframe
    assert not is_keyframe("vp8", vp8_clip[1].data)


def test_keyframe_flag_matches_bitstream(vp8_clip: list[EncodedChunk]) -> None:
    assert [c.keyframe for c in vp8_clip] == [is_keyframe("vp8", c.data) for c in vp8_clip]


def test_periodic_keyframes_every_3_s(vp8_clip: list[EncodedChunk]) -> None:
    keys = [i for i, c in enumerate(vp8_clip) if c.keyframe]
    assert keys == [0, 90]


def test_periodic_keyframe_interval_is_configurable() -> None:
    source = TestPatternSource(320, 180)
    encoder = VideoEncoder(width=320, height=180, keyframe_interval_s=1.0)
    chunks = _encode(encoder, source, 100)
    assert [i for i, c in enumerate(chunks) if c.keyframe] == [0, 30, 60, 90]
    assert encoder.keyframes_encoded == 4


def test_no_periodic_keyframes_when_disabled() -> None:
    source = TestPatternSource(320, 180)
    encoder = VideoEncoder(width=320, height=180, keyframe_interval_s=None)
    chunks = _encode(encoder, source, 120)
    assert [i for i, c in enumerate(chunks) if c.keyframe] == [0]


def test_request_keyframe_makes_next_frame_a_keyframe() -> None:
    source = TestPatternSource(320, 180)
    encoder = VideoEncoder(width=320, height=180)
    chunks = _encode(encoder, source, 10)
    encoder.request_keyframe()
    chunks += _encode(encoder, source, 10)
    assert [i for i, c in enumerate(chunks) if c.keyframe] == [0, 10]


def test_input_pict_type_does_not_force_keyframes() -> None:
    """Frames decoded from a file carry pict_type I; the encoder must ignore it."""
    source = TestPatternSource(320, 180)
    encoder = VideoEncoder(width=320, height=180)
    chunks: list[EncodedChunk] = []
    for _ in range(5):
        frame = source.next_frame()
        frame.pict_type = av.video.frame.PictureType.I
        chunks += encoder.encode(frame)
    assert [c.keyframe for c in chunks] == [True, False, False, False, False]


def test_decoder_drops_deltas_until_keyframe_then_recovers() -> None:
    source = TestPatternSource(320, 180)
    encoder = VideoEncoder(width=320, height=180)
    chunks = _encode(encoder, source, 20)
    encoder.request_keyframe()
    chunks += _encode(encoder, source, 10)
    decoder = VideoDecoder()
    assert decoder.needs_keyframe
    # Join late: the first 20 frames are lost except deltas 10..19.
    assert sum(decoder.decode(c.data) for c in chunks[10:20]) == 0
    assert decoder.needs_keyframe
    assert decoder.frames_dropped == 10
    assert decoder.errors == 0
    assert sum(decoder.decode(c.data) for c in chunks[20:]) == 10
    assert not decoder.needs_keyframe
    assert decoder.keyframes_decoded == 1


def test_garbage_does_not_crash_and_resync_needs_keyframe(vp8_clip: list[EncodedChunk]) -> None:
    decoder = VideoDecoder()
    rng = np.random.default_rng(7)
    assert decoder.decode(vp8_clip[0].data) == 1
    garbage = [
        b"",
        b"\x00",
        rng.bytes(1000),
        vp8_clip[0].data[:12],  # truncated keyframe: valid header, no body
        vp8_clip[0].data[:10] + rng.bytes(500),  # keyframe header, random body
        bytes(5000),
    ]
    for data in garbage:
        decoder.decode(data)  # must not raise
    assert decoder.errors >= 1
    assert decoder.last_error
    # After an error the decoder waits for a keyframe; the next one resyncs it.
    assert decoder.needs_keyframe
    assert decoder.decode(vp8_clip[1].data) == 0
    assert decoder.decode(vp8_clip[90].data) == 1
    assert decoder.decode(vp8_clip[91].data) == 1


def test_random_bytes_fuzz() -> None:
    decoder = VideoDecoder()
    rng = np.random.default_rng(1)
    for i in range(200):
        data = rng.bytes(int(rng.integers(0, 300)))
        if i % 2:  # half of them look like keyframes, to reach the real decoder
            data = b"\x10\x02\x00\x9d\x01\x2a\x40\x01\xb4\x00" + data
        decoder.decode(data)
    assert decoder.frames_decoded + decoder.errors + decoder.frames_dropped >= 100


def test_reset_waits_for_next_keyframe(vp8_clip: list[EncodedChunk]) -> None:
    decoder = VideoDecoder()
    assert decoder.decode(vp8_clip[0].data) == 1
    decoder.reset()
    assert decoder.needs_keyframe
    assert decoder.decode(vp8_clip[1].data) == 0
    assert decoder.decode(vp8_clip[90].data) == 1


def test_bitrate_near_target(vp8_clip: list[EncodedChunk]) -> None:
    seconds = len(vp8_clip) / 30
    kbps = sum(len(c.data) for c in vp8_clip) * 8 / seconds / 1000
    assert 250 <= kbps <= 1000, kbps


def test_bitrate_follows_setting() -> None:
    source = TestPatternSource(320, 180)
    encoder = VideoEncoder(width=320, height=180, bitrate=200_000)
    chunks = _encode(encoder, source, 90)
    kbps = sum(len(c.data) for c in chunks) * 8 / 3 / 1000
    assert 100 <= kbps <= 400, kbps


def test_other_sizes_and_formats_are_converted() -> None:
    encoder = VideoEncoder(width=320, height=180)
    rgb = np.zeros((240, 426, 3), dtype=np.uint8)
    rgb[:, :200] = (255, 0, 0)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    chunks = encoder.encode(frame, timestamp_us=5_000)
    assert len(chunks) == 1 and chunks[0].timestamp_us == 5_000
    assert keyframe_size("vp8", chunks[0].data) == (320, 180)


def test_timestamps_forced_increasing() -> None:
    source = TestPatternSource(320, 180)
    encoder = VideoEncoder(width=320, height=180)
    stamps = [100, 100, 50, 200]
    chunks = [c for t in stamps for c in encoder.encode(source.next_frame(), timestamp_us=t)]
    assert [c.timestamp_us for c in chunks] == [100, 101, 102, 200]


def test_frames_without_pts_are_timed_by_count() -> None:
    encoder = VideoEncoder(width=320, height=180, fps=25)
    chunks: list[EncodedChunk] = []
    for _ in range(3):
        chunks += encoder.encode(av.VideoFrame(320, 180, "yuv420p"))
    assert [c.timestamp_us for c in chunks] == [0, 40_000, 80_000]


def test_flush_closes_encoder() -> None:
    encoder = VideoEncoder(width=320, height=180)
    encoder.encode(TestPatternSource(320, 180).next_frame())
    assert encoder.flush() == []
    with pytest.raises(MediaError):
        encoder.encode(TestPatternSource(320, 180).next_frame())


def test_vp9_round_trip() -> None:
    source = TestPatternSource(320, 180)
    encoder = VideoEncoder("vp9", width=320, height=180, bitrate=300_000)
    chunks = _encode(encoder, source, 15)
    encoder.request_keyframe()
    chunks += _encode(encoder, source, 5)
    assert [i for i, c in enumerate(chunks) if c.keyframe] == [0, 15]
    assert [c.keyframe for c in chunks] == [is_keyframe("vp9", c.data) for c in chunks]
    assert keyframe_size("vp9", chunks[0].data) == (320, 180)
    decoder = VideoDecoder("vp9")
    assert decoder.decode(chunks[3].data) == 0  # delta before keyframe
    assert sum(decoder.decode(c.data) for c in chunks) == 20


def test_bad_configuration_raises_media_error() -> None:
    with pytest.raises(MediaError):
        VideoEncoder("h264")
    with pytest.raises(MediaError):
        VideoEncoder(width=641)
    with pytest.raises(MediaError):
        VideoDecoder("av1")
    with pytest.raises(MediaError):
        VideoEncoder(cpu_used=99)


def test_one_encoder_shared_between_threads() -> None:
    source = TestPatternSource(320, 180)
    encoder = VideoEncoder(width=320, height=180)
    frames = [source.next_frame() for _ in range(40)]
    out: list[EncodedChunk] = []
    lock = threading.Lock()

    def work(part: list[av.VideoFrame]) -> None:
        for frame in part:
            chunks = encoder.encode(frame)
            with lock:
                out.extend(chunks)

    threads = [threading.Thread(target=work, args=(frames[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 40
    assert encoder.frames_encoded == 40


@pytest.mark.parametrize("label", ["", "Ada", "Linus Torvalds abcd1234 " * 4])
def test_pattern_draws_any_label_length(label: str) -> None:
    """A label of any length is drawn (clipped when too wide), never an error."""
    source = TestPatternSource(640, 360, 30, label=label)
    frame = source.next_frame(0)
    assert (frame.width, frame.height) == (640, 360)
    plain = TestPatternSource(640, 360, 30).render(0)
    assert (source.render(0) != plain).any() == bool(label)
