"""``clave serve --nats``: bad options are refused in one line, before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clave.cli.errors import EXIT_USAGE


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clave.cli", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--nats", "http://127.0.0.1:4222"], "--nats: 'http://127.0.0.1:4222' is not a nats://"),
        (["--nats-creds", "x.creds"], "--nats-creds, --nats-nkey and --nats-ca go with --nats"),
        (["--nats", "nats://127.0.0.1:1", "--nats-creds", "/nonexistent"], "no file"),
        (["--nats", "nats://127.0.0.1:1", "--nats-ca", "/nonexistent"], "--nats-ca:"),
    ],
)
def test_bad_cluster_options_say_so(args: list[str], line: str, tmp_path: Path) -> None:
    done = serve(*args)
    assert done.returncode == EXIT_USAGE, done
    assert line in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "listening" not in done.stdout
