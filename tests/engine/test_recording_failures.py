"""A recording whose file cannot be written on stops with a sentence, never a crash;
malformed media is counted, never raised (engine/glass_recording.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clave.engine.glass_messages import Error, Recording, ToGlass
from clave.engine.glass_recording import WRITE_FAILED, GlassRecording, recordings_dir
from clave.media import MediaError, OpusEncoder, ToneSource
from clave.media.mixed_recorder import MixedRecorder
from clave.meeting import events as ev
from clave.wire import StreamKind, pack_payload


def audio_event(data: bytes) -> ev.MediaFrameDecrypted:
    return ev.MediaFrameDecrypted(1, "Sam", StreamKind.audio, True, pack_payload(0, data))


def recording(tmp_path: Path) -> tuple[GlassRecording, list[ToGlass]]:
    sent: list[ToGlass] = []
    rec = GlassRecording(sent.append, lambda: None, lambda: None, lambda: tmp_path)
    ticks = iter(range(1_000_000))
    clock = lambda: next(ticks) * 0.1  # noqa: E731  (each reading 100 ms later)
    rec.recorder = MixedRecorder(tmp_path / "r.webm", latency=0.0, clock=clock)
    rec.path = rec.recorder.path
    return rec, sent


def test_a_file_that_cannot_be_written_stops_the_recording_with_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, sent = recording(tmp_path)
    assert rec.recorder is not None

    def full_disk(*_: Any) -> bool:
        raise MediaError("cannot write: No space left on device")

    monkeypatch.setattr(rec.recorder._file, "write", full_disk)
    packet = OpusEncoder().encode(ToneSource().next_frame())[0].data
    rec.frame(audio_event(packet))  # written at once: the write fails
    assert not rec.on
    assert Recording(on=False, path=rec.path) in sent
    assert Error(message=WRITE_FAILED) in sent


def test_malformed_media_is_counted_not_raised(tmp_path: Path) -> None:
    rec, sent = recording(tmp_path)
    recorder = rec.recorder
    assert recorder is not None
    assert rec.frame(audio_event(b""))  # no codec bytes
    rec.frame(ev.MediaFrameDecrypted(1, "Sam", StreamKind.audio, True, b"\x01"))  # no stamp
    video = ev.MediaFrameDecrypted(1, "Sam", StreamKind.video, False, pack_payload(0, b"junk"))
    assert not rec.frame(video)  # undecodable: the caller asks for a keyframe
    assert recorder.counts.undecodable == 1 and recorder.counts.audio_in == 0
    rec.close()
    assert sent == [Recording(on=False, path=rec.path)]


def test_the_recordings_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAVE_RECORDINGS_DIR", "/srv/rec")
    assert recordings_dir() == Path("/srv/rec")
    monkeypatch.delenv("CLAVE_RECORDINGS_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    assert recordings_dir() == Path("/data/clave/recordings")
    monkeypatch.setenv("XDG_DATA_HOME", "relative")  # ignored, as the XDG spec says
    assert recordings_dir() == Path.home() / ".local/share/clave/recordings"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Stub:
    """The little of a meeting and a session the page's own media needs."""

    def __init__(self, own_leaf: int) -> None:
        self.own_leaf = own_leaf
        self.muted_by: str | None = None
        self.meeting = self


def test_our_own_camera_is_recorded_while_we_last_started_speaking(tmp_path: Path) -> None:
    """The stage never shows ourselves; the host's page recording does, while the host is
    the one who last started speaking and its camera sends, else the stage's focus; a
    screen share comes first. Only the glass's highest layer is decoded."""
    from clave.engine.glass_channel import GLASS_CHUNK_HEADER
    from clave.engine.glass_messages import KeyframeRequest
    from clave.engine.glass_recording import OWN
    from clave.media import TestPatternSource, VideoEncoder
    from clave.meeting.speakers import Choice

    clock = Clock()
    me = Stub(own_leaf=0)
    stage = [Choice(order=(1,), focus=1)]
    sent: list[ToGlass] = []
    rec = GlassRecording(sent.append, lambda: me, lambda: stage[0], lambda: tmp_path, clock)  # type: ignore[arg-type,return-value]
    recorder = rec.recorder = MixedRecorder(tmp_path / "own.webm", clock=clock)
    opus, tone = OpusEncoder(), ToneSource()
    cameras = {layer: VideoEncoder("vp8", 160 << layer, 90 << layer, 30) for layer in (0, 1)}
    pattern = {layer: TestPatternSource(160 << layer, 90 << layer, 30) for layer in (0, 1)}

    def chunk(kind: StreamKind, layer: int, data: bytes) -> bytes:
        return GLASS_CHUNK_HEADER.pack(kind, layer << 1, 0) + data

    def tick(*, speak: bool, camera: bool = True, layers: tuple[int, ...] = (0, 1)) -> None:
        clock.now += 0.04
        if speak:
            for packet in opus.encode(tone.next_frame()):
                rec.own(chunk(StreamKind.audio, 0, packet.data), me)  # type: ignore[arg-type]
        if camera:
            for layer in layers:
                for frame in cameras[layer].encode(pattern[layer].next_frame()):
                    rec.own(chunk(StreamKind.video, layer, frame.data), me)  # type: ignore[arg-type]

    for _ in range(5):
        tick(speak=False, layers=(0,))
    assert recorder._shown == (1, StreamKind.video)  # not speaking: the stage's focus
    for _ in range(5):
        tick(speak=True, layers=(0,))
    assert recorder._shown == (OWN, StreamKind.video)
    tick(speak=True, layers=(1,))  # a higher layer: decoded from its first keyframe on
    assert rec._own_layer == 1 and not sent
    for _ in range(30):
        tick(speak=True, camera=False)  # camera off: no frozen picture of us
    assert recorder._shown == (1, StreamKind.video)
    cameras[1].request_keyframe()
    tick(speak=True, layers=(1,))
    assert recorder._shown == (OWN, StreamKind.video)
    # Sam starts speaking after us: Sam, then a share comes first.
    rec.frame(audio_event(OpusEncoder().encode(ToneSource(300).next_frame())[0].data))
    tick(speak=True, layers=(1,))
    assert recorder._shown == (1, StreamKind.video)
    stage[0] = Choice(order=(1,), focus=1, screen=frozenset({1}))
    tick(speak=True, layers=(1,))
    assert recorder._shown == (1, StreamKind.screen)
    rec.close()
    assert recorder.counts.shown[(OWN, StreamKind.video)] > 0
    assert not any(isinstance(m, KeyframeRequest) for m in sent)  # every start was a keyframe
