"""Security code: format, independent recomputation, entropy, equality."""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections import Counter

from clave.meeting import security_code


def test_format() -> None:
    code = security_code(os.urandom(32))
    assert re.fullmatch(r"\d{5}( \d{5}){6}", code)


def test_matches_independent_computation() -> None:
    auth = bytes(range(32))
    digest = hashlib.sha256(b"clave v1 security code" + auth).digest()
    digits = str(int.from_bytes(digest[:16], "big") % 10**35).zfill(35)
    assert security_code(auth).replace(" ", "") == digits


def test_entropy_and_zero_padding() -> None:
    assert 35 * math.log2(10) >= 116 > 100
    codes = {security_code(os.urandom(32)) for _ in range(3000)}
    assert len(codes) == 3000
    first = Counter(c[0] for c in codes)
    assert set(first) == set("0123456789")  # leading zeros are kept
    assert max(first.values()) < 3 * min(first.values())


def test_same_input_same_code_different_input_different_code() -> None:
    a, b = os.urandom(32), os.urandom(32)
    assert security_code(a) == security_code(bytes(a))
    assert security_code(a) != security_code(b)


def test_known_answer() -> None:
    """The value docs/PROTOCOL.md lists."""
    assert security_code(bytes(range(32))) == "16471 01443 85818 99134 79404 15657 23177"
