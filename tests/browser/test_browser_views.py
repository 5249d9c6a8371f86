"""Speaker view, pins and the screen-share layout in real Chromium.

Alice (browser, host) and Bob (browser) meet Carol, a headless Python participant who
sends her camera in three simulcast layers and an Opus tone (she speaks). Bob's
browser sends two layers (360p on this 2-core machine: layers 0 and 1).

On Alice's page: speaker view shows one tile large (the engine's focus, then whoever
she pins) with the others in a filmstrip, and her engine's subscription follows: the
large tile's member at the top layer, the filmstrip at layer 0, counted in frames her
browser decodes per layer (``window.claveStats.decodedLayers``), never in seconds.
Then Alice shares her screen: the share's tile takes the share's shape (no black bars),
and her "you are presenting" toast stays clear of her chat panel, also on a narrow
window where the panel covers part of the stage.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    Glass,
    Processes,
    admit,
    host_and_guest,
    leaves_of,
    screenshot,
    wait_for,
)
from playwright.sync_api import Page, sync_playwright

pytestmark = [pytest.mark.slow]

MIN_FRAMES = 30
"""Frames of each expected layer Alice's browser must decode after a change."""
TIMEOUT = 45.0
JOINED = re.compile(r"^joined as Carol; security code (.+)$")


def _layers(glass: Glass) -> dict[str, int]:
    result: dict[str, int] = glass.page.evaluate("() => ({...window.claveStats.decodedLayers})")
    return result


def _view(glass: Glass) -> dict[str, Any]:
    """The layout, the tile shown large and the engine's last ``stage``, read at once."""
    result: dict[str, Any] = glass.page.evaluate(
        """() => ({
          view: window.claveStats.view,
          stage: window.claveStats.stage,
          grid: [...document.querySelectorAll('#grid > .tile')].map((t) => t.dataset.tile),
          strip: [...document.querySelectorAll('#strip > .tile')].map((t) => t.dataset.tile),
        })"""
    )
    return result


def _decodes(glass: Glass, want: dict[str, int], forbidden: tuple[str, ...]) -> None:
    """Wait until ``glass`` decoded ``want[key]`` more frames of each key from now; then,
    over another ``want`` of them, none of the ``forbidden`` keys (the old layers)."""
    for check_forbidden in (False, True):
        start = _layers(glass)

        def more(start: dict[str, int] = start) -> bool:
            now = _layers(glass)
            return all(now.get(k, 0) - start.get(k, 0) >= n for k, n in want.items())

        wait_for(more, TIMEOUT, lambda: f"{glass.name} decoding {want}: {_layers(glass)}")
        if check_forbidden:
            now = _layers(glass)
            extra = {k: now.get(k, 0) - start.get(k, 0) for k in forbidden}
            assert not any(extra.values()), (extra, now)


def _rect(page: Page, selector: str) -> dict[str, float]:
    rect: dict[str, float] = page.evaluate(
        """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
          return {left: r.left, top: r.top, right: r.right, bottom: r.bottom,
                  width: r.width, height: r.height}; }""",
        selector,
    )
    return rect


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (a["right"] <= b["left"] or b["right"] <= a["left"]
                or a["bottom"] <= b["top"] or b["bottom"] <= a["top"])  # fmt: skip


def _toasts_clear_of_chat(page: Page) -> list[dict[str, float]]:
    """The rectangles of the toasts on screen, each checked against the side panel's."""
    side = _rect(page, "#side")
    toasts: list[dict[str, float]] = page.evaluate(
        """() => [...document.querySelectorAll('#toasts .toast')].map((el) => {
          const r = el.getBoundingClientRect();
          return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; })"""
    )
    assert toasts, "no toast on screen"
    for toast in toasts:
        assert not _overlap(toast, side), (toast, side)
    return toasts


def _share_shape(page: Page, tile: str) -> dict[str, float]:
    """The large share tile's size and its frames' size (our own share: the video's)."""
    result: dict[str, float] = page.evaluate(
        """(id) => { const el = document.querySelector(`#grid > .tile[data-tile="${id}"]`);
          if (!el) return null;
          const r = el.getBoundingClientRect();
          const media = el.querySelector('video, canvas');
          const grid = document.querySelector('#grid').getBoundingClientRect();
          const w = media.videoWidth || media.width, h = media.videoHeight || media.height;
          return {w: r.width, h: r.height, frameW: w, frameH: h,
                  gridW: grid.width, gridH: grid.height}; }""",
        tile,
    )
    return result


def _fills_without_bars(shape: dict[str, float] | None) -> bool:
    """The tile has its frames' aspect ratio (within 2 %) and fills the grid's width or
    height (within 2 px)."""
    if not shape or not shape["frameW"] or not shape["frameH"] or not shape["h"]:
        return False
    same_shape = abs(shape["w"] / shape["h"] - shape["frameW"] / shape["frameH"]) < 0.02 * (
        shape["frameW"] / shape["frameH"]
    )
    fills = shape["gridW"] - shape["w"] <= 2 or shape["gridH"] - shape["h"] <= 2
    return same_shape and fills


def test_speaker_view_pins_and_the_screen_share_layout(tmp_path: Path) -> None:
    procs = Processes()
    glasses: list[Glass] = []
    try:
        with sync_playwright() as pw:
            alice_engine, alice, bob = host_and_guest(pw, procs, tmp_path, glasses)
            invitation = alice_engine.invitation
            assert invitation is not None
            carol = procs.start(
                "carol", "join", "--headless", "--name", "Carol", "--simulcast", "3",
                "--duration", "300", stdin=invitation + "\n",
            )  # fmt: skip
            admit(alice, "Carol", timeout=25)
            carol.wait_line(JOINED, timeout=20)
            wait_for(lambda: len(leaves_of(alice)) == 3, 20, "Alice knowing 3 members")
            leaf = leaves_of(alice)
            b, c = leaf["Bob"], leaf["Carol"]
            page = alice.page

            # Grid view: both on stage in the grid, nobody large.
            wait_for(
                lambda: sorted((_view(alice)["stage"] or {}).get("video", [])) == sorted([b, c]),
                20, "Alice's stage showing Bob and Carol",
            )  # fmt: skip
            assert _view(alice)["view"]["large"] is None
            assert page.locator("#toggle-view").get_attribute("aria-pressed") == "false"

            # Speaker view: the engine's focus is large, the others in the filmstrip;
            # the focus is received at the top layer, the filmstrip at layer 0.
            page.locator("#toggle-view").click()
            page.wait_for_function("() => window.claveStats.view.mode === 'speaker'")
            assert page.locator("#toggle-view").get_attribute("aria-pressed") == "true"

            def focus_large() -> dict[str, Any] | None:
                v = _view(alice)
                stage = v["stage"] or {}
                active = stage.get("active")
                layers = stage.get("layers", {})
                if active is None or v["view"]["large"] != f"p:{active}":
                    return None
                if layers.get(str(active)) != 2 or any(
                    n != 0 for k, n in layers.items() if k != str(active)
                ):
                    return None
                return v

            seen = wait_for(focus_large, 20, lambda: f"the focus large: {_view(alice)}")
            assert seen["grid"] == [seen["view"]["large"]]
            assert "p:self" in seen["strip"]

            # Alice pins Bob: he is large, received at his top layer (1), Carol at 0.
            page.locator(f'.tile[data-tile="p:{b}"] .tile-pin').click()
            wait_for(
                lambda: _view(alice)["view"]["large"] == f"p:{b}"
                and (_view(alice)["stage"] or {}).get("layers") == {str(b): 2, str(c): 0},
                20, lambda: f"Bob pinned and large: {_view(alice)}",
            )  # fmt: skip
            v = _view(alice)
            assert v["grid"] == [f"p:{b}"] and f"p:{c}" in v["strip"], v
            _decodes(alice, {f"{b}:video:1": MIN_FRAMES, f"{c}:video:0": MIN_FRAMES},
                     forbidden=(f"{b}:video:0", f"{c}:video:1", f"{c}:video:2"))  # fmt: skip

            # Alice pins Carol: the latest pin is large; Carol at layer 2, Bob at 0.
            page.locator(f'.tile[data-tile="p:{c}"] .tile-pin').click()
            wait_for(
                lambda: _view(alice)["view"]["large"] == f"p:{c}"
                and (_view(alice)["stage"] or {}).get("layers") == {str(c): 2, str(b): 0},
                20, lambda: f"Carol pinned and large: {_view(alice)}",
            )  # fmt: skip
            _decodes(alice, {f"{c}:video:2": MIN_FRAMES, f"{b}:video:0": MIN_FRAMES},
                     forbidden=(f"{c}:video:0", f"{c}:video:1", f"{b}:video:1"))  # fmt: skip
            screenshot(page, "views-speaker-pinned")

            # Unpin both, back to the grid: nobody large, nobody at layer 0 (two tiles).
            for who in (c, b):
                page.locator(f'.tile[data-tile="p:{who}"] .tile-pin').click()
            page.locator("#toggle-view").click()
            wait_for(
                lambda: _view(alice)["view"] == {"mode": "grid", "large": None}
                and not (_view(alice)["stage"] or {}).get("pinned")
                and 0 not in (_view(alice)["stage"] or {}).get("layers", {0: 0}).values(),
                20, lambda: f"the grid again: {_view(alice)}",
            )  # fmt: skip
            assert sorted(_view(alice)["grid"]) == sorted([f"p:{b}", f"p:{c}", "p:self"])
            _decodes(alice, {f"{b}:video:1": MIN_FRAMES}, forbidden=(f"{b}:video:0",))

            # Alice presents with her chat open: the share's tile has the share's shape,
            # and the toast that says she is presenting does not cover the chat.
            if page.locator("#side").is_hidden():
                page.locator("#toggle-chat").click()
            page.locator("#toggle-screen").click()
            page.locator("#toasts .toast", has_text="You are presenting").wait_for()
            _toasts_clear_of_chat(page)
            wait_for(
                lambda: _fills_without_bars(_share_shape(page, "s:self")),
                20,
                lambda: f"Alice's share filling its tile: {_share_shape(page, 's:self')}",
            )
            screenshot(page, "views-presenting-toast")

            # Bob sees the share large, in its own shape, the filmstrip where it leaves
            # the share the most room.
            share = f"s:{leaves_of(bob)['Alice']}"
            wait_for(
                lambda: bob.stats().get("decoded", {}).get(f"{leaves_of(bob)['Alice']}:screen", 0)
                >= MIN_FRAMES,
                TIMEOUT, "Bob decoding Alice's screen",
            )  # fmt: skip
            wait_for(
                lambda: _fills_without_bars(_share_shape(bob.page, share)),
                20,
                lambda: f"the share filling its tile: {_share_shape(bob.page, share)}",
            )
            screenshot(bob.page, "views-screen-share")

            # A narrow window: the panel covers part of the stage; toasts stay off it.
            page.set_viewport_size({"width": 900, "height": 700})
            page.wait_for_function("() => innerWidth === 900")
            page.evaluate(
                "async () => (await import('/ui/toast.js')).toast("
                "'A long enough message to reach across the middle of a narrow window, "
                "where the chat panel covers part of the stage', {ms: 60000})"
            )
            _toasts_clear_of_chat(page)
            screenshot(page, "views-toast-narrow", doc=False)
            errors = [line for line in alice.console if line.startswith("pageerror")]
            assert not errors, errors
    finally:
        for glass in glasses:
            glass.close()
        procs.stop_all()
