"""`clave demo` runs the MLS-keyed SFrame self-check and every check passes."""

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


def test_cli_demo_exit_status() -> None:
    assert main(["demo"]) == 0


def test_cli_help_lists_demo() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "clave.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "demo" in out
