"""Simulcast between two real browsers: Alice's camera is encoded in two or more layers,
Bob's engine subscribes to one layer of it, and Bob's browser decodes that layer only.

Each browser runs with a fake camera (360p on this 2-core machine: layers 0, 180 lines,
and 1, 360 lines; see media/video.js). With one other member on his stage, Bob's
engine asks for layer 2 of Alice's video; the relay forwards the highest layer she
sends below it, layer 1, and never layer 0 although she sends it too. Counts are the
glass's decoder outputs per layer (``window.claveStats.decodedLayers``) and Alice's
encoder outputs per layer, never times.
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
    host_and_guest,
    leaves_of,
    wait_for,
)
from playwright.sync_api import sync_playwright

pytestmark = [pytest.mark.slow]

MIN_FRAMES = 60
"""Frames Bob's browser must decode of Alice's subscribed layer."""
MEDIA_TIMEOUT = 45.0


def _per_layer(glass: Glass) -> dict[str, Any]:
    encoder: dict[str, Any] = glass.stats().get("encoder", {}).get("video", {})
    per_layer: dict[str, Any] = encoder.get("perLayer", {})
    return per_layer


def _decoded_layer(glass: Glass, key: str) -> int:
    n: int = glass.stats().get("decodedLayers", {}).get(key, 0)
    return n


def test_a_browser_receives_only_the_layer_its_engine_subscribed_to(tmp_path: Path) -> None:
    procs = Processes()
    glasses: list[Glass] = []
    try:
        with sync_playwright() as pw:
            _, alice, bob = host_and_guest(pw, procs, tmp_path, glasses)
            leaf = leaves_of(bob)
            alice_leaf = leaf["Alice"]

            # Bob's engine put Alice on his stage and asked for her top layer.
            wait_for(
                lambda: (bob.stats().get("stage") or {}).get("video") == [alice_leaf],
                20,
                "Bob's stage showing Alice",
            )
            assert bob.stats()["stage"]["layers"] == {str(alice_leaf): 2}

            # Alice encodes two layers or more; Bob decodes layer 1 of hers, never layer 0.
            top = f"{alice_leaf}:video:1"
            wait_for(
                lambda: _decoded_layer(bob, top) >= MIN_FRAMES,
                MEDIA_TIMEOUT,
                lambda: f"Bob decoding {top}: {bob.stats().get('decodedLayers')}",
            )
            layers = _per_layer(alice)
            assert {"0", "1"} <= set(layers), layers
            assert all(layers[k]["encoded"] >= MIN_FRAMES for k in ("0", "1")), layers
            decoded = bob.stats()["decodedLayers"]
            assert decoded.get(f"{alice_leaf}:video:0", 0) == 0, decoded
            final = {g.name: g.stats() for g in glasses}
    finally:
        for glass in glasses:
            glass.close()
        procs.stop_all()

    for name, stats in final.items():
        assert stats["frameFailures"] == [], (name, stats["frameFailures"])
    summary = {
        "alice_layers": final["alice"]["encoder"]["video"].get("perLayer"),
        "bob_decoded_layers": final["bob"]["decodedLayers"],
        "bob_stage": final["bob"]["stage"],
        "dtx": {n: s.get("dtx") for n, s in final.items()},
        "audio_encoder": {n: s["encoder"].get("audio") for n, s in final.items()},
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-layers.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
