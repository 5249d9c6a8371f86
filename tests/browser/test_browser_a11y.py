"""Accessibility audit of the meeting page in real Chromium (issue 15, item 7).

axe-core (npm, pinned in ``tests/browser/a11y``) runs in Alice's page at each screen a
user meets: the pre-join screen, the lobby as a host sees it with Bob knocking, the
meeting with the people panel and with the chat open, and the keyboard shortcut list.
Not one violation of serious or critical impact is allowed; every finding of any impact
is written to ``test-artifacts/a11y-audit.json``. Then the keyboard: Tab from the top of
the meeting page reaches every visible button of the control bar, and every element it
reaches shows that it has the focus (a focus ring, or a text field's border).

axe is evaluated through the DevTools protocol (as a test tool, not as a page script),
so the page's Content-Security-Policy stays as it is.

A positive control proves the audit is not vacuous: an image without alt text and a
button without a name, added to the page, are each reported (serious / critical).
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
    open_glass,
    screenshot,
    wait_in_meeting,
)
from playwright.sync_api import sync_playwright

AXE = Path(__file__).parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}

pytestmark = [pytest.mark.slow]


def _audit(glass: Glass, screen: str, found: dict[str, Any]) -> list[dict[str, Any]]:
    """axe's violations on ``glass``'s page now; kept under ``screen`` in ``found``."""
    page = glass.page
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text() + "\n;undefined")
    result: list[dict[str, Any]] = page.evaluate(
        """async () => {
          const r = await axe.run(document, { resultTypes: ['violations'] });
          return r.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
          }));
        }"""
    )
    found[screen] = result
    return result


def _keyboard_walk(glass: Glass, presses: int = 150) -> dict[str, Any]:
    """Press Tab from the top of the page: every control it reaches, those of the meeting
    control bar that are visible (all must be reached), and any reached element whose
    focus leaves no visible mark (a box-shadow or outline, or a text field's border)."""
    page = glass.page
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    describe = """() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const s = getComputedStyle(el);
      const field = el.matches('input, textarea, select');
      const mark = s.boxShadow !== 'none' || s.outlineStyle !== 'none' || field;
      const name = el.id || el.getAttribute('aria-label') || el.textContent.trim().slice(0, 30);
      return { name: el.tagName.toLowerCase() + ':' + name, mark };
    }"""
    reached: list[str] = []
    unmarked: list[str] = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        now = page.evaluate(describe)
        if now is None:
            continue
        if now["name"] in reached:
            if now["name"] == reached[0]:
                break  # round the page once
            continue
        reached.append(now["name"])
        if not now["mark"]:
            unmarked.append(now["name"])
    controls: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('footer.controls button')]
          .filter((b) => b.offsetParent !== null && !b.disabled)
          .map((b) => 'button:' + (b.id || b.getAttribute('aria-label')
                                   || b.textContent.trim().slice(0, 30)))"""
    )
    return {"reached": reached, "unmarked": unmarked, "controls": controls}


def _blocking(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
        for v in violations
        if v["impact"] in BLOCKING
    ]


def test_no_serious_accessibility_violations(tmp_path: Path) -> None:
    assert AXE.is_file(), f"{AXE} missing: the test command installs it (npm ci)"
    procs = Processes()
    found: dict[str, Any] = {}
    glasses: list[Glass] = []
    try:
        with sync_playwright() as pw:
            relay = procs.relay()
            alice_engine = procs.engine("alice", "meet", "--relay", relay, "--name", "Alice")
            alice = launch_glass(pw, "alice", tmp_path)
            glasses.append(alice)
            page = alice.page
            open_glass(page, alice_engine.url)
            page.locator("#name").wait_for(state="visible", timeout=15_000)
            problems = {"pre-join": _blocking(_audit(alice, "pre-join", found))}
            page.locator("#name").fill("Alice")
            page.locator("#join").click(timeout=15_000)
            wait_in_meeting(alice)

            assert alice_engine.invitation is not None
            bob_engine = procs.engine(
                "bob", "join", "--name", "Bob", invitation=alice_engine.invitation
            )
            bob = launch_glass(pw, "bob", tmp_path)
            glasses.append(bob)
            join_meeting(bob, bob_engine.url, "Bob")
            if page.locator("#panel-people").is_hidden():
                page.locator("#toggle-people").click()
            page.locator("#lobby li", has_text="Bob").wait_for(state="visible", timeout=20_000)
            problems["lobby"] = _blocking(_audit(alice, "lobby", found))
            admit(alice, "Bob")
            wait_in_meeting(bob)
            problems["people"] = _blocking(_audit(alice, "people", found))

            walk = _keyboard_walk(alice)
            found["keyboard"] = walk
            controls = walk["controls"]
            assert controls and not set(controls) - set(walk["reached"]), (
                "meeting controls Tab never reaches",
                sorted(set(controls) - set(walk["reached"])),
            )
            assert not walk["unmarked"], ("focused with no visible focus mark", walk["unmarked"])

            page.locator("#tab-chat").click()
            page.locator("#chat-input").fill("hello https://example.org/agenda")
            page.locator("#chat-input").press("Enter")
            page.locator("#chat-log a.msg-link").wait_for(state="visible", timeout=20_000)
            problems["chat-sending"] = _blocking(_audit(alice, "chat-sending", found))
            page.locator("#chat-log .msg.pending").wait_for(state="detached", timeout=20_000)
            problems["chat"] = _blocking(_audit(alice, "chat", found))

            page.locator("body").click(position={"x": 5, "y": 5})
            page.keyboard.press("?")
            page.locator("#shortcuts-dialog").wait_for(state="visible", timeout=10_000)
            problems["shortcuts"] = _blocking(_audit(alice, "shortcuts", found))
            page.keyboard.press("Escape")
            screenshot(page, "a11y-meeting-alice")

            # Positive control: what axe must catch, it catches (then it is removed).
            page.evaluate(
                """() => {
                  const img = document.createElement('img');
                  img.id = 'a11y-probe-img'; img.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
                  const btn = document.createElement('button');
                  btn.id = 'a11y-probe-btn';
                  document.querySelector('main, body').append(img, btn);
                }"""
            )
            probe = _audit(alice, "probe", found)
            page.evaluate("() => ['a11y-probe-img', 'a11y-probe-btn']"
                          ".forEach((id) => document.getElementById(id).remove())")
            caught = {v["id"] for v in probe if v["impact"] in BLOCKING}
            assert {"image-alt", "button-name"} <= caught, caught
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "a11y-audit.json").write_text(json.dumps(found, indent=1))
        for glass in glasses:
            glass.close()
        procs.stop_all()
    bad = {screen: p for screen, p in problems.items() if p}
    assert not bad, json.dumps(bad, indent=1)

