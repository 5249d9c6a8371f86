"""MixedRecorder: several senders' audio mixed, the shown sender's video, one WebM file."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from clave.media import MediaError, OpusEncoder, ToneSource, VideoEncoder
from clave.media.mixed_recorder import MixedRecorder
from playback import play

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
    assert played.kinds == ["audio", "video"]
    pictures = played.chroma
    assert len(pictures) == counts.video_frames == 3 * FPS
    assert 2.9 <= played.duration <= 3.2
    # red (V high) while sender 1 was shown, then blue (V low) for sender 2
    first, last = pictures[:FPS], pictures[-FPS:]
    assert all(v > 200 for v in first) and all(v < 140 for v in last)
    pcm = played.pcm
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
    assert played.kinds == ["audio", "video"]
    assert played.video == FPS


def test_nothing_received_gives_an_empty_playable_file(tmp_path: Path) -> None:
    clock = Clock()
    out = tmp_path / "empty.webm"
    rec = MixedRecorder(out, clock=clock)
    clock.now += 3.0
    counts = rec.close()
    assert counts.video_frames == 1 and counts.audio_slots == 3  # 1/15 s of silence
    played = play(out)
    assert played.kinds == ["audio", "video"] and played.video == 1


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


def solid_of(width: int, height: int, y: int = 200) -> av.VideoFrame:
    planes = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
    planes[:height] = y
    return av.VideoFrame.from_ndarray(planes, format="yuv420p")


def last_picture(path: Path) -> np.ndarray:
    """The luma of the file's last picture (full range: black is 0)."""
    with av.open(str(path)) as container:
        last = None
        for frame in container.decode(video=0):
            last = frame.to_ndarray(format="gray")
    assert last is not None
    return last


@pytest.mark.parametrize(
    ("width", "height"), [(640, 480), (480, 960), (1280, 400), (1280, 720), (1920, 1080)]
)
def test_a_share_of_another_shape_is_fitted_with_bars_never_stretched(
    tmp_path: Path, width: int, height: int
) -> None:
    """A 4:3 screen, a portrait window and a wide strip keep their shape inside the
    file's 16:9 frame (black bars); a 16:9 picture fills it."""
    clock = Clock()
    out = tmp_path / "shape.webm"
    rec = MixedRecorder(out, fps=FPS, clock=clock)
    encoder = VideoEncoder("vp8", width, height, 30)
    rec.show("share")
    for _ in range(2 * FPS):
        clock.now += 1 / FPS
        for chunk in encoder.encode(solid_of(width, height)):
            assert rec.video("share", chunk.data)
        rec.advance()
    counts = rec.close()
    assert counts.shown["share"] == counts.video_frames > 0
    luma = last_picture(out)
    scale = min(640 / width, 360 / height)
    side, edge = round((640 - width * scale) / 2), round((360 - height * scale) / 2)
    margin = 4  # the codec blurs the border of the picture a little
    inside = luma[edge + margin : 360 - edge - margin, side + margin : 640 - side - margin]
    assert inside.min() > 150  # the whole picture is there, nothing cut off
    bars = []
    if side > margin:
        bars += [luma[:, : side - margin], luma[:, 640 - side + margin :]]
    if edge > margin:
        bars += [luma[: edge - margin, :], luma[360 - edge + margin :, :]]
    assert all(bar.max() < 40 for bar in bars)  # and the rest is black
    assert (side > 8) == (width * 9 < height * 16) and (edge > 8) == (width * 9 > height * 16)


def test_a_vp9_sender_is_recorded_and_a_codec_change_starts_over(tmp_path: Path) -> None:
    """A page may send VP9 (its codec choice): the decoder follows the sender's keyframe,
    also when the sender changes codec (a reload with the other choice)."""
    clock = Clock()
    rec = MixedRecorder(tmp_path / "vp9.webm", fps=FPS, clock=clock)
    rec.show("page")
    vp9, vp8 = VideoEncoder("vp9", 320, 180, 30), VideoEncoder("vp8", 320, 180, 30)
    first = vp9.encode(solid_of(320, 180))
    delta = vp9.encode(solid_of(320, 180, y=100))
    assert first[0].keyframe and not delta[0].keyframe
    assert not rec.video("page", delta[0].data)  # a delta before any keyframe: wait
    assert rec.needs_keyframe("page") and rec.counts.undecodable == 1
    assert rec.video("page", first[0].data)
    for _ in range(FPS):
        clock.now += 1 / FPS
        for chunk in vp9.encode(solid_of(320, 180)):
            assert rec.video("page", chunk.data)
        rec.advance()
    assert rec.counts.video_in == FPS + 1
    # The sender reloads with VP8: its deltas wait for its keyframe, which starts over.
    assert not rec.video("page", b"\x00\x00\x00garbage")
    assert rec.needs_keyframe("page")
    for chunk in vp8.encode(solid_of(320, 180)):
        assert rec.video("page", chunk.data)
    counts = rec.close()
    assert counts.video_in == FPS + 2 and counts.shown["page"] > 0
