"""Real browsers in a real meeting: two Chromium glasses and one headless Python participant.

Every part runs as a user would run it, each in its own process: the relay
(``clave serve``), Alice's engine (``clave meet --no-browser``, the host) and
Bob's (``clave join --no-browser``), each serving its glass to its own
headless Chromium with a fake camera and microphone, and Carol, a headless
Python participant (``clave join --headless``) with real VP8 and Opus. The
host admits both guests from the lobby by clicking in her page.

The invitation travels as documented: Alice's engine prints the ``clave://``
invitation, which Bob and Carol paste into ``clave join`` (standard input, never an
argument); each browser is given its engine's launcher file (``file://…``), never the
page's token.

Media counts are the glass's DECODER OUTPUTS (``window.claveStats.decoded``),
not packets received and not animation callbacks. No frame may fail to decrypt or to
match its manifest; a frame dropped because its signed manifest came later than the hold
timeout (the authentication working on a loaded machine) is allowed when rare, at most
one per 50 frames decoded (``assert_frame_failures``).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    ARTIFACTS,
    PAGE_URL,
    Glass,
    Processes,
    admit,
    assert_frame_failures,
    join_meeting,
    launch_glass,
    leaves_of,
    normalise_code,
    open_glass,
    snap,
    wait_for,
    wait_in_meeting,
)
from playwright.sync_api import CDPSession, Page, expect, sync_playwright

from clave.meeting.link import b64url_encode, parse_link

pytestmark = [pytest.mark.slow]


MIN_VIDEO = 60
"""Video frames each browser must decode from each other participant."""
MIN_AUDIO = 100
MIN_SCREEN = 30
"""Screen-share frames Alice's browser must decode from Bob's share."""
MEDIA_TIMEOUT = 45.0
ALICE_SAYS = "hello from Alice's browser"
CAROL_SAYS = "hello from Carol, in Python"
JOINED = re.compile(r"^joined as Carol; security code (.+)$")
ENCRYPTED_LABEL = "End-to-end encrypted"


def _missing(glass: Glass, want: dict[str, int]) -> dict[str, tuple[int, int]]:
    """``{key: (have, want)}`` for every decoder counter still below its target."""
    decoded = glass.decoded()
    return {k: (decoded.get(k, 0), n) for k, n in want.items() if decoded.get(k, 0) < n}


def _reached(glass: Glass, want: dict[str, int]) -> bool:
    return not _missing(glass, want)


def _describe_missing(glass: Glass, want: dict[str, int]) -> str:
    return f"{glass.name} decoding {want}: still missing {_missing(glass, want)}"


def _has_members(glass: Glass, n: int) -> bool:
    return len(leaves_of(glass)) == n


def _shown_code(glass: Glass) -> str:
    return normalise_code(glass.page.locator("#security-code").text_content())


def _shows_code(glass: Glass, code: str) -> bool:
    return _shown_code(glass) == code


def _latency_summary(by_key: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """min / median / max and count of each key's latency samples (ms)."""
    out: dict[str, dict[str, float]] = {}
    for key, samples in sorted(by_key.items()):
        if samples:
            ordered = sorted(samples)
            out[key] = {"n": len(ordered), "min": ordered[0],
                        "median": ordered[len(ordered) // 2], "max": ordered[-1]}
    return out


def _screenshots(glasses: tuple[Glass, ...], what: str) -> dict[str, Path]:
    """test-artifacts/<what>-<name>.png of each page."""
    shots: dict[str, Path] = {}
    for glass in glasses:
        path = shots[f"{what}-{glass.name}"] = ARTIFACTS / f"{what}-{glass.name}.png"
        snap(glass.page, path)
    return shots


def _open_chat(page: Page) -> None:
    if not page.locator("#chat-input").is_visible():
        page.locator("#toggle-chat").click()
    expect(page.locator("#chat-input")).to_be_visible()


def test_two_browsers_and_a_headless_participant(tmp_path: Path) -> None:
    """Alice (browser, host) admits Bob (browser) and Carol (Python) from her page's lobby.
    Each browser decodes >= 60 video and >= 100 audio frames from each other member;
    chat goes both ways between the pages and Carol; both pages show Carol's security
    code and an "encrypted" padlock; after Carol leaves both show the same new code and
    Alice's page decodes >= 30 frames of Bob's screen share. Every request either browser
    made (pages and their workers, page- and context-level) and every WebSocket went to its
    own engine's 127.0.0.1 origin (or its launcher file); none to a third party, and no
    service worker. Screenshots of the meeting
    go to test-artifacts/ (lobby-*.png, meeting-*.png, screen-share-*.png), with a summary of
    counts and timings in test-artifacts/browser-meeting.json."""
    procs = Processes()
    glasses: list[Glass] = []
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def mark(what: str) -> None:
        timings[what] = round(time.monotonic() - t0, 2)

    carol_report = tmp_path / "carol.json"
    try:
        with sync_playwright() as pw:
            relay = procs.relay()
            alice_engine = procs.engine("alice", "meet", "--relay", relay, "--name", "Alice")
            invitation, info_url = alice_engine.invitation, alice_engine.info_url
            assert invitation is not None and info_url is not None
            link = parse_link(invitation)
            relay_netloc = relay.split("://", 1)[1]
            assert invitation.startswith(f"clave://{relay_netloc}/m/{link.room_id}#")
            assert info_url == f"{relay}/m/{link.room_id}"  # the page for invitees: no secret
            assert b64url_encode(link.secret) not in info_url + alice_engine.url
            assert alice_engine.url.startswith("file:///")
            assert alice_engine.launcher.stat().st_mode & 0o777 == 0o600

            # Alice hosts from her browser, opened on her engine's launcher file; the
            # one-time token leaves the address bar at once.
            alice = launch_glass(pw, "alice", tmp_path)
            glasses.append(alice)
            join_meeting(alice, alice_engine.url, "Alice")
            assert alice.page.url == f"{alice_engine.origin}/"
            wait_in_meeting(alice)
            mark("alice in meeting")

            # Bob pastes the invitation into `clave join` and asks to join from his
            # browser; he waits in the lobby: the browser-mode host does not admit
            # automatically. Alice admits him by clicking.
            bob_engine = procs.engine("bob", "join", "--name", "Bob", invitation=invitation)
            assert bob_engine.meeting == f"meeting: room {link.room_id} on relay {relay_netloc}"
            bob = launch_glass(pw, "bob", tmp_path)
            glasses.append(bob)
            join_meeting(bob, bob_engine.url, "Bob")
            bob.page.wait_for_function("() => window.claveStats.phase === 'lobby'")
            expect(alice.page.locator("#lobby li", has_text="Bob")).to_be_visible(timeout=15_000)
            assert bob.stats()["phase"] == "lobby"
            assert bob.stats()["padlock"] == "not_encrypted"
            ARTIFACTS.mkdir(exist_ok=True)
            shots = _screenshots((alice, bob), "lobby")
            admit(alice, "Bob")
            wait_in_meeting(bob)
            mark("bob admitted")

            # Carol, a headless Python participant; admitted through Alice's page too.
            carol = procs.start(
                "carol", "join", "--headless", "--name", "Carol", "--duration", "120",
                "--chat", CAROL_SAYS, "--report", str(carol_report), stdin=invitation + "\n",
            )
            admit(alice, "Carol", timeout=25)
            carol_code = normalise_code(carol.wait_line(JOINED, timeout=20).group(1))
            mark("carol admitted")

            # Everyone knows everyone, and both browsers show Carol's security code.
            for glass in (alice, bob):
                wait_for(partial(_has_members, glass, 3), 15, f"{glass.name}: 3 members")
            leaf = leaves_of(alice)
            assert leaves_of(bob) == leaf and set(leaf) == {"Alice", "Bob", "Carol"}
            for glass in (alice, bob):
                wait_for(partial(_shows_code, glass, carol_code), 15,
                         f"{glass.name} showing Carol's security code {carol_code}")

            # Media: each browser decodes each other participant's video and audio.
            want = {
                alice: {f"{leaf[p]}:{k}": n for p in ("Bob", "Carol")
                        for k, n in (("video", MIN_VIDEO), ("audio", MIN_AUDIO))},
                bob: {f"{leaf[p]}:{k}": n for p in ("Alice", "Carol")
                      for k, n in (("video", MIN_VIDEO), ("audio", MIN_AUDIO))},
            }
            for glass, targets in want.items():
                wait_for(partial(_reached, glass, targets), MEDIA_TIMEOUT,
                         partial(_describe_missing, glass, targets))
            mark("media thresholds reached")
            decoded_at_threshold = {g.name: g.decoded() for g in (alice, bob)}

            # Chat: Alice's message reaches Bob's page (and Carol, checked in her report);
            # Carol's reaches both pages.
            _open_chat(alice.page)
            alice.page.locator("#chat-input").fill(ALICE_SAYS)
            alice.page.locator("#chat-send").click()
            for glass in (alice, bob):
                expect(glass.page.locator("#chat-log")).to_contain_text(ALICE_SAYS, timeout=10_000)
                expect(glass.page.locator("#chat-log")).to_contain_text(CAROL_SAYS, timeout=10_000)
            assert any(c["text"] == ALICE_SAYS and c["name"] == "Alice"
                       for c in bob.stats()["chats"])
            mark("chats delivered")

            # The padlock says encrypted in both pages.
            for glass in (alice, bob):
                padlock = glass.page.locator("#padlock")
                expect(padlock).to_have_text(ENCRYPTED_LABEL)
                expect(padlock).to_have_attribute("data-state", "encrypted")

            # Membership unchanged since Carol joined: the codes are still the same.
            codes = {g.name: _shown_code(g) for g in (alice, bob)}
            assert codes == {"alice": carol_code, "bob": carol_code}
            assert all(normalise_code(g.stats()["securityCode"]) == carol_code
                       for g in (alice, bob))
            shots.update(_screenshots((alice, bob), "meeting"))

            # Carol leaves (her report is written on the way out). The screen share
            # below runs between the two browsers only: the fake screen is 1920x1080,
            # and its software VP8 encoding and decoding on top of three camera streams,
            # Carol's PyAV decoding included, is more than this 2-core machine keeps up with.
            carol.stop(15)
            mark("carol stopped")
            report: dict[str, Any] = json.loads(carol_report.read_text())
            for glass in (alice, bob):
                wait_for(partial(_has_members, glass, 2), 15, f"{glass.name}: 2 members")
            wait_for(lambda: _shown_code(alice) == _shown_code(bob) != carol_code, 15,
                     "a new security code, the same in both browsers")

            # Bob shares his screen; Alice's browser decodes it.
            bob.page.locator("#toggle-screen").click()
            expect(bob.page.locator("#toggle-screen")).to_have_attribute("aria-pressed", "true")
            screen_key = f"{leaf['Bob']}:screen"
            screen_trace: list[tuple[float, int, int, dict[str, int]]] = []

            def screen_decoded() -> bool:
                seen = alice.stats()
                n: int = seen["decoded"].get(screen_key, 0)
                sent = bob.stats()["encoder"].get("screen", {})
                screen_trace.append((round(time.monotonic() - t0, 1), n, seen["lagSkips"], sent))
                return n >= MIN_SCREEN

            wait_for(screen_decoded, MEDIA_TIMEOUT,
                     lambda: f"Alice decoding Bob's screen: {screen_trace}", step=0.5)
            mark("screen share decoded")
            screen_tile = alice.page.locator(f'[data-tile="s:{leaf["Bob"]}"]')
            expect(screen_tile).to_be_visible()
            expect(screen_tile).to_contain_text("Bob is presenting")
            shots.update(_screenshots((alice, bob), "screen-share"))
            final = {g.name: g.stats() for g in (alice, bob)}

            # No third-party requests: every request each browser made (its pages and their
            # workers) and every WebSocket went to its own engine on 127.0.0.1.
            for glass, engine in ((alice, alice_engine), (bob, bob_engine)):
                glass.traffic.assert_only(engine.origin, engine.url)
                assert set(glass.traffic.websockets) == {f"ws://127.0.0.1:{engine.port}/ws"}
            traffic = {g.name: len(g.traffic.page_requests) for g in (alice, bob)}
    finally:
        for glass in glasses:
            glass.close()
        procs.stop_all()

    assert report["joined"] is True
    assert normalise_code(report["security_codes"][-1][1]) == carol_code
    assert ["Alice", ALICE_SAYS] in report["chats"]
    for name in ("Alice", "Bob"):
        got = report["decoded"].get(name, {})
        assert got.get("video", 0) >= MIN_VIDEO and got.get("audio", 0) >= MIN_AUDIO, report
    for name, stats in final.items():
        decoded = sum(v for v in stats["decoded"].values() if isinstance(v, int))
        assert_frame_failures(name, stats["frameFailures"], decoded)
        assert stats["padlock"] == "encrypted"

    summary = {
        "timings_s": timings,
        "decoded_at_threshold": decoded_at_threshold,
        "decoded_final": {n: s["decoded"] for n, s in final.items()},
        "leaves": leaf,
        "security_code": carol_code,
        "carol_decoded": report["decoded"],
        "carol_frames_rejected": report["frames_rejected"],
        "screenshots": {n: str(p) for n, p in shots.items()},
        "lag_skips": {n: s.get("lagSkips") for n, s in final.items()},
        "keyframe_requests_sent": {n: s.get("keyframeRequestsSent") for n, s in final.items()},
        "screen_trace": screen_trace,
        "audio_jitter": {n: s.get("audio") for n, s in final.items()},
        "latency_ms_recent": {n: _latency_summary(s.get("latencyByKey", {}))
                              for n, s in final.items()},
        "carol_video_latency_ms": _latency_summary({"video": report["latencies_ms"]}),
        "requests_recorded": traffic,
    }
    (ARTIFACTS / "browser-meeting.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


# ---------------------------------------------------------------- cross-origin WebSocket

PROBE_PAGE = """<!doctype html><meta charset="utf-8"><title>probe</title><script>
window.probe = null;
const ws = new WebSocket('ws://127.0.0.1:%d/ws');
ws.onopen = () => { window.probe = {opened: true}; ws.close(); };
ws.onclose = (ev) => { if (!window.probe) window.probe = {opened: false, code: ev.code}; };
</script>"""


class _ProbeServer(http.server.ThreadingHTTPServer):
    target_port = 0
    cookies: list[str]


class _ProbeHandler(http.server.BaseHTTPRequestHandler):
    server: _ProbeServer

    def do_GET(self) -> None:
        self.server.cookies.append(self.headers.get("Cookie", ""))
        body = (PROBE_PAGE % self.server.target_port).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _WsWatch:
    """The WebSocket handshake errors Chromium reports for one page (DevTools protocol)."""

    def __init__(self, cdp: CDPSession) -> None:
        self.errors: list[str] = []
        cdp.on("Network.webSocketFrameError", lambda p: self.errors.append(p["errorMessage"]))
        cdp.send("Network.enable")


def _probe(page: Page, url: str) -> dict[str, Any]:
    page.goto(url)
    page.wait_for_function("() => window.probe !== null", timeout=10_000)
    result: dict[str, Any] = page.evaluate("() => window.probe")
    return result


@contextlib.contextmanager
def _probe_server(target_port: int) -> Iterator[_ProbeServer]:
    """An HTTP server on another port of 127.0.0.1 serving the probe page."""
    server = _ProbeServer(("127.0.0.1", 0), _ProbeHandler)
    server.target_port = target_port
    server.cookies = []
    thread = threading.Thread(target=server.serve_forever, name="probe-http", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_pages_of_other_origins_cannot_open_the_glass_socket(tmp_path: Path) -> None:
    """A page on another port of 127.0.0.1, which the browser treats as the same *site* and
    sends the engine's token cookie to, is refused the engine's WebSocket (403: its Origin
    is foreign); so is a page at http://localhost; a data: page cannot even reach it."""
    procs = Processes()
    glass: Glass | None = None
    stack = contextlib.ExitStack()
    try:
        with sync_playwright() as pw:
            engine = procs.engine("engine", "meet", "--name", "Ada")
            server = stack.enter_context(_probe_server(engine.port))
            glass = launch_glass(pw, "ada", tmp_path)
            page = glass.page

            # The real page, opened through the launcher file: it gets the session cookie,
            # and its glass connects.
            open_glass(page, engine.url)
            expect(page.locator("#join")).to_be_enabled(timeout=15_000)
            cookie_name = f"clave_t_{engine.port}"
            assert any(c["name"] == cookie_name for c in glass.context.cookies())
            glass.traffic.assert_only(engine.origin, engine.url)

            # Close it: the engine now waits for a glass (no second-glass 409 is possible;
            # the engine checks Origin before that anyway).
            hostile = glass.context.new_page()
            watch = _WsWatch(glass.context.new_cdp_session(hostile))
            page.close()
            time.sleep(0.5)

            # Another port of 127.0.0.1: same site, so the browser does send the token cookie
            # there (the probe server sees it), yet the engine refuses its Origin.
            same_site = f"http://127.0.0.1:{server.server_address[1]}/probe"
            assert _probe(hostile, same_site) == {"opened": False, "code": 1006}
            assert any(cookie_name in c for c in server.cookies), server.cookies
            wait_for(lambda: watch.errors, 5, "the handshake error")
            assert watch.errors[-1].endswith("Unexpected response code: 403"), watch.errors

            # http://localhost: another site (no cookie), refused the same way.
            other_site = f"http://localhost:{server.server_address[1]}/probe"
            assert _probe(hostile, other_site) == {"opened": False, "code": 1006}
            wait_for(lambda: len(watch.errors) >= 2, 5, "the second handshake error")
            assert watch.errors[-1].endswith("Unexpected response code: 403"), watch.errors

            # A data: page (opaque origin): Chromium's local network access checks stop it
            # before the engine is even asked; it must not open either.
            assert _probe(hostile, "data:text/html," + PROBE_PAGE % engine.port)["opened"] is False

            # Positive control for the request recording the meeting test relies on: the
            # probes' requests are recorded, and as requests to other origins.
            foreign = glass.traffic.foreign(engine.origin, engine.url)
            assert f"request {same_site}" in foreign, foreign
            assert f"request {other_site}" in foreign, foreign
            # Their WebSockets, to the engine's own port, are recorded too (and refused).
            probe_ws = f"ws://127.0.0.1:{engine.port}/ws"
            assert glass.traffic.websockets.count(probe_ws) >= 3, glass.traffic.websockets

            # The engine is still there for its own page: the launcher's token is spent,
            # and the session cookie serves the page at its address.
            again = glass.context.new_page()
            again.goto(engine.url)
            expect(again.locator("body")).to_contain_text("already used", timeout=15_000)
            again.goto(f"{engine.origin}/")
            assert PAGE_URL.match(again.url)
            expect(again.locator("#join")).to_be_enabled(timeout=15_000)
            expect(again.locator("#prejoin-screen")).to_be_visible()
    finally:
        if glass is not None:
            glass.close()
        stack.close()
        procs.stop_all()
