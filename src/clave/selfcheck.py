"""`clave demo` until the meeting exists: MLS group keys driving SFrame, end to end.

Three participants form an MLS group (RFC 9420), derive SFrame keys from the
MLS exporter (RFC 9605 section 5.2), and exchange protected frames. The check
then shows what the guarantees mean in practice: a tampered frame, a replayed
frame and a frame from a removed member's keys are all refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from .mls.ciphersuite import get_suite
from .mls.events import CommitProcessed
from .mls.group import Group, Signer
from .mls.key_package import create_key_package
from .mls.structs import Credential
from .sframe import AES_128_GCM_SHA256_128, SFrameError
from .sframe.mls import MLSKeyManager

EPOCH_BITS = 4


@dataclass
class _Participant:
    name: str
    group: Group
    frames: MLSKeyManager

    def rekey(self) -> None:
        g = self.group
        self.frames.set_epoch(g.epoch, g.export_secret, g.own_leaf_index, g.leaf_count)


def _now() -> int:
    return int(time.time())


def run(out: Callable[[str], None] = print) -> bool:
    """Run the self-check, printing each step; True when every check passed."""
    suite = get_suite(1)
    ok = True

    def check(label: str, passed: bool) -> None:
        nonlocal ok
        ok = ok and passed
        out(f"  [{'ok' if passed else 'FAIL'}] {label}")

    def signer(name: str) -> Signer:
        priv, _ = suite.generate_signature_key_pair(os.urandom)
        return Signer(Credential.basic(name.encode()), priv)

    out("MLS (RFC 9420) group, cipher suite 1: X25519, AES-128-GCM, SHA-256, Ed25519")
    alice = Group.create(1, os.urandom(16), signer("alice"), rng=os.urandom, now=_now)
    bundles = {}
    for name in ("bob", "carol"):
        s = signer(name)
        bundles[name] = create_key_package(
            suite, s.credential, rng=os.urandom, now=_now(), signature_priv=s.signature_private_key
        )
    commit = alice.commit(add=[b.key_package.to_bytes() for b in bundles.values()])
    alice.merge_pending_commit()
    assert commit.welcome is not None
    groups = {"alice": alice}
    for name, bundle in bundles.items():
        groups[name] = Group.join(commit.welcome, bundle, rng=os.urandom, now=_now)
    check(
        "alice added bob and carol in one commit; all agree on the epoch authenticator",
        len({g.epoch_authenticator for g in groups.values()}) == 1,
    )

    people = {
        n: _Participant(n, g, MLSKeyManager(AES_128_GCM_SHA256_128, EPOCH_BITS, time.monotonic))
        for n, g in groups.items()
    }
    for p in people.values():
        p.rekey()

    out("SFrame (RFC 9605) keys from the MLS exporter, AES_128_GCM_SHA256_128")
    delivered = 0
    for sender in people.values():
        frame = f"video frame from {sender.name}".encode()
        ct = sender.frames.protect(b"video", frame)
        for receiver in people.values():
            if receiver is sender:
                continue
            got = receiver.frames.unprotect(ct, b"video")
            delivered += got.plaintext == frame and got.leaf_index == sender.group.own_leaf_index
    check(f"every participant decrypts every other's frames ({delivered}/6)", delivered == 6)

    ct = people["bob"].frames.protect(b"video", b"keyframe")
    people["alice"].frames.unprotect(ct, b"video")
    tampered = bytearray(ct)
    tampered[-1] ^= 1
    check("a frame with one flipped bit is refused", _refused(people["carol"], bytes(tampered)))
    check("a replayed frame is refused", _refused(people["alice"], ct))
    check(
        "a frame whose cleartext metadata was changed is refused",
        _refused(people["carol"], ct, metadata=b"audio"),
    )

    out("carol leaves: alice commits her removal, keys change")
    old_carol_frame = people["carol"].frames.protect(b"video", b"carol's stale frame")
    rm = alice.commit(remove=[groups["carol"].own_leaf_index])
    alice.merge_pending_commit()
    groups["bob"].process(rm.commit)
    removed = groups["carol"].process(rm.commit)
    assert isinstance(removed, CommitProcessed)
    del people["carol"]
    for p in people.values():
        p.rekey()
    check("carol's engine learns it was removed", not groups["carol"].active)
    check(
        "alice and bob agree on the new epoch authenticator",
        alice.epoch_authenticator == groups["bob"].epoch_authenticator,
    )
    new_frame = people["alice"].frames.protect(b"video", b"after carol left")
    # Carol's best attempt: her last exporter, labelled with the new epoch and layout.
    carol_keys = MLSKeyManager(AES_128_GCM_SHA256_128, EPOCH_BITS, time.monotonic)
    carol_keys.set_epoch(removed.summary.epoch, groups["carol"].export_secret, 1, alice.leaf_count)
    check(
        "carol's last keys cannot decrypt frames of the new epoch",
        _refused_by(carol_keys, new_frame),
    )
    got = people["bob"].frames.unprotect(old_carol_frame, b"video")
    check(
        "carol's in-flight frame of the old epoch still decrypts during the 2 s grace period",
        got.plaintext == b"carol's stale frame",
    )
    out("self-check " + ("passed" if ok else "FAILED"))
    return ok


def _refused(p: _Participant, data: bytes, metadata: bytes = b"video") -> bool:
    return _refused_by(p.frames, data, metadata)


def _refused_by(frames: MLSKeyManager, data: bytes, metadata: bytes = b"video") -> bool:
    try:
        frames.unprotect(data, metadata)
    except SFrameError:
        return True
    return False
