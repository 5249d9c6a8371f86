"""The tab and the engine in a real browser (issue 10, requirement 4).

One Chromium page on ``clave meet`` (an embedded relay): mute and camera-off survive a
reload (the engine hands the switches back, the page opens no camera); after Leave
the page offers Rejoin, which (alone in the meeting, as its owner) starts it again;
a tab closed for good makes the engine leave and stop by itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_helpers import (
    ARTIFACTS,
    PAGE_URL,
    Glass,
    Processes,
    join_meeting,
    launch_glass,
    snap,
    wait_for,
    wait_in_meeting,
)
from playwright.sync_api import expect, sync_playwright

pytestmark = [pytest.mark.slow]

OFF = {"mic": False, "cam": False, "screen": False}



def _switches(glass: Glass) -> object:
    return glass.stats().get("switches")


def test_mute_survives_a_reload_rejoin_after_leave_and_a_closed_tab_stops_the_engine(
    tmp_path: Path,
) -> None:
    procs = Processes()
    glass: Glass | None = None
    try:
        with sync_playwright() as pw:
            engine = procs.engine("ada", "meet", "--name", "Ada", "--tab-grace", "10")
            glass = launch_glass(pw, "ada", tmp_path)
            page = glass.page
            join_meeting(glass, engine.url, "Ada")
            wait_in_meeting(glass)
            page.locator("#toggle-mic").click()
            page.locator("#toggle-cam").click()
            expect(page.locator("#toggle-mic")).to_have_attribute("aria-pressed", "false")
            expect(page.locator("#toggle-cam")).to_have_attribute("aria-pressed", "false")
            wait_for(lambda: _switches(glass) == OFF, 10, "the switches off")

            # A reload: back in the meeting without joining, microphone and camera off.
            page.reload()
            page.wait_for_url(PAGE_URL, timeout=15_000)
            wait_in_meeting(glass)
            assert glass.stats()["mediaRestored"] == OFF
            expect(page.locator("#toggle-mic")).to_have_attribute("aria-pressed", "false")
            expect(page.locator("#toggle-cam")).to_have_attribute("aria-pressed", "false")
            self_tile = page.locator('[data-tile="p:self"]')
            expect(self_tile).to_have_class(re.compile(r"\bvideo-off\b.*\bmic-muted\b"))

            # Leave: the page stays, and offers to start the meeting again.
            page.locator("#leave").click()
            expect(page.locator("#ended-screen")).to_be_visible()
            expect(page.locator("#rejoin")).to_be_visible()
            expect(page.locator("#rejoin-text")).to_contain_text("Nobody else is in the meeting")
            engine.proc.wait_line("meeting ended: you left the meeting")
            ARTIFACTS.mkdir(exist_ok=True)
            snap(page, ARTIFACTS / "ended-rejoin.png")
            page.locator("#rejoin").click()
            wait_in_meeting(glass)
            stats = glass.stats()
            assert stats["rejoins"] == 1 and stats["switches"] == OFF
            expect(page.locator("#toggle-cam")).to_have_attribute("aria-pressed", "false")
            assert stats["sent"]["video"] == 0 and stats["sent"]["audio"] == 0

            # The tab closes for good: past the grace the engine leaves and stops.
            page.close()
            engine.proc.wait_line("meeting ended: the meeting's tab was closed", timeout=40)
            engine.proc.wait_line("the meeting's page was closed: stopping", timeout=20)
            assert engine.proc.popen.wait(20) == 0
    finally:
        if glass is not None:
            glass.close()
        procs.stop_all()
