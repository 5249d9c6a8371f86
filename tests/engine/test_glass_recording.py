"""Recording from the meeting page (``record``), with a scripted glass in a real meeting.

Only a host may start one; the engine writes the file under ``$CLAVE_RECORDINGS_DIR``,
tells its glass the path (``recording``) and the others, authenticated, that it
records. Removed from the meeting while recording, the engine finishes the file:
it plays back with PyAV.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from engine_helpers import GlassMedia, Json, run, until
from test_glass_meeting import engine, world

from clave.engine.glass_recording import OWN
from clave.engine.headless import HeadlessParticipant
from clave.meeting import events as ev
from clave.wire import StreamKind

OWN_CAMERA = (OWN, StreamKind.video)
FRAMES = 30
"""Video frames the engine's recording must decode from the other members."""
TICKS = 100
"""20 ms Opus packets the page's microphone sends while it records."""


class Watcher(HeadlessParticipant):
    """A headless participant that keeps the ``MemberMedia`` events it saw."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.media_events: list[ev.MemberMedia] = []
        self.keyframes_asked = 0

    def _on_event(self, event: ev.Event) -> None:
        if type(event) is ev.MemberMedia:
            self.media_events.append(event)
        self.keyframes_asked += type(event) is ev.KeyframeRequested
        super()._on_event(event)


def test_a_host_records_from_the_page_and_removal_finishes_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "recordings"
    monkeypatch.setenv("CLAVE_RECORDINGS_DIR", str(folder))

    async def scenario() -> None:
        async with world() as w:
            # Only the page's own microphone is heard: it must be in the mix.
            host = Watcher(w.link, "Hedy", host=True, owner_key=w.owner_key, audio=False)
            sam = Watcher(w.link, "Sam", audio=False)
            await host.start()
            try:
                assert await host.wait_joined(10)
                await sam.start()
                assert await sam.wait_joined(15)
                async with engine(w.link) as (server, glass):
                    bridge = server.bridge
                    await glass.send({"type": "join", "name": "Grace"})
                    state = await glass.wait_state(
                        lambda s: s["phase"] == "in_meeting" and len(s["roster"]) == 3
                    )
                    grace = next(e["leaf"] for e in state["roster"] if e["is_self"])

                    # A member who is not a host is refused: no file, nothing announced.
                    errors = len(glass.of_type("error"))
                    await glass.send({"type": "record", "on": True})
                    await glass.wait_for(lambda: glass.of_type("error")[errors:] or None)
                    assert glass.of_type("error")[-1]["message"] == (
                        "Only a host can record the meeting."
                    )
                    assert not bridge.recording.on and not folder.exists()

                    assert host.session is not None
                    await host.session.act(lambda m: m.set_host(grace, True))
                    await glass.wait_state(lambda s: s["is_host"])
                    asked = {p: p.keyframes_asked for p in (host, sam)}
                    await glass.send({"type": "record", "on": True})
                    started: Json = await glass.wait_message("recording", lambda m: m["on"])
                    path = Path(started["path"])
                    assert path.parent == folder

                    def told(p: Watcher) -> bool:
                        return any(e.name == "Grace" and e.recording for e in p.media_events)

                    await until(lambda: told(host) and told(sam), 15, "everyone told")
                    # The new recording's decoders start from keyframes it asked for.
                    await until(lambda: all(p.keyframes_asked > n for p, n in asked.items()), 10)
                    await glass.wait_state(
                        lambda s: any(e["is_self"] and e["recording"] for e in s["roster"])
                    )
                    recorder = bridge.recording.recorder
                    assert recorder is not None
                    await until(lambda: recorder.counts.video_in >= 2 * FRAMES, 30, "video")
                    # The page's microphone (a 660 Hz tone) and camera: Grace is the only
                    # one speaking, so the file shows her own camera (never on her stage).
                    shown_before = recorder.counts.shown[OWN_CAMERA]
                    await GlassMedia(glass, "Grace").send(TICKS)
                    await until(lambda: recorder.counts.audio_in == TICKS, 10, "own audio")
                    assert recorder.counts.shown[OWN_CAMERA] > shown_before == 0

                    await host.session.act(lambda m: m.remove_member(grace))
                    stopped = await glass.wait_message("recording", lambda m: not m["on"], 20)
                    assert stopped["path"] == str(path) and not bridge.recording.on
            finally:
                await sam.stop()
                await host.stop()
        with av.open(str(path)) as container:
            assert sorted(s.type for s in container.streams) == ["audio", "video"]
            frames = list(container.decode(*container.streams))
        video = sum(1 for f in frames if isinstance(f, av.VideoFrame))
        assert video == recorder.counts.video_frames > 0
        pcm = np.concatenate(
            [f.to_ndarray().reshape(-1) for f in frames if isinstance(f, av.AudioFrame)]
        )
        spectrum = np.abs(np.fft.rfft(pcm))
        peak = np.fft.rfftfreq(len(pcm), 1 / 48_000)[int(np.argmax(spectrum))]
        assert round(float(peak) / 10) * 10 == 660, peak

    run(scenario(), 90)
