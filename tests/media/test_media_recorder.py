"""WebM recording of received chunks, without re-encoding."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from clave.media import (
    EncodedChunk,
    MediaError,
    OpusEncoder,
    TestPatternSource,
    ToneSource,
    VideoEncoder,
    WebMRecorder,
)


def _av_chunks(seconds: float, audio_lead_s: float = 0.0) -> list[EncodedChunk]:
    """Interleaved 30 fps VP8 and 50 fps Opus, audio starting ``audio_lead_s`` early."""
    video_src, audio_src = TestPatternSource(320, 180, label="rec"), ToneSource()
    video_enc, audio_enc = VideoEncoder(width=320, height=180), OpusEncoder()
    lead_us = round(audio_lead_s * 1_000_000)
    chunks: list[EncodedChunk] = []
    for _ in range(round(seconds * 30)):
        index = video_src.frame_count
        frame = video_src.next_frame()
        chunks += video_enc.encode(frame, timestamp_us=lead_us + round(index * 1_000_000 / 30))
    for _ in range(round((seconds + audio_lead_s) * 50)):
        chunks += audio_enc.encode(audio_src.next_frame())
    return sorted(chunks, key=lambda c: c.timestamp_us)


def _count_packets(path: Path) -> dict[str, int]:
    counts = {"video": 0, "audio": 0}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size:
                counts[packet.stream.type] += 1
    return counts


def test_recording_is_readable_with_all_packets(tmp_path: Path) -> None:
    path = tmp_path / "call.webm"
    chunks = _av_chunks(2.0)
    with WebMRecorder(path) as recorder:
        for chunk in chunks:
            assert recorder.write(chunk)
    assert (recorder.video_packets, recorder.audio_packets, recorder.dropped) == (60, 100, 0)
    with av.open(str(path)) as container:
        assert container.format.name.startswith("matroska")
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "vp8"
        assert (video.codec_context.width, video.codec_context.height) == (320, 180)
        assert audio.codec_context.name == "opus"
        assert audio.codec_context.channels == 1
        assert container.duration is not None and 1.9e6 <= container.duration <= 2.2e6
    assert _count_packets(path) == {"video": 60, "audio": 100}
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 60
    with av.open(str(path)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert abs(samples - 96_000) <= 960  # 2 s minus the 312-sample pre-skip


def test_deltas_before_first_keyframe_dropped_audio_kept(tmp_path: Path) -> None:
    path = tmp_path / "late.webm"
    chunks = _av_chunks(1.0, audio_lead_s=0.5)
    video = [c for c in chunks if c.kind == "video"]
    after_join = video[10:]  # joined late: first 10 frames missing
    assert not after_join[0].keyframe
    recorder = WebMRecorder(path, width=320, height=180)
    for chunk in sorted(
        after_join + [c for c in chunks if c.kind == "audio"],
        key=lambda c: c.timestamp_us,
    ):
        recorder.write(chunk)
    late_key = VideoEncoder(width=320, height=180)
    key = late_key.encode(TestPatternSource(320, 180).next_frame(), timestamp_us=2_000_000)[0]
    assert recorder.write(key)
    recorder.close()
    assert recorder.video_packets == 1
    assert recorder.dropped == 20
    assert recorder.audio_packets == 75
    assert _count_packets(path) == {"video": 1, "audio": 75}


def test_audio_only(tmp_path: Path) -> None:
    path = tmp_path / "audio.webm"
    source, encoder = ToneSource(), OpusEncoder()
    with WebMRecorder(path, video=False) as recorder:
        for _ in range(50):
            for chunk in encoder.encode(source.next_frame()):
                recorder.write(chunk)
        for chunk in encoder.flush():
            recorder.write(chunk)
        video = VideoEncoder(width=320, height=180)
        assert not recorder.write(video.encode(TestPatternSource(320, 180).next_frame())[0])
    assert _count_packets(path) == {"video": 0, "audio": 51}


def test_video_never_started_still_writes_audio(tmp_path: Path) -> None:
    path = tmp_path / "novideo.webm"
    source, encoder = ToneSource(), OpusEncoder()
    recorder = WebMRecorder(path)
    for _ in range(10):
        for chunk in encoder.encode(source.next_frame()):
            recorder.write(chunk)
    assert not recorder.started
    recorder.close()
    assert _count_packets(path) == {"video": 0, "audio": 10}


def test_timestamps_start_at_zero_and_stay_monotonic(tmp_path: Path) -> None:
    path = tmp_path / "ts.webm"
    encoder = VideoEncoder(width=320, height=180)
    source = TestPatternSource(320, 180)
    with WebMRecorder(path, audio=False) as recorder:
        for i in range(5):
            chunk = encoder.encode(source.next_frame(), timestamp_us=7_000_000 + i * 33_333)[0]
            recorder.write(chunk)
        # A duplicate timestamp is nudged forward, not rejected.
        dup = encoder.encode(source.next_frame())[0]
        recorder.write(EncodedChunk(dup.data, dup.keyframe, 7_000_000 + 4 * 33_333, "video"))
        # Something from before the start of the file is dropped.
        old = encoder.encode(source.next_frame())[0]
        assert not recorder.write(EncodedChunk(old.data, old.keyframe, 6_000_000, "video"))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
    assert times[0] == 0
    assert len(times) == 6 and times == sorted(times)


def test_close_is_idempotent_and_write_after_close_raises(tmp_path: Path) -> None:
    recorder = WebMRecorder(tmp_path / "x.webm")
    recorder.close()
    recorder.close()
    with pytest.raises(MediaError):
        recorder.write(EncodedChunk(b"\x00", True, 0, "audio"))


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(MediaError):
        WebMRecorder(tmp_path / "a.webm", video=False, audio=False)
    with pytest.raises(MediaError):
        WebMRecorder(tmp_path / "b.webm", video_codec="h264")
    with pytest.raises(MediaError):
        WebMRecorder(tmp_path / "missing-dir" / "c.webm")
