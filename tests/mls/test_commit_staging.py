"""One staging path for every commit, the roster it carries, and GroupInfo built on demand.

``commit_stage.stage_commit`` turns a proposal list into the next epoch both
for the commits a member makes (``commit_build``) and for those it receives;
the committer and every receiver must stage the very same epoch. The roster is
carried from epoch to epoch (only the leaves a commit changed are rebuilt), so
it must always equal the one computed afresh from the tree. The signed
GroupInfo with the ratchet tree is built only for a Welcome or when asked for,
and the tree encoding it reuses must be byte for byte the tree's own.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from group_helpers import PUBLIC, World, assert_agree, commit_and_deliver, deliver

import clave.mls.commit_build as commit_build
import clave.mls.commit_stage as commit_stage
from clave.mls.events import ApplicationMessage, CommitProcessed
from clave.mls.group_info import RatchetTreeEncoder
from clave.mls.group_records import EpochState, Roster, StagedCommit
from clave.mls.structs import PreSharedKeyID, RequiredCapabilities

Staged = list[tuple[bool, StagedCommit]]


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> Staged:
    """Every call of stage_commit, from either side: (our own commit?, what it staged)."""
    calls: Staged = []
    original = commit_stage.stage_commit

    def recording(*args: Any, **kwargs: Any) -> StagedCommit:
        out = original(*args, **kwargs)
        calls.append((kwargs["side"].own, out))
        return out

    monkeypatch.setattr(commit_stage, "stage_commit", recording)
    monkeypatch.setattr(commit_build, "stage_commit", recording)
    return calls


def _fresh_roster(epoch: EpochState) -> list[object]:
    return list(Roster.of(epoch.tree).members())


def _check_same_epoch(calls: Staged, receivers: int) -> None:
    """The committer's staging and each receiver's produced the same epoch."""
    assert [own for own, _ in calls] == [True] + [False] * receivers
    mine = calls[0][1]
    for _, theirs in calls[1:]:
        a, b = mine.epoch, theirs.epoch
        assert a.context_bytes == b.context_bytes
        assert a.interim_transcript_hash == b.interim_transcript_hash
        assert a.confirmation_tag == b.confirmation_tag
        assert theirs.content == mine.content
        assert dataclasses.replace(theirs.summary, removed_self=False) == mine.summary
        if not theirs.summary.removed_self:  # a removed member cannot derive the epoch
            assert a.secrets == b.secrets
    for _, s in calls:
        assert s.epoch.roster is not None
        assert list(s.epoch.roster.members()) == _fresh_roster(s.epoch)
    calls.clear()


def test_committer_and_receivers_stage_the_same_epoch(staged: Staged) -> None:
    w = World()
    alice, bob, carol, dave = w.group_of(["alice", "bob", "carol", "dave"])
    staged.clear()
    group = [alice, bob, carol, dave]

    commit_and_deliver(alice, [bob, carol, dave])  # a path only
    _check_same_epoch(staged, 3)

    (erin, fred) = w.add(bob, [alice, carol, dave], ["erin", "fred"])  # adds, no path
    _check_same_epoch(staged, 3)
    group += [erin, fred]

    deliver(carol.propose_update(), [alice, bob, dave, erin, fred])  # by reference
    commit_and_deliver(dave, [alice, bob, carol, erin, fred], remove=[fred.own_leaf_index])
    _check_same_epoch(staged, 5)
    group.remove(fred)

    ext = RequiredCapabilities().to_extension()
    commit_and_deliver(erin, [alice, bob, carol, dave], extensions=[ext], wire_format=PUBLIC)
    _check_same_epoch(staged, 4)

    for g in group:
        g.add_external_psk(b"psk", b"secret")
    pid = PreSharedKeyID.external(b"psk", w.rng(w.suite.nh))
    commit_and_deliver(alice, [bob, carol, dave, erin], psks=[pid])
    _check_same_epoch(staged, 4)

    # Removing the rightmost members truncates the tree; adding extends it again.
    commit_and_deliver(alice, [bob, carol, dave], remove=[erin.own_leaf_index])
    _check_same_epoch(staged, 3)
    group.remove(erin)
    assert_agree(group)


def test_an_external_commit_is_staged_alike(staged: Staged) -> None:
    w = World()
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    staged.clear()
    # carol comes back from another device, removing her old leaf (a resync).
    carol2, commit = w.join_external(alice.group_info(), "carol", resync_leaf=2)
    events = deliver(commit, [alice, bob])
    assert all(isinstance(e, CommitProcessed) for e in events)
    _check_same_epoch(staged, 2)
    assert carol2.own_leaf_index == carol.own_leaf_index == 2
    assert_agree([alice, bob, carol2])


def test_the_roster_is_carried_across_epochs() -> None:
    w = World()
    members = w.group_of(["alice", "bob", "carol", "dave", "erin"])
    alice = members[0]
    for round_ in range(3):
        names = [f"new{round_}-{i}" for i in range(3)]
        others = [g for g in members if g is not alice]
        members += w.add(alice, others, names)
        victim = members[2]
        others = [g for g in members if g not in (alice, victim)]
        commit_and_deliver(alice, others, remove=[victim.own_leaf_index])
        members.remove(victim)
        for g in members:
            assert g._epoch.roster is not None
            assert list(g._epoch.roster.members()) == _fresh_roster(g._epoch)
            assert g.roster() == list(Roster.of(g._epoch.tree).members())
    assert_agree(members)


def test_group_info_is_signed_only_for_a_welcome_or_on_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = World()
    alice, bob = w.group_of(["alice", "bob"])
    signed: list[object] = []
    original = commit_build.create_group_info

    def counting(*args: Any, **kwargs: Any) -> Any:
        signed.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(commit_build, "create_group_info", counting)
    out = alice.commit(remove=[bob.own_leaf_index])
    assert out.welcome is None and not signed
    info = out.group_info
    assert len(signed) == 1 and out.group_info == info and len(signed) == 1
    alice.merge_pending_commit()
    # The same GroupInfo the group gives for the epoch (deterministic signatures).
    assert alice.group_info() == info

    out = alice.commit(add=[w.key_package("carol").key_package.to_bytes()])
    assert out.welcome is not None and len(signed) == 3
    assert out.group_info and len(signed) == 3  # the Welcome's, already built


def test_the_lazy_group_info_lets_a_client_join_externally() -> None:
    w = World()
    alice, bob = w.group_of(["alice", "bob"])
    out = alice.commit()
    alice.merge_pending_commit()
    deliver(out.commit, [bob])
    carol, commit = w.join_external(out.group_info, "carol")
    deliver(commit, [alice, bob])
    assert_agree([alice, bob, carol])


def test_the_tree_encoder_matches_the_tree_encoding() -> None:
    w = World()
    members = w.group_of(["alice", "bob", "carol", "dave", "erin"])
    alice = members[0]
    encoder = RatchetTreeEncoder()
    for step in range(4):
        tree = alice._epoch.tree
        assert encoder.encode(tree) == tree.to_bytes()
        assert encoder.extension(tree) == tree.to_extension()
        clone = copy.deepcopy((tree, encoder))
        assert clone[1].encode(clone[0]) == tree.to_bytes()
        victim = members[-1] if step % 2 else members[1]
        others = [g for g in members if g not in (alice, victim)]
        commit_and_deliver(alice, others, remove=[victim.own_leaf_index])
        members.remove(victim)
        members += w.add(alice, [g for g in members if g is not alice], [f"x{step}"])
    assert alice.ratchet_tree() == alice._epoch.tree.to_bytes()


def test_application_messages_after_many_staged_epochs() -> None:
    w = World()
    alice, bob = w.group_of(["alice", "bob"])
    for _ in range(3):
        commit_and_deliver(bob, [alice])
    event = alice.process(bob.send(b"hi"))
    assert isinstance(event, ApplicationMessage) and event.data == b"hi"
