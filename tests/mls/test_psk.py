"""PSK secret chaining (RFC 9420 section 8.4) against psk_secret.json."""

from __future__ import annotations

from typing import Any

import pytest
from mls_vectors import claimed_suite, h, load_vectors, suite_params

from clave.mls.ciphersuite import get_suite
from clave.mls.codec import Reader
from clave.mls.psk import psk_secret
from clave.mls.structs import PreSharedKeyID, PSKType, ResumptionPSKUsage


def encode_external_psk_id(psk_id: bytes, psk_nonce: bytes) -> bytes:
    return PreSharedKeyID.external(psk_id, psk_nonce).to_bytes()


@pytest.mark.parametrize("v", suite_params(load_vectors("psk_secret")))
def test_psk_secret_vector(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    psks = [
        (encode_external_psk_id(h(p["psk_id"]), h(p["psk_nonce"])), h(p["psk"])) for p in v["psks"]
    ]
    assert psk_secret(suite, psks) == h(v["psk_secret"])


def test_empty_is_zero_and_order_matters() -> None:
    s = get_suite(1)
    assert psk_secret(s, []) == bytes(32)
    a = (encode_external_psk_id(b"a", b"n" * 32), b"k1")
    b = (encode_external_psk_id(b"b", b"m" * 32), b"k2")
    assert psk_secret(s, [a, b]) != psk_secret(s, [b, a])


def test_psk_id_encodings() -> None:
    ext = encode_external_psk_id(b"id", b"nonce")
    assert ext == bytes([PSKType.external, 2]) + b"id" + bytes([5]) + b"nonce"
    res = PreSharedKeyID.resumption(ResumptionPSKUsage.branch, b"g", 7, b"n").to_bytes()
    r = Reader(res)
    assert (r.u8(), r.u8(), r.opaque(), r.u64(), r.opaque()) == (2, 3, b"g", 7, b"n")
    r.done()
