"""Make ``nats_helpers`` importable from tests/cluster (whatever pytest's import mode), and
give each test that asks for it a NATS server of its own."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from nats_helpers import NatsServer  # noqa: E402


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A started nats-server (JetStream on, store in ``tmp_path``), stopped afterwards."""
    with NatsServer(tmp_path / "nats") as server:
        yield server
