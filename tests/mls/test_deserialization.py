"""Variable-length vector headers (RFC 9420 section 2.1.2) against deserialization.json."""

from __future__ import annotations

from typing import Any

import pytest
from mls_vectors import h, load_vectors

from clave.mls.codec import Reader, encode_varint

VECTORS = load_vectors("deserialization")


@pytest.mark.parametrize("v", VECTORS, ids=[v["vlbytes_header"] for v in VECTORS])
def test_vlbytes_header_vector(v: dict[str, Any]) -> None:
    header = h(v["vlbytes_header"])
    r = Reader(header)
    assert r.varint() == v["length"]
    r.done("varint")
    assert encode_varint(v["length"]) == header
