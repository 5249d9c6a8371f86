"""Attack 1: the relay reads the meeting through its own landing page.

With the old ``https://HOST/m/ROOM#SECRET`` invitation, the relay's landing page got
the secret in ``location.hash``: a relay operator who changed that page's script read
it in one navigation, and with it every join request and the meeting itself. Now the
invitation is a ``clave://`` link opened by the invitee's own engine, and the relay's
page for a room (``http://HOST/m/ROOM``) holds no secret (docs/SECURITY.md,
"Invitations").

A *hostile* relay (:mod:`hostile_relay`: the real relay application, its landing
page replaced by one whose script sends the relay everything a page can read, again
and again, and a recorder of every byte it receives) carries a meeting while a user
follows the documented steps in real Chromium:

1. Hedy runs ``clave meet --no-browser --relay HOSTILE`` and opens her meeting page
   through the printed launcher file. She sends Grace the two lines her engine printed
   for invitees: ``invitation: clave://…`` and ``web page for invitees (no secret):
   http://…/m/ROOM`` (the test hands Grace exactly those lines).
2. Grace opens the web page in her browser: the hostile script runs (and reports that
   it did: the positive control).
3. Grace opens the invitation: in her browser (headless Chromium cannot start an
   external handler; the navigation is aborted and reaches no server) and through
   ``clave open URL``, which is what the ``clave:`` handler runs; her engine joins the
   meeting and prints its launcher, which she opens in a new tab while the hostile page
   stays open in the first.
4. Hedy admits Grace from her lobby; video, audio and chat flow both ways and both
   pages show the same security code.

Then everything the relay holds (each HTTP request: method, target, headers, body;
each WebSocket message either way, unmasked; the raw bytes of every connection) is
searched for the link secret (raw, base64url, base64, hex), the join key, the
invitation and its fragment, the chat and the names. None may be there. The access
token may, but only inside ``Enter`` messages (the relay needs it to admit
connections). The ``old-https-link`` case feeds the same page the old invitation
(``http://HOST/m/ROOM#SECRET``) and shows the same audit catching the secret, from
which the relay derives the room's access token and join key: the attack as it was.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from browser_helpers import (
    ARTIFACTS,
    PAGE_URL,
    Glass,
    Processes,
    admit,
    join_meeting,
    launch_glass,
    leaves_of,
    new_tab,
    normalise_code,
    snap,
    wait_for,
    wait_in_meeting,
)
from hostile_relay import EXFIL_PATH, HostileRelay
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright

from clave.meeting.keys import access_token, join_key
from clave.meeting.link import MeetingLink, b64url_decode, b64url_encode, parse_link
from clave.wire import CONTROL, Enter, WireError, decode_client, room_id_for_token, split_frame

pytestmark = [pytest.mark.slow]

HOST_NAME = "Hedy Lamarr"
GUEST_NAME = "Grace Hopper"
MIN_VIDEO = 30
MIN_AUDIO = 50
MEDIA_TIMEOUT = 45.0
FIRST_STAGES = {"load", "clipboard", "websocket"}
"""Reports the hostile script sends on its own once the page is open."""
CHANNELS = {"fetch", "beacon", "img"}
"""How it sends each report over HTTP (and over a WebSocket to /ws)."""
CLAVE_URL = {"a clave: URL": b"clave://", "a clave: URL (percent-encoded)": b"clave%3a%2f%2f"}



# ---------------------------------------------------------------- what must not leak


def secret_forms(link: MeetingLink) -> dict[str, bytes]:
    """Every spelling of what only invitees may know."""
    secret, key = link.secret, join_key(link.secret)
    fragment = link.url.split("#", 1)[1]
    return {
        "secret (raw)": secret,
        "secret (base64url)": b64url_encode(secret).encode(),
        "secret (base64)": base64.b64encode(secret).rstrip(b"="),
        "secret (hex)": secret.hex().encode(),
        "secret (HEX)": secret.hex().upper().encode(),
        "invitation fragment": fragment.encode(),
        "invitation": link.url.encode(),
        "invitation (percent-encoded)": quote(link.url, safe="").encode(),
        "join key (raw)": key,
        "join key (base64url)": b64url_encode(key).encode(),
        "join key (hex)": key.hex().encode(),
    }


def token_forms(link: MeetingLink) -> dict[str, bytes]:
    token = link.access_token
    return {
        "access token (raw)": token,
        "access token (base64url)": b64url_encode(token).encode(),
        "access token (hex)": token.hex().encode(),
    }


def find(haystacks: list[tuple[str, bytes]], needles: dict[str, bytes]) -> list[tuple[str, str]]:
    """``(needle name, where)`` for every needle found in every haystack."""
    return [(name, where) for where, hay in haystacks for name, needle in needles.items()
            if needle in hay]


def is_enter(message: bytes) -> bool:
    """A client's ``Enter`` control message (which carries the room's access token)."""
    try:
        channel, body = split_frame(message)
        return channel == CONTROL and isinstance(decode_client(body), Enter)
    except WireError:
        return False


def token_outside_enter(relay: HostileRelay, link: MeetingLink) -> tuple[int, list[str]]:
    """How many ``Enter`` messages carried the access token, and where else any form of
    it was found (must be nowhere)."""
    to_relay, _ = relay.ws_messages()
    enter_ids = {f"ws client->relay #{i}" for i, m in enumerate(to_relay) if is_enter(m)}
    found = find(relay.haystacks(), token_forms(link))
    entered = {where for name, where in found if where in enter_ids and name.endswith("(raw)")}
    elsewhere = [f"{name} in {where}" for name, where in found if where not in enter_ids]
    return len(entered), elsewhere


# ---------------------------------------------------------------- the page and the meeting


def max_seq(relay: HostileRelay) -> int:
    return max((int(r.get("seq", -1)) for r in relay.full_reports()), default=-1)


def _missing(glass: Glass, want: dict[str, int]) -> dict[str, tuple[int, int]]:
    decoded = glass.decoded()
    return {k: (decoded.get(k, 0), n) for k, n in want.items() if decoded.get(k, 0) < n}


def _decoded_all(glass: Glass, want: dict[str, int]) -> bool:
    return not _missing(glass, want)


def _describe_missing(glass: Glass, want: dict[str, int]) -> str:
    return f"{glass.name} decoding {want}: still missing {_missing(glass, want)}"


def _shown_code(glass: Glass) -> str:
    return normalise_code(glass.page.locator("#security-code").text_content())


def _send_chat(page: Page, text: str) -> None:
    if not page.locator("#chat-input").is_visible():
        page.locator("#toggle-chat").click()
    expect(page.locator("#chat-input")).to_be_visible()
    page.locator("#chat-input").fill(text)
    page.locator("#chat-send").click()


@pytest.mark.parametrize(
    "invitee_opens",
    [
        pytest.param("documented", id="documented-flow"),
        pytest.param("old-https-link", id="old-https-link-positive-control"),
    ],
)
def test_the_relay_reads_the_meeting_through_its_own_landing_page(
    invitee_opens: str, tmp_path: Path
) -> None:
    """``documented-flow``: the hostile page runs, reports to the relay, and the relay
    never receives the secret, the join key, the invitation, the chat or the names,
    while Grace is admitted and media and chat flow. ``old-https-link-positive-control``:
    the same page given the old ``http://HOST/m/ROOM#SECRET`` link hands the relay the
    secret (the attack as it was, and proof the audit would see a leak)."""
    old_design = invitee_opens == "old-https-link"
    marker = f"hostile-{uuid.uuid4().hex}"
    relay = HostileRelay(marker)
    procs = Processes()
    glasses: list[Glass] = []
    ARTIFACTS.mkdir(exist_ok=True)
    summary: dict[str, Any] = {"case": invitee_opens}
    host_says = f"from Hedy's page {uuid.uuid4().hex[:8]}"
    guest_says = f"from Grace's page {uuid.uuid4().hex[:8]}"
    try:
        base = relay.start()
        with sync_playwright() as pw:
            # 1. Hedy creates the meeting; her engine prints what she sends to Grace.
            hedy_engine = procs.engine("hedy", "meet", "--relay", base, "--name", HOST_NAME)
            invitation, info_url = hedy_engine.invitation, hedy_engine.info_url
            assert invitation is not None and info_url is not None
            link = parse_link(invitation)
            assert info_url == f"{base}/m/{link.room_id}"
            shared = [f"invitation: {invitation}",
                      f"web page for invitees (no secret): {info_url}"]
            assert all(line in hedy_engine.proc.lines for line in shared)
            if not old_design:  # Hedy joins her meeting, from her launcher file
                hedy = launch_glass(pw, "hedy", tmp_path)
                glasses.append(hedy)
                join_meeting(hedy, hedy_engine.url, HOST_NAME)
                wait_in_meeting(hedy)

            # 2. Grace opens the web page in her browser: the hostile script runs.
            grace_browser = launch_glass(pw, "grace", tmp_path)
            glasses.append(grace_browser)
            landing = grace_browser.page
            if old_design:
                # What a click on the old invitation did: the secret in the fragment.
                landing.goto(f"{info_url}#{b64url_encode(link.secret)}")
            else:
                landing.goto(info_url)

            def reported() -> bool:
                to_relay, _ = relay.ws_messages()
                return (relay.stages() >= FIRST_STAGES and reported_by() == CHANNELS
                        and any(marker.encode() in m for m in to_relay))

            def reported_by() -> set[str]:
                return {channel for channel, _ in relay.reports()}

            wait_for(reported, 20, lambda: f"the hostile script's first reports: stages "
                     f"{relay.stages()}, channels {reported_by()}")
            # Its status bar (for the screenshot) once the clipboard attempt is settled.
            expect(landing.locator("#hostile-status")).to_contain_text(
                re.compile(r"clipboard: (?!not read yet)")
            )
            shot = "hostile-landing-page" + ("-old-https-link" if old_design else "")
            landing.screenshot(path=str(ARTIFACTS / f"{shot}.png"))

            # Positive control: the script ran in Grace's browser, read the page's
            # address and told the relay, through every channel.
            load = relay.full_reports("load")
            assert load, relay.reports()
            assert all(r["marker"] == marker for r in load)
            assert {r["data"]["href"] for r in load} == {landing.url}
            # (and it reached the relay by fetch, beacon, image and WebSocket: reported())
            clipboard = relay.full_reports("clipboard")[0]["extra"]
            summary["clipboard_read"] = clipboard

            if old_design:
                leaks = find(relay.haystacks(), secret_forms(link))
                assert any(name == "secret (base64url)" for name, _ in leaks), leaks
                # The relay now holds what opens the room and the join requests.
                stolen = b64url_decode(load[0]["data"]["hash"][1:], 32, "stolen secret")
                assert stolen == link.secret
                assert room_id_for_token(access_token(stolen)) == link.room_id
                assert join_key(stolen) == join_key(link.secret)
                summary["leaks"] = sorted({name for name, _ in leaks})
                summary["leak_places"] = len(leaks)
                return

            assert {r["data"]["hash"] for r in load} == {""}
            assert not (clipboard.get("ok") and clipboard.get("text")), clipboard

            # 3. Grace opens the invitation. Her browser does not hand clave:// to any
            # server (headless Chromium has no external handler: aborted, page unchanged);
            # the hostile page stays open and keeps reporting, and never sees it.
            seq_before, requests_before = max_seq(relay), len(relay.http)
            with pytest.raises(PlaywrightError) as refused:
                landing.goto(invitation)
            assert "ERR_ABORTED" in str(refused.value)
            assert landing.url == info_url
            wait_for(lambda: max_seq(relay) >= seq_before + 3, 20,
                     "three more reports from the hostile page after the clave:// navigation")
            summary["stages_after_clave_navigation"] = sorted(
                {r["stage"] for r in relay.full_reports() if r["seq"] > seq_before}
            )
            # Since the navigation, the relay got the hostile page's reports and nothing else.
            since = relay.http[requests_before:]
            assert [r.target for r in since if not r.path.startswith(EXFIL_PATH + "/")] == []
            assert find(relay.haystacks(lowercase=True), CLAVE_URL) == []

            # The engine opens it: `clave open URL`, as the clave: handler does.
            grace_engine = procs.open_invitation("grace-engine", invitation)
            assert grace_engine.meeting == f"meeting: room {link.room_id} on relay {link.netloc}"
            assert b64url_encode(link.secret) not in grace_engine.proc.output

            # Grace opens her engine's launcher in a new tab; the hostile page stays open.
            grace = new_tab(grace_browser, "grace-meeting")
            glasses.append(grace)
            join_meeting(grace, grace_engine.url, GUEST_NAME)
            assert PAGE_URL.match(grace.page.url) and grace.page.url == f"{grace_engine.origin}/"
            grace.page.wait_for_function("() => window.claveStats.phase === 'lobby'")

            # 4. Hedy admits Grace from her lobby.
            admit(hedy, GUEST_NAME)
            wait_in_meeting(grace)
            wait_for(lambda: len(leaves_of(hedy)) == 2 and len(leaves_of(grace)) == 2, 15,
                     "both pages listing both members")
            leaf = leaves_of(hedy)
            assert leaves_of(grace) == leaf and set(leaf) == {HOST_NAME, GUEST_NAME}

            # Media both ways, counted at the decoders.
            for glass, other in ((hedy, GUEST_NAME), (grace, HOST_NAME)):
                want = {f"{leaf[other]}:video": MIN_VIDEO, f"{leaf[other]}:audio": MIN_AUDIO}
                wait_for(partial(_decoded_all, glass, want), MEDIA_TIMEOUT,
                         partial(_describe_missing, glass, want))

            # Chat both ways.
            _send_chat(hedy.page, host_says)
            _send_chat(grace.page, guest_says)
            for glass in (hedy, grace):
                log = glass.page.locator("#chat-log")
                expect(log).to_contain_text(host_says, timeout=10_000)
                expect(log).to_contain_text(guest_says, timeout=10_000)

            # The same security code in both pages, and the padlock says encrypted.
            wait_for(lambda: _shown_code(hedy) == _shown_code(grace) != "—", 15,
                     "the same security code in both pages")
            code = _shown_code(hedy)
            for glass in (hedy, grace):
                expect(glass.page.locator("#padlock")).to_have_attribute("data-state",
                                                                         "encrypted")
            snap(grace.page, ARTIFACTS / "hostile-relay-guest-meeting.png")
            snap(hedy.page, ARTIFACTS / "hostile-relay-host-meeting.png")

            # The hostile page was open all along, still reporting.
            seq_in_meeting = max_seq(relay)
            wait_for(lambda: max_seq(relay) >= seq_in_meeting + 2, 20,
                     "the hostile page still reporting during the meeting")
            final = {g.name: g.stats() for g in (hedy, grace)}
            summary.update(
                security_code=code,
                decoded={n: s["decoded"] for n, s in final.items()},
                leaves=leaf,
            )
    finally:
        for glass in reversed(glasses):
            glass.close()
        procs.stop_all()
        relay.stop()
        summary["http_requests"] = len(relay.http)
        summary["reports"] = len(relay.reports())
        summary["stages"] = sorted(relay.stages())
        if relay.proxy is not None:
            to_relay, from_relay = relay.ws_messages()
            summary["ws_messages"] = {"to_relay": len(to_relay), "from_relay": len(from_relay)}
            summary["bytes_recorded"] = sum(len(h) for _, h in relay.haystacks())
        name = "hostile-relay" + ("-old-https-link" if old_design else "")
        (ARTIFACTS / f"{name}.json").write_text(json.dumps(summary, indent=1, default=str))

    # The audit, once everything stopped: nothing only invitees and members may know.
    haystacks = relay.haystacks()
    assert len(haystacks) > 100 and sum(len(h) for _, h in haystacks) > 100_000
    leaks = find(haystacks, secret_forms(link))
    assert leaks == [], leaks
    assert find(relay.haystacks(lowercase=True), CLAVE_URL) == []
    private = {"chat (host)": host_says.encode(), "chat (guest)": guest_says.encode(),
               "name (host)": HOST_NAME.encode(), "name (guest)": GUEST_NAME.encode()}
    assert find(haystacks, private) == []
    # The access token: only in Enter messages (Hedy's and Grace's engines), nowhere else.
    entered, elsewhere = token_outside_enter(relay, link)
    assert entered >= 2 and elsewhere == [], (entered, elsewhere)
    for name, stats in final.items():
        assert stats["frameFailures"] == [], (name, stats["frameFailures"])
        assert stats["padlock"] == "encrypted", name
