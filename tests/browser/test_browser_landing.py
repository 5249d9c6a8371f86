"""The relay's page for invitees in a real Chromium with JavaScript disabled.

The page (``/m/<room>``) must do its whole job without running a line of script:
say what Clave is, how to install it on Linux, macOS and Windows and how to
open the invitation; be readable on a phone; follow the system's dark mode.
Screenshots go to test-artifacts/ (the first screen and the whole page, light and
dark, and a phone) and, with ``CLAVE_DOC_SCREENSHOTS=DIR``, the first screens to DIR
(docs/img/landing-light.png and landing-dark.png for the user guide).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

import pytest
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, browser_available, screenshot
from playwright.sync_api import Browser, Page, sync_playwright

pytestmark = [pytest.mark.slow]

ROOM = "ffOKPyH7kiTSDb16Q-DsLw"
"""Any 22-character room id: the page is the same for every room."""
WHEEL = "pipx install clave-<version>-py3-none-any.whl"
PLATFORMS = {
    "#linux": ("Linux", ("sudo apt install python3 pipx", WHEEL, "clave setup")),
    "#macos": ("macOS", ("brew install python pipx", WHEEL, "clave join")),
    "#windows": ("Windows", ("py -m pip install --user pipx", WHEEL, "clave setup")),
}
DESKTOP = {"width": 900, "height": 800}
PHONE = {"width": 390, "height": 844}
Scheme = Literal["light", "dark"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    missing = browser_available()
    if missing is not None:
        pytest.skip(f"no browser: {missing}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def luminance(css_color: str) -> float:
    """Relative luminance (WCAG, 0 black .. 1 white) of ``rgb(r, g, b)`` / ``rgba(...)``."""
    match = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, [\d.]+)?\)", css_color)
    assert match is not None, css_color

    def channel(value: str) -> float:
        c = int(value) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in match.groups())
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def background(page: Page, selector: str) -> float:
    color: str = page.locator(selector).evaluate("e => getComputedStyle(e).backgroundColor")
    return luminance(color)


def open_page(
    browser: Browser, url: str, scheme: Scheme, viewport: dict[str, int]
) -> tuple[Page, list[str]]:
    """The page in a fresh context without JavaScript; also every URL it requested."""
    context = browser.new_context(
        java_script_enabled=False,
        color_scheme=scheme,
        viewport=viewport,  # type: ignore[arg-type]
    )
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    response = page.goto(url)
    assert response is not None and response.status == 200
    assert "script-src 'none'" in response.headers["content-security-policy"]
    page.wait_for_load_state("load")
    return page, requests


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_explains_everything_without_javascript(
    browser: Browser, live_relay: str, scheme: Scheme
) -> None:
    url = f"{live_relay}/m/{ROOM}"
    page, requests = open_page(browser, url, scheme, DESKTOP)
    try:
        assert requests == [url, f"{live_relay}/static/landing.css"]
        assert page.locator("script").count() == 0
        assert page.locator("form, input, textarea").count() == 0
        text = " ".join((page.locator("main").text_content() or "").split())
        for words in ("end-to-end encrypted", "cannot see, hear or read the meeting",
                      "clave://", "This page never asks for it", "python -m build",
                      "Ask the person who invited you for the Clave wheel file", "clave join"):
            assert words in text, words
        for selector, (heading, musts) in PLATFORMS.items():
            section = page.locator(selector)
            assert section.locator("h3").text_content() == heading
            section_text = " ".join((section.text_content() or "").split())
            for words in musts:
                assert words in section_text, (heading, words)
            assert section.is_visible(), heading
        # The system's colour scheme is followed: a dark page in dark mode, a light one else.
        page_bg, card_bg = background(page, "body"), background(page, "main")
        if scheme == "dark":
            assert page_bg < 0.05 and card_bg < 0.05, (page_bg, card_bg)
        else:
            assert page_bg > 0.8 and card_bg > 0.8, (page_bg, card_bg)
        screenshot(page, f"landing-{scheme}")  # the first screen, for the user guide
        screenshot(page, f"landing-{scheme}-full", full_page=True, doc=False)
    finally:
        page.context.close()


def test_the_page_fits_a_phone(browser: Browser, live_relay: str) -> None:
    page, _ = open_page(browser, f"{live_relay}/m/{ROOM}", "dark", PHONE)
    try:
        width: int = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width} px)"
        for selector in PLATFORMS:
            box = page.locator(f"{selector} pre").first.bounding_box()
            assert box is not None and box["x"] >= 0
            assert box["x"] + box["width"] <= PHONE["width"], selector
        screenshot(page, "landing-phone", full_page=True, doc=False)
    finally:
        page.context.close()
