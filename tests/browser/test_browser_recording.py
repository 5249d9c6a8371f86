"""Recording in a real meeting with a real browser: everyone sees who records.

Alice hosts from Chromium (``clave meet --no-browser``); Carol is a headless Python
participant (``clave join --headless``) and the recorder is ``clave record --out FILE``.
Alice admits both from her page's lobby. Her page shows "● Recording by Recorder" and
the recorder in her participant list; then she records from the page herself (the
engine writes the file under ``$CLAVE_RECORDINGS_DIR``): Carol and the recorder are
told (their reports name her), her page names her own file. Then she shares her screen
and the recorder shows the share. Both recordings play back with PyAV: both streams,
decodable frames counted, and the recorder's count of whose pictures it wrote (Carol's
camera, Alice's screen) adds up to the file's. The recorder stops on SIGINT and its file
is finished; Alice's notice then goes away.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from browser_helpers import (
    Glass,
    Processes,
    admit,
    engine_from,
    join_meeting,
    launch_glass,
    leaves_of,
    screenshot,
    wait_for,
    wait_in_meeting,
)
from playwright.sync_api import expect, sync_playwright

from playback import play

pytestmark = [pytest.mark.slow]

MIN_VIDEO = 45
"""Video frames Alice's page decodes from Carol before anything is recorded."""
RECORDING = re.compile(r"^recording as Recorder to (.+)$")
STOPPED = re.compile(r"^stopped: wrote (.+) \((\d+) video frames, (\d+) ms of audio\)$")


PICTURES = re.compile(r"^pictures: (.+)$")


def sent_screen(glass: Glass) -> int:
    return int(glass.stats().get("sent", {}).get("screen", 0))


def banner(glass: Glass) -> str:
    locator = glass.page.locator("#recording-banner")
    return (locator.text_content() or "") if locator.is_visible() else ""


def decoded_from(glass: Glass, leaf: int, kind: str = "video") -> int:
    return glass.decoded().get(f"{leaf}:{kind}", 0)


def test_recordings_in_a_browser_meeting_play_back_and_everyone_sees_who_records(
    tmp_path: Path,
) -> None:
    procs = Processes()
    glasses: list[Glass] = []
    out = tmp_path / "recorder.webm"
    own_dir = tmp_path / "alice-recordings"
    carol_report = tmp_path / "carol.json"
    try:
        with sync_playwright() as pw:
            relay = procs.relay()
            env = {**os.environ, "CLAVE_RECORDINGS_DIR": str(own_dir)}
            alice_proc = procs.start(
                "alice", "meet", "--relay", relay, "--name", "Alice", "--no-browser", env=env
            )
            alice_engine = engine_from(alice_proc, hosting=True)
            invitation = alice_engine.invitation
            assert invitation is not None
            alice = launch_glass(pw, "alice", tmp_path)
            glasses.append(alice)
            join_meeting(alice, alice_engine.url, "Alice")
            wait_in_meeting(alice)
            page = alice.page
            expect(page.locator("#toggle-record")).to_be_visible()  # a host's control

            carol = procs.start(
                "carol", "join", "--headless", "--name", "Carol", "--duration", "300",
                "--report", str(carol_report), stdin=invitation + "\n",
            )  # fmt: skip
            admit(alice, "Carol", timeout=25)
            wait_for(lambda: "Carol" in leaves_of(alice), 15, "Alice's page knows Carol")
            carol_leaf = leaves_of(alice)["Carol"]
            wait_for(
                lambda: decoded_from(alice, carol_leaf) >= MIN_VIDEO, 45, "Alice decoding Carol"
            )

            # The recorder knocks like anyone and is admitted from Alice's lobby.
            recorder = procs.start("recorder", "record", "--out", str(out), stdin=invitation + "\n")
            admit(alice, "Recorder", timeout=25)
            assert recorder.wait_line(RECORDING, timeout=25).group(1) == str(out)
            wait_for(lambda: banner(alice) == "\u25cf Recording by Recorder", 15,
                     "Alice's page showing the recording notice")  # fmt: skip
            if not page.locator("#participants").is_visible():
                page.locator("#toggle-people").click()
            row = page.locator("#participants li", has_text="Recorder")
            expect(row.locator(".tag-rec")).to_have_text("\u25cf Recording")
            row.scroll_into_view_if_needed()
            expect(page.locator(".tile", has_text="Recorder")).to_contain_text("\u25cf Recording")
            shots = screenshot(page, "recording-notice-alice")

            # Alice records from her page: her engine writes the file.
            page.locator("#toggle-record").click()
            expect(page.locator("#toggle-record")).to_have_attribute("aria-pressed", "true")
            started = page.locator("#toasts .toast", has_text="everyone sees that you record")
            expect(started).to_contain_text(str(own_dir))  # where the file goes, shown
            wait_for(lambda: banner(alice) == "\u25cf Recording by you and Recorder", 15,
                     "Alice's page naming her own recording too")  # fmt: skip
            start = decoded_from(alice, carol_leaf)
            wait_for(lambda: decoded_from(alice, carol_leaf) >= start + MIN_VIDEO, 45,
                     "media flowing while both record")  # fmt: skip
            shots += screenshot(page, "recording-host-alice")
            page.locator("#toggle-record").click()
            expect(page.locator("#toggle-record")).to_have_attribute("aria-pressed", "false")
            toast = page.locator("#toasts .toast", has_text="Recording saved to").last
            expect(toast).to_be_visible(timeout=15_000)  # the path is shown to the user
            own_file = Path(page.locator("#toggle-record").get_attribute("data-path") or "")
            assert f"Recording saved to {own_file}" in (toast.text_content() or "")
            assert own_file.parent == own_dir and own_file.exists()
            wait_for(lambda: banner(alice) == "\u25cf Recording by Recorder", 15,
                     "Alice's own notice gone once she stopped")  # fmt: skip

            # Alice shares her screen: the recorder shows the share (it comes first).
            page.locator("#toggle-screen").click()
            recorder.wait_line(re.compile(r"^showing Alice's screen$"), timeout=45)
            sent = sent_screen(alice)
            wait_for(lambda: sent_screen(alice) >= sent + 15, 30, "Alice's share going on")

            # Ctrl-C ends the recorder: its file is finished, it leaves, the notice goes.
            recorder.popen.send_signal(signal.SIGINT)
            stopped = recorder.wait_line(STOPPED, timeout=30)
            pictures = dict(
                (what, int(n))
                for what, n in re.findall(r"([^,]+?) (\d+)(?:, |$)",
                                          recorder.wait_line(PICTURES, 10).group(1))
            )  # fmt: skip
            assert recorder.popen.wait(30) == 0, recorder.output
            wait_for(lambda: banner(alice) == "", 20, "the notice gone with the recorder")
            carol.stop(15)
            report = json.loads(carol_report.read_text())
    finally:
        for glass in glasses:
            glass.close()
        procs.stop_all()

    # Carol's engine was told, authenticated, of both recordings.
    assert report["recorders"] == ["Recorder", "Alice"], report["recorders"]
    assert not report["alerts"]
    recorded = play(out)
    assert recorded.kinds == ["audio", "video"]
    # what the recorder said it wrote: Carol's camera, then Alice's share
    assert pictures.get("Alice's screen", 0) > 0 and pictures.get("Carol's camera", 0) > 0
    assert sum(pictures.values()) == recorded.video, pictures
    assert recorded.video == int(stopped.group(2)) > 0
    assert recorded.audio > 0 and recorded.duration > 0
    hosted = play(own_file)
    assert hosted.kinds == ["audio", "video"]
    assert hosted.video > 0 and hosted.audio > 0 and hosted.duration > 0
    assert all(p.exists() for p in shots)
    print("screenshots:", [p.name for p in shots])
    for what, played in (("recorder", recorded), ("host", hosted)):
        print(f"{what}: {played.video} pictures, {played.audio} audio frames, "
              f"{played.duration:.2f} s")  # fmt: skip
    print("pictures:", pictures)
