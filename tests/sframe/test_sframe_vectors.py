"""RFC 9605 Appendix C test vectors (sframe-wg JSON files in ../shared/vectors).

The vector files are required: if they are missing every test here fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clave.sframe import (
    AesCtrHmac,
    Receiver,
    Sender,
    SFrameHeader,
    decode_header,
    encode_header,
    get_suite,
    parse_header,
    protect_frame,
    unprotect_frame,
)
from clave.sframe.suites import form_nonce, key_label, salt_label, sframe_secret

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors"
SFRAME_DIR = VECTORS / "sframe"


def _load(name: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((SFRAME_DIR / name).read_text())
    except (OSError, ValueError) as exc:
        return {"__missing__": f"{SFRAME_DIR / name}: {exc}"}
    return data


MAIN = _load("test-vectors.json")
AES256 = _load("test-vectors-aes256.json")


def _cases(doc: dict[str, Any], key: str, ident: Any) -> list[Any]:
    if "__missing__" in doc:
        return [pytest.param(None, id="vector-file-missing")]
    return [pytest.param(e, id=ident(i, e)) for i, e in enumerate(doc[key])]


def _need(entry: dict[str, Any] | None) -> dict[str, Any]:
    if entry is None:
        pytest.fail(f"SFrame test vectors missing under {SFRAME_DIR}")
    return entry


def _aead_id(i: int, e: dict[str, Any]) -> str:
    return f"{i}-suite{e['cipher_suite']}"


def _sframe_id(i: int, e: dict[str, Any]) -> str:
    return f"{i}-{get_suite(e['cipher_suite']).name}"


def b(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr)


def test_vector_files_present_and_counts() -> None:
    assert "__missing__" not in MAIN, MAIN.get("__missing__")
    assert "__missing__" not in AES256, AES256.get("__missing__")
    assert len(MAIN["header"]) == 289
    assert len(MAIN["aes_ctr_hmac"]) == 3
    assert len(MAIN["aes_256_ctr_hmac"]) == 3
    assert len(MAIN["sframe"]) == 5
    assert len(AES256["sframe_aes_256_ctr_hmac"]) == 3
    assert {e["cipher_suite"] for e in MAIN["sframe"]} == {1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    "entry", _cases(MAIN, "header", lambda i, e: f"kid={e['kid']:#x}-ctr={e['ctr']:#x}")
)
def test_header_vector(entry: dict[str, Any] | None) -> None:
    e = _need(entry)
    encoded = b(e["encoded"])
    assert encode_header(e["kid"], e["ctr"]) == encoded
    assert SFrameHeader(e["kid"], e["ctr"]).encode() == encoded
    assert decode_header(encoded) == (e["kid"], e["ctr"], len(encoded))
    # Parsing stops at the end of the header; what follows is payload.
    header, length = parse_header(encoded + b"\xff\x00payload")
    assert header == SFrameHeader(e["kid"], e["ctr"])
    assert length == len(encoded)


def _check_aead_vector(e: dict[str, Any]) -> None:
    suite = get_suite(e["cipher_suite"])
    aead = AesCtrHmac(suite, b(e["key"]))
    assert aead.enc_key == b(e["enc_key"])
    assert aead.auth_key == b(e["auth_key"])
    assert len(b(e["ct"])) == len(b(e["pt"])) + suite.nt
    assert aead.encrypt(b(e["nonce"]), b(e["pt"]), b(e["aad"])) == b(e["ct"])
    assert aead.decrypt(b(e["nonce"]), b(e["ct"]), b(e["aad"])) == b(e["pt"])
    # The generic suite.aead() factory builds the same construction.
    assert suite.aead(b(e["key"])).decrypt(b(e["nonce"]), b(e["ct"]), b(e["aad"])) == b(e["pt"])


@pytest.mark.parametrize("entry", _cases(MAIN, "aes_ctr_hmac", _aead_id))
def test_aes_ctr_hmac_vector(entry: dict[str, Any] | None) -> None:
    _check_aead_vector(_need(entry))


@pytest.mark.parametrize("entry", _cases(MAIN, "aes_256_ctr_hmac", _aead_id))
def test_aes_256_ctr_hmac_vector(entry: dict[str, Any] | None) -> None:
    _check_aead_vector(_need(entry))


def _check_sframe_vector(e: dict[str, Any]) -> None:
    suite = get_suite(e["cipher_suite"])
    kid, ctr, base_key = e["kid"], e["ctr"], b(e["base_key"])
    metadata, pt, ct = b(e["metadata"]), b(e["pt"]), b(e["ct"])

    # Key derivation intermediates (section 4.4.2).
    assert key_label(suite, kid) == b(e["sframe_key_label"])
    assert salt_label(suite, kid) == b(e["sframe_salt_label"])
    assert sframe_secret(suite, base_key) == b(e["sframe_secret"])
    key, salt = suite.derive_key_salt(kid, base_key)
    assert key == b(e["sframe_key"])
    assert salt == b(e["sframe_salt"])
    assert form_nonce(suite, salt, ctr) == b(e["nonce"])
    header = encode_header(kid, ctr)
    assert header + metadata == b(e["aad"])

    # Stateless protect / unprotect (sections 4.4.3, 4.4.4).
    assert protect_frame(suite, base_key, kid, ctr, metadata, pt) == ct
    assert unprotect_frame(suite, base_key, ct, metadata) == (kid, ctr, pt)

    # Stateful sender starting at the vector's CTR, and a receiver.
    sender = Sender(suite)
    sender.add_key(kid, base_key, initial_counter=ctr)
    assert sender.protect(kid, metadata, pt) == ct
    assert sender.next_counter(kid) == ctr + 1
    receiver = Receiver(suite.id)
    receiver.add_key(kid, base_key)
    assert receiver.unprotect(ct, metadata) == (kid, ctr, pt)


@pytest.mark.parametrize("entry", _cases(MAIN, "sframe", _sframe_id))
def test_sframe_vector(entry: dict[str, Any] | None) -> None:
    _check_sframe_vector(_need(entry))


@pytest.mark.parametrize("entry", _cases(AES256, "sframe_aes_256_ctr_hmac", _sframe_id))
def test_sframe_aes_256_ctr_hmac_vector(entry: dict[str, Any] | None) -> None:
    _check_sframe_vector(_need(entry))
