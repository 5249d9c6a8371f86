"""The audits' view of SFrame keys (clave.engine.audit): which keys are in use in a
recording, and whether a base key opens a frame under the frame's own KID.

Frames are built here by hand from RFC 9605 (section 4.4.2 key/salt, 4.4.3 nonce and
AAD, section 5.2 KIDs), independently of the key manager.
"""

from __future__ import annotations

import os

from clave.engine.audit import base_key_opens, collect_sframe_keys, find_leaks, media_frames
from clave.sframe.header import encode_header
from clave.sframe.suites import AES_128_GCM_SHA256_128, derive_key_salt
from clave.wire.media import StreamKind, encode_media, media_aad

SUITE = AES_128_GCM_SHA256_128
E = 4  # epoch bits


def kid(epoch: int, leaf: int) -> int:
    return (leaf << E) + (epoch % (1 << E))


def frame(base_key: bytes, k: int, ctr: int, payload: bytes, keyframe: bool = False) -> bytes:
    key, salt = derive_key_salt(SUITE, k, base_key)
    header = encode_header(k, ctr)
    nonce = (int.from_bytes(salt, "big") ^ ctr).to_bytes(SUITE.nn, "big")
    kind = StreamKind.video if keyframe else StreamKind.audio
    ct = SUITE.aead(key).encrypt(nonce, payload, header + media_aad(kind, keyframe))
    return encode_media(kind, keyframe, header + ct)


def test_base_key_opens_only_under_its_own_epochs_keys() -> None:
    old, new = os.urandom(16), os.urandom(16)
    before = frame(old, kid(3, 1), 7, b"epoch 3 from leaf 1", keyframe=True)
    after = frame(new, kid(4, 1), 0, b"epoch 4 from leaf 1")
    assert base_key_opens(before, old, suite=SUITE)
    assert not base_key_opens(after, old, suite=SUITE)
    assert base_key_opens(after, new, suite=SUITE)
    # Key reuse across epochs: the old base key then opens the new KID's frame.
    reused = frame(old, kid(4, 1), 0, b"epoch 4, same base key")
    assert base_key_opens(reused, old, suite=SUITE)
    # Anything altered or not a media frame does not open.
    tampered = bytearray(before)
    tampered[2] ^= 0x80  # the keyframe flag is in the AAD
    assert not base_key_opens(bytes(tampered), old, suite=SUITE)
    assert not base_key_opens(b"\x01C control", old, suite=SUITE)
    assert not base_key_opens(before[:9], old, suite=SUITE)


def test_collect_finds_each_senders_key_and_salt_and_proves_them_in_use() -> None:
    k2, k3 = os.urandom(16), os.urandom(16)
    recorded = [b"\x01C not media"]
    for leaf in (0, 1):
        recorded += [frame(k2, kid(2, leaf), c, b"e2 %d %d" % (leaf, c)) for c in range(4)]
    for leaf in (0, 1, 2):
        recorded += [frame(k3, kid(3, leaf), c, b"e3 %d %d" % (leaf, c)) for c in range(2)]
    epochs = {"ada": [(2, k2), (3, k3)], "grace": [(2, k2), (3, k3)], "linus": [(3, k3)]}
    inv = collect_sframe_keys(epochs, recorded, suite=SUITE, epoch_bits=E)
    assert inv.media_frames == len(media_frames(recorded)) == 8 + 6
    assert inv.kids_recorded == {kid(2, 0), kid(2, 1), kid(3, 0), kid(3, 1), kid(3, 2)}
    assert inv.kids_unverified == frozenset() and inv.complete
    assert [(e.participant, e.epoch, len(e.senders)) for e in inv.epochs] == [
        ("ada", 2, 2), ("ada", 3, 3), ("grace", 2, 2), ("grace", 3, 3), ("linus", 3, 3)
    ]
    assert inv.base_keys == [k2, k3]
    senders = {s.kid: s for s in inv.sender_keys}
    assert len(senders) == 5
    for k, s in senders.items():
        base = k2 if k & 0xF == 2 else k3
        assert (s.key, s.salt) == derive_key_salt(SUITE, k, base)
        assert s.opened >= 1 and s.frames == (4 if base is k2 else 2)
    assert len(inv.secrets) == 2 + 5 + 5
    # Planted in the recording, each of them is found by the leak search.
    for secret in inv.secrets:
        assert find_leaks([*recorded, b"x" + secret], frames=[], keys=inv.secrets).keys_found == 1


def test_a_wrong_base_key_leaves_its_kids_unverified() -> None:
    """What catches a search for keys that are not the ones in use."""
    k2, wrong = os.urandom(16), os.urandom(16)
    recorded = [frame(k2, kid(2, leaf), 0, b"x") for leaf in (0, 1)]
    inv = collect_sframe_keys({"ada": [(2, wrong)]}, recorded, suite=SUITE, epoch_bits=E)
    assert inv.kids_unverified == {kid(2, 0), kid(2, 1)} and not inv.complete
    assert inv.sender_keys == [] and inv.epochs[0].senders == ()
    # Half right: one epoch's key is correct, the other's is not.
    k3 = os.urandom(16)
    recorded += [frame(k3, kid(3, 0), 0, b"y")]
    inv = collect_sframe_keys(
        {"ada": [(2, k2), (3, wrong)]}, recorded, suite=SUITE, epoch_bits=E
    )
    assert inv.kids_unverified == {kid(3, 0)}
    # Nothing recorded is never complete.
    assert not collect_sframe_keys({"ada": [(2, k2)]}, [], suite=SUITE, epoch_bits=E).complete
