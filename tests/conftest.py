"""Suite-wide: engines started by tests keep their identity and people book in a
temporary directory, never in the user's real configuration directory."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)  # ``bounded_run``, shared by the helpers of several folders


@pytest.fixture(autouse=True, scope="session")
def _private_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    path = tmp_path_factory.mktemp("clave-config")
    path.chmod(0o700)
    old = os.environ.get("CLAVE_CONFIG_DIR")
    os.environ["CLAVE_CONFIG_DIR"] = str(path)
    yield
    if old is None:
        os.environ.pop("CLAVE_CONFIG_DIR", None)
    else:
        os.environ["CLAVE_CONFIG_DIR"] = old


@pytest.fixture
def live_relay() -> Iterator[str]:
    """A relay on 127.0.0.1 in a thread of its own, for tests whose engines only need one to
    answer (``clave meet``/``join`` check that one does before they show anything); yields
    its base URL."""
    from clave.relay.server import start_relay

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="live-relay", daemon=True)
    thread.start()
    runner, port = asyncio.run_coroutine_threadsafe(start_relay("127.0.0.1", 0), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
