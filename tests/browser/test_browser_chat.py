"""Chat in real Chromium (issue 15, item 6): links, messages that did not reach everyone,
the unread count and the keyboard shortcut list.

Alice and Bob in their browsers and Carol, a real engine in this process
(:mod:`room_helpers`). A web server on 127.0.0.1 counts requests for the link sent:

* Bob's message with a link shows on Alice's page as a link that opens a new tab with
  no opener and no referrer; nobody fetched it (0 requests, while Carol's engine got the
  message too), and the same server counts a request the test makes (positive control).
  ``javascript:`` and ``ftp:`` text is never a link.
* Carol's engine stops answering until the relay drops her connection (she is away, not
  gone): Alice's message then says it was not delivered to Carol, while Bob gets it;
  once Carol is back, the next message has no such note.
* Bob's page, with the chat closed, counts Alice's messages as unread; opening the chat
  clears the count.
* ``?`` opens the list of shortcuts (built from the table that binds them), Escape
  closes it.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from browser_helpers import Glass, screenshot, wait_for
from room_helpers import meeting_of_three

from clave.meeting import events as ev


class _Counter(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def link_target() -> Iterator[tuple[str, type[_Counter]]]:
    """A URL on 127.0.0.1 that counts GET requests."""
    counter = type("Counter", (_Counter,), {"hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/agenda", counter
    finally:
        server.shutdown()
        server.server_close()


def _say(glass: Glass, text: str) -> None:
    page = glass.page
    if page.locator("#chat-input").is_hidden():
        page.locator("#toggle-chat").click()
    page.locator("#chat-input").fill(text)
    page.locator("#chat-input").press("Enter")


def _message(glass: Glass, text: str) -> object:
    return glass.page.locator("#chat-log .msg", has_text=text)


def _away(glass: Glass, name: str) -> bool:
    """Whether ``name``'s tile says it is reconnecting (away: its connection is gone)."""
    badge = glass.page.locator(".tile", has_text=name).locator(".tile-badge")
    return badge.count() > 0 and badge.first.is_visible() and "Reconnecting" in (
        badge.first.inner_text()
    )


def test_chat_links_delivery_unread_and_shortcuts(
    tmp_path: Path, link_target: tuple[str, type[_Counter]]
) -> None:
    url, counter = link_target
    with meeting_of_three(tmp_path) as room:
        alice, bob, carol = room.alice, room.bob, room.carol

        def carol_got(text: str) -> bool:
            return any(
                isinstance(e, ev.ChatReceived) and e.text == text
                for e in list(carol.participant.events)
            )

        # 1. A link: clickable, opened with no opener, fetched by nobody.
        first = f"Agenda: {url}. Then javascript:alert(1) and ftp://127.0.0.1/x"
        _say(bob, first)
        link = alice.page.locator("#chat-log a.msg-link")
        link.wait_for(state="visible", timeout=20_000)
        assert link.count() == 1, "only the http(s) URL is a link"
        assert link.get_attribute("href") == url
        assert link.inner_text() == url  # the sentence's full stop is not in it
        assert link.get_attribute("target") == "_blank"
        assert set((link.get_attribute("rel") or "").split()) == {"noopener", "noreferrer"}
        wait_for(lambda: carol_got(first), 20, "Carol's engine got the message")
        assert counter.hits == 0, "the link was fetched (a preview?)"
        with urllib.request.urlopen(url, timeout=10) as answer:  # positive control
            assert answer.status == 204
        assert counter.hits == 1

        # 2. Carol away: Alice's message says it did not reach her; Bob gets it.
        gate = threading.Event()
        carol._loop.call_soon_threadsafe(gate.wait, 90)  # her engine stops answering
        try:
            wait_for(lambda: _away(alice, "Carol"), 40, "Alice sees Carol away")
            _say(alice, "Are you there, Carol?")
            note = _message(alice, "Are you there, Carol?").locator(".msg-note")
            note.wait_for(state="visible", timeout=20_000)
            assert "Not delivered to Carol" in note.inner_text()
            _message(bob, "Are you there, Carol?").wait_for(state="visible", timeout=20_000)
            screenshot(alice.page, "chat-link-and-undelivered-alice")
        finally:
            gate.set()
        wait_for(lambda: not _away(alice, "Carol"), 40, "Alice sees Carol back")
        _say(alice, "Welcome back")
        back = _message(alice, "Welcome back")
        back.wait_for(state="visible", timeout=20_000)
        wait_for(lambda: carol_got("Welcome back"), 20, "Carol got the message once back")
        assert back.locator(".msg-note").count() == 0

        # 3. Unread: Bob's chat is closed, two messages arrive, opening the chat clears.
        if bob.page.locator("#chat-input").is_visible():
            bob.page.locator("#toggle-chat").click()
        bob.page.locator("#chat-input").wait_for(state="hidden", timeout=10_000)
        _say(alice, "one")
        _say(alice, "two")
        badge, dot = bob.page.locator("#chat-unread"), bob.page.locator("#chat-dot")
        wait_for(
            lambda: badge.text_content() == "2" and dot.is_visible(), 20, "Bob: 2 unread"
        )
        bob.page.locator("#toggle-chat").click()
        wait_for(lambda: dot.is_hidden() and badge.is_hidden(), 20, "Bob's unread cleared")

        # 4. "?" lists the shortcuts; Escape closes the list.
        page = alice.page
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("?")
        dialog = page.locator("#shortcuts-dialog")
        dialog.wait_for(state="visible", timeout=10_000)
        rows = dialog.locator(".shortcut-row")
        texts = [rows.nth(i).inner_text() for i in range(rows.count())]
        assert any("Raise or lower your hand" in t for t in texts), texts
        assert any("Microphone" in t for t in texts) and len(texts) >= 7, texts
        screenshot(page, "chat-shortcuts-alice")
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden", timeout=10_000)
