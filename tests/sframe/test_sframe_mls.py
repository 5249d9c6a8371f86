"""RFC 9605 section 5.2 (SFrame keys from MLS) against an independent model.

The model below is written from the RFC text with the standard library only
(hmac/hashlib for HKDF, integer arithmetic for the KID); it shares no code
with ``clave.sframe`` key derivation.  Only the final AEAD primitive comes
from ``cryptography`` (AES-GCM, or AES-CTR for the CTR+HMAC suites).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from clave.sframe import (
    RFC9605_SUITES,
    AuthenticationError,
    CipherSuite,
    ConfigurationError,
    MLSKeyManager,
    ReplayError,
    SFrameError,
    UnknownKeyError,
    decode_header,
    encode_header,
    make_kid,
    parse_kid,
)

# -- independent model of RFC 9605 sections 4.4.2, 4.5.1 and 5.2 ---------------

HashFn = Callable[[], Any]
Exporter = Callable[[bytes, bytes, int], bytes]

HASHES: dict[int, HashFn] = {
    1: hashlib.sha256, 2: hashlib.sha256, 3: hashlib.sha256,
    4: hashlib.sha256, 5: hashlib.sha512,
}  # fmt: skip
NK = {1: 48, 2: 48, 3: 48, 4: 16, 5: 32}
NT = {1: 10, 2: 8, 3: 4, 4: 16, 5: 16}


def hkdf_extract(h: HashFn, salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(h().digest_size), ikm, h).digest()


def hkdf_expand(h: HashFn, prk: bytes, info: bytes, n: int) -> bytes:
    out, block, i = b"", b"", 1
    while len(out) < n:
        block = hmac.new(prk, block + info + bytes([i]), h).digest()
        out += block
        i += 1
    return out[:n]


def fake_exporter(
    epoch_secret: bytes, calls: list[tuple[bytes, bytes, int]] | None = None
) -> Exporter:
    """Deterministic stand-in for MLS-Exporter(label, context, length)."""

    def exporter(label: bytes, context: bytes, length: int) -> bytes:
        if calls is not None:
            calls.append((label, context, length))
        prk = hmac.new(b"fake mls exporter", epoch_secret, hashlib.sha256).digest()
        return hkdf_expand(hashlib.sha256, prk, label + b"\x00" + context, length)

    return exporter


def epoch_secret(epoch: int) -> bytes:
    return b"epoch secret %d" % epoch


def model_s(group_size: int) -> int:
    s = 0
    while group_size > (1 << s):
        s += 1
    return s


def model_kid(epoch: int, index: int, e: int, s: int, context: int = 0) -> int:
    # KID = (context << (S + E)) + (sender_index << E) + (epoch % (1 << E))
    return (context << (s + e)) + (index << e) + (epoch % (1 << e))


def model_key_salt(suite_id: int, epoch: int, kid: int) -> tuple[bytes, bytes]:
    h = HASHES[suite_id]
    # base_key = MLS-Exporter("SFrame 1.0 Base Key", "", AEAD.Nk)
    base_key = fake_exporter(epoch_secret(epoch))(b"SFrame 1.0 Base Key", b"", NK[suite_id])
    secret = hkdf_extract(h, b"", base_key)
    tail = kid.to_bytes(8, "big") + suite_id.to_bytes(2, "big")
    key = hkdf_expand(h, secret, b"SFrame 1.0 Secret key " + tail, NK[suite_id])
    salt = hkdf_expand(h, secret, b"SFrame 1.0 Secret salt " + tail, 12)
    return key, salt


def model_nonce(salt: bytes, ctr: int) -> bytes:
    return bytes(a ^ b for a, b in zip(salt, ctr.to_bytes(12, "big"), strict=True))


def model_seal(suite_id: int, key: bytes, nonce: bytes, aad: bytes, pt: bytes) -> bytes:
    if suite_id in (4, 5):
        return AESGCM(key).encrypt(nonce, pt, aad)
    enc_key, auth_key = key[:16], key[16:]
    enc = Cipher(algorithms.AES(enc_key), modes.CTR(nonce + bytes(4))).encryptor()
    ct = enc.update(pt) + enc.finalize()
    nt = NT[suite_id]
    lens = len(aad).to_bytes(8, "big") + len(ct).to_bytes(8, "big") + nt.to_bytes(8, "big")
    tag = hmac.new(auth_key, lens + nonce + aad + ct, hashlib.sha256).digest()[:nt]
    return ct + tag


def model_protect(
    suite_id: int, epoch: int, kid: int, ctr: int, metadata: bytes, pt: bytes
) -> bytes:
    key, salt = model_key_salt(suite_id, epoch, kid)
    header = encode_header(kid, ctr)  # header encoding is checked against 289 vectors
    return header + model_seal(suite_id, key, model_nonce(salt, ctr), header + metadata, pt)


# -- tests ------------------------------------------------------------------------

LEAVES = (0, 1, 7, 1000)
E_BITS = (2, 4, 8)


def _epochs(e: int) -> list[int]:
    # includes values >= 2**E so the low E bits wrap (and 3 * 2**E collides with 0)
    return [0, 1, 5, (1 << e) + 3, 3 << e]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("suite", RFC9605_SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("e", E_BITS, ids=lambda e: f"E={e}")
@pytest.mark.parametrize("leaf", LEAVES, ids=lambda i: f"leaf={i}")
def test_section_5_2_matches_independent_model(suite: CipherSuite, e: int, leaf: int) -> None:
    group_size = 1500 if leaf else 3  # S = 11, or S = 2 for the small group
    s = model_s(group_size)
    peer = 2 if leaf != 2 else 4
    clock = Clock()
    sender = MLSKeyManager(suite, e, clock)
    receiver = MLSKeyManager(suite, e, clock, grace_period=100.0)
    calls: list[tuple[bytes, bytes, int]] = []
    sent: list[tuple[int, bytes, bytes]] = []  # (epoch, metadata, frame)
    for epoch in _epochs(e):
        sender.set_epoch(epoch, fake_exporter(epoch_secret(epoch), calls), leaf, group_size)
        receiver.set_epoch(epoch, fake_exporter(epoch_secret(epoch)), peer, group_size)
        assert calls[-1] == (b"SFrame 1.0 Base Key", b"", suite.nk)

        for context in (0, 3):
            kid = model_kid(epoch, leaf, e, s, context)
            assert sender.own_kid(context) == kid
            assert receiver.kid_for(leaf, context) == kid
            assert make_kid(epoch, leaf, epoch_bits=e, index_bits=s, context_id=context) == kid
            assert parse_kid(kid, epoch_bits=e, index_bits=s) == (
                epoch % (1 << e), leaf, context
            )
            metadata = b"meta %d" % epoch
            for ctr in range(2):
                pt = b"epoch %d context %d ctr %d" % (epoch, context, ctr)
                frame = sender.protect(metadata, pt, context_id=context)
                assert decode_header(frame)[:2] == (kid, ctr)
                assert frame == model_protect(suite.id, epoch, kid, ctr, metadata, pt)
                out = receiver.unprotect(frame, metadata)
                assert out == (epoch, leaf, context, kid, ctr, pt)
                sent.append((epoch, metadata, frame))

        # Receiving side: a frame built by the model from the peer's view.
        kid = model_kid(epoch, leaf, e, s, 9)
        frame = model_protect(suite.id, epoch, kid, 77, b"", b"model frame")
        assert receiver.unprotect(frame, b"").plaintext == b"model frame"

    # Retired epochs stay decryptable within the grace period (a fresh
    # receiver sees each frame once) unless a newer epoch has the same low
    # E bits: 3 << E collides with epoch 0, and for E = 2 epoch 5 with 1.
    late = MLSKeyManager(suite, e, clock, grace_period=100.0)
    for epoch in _epochs(e):
        late.set_epoch(epoch, fake_exporter(epoch_secret(epoch)), peer, group_size)
    live = set(late.live_epochs())
    for epoch, metadata, frame in sent:
        evicted = any(
            later > epoch and later % (1 << e) == epoch % (1 << e) for later in _epochs(e)
        )
        assert (epoch in live) == (not evicted)
        if evicted:
            # The KID now names the newer epoch with the same low bits, so the
            # frame is tried with that epoch's key and fails authentication.
            with pytest.raises(AuthenticationError):
                late.unprotect(frame, metadata)
        else:
            assert late.unprotect(frame, metadata).epoch == epoch


def test_rfc_figure_kids() -> None:
    """KIDs of RFC 9605 figure "An Example Sequence of KIDs" (E=4, S=6)."""
    cases = [
        (14, 3, 0, 0x3E), (14, 7, 0, 0x7E), (14, 20, 0, 0x14E),
        (15, 3, 0, 0x3F), (15, 5, 0, 0x5F),
        (16, 2, 2, 0x820), (16, 2, 3, 0xC20),
        (17, 33, 0, 0x211), (17, 51, 0, 0x331),
    ]  # fmt: skip
    for epoch, index, context, kid in cases:
        assert make_kid(epoch, index, epoch_bits=4, index_bits=6, context_id=context) == kid
        assert model_kid(epoch, index, 4, 6, context) == kid
        assert parse_kid(kid, epoch_bits=4, index_bits=6) == (epoch % 16, index, context)
    manager = MLSKeyManager(RFC9605_SUITES[3], 4, Clock())
    manager.set_epoch(16, fake_exporter(b"x"), 2, 64)
    assert (manager.own_kid(2), manager.own_kid(3)) == (0x820, 0xC20)


@settings(max_examples=200, deadline=None)
@given(
    e=st.integers(min_value=0, max_value=16),
    s=st.integers(min_value=0, max_value=20),
    epoch=st.integers(min_value=0, max_value=2**40),
    data=st.data(),
)
def test_make_parse_kid_round_trip(e: int, s: int, epoch: int, data: st.DataObject) -> None:
    leaf = data.draw(st.integers(min_value=0, max_value=(1 << s) - 1))
    context = data.draw(st.integers(min_value=0, max_value=(1 << (64 - s - e)) - 1))
    kid = make_kid(epoch, leaf, epoch_bits=e, index_bits=s, context_id=context)
    assert kid == model_kid(epoch, leaf, e, s, context)
    assert 0 <= kid < 2**64
    assert parse_kid(kid, epoch_bits=e, index_bits=s) == (epoch % (1 << e), leaf, context)


def test_kid_field_overflow_is_rejected() -> None:
    with pytest.raises(ConfigurationError):
        make_kid(0, 8, epoch_bits=4, index_bits=3)
    with pytest.raises(ConfigurationError):
        make_kid(0, 0, epoch_bits=4, index_bits=4, context_id=1 << 56)
    with pytest.raises(ConfigurationError):
        make_kid(0, 0, epoch_bits=40, index_bits=30)


def _pair(clock: Clock, e: int = 4) -> tuple[MLSKeyManager, MLSKeyManager]:
    suite = RFC9605_SUITES[3]
    return MLSKeyManager(suite, e, clock), MLSKeyManager(suite, e, clock)


def _advance(a: MLSKeyManager, b: MLSKeyManager, epoch: int) -> None:
    a.set_epoch(epoch, fake_exporter(epoch_secret(epoch)), 1, 8)
    b.set_epoch(epoch, fake_exporter(epoch_secret(epoch)), 5, 8)


def test_previous_epoch_grace_period() -> None:
    clock = Clock()
    alice, bob = _pair(clock)
    _advance(alice, bob, 1)
    early = alice.protect(b"", b"early")
    late = alice.protect(b"", b"late")
    too_late = alice.protect(b"", b"too late")
    bob.unprotect(early)
    clock.now = 10.0
    _advance(alice, bob, 2)  # epoch 1 retired at t=10, usable until t=12
    assert bob.unprotect(alice.protect(b"", b"new")).epoch == 2
    clock.now = 11.999
    assert bob.unprotect(late).plaintext == b"late"
    clock.now = 12.0
    with pytest.raises(UnknownKeyError, match="epoch"):
        bob.unprotect(too_late)
    assert bob.live_epochs() == [2]


def test_epoch_with_same_low_bits_evicts_old_epoch() -> None:
    clock = Clock()
    alice, bob = _pair(clock, e=2)
    _advance(alice, bob, 1)
    old = alice.protect(b"", b"epoch 1")
    _advance(alice, bob, 5)  # 5 % 4 == 1 % 4: epoch 1 must go at once
    assert bob.live_epochs() == [5]
    with pytest.raises(AuthenticationError):  # the KID now denotes epoch 5
        bob.unprotect(old)


def test_unknown_epoch_own_leaf_and_outside_group() -> None:
    clock = Clock()
    alice, bob = _pair(clock)
    _advance(alice, bob, 3)
    with pytest.raises(UnknownKeyError):  # epoch bits 4 match no live epoch
        bob.unprotect(encode_header(model_kid(4, 1, 4, 3), 0) + bytes(20))
    with pytest.raises(UnknownKeyError, match="own leaf"):
        bob.unprotect(encode_header(model_kid(3, 5, 4, 3), 0) + bytes(20))
    bob.set_epoch(4, fake_exporter(b"z"), 5, 6)  # 6 leaves: S = 3, leaf 6 and 7 unused
    with pytest.raises(UnknownKeyError, match="outside the group"):
        bob.unprotect(encode_header(model_kid(4, 7, 4, 3), 0) + bytes(20))


def test_replay_through_manager_and_no_epoch_yet() -> None:
    clock = Clock()
    alice, bob = _pair(clock)
    with pytest.raises(UnknownKeyError):
        alice.protect(b"", b"x")
    with pytest.raises(UnknownKeyError):
        bob.unprotect(b"\x00" + bytes(20))
    _advance(alice, bob, 0)
    frame = alice.protect(b"m", b"x")
    bob.unprotect(frame, b"m")
    with pytest.raises(ReplayError):
        bob.unprotect(frame, b"m")


def test_forged_frames_are_rejected() -> None:
    clock = Clock()
    alice, bob = _pair(clock)
    _advance(alice, bob, 0)
    frame = bytearray(alice.protect(b"", b"payload"))
    frame[-1] ^= 0x80
    with pytest.raises(SFrameError):
        bob.unprotect(bytes(frame))


def test_set_epoch_validation() -> None:
    manager = MLSKeyManager(RFC9605_SUITES[3], 4, Clock())
    manager.set_epoch(5, fake_exporter(b"a"), 0, 2)
    for epoch in (5, 4, -1):
        with pytest.raises(ConfigurationError):
            manager.set_epoch(epoch, fake_exporter(b"a"), 0, 2)
    with pytest.raises(ConfigurationError):
        manager.set_epoch(6, fake_exporter(b"a"), 2, 2)  # leaf outside the group
    with pytest.raises(ConfigurationError):
        manager.set_epoch(6, lambda label, ctx, n: b"short", 0, 2)
