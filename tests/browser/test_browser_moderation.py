"""A host's moderation in real Chromium (issue 15 requirement 5).

Alice hosts from her browser, Bob is in his, Carol is a real engine in the test process
(:mod:`room_helpers`). Asking to unmute only asks (Bob chooses); a host's mute is honoured
by the target's engine (Carol's sends no audio frame after it, counted in frames) and
shown ("Muted by Alice" in Bob's page); a mute forged by a member's engine is refused
(Bob's page gets the alert, stays unmuted, and Alice keeps decoding his audio); removing
asks for a confirmation first. Counted in events, never in seconds. Screenshots:
test-artifacts/unmute-ask-bob.png, muted-by-host-bob.png, moderation-host-alice.png,
forged-mute-refused-bob.png, remove-confirm-alice.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_helpers import Glass, screenshot, wait_for
from playwright.sync_api import Locator, expect
from room_helpers import meeting_of_three

from clave.meeting import events as ev
from clave.meeting.app_messages import AskUnmute, Mute

pytestmark = [pytest.mark.slow]

TIMEOUT = 20.0
MORE_FRAMES = 50
"""Audio frames counted after an event (sent, refused or decoded)."""


def _stats(glass: Glass, key: str) -> Any:
    return glass.page.evaluate(f"() => window.claveStats[{key!r}]")


def _row(host: Glass, leaf: int) -> Locator:
    return host.page.locator(f'#participants li[data-leaf="{leaf}"]')


def _people(glass: Glass) -> None:
    if not glass.page.locator("#participants").is_visible():
        glass.page.locator("#toggle-people").click()
    expect(glass.page.locator("#participants")).to_be_visible()


def _audio_from(glass: Glass, leaf: int) -> int:
    return int(glass.decoded().get(f"{leaf}:audio", 0))


def test_ask_to_unmute_and_a_host_mute(tmp_path: Path) -> None:
    """Bob mutes himself; Alice asks him to unmute: his page asks, nothing is unmuted
    until he clicks. Alice mutes him: his page says "Muted by Alice" and his microphone
    is off for everyone until he unmutes himself. Alice mutes Carol: Carol's engine
    refuses every audio frame after it (50 tried, none sent)."""
    with meeting_of_three(tmp_path) as room:
        alice, bob, carol = room.alice, room.bob, room.carol
        bob_leaf, carol_leaf = room.leaves["Bob"], room.leaves["Carol"]
        _people(alice)

        bob.page.locator("#toggle-mic").click()
        ask = _row(alice, bob_leaf).locator("button[data-ask-unmute]")
        ask.click(timeout=TIMEOUT * 1000)
        expect(bob.page.locator("#unmute-ask")).to_be_visible(timeout=TIMEOUT * 1000)
        expect(bob.page.locator("#unmute-ask")).to_contain_text("Alice asks you to unmute")
        assert _stats(bob, "unmuteRequests") == [{"by": room.leaves["Alice"], "name": "Alice"}]
        assert _stats(bob, "switches")["mic"] is False  # asked, not unmuted
        expect(_row(alice, bob_leaf)).to_contain_text("muted")
        screenshot(bob.page, "unmute-ask-bob")
        bob.page.locator("#unmute-accept").click()  # Bob chooses to
        mute = _row(alice, bob_leaf).locator("button[data-mute]")
        expect(mute).to_be_visible(timeout=TIMEOUT * 1000)  # his microphone is on again

        mute.click()
        expect(bob.page.locator("#muted-by")).to_be_visible(timeout=TIMEOUT * 1000)
        expect(bob.page.locator("#muted-by")).to_contain_text("Muted by Alice")
        assert _stats(bob, "mutedBy") == "Alice"
        wait_for(lambda: _stats(bob, "switches")["mic"] is False, TIMEOUT, "Bob's mic off")
        expect(_row(alice, bob_leaf).locator("button[data-ask-unmute]")).to_be_visible(
            timeout=TIMEOUT * 1000
        )  # everyone sees him muted
        screenshot(bob.page, "muted-by-host-bob")
        screenshot(alice.page, "moderation-host-alice")
        bob.page.locator("#muted-unmute").click()  # only he can unmute himself
        expect(bob.page.locator("#muted-by")).to_be_hidden(timeout=TIMEOUT * 1000)
        expect(_row(alice, bob_leaf).locator("button[data-mute]")).to_be_visible(
            timeout=TIMEOUT * 1000
        )

        # Carol's engine honours a host's mute: every audio frame after it is refused.
        _row(alice, carol_leaf).locator("button[data-mute]").click()
        at = wait_for(lambda: carol.read(lambda p: p.at_mute), TIMEOUT, "Carol's engine muted")
        assert carol.read(lambda p: p.session.meeting.muted_by) == "Alice"
        wait_for(
            lambda: carol.read(lambda p: p.audio_attempts) >= at[0] + MORE_FRAMES,
            TIMEOUT, f"{MORE_FRAMES} more audio frames tried by Carol",
        )  # fmt: skip
        assert carol.read(lambda p: p.audio_sent) == at[1]
        expect(_row(alice, carol_leaf).locator("button[data-ask-unmute]")).to_be_visible(
            timeout=TIMEOUT * 1000
        )  # her announced microphone went off


def test_a_mute_forged_by_a_member_is_refused(tmp_path: Path) -> None:
    """Attack: Carol is no host, and her engine sends Bob a mute and an ask to unmute
    anyway (past its own checks). Bob's engine refuses both: his page shows the alert,
    no "Muted by", no request; his microphone stays on, and Alice's page goes on decoding
    his audio."""
    with meeting_of_three(tmp_path) as room:
        alice, bob, carol = room.alice, room.bob, room.carol
        bob_leaf = room.leaves["Bob"]
        wait_for(lambda: _audio_from(alice, bob_leaf) > 0, TIMEOUT, "Bob's audio at Alice's")
        carol.send_app(Mute(leaf=bob_leaf), AskUnmute(leaf=bob_leaf))
        wait_for(
            lambda: len([a for a in _stats(bob, "alerts") if a["kind"] == "refused_takeover"]) == 2,
            TIMEOUT, "Bob's page shows two refusals",
        )  # fmt: skip
        decoded = _audio_from(alice, bob_leaf)
        assert _stats(bob, "mutedBy") is None
        assert _stats(bob, "unmuteRequests") == []
        assert _stats(bob, "switches")["mic"] is True
        expect(bob.page.locator("#muted-by")).to_be_hidden()
        expect(bob.page.locator("#unmute-ask")).to_be_hidden()
        screenshot(bob.page, "forged-mute-refused-bob")
        wait_for(
            lambda: _audio_from(alice, bob_leaf) >= decoded + MORE_FRAMES,
            TIMEOUT, f"{MORE_FRAMES} more of Bob's audio frames decoded by Alice",
        )  # fmt: skip
        carol_events = carol.read(lambda p: list(p.events))
        assert not [e for e in carol_events if isinstance(e, ev.MutedByHost)]


def test_removing_someone_asks_for_a_confirmation(tmp_path: Path) -> None:
    """Remove opens "Remove Carol from the meeting?"; Cancel keeps her (no removal is
    pending); confirming (invitation kept) removes her, and her engine is told."""
    with meeting_of_three(tmp_path) as room:
        alice, carol = room.alice, room.carol
        carol_leaf = room.leaves["Carol"]
        _people(alice)
        remove = _row(alice, carol_leaf).locator("button[data-remove]")
        remove.click()
        dialog = alice.page.locator("#remove-dialog")
        expect(dialog).to_be_visible()
        expect(alice.page.locator("#remove-title")).to_have_text("Remove Carol from the meeting?")
        screenshot(alice.page, "remove-confirm-alice")
        alice.page.locator("#remove-cancel").click()
        expect(dialog).to_be_hidden()
        assert _stats(alice, "pendingRemovals") == []
        assert "Carol" in _stats(alice, "names").values()
        assert not carol.read(lambda p: [e for e in p.events if isinstance(e, ev.Removed)])

        _row(alice, carol_leaf).locator("button[data-remove]").click()
        # Without replacing the invitation: the relay then drops nobody, and Carol's
        # engine reads its removal however loaded the machine is.
        alice.page.locator("#remove-rotate").uncheck()
        alice.page.locator("#remove-confirm").click()
        wait_for(lambda: "Carol" not in _stats(alice, "names").values(), TIMEOUT, "Carol removed")
        wait_for(
            lambda: carol.read(lambda p: [e for e in p.events if isinstance(e, ev.Removed)]),
            TIMEOUT,
            lambda: (
                "Carol's engine told it was removed; it saw "
                + ", ".join(type(e).__name__ for e in carol.read(lambda p: list(p.events))[-12:])
            ),
        )
