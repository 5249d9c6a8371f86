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
