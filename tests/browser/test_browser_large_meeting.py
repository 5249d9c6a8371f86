"""Three browsers and six headless participants in one meeting (issue 13): each browser
receives only the simulcast layers its engine subscribed to, counted in frames decoded
per sender and layer by the glass (``window.claveStats.decodedLayers``).

Alice, Bob and Carol are real headless Chromium pages with fake cameras (two layers each
on this 2-core machine); their microphones are muted from the page. H1 and H2 are
headless Python participants sending three layers (10 frames a second); only H1 speaks
(an Opus tone), H2-H6 stay silent (Opus DTX: they send no audio at all) and H3-H6 send
no video. Each browser's engine puts the four cameras on its stage (nine at most), the
speaker one layer up: four tiles get layer 1, the focus (H1) layer 2. The relay forwards
each sender's highest layer at or below that wish, so over a stretch in which the stage
did not change, every browser receives and decodes exactly one layer of each sender, and
none of them fails to decrypt or authenticate a frame once everyone is in. (While six
participants join in quick succession on two cores, a frame of an epoch that expired can
still arrive late and be refused; and on a machine this loaded a manifest can come later
than the 0.5 s a frame waits for it, so that frame is dropped unplayed. Both are listed
in the artifact; late manifests must stay under one per 50 frames decoded.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    ARTIFACTS,
    Glass,
    Processes,
    admit,
    assert_frame_failures,
    join_meeting,
    launch_glass,
    leaves_of,
    screenshot,
    wait_for,
    wait_in_meeting,
)
from playwright.sync_api import sync_playwright

pytestmark = [pytest.mark.slow]

MIN_FRAMES = 10
"""Frames of each stage member's expected layer a browser must decode in the stretch."""
HEADLESS = {
    "H1": ("--simulcast", "3", "--fps", "10"),
    "H2": ("--simulcast", "3", "--fps", "10", "--silent"),
    **{f"H{i}": ("--no-video", "--silent") for i in range(3, 7)},
}
"""Headless participants and how they join: H1 and H2 send three layers (10 frames a
second: light enough beside three browsers on two cores), only H1 speaks (one steady
focus: two voices at once would move the focus back and forth), H3-H6 only listen."""
ATTEMPTS = 6
SETTLE = 2.0
"""Seconds after a stretch before its stage is compared again (engine -> glass)."""


def _frames(glass: Glass) -> int:
    """Frames (audio and video) this browser has decoded so far."""
    return sum(glass.decoded().values())


def _stage(glass: Glass) -> dict[str, Any]:
    stage: dict[str, Any] = glass.stats().get("stage") or {}
    return stage


def _received(glass: Glass) -> dict[str, int]:
    """``leaf:video:layer`` -> frames the glass received (decrypted by its engine)."""
    layers: dict[str, int] = glass.stats().get("receivedLayers", {})
    return dict(layers)


def _decoded(glass: Glass) -> dict[str, int]:
    """``leaf:video:layer`` -> frames the glass's decoders put out."""
    layers: dict[str, int] = glass.stats().get("decodedLayers", {})
    return dict(layers)


def _gains(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


def _expected(stage: dict[str, Any], sent: dict[int, set[int]]) -> dict[int, int]:
    """Leaf -> the layer the relay forwards: the highest sent at or below the wish."""
    out = {}
    for key, wish in stage["layers"].items():
        leaf = int(key)
        below = [layer for layer in sent[leaf] if layer <= wish]
        out[leaf] = max(below) if below else min(sent[leaf])
    return out


def _stretch(glasses: dict[str, Glass], sent: dict[int, set[int]]) -> dict[str, Any]:
    """One stretch, measured in every browser at once: frames received and decoded per
    (leaf, layer) while each stage member's expected layer brought MIN_FRAMES. A browser
    whose stage moved at any poll in between (a congestion cap that came and went) maps
    to None and is measured again.

    Received frames show what the relay forwarded; decoded ones what was played. (On a
    loaded machine a browser that falls behind skips deltas until the next keyframe, so
    it decodes fewer frames than it receives: fewer, never of another layer.)"""
    stages = {name: _stage(g) for name, g in glasses.items()}
    expected = {name: _expected(stages[name], sent) for name in glasses}
    moved = dict.fromkeys(glasses, False)
    before = {name: _received(g) for name, g in glasses.items()}

    def gained(name: str) -> list[int]:
        glass = glasses[name]
        moved[name] = moved[name] or _stage(glass) != stages[name]  # every poll
        now = _received(glass)
        return [
            now.get(f"{leaf}:video:{layer}", 0) - before[name].get(f"{leaf}:video:{layer}", 0)
            for leaf, layer in expected[name].items()
        ]

    # A layer that just changed switches at the new layer's next keyframe: until then
    # the old one keeps coming (by design). Count from when every expected layer flows.
    # A browser whose stage moved is done with this stretch (measured again later).
    wait_for(
        lambda: all(min(gained(n)) >= 1 or moved[n] for n in glasses),
        90,
        lambda: f"layers to flow: { {n: (expected[n], gained(n)) for n in glasses} }",
    )
    before = {name: _received(g) for name, g in glasses.items()}
    decoded_before = {name: _decoded(g) for name, g in glasses.items()}
    wait_for(
        lambda: all(min(gained(n)) >= MIN_FRAMES or moved[n] for n in glasses),
        90,
        lambda: f"{MIN_FRAMES} frames each: { {n: (expected[n], gained(n)) for n in glasses} }",
    )
    ends = {name: (_received(g), _decoded(g)) for name, g in glasses.items()}
    time.sleep(SETTLE)  # a cap that came at the very end reaches the stage meanwhile
    out: dict[str, Any] = {}
    for name, glass in glasses.items():
        received, decoded = ends[name]
        if moved[name] or _stage(glass) != stages[name]:
            out[name] = None  # e.g. the relay capped our layers for a while (congestion)
            continue
        out[name] = {
            "stage": stages[name],
            "expected": expected[name],
            "received": _gains(received, before[name]),
            "decoded": _gains(decoded, decoded_before[name]),
        }
    return out


def test_each_browser_receives_only_its_subscribed_layers(tmp_path: Path) -> None:
    procs = Processes()
    glasses: list[Glass] = []
    results: dict[str, Any] = {}
    settled: dict[str, tuple[int, int]] = {}
    """Per browser, once everyone is in: (frame failures, frames decoded) so far."""
    try:
        with sync_playwright() as pw:
            relay = procs.relay()
            alice_engine = procs.engine("alice", "meet", "--relay", relay, "--name", "Alice")
            invitation = alice_engine.invitation
            assert invitation is not None
            alice = launch_glass(pw, "alice", tmp_path)
            glasses.append(alice)
            join_meeting(alice, alice_engine.url, "Alice")
            wait_in_meeting(alice)
            for name in ("Bob", "Carol"):
                engine = procs.engine(name.lower(), "join", "--name", name, invitation=invitation)
                glass = launch_glass(pw, name.lower(), tmp_path)
                glasses.append(glass)
                join_meeting(glass, engine.url, name)
                admit(alice, name)
                wait_in_meeting(glass)
            for name, extra in HEADLESS.items():  # they stay until the test stops them
                procs.start(name.lower(), "join", "--headless", "--name", name,
                            "--duration", "1800", *extra, stdin=invitation + "\n")  # fmt: skip
                admit(alice, name, timeout=30)
            for glass in glasses:
                glass.page.locator("#toggle-mic").click()  # the headless speakers lead
                wait_for(lambda g=glass: len(leaves_of(g)) == 9, 30, f"{glass.name}: 9 members")
            leaf = leaves_of(alice)
            cameras = {leaf[n] for n in ("Alice", "Bob", "Carol", "H1", "H2")}
            # What each camera sends: the browsers' layers from their encoders, three
            # for the headless senders.
            sent: dict[int, set[int]] = {leaf["H1"]: {0, 1, 2}, leaf["H2"]: {0, 1, 2}}
            for glass, name in zip(glasses, ("Alice", "Bob", "Carol"), strict=True):
                wait_for(lambda g=glass: len(g.stats().get("encoder", {}).get("video", {})
                                             .get("perLayer", {})) >= 2, 30,
                         f"{name} encoding two layers")  # fmt: skip
                per = glass.stats()["encoder"]["video"]["perLayer"]
                sent[leaf[name]] = {int(k) for k in per}

            for glass, name in zip(glasses, ("Alice", "Bob", "Carol"), strict=True):
                others = cameras - {leaf[name]}
                wait_for(lambda g=glass, o=others: set(_stage(g).get("video", [])) == o, 30,
                         lambda g=glass: f"{g.name} stage {_stage(g)}")  # fmt: skip
            for glass in glasses:  # everyone is in and on stage: no frame may fail now
                stats = glass.stats()
                settled[glass.name] = (len(stats["frameFailures"]), _frames(glass))
            pending = dict(zip(("Alice", "Bob", "Carol"), glasses, strict=True))
            for _ in range(ATTEMPTS):
                for name, result in _stretch(pending, sent).items():
                    if result is not None:
                        results[name] = result
                        del pending[name]
                if not pending:
                    break
            assert not pending, f"the stage of {sorted(pending)} never held still"
            for glass, name in zip(glasses, ("Alice", "Bob", "Carol"), strict=True):
                result = results[name]
                expected = result["expected"]
                stage = result["stage"]
                assert sorted(stage["layers"].values()) == [1, 1, 1, 2], stage
                assert stage["active"] == leaf["H1"], stage  # the one who speaks
                for what in ("received", "decoded"):
                    for key, gain in result[what].items():
                        sender, kind, layer = key.split(":")
                        if kind != "video":
                            continue
                        # every frame of the stretch is of the one expected layer
                        assert expected.get(int(sender)) == int(layer), (
                            name, what, key, gain, expected)  # fmt: skip
                # and each expected layer was decoded, not only received
                totals = _decoded(glass)
                for sender, layer in expected.items():
                    assert totals.get(f"{sender}:video:{layer}", 0) > 0, (name, sender, layer)
                for silent in ("H2", "H3", "H4", "H5", "H6"):
                    assert glass.decoded().get(f"{leaf[silent]}:audio", 0) == 0
            screenshot(alice.page, "large-meeting-grid")
            final = {g.name: g.stats() for g in glasses}
            frames = {g.name: _frames(g) - settled[g.name][1] for g in glasses}
    finally:
        for glass in glasses:
            glass.close()
        procs.stop_all()

    results["frame_failures"] = {n: s["frameFailures"] for n, s in final.items()}
    results["failures_before_all_in"] = {n: settled[n][0] for n in final}
    results["frames_decoded_since_all_in"] = frames
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-large-meeting.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    for name, stats in final.items():
        failures = stats["frameFailures"][settled[name][0] :]
        # Nothing may fail to decrypt or match its manifest. A frame whose manifest came
        # later than the hold timeout (0.5 s) is dropped, never played: on two cores
        # running three browsers and six engines that happens now and then, and must stay
        # rare next to the frames played.
        assert_frame_failures(name, failures, frames[name])
