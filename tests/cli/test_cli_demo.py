"""The `clave` command: the offline self-check, and the demo meeting on an embedded relay."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from clave.cli import main
from clave.selfcheck import run


def test_selfcheck_passes_every_step() -> None:
    lines: list[str] = []
    assert run(lines.append)
    checks = [line for line in lines if line.strip().startswith("[")]
    assert len(checks) == 9
    assert all("[ok]" in line for line in checks), lines


def test_cli_selfcheck_exit_status() -> None:
    assert main(["selfcheck"]) == 0


def test_cli_demo_meeting_passes(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's main job: three participants, media both ways, relay blind."""
    assert main(["demo", "--seconds", "4"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"^link:  clave://127\.0\.0\.1:\d+/m/[\w-]{22}#[\w-]{43}\.[\w-]{22}$", out, re.M
    )
    checks = [line.strip() for line in out.splitlines() if line.strip().startswith("[")]
    assert len(checks) == 4 and all(c.startswith("[ok]") for c in checks), checks
    assert out.rstrip().endswith("demo passed")
    # The relay's recording was searched for something, and nothing was found.
    found = {
        label.strip(): (int(checked.replace(",", "")), int(hits))
        for label, checked, hits in re.findall(
            r"^ +([^:\n]+): ([\d,]+)\D.*?-> (\d+) found", out, re.M
        )
    }
    assert found["SFrame base keys exported from MLS (each member, each epoch)"][0] >= 6
    assert found["link secret, join key and owner's private key"] == (3, 0)
    assert found["chat texts and display names"] == (6, 0)
    assert all(hits == 0 for _, hits in found.values()), found


def test_cli_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "clave.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("serve", "meet", "join", "demo"):
        assert command in out
