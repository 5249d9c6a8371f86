"""MixedRecorder: several senders' audio mixed, the shown sender's video, one WebM file."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from clave.media import MediaError, OpusEncoder, ToneSource, VideoEncoder
from clave.media.mixed_recorder import MixedRecorder

FPS = 15


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def solid(y: int, u: int, v: int) -> av.VideoFrame:
    planes = np.empty((360 * 3 // 2, 640), dtype=np.uint8)
    planes[:360] = y
    planes[360:450] = u
    planes[450:] = v
    return av.VideoFrame.from_ndarray(planes, format="yuv420p")


RED, BLUE = solid(82, 90, 240), solid(41, 240, 110)


def play(path: Path) -> dict[str, object]:
    """Open a recording with PyAV: streams, duration and every decodable frame."""
    with av.open(str(path)) as container:
        kinds = sorted(s.type for s in container.streams)
        duration = (container.duration or 0) / 1_000_000
        pictures: list[float] = []
        samples: list[np.ndarray] = []
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                pictures.append(float(frame.to_ndarray(format="yuv420p")[450:].mean()))  # V
            else:
                samples.append(frame.to_ndarray().reshape(-1))
    pcm = np.concatenate(samples) if samples else np.zeros(0)
    return {"kinds": kinds, "duration": duration, "pictures": pictures, "pcm": pcm}


def peak_bins(pcm: np.ndarray, rate: int = 48_000) -> set[int]:
    spectrum = np.abs(np.fft.rfft(pcm))
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    top = spectrum > spectrum.max() / 4
    return {round(float(f) / 10.0) * 10 for f in freqs[top]}


def test_two_speakers_mixed_and_the_shown_one_recorded(tmp_path: Path) -> None:
    clock = Clock()
    out = tmp_path / "mix.webm"
    rec = MixedRecorder(out, fps=FPS, clock=clock)
    tones = {1: ToneSource(440.0), 2: ToneSource(1000.0)}
    opus = {1: OpusEncoder(), 2: OpusEncoder()}
    video = {1: VideoEncoder("vp8", 640, 360, 30), 2: VideoEncoder("vp8", 640, 360, 30)}
    colours = {1: RED, 2: BLUE}
    rec.show(1)
    for tick in range(150):  # 3 s of 20 ms ticks, video every other tick
        clock.now += 0.02
        if tick == 75:
            rec.show(2)  # the active speaker changes half way
        for sender in (1, 2):
            for chunk in opus[sender].encode(tones[sender].next_frame()):
                rec.audio(sender, chunk.data)
            if tick % 2 == 0:
                for chunk in video[sender].encode(colours[sender].reformat()):
                    assert rec.video(sender, chunk.data)
        rec.advance()
    counts = rec.close()
    assert counts.audio_in == 300 and counts.video_in == 150 and counts.late == 0
    played = play(out)
    assert played["kinds"] == ["audio", "video"]
    pictures = played["pictures"]
    assert isinstance(pictures, list)
    assert len(pictures) == counts.video_frames == 3 * FPS
    assert 2.9 <= float(played["duration"]) <= 3.2  # type: ignore[arg-type]
    # red (V high) while sender 1 was shown, then blue (V low) for sender 2
    first, last = pictures[:FPS], pictures[-FPS:]
    assert all(v > 200 for v in first) and all(v < 140 for v in last)
    pcm = played["pcm"]
    assert isinstance(pcm, np.ndarray)
    middle = pcm[48_000 : 48_000 * 2]  # a second well inside both tones
    assert {440, 1000} <= peak_bins(middle)


def test_silence_is_written_and_no_sender_gives_a_blank_picture(tmp_path: Path) -> None:
    clock = Clock()
    out = tmp_path / "quiet.webm"
    rec = MixedRecorder(out, fps=FPS, clock=clock)
    clock.now += 5.0  # before any media (the lobby): not recorded
    rec.advance()
    assert rec.counts.audio_slots == rec.counts.video_frames == 0
    rec.audio(1, OpusEncoder().encode(ToneSource().next_frame())[0].data)  # time 0
    clock.now += 1.0  # then nobody speaks (DTX: nothing arrives), nobody has a camera
    counts = rec.close()
    assert counts.audio_slots == 50 and counts.video_frames == FPS
    assert set(rec.last_shown) == {None}
    played = play(out)
    assert played["kinds"] == ["audio", "video"]
    assert len(played["pictures"]) == FPS  # type: ignore[arg-type]


def test_nothing_received_gives_an_empty_playable_file(tmp_path: Path) -> None:
    clock = Clock()
    out = tmp_path / "empty.webm"
    rec = MixedRecorder(out, clock=clock)
    clock.now += 3.0
    counts = rec.close()
    assert counts.video_frames == 1 and counts.audio_slots == 3  # 1/15 s of silence
    played = play(out)
    assert played["kinds"] == ["audio", "video"] and len(played["pictures"]) == 1  # type: ignore[arg-type]


def test_bad_input_is_counted_never_raised(tmp_path: Path) -> None:
    rec = MixedRecorder(tmp_path / "bad.webm", clock=Clock())
    rec.audio(1, b"")
    assert not rec.video(1, b"\x00garbage")
    assert rec.needs_keyframe(1)
    assert rec.counts.undecodable == 2
    rec.close()
    rec.close()  # idempotent


def test_bad_path_and_rate_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError):
        MixedRecorder(tmp_path / "missing" / "x.webm")
    with pytest.raises(MediaError):
        MixedRecorder(tmp_path / "x.webm", fps=0)
