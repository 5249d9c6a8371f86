"""The `clave` command: the offline self-check, and the demo meeting on an embedded relay."""

from __future__ import annotations

import subprocess
import sys

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


def test_cli_demo_meeting_passes(capsys: object) -> None:
    """The README's main job: three participants, media both ways, relay blind."""
    assert main(["demo", "--seconds", "4"]) == 0


def test_cli_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "clave.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("serve", "meet", "join", "demo"):
        assert command in out
