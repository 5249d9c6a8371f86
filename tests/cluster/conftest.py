"""Make ``nats_helpers`` and tests/e2e's ``e2e_helpers`` importable from tests/cluster
(whatever pytest's import mode), and give each test that asks a NATS server of its own."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent / "e2e"), str(_HERE)):  # e2e_helpers: engines, waits
    if _path not in sys.path:
        sys.path.insert(0, _path)

from nats_helpers import NatsServer  # noqa: E402


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A started nats-server (JetStream on, store in ``tmp_path``), stopped afterwards."""
    with NatsServer(tmp_path / "nats") as server:
        yield server
