"""Three browsers and six headless participants in one meeting (issue 13): each browser
receives only the simulcast layers its engine subscribed to, counted in frames decoded
per sender and layer by the glass (``window.claveStats.decodedLayers``).

Alice, Bob and Carol are real headless Chromium pages with fake cameras (two layers
each on this 2-core machine); their microphones are muted from the page. H1 and H2 are
headless Python participants sending three layers and speaking (an Opus tone); H3-H6
send no video and stay silent (Opus DTX: they send no audio at all). Each browser's
engine puts the four cameras on its stage (nine at most), the last speaker one layer
up: four tiles get layer 1, the focus layer 2. The relay forwards each sender's
highest layer at or below that wish, so over a stretch in which the stage did not
change, every browser decodes exactly one layer of each sender, and none of them
fails to decrypt or authenticate a frame. (While six participants join in quick
succession on two cores, a frame of an epoch that expired can still arrive late and be
refused: those are listed in the artifact, and the health check starts once everyone
is in.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    ARTIFACTS,
    Glass,
    Processes,
    admit,
    join_meeting,
    launch_glass,
    leaves_of,
    screenshot,
    wait_for,
    wait_in_meeting,
)
from playwright.sync_api import sync_playwright

pytestmark = [pytest.mark.slow]

MIN_FRAMES = 15
"""Frames of each stage member's expected layer a browser must decode in the stretch."""
HEADLESS = {f"H{i}": i <= 2 for i in range(1, 7)}
"""Headless participants: name -> sends video (three layers) and speaks."""
ATTEMPTS = 6


def _stage(glass: Glass) -> dict[str, Any]:
    stage: dict[str, Any] = glass.stats().get("stage") or {}
    return stage


def _decoded(glass: Glass) -> dict[str, int]:
    layers: dict[str, int] = glass.stats().get("decodedLayers", {})
    return dict(layers)


def _expected(stage: dict[str, Any], sent: dict[int, set[int]]) -> dict[int, int]:
    """Leaf -> the layer the relay forwards: the highest sent at or below the wish."""
    out = {}
    for key, wish in stage["layers"].items():
        leaf = int(key)
        below = [layer for layer in sent[leaf] if layer <= wish]
        out[leaf] = max(below) if below else min(sent[leaf])
    return out


def _stretch(glass: Glass, sent: dict[int, set[int]]) -> dict[str, Any] | None:
    """One stretch with a steady stage: decoded frames per (leaf, layer) gained while
    every stage member's expected layer gained MIN_FRAMES; None if the stage moved at
    any poll in between (a congestion cap that came and went leaves it as it was)."""
    stage = _stage(glass)
    expected = _expected(stage, sent)
    before = _decoded(glass)

    moved = False

    def gained(leaf: int, layer: int) -> int:
        nonlocal moved
        moved = moved or _stage(glass) != stage  # looked at on every poll of the waits
        key = f"{leaf}:video:{layer}"
        return _decoded(glass).get(key, 0) - before.get(key, 0)

    # A layer that just changed switches at the new layer's next keyframe: until then
    # the old one keeps coming (by design). Count from when every expected layer flows.
    wait_for(
        lambda: all(gained(leaf, layer) >= 1 for leaf, layer in expected.items()),
        90,
        lambda: f"{glass.name}: waiting for {expected} to flow",
    )
    before = _decoded(glass)
    wait_for(
        lambda: all(gained(leaf, layer) >= MIN_FRAMES for leaf, layer in expected.items()),
        90,
        lambda: (
            f"{glass.name}: {expected} gained {[gained(lf, ly) for lf, ly in expected.items()]}"
        ),
    )
    after = _decoded(glass)
    if moved or _stage(glass) != stage:
        return None  # e.g. the relay capped our layers for a while (congestion)
    gains = {
        key: after.get(key, 0) - before.get(key, 0)
        for key in after
        if after.get(key, 0) != before.get(key, 0)
    }
    return {"stage": stage, "expected": expected, "gains": gains}


def test_each_browser_receives_only_its_subscribed_layers(tmp_path: Path) -> None:
    procs = Processes()
    glasses: list[Glass] = []
    results: dict[str, Any] = {}
    settled: dict[str, int] = {}
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
            for name, talks in HEADLESS.items():
                extra = ("--simulcast", "3") if talks else ("--no-video", "--silent")
                procs.start(name.lower(), "join", "--headless", "--name", name,
                            "--duration", "300", *extra, stdin=invitation + "\n")  # fmt: skip
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
                settled[glass.name] = len(glass.stats()["frameFailures"])
            for glass, name in zip(glasses, ("Alice", "Bob", "Carol"), strict=True):
                for _ in range(ATTEMPTS):
                    result = _stretch(glass, sent)
                    if result is not None:
                        break
                assert result is not None, f"{name}'s stage never held still"
                results[name] = result
                expected = result["expected"]
                stage = result["stage"]
                assert sorted(stage["layers"].values()) == [1, 1, 1, 2], stage
                assert stage["active"] in (leaf["H1"], leaf["H2"]), stage
                for key, gain in result["gains"].items():
                    sender, kind, layer = key.split(":")
                    if kind != "video":
                        continue
                    # every frame decoded in the stretch is of the one expected layer
                    assert expected.get(int(sender)) == int(layer), (name, key, gain, expected)
                for silent in ("H3", "H4", "H5", "H6"):
                    assert glass.decoded().get(f"{leaf[silent]}:audio", 0) == 0
            screenshot(alice.page, "large-meeting-grid")
            final = {g.name: g.stats() for g in glasses}
    finally:
        for glass in glasses:
            glass.close()
        procs.stop_all()

    results["failures_while_joining"] = {n: s["frameFailures"] for n, s in final.items()}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-large-meeting.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    for name, stats in final.items():
        late = stats["frameFailures"][settled[name] :]
        assert late == [], (name, late)
