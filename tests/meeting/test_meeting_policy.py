"""The meeting policy hook: who may commit what (one decision per test row).

Roles are by key: leaf 0 holds the owner key (and is host), leaf 1 is the first
successor, leaf 2 the second, leaf 3 a plain member. Certificates are real
(the owner certifies the successors), so every row also exercises the chain
checks.
"""

from __future__ import annotations

import random

import pytest

from clave.meeting.errors import RoleError
from clave.meeting.identity import Identity, make_credential
from clave.meeting.policy import (
    CAPABILITIES,
    MEETING_POLICY_EXTENSION_TYPE,
    TAKEOVER_ACCEPT,
    CommitRules,
    MeetingPolicy,
    initial_extensions,
    meeting_policy,
    validate_policy,
    with_policy,
)
from clave.meeting.roles import HostEntry, extend, owner_entry, suite, verify_entry
from clave.mls.errors import PolicyError
from clave.mls.events import Member, PolicyInput
from clave.mls.key_package import create_key_package
from clave.mls.structs import (
    Add,
    Extension,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    Remove,
    Update,
)

RNG = random.Random(7)


def rng(n: int) -> bytes:
    return RNG.randbytes(n)


SUITE = suite()
GROUP = b"g" * 16
KEYS = [SUITE.generate_signature_key_pair(rng) for _ in range(5)]
PRIV = [k[0] for k in KEYS]
PUB = [k[1] for k in KEYS]
OWNER = owner_entry(PUB[0])
S1 = extend(OWNER, PRIV[0], GROUP, PUB[1])
S2 = extend(OWNER, PRIV[0], GROUP, PUB[2])
BASE = MeetingPolicy(owner=PUB[0], hosts=(OWNER,), successors=(S1, S2))
EXT = initial_extensions(BASE)
LOCKED = initial_extensions(BASE.replace(locked=True))
IDENTITY = Identity.generate(rng)
KP = create_key_package(
    SUITE,
    make_credential(IDENTITY, "Eve", PUB[4]),
    rng=rng,
    now=1_800_000_000,
    signature_priv=PRIV[4],
    capabilities=CAPABILITIES,
).key_package


def roster(*leaves: int) -> tuple[Member, ...]:
    return tuple(
        Member(i, make_credential(IDENTITY, f"m{i}", PUB[i]), PUB[i], b"e") for i in leaves
    )


def commit(
    committer: int | None,
    *proposals: Proposal,
    leaves: tuple[int, ...] = (0, 1, 2, 3),
    extensions: tuple[Extension, ...] = EXT,
    kind: str = "commit",
    senders: tuple[int | None, ...] | None = None,
) -> PolicyInput:
    who = senders or tuple(committer for _ in proposals)
    return PolicyInput(
        kind, committer, tuple(zip(who, proposals, strict=True)), roster(*leaves), extensions, False
    )


def gce(policy: MeetingPolicy, base: tuple[Extension, ...] = EXT) -> GroupContextExtensions:
    return GroupContextExtensions(with_policy(base, policy))


def rules(
    silent: dict[int, float] | None = None, last_refresh_by: int | None = None
) -> CommitRules:
    quiet = silent or {}
    return CommitRules(GROUP, lambda leaf: quiet.get(leaf, 0.0), last_refresh_by)


GONE = {0: TAKEOVER_ACCEPT + 1}
"""The host (leaf 0) has been silent long enough for a takeover."""
S1_AS_HOST = BASE.replace(hosts=(S1,), successors=(S2,))
CO_HOST = extend(OWNER, PRIV[0], GROUP, PUB[3])

ALLOWED: dict[str, tuple[PolicyInput, CommitRules]] = {
    "host adds": (commit(0, Add(KP)), rules()),
    "host adds several and removes": (commit(0, Add(KP), Remove(3)), rules()),
    "host removes a plain member": (commit(0, Remove(3)), rules()),
    "host removes a successor and drops its entry": (
        commit(0, Remove(2), gce(BASE.replace(successors=(S1,)))),
        rules(),
    ),
    "host locks": (commit(0, gce(BASE.replace(locked=True))), rules()),
    "host unlocks": (commit(0, gce(BASE, LOCKED), extensions=LOCKED), rules()),
    "host makes a co-host": (commit(0, gce(BASE.replace(hosts=(OWNER, CO_HOST)))), rules()),
    "owner gives up the host role (handover)": (
        commit(0, gce(BASE.replace(hosts=(S1,), successors=(S2,)))),
        rules(),
    ),
    "takeover by the first successor once the host is silent": (
        commit(1, Remove(0), gce(S1_AS_HOST)),
        rules(GONE),
    ),
    "takeover by the second successor once host and first are silent": (
        commit(2, Remove(0), Remove(1), gce(BASE.replace(hosts=(S2,), successors=()))),
        rules({0: 99.0, 1: 99.0}),
    ),
    "co-host removes a crashed owner": (
        commit(3, Remove(0), gce(BASE.replace(hosts=(CO_HOST,)))),
        rules(GONE),
    ),
    "key refresh by anyone": (commit(3), rules()),
    "key refresh after someone else's": (commit(3), rules(last_refresh_by=2)),
    "host removes while locked": (commit(0, Remove(3), extensions=LOCKED), rules()),
}
_co = initial_extensions(BASE.replace(hosts=(OWNER, CO_HOST)))
ALLOWED["co-host removes a crashed owner"] = (
    commit(3, Remove(0), gce(BASE.replace(hosts=(CO_HOST,)), _co), extensions=_co),
    rules(GONE),
)

FORGED = HostEntry(PUB[3], ())  # no chain: not certified by the owner
BAD_SIG = HostEntry(PUB[3], (S1.chain[0].__class__(PUB[3], S1.chain[0].sig),))

REFUSED: dict[str, tuple[PolicyInput, CommitRules, str]] = {
    "guest adds": (commit(3, Add(KP)), rules(), "not a host"),
    "add while locked": (commit(0, Add(KP), extensions=LOCKED), rules(), "locked"),
    "add and lock together": (
        commit(0, gce(BASE.replace(locked=True)), Add(KP)),
        rules(),
        "locked",
    ),
    "guest changes settings": (
        commit(3, gce(BASE.replace(auto_admit=True))),
        rules(),
        "not a host",
    ),
    "guest removes a guest": (commit(3, Remove(2)), rules(), "not a host"),
    "first guest seizes the meeting while the host is present": (
        commit(1, Remove(0), gce(S1_AS_HOST)),
        rules({0: 1.0}),
        "still present",
    ),
    "takeover by a non-successor": (
        commit(3, Remove(0), gce(BASE.replace(hosts=(CO_HOST,)))),
        rules(GONE),
        "not a host",
    ),
    "second successor jumps the queue": (
        commit(2, Remove(0), gce(BASE.replace(hosts=(S2,), successors=(S1,)))),
        rules(GONE),
        "not a host",
    ),
    "takeover that also changes settings": (
        commit(1, Remove(0), gce(S1_AS_HOST.replace(locked=True))),
        rules(GONE),
        "changes no setting",
    ),
    "takeover with a spurious extra removal": (
        commit(1, Remove(0), Remove(3), gce(S1_AS_HOST)),
        rules(GONE),
        "not a host",
    ),
    "host removes the owner-host while present": (
        commit(3, Remove(0), gce(BASE.replace(hosts=(CO_HOST,)), _co), extensions=_co),
        rules({0: 1.0}),
        "owner cannot be removed",
    ),
    "co-host drops the owner's host role": (
        commit(3, gce(BASE.replace(hosts=(CO_HOST,)), _co), extensions=_co),
        rules(),
        "only the owner",
    ),
    "removing a host without dropping its entry": (
        commit(0, Remove(1)),
        rules(),
        "not a member",
    ),
    "a host entry without a certificate": (
        commit(0, gce(BASE.replace(hosts=(OWNER, FORGED)))),
        rules(),
        "does not end at",
    ),
    "a host certificate signed for another key": (
        commit(0, gce(BASE.replace(hosts=(OWNER, BAD_SIG)))),
        rules(),
        "does not verify",
    ),
    "the owner changes": (
        commit(0, gce(BASE.replace(owner=PUB[3]))),
        rules(),
        "owner never changes",
    ),
    "two key refreshes in a row": (commit(3), rules(last_refresh_by=3), "in a row"),
    "GCE drops required_capabilities": (
        commit(0, GroupContextExtensions((BASE.to_extension(),))),
        rules(),
        "only change the meeting policy",
    ),
    "GCE with malformed policy": (
        commit(
            0, GroupContextExtensions((Extension(MEETING_POLICY_EXTENSION_TYPE, b"\xc1"), EXT[1]))
        ),
        rules(),
        "malformed",
    ),
    "proposal by reference": (commit(0, Remove(3), senders=(1,)), rules(), "by reference"),
    "standalone proposal": (
        commit(None, Remove(1), kind="proposal", senders=(1,)),
        rules(),
        "standalone",
    ),
    "external commit": (commit(None, kind="external_commit"), rules(), "Welcome"),
    "update by value": (commit(0, Update(KP.leaf_node)), rules(), "Update"),
    "psk": (
        commit(0, PreSharedKey(PreSharedKeyID.external(b"id", b"n" * 32))),
        rules(),
        "PreSharedKey",
    ),
}


@pytest.mark.parametrize("case", ALLOWED.values(), ids=ALLOWED.keys())
def test_allowed(case: tuple[PolicyInput, CommitRules]) -> None:
    info, check = case
    check(info)


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_refused(case: tuple[PolicyInput, CommitRules, str]) -> None:
    info, check, why = case
    with pytest.raises(PolicyError, match=why):
        check(info)


def test_policy_extension_codec() -> None:
    policy = BASE.replace(locked=True, auto_admit=True)
    assert meeting_policy(initial_extensions(policy)) == policy
    with pytest.raises(PolicyError, match="no Clave meeting policy"):
        meeting_policy(())
    with pytest.raises(PolicyError, match="more than once"):
        meeting_policy((policy.to_extension(), policy.to_extension()))
    with pytest.raises(PolicyError, match="malformed"):
        meeting_policy((Extension(MEETING_POLICY_EXTENSION_TYPE, b"\x80"),))
    with pytest.raises(PolicyError, match="malformed"):  # a host list may not be empty
        meeting_policy(
            (
                Extension(
                    MEETING_POLICY_EXTENSION_TYPE,
                    b"\x85\xa5owner\xc4\x20"
                    + PUB[0]
                    + b"\xa5hosts\x90\xaasuccessors\x90\xa6locked\xc2"
                    b"\xaaauto_admit\xc2",
                ),
            )
        )


def test_certificate_chains() -> None:
    verify_entry(PUB[0], GROUP, OWNER)
    verify_entry(PUB[0], GROUP, S1)
    grand = extend(S1, PRIV[1], GROUP, PUB[3])
    verify_entry(PUB[0], GROUP, grand)
    with pytest.raises(RoleError):
        verify_entry(PUB[0], b"another group", S1)  # the group id is signed
    with pytest.raises(RoleError):
        verify_entry(PUB[4], GROUP, S1)  # another owner
    with pytest.raises(RoleError):
        verify_entry(PUB[0], GROUP, HostEntry(PUB[3], S1.chain))  # chain for another key
    entry = OWNER
    for i in range(8):
        entry = extend(entry, PRIV[i % 2] if i else PRIV[0], GROUP, PUB[(i + 1) % 2])
    with pytest.raises(RoleError, match="limited"):
        extend(entry, PRIV[1], GROUP, PUB[3])


def test_validate_policy_needs_members_and_distinct_keys() -> None:
    validate_policy(BASE, GROUP, PUB[:3])
    with pytest.raises(PolicyError, match="not a member"):
        validate_policy(BASE, GROUP, PUB[:2])
    with pytest.raises(PolicyError, match="twice"):
        validate_policy(BASE.replace(hosts=(OWNER, S1)), GROUP, PUB[:3])
