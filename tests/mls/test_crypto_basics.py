"""Cipher suite primitives (RFC 9420 sections 5.1-5.2, 8) against crypto-basics.json."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from mls_vectors import CLAIMED, claimed_suite, h, load_vectors

from clave.mls.ciphersuite import SUPPORTED_CIPHER_SUITES, CipherSuite, get_suite
from clave.mls.errors import CryptoError, SignatureError, UnsupportedCipherSuiteError

VECTORS = load_vectors("crypto-basics")
SECTIONS = (
    "ref_hash",
    "expand_with_label",
    "derive_secret",
    "derive_tree_secret",
    "sign_with_label",
    "encrypt_with_label",
)


def det_rng(seed: bytes) -> Callable[[int], bytes]:
    """Deterministic test rng (SHAKE-256 stream)."""
    state = {"n": 0}

    def rng(n: int) -> bytes:
        state["n"] += 1
        return hashlib.shake_256(seed + state["n"].to_bytes(4, "big")).digest(n)

    return rng


def check_ref_hash(s: CipherSuite, t: dict[str, Any]) -> None:
    assert s.ref_hash(t["label"], h(t["value"])) == h(t["out"])


def check_expand_with_label(s: CipherSuite, t: dict[str, Any]) -> None:
    out = s.expand_with_label(h(t["secret"]), t["label"], h(t["context"]), t["length"])
    assert out == h(t["out"])


def check_derive_secret(s: CipherSuite, t: dict[str, Any]) -> None:
    assert s.derive_secret(h(t["secret"]), t["label"]) == h(t["out"])


def check_derive_tree_secret(s: CipherSuite, t: dict[str, Any]) -> None:
    out = s.derive_tree_secret(h(t["secret"]), t["label"], t["generation"], t["length"])
    assert out == h(t["out"])


def check_sign_with_label(s: CipherSuite, t: dict[str, Any]) -> None:
    priv, pub, content = h(t["priv"]), h(t["pub"]), h(t["content"])
    s.verify_with_label(pub, t["label"], content, h(t["signature"]))
    assert s.signature_public_key(priv) == pub
    s.verify_with_label(pub, t["label"], content, s.sign_with_label(priv, t["label"], content))
    with pytest.raises(SignatureError):
        s.verify_with_label(pub, t["label"] + "x", content, h(t["signature"]))


def check_encrypt_with_label(s: CipherSuite, t: dict[str, Any]) -> None:
    priv, pub, ctx, pt = h(t["priv"]), h(t["pub"]), h(t["context"]), h(t["plaintext"])
    out = s.decrypt_with_label(priv, t["label"], ctx, h(t["kem_output"]), h(t["ciphertext"]))
    assert out == pt
    assert s.hpke_public_key(priv) == pub
    kem_output, ct = s.encrypt_with_label(pub, t["label"], ctx, pt, rng=det_rng(b"ewl"))
    assert s.decrypt_with_label(priv, t["label"], ctx, kem_output, ct) == pt
    with pytest.raises(CryptoError):
        s.decrypt_with_label(priv, t["label"], ctx + b"\x00", kem_output, ct)


CHECKS: dict[str, Callable[[CipherSuite, dict[str, Any]], None]] = {
    "ref_hash": check_ref_hash,
    "expand_with_label": check_expand_with_label,
    "derive_secret": check_derive_secret,
    "derive_tree_secret": check_derive_tree_secret,
    "sign_with_label": check_sign_with_label,
    "encrypt_with_label": check_encrypt_with_label,
}


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("v", VECTORS, ids=[f"suite{v['cipher_suite']}" for v in VECTORS])
def test_crypto_basics_vector(v: dict[str, Any], section: str) -> None:
    suite = claimed_suite(v)
    CHECKS[section](suite, v[section])


def test_every_claimed_suite_has_vectors() -> None:
    assert {v["cipher_suite"] for v in VECTORS} >= CLAIMED
    assert set(SUPPORTED_CIPHER_SUITES) == CLAIMED


# -- unit tests ---------------------------------------------------------------

SUITES = [get_suite(i) for i in SUPPORTED_CIPHER_SUITES]
suite_ids = [f"suite{s.id}" for s in SUITES]


@pytest.mark.parametrize("bad", [0, 4, 7, 0xFFFF, -1])
def test_unsupported_suite(bad: int) -> None:
    with pytest.raises(UnsupportedCipherSuiteError):
        get_suite(bad)


@pytest.mark.parametrize("s", SUITES, ids=suite_ids)
def test_suite_parameters(s: CipherSuite) -> None:
    assert (s.Nh, s.Nn) == (32, 12)
    assert s.Nk == (32 if s.id == 3 else 16)
    assert s.hash(b"abc") == hashlib.sha256(b"abc").digest()
    assert s.make_key_package_ref(b"kp") == s.ref_hash("MLS 1.0 KeyPackage Reference", b"kp")
    assert s.make_proposal_ref(b"p") == s.ref_hash(b"MLS 1.0 Proposal Reference", b"p")
    assert s.derive_secret(b"k" * 32, "x") == s.expand_with_label(b"k" * 32, b"x", b"", 32)


@pytest.mark.parametrize("s", SUITES, ids=suite_ids)
def test_kdf_expand_multi_block_matches_rfc5869(s: CipherSuite) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    prk = s.kdf_extract(b"salt", b"ikm")
    for n in (0, 1, 31, 32, 33, 64, 100, 255 * 32):
        ref = HKDFExpand(hashes.SHA256(), n, b"info").derive(prk) if n else b""
        assert s.kdf_expand(prk, b"info", n) == ref
    with pytest.raises(ValueError):
        s.kdf_expand(prk, b"", 255 * 32 + 1)


@pytest.mark.parametrize("s", SUITES, ids=suite_ids)
def test_signature_keys_and_failures(s: CipherSuite) -> None:
    rng = det_rng(b"sig")
    priv, pub = s.generate_signature_key_pair(rng)
    assert s.signature_public_key(priv) == pub
    s.validate_signature_public_key(pub)
    sig = s.sign_with_label(priv, "LeafNodeTBS", b"content")
    # Deterministic: Ed25519 always, ECDSA via RFC 6979.
    assert sig == s.sign_with_label(priv, "LeafNodeTBS", b"content")
    s.verify_with_label(pub, "LeafNodeTBS", b"content", sig)
    _, other_pub = s.generate_signature_key_pair(rng)
    bad_cases = [
        (pub, b"content2", sig),
        (other_pub, b"content", sig),
        (pub, b"content", sig[:-1]),
        (pub, b"content", b""),
        (pub, b"content", bytes(len(sig))),
        (b"", b"content", sig),
        (pub[:-1], b"content", sig),
        (b"\x02" + pub[1:33] if s.id == 2 else b"\xff" * 32, b"content", sig),
    ]
    for p, c, g in bad_cases:
        with pytest.raises(SignatureError):
            s.verify_with_label(p, "LeafNodeTBS", c, g)
    with pytest.raises(CryptoError):
        s.validate_signature_public_key(pub[:-1])
    with pytest.raises(CryptoError):
        s.sign(b"\x00" * 31, b"m")
    if s.id == 2:
        with pytest.raises(CryptoError):
            s.sign(b"\xff" * 32, b"m")  # scalar >= group order
        with pytest.raises(CryptoError):
            s.sign(b"\x00" * 32, b"m")


@pytest.mark.parametrize("s", SUITES, ids=suite_ids)
def test_aead_round_trip_and_failures(s: CipherSuite) -> None:
    key, nonce = b"k" * s.nk, b"n" * s.nn
    ct = s.aead_encrypt(key, nonce, b"aad", b"hello")
    assert len(ct) == 5 + 16
    assert s.aead_decrypt(key, nonce, b"aad", ct) == b"hello"
    for k, n, a, c in [
        (key, nonce, b"aaD", ct),
        (b"x" * s.nk, nonce, b"aad", ct),
        (key, b"m" * s.nn, b"aad", ct),
        (key, nonce, b"aad", ct[:-1]),
        (key, nonce, b"aad", b""),
        (key[:-1], nonce, b"aad", ct),
        (key, nonce[:-1], b"aad", ct),
    ]:
        with pytest.raises(CryptoError):
            s.aead_decrypt(k, n, a, c)
    with pytest.raises(CryptoError):
        s.aead_encrypt(key[:-1], nonce, b"", b"")


@pytest.mark.parametrize("s", SUITES, ids=suite_ids)
def test_hpke_determinism_aad_and_failures(s: CipherSuite) -> None:
    priv, pub = s.generate_hpke_key_pair(det_rng(b"kp"))
    assert s.hpke_public_key(priv) == pub
    assert s.derive_key_pair(b"ikm") == s.derive_key_pair(b"ikm")
    s.validate_hpke_public_key(pub)
    a = s.hpke_seal(pub, b"info", b"aad", b"msg", rng=det_rng(b"e"))
    assert a == s.hpke_seal(pub, b"info", b"aad", b"msg", rng=det_rng(b"e"))
    assert a != s.hpke_seal(pub, b"info", b"aad", b"msg", rng=det_rng(b"f"))
    enc, ct = a
    assert s.hpke_open(priv, enc, b"info", b"aad", ct) == b"msg"
    other_priv, _ = s.generate_hpke_key_pair(det_rng(b"other"))
    bad = [
        (priv, enc, b"info", b"aaD", ct),
        (priv, enc, b"infO", b"aad", ct),
        (other_priv, enc, b"info", b"aad", ct),
        (priv, enc[:-1], b"info", b"aad", ct),
        (priv, b"", b"info", b"aad", ct),
        (priv, bytes(len(enc)), b"info", b"aad", ct),
        (priv, enc, b"info", b"aad", ct[:-1]),
        (priv[:-1], enc, b"info", b"aad", ct),
        (b"\xff" * 32 if s.id == 2 else b"", enc, b"info", b"aad", ct),
    ]
    for args in bad:
        with pytest.raises(CryptoError):
            s.hpke_open(*args)
    with pytest.raises(CryptoError):
        s.validate_hpke_public_key(pub[:-1])
    with pytest.raises(CryptoError):
        s.hpke_seal(pub[:-1], b"", b"", b"", rng=det_rng(b"x"))
    if s.id == 2:
        compressed = bytes([2 + (pub[-1] & 1)]) + pub[1:33]
        with pytest.raises(CryptoError):
            s.validate_hpke_public_key(compressed)


@pytest.mark.parametrize("s", SUITES, ids=suite_ids)
def test_mac(s: CipherSuite) -> None:
    tag = s.mac(b"key", b"data")
    assert s.verify_mac(b"key", b"data", tag)
    assert not s.verify_mac(b"key", b"data", tag[:-1] + bytes([tag[-1] ^ 1]))
    assert not s.verify_mac(b"key", b"datA", tag)


@pytest.mark.parametrize("s", SUITES, ids=suite_ids)
def test_short_rng_output_is_rejected(s: CipherSuite) -> None:
    def short(n: int) -> bytes:
        return bytes(n - 1)

    _, pub = s.derive_key_pair(b"ikm")
    with pytest.raises(ValueError):
        s.generate_signature_key_pair(short)
    with pytest.raises(ValueError):
        s.generate_hpke_key_pair(short)
    with pytest.raises(ValueError):
        s.encrypt_with_label(pub, "l", b"", b"pt", rng=short)
