"""Suite-wide: engines started by tests keep their identity and people book in a
temporary directory, never in the user's real configuration directory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


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
