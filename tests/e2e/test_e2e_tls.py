"""Meetings of real processes on a relay that serves TLS itself.

1. ``clave serve --tls-cert --tls-key`` with a certificate from a throwaway CA; the
   host (``clave meet --headless --relay https://NAME:PORT``) and the guest (``clave
   join --headless``, invitation on standard input) trust that CA through
   ``SSL_CERT_FILE`` in their environment, as they would the system store.
2. ``clave serve --self-signed``: the members trust nothing but the fingerprint the
   relay printed (``--relay-fingerprint``); the certificate names neither the host
   name they use nor any CA they know.

Each run must decode media both ways. ``NAME`` is a name of this machine that an
invitation does not treat as loopback (a loopback relay is always reached without
TLS), resolving to an address the relay binds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from clave_process import Proc
from e2e_helpers import run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "relay"))
from tls_helpers import TestCA, reachable_name

from clave.cli.serve import FINGERPRINT_LINE
from clave.meeting.link import parse_link

pytestmark = pytest.mark.slow

GUEST_S = 6.0
"""The guest's --duration: it leaves by itself, then the host is stopped."""
BACKSTOP_S = 60.0
MIN_VIDEO = 30
MIN_AUDIO = 50
Report = dict[str, Any]


@dataclass
class Outcome:
    reports: dict[str, Report]
    relay_lines: list[str]
    relay_stderr: str
    invitation: str
    fingerprint: str | None
    """What a ``--self-signed`` relay printed (None: a CA-signed relay)."""


@pytest.fixture(scope="module")
def machine() -> tuple[str, str]:
    found = reachable_name()
    if found is None:
        pytest.skip("this machine has no non-loopback name or address to reach itself by")
    return found


@pytest.fixture
def no_cert_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Child processes inherit this environment: no CA bundle of the caller's."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    yield monkeypatch


async def _meeting(tmp: Path, address: str, name: str, relay_tls: list[str]) -> Outcome:
    """Relay, host, guest. With ``--self-signed`` the members pin the fingerprint the
    relay printed: the host as printed, the guest as bare lower-case hex."""
    procs: list[Proc] = []

    async def start(who: str, *args: str, stdin: str | None = None) -> Proc:
        p = await Proc.spawn(who, tmp, *args, stdin=stdin)
        procs.append(p)
        return p

    pins: dict[str, list[str]] = {"host": [], "guest": []}
    fingerprint = None

    def member(who: str) -> list[str]:
        return ["--headless", "--name", who, "--report", f"{who}.json", *pins[who]]

    try:
        relay = await start("relay", "serve", "--host", address, "--port", "0", *relay_tls)
        if "--self-signed" in relay_tls:
            fingerprint = await relay.expect(FINGERPRINT_LINE)
            bare = fingerprint.removeprefix("sha256:").replace(":", "").lower()
            pins = {"host": ["--relay-fingerprint", fingerprint],
                    "guest": ["--relay-fingerprint", bare]}  # fmt: skip
        ready = await relay.expect("relay listening on ")
        port = urlsplit(ready).port
        assert ready == f"https://{address}:{port}", ready
        url = f"https://{name}:{port}"
        host = await start("host", "meet", "--relay", url, *member("host"),
                           "--duration", str(BACKSTOP_S))  # fmt: skip
        invitation = await host.expect("invitation: ")
        assert parse_link(invitation).base_url == url
        await host.expect("joined as ")
        guest = await start("guest", "join", *member("guest"), "--duration", str(GUEST_S),
                            stdin=invitation)  # fmt: skip
        await guest.expect("joined as ")
        await guest.finish(GUEST_S + 30)
        host.terminate()
        await host.finish(20)
        relay.terminate()
        await relay.finish(15)
    finally:
        for p in procs:
            await p.kill()
    reports = {who: json.loads((tmp / f"{who}.json").read_text()) for who in ("host", "guest")}
    stderr = relay.stderr.read_text(errors="replace")
    return Outcome(reports, relay.lines, stderr, invitation, fingerprint)


def _assert_media_both_ways(outcome: Outcome) -> None:
    reports = outcome.reports
    for receiver, sender in (("host", "guest"), ("guest", "host")):
        r = reports[receiver]
        assert r["joined"], receiver
        assert r["frames_rejected"] == 0 and r["media_errors"] == [], (receiver, r)
        got = r["decoded"].get(sender, {})
        assert got.get("video", 0) >= MIN_VIDEO, f"{receiver} from {sender}: {got}"
        assert got.get("audio", 0) >= MIN_AUDIO, f"{receiver} from {sender}: {got}"
    secret = outcome.invitation.partition("#")[2]
    assert secret and secret not in "\n".join(outcome.relay_lines) + outcome.relay_stderr


def test_a_meeting_on_a_relay_with_a_ca_signed_certificate(
    tmp_path: Path, machine: tuple[str, str], no_cert_env: pytest.MonkeyPatch
) -> None:
    name, address = machine
    ca = TestCA(tmp_path)
    issued = ca.issue("relay", [name, address])
    no_cert_env.setenv("SSL_CERT_FILE", str(ca.pem))  # every member trusts the test CA
    relay_tls = ["--tls-cert", str(issued.cert), "--tls-key", str(issued.key)]
    outcome = run(_meeting(tmp_path, address, name, relay_tls), timeout=120)
    _assert_media_both_ways(outcome)
    assert outcome.relay_lines[0].startswith("relay listening on https://")


def test_a_meeting_on_a_self_signed_relay_pinned_by_fingerprint(
    tmp_path: Path, machine: tuple[str, str], no_cert_env: pytest.MonkeyPatch
) -> None:
    """Nothing but the pin is trusted: no CA bundle, and the certificate does not name
    the host name the members use."""
    name, address = machine
    outcome = run(_meeting(tmp_path, address, name, ["--self-signed"]), timeout=120)
    _assert_media_both_ways(outcome)
    assert outcome.fingerprint is not None
    assert outcome.relay_lines[0] == FINGERPRINT_LINE + outcome.fingerprint
    assert len(outcome.fingerprint) == len("sha256:") + 32 * 3 - 1
