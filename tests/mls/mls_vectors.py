"""Loading the official MLS test vectors (mls-implementations format) for tests/mls.

The vectors live outside the checkout, in ``../shared/vectors/mls``. A missing
file is an error, never a skip: conformance must not silently disappear.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from clave.mls.ciphersuite import CipherSuite, get_suite

VECTOR_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "mls"

CLAIMED = frozenset({1, 2, 3})

ENTRY_FILES: dict[int, str] = {}
"""id() of every loaded vector entry -> its file name, for the per-file summary."""
"""Cipher suites this implementation claims; vectors of other suites are reported as skips."""


def load_vectors(name: str) -> list[dict[str, Any]]:
    """Entries of ``<VECTOR_DIR>/<name>`` (``.json`` optional); raises if missing.

    Each file is read once, so every test module shares the same entry objects
    and the summary counts each entry once. Tests must not modify entries.
    """
    return _load(name if name.endswith(".json") else f"{name}.json")


@functools.cache
def _load(filename: str) -> list[dict[str, Any]]:
    path = VECTOR_DIR / filename
    if not path.is_file():
        raise FileNotFoundError(f"MLS test vector file missing: {path.resolve()}")
    data = json.loads(path.read_text())
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path} does not hold a non-empty JSON array")
    for entry in data:
        ENTRY_FILES[id(entry)] = path.name
    return data


def suite_params(vectors: list[dict[str, Any]]) -> list[Any]:
    """One ``pytest.param`` per entry, with an id naming its cipher suite and position."""
    return [pytest.param(v, id=f"suite{v['cipher_suite']}-{i}") for i, v in enumerate(vectors)]


def claimed_suite(vector: dict[str, Any]) -> CipherSuite:
    """The entry's cipher suite, or a visible ``pytest.skip`` if we do not claim it."""
    cs = vector["cipher_suite"]
    if cs not in CLAIMED:
        pytest.skip(f"cipher suite {cs} is not claimed by clave.mls (claimed: {sorted(CLAIMED)})")
    return get_suite(cs)


def h(s: str) -> bytes:
    """Hex to bytes."""
    return bytes.fromhex(s)
