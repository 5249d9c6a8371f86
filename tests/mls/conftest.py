"""Vector helpers for tests/mls, and a per-file, per-suite conformance summary.

Every test parametrized with an entry returned by ``mls_vectors.load_vectors``
is attributed to that entry. An entry passes when all its tests pass, fails
when any fails, and is skipped (listed with its suite) when its suite is not
claimed. The table is printed at the end of every run.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import mls_vectors  # noqa: E402

_ENTRY_OF: dict[str, tuple[str, int, int]] = {}  # nodeid -> (file, suite, entry id)
_OUTCOMES: dict[tuple[str, int, int], set[str]] = defaultdict(set)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        for value in callspec.params.values():
            name = mls_vectors.ENTRY_FILES.get(id(value))
            if name is not None and isinstance(value, dict):
                _ENTRY_OF[item.nodeid] = (name, int(value.get("cipher_suite", 0)), id(value))
                break


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    key = _ENTRY_OF.get(report.nodeid)
    if key is None:
        return
    if report.when == "call" or report.outcome != "passed":
        _OUTCOMES[key].add(report.outcome)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _OUTCOMES:
        return
    table: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (name, suite, _), outcomes in _OUTCOMES.items():
        col = 1 if "failed" in outcomes else 2 if "skipped" in outcomes else 0
        table[(name, suite)][col] += 1
    tr = terminalreporter
    tr.section("MLS test vectors: entries per file and cipher suite")
    tr.write_line(f"{'file':34} {'suite':>5} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for (name, suite), (ok, bad, skip) in sorted(table.items()):
        note = "" if suite in mls_vectors.CLAIMED or not skip else "  (suite not claimed)"
        shown = str(suite) if suite else "-"
        tr.write_line(f"{name:34} {shown:>5} {ok:>7} {bad:>7} {skip:>8}{note}")
