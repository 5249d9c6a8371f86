"""Device choices in real Chromium with two fake cameras, microphones and speakers
(``--use-fake-device-for-media-stream=device-count=2``).

Alice chooses the second camera, microphone and speaker on the pre-join screen and
turns her microphone off; after a reload, and again with a new engine serving the same
address (next time), those choices are preselected and in use (localStorage: device ids
and switches). In the meeting with Bob she switches camera, microphone and speaker from
the device menu: each time the new device's track is the one her media worker encodes
(or the one her audio plays on) and the call goes on, counted in frames Bob's browser
decodes of hers and hers of his after the switch, never in seconds.

Then the next meeting on a new address: the engine keeps the choices (devices by
label, name, language, layout) and a page that never saw them opens with them.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    CHROMIUM_ARGS,
    Glass,
    Processes,
    admit,
    join_meeting,
    launch_glass,
    leaves_of,
    open_glass,
    screenshot,
    wait_for,
    wait_in_meeting,
)
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = [pytest.mark.slow]

TWO_OF_EACH = [
    "--use-fake-device-for-media-stream=device-count=2,fps=30" if a.startswith(
        "--use-fake-device-for-media-stream") else a
    for a in CHROMIUM_ARGS
]  # fmt: skip
MIN_VIDEO = 60
MIN_AUDIO = 100
TIMEOUT = 45.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _devices(page: Page) -> dict[str, list[str]]:
    """Device ids by kind, as this page's origin sees them (the 'default' aliases out)."""
    result: dict[str, list[str]] = page.evaluate(
        """async () => {
          const out = {videoinput: [], audioinput: [], audiooutput: []};
          for (const d of await navigator.mediaDevices.enumerateDevices()) {
            if (d.deviceId !== 'default' && d.kind in out) out[d.kind].push(d.deviceId);
          }
          return out; }"""
    )
    return result


def _in_use(glass: Glass) -> dict[str, Any]:
    """The devices the page uses: the tracks its media worker encodes, its speaker."""
    result: dict[str, Any] = glass.page.evaluate("() => ({...window.claveStats.devices})")
    return result


def _remembered(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "() => JSON.parse(localStorage.getItem('clave.devices') || '{}')"
    )
    return result


def _prejoin_ready(page: Page) -> None:
    page.wait_for_function(
        "() => document.querySelectorAll('#camera-select option').length === 2"
        " && window.claveStats.devices.camera && window.claveStats.phase === 'prejoin'"
    )


def _shows_choices(glass: Glass, camera: str, mic: str, speaker: str) -> None:
    """The pre-join pickers preselect the remembered devices, which are in use; the
    microphone switch is off."""
    page = glass.page
    _prejoin_ready(page)
    expect(page.locator("#camera-select")).to_have_value(camera)
    expect(page.locator("#mic-select")).to_have_value(mic)
    expect(page.locator("#speaker-select")).to_have_value(speaker)
    expect(page.locator("#pre-mic")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#pre-cam")).to_have_attribute("aria-pressed", "true")
    wait_for(
        lambda: _in_use(glass)["camera"] == camera and _in_use(glass)["mic"] == mic,
        15, lambda: f"the remembered devices in use: {_in_use(glass)}",
    )  # fmt: skip


def _more(glass: Glass, key: str, n: int, what: str, stats: str = "decoded") -> None:
    """Wait until ``glass`` counted ``n`` more of ``claveStats[stats][key]`` from now."""

    def count() -> int:
        value: int = glass.page.evaluate(
            "([s, k]) => (window.claveStats[s] || {})[k] || 0", [stats, key]
        )
        return value

    start = count()
    wait_for(lambda: count() - start >= n, TIMEOUT, lambda: f"{what}: {count() - start} of {n}")


def test_devices_switch_during_the_call_and_are_remembered(tmp_path: Path) -> None:
    procs = Processes()
    glasses: list[Glass] = []
    try:
        with sync_playwright() as pw:
            relay = procs.relay()
            port = _free_port()
            first = procs.engine(
                "alice", "meet", "--relay", relay, "--name", "Alice", "--port", str(port)
            )
            alice = launch_glass(pw, "alice", tmp_path, args=TWO_OF_EACH)
            glasses.append(alice)
            page = alice.page
            open_glass(page, first.url)
            _prejoin_ready(page)
            ids = _devices(page)
            assert len(ids["videoinput"]) == 2 and len(ids["audioinput"]) == 2, ids
            assert len(ids["audiooutput"]) == 2, ids
            cam0, cam1 = ids["videoinput"]
            mic1, mic2 = ids["audioinput"]
            out1, out2 = ids["audiooutput"]
            assert _in_use(alice)["camera"] == cam0

            # Pre-join: the second of each, microphone off.
            page.locator("#camera-select").select_option(cam1)
            page.locator("#mic-select").select_option(mic2)
            expect(page.locator("#speaker-field")).to_be_visible()
            page.locator("#speaker-select").select_option(out2)
            page.locator("#pre-mic").click()
            wait_for(
                lambda: _in_use(alice)["camera"] == cam1 and _in_use(alice)["mic"] == mic2,
                15, lambda: f"the chosen devices in use: {_in_use(alice)}",
            )  # fmt: skip
            assert _remembered(page) == {
                "camera": cam1, "mic": mic2, "speaker": out2, "micOn": False, "camOn": True,
            }  # fmt: skip

            # A reload preselects them (the engine does not keep device ids: this page does).
            page.reload()
            _shows_choices(alice, cam1, mic2, out2)
            screenshot(page, "devices-prejoin-remembered")

            # Next time: a new engine at the same address knows nothing of this browser's
            # choices; the page still does.
            first.proc.stop()
            second = procs.engine(
                "alice2", "meet", "--relay", relay, "--name", "Alice", "--port", str(port)
            )
            assert second.port == port
            open_glass(page, second.url)
            _shows_choices(alice, cam1, mic2, out2)
            invitation = second.invitation
            assert invitation is not None

            # Join; the microphone goes on in the meeting (not a pre-join choice).
            page.locator("#name").fill("Alice")
            page.locator("#join").click()
            wait_in_meeting(alice)
            page.locator("#toggle-mic").click()
            expect(page.locator("#toggle-mic")).to_have_attribute("aria-pressed", "true")
            assert _remembered(page)["micOn"] is False
            wait_for(
                lambda: _in_use(alice)["speaker"] == out2,
                15,
                lambda: f"the chosen speaker in use: {_in_use(alice)}",
            )

            bob_engine = procs.engine("bob", "join", "--name", "Bob", invitation=invitation)
            bob = launch_glass(pw, "bob", tmp_path)
            glasses.append(bob)
            join_meeting(bob, bob_engine.url, "Bob")
            admit(alice, "Bob")
            wait_in_meeting(bob)
            a = leaves_of(bob)["Alice"]
            b = leaves_of(alice)["Bob"]
            _more(bob, f"{a}:video", MIN_VIDEO, "Bob decoding Alice's video")
            # Chromium's second fake camera gives 16-bit grey frames, which no encoder
            # takes: the glass draws them into a canvas first.
            assert alice.stats()["encoder"]["video"]["converted"] >= MIN_VIDEO
            _more(bob, f"{a}:audio", MIN_AUDIO, "Bob decoding Alice's audio")

            # The device menu: keyboard reachable, the devices in use selected.
            page.locator("#toggle-devices").focus()
            page.keyboard.press("Enter")
            expect(page.locator("#device-menu")).to_be_visible()
            expect(page.locator("#toggle-devices")).to_have_attribute("aria-expanded", "true")
            expect(page.locator("#menu-camera")).to_be_focused()
            expect(page.locator("#menu-camera")).to_have_value(cam1)
            expect(page.locator("#menu-mic")).to_have_value(mic2)
            expect(page.locator("#menu-speaker")).to_have_value(out2)
            screenshot(page, "devices-menu")

            # Camera: the new track feeds the encoder; Bob keeps decoding Alice's video.
            page.locator("#menu-camera").select_option(cam0)
            wait_for(
                lambda: _in_use(alice)["camera"] == cam0,
                15,
                lambda: f"the first camera encoded: {_in_use(alice)}",
            )
            _more(alice, "video", MIN_VIDEO, "Alice sending video", stats="sent")
            _more(bob, f"{a}:video", MIN_VIDEO, "Bob decoding Alice's new camera")
            assert _in_use(alice)["camera"] == cam0

            # Microphone: the same for audio.
            page.locator("#menu-mic").select_option(mic1)
            wait_for(
                lambda: _in_use(alice)["mic"] == mic1,
                15,
                lambda: f"the first microphone encoded: {_in_use(alice)}",
            )
            _more(bob, f"{a}:audio", MIN_AUDIO, "Bob decoding Alice's new microphone")
            assert _in_use(alice)["mic"] == mic1

            # Speaker: her audio plays on the first output; Bob's audio still decodes.
            page.locator("#menu-speaker").select_option(out1)
            wait_for(
                lambda: _in_use(alice)["speaker"] == out1,
                15,
                lambda: f"the first speaker in use: {_in_use(alice)}",
            )
            _more(alice, f"{b}:audio", MIN_AUDIO, "Alice decoding Bob's audio")

            # Escape closes the menu, back on its button; the choices are remembered.
            page.keyboard.press("Escape")
            expect(page.locator("#device-menu")).to_be_hidden()
            expect(page.locator("#toggle-devices")).to_be_focused()
            assert _remembered(page) == {
                "camera": cam0, "mic": mic1, "speaker": out1, "micOn": False, "camOn": True,
            }  # fmt: skip
            stats = alice.stats()
            assert stats["phase"] == "in_meeting" and stats["errors"] == [], stats["errors"]
            assert stats["frameFailures"] == [] and bob.stats()["frameFailures"] == []
    finally:
        for glass in glasses:
            glass.close()
        procs.stop_all()


def _labels(page: Page) -> dict[str, str]:
    """Device labels by id, as this page's origin sees them."""
    result: dict[str, str] = page.evaluate(
        """async () => Object.fromEntries((await navigator.mediaDevices.enumerateDevices())
             .filter((d) => d.deviceId !== 'default').map((d) => [d.deviceId, d.label]))"""
    )
    return result


def _id_of(page: Page, label: str) -> str:
    ids = [i for i, lab in _labels(page).items() if lab == label]
    assert len(ids) == 1, (label, _labels(page))
    return ids[0]


def _kept(config: Path) -> dict[str, Any]:
    path = config / "glass.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_choices_are_kept_by_the_engine_for_the_next_meeting_on_a_new_address(
    tmp_path: Path,
) -> None:
    """Each meeting's page has a new address (a new port), and a browser keeps its
    storage per address: the engine keeps the choices instead. Alice picks German, the
    second camera, microphone and speaker, her microphone off, types her name and
    switches to speaker view; her next meeting, on another port and in a browser
    profile that never saw any of it, opens with all of it."""
    procs = Processes()
    glasses: list[Glass] = []
    config = tmp_path / "alice-config"
    config.mkdir(mode=0o700)
    try:
        with sync_playwright() as pw:
            relay = procs.relay()
            first = procs.engine("alice", "meet", "--relay", relay, config_dir=str(config))
            alice = launch_glass(pw, "alice", tmp_path, args=TWO_OF_EACH)
            glasses.append(alice)
            page = alice.page
            open_glass(page, first.url)
            _prejoin_ready(page)
            page.locator("#lang-select").select_option("de")  # the page reloads in German
            page.wait_for_function("() => document.documentElement.lang === 'de'")
            _prejoin_ready(page)
            ids = _devices(page)
            cam1, mic2, out2 = ids["videoinput"][1], ids["audioinput"][1], ids["audiooutput"][1]
            labels = _labels(page)
            page.locator("#camera-select").select_option(cam1)
            page.locator("#mic-select").select_option(mic2)
            page.locator("#speaker-select").select_option(out2)
            page.locator("#pre-mic").click()
            page.locator("#name").fill("Ada Lovelace")
            page.locator("#join").click()
            wait_in_meeting(alice)
            page.locator("#toggle-view").click()
            expect(page.locator("#toggle-view")).to_have_attribute("aria-pressed", "true")
            wanted = {
                "name": "Ada Lovelace", "camera": labels[cam1], "mic": labels[mic2],
                "speaker": labels[out2], "mic_on": False, "cam_on": True, "lang": "de",
                "view": "speaker",
            }  # fmt: skip
            wait_for(lambda: _kept(config) == wanted, 15,
                     lambda: f"the engine keeping the choices: {_kept(config)}")  # fmt: skip
            assert (config / "glass.json").stat().st_mode & 0o777 == 0o600
            page.locator("#leave").click()
            first.proc.stop()

            # The next meeting: a new engine on another port, a browser profile of its own.
            second = procs.engine("alice2", "meet", "--relay", relay, config_dir=str(config))
            assert second.port != first.port
            fresh = launch_glass(pw, "alice-next", tmp_path, args=TWO_OF_EACH)
            glasses.append(fresh)
            page = fresh.page
            open_glass(page, second.url)
            page.wait_for_function("() => document.documentElement.lang === 'de'")
            _prejoin_ready(page)
            camera, mic, speaker = (_id_of(page, wanted[k]) for k in ("camera", "mic", "speaker"))
            assert camera != cam1  # ids differ between addresses (and profiles); labels do not
            _shows_choices(fresh, camera, mic, speaker)
            expect(page.locator("#name")).to_have_value("Ada Lovelace")
            screenshot(page, "remembered-next-meeting")
            page.locator("#join").click()
            wait_in_meeting(fresh)
            expect(page.locator("#toggle-view")).to_have_attribute("aria-pressed", "true")
            wait_for(lambda: _in_use(fresh)["speaker"] == speaker, 15,
                     lambda: f"the kept speaker in use: {_in_use(fresh)}")  # fmt: skip
            assert _kept(config) == wanted  # nothing chosen anew: nothing changed
            stats = fresh.stats()
            assert stats["errors"] == [], stats["errors"]
    finally:
        for glass in glasses:
            glass.close()
        procs.stop_all()
