"""Fixtures for the ts-mls interop peer (see README.md here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from peer import TsMlsPeer


@pytest.fixture
def ts_peer() -> Iterator[TsMlsPeer]:
    """A fresh ``node peer.mjs`` process, closed after the test.

    Fails (does not skip) when node or tests/interop/node_modules is missing:
    the interop suite is part of the required test run.
    """
    peer = TsMlsPeer()
    try:
        yield peer
    finally:
        peer.close()
