"""The `clave` command: the offline self-check, and the demo meeting on an embedded relay."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from clave.cli import main
from clave.engine.demo import MIN_PER_PAIR
from clave.selfcheck import run


def test_selfcheck_passes_every_step() -> None:
    lines: list[str] = []
    assert run(lines.append)
    checks = [line for line in lines if line.strip().startswith("[")]
    assert len(checks) == 9
    assert all("[ok]" in line for line in checks), lines


def test_cli_selfcheck_exit_status() -> None:
    assert main(["selfcheck"]) == 0


def _demo_output(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["demo", "--seconds", "4"]) == 0
    return capsys.readouterr().out


def test_cli_demo_meeting_passes(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's main job: three participants, media both ways, relay blind; and the
    output shows that every check had something to check."""
    out = _demo_output(capsys)
    assert re.search(
        r"^link:  clave://127\.0\.0\.1:\d+/m/[\w-]{22}#[\w-]{43}\.[\w-]{22}$", out, re.M
    )
    checks = [line.strip() for line in out.splitlines() if line.strip().startswith("[")]
    assert len(checks) == 6 and all(c.startswith("[ok]") for c in checks), checks
    assert out.rstrip().endswith("demo passed")
    assert "not searched:" not in out and "too few frames:" not in out

    # Every participant decoded enough frames from every other one (counted, per pair).
    decoded = re.findall(
        r"^ +decoded from (.+?) +video +(\d+) frames +audio +(\d+) frames$", out, re.M
    )
    assert len(decoded) == 3 * 2, decoded
    assert all(int(v) >= MIN_PER_PAIR["video"] and int(a) >= MIN_PER_PAIR["audio"]
               for _, v, a in decoded), decoded
    codes = set(re.findall(r"^ +security code: ([\d ]+)$", out, re.M))
    assert len(codes) == 1, codes

    # The relay's recording was searched, with something to search for, and nothing found.
    scanned = re.search(
        r"^  ([\d,]+) bytes in ([\d,]+) client and ([\d,]+) relay messages", out, re.M
    )
    assert scanned is not None
    n_bytes, n_client, n_relay = (int(g.replace(",", "")) for g in scanned.groups())
    assert n_bytes > 100_000 and n_client > 100 and n_relay > 100
    media = re.search(
        r"^  encoded media frames: ([\d,]+) frames, ([\d,]+) 32-byte windows -> (\d+) found",
        out, re.M,
    )
    assert media is not None
    frames, windows, hits = (int(g.replace(",", "")) for g in media.groups())
    assert frames >= 2 * (MIN_PER_PAIR["video"] + MIN_PER_PAIR["audio"]) and windows > frames
    assert hits == 0
    kids = re.search(
        r"^  SFrame key ids in the recorded media: (\d+) in ([\d,]+) frames -> (\d+) opened",
        out, re.M,
    )
    assert kids is not None
    n_kids, n_media, opened = (int(g.replace(",", "")) for g in kids.groups())
    assert n_kids >= 3 and opened == n_kids and n_media >= frames
    found = {
        label.strip(): (int(checked.replace(",", "")), int(hits))
        for label, checked, hits in re.findall(
            r"^ +([^:\n]+): ([\d,]+)\D.*?-> (\d+) found", out, re.M
        )
    }
    keys_label = "SFrame keys in use (base keys of every epoch, each sender's AEAD key and salt)"
    counts = re.search(r"\((\d+) base keys, (\d+) sender keys and (\d+) salts\)", out)
    assert counts is not None
    base, senders, salts = (int(g) for g in counts.groups())
    assert base >= 3 and senders == salts == n_kids
    assert found[keys_label] == (base + senders + salts, 0)
    assert found["link secret, join key and owner's private key"] == (3, 0)
    assert found["chat texts and display names"] == (6, 0)
    assert all(hits == 0 for _, hits in found.values()), found
    # The same search finds what is planted in a copy of the recording.
    assert re.search(
        r"^  positive control, planted in a copy of the recording: a piece of a frame, a text "
        r"and 6 keys -> all found$", out, re.M,
    ), out


def test_cli_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "clave.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("serve", "meet", "join", "demo"):
        assert command in out
