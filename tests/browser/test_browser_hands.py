"""Raised hands and reactions in real Chromium (issue 15 requirement 2).

Alice hosts from her browser, Bob is in his, Carol is a real engine in the test process
(:mod:`room_helpers`). Hands and reactions are MLS application messages; what each page
shows is read from its DOM and from ``window.claveStats`` (``hands``: the queue in
raise order; ``reactionsShown``: every reaction floated on a tile). Counted in events,
never in seconds. Screenshots: test-artifacts/hands-queue-alice.png,
hands-raised-bob.png, reaction-bar-bob.png, reaction-alice.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_helpers import Glass, screenshot, wait_for
from playwright.sync_api import expect
from room_helpers import meeting_of_three

from clave.meeting.app_messages import REACTIONS, React
from clave.meeting.events import ReactionReceived
from clave.meeting.hands import REACTION_BURST

pytestmark = [pytest.mark.slow]

TIMEOUT = 20.0


def _hands(glass: Glass) -> list[int]:
    hands: list[int] = glass.page.evaluate("() => window.claveStats.hands || []")
    return hands


def _reactions(glass: Glass, sender: int) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = glass.page.evaluate(
        "() => window.claveStats.reactionsShown || []"
    )
    return [r for r in shown if r["sender"] == sender]


def _chats(glass: Glass) -> list[str]:
    texts: list[str] = glass.page.evaluate("() => window.claveStats.chats.map((c) => c.text)")
    return texts


def test_hands_queue_in_order_and_reactions_float_on_tiles(tmp_path: Path) -> None:
    """Bob raises his hand in his page, then Carol hers: Alice's page lists Bob then
    Carol (and both tiles carry a hand with its place); Alice lowers Bob's from her
    queue and every page follows; Bob's reaction floats on his tile in Alice's page and
    Carol's engine hears it. A flood of reactions from Carol's engine (past its own
    limit) shows only the burst the limit allows."""
    with meeting_of_three(tmp_path) as room:
        alice, bob, carol = room.alice, room.bob, room.carol
        bob_leaf, carol_leaf = room.leaves["Bob"], room.leaves["Carol"]

        bob.page.locator("#toggle-hand").click()
        wait_for(lambda: _hands(alice) == [bob_leaf], TIMEOUT, "Bob's hand on Alice's page")
        carol.call(lambda m: m.raise_hand())
        wait_for(lambda: _hands(alice) == [bob_leaf, carol_leaf], TIMEOUT, "both hands, in order")
        wait_for(lambda: _hands(bob) == [bob_leaf, carol_leaf], TIMEOUT, "both hands on Bob's page")
        expect(bob.page.locator("#toggle-hand")).to_have_attribute("aria-pressed", "true")
        queue = alice.page.locator("#hands-list li")
        expect(queue).to_have_count(2)
        expect(queue.nth(0)).to_contain_text("Bob")
        expect(queue.nth(1)).to_contain_text("Carol")
        expect(alice.page.locator(f'[data-tile="p:{carol_leaf}"] .tile-hand')).to_contain_text("2")
        if not alice.page.locator("#hands-card").is_visible():
            alice.page.locator("#toggle-people").click()
        expect(alice.page.locator("#hands-card")).to_be_visible()
        screenshot(alice.page, "hands-queue-alice")
        screenshot(bob.page, "hands-raised-bob")

        alice.page.locator(f'#hands-list button[data-lower="{bob_leaf}"]').click()
        wait_for(lambda: _hands(bob) == [carol_leaf], TIMEOUT, "Bob's hand lowered on his page")
        expect(bob.page.locator("#toggle-hand")).to_have_attribute("aria-pressed", "false")
        wait_for(
            lambda: carol.read(lambda p: p.session.meeting.raised_hands) == (carol_leaf,),
            TIMEOUT, "Carol's engine saw Bob's hand lowered",
        )  # fmt: skip

        bob.page.locator("#toggle-react").click()
        expect(bob.page.locator("#react-bar")).to_be_visible()
        screenshot(bob.page, "reaction-bar-bob")
        bob.page.locator(f'#react-bar button[data-emoji="{REACTIONS[5]}"]').click()
        tile_reaction = alice.page.locator(f'[data-tile="p:{bob_leaf}"] .reaction-float')
        tile_reaction.first.wait_for(state="attached", timeout=TIMEOUT * 1000)
        screenshot(alice.page, "reaction-alice")
        assert _reactions(alice, bob_leaf) == [{"sender": bob_leaf, "emoji": REACTIONS[5]}]
        wait_for(lambda: _reactions(bob, bob_leaf), TIMEOUT, "Bob's own tile shows it too")
        wait_for(
            lambda: carol.read(lambda p: [e for e in p.events if isinstance(e, ReactionReceived)]),
            TIMEOUT, "Carol's engine heard the reaction",
        )  # fmt: skip

        # A flood past Carol's own limit: Alice's engine holds her to the burst. The chat
        # that follows arrives after every reaction (one room, one order).
        carol.send_app(*[React(emoji=REACTIONS[0])] * (REACTION_BURST * 4))
        carol.call(lambda m: m.send_chat("after the flood"))
        wait_for(lambda: "after the flood" in _chats(alice), TIMEOUT, "the chat after the flood")
        assert len(_reactions(alice, carol_leaf)) == REACTION_BURST
