"""The participant list shows a mute or a camera off only when that member said so.

A member's announced switches reach the page as ``mic``/``cam`` (null: not said, which
is always the case for one's own row, as the engine knows its own switches). The page
used to read null as false, so Alice's own row said "muted · camera off" while her
microphone and camera were on. Now: no such tag on her row; Bob's row shows "muted"
once Bob mutes (M), and not before (the tags still work).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import Glass, Processes, host_and_guest, wait_for
from playwright.sync_api import sync_playwright

pytestmark = [pytest.mark.slow]


def _tags(glass: Glass, name: str) -> list[str]:
    row = glass.page.locator("#panel-people li", has_text=name).first
    return [t.strip() for t in row.locator(".tag").all_inner_texts()]


def test_only_announced_switches_show_as_muted_or_camera_off(tmp_path: Path) -> None:
    procs = Processes()
    glasses: list[Glass] = []
    try:
        with sync_playwright() as pw:
            _, alice, bob = host_and_guest(pw, procs, tmp_path, glasses)
            page = alice.page
            if page.locator("#panel-people").is_hidden():
                page.locator("#toggle-people").click()
            wait_for(lambda: "muted" not in _tags(alice, "Bob"), 20, "Bob's row without a mute")
            assert _tags(alice, "Alice") == ["(you)"], _tags(alice, "Alice")
            assert "camera off" not in _tags(alice, "Bob")
            bob.page.locator("body").click(position={"x": 5, "y": 5})
            bob.page.keyboard.press("m")
            wait_for(lambda: "muted" in _tags(alice, "Bob"), 20, "Bob's row saying muted")
            assert _tags(alice, "Alice") == ["(you)"], _tags(alice, "Alice")
    finally:
        for glass in glasses:
            glass.close()
        procs.stop_all()
