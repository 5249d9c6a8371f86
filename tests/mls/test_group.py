"""Functional tests of the Group API (RFC 9420 sections 8, 11, 12).

Several clients run in one process, on one deterministic rng and a frozen
clock (group_helpers.World); after every step all members must agree on the
epoch, epoch_authenticator, exporter, roster, tree hash and GroupContext.
"""

from __future__ import annotations

import random

import pytest
from group_helpers import (
    PRIVATE,
    PUBLIC,
    SUITES,
    WIRE_FORMATS,
    World,
    assert_agree,
    clock,
    commit_and_deliver,
    deliver,
    identities,
    roster_view,
    snapshot,
)

from clave.mls import framing
from clave.mls.errors import (
    EpochError,
    GenerationError,
    MLSError,
    PolicyError,
    ProposalError,
    StateError,
)
from clave.mls.events import (
    ApplicationMessage,
    CommitProcessed,
    PolicyInput,
    ProposalReceived,
)
from clave.mls.group import Group, GroupConfig
from clave.mls.key_package import create_key_package
from clave.mls.structs import (
    Add,
    Credential,
    Extension,
    ExternalSender,
    ExternalSenders,
    FramedContent,
    MLSMessage,
    PreSharedKeyID,
    PublicMessage,
    Remove,
    RequiredCapabilities,
    Sender,
    Update,
    WireFormat,
)


def _wire_format(message: bytes) -> WireFormat:
    return MLSMessage.from_bytes(message).wire_format


def _exchange(groups: list[Group], tag: bytes = b"") -> None:
    """Every member sends one application message that every other member reads."""
    for sender in groups:
        data = b"from leaf %d %s" % (sender.own_leaf_index, tag)
        aad = b"aad %d" % sender.own_leaf_index
        msg = sender.send(data, authenticated_data=aad)
        assert _wire_format(msg) == PRIVATE
        for receiver in groups:
            if receiver is sender:
                continue
            event = receiver.process(msg)
            assert isinstance(event, ApplicationMessage)
            assert event.sender == sender.own_leaf_index
            assert (event.data, event.authenticated_data) == (data, aad)
            assert event.epoch == sender.epoch


# -- the main life cycle ----------------------------------------------------------


@pytest.mark.parametrize("wire_format", WIRE_FORMATS, ids=["public", "private"])
@pytest.mark.parametrize("suite_id", SUITES)
def test_life_cycle(suite_id: int, wire_format: WireFormat) -> None:
    w = World(suite_id, config=GroupConfig(handshake_wire_format=wire_format))
    alice = w.create("alice")
    assert (alice.epoch, alice.own_leaf_index, alice.active) == (0, 0, True)
    assert identities(alice.roster()) == [b"alice"]
    assert_agree([alice])

    # Several members added in one commit; each joins from the same Welcome.
    bundles = [w.key_package(n) for n in ("bob", "carol", "dave")]
    out = alice.commit(add=[b.key_package.to_bytes() for b in bundles])
    assert alice.has_pending_commit and alice.epoch == 0
    assert _wire_format(out.commit) == wire_format
    assert out.welcome is not None and _wire_format(out.welcome) == WireFormat.mls_welcome
    summary = alice.merge_pending_commit()
    assert summary == out.summary
    assert (summary.epoch, summary.committer, summary.external) == (1, 0, False)
    assert identities(summary.added) == [b"bob", b"carol", b"dave"]
    assert [m.leaf_index for m in summary.added] == [1, 2, 3]
    assert (summary.removed, summary.updated, summary.removed_self) == ((), (), False)
    bob, carol, dave = (w.join(out.welcome, b) for b in bundles)
    members = [alice, bob, carol, dave]
    assert [g.own_leaf_index for g in members] == [0, 1, 2, 3]
    assert_agree(members)
    assert alice.epoch == 1
    _exchange(members, b"epoch 1")

    # Self-update: a commit with only a path.
    carol_key = carol.member(2).encryption_key
    out = commit_and_deliver(carol, [alice, bob, dave])
    assert _wire_format(out.commit) == wire_format
    assert out.welcome is None
    s = out.summary
    assert (s.epoch, s.committer, s.has_path) == (2, 2, True)
    assert (s.added, s.removed, s.updated, s.extensions_changed) == ((), (), (), False)
    assert carol.member(2).encryption_key != carol_key
    assert_agree(members)
    _exchange(members, b"epoch 2")

    # Remove bob by leaf index; bob learns he was removed.
    bob_before_removal = bob.to_bytes()
    out = commit_and_deliver(dave, [alice, carol, bob], remove=[1])
    assert identities(out.summary.removed) == [b"bob"]
    assert out.summary.removed[0].leaf_index == 1
    assert not out.summary.removed_self
    assert not bob.active
    members = [alice, carol, dave]
    assert_agree(members)
    assert identities(alice.roster()) == [b"alice", b"carol", b"dave"]
    assert [m.leaf_index for m in alice.roster()] == [0, 2, 3]
    msg = alice.send(b"bob must not read this")
    with pytest.raises(StateError):
        bob.process(msg)
    with pytest.raises(StateError):
        bob.send(b"x")
    with pytest.raises(StateError):
        bob.commit()
    # Even bob's state from before the removal cannot open the next epoch's messages.
    with pytest.raises(EpochError):
        w.restore(bob_before_removal).process(msg)
    for g in (carol, dave):
        event = g.process(msg)
        assert isinstance(event, ApplicationMessage) and event.data == b"bob must not read this"
    _exchange(members, b"epoch 3")

    # A new member fills the blank leaf.
    (erin,) = w.add(alice, [carol, dave], ["erin"])
    assert erin.own_leaf_index == 1
    members = [alice, erin, carol, dave]
    assert_agree(members)
    assert alice.epoch == 4
    _exchange(members, b"epoch 4")


@pytest.mark.parametrize("suite_id", SUITES)
def test_summary_from_receiver_side(suite_id: int) -> None:
    """The receivers' CommitProcessed summary names who was added and removed."""
    w = World(suite_id)
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    dave_bundle = w.key_package("dave")
    out = carol.commit(add=[dave_bundle.key_package.to_bytes()], remove=[1])
    carol.merge_pending_commit()
    event = alice.process(out.commit)
    assert isinstance(event, CommitProcessed)
    s = event.summary
    assert (s.epoch, s.committer, s.external, s.has_path, s.removed_self) == (
        2,
        2,
        False,
        True,
        False,
    )
    assert identities(s.added) == [b"dave"] and s.added[0].leaf_index == 1
    assert identities(s.removed) == [b"bob"] and s.removed[0].leaf_index == 1
    removed = bob.process(out.commit)
    assert isinstance(removed, CommitProcessed) and removed.summary.removed_self
    dave = w.join(out.welcome, dave_bundle)
    assert_agree([alice, dave, carol])


# -- proposals by reference -------------------------------------------------------


@pytest.mark.parametrize("wire_format", WIRE_FORMATS, ids=["public", "private"])
@pytest.mark.parametrize("suite_id", SUITES)
def test_update_proposal_committed_by_another_member(
    suite_id: int, wire_format: WireFormat
) -> None:
    w = World(suite_id)
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    old_key = alice.member(1).encryption_key
    proposal = bob.propose_update(wire_format=wire_format)
    assert _wire_format(proposal) == wire_format
    assert bob.pending_proposals == 1
    events = deliver(proposal, [alice, carol])
    refs = set()
    for event in events:
        assert isinstance(event, ProposalReceived)
        assert event.sender.index == 1
        assert isinstance(event.proposal, Update)
        refs.add(event.reference)
    assert len(refs) == 1
    update = events[0]
    assert isinstance(update, ProposalReceived) and isinstance(update.proposal, Update)
    new_key = update.proposal.leaf_node.encryption_key
    assert new_key != old_key
    # Section 12.4: no application data while a proposal is pending.
    with pytest.raises(StateError):
        alice.send(b"too early")

    out = commit_and_deliver(carol, [alice, bob], wire_format=wire_format)
    assert out.summary.updated == (1,)
    assert (out.summary.added, out.summary.removed) == ((), ())
    assert alice.member(1).encryption_key == new_key
    assert alice.pending_proposals == bob.pending_proposals == carol.pending_proposals == 0
    assert_agree([alice, bob, carol])
    _exchange([alice, bob, carol])


def test_own_update_proposal_superseded_by_own_commit() -> None:
    w = World()
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    deliver(bob.propose_update(), [alice, carol])
    out = commit_and_deliver(bob, [alice, carol])
    assert out.summary.updated == ()
    assert out.summary.has_path
    assert_agree([alice, bob, carol])
    _exchange([alice, bob, carol])


def test_add_and_remove_proposals_committed_by_another_member() -> None:
    w = World()
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    dave_bundle = w.key_package("dave")
    deliver(alice.propose_remove(2), [bob, carol])
    deliver(alice.propose_add(dave_bundle.key_package.to_bytes()), [bob, carol])
    out = commit_and_deliver(bob, [alice, carol])
    assert identities(out.summary.removed) == [b"carol"]
    assert identities(out.summary.added) == [b"dave"]
    assert out.summary.committer == 1
    assert not carol.active
    dave = w.join(out.welcome, dave_bundle)
    assert dave.own_leaf_index == 2
    assert_agree([alice, bob, dave])
    _exchange([alice, bob, dave])


def test_commit_without_pending_proposals() -> None:
    w = World()
    alice, bob = w.group_of(["alice", "bob"])
    deliver(alice.propose_update(), [bob])
    out = commit_and_deliver(bob, [alice], include_pending=False)
    assert out.summary.updated == ()
    assert_agree([alice, bob])


# -- GroupContextExtensions --------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_group_context_extensions_commit(suite_id: int) -> None:
    w = World(suite_id)
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    _ds_priv, ds_pub = w.suite.generate_signature_key_pair(w.rng)
    exts = (
        RequiredCapabilities().to_extension(),
        ExternalSenders((ExternalSender(ds_pub, Credential.basic(b"ds")),)).to_extension(),
    )
    out = commit_and_deliver(bob, [alice, carol], extensions=exts)
    assert out.summary.extensions_changed and out.summary.has_path
    for g in (alice, bob, carol):
        assert g.extensions == exts
        assert g.group_context.extensions == exts
    assert_agree([alice, bob, carol])
    # The new extensions reach joiners through the GroupInfo in the Welcome.
    (dave,) = w.add(carol, [alice, bob], ["dave"])
    assert dave.extensions == exts
    assert_agree([alice, bob, carol, dave])
    # A GroupContextExtensions commit can also remove them again.
    out = commit_and_deliver(dave, [alice, bob, carol], extensions=())
    assert out.summary.extensions_changed
    assert alice.extensions == ()
    assert_agree([alice, bob, carol, dave])


def test_group_context_extensions_unsupported_by_a_member_is_refused() -> None:
    w = World()
    alice, _bob = w.group_of(["alice", "bob"])
    before = snapshot(alice)
    with pytest.raises(ProposalError):
        alice.commit(extensions=[Extension(0xFF00, b"needs a capability")])
    assert snapshot(alice) == before
    assert not alice.has_pending_commit


# -- external joins -----------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_join_and_resync(suite_id: int) -> None:
    w = World(suite_id)
    alice, bob = w.group_of(["alice", "bob"])
    carol, commit = w.join_external(bob.group_info(), "carol", authenticated_data=b"hi")
    assert _wire_format(commit) == PUBLIC
    assert carol.epoch == 2 and carol.own_leaf_index == 2
    for event in deliver(commit, [alice, bob]):
        assert isinstance(event, CommitProcessed)
        s = event.summary
        assert (s.epoch, s.external, s.committer, s.has_path) == (2, True, None, True)
        assert identities(s.added) == [b"carol"] and s.added[0].leaf_index == 2
        assert (s.removed, s.updated) == ((), ())
    assert identities(alice.roster()) == [b"alice", b"bob", b"carol"]
    assert_agree([alice, bob, carol])
    _exchange([alice, bob, carol])
    # The joiner's own GroupInfo lets the next one in.
    dave, commit = w.join_external(carol.group_info(), "dave")
    deliver(commit, [alice, bob, carol])
    assert dave.own_leaf_index == 3
    assert_agree([alice, bob, carol, dave])
    commit_and_deliver(alice, [bob, carol, dave], remove=[3])

    # Carol loses her state and rejoins, removing her old leaf in the same commit.
    old_carol = carol
    carol, commit = w.join_external(alice.group_info(), "carol", resync_leaf=2)
    for event in deliver(commit, [alice, bob]):
        assert isinstance(event, CommitProcessed)
        assert event.summary.external
        assert identities(event.summary.removed) == [b"carol"]
        assert event.summary.removed[0].leaf_index == 2
    event = old_carol.process(commit)
    assert isinstance(event, CommitProcessed) and event.summary.removed_self
    assert not old_carol.active
    assert carol.own_leaf_index == 2
    assert identities(alice.roster()) == [b"alice", b"bob", b"carol"]
    assert_agree([alice, bob, carol])
    _exchange([alice, bob, carol])


def test_external_join_with_ratchet_tree_out_of_band() -> None:
    w = World()
    alice, bob = w.group_of(["alice", "bob"])
    info = alice.group_info(with_ratchet_tree=False)
    with pytest.raises(MLSError):
        w.join_external(info, "carol")
    carol, commit = w.join_external(info, "carol", ratchet_tree=alice.ratchet_tree())
    deliver(commit, [alice, bob])
    assert_agree([alice, bob, carol])


def test_welcome_with_ratchet_tree_out_of_band() -> None:
    w = World(config=GroupConfig(ratchet_tree_in_welcome=False))
    alice = w.create("alice")
    bundle = w.key_package("bob")
    out = alice.commit(add=[bundle.key_package.to_bytes()])
    alice.merge_pending_commit()
    with pytest.raises(MLSError):
        w.join(out.welcome, bundle)
    bob = w.join(out.welcome, bundle, ratchet_tree=alice.ratchet_tree())
    assert_agree([alice, bob])


# -- pre-shared keys ------------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_psk_commit(suite_id: int) -> None:
    w = World(suite_id)
    psk_id, psk = b"meeting psk", w.rng(32)
    alice, bob = w.group_of(["alice", "bob"])
    for g in (alice, bob):
        g.add_external_psk(psk_id, psk)
    pid = PreSharedKeyID.external(psk_id, w.rng(w.suite.nh))
    out = commit_and_deliver(alice, [bob], psks=[pid])
    assert out.summary.psk_count == 1
    assert_agree([alice, bob])
    _exchange([alice, bob])

    # A PSK in a commit that also adds a member: the joiner needs it for the Welcome.
    pid = PreSharedKeyID.external(psk_id, w.rng(w.suite.nh))
    (carol,) = w.add(bob, [alice], ["carol"], psks=[pid], join_psks={psk_id: psk})
    assert_agree([alice, bob, carol])
    # ... and keeps it for the next PSK commit.
    pid = PreSharedKeyID.external(psk_id, w.rng(w.suite.nh))
    out = commit_and_deliver(carol, [alice, bob], psks=[pid])
    assert out.summary.psk_count == 1
    assert_agree([alice, bob, carol])
    _exchange([alice, bob, carol])


# -- persistence ----------------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_save_and_restore_mid_epoch(suite_id: int) -> None:
    w = World(suite_id)
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    m1 = alice.send(b"one")
    deliver(m1, [bob, carol])
    m2 = alice.send(b"two")
    deliver(m2, [bob])
    mine = bob.send(b"bob's")
    deliver(mine, [alice, carol])

    restored = w.restore(bob.to_bytes())
    assert snapshot(restored) == snapshot(bob)
    assert restored.own_leaf_index == 1
    m3 = alice.send(b"three")
    event = restored.process(m3)
    assert isinstance(event, ApplicationMessage) and event.data == b"three"
    assert event.generation == 2
    for replay in (m1, m2, m3):
        with pytest.raises(GenerationError):
            restored.process(replay)
    # The restored member keeps sending on its own ratchet: the next generation.
    follow_up = restored.send(b"from the restored bob")
    for g in (alice, carol):
        event = g.process(follow_up)
        assert isinstance(event, ApplicationMessage)
        assert (event.data, event.generation) == (b"from the restored bob", 1)
    deliver(m3, [carol])
    commit_and_deliver(carol, [alice, restored])
    assert_agree([alice, restored, carol])
    commit_and_deliver(restored, [alice, carol])
    assert_agree([alice, restored, carol])
    _exchange([alice, restored, carol])


def test_save_and_restore_with_cached_update_proposal() -> None:
    """The own Update's private key and the proposal cache survive a restore."""
    w = World()
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    deliver(bob.propose_update(), [alice, carol])
    bob = w.restore(bob.to_bytes())
    assert bob.pending_proposals == 1
    out = commit_and_deliver(carol, [alice, bob])
    assert out.summary.updated == (1,)
    assert_agree([alice, bob, carol])
    _exchange([alice, bob, carol])


def test_save_refused_with_pending_commit_and_removed_state_kept() -> None:
    w = World()
    alice, bob = w.group_of(["alice", "bob"])
    alice.commit()
    with pytest.raises(StateError):
        alice.to_bytes()
    alice.discard_pending_commit()
    out = commit_and_deliver(alice, [bob], remove=[1])
    assert not bob.active
    assert not w.restore(bob.to_bytes()).active
    assert out.summary.removed[0].leaf_index == 1


# -- application policy ---------------------------------------------------------------


def _adds(info: PolicyInput) -> list[int | None]:
    return [sender for sender, p in info.proposals if isinstance(p, Add)]


def test_policy_only_leaf_zero_adds_and_lock() -> None:
    locked = {"value": False}

    def policy(info: PolicyInput) -> None:
        adders = _adds(info)
        if any(sender != 0 for sender in adders):
            raise PolicyError("only leaf 0 may add members")
        if adders and locked["value"]:
            raise PolicyError("the group is locked")

    w = World(policy=policy)
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])  # alice is leaf 0
    dave_kp = w.key_package("dave").key_package.to_bytes()

    # Creating: bob's own commit and proposal are refused locally.
    before = snapshot(bob)
    with pytest.raises(PolicyError):
        bob.commit(add=[dave_kp])
    with pytest.raises(PolicyError):
        bob.propose_add(dave_kp)
    assert snapshot(bob) == before and not bob.has_pending_commit

    # Processing: a bob with a lenient local policy sends anyway; the others refuse.
    def allow(_: PolicyInput) -> None:
        return None

    lenient = w.restore(bob.to_bytes(), policy=allow)
    out = lenient.commit(add=[dave_kp])
    proposal = lenient.propose_add(dave_kp)
    for g in (alice, carol):
        before = snapshot(g)
        with pytest.raises(PolicyError):
            g.process(out.commit)
        with pytest.raises(PolicyError):
            g.process(proposal)
        assert snapshot(g) == before
    lenient.discard_pending_commit()

    # Bob may still commit other changes; alice may add.
    commit_and_deliver(bob, [alice, carol])
    (dave,) = w.add(alice, [bob, carol], ["dave"])
    members = [alice, bob, carol, dave]
    assert_agree(members)

    # Locked: even leaf 0 may not add, but other commits go through.
    locked["value"] = True
    before = snapshot(alice)
    with pytest.raises(PolicyError):
        alice.commit(add=[w.key_package("erin").key_package.to_bytes()])
    assert snapshot(alice) == before
    commit_and_deliver(alice, [bob, carol, dave], remove=[2])
    members = [alice, bob, dave]
    assert_agree(members)
    locked["value"] = False
    (erin,) = w.add(alice, [bob, dave], ["erin"])
    assert_agree([alice, bob, erin, dave])


def test_policy_can_refuse_external_joins() -> None:
    def no_external(info: PolicyInput) -> None:
        if info.kind == "external_commit":
            raise PolicyError("no external joins here")

    w = World(policy=no_external)
    alice, bob = w.group_of(["alice", "bob"])
    with pytest.raises(PolicyError):  # the joiner's own policy, asked with own=True
        w.join_external(alice.group_info(), "eve")
    eve, commit = Group.join_external(alice.group_info(), w.signer("eve"), rng=w.rng, now=clock)
    assert eve.epoch == 2
    for g in (alice, bob):
        before = snapshot(g)
        with pytest.raises(PolicyError):
            g.process(commit)
        assert snapshot(g) == before
    commit_and_deliver(bob, [alice])
    assert_agree([alice, bob])


def test_policy_receives_roster_and_kind() -> None:
    seen: list[PolicyInput] = []
    w = World(policy=seen.append)
    alice, bob = w.group_of(["alice", "bob"])
    seen.clear()
    out = commit_and_deliver(alice, [bob], remove=[1])
    assert out.summary.removed[0].leaf_index == 1
    kinds = [(i.kind, i.committer, i.own) for i in seen]
    assert kinds == [("commit", 0, True), ("commit", 0, False)]
    assert [identities(i.roster) for i in seen] == [[b"alice", b"bob"]] * 2


# -- concurrency and API misuse ---------------------------------------------------------


@pytest.mark.parametrize("wire_format", WIRE_FORMATS, ids=["public", "private"])
def test_pending_commit_discarded_when_another_commit_wins(wire_format: WireFormat) -> None:
    w = World(config=GroupConfig(handshake_wire_format=wire_format))
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    losing = alice.commit(remove=[2])
    with pytest.raises(StateError):
        alice.commit()
    dave_bundle = w.key_package("dave")
    winning = bob.commit(add=[dave_bundle.key_package.to_bytes()])
    bob.merge_pending_commit()
    deliver(winning.commit, [carol])
    alice.discard_pending_commit()
    assert not alice.has_pending_commit
    with pytest.raises(StateError):
        alice.merge_pending_commit()
    event = alice.process(winning.commit)
    assert isinstance(event, CommitProcessed) and event.summary.epoch == 2
    dave = w.join(winning.welcome, dave_bundle)
    members = [alice, bob, carol, dave]
    assert_agree(members)
    # The losing commit is for an epoch that is over.
    for g in (bob, carol, dave):
        before = snapshot(g)
        with pytest.raises(EpochError):
            g.process(losing.commit)
        assert snapshot(g) == before
    _exchange(members)


def test_processing_the_winning_commit_drops_our_pending_one() -> None:
    w = World()
    alice, bob = w.group_of(["alice", "bob"])
    alice.commit()
    out = bob.commit()
    bob.merge_pending_commit()
    alice.process(out.commit)
    assert not alice.has_pending_commit
    assert_agree([alice, bob])


@pytest.mark.parametrize("wire_format", WIRE_FORMATS, ids=["public", "private"])
def test_processing_our_own_commit_is_a_state_error(wire_format: WireFormat) -> None:
    w = World()
    alice, bob = w.group_of(["alice", "bob"])
    out = alice.commit(wire_format=wire_format)
    before = snapshot(alice)
    with pytest.raises(StateError):
        alice.process(out.commit)
    assert snapshot(alice) == before
    alice.merge_pending_commit()
    deliver(out.commit, [bob])
    assert_agree([alice, bob])


def test_commit_for_the_wrong_epoch() -> None:
    w = World()
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    first = commit_and_deliver(alice, [bob])  # carol misses it
    second = commit_and_deliver(bob, [alice])
    # Too new for carol (epoch 1), too old for alice (epoch 3).
    for receiver, message in ((carol, second.commit), (alice, first.commit)):
        before = snapshot(receiver)
        with pytest.raises(EpochError, match="epoch"):
            receiver.process(message)
        assert snapshot(receiver) == before
    deliver(first.commit, [carol])
    deliver(second.commit, [carol])
    assert_agree([alice, bob, carol])


def test_group_info_and_accessors() -> None:
    w = World()
    alice, bob = w.group_of(["alice", "bob"])
    info = MLSMessage.from_bytes(alice.group_info())
    assert info.wire_format == WireFormat.mls_group_info
    assert alice.member(1).identity == b"bob"
    with pytest.raises(MLSError):
        alice.member(5)
    assert roster_view(alice) == roster_view(bob)
    assert alice.suite.id == 1
    assert alice.group_id == w.group_id


# -- the committer's choice among cached proposals (sections 12.2, 12.4) ----------------


def test_committer_drops_conflicting_cached_proposals() -> None:
    """Of several Update/Remove proposals for one leaf a Remove wins, else the most
    recent Update; a Remove of the committer is left for someone else to commit."""
    w = World()
    alice, bob, carol, dave, erin = w.group_of(["alice", "bob", "carol", "dave", "erin"])
    everyone = [alice, bob, carol, dave, erin]

    def broadcast(sender: Group, message: bytes) -> None:
        deliver(message, [g for g in everyone if g is not sender])

    broadcast(alice, alice.propose_remove(3))  # dave
    broadcast(bob, bob.propose_remove(3))  # dave again
    broadcast(dave, dave.propose_update())  # loses to the Removes
    broadcast(erin, erin.propose_update())
    broadcast(erin, erin.propose_update())  # the most recent one wins
    broadcast(bob, bob.propose_remove(2))  # the committer: skipped by carol
    newest = erin.propose_update()
    events = deliver(newest, [alice, bob, carol, dave])
    assert isinstance(events[0], ProposalReceived)
    assert isinstance(events[0].proposal, Update)
    erin_key = events[0].proposal.leaf_node.encryption_key

    out = commit_and_deliver(carol, [alice, bob, dave, erin])
    assert identities(out.summary.removed) == [b"dave"]
    assert out.summary.updated == (4,)
    assert not dave.active and carol.active
    assert alice.member(4).encryption_key == erin_key
    members = [alice, bob, carol, erin]
    assert_agree(members)
    _exchange(members)


def test_committer_drops_duplicate_adds() -> None:
    w = World()
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    dave_bundle = w.key_package("dave")
    kp = dave_bundle.key_package.to_bytes()
    deliver(alice.propose_add(kp), [bob, carol])
    deliver(bob.propose_add(w.key_package("dave").key_package.to_bytes()), [alice, carol])
    # carol's identity on a new device (new signature key): already in the group.
    other = create_key_package(w.suite, Credential.basic(b"carol"), rng=w.rng, now=clock())
    deliver(alice.propose_add(other.key_package.to_bytes()), [bob, carol])
    out = commit_and_deliver(carol, [alice, bob])
    assert identities(out.summary.added) == [b"dave"]
    dave = w.join(out.welcome, dave_bundle)
    assert_agree([alice, bob, carol, dave])


# -- proposals from non-members (section 12.1.8, 6.1) -----------------------------------


def test_external_sender_remove_proposal() -> None:
    w = World()
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    ds_priv, ds_pub = w.suite.generate_signature_key_pair(w.rng)
    senders = ExternalSenders((ExternalSender(ds_pub, Credential.basic(b"ds")),))
    commit_and_deliver(alice, [bob, carol], extensions=[senders.to_extension()])
    content = FramedContent(alice.group_id, alice.epoch, Sender.external(0), b"", Remove(2))
    auth = framing.sign_content(w.suite, PUBLIC, content, ds_priv, None)
    proposal = MLSMessage(PublicMessage(content, auth.auth, None)).to_bytes()
    for event in deliver(proposal, [alice, bob, carol]):
        assert isinstance(event, ProposalReceived)
        assert event.sender == Sender.external(0)
    out = commit_and_deliver(bob, [alice, carol])
    assert identities(out.summary.removed) == [b"carol"]
    assert not carol.active
    assert_agree([alice, bob])


def test_new_member_add_proposal() -> None:
    w = World()
    alice, bob = w.group_of(["alice", "bob"])
    bundle = w.key_package("carol")
    content = FramedContent(
        alice.group_id, alice.epoch, Sender.new_member_proposal(), b"", Add(bundle.key_package)
    )
    auth = framing.sign_content(w.suite, PUBLIC, content, bundle.signature_priv, None)
    proposal = MLSMessage(PublicMessage(content, auth.auth, None)).to_bytes()
    for event in deliver(proposal, [alice, bob]):
        assert isinstance(event, ProposalReceived)
        assert event.sender == Sender.new_member_proposal()
    out = commit_and_deliver(bob, [alice])
    assert identities(out.summary.added) == [b"carol"]
    carol = w.join(out.welcome, bundle)
    assert_agree([alice, bob, carol])
    _exchange([alice, bob, carol])


# -- randomized churn ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_random_churn(seed: int) -> None:
    """A seeded random sequence of adds, removes (rightmost leaves too: the tree
    shrinks), self-updates, Update proposals, external joins and resyncs; every
    member agrees after every step and can talk to every other."""
    r = random.Random(seed)
    wire_format = WIRE_FORMATS[seed % 2]
    w = World(1 + seed % 3, seed, config=GroupConfig(handshake_wire_format=wire_format))
    members = [w.create("m0")]
    names = iter(f"m{i}" for i in range(1, 1000))
    for _ in range(24):
        op = r.choice(["add", "add", "remove", "update", "proposal", "external", "resync"])
        committer = r.choice(members)
        others = [g for g in members if g is not committer]
        if op == "add" or len(members) < 3:
            joined = w.add(committer, others, [next(names) for _ in range(r.randint(1, 3))])
            members += joined
        elif op == "remove":
            victims = r.sample(others, r.randint(1, min(2, len(others) - 1)))
            out = commit_and_deliver(committer, others, remove=[v.own_leaf_index for v in victims])
            assert sorted(m.leaf_index for m in out.summary.removed) == sorted(
                v.own_leaf_index for v in victims
            )
            assert all(not v.active for v in victims)
            members = [g for g in members if g not in victims]
        elif op == "update":
            commit_and_deliver(committer, others)
        elif op == "proposal":
            proposer = r.choice(others)
            deliver(proposer.propose_update(), [g for g in members if g is not proposer])
            out = commit_and_deliver(committer, others)
            assert out.summary.updated == (proposer.own_leaf_index,)
        elif op == "external":
            joiner, commit = w.join_external(committer.group_info(), next(names))
            deliver(commit, members)
            members.append(joiner)
        else:
            lost = r.choice(others)
            name = lost.member(lost.own_leaf_index).identity.decode()
            fresh, commit = w.join_external(
                committer.group_info(), name, resync_leaf=lost.own_leaf_index
            )
            deliver(commit, members)
            assert not lost.active
            members = [fresh if g is lost else g for g in members]
        assert_agree(members)
        sender = r.choice(members)
        msg = sender.send(b"step", authenticated_data=op.encode())
        for g in members:
            if g is not sender:
                event = g.process(msg)
                assert isinstance(event, ApplicationMessage) and event.data == b"step"
    assert len(members) >= 2
