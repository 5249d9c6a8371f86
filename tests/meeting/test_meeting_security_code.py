"""Security code: format, independent recomputation, entropy, what changes it and what not.

The code is derived from the group id and the membership (leaf, signature key,
credential): it changes when someone joins or leaves, or a key or credential is
substituted, but not when members refresh their encryption keys.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
from collections import Counter

from meeting_harness import Net, view

from clave.meeting import EpochChanged, security_code
from clave.mls.events import Member
from clave.mls.structs import Credential

GROUP_ID = bytes(range(16))


def member(leaf: int, sig: bytes, name: bytes, enc: bytes | None = None) -> Member:
    return Member(leaf, Credential.basic(name), sig, enc if enc is not None else os.urandom(32))


def random_members(n: int) -> list[Member]:
    return [member(i, os.urandom(32), b"CLV2" + os.urandom(96) + b"name %d" % i) for i in range(n)]


MEMBERS = [
    member(0, bytes(range(32)), b"Alice", bytes(32)),
    member(2, bytes(range(32, 64)), b"Bob" * 30, bytes(32)),  # a 90-byte identity
]


def varint(n: int) -> bytes:
    """RFC 9420 section 2.1.2, written out independently."""
    if n < 1 << 6:
        return n.to_bytes(1, "big")
    if n < 1 << 14:
        return (n | 0x4000).to_bytes(2, "big")
    return (n | 0x8000_0000).to_bytes(4, "big")


def by_hand(group_id: bytes, members: list[Member]) -> str:
    data = b"clave v2 security code" + varint(len(group_id)) + group_id
    for m in sorted(members, key=lambda m: m.leaf_index):
        identity = m.credential.identity or b""
        data += m.leaf_index.to_bytes(4, "big")
        data += varint(len(m.signature_key)) + m.signature_key
        data += varint(len(identity)) + identity
    digest = hashlib.sha256(data).digest()
    return str(int.from_bytes(digest[:16], "big") % 10**35).zfill(35)


def test_format() -> None:
    code = security_code(os.urandom(16), random_members(3))
    assert re.fullmatch(r"\d{5}( \d{5}){6}", code)


def test_matches_independent_computation() -> None:
    assert security_code(GROUP_ID, MEMBERS).replace(" ", "") == by_hand(GROUP_ID, MEMBERS)
    for n in (1, 2, 5):
        members = random_members(n)
        group_id = os.urandom(16)
        assert security_code(group_id, members).replace(" ", "") == by_hand(group_id, members)


def test_entropy_and_zero_padding() -> None:
    assert 35 * math.log2(10) >= 116 > 100
    members = random_members(2)
    codes = {security_code(os.urandom(16), members) for _ in range(3000)}
    assert len(codes) == 3000
    first = Counter(c[0] for c in codes)
    assert set(first) == set("0123456789")  # leading zeros are kept
    assert max(first.values()) < 3 * min(first.values())


def test_same_membership_same_code_in_any_order() -> None:
    members = random_members(4)
    code = security_code(GROUP_ID, members)
    shuffled = list(members)
    random.Random(1).shuffle(shuffled)
    assert security_code(bytes(GROUP_ID), shuffled) == code
    assert security_code(GROUP_ID, iter(members)) == code


def test_only_encryption_keys_may_change() -> None:
    """A key refresh (new encryption keys, RFC 9420 section 12.1.2) keeps the code."""
    members = random_members(3)
    code = security_code(GROUP_ID, members)
    refreshed = [
        Member(m.leaf_index, m.credential, m.signature_key, os.urandom(32)) for m in members
    ]
    assert security_code(GROUP_ID, refreshed) == code


def test_every_membership_change_changes_the_code() -> None:
    a, b, c = random_members(3)
    code = security_code(GROUP_ID, [a, b])
    variants = {
        "someone joined": [a, b, c],
        "someone left": [a],
        "another group": None,
        "substituted signature key": [a, Member(b.leaf_index, b.credential, os.urandom(32), b"")],
        "substituted credential": [
            a,
            Member(b.leaf_index, Credential.basic(b"Mallory"), b.signature_key, b""),
        ],
        "another leaf": [a, Member(b.leaf_index + 1, b.credential, b.signature_key, b"")],
        "same people, other leaves": [
            Member(b.leaf_index, a.credential, a.signature_key, b""),
            Member(a.leaf_index, b.credential, b.signature_key, b""),
        ],
    }
    seen = {code}
    for what, members in variants.items():
        other = (
            security_code(os.urandom(16), [a, b])
            if members is None
            else security_code(GROUP_ID, members)
        )
        assert other != code, what
        seen.add(other)
    assert len(seen) == len(variants) + 1


def test_known_answer() -> None:
    """Pinned for the two members above (recomputed by hand in this file).

    docs/PROTOCOL.md still lists the v1 example (a code from the epoch authenticator).
    """
    assert security_code(GROUP_ID, MEMBERS) == "63744 50666 51077 25719 72782 16280 73776"


def test_in_a_meeting_joins_and_leaves_change_it_refreshes_do_not() -> None:
    net = Net(5)
    host = net.host("Alice")
    net.pump()
    alone = host.meeting.security_code
    assert alone is not None
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    pair = host.meeting.security_code
    assert view(host) == view(bob) and pair not in (None, alone)

    # Key refreshes by either member: new epochs, the same code for both.
    epoch = host.meeting.epoch
    assert epoch is not None
    for who in (host, bob, host):
        who.meeting.refresh_keys()
        net.pump()
    assert host.meeting.epoch == epoch + 3 and bob.meeting.epoch == epoch + 3
    assert host.meeting.security_code == bob.meeting.security_code == pair
    codes = [e.security_code for e in host.of(EpochChanged)]
    assert codes[-3:] == [pair] * 3

    carol = net.guest("Carol")
    net.admit_via_lobby(host, carol)
    trio = host.meeting.security_code
    assert view(host) == view(bob) == view(carol)
    assert trio not in (alone, pair)

    carol.meeting.leave()
    net.pump()
    after = host.meeting.security_code
    assert carol.meeting.phase == "ended"
    assert host.meeting.epoch is not None and host.meeting.epoch > epoch + 4
    assert view(host) == view(bob)
    assert after not in (alone, trio)
    # Bob and Alice again, with the same keys as before Carol came: the same code.
    assert after == pair
