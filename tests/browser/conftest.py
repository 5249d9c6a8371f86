"""Make ``browser_helpers`` importable from tests/browser (whatever pytest's import mode),
and fail (never skip) every browser test on a machine without Chromium."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


import pytest  # noqa: E402  (after the path is set up)
from browser_helpers import browser_available  # noqa: E402


@pytest.fixture(autouse=True)
def _require_browser() -> None:
    missing = browser_available()
    if missing is not None:
        pytest.fail(f"browser tests cannot run: {missing} (run scripts/test.sh)")
