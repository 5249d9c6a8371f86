"""The user guide's screenshots, taken in a real meeting between two browsers.

Ada hosts (``clave meet``), Grace joins with the invitation (``clave join``): Grace's
pre-join screen, Grace waiting in the lobby, Ada's lobby request, the meeting with
its padlock and security code, Ada's participants panel, Grace after Leave, and
Grace asking again and being declined. Every screenshot goes
to test-artifacts/guide-*.png and, with ``CLAVE_DOC_SCREENSHOTS=docs/img``, to
docs/img (docs/USER-GUIDE.md shows them). The test asserts what the screenshots
are meant to show: Grace admitted, the same security code on both pages, media
decoded both ways, the padlock saying encrypted.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from browser_helpers import (
    Glass,
    Processes,
    admit,
    launch_glass,
    leaves_of,
    normalise_code,
    open_glass,
    screenshot,
    wait_for,
    wait_in_meeting,
)
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = [pytest.mark.slow]

VIEWPORT = {"width": 1280, "height": 800}
MIN_VIDEO = 30
MIN_AUDIO = 50
"""Frames each page decodes from the other before the meeting is photographed."""
MEDIA_TIMEOUT = 45.0



def shown_code(glass: Glass) -> str:
    return normalise_code(glass.page.locator("#security-code").text_content())


def decoded_from(glass: Glass, leaf: int) -> bool:
    decoded = glass.decoded()
    return (decoded.get(f"{leaf}:video", 0) >= MIN_VIDEO
            and decoded.get(f"{leaf}:audio", 0) >= MIN_AUDIO)


def has_members(glass: Glass, n: int) -> bool:
    return len(leaves_of(glass)) == n


def no_toasts(page: Page) -> None:
    """Screenshots without passing notices (e.g. "Grace joined"): they fade anyway."""
    page.locator("#toasts").evaluate("el => el.replaceChildren()")


def test_guide_screenshots_of_a_real_meeting(tmp_path: Path) -> None:
    procs = Processes()
    glasses: list[Glass] = []
    try:
        with sync_playwright() as pw:
            relay = procs.relay()
            host_engine = procs.engine("ada", "meet", "--relay", relay, "--name", "Ada")
            invitation = host_engine.invitation
            assert invitation is not None

            ada = launch_glass(pw, "ada", tmp_path)
            glasses.append(ada)
            ada.page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
            open_glass(ada.page, host_engine.url)
            ada.page.locator("#join").click(timeout=15_000)  # the name comes from --name
            wait_in_meeting(ada)

            # Grace pasted the invitation into `clave join`; her browser shows the
            # pre-join screen: name, camera preview and device choice.
            guest_engine = procs.engine("grace", "join", invitation=invitation)
            grace = launch_glass(pw, "grace", tmp_path)
            glasses.append(grace)
            grace.page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
            open_glass(grace.page, guest_engine.url)
            grace.page.locator("#name").fill("Grace")
            expect(grace.page.locator("#join")).to_be_enabled(timeout=15_000)
            grace.page.wait_for_function(
                "() => { const v = document.querySelector('#preview');"
                " return v && v.readyState >= 2 && v.videoWidth > 0; }"
            )
            screenshot(grace.page, "guide-prejoin")

            # She knocks; Ada's page shows the request, with Grace's key fingerprint.
            grace.page.locator("#join").click()
            grace.page.wait_for_function("() => window.claveStats.phase === 'lobby'")
            expect(grace.page.locator("#wait-fingerprint-value")).not_to_be_empty()
            screenshot(grace.page, "guide-lobby-guest")
            request = ada.page.locator("#lobby li", has_text="Grace")
            expect(request).to_be_visible(timeout=15_000)
            expect(request.locator("button[data-admit]")).to_be_visible()
            no_toasts(ada.page)
            screenshot(ada.page, "guide-lobby-host")

            # Ada admits her: both are in the meeting, with the same security code.
            admit(ada, "Grace")
            wait_in_meeting(grace)
            for glass in (ada, grace):
                wait_for(partial(has_members, glass, 2), 15, f"{glass.name}: 2 members")
            leaves = leaves_of(ada)
            assert leaves_of(grace) == leaves and set(leaves) == {"Ada", "Grace"}
            wait_for(lambda: shown_code(ada) == shown_code(grace) != "—", 15,
                     "the same security code on both pages")
            code = shown_code(ada)
            assert normalise_code(ada.stats()["securityCode"]) == code
            assert normalise_code(grace.stats()["securityCode"]) == code

            # Media both ways before the picture is taken.
            wait_for(partial(decoded_from, ada, leaves["Grace"]), MEDIA_TIMEOUT,
                     lambda: f"Ada decoding Grace: {ada.decoded()}")
            wait_for(partial(decoded_from, grace, leaves["Ada"]), MEDIA_TIMEOUT,
                     lambda: f"Grace decoding Ada: {grace.decoded()}")
            for glass in (ada, grace):
                padlock = glass.page.locator("#padlock")
                expect(padlock).to_have_text("End-to-end encrypted")
                expect(padlock).to_have_attribute("data-state", "encrypted")
                assert glass.stats()["frameFailures"] == []
                assert glass.stats()["errors"] == [], (glass.name, glass.stats()["errors"])

            # The meeting as Grace sees it (padlock and security code in the top bar),
            # then Ada's participants panel: roles, fingerprints, host tools.
            if grace.page.locator("#side").is_visible():
                grace.page.locator("#side-close").click()
            no_toasts(grace.page)
            screenshot(grace.page, "guide-meeting")
            ada.page.locator("#toggle-people").click()
            expect(ada.page.locator("#host-tools")).to_be_visible()
            grace_entry = ada.page.locator("#participants li", has_text="Grace")
            grace_entry.scroll_into_view_if_needed()
            expect(grace_entry).to_be_visible()
            no_toasts(ada.page)
            screenshot(ada.page, "guide-participants")

            # Grace leaves: her page says so and offers to rejoin; Ada is alone again.
            grace.page.locator("#leave").click()
            expect(grace.page.locator("#ended-title")).to_have_text("You left the meeting")
            expect(grace.page.locator("#rejoin")).to_be_visible()
            wait_for(partial(has_members, ada, 1), 20, "Ada seeing Grace leave")
            screenshot(grace.page, "guide-left")

            # She asks again and Ada declines: her page says so, not "Meeting ended".
            grace.page.locator("#rejoin").click()
            request = ada.page.locator("#lobby li", has_text="Grace")
            request.locator("button[data-deny]").click(timeout=20_000)
            title = grace.page.locator("#ended-title")
            expect(title).to_have_text("Your request to join was declined", timeout=20_000)
            expect(grace.page.locator("#rejoin")).to_have_text("Ask again")
            assert grace.stats()["ended"]["title"] != "Meeting ended"
            screenshot(grace.page, "guide-declined")
    finally:
        for glass in glasses:
            glass.close()
        procs.stop_all()
