"""A departed member's last SFrame secrets decrypt nothing of the later epochs, and this
check is live: with SFrame key reuse across epochs patched into the meeting, it fails.

The check (tests/meeting/removal_check.py) derives, from the departed member's last
base key, the key and salt of each new frame's own KID and tries the AEAD. The
mutations make the meeting use one SFrame base key in every epoch, in the two places
it could go wrong:

* ``derive_base_key``: the key manager's derivation (clave.sframe.mls) returns the
  first base key it ever derived, whatever the epoch's exporter says;
* ``exporter``: the group's MLS-Exporter returns one value for the SFrame label in
  every epoch (what the meeting itself would export too).

A spy on ``derive_base_key`` records, for every epoch each member installs, the RFC
value of the exporter and the key actually used, so the departed member's key *in use*
is known in both mutations (without the mutation the two are equal: the meeting uses
exactly the RFC 9605 section 5.2 base key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from meeting_harness import Client, Net
from removal_check import (
    BASE_KEY_LABEL,
    assert_departed_cannot_decrypt,
    base_key_opens,
    frame_kid,
    last_base_key,
)

import clave.sframe.mls as sframe_mls
from clave.engine import audit
from clave.meeting import MediaFrameDecrypted, MeetingEnded, Removed
from clave.mls.group import Group
from clave.sframe.suites import get_suite
from clave.wire.media import StreamKind

MUTATIONS = ("derive_base_key", "exporter")


@dataclass
class KeyUse:
    """For every epoch each member installed: the RFC 9605 section 5.2 base key (the
    epoch's exporter, asked by the spy itself) and the key ``derive_base_key`` returned."""

    calls: list[tuple[bytes, bytes]] = field(default_factory=list)

    def in_use(self, exported: bytes) -> bytes:
        """The base key the members used in the epoch whose exporter gave ``exported``."""
        used = {key for rfc, key in self.calls if rfc == exported}
        assert len(used) == 1, f"{len(used)} base keys in use for this epoch's exporter value"
        return used.pop()


def _install(monkeypatch: pytest.MonkeyPatch, mutation: str | None) -> KeyUse:
    """Spy on the meeting's SFrame base-key derivation, with the given mutation."""
    use = KeyUse()
    original = sframe_mls.derive_base_key
    first: list[bytes] = []

    def spy(suite: object, exporter: Callable[[bytes, bytes, int], bytes]) -> bytes:
        used = original(suite, exporter)  # type: ignore[arg-type]
        if mutation == "derive_base_key":
            first.append(used)
            used = first[0]
        rfc = exporter(BASE_KEY_LABEL.encode(), b"", get_suite(suite).nk)  # type: ignore[arg-type]
        use.calls.append((rfc, used))
        return used

    monkeypatch.setattr(sframe_mls, "derive_base_key", spy)
    if mutation == "exporter":
        export = Group.export_secret
        reused: dict[int, bytes] = {}

        def same_every_epoch(self: Group, label: str | bytes, context: bytes, n: int) -> bytes:
            name = label.decode() if isinstance(label, bytes) else label
            if name == BASE_KEY_LABEL:
                return reused.setdefault(n, export(self, label, context, n))
            return export(self, label, context, n)

        monkeypatch.setattr(Group, "export_secret", same_every_epoch)
    return use


def _meeting_of_three(net: Net) -> tuple[Client, Client, Client]:
    alice = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(alice, bob)
    alice.meeting.set_auto_admit(True)
    net.pump()
    carol = net.guest("Carol")
    net.pump()
    assert carol.meeting.phase == "in_meeting", carol.events
    return alice, bob, carol


def _send_round(net: Net, senders: list[Client], tag: bytes) -> list[bytes]:
    """Each sender sends a video keyframe and an audio frame; every other present
    member decrypts each of them (the frames are genuine)."""
    for c in net.clients:
        c.clear()
    frames = []
    for s in senders:
        for kind in (StreamKind.video, StreamKind.audio):
            payload = tag + b" " + s.name.encode() + b" " + kind.name.encode()
            frames.append(net.send_media(s, kind, kind == StreamKind.video, payload))
    net.pump()
    for r in senders:
        got = sorted(e.payload for e in r.of(MediaFrameDecrypted))
        want = sorted(
            tag + b" " + s.name.encode() + b" " + k.name.encode()
            for s in senders
            if s is not r
            for k in (StreamKind.video, StreamKind.audio)
        )
        assert got == want, (r.name, got)
    return frames


@dataclass
class Departure:
    key: bytes
    """The departed member's last base key as the meeting exports it."""
    epoch: int
    before: list[bytes]
    """Frames of the departed member's last epoch (it decrypted them)."""
    after: list[bytes]
    """Frames of the epoch after its removal."""


def _depart(net: Net, how: str) -> Departure:
    """A meeting of three; Carol departs ``how``; Alice and Bob send in the new epoch."""
    alice, bob, carol = _meeting_of_three(net)
    epoch = carol.meeting.epoch
    assert epoch is not None
    key = last_base_key(carol, net.config)
    before = _send_round(net, [alice, bob], b"before")
    assert len(carol.of(MediaFrameDecrypted)) == len(before)
    if how == "removed":
        alice.meeting.remove_member(carol.meeting.own_leaf or 0)
    elif how == "leaves":
        carol.meeting.leave()
    else:  # the relay reports her gone; the host removes her after the resume window
        net.disconnect(carol)
        net.wait_out_resume_window()
    net.pump()
    if how == "removed":
        assert carol.of(Removed) and carol.meeting.phase == "ended"
    elif how == "leaves":
        assert carol.of(MeetingEnded) and carol.meeting.phase == "ended"
    assert alice.meeting.epoch == bob.meeting.epoch == epoch + 1
    assert [r.name for r in alice.meeting.roster] == ["Alice", "Bob"]
    after = _send_round(net, [alice, bob], b"after")
    return Departure(key, epoch, before, after)


@pytest.mark.parametrize("how", ["removed", "leaves", "vanished"])
def test_departed_members_last_keys_decrypt_nothing_new(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    use = _install(monkeypatch, None)
    net = Net()
    d = _depart(net, how)
    suite = net.config.sframe_suite
    held = use.in_use(d.key)  # what the departed member's key manager used
    # The check can succeed: the key opens the frames of the departed member's epoch.
    assert all(base_key_opens(f, held, net.config) for f in d.before)
    assert all(audit.base_key_opens(f, held, suite=suite) for f in d.before)
    # The new frames are under new key ids, and the old key opens none of them.
    assert {frame_kid(f) for f in d.after}.isdisjoint(frame_kid(f) for f in d.before)
    assert assert_departed_cannot_decrypt(held, d.epoch, d.after, net.config) == len(d.after)
    assert not any(audit.base_key_opens(f, held, suite=suite) for f in d.after)
    # The key in use is the RFC 9605 section 5.2 base key, the one the meeting exports
    # (so scenarios may take it from Meeting.export_secret).
    assert held == d.key, "the SFrame base key in use is not the epoch's MLS exporter value"


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_with_key_reuse_across_epochs_the_check_fails(
    monkeypatch: pytest.MonkeyPatch, mutation: str
) -> None:
    use = _install(monkeypatch, mutation)
    net = Net()
    d = _depart(net, "removed")  # the meeting itself still works: everyone uses one key
    assert len(use.calls) >= 6, "the meeting no longer derives its keys via derive_base_key"
    held = use.in_use(d.key)  # what the departed member's key manager actually used
    assert len({key for _, key in use.calls}) == 1, "the mutation did not take"
    assert all(base_key_opens(f, held, net.config) for f in d.before)
    # The departed member's last key now decrypts every frame of the new epoch, under
    # the new key ids, and both the check and the audits' primitive say so.
    assert all(base_key_opens(f, held, net.config) for f in d.after)
    assert all(audit.base_key_opens(f, held, suite=net.config.sframe_suite) for f in d.after)
    with pytest.raises(AssertionError, match="did not change with the epoch"):
        assert_departed_cannot_decrypt(held, d.epoch, d.after, net.config)
