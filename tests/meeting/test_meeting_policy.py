"""The meeting policy hook: who may commit what (one decision per test row)."""

from __future__ import annotations

import os

import pytest

from clave.meeting.policy import (
    CAPABILITIES,
    MEETING_POLICY_EXTENSION_TYPE,
    MeetingPolicy,
    check,
    host_of,
    initial_extensions,
    meeting_policy,
    remover_of,
    with_policy,
)
from clave.mls.ciphersuite import get_suite
from clave.mls.errors import PolicyError
from clave.mls.events import Member, PolicyInput
from clave.mls.key_package import create_key_package
from clave.mls.structs import (
    Add,
    Credential,
    Extension,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    Remove,
    Update,
)

SUITE = get_suite(1)
KP = create_key_package(
    SUITE, Credential.basic(os.urandom(16) + b"Eve"), rng=os.urandom, now=1_800_000_000,
    capabilities=CAPABILITIES,
).key_package
UNLOCKED = initial_extensions(MeetingPolicy())
LOCKED = initial_extensions(MeetingPolicy(locked=True))


def roster(*leaves: int) -> tuple[Member, ...]:
    return tuple(Member(i, Credential.basic(b"x"), bytes([i]), bytes([i])) for i in leaves)


def commit(
    committer: int | None,
    *proposals: Proposal,
    leaves: tuple[int, ...] = (0, 1, 2, 3),
    extensions: tuple[Extension, ...] = UNLOCKED,
    kind: str = "commit",
    senders: tuple[int | None, ...] | None = None,
) -> PolicyInput:
    who = senders or tuple(committer for _ in proposals)
    return PolicyInput(kind, committer, tuple(zip(who, proposals, strict=True)), roster(*leaves),
                       extensions, False)


def gce(policy: MeetingPolicy, base: tuple[Extension, ...] = UNLOCKED) -> GroupContextExtensions:
    return GroupContextExtensions(with_policy(base, policy))


ALLOWED = {
    "host adds": commit(0, Add(KP)),
    "host adds several and removes": commit(0, Add(KP), Remove(2), Remove(3)),
    "host removes": commit(0, Remove(1)),
    "host with a gap in the tree adds": commit(1, Add(KP), leaves=(1, 4)),
    "host locks": commit(0, gce(MeetingPolicy(locked=True))),
    "host unlocks": commit(0, gce(MeetingPolicy(), LOCKED), extensions=LOCKED),
    "host toggles auto-admit": commit(0, gce(MeetingPolicy(auto_admit=True))),
    "handover: next in line removes the host": commit(1, Remove(0)),
    "handover: host and next both gone": commit(2, Remove(0), Remove(1)),
    "handover and more removals": commit(1, Remove(0), Remove(3)),
    "key refresh by anyone": commit(3),
    "key refresh by the host": commit(0),
    "host removes while locked": commit(0, Remove(2), extensions=LOCKED),
}

REFUSED = {
    "guest adds": (commit(1, Add(KP)), "only the host"),
    "add while locked": (commit(0, Add(KP), extensions=LOCKED), "locked"),
    "add and lock together": (commit(0, gce(MeetingPolicy(locked=True)), Add(KP)), "locked"),
    "guest changes settings": (commit(2, gce(MeetingPolicy(auto_admit=True))), "only the host"),
    "guest removes a guest": (commit(1, Remove(2)), "may not remove"),
    "wrong member takes over": (commit(2, Remove(0)), "may not remove"),
    "takeover with a spurious extra removal": (commit(2, Remove(0), Remove(3)), "may not"),
    "host removes, guest commits": (commit(3, Remove(0), Remove(1)), "may not remove"),
    "GCE drops required_capabilities": (
        commit(0, GroupContextExtensions((MeetingPolicy().to_extension(),))),
        "only change the meeting policy",
    ),
    "GCE with malformed policy": (
        commit(0, GroupContextExtensions((Extension(MEETING_POLICY_EXTENSION_TYPE, b"\xc1"),
                                          UNLOCKED[1]))),
        "malformed",
    ),
    "proposal by reference": (
        commit(0, Remove(2), senders=(1,)),
        "by reference",
    ),
    "standalone proposal": (commit(None, Remove(1), kind="proposal", senders=(1,)), "standalone"),
    "external commit": (commit(None, kind="external_commit"), "Welcome"),
    "update by value": (commit(0, Update(KP.leaf_node)), "Update"),
    "psk": (commit(0, PreSharedKey(PreSharedKeyID.external(b"id", b"n" * 32))), "PreSharedKey"),
}


@pytest.mark.parametrize("info", ALLOWED.values(), ids=ALLOWED.keys())
def test_allowed(info: PolicyInput) -> None:
    check(info)


@pytest.mark.parametrize(("info", "why"), REFUSED.values(), ids=REFUSED.keys())
def test_refused(info: PolicyInput, why: str) -> None:
    with pytest.raises(PolicyError, match=why):
        check(info)


def test_roles() -> None:
    assert host_of([3, 1, 2]) == 1
    assert host_of([]) is None
    assert remover_of([0, 1, 2], [2]) == 0
    assert remover_of([0, 1, 2], [0]) == 1
    assert remover_of([0, 1, 2], [0, 1]) == 2
    assert remover_of([0], [0]) is None
    assert remover_of([0, 1], [7]) == 0


def test_policy_extension_codec() -> None:
    assert meeting_policy(()) == MeetingPolicy()
    p = MeetingPolicy(locked=True, auto_admit=True)
    ext = p.to_extension()
    assert ext.extension_type == 0xF0C1
    assert ext.extension_data == b"\x82\xa6locked\xc3\xaaauto_admit\xc3"
    assert meeting_policy((ext,)) == p
    assert meeting_policy(with_policy(UNLOCKED, p)) == p
    assert with_policy((), p) == (ext,)
    with pytest.raises(PolicyError, match="more than once"):
        meeting_policy((ext, ext))
    for bad in (b"", b"\x81\xa6locked\x01", b"\x83\xa6locked\xc3\xaaauto_admit\xc3\xa1x\xc3"):
        with pytest.raises(PolicyError):
            meeting_policy((Extension(0xF0C1, bad),))
