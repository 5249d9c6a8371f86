"""Recording under end-to-end encryption, on a real relay.

A recorder is a participant: admitted through the lobby by the host, in everyone's
roster, announced to everyone as recording (an MLS application message), and it
writes what it decrypts (every member's audio mixed, the speaker's video) to a WebM
file that plays back with PyAV. It finishes the file when stopped, when removed by a
host and when ``clave record`` gets SIGINT.
"""

from __future__ import annotations

import asyncio
import re
import signal
import zlib
from pathlib import Path

import numpy as np
import pytest
from clave_process import Proc
from e2e_helpers import (
    BASE_URL,
    RecordingParticipant,
    invitation,
    relay,
    run,
    stop_all,
    wait_until,
)

from clave.engine.recording import MeetingRecorder
from clave.meeting import events as ev
from clave.meeting.link import MeetingLink
from clave.wire import StreamKind
from playback import Played, play

pytestmark = pytest.mark.slow

HOST, GUEST, RECORDER = "Ada", "Grace", "Recorder"
FRAMES = 45
"""Video frames the recorder must decode from each member before it stops."""


def tone_of(name: str) -> int:
    """The headless participant's microphone tone (see headless_media.audio_loop)."""
    return 440 + 110 * (zlib.crc32(name.encode()) % 5)


def tones_heard(pcm: np.ndarray) -> set[int]:
    """Tone frequencies (rounded to 10 Hz) standing out in the mixed audio."""
    spectrum = np.abs(np.fft.rfft(pcm))
    freqs = np.fft.rfftfreq(len(pcm), 1 / 48_000)
    return {round(float(f) / 10) * 10 for f in freqs[spectrum > spectrum.max() / 5]}


def assert_playable(path: Path, *, min_video: int) -> Played:
    played = play(path)
    assert played.kinds == ["audio", "video"], played.kinds
    assert played.video >= min_video, played.video
    assert played.audio > 0
    assert played.duration > 0
    return played


async def _meeting(
    link: MeetingLink, owner: bytes, *, host_speaks: bool = True
) -> list[RecordingParticipant]:
    """A host admitting only the guest and the recorder from the lobby, and the guest."""
    host = RecordingParticipant(
        link, HOST, host=True, owner_key=owner, auto_admit=False, admit=[GUEST, RECORDER],
        speaking=host_speaks,
    )  # fmt: skip
    guest = RecordingParticipant(link, GUEST)
    await host.start()
    assert await host.wait_joined(10)
    await guest.start()
    assert await guest.wait_joined(15)
    return [host, guest]


def saw_recording(p: RecordingParticipant, name: str = RECORDER) -> bool:
    return any(e.name == name and e.recording for e in p.events_of(ev.MemberMedia))


async def _recorded(recorder: MeetingRecorder) -> None:
    """Until the recorder decoded FRAMES video frames from each member."""

    def enough() -> bool:
        return all(recorder.counter.count(n, "video") >= FRAMES for n in (HOST, GUEST))

    await wait_until(enough, 40, explain=lambda: recorder.counter.summary())


def test_a_recording_of_a_real_meeting_plays_back_and_everyone_saw_the_notice(
    tmp_path: Path,
) -> None:
    assert tone_of(HOST) != tone_of(GUEST)
    out = tmp_path / "meeting.webm"

    async def scenario() -> None:
        async with relay() as port:
            link, owner = invitation(BASE_URL.format(port=port))
            people = await _meeting(link, owner)
            host, guest = people
            recorder = MeetingRecorder(link, RECORDER, out)
            try:
                await recorder.start()
                assert await recorder.wait_joined(15), recorder.report
                # admitted from the lobby, like anyone (a slow answer may bring a 2nd knock)
                knocks = [e.display_name for e in host.events_of(ev.LobbyRequest)]
                assert list(dict.fromkeys(knocks)) == [GUEST, RECORDER]
                await wait_until(lambda: all(saw_recording(p) for p in people), 15)
                await wait_until(lambda: RECORDER in guest.report.roster, 15)
                await _recorded(recorder)
            finally:
                report = await recorder.stop()
                await stop_all(people)
            assert not report.alerts and not report.media_errors, report
        counts = recorder.counts
        assert counts.video_in >= 2 * FRAMES and counts.audio_in > 0
        played = assert_playable(out, min_video=counts.video_frames)
        assert played.video == counts.video_frames
        assert {tone_of(HOST), tone_of(GUEST)} <= tones_heard(played.pcm)

    run(scenario(), 120)


def test_the_recording_shows_the_speaker(tmp_path: Path) -> None:
    """The host is silent (its lower leaf would come first otherwise), the guest speaks:
    once the recorder has heard the guest, every picture it writes is the guest's."""

    async def scenario() -> None:
        async with relay() as port:
            link, owner = invitation(BASE_URL.format(port=port))
            people = await _meeting(link, owner, host_speaks=False)
            recorder = MeetingRecorder(link, RECORDER, tmp_path / "speaker.webm")
            try:
                await recorder.start()
                assert await recorder.wait_joined(15)
                await _recorded(recorder)
                shown = recorder.recorder.last_shown
                mark = recorder.counts.video_frames
                await wait_until(lambda: recorder.counts.video_frames >= mark + len(shown), 20)
                leaf = next(e.leaf for e in recorder.session.meeting.roster if e.name == GUEST)  # type: ignore[union-attr]
                assert set(shown) == {(leaf, StreamKind.video)}, shown
            finally:
                await recorder.stop()
                await stop_all(people)

    run(scenario(), 120)


def test_a_recorder_removed_by_the_host_finishes_its_file(tmp_path: Path) -> None:
    out = tmp_path / "removed.webm"

    async def scenario() -> None:
        async with relay() as port:
            link, owner = invitation(BASE_URL.format(port=port))
            people = await _meeting(link, owner)
            host = people[0]
            recorder = MeetingRecorder(link, RECORDER, out)
            try:
                await recorder.start()
                assert await recorder.wait_joined(15)
                await _recorded(recorder)
                leaf = next(e.leaf for e in host.session.meeting.roster if e.name == RECORDER)  # type: ignore[union-attr]
                await host.session.act(lambda m: m.remove_member(leaf))  # type: ignore[union-attr]
                await asyncio.wait_for(recorder.ended.wait(), 20)
                assert recorder.report.removed
            finally:
                await recorder.stop()
                await stop_all(people)
        assert_playable(out, min_video=recorder.counts.video_frames)

    run(scenario(), 120)


def test_clave_record_stops_on_sigint_with_a_playable_file(tmp_path: Path) -> None:
    out = tmp_path / "sigint.webm"

    async def scenario() -> None:
        async with relay() as port:
            link, owner = invitation(BASE_URL.format(port=port))
            people = await _meeting(link, owner)
            host = people[0]
            proc = await Proc.spawn(
                "recorder", tmp_path, "record", "--out", str(out), stdin=link.url
            )
            try:
                await proc.expect(f"recording as {RECORDER} to ", timeout=40)
                await wait_until(lambda: saw_recording(host), 15)

                async def decoded() -> int:
                    status = await proc.status()
                    return min(status["decoded"].get(n, {}).get("video", 0) for n in (HOST, GUEST))

                for _ in range(200):
                    if await decoded() >= FRAMES:
                        break
                    await asyncio.sleep(0.2)
                assert await decoded() >= FRAMES
                proc.signal(signal.SIGINT)
                line = await proc.expect("stopped: wrote ", timeout=30)
                assert await asyncio.wait_for(proc.proc.wait(), 30) == 0, proc.explain()
            finally:
                if proc.proc.returncode is None:
                    proc.proc.kill()
                await stop_all(people)
        written = re.fullmatch(
            rf"{re.escape(str(out))} \((\d+) video frames, (\d+) ms of audio\)", line
        )
        assert written is not None, line
        played = assert_playable(out, min_video=1)
        assert played.video == int(written[1])

    run(scenario(), 150)


def test_clave_record_stopped_in_the_lobby_says_so(tmp_path: Path) -> None:
    out = tmp_path / "lobby.webm"

    async def scenario() -> None:
        async with relay() as port:
            link, owner = invitation(BASE_URL.format(port=port))
            host = RecordingParticipant(link, HOST, host=True, owner_key=owner, auto_admit=False)
            await host.start()
            assert await host.wait_joined(10)
            proc = await Proc.spawn(
                "waiting", tmp_path, "record", "--out", str(out), stdin=link.url
            )
            try:
                knocked = lambda: [e.display_name for e in host.events_of(ev.LobbyRequest)]  # noqa: E731
                await wait_until(lambda: RECORDER in knocked(), 30)
                proc.signal(signal.SIGINT)
                assert await asyncio.wait_for(proc.proc.wait(), 30) == 4, proc.explain()
                assert "stopped before a host admitted the recorder" in proc.explain()
            finally:
                if proc.proc.returncode is None:
                    proc.proc.kill()
                await stop_all([host])
        assert not saw_recording(host)
        assert play(out).kinds == ["audio", "video"]  # finished, if empty

    run(scenario(), 90)


def test_clave_record_refuses_a_file_it_cannot_write_in_one_line(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with relay() as port:
            link, _ = invitation(BASE_URL.format(port=port))
            out = tmp_path / "missing" / "x.webm"
            proc = await Proc.spawn(
                "bad-out", tmp_path, "record", "--out", str(out), stdin=link.url
            )
            assert await asyncio.wait_for(proc.proc.wait(), 30) == 2, proc.explain()
            err = proc.stderr.read_text().strip().splitlines()
            assert len(err) == 1 and err[0].startswith(f"clave: cannot create {out}"), err

    run(scenario(), 60)
