"""Clave <-> ts-mls 1.6.4 interoperability (RFC 9420, suite 1), both directions.

Each test builds one group whose members are split between Clave (``Group``
objects in this process) and ts-mls (clients in the node peer). After every
step all members, on both sides, must agree on the epoch, the exporter output
(same label, context and length), the epoch authenticator, tree hash,
transcript hash, confirmation tag, the encoded ratchet tree and the roster
(leaf indices, identities, signature and encryption keys), and every member
must be able to read an application message from every other member
(``Mixed.commit`` / ``assert_in_sync`` / ``Mixed.talk`` in interop_helpers).

Names are identities: Clave clients are alice, bob, carl, cody; ts-mls
clients are tom, tess, tara, theo.

ts-mls 1.6.4 quirks these tests work around (see also README.md here):

* ts-mls commits every pending by-reference proposal whenever it commits, so
  a ts-mls commit of "just an update" after proposals were received is really
  a commit of those proposals; the tests never leave proposals pending on a
  ts-mls member unless they mean to commit them.
* ts-mls refuses to send application messages while proposals are pending
  (so does Clave); messages are only exchanged after the commit.
* A member removed by a commit that also adds a member into its (now blank)
  leaf cannot process that commit in ts-mls (``InternalError: No overlap``);
  no test removes a ts-mls member and adds someone in the same commit.
* ts-mls add-only commits carry no UpdatePath; to get a ts-mls Welcome with a
  ``path_secret`` the tests commit adds together with a remove.
* external_pub: ts-mls puts the bare HPKE key into the extension instead of
  the RFC 9420 ``ExternalPub`` struct (an opaque<V> key, section 12.4.3.2).
  The peer converts in both directions (README.md, ``external_pub_encoding``);
  ``test_ts_mls_native_external_pub_is_not_rfc_9420`` shows the native form.
* external_senders: ts-mls decodes the extension as a single ExternalSender,
  not ``ExternalSender external_senders<V>`` (section 12.1.8.1), and refuses
  a conforming one; groups here do not use it.
* ts-mls joiners (Welcome and external commit) refuse valid trees in which
  the unmerged leaves of nodes on one direct path differ
  (``interop_helpers.ts_mls_rejects_tree``). ``Mixed`` foresees it, checks
  the refusal and removes such joiners again.
* When the left half of the tree is blank, the root is not in the
  committer's filtered direct path and ts-mls derives ``commit_secret`` one
  step further than RFC 9420 sections 12.4.1/12.4.2 (and Clave, and mls-rs):
  no commit with a path can be exchanged in such a tree
  (``interop_helpers.root_filtered_out``). The random test avoids it; two
  tests show it.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from interop_helpers import (
    SUITE,
    SUITE_ID,
    WIRE,
    Mixed,
    assert_in_sync,
    now,
    rng,
    ts_mls_rejects_tree,
    wire_format_of,
)
from peer import Handshake, TsMlsError, TsMlsPeer

from clave.mls import treekem
from clave.mls.errors import ConfirmationTagError, MLSError, ProposalError
from clave.mls.events import ApplicationMessage, CommitProcessed
from clave.mls.group import Group, GroupConfig
from clave.mls.ratchet_tree import RatchetTree
from clave.mls.structs import (
    Credential,
    CredentialType,
    ExternalSender,
    ExternalSenders,
    GroupInfo,
    KeyPackage,
    MLSMessage,
    ParentNode,
    RequiredCapabilities,
    Welcome,
)

HANDSHAKES: list[Handshake] = ["private", "public"]
SIDES = ["clave", "ts"]
CLAVE_NAMES = ["alice", "bob", "carl", "cody"]
TS_NAMES = ["tom", "tess", "tara", "theo"]


def mixed(peer: TsMlsPeer, config: GroupConfig | None = None) -> Mixed:
    m = Mixed(peer) if config is None else Mixed(peer, config)
    m.clave(*CLAVE_NAMES)
    m.ts(*TS_NAMES)
    return m


def sides(first: str) -> tuple[list[str], list[str]]:
    """(names of the side that creates the group, names of the other side)."""
    return (CLAVE_NAMES, TS_NAMES) if first == "clave" else (TS_NAMES, CLAVE_NAMES)


# ---------------------------------------------------------------- creation and Welcome


@pytest.mark.parametrize("creator", SIDES)
def test_create_and_welcome_two_of_the_other_side(ts_peer: TsMlsPeer, creator: str) -> None:
    """One side creates the group and adds two members of the other side with
    one Welcome; then all three talk and a second commit (with a path) works."""
    m = mixed(ts_peer)
    mine, theirs = sides(creator)
    m.create(mine[0])
    s = m.commit(mine[0], add=theirs[:2])
    assert s.epoch == 1
    assert [x.identity for x in s.roster] == [n.encode() for n in (mine[0], *theirs[:2])]
    # the joiners commit next, each side once
    m.commit(theirs[0])
    m.commit(theirs[1], handshake="public")
    m.commit(mine[0])
    assert m.epoch() == 4


@pytest.mark.parametrize("creator", SIDES)
def test_welcome_for_one_clave_and_one_ts_joiner(ts_peer: TsMlsPeer, creator: str) -> None:
    """One Welcome, two joiners on different sides; then a Welcome that also
    carries path secrets (the commit has an UpdatePath) for a mixed pair."""
    m = mixed(ts_peer)
    mine, theirs = sides(creator)
    m.create(mine[0])
    m.commit(mine[0], add=[mine[1], theirs[0]])
    assert sorted(m.names) == sorted([mine[0], mine[1], theirs[0]])
    # Second Welcome from the same creator, now with an UpdatePath: Clave
    # forces it, ts-mls gets one by also removing a member (a Clave one: see
    # the module docstring for removing a ts-mls member while adding).
    if creator == "clave":
        m.commit(mine[0], add=[mine[2], theirs[1]], force_path=True)
    else:
        m.commit(mine[0], add=[mine[2], theirs[1]], remove=[theirs[0]])
        m.cannot_read(theirs[0], m.send(mine[0], b"after removal"))
    # and a Welcome from a member that joined through the path Welcome
    m.commit(theirs[1], add=[mine[3], theirs[2]])
    assert len(m.names) == (7 if creator == "clave" else 6)


def test_clave_welcome_without_path_and_with_path_to_ts(ts_peer: TsMlsPeer) -> None:
    """Clave add commits with and without UpdatePath, ts-mls joiners only."""
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["tom"])  # no path: Welcome without path_secret
    m.commit("alice", add=["tess", "tara"], force_path=True)  # path_secret for both
    m.commit("tess", add=["bob"], handshake="public")
    m.commit("bob", add=["theo"], force_path=True, handshake="public")
    assert m.epoch() == 4


# ---------------------------------------------------------------- add / update / remove


@pytest.mark.parametrize("handshake", HANDSHAKES)
@pytest.mark.parametrize("creator", SIDES)
def test_add_update_remove_by_each_side(
    ts_peer: TsMlsPeer, creator: str, handshake: Handshake
) -> None:
    """Each side makes add, self-update and remove commits (PrivateMessage or
    PublicMessage) that the other side processes; everybody stays in sync and
    can talk after every step, removed members cannot read on."""
    m = mixed(ts_peer)
    x, y = sides(creator)  # x creates
    h = handshake
    m.create(x[0])
    # adds
    m.commit(x[0], add=[y[0]], handshake=h)  # x adds a y member
    m.commit(y[0], add=[x[1], y[1]], handshake=h)  # y adds one of each side
    m.commit(x[1], add=[y[2]], handshake=h)  # a joiner of y's Welcome adds
    # self-updates, every member
    for n in [x[0], y[0], x[1], y[1], y[2]]:
        before = m.state(n)
        m.commit(n, handshake=h)
        after = m.state(n)
        me = before.leaf_index
        assert after.roster[me].encryption_key != before.roster[me].encryption_key, n
        assert after.roster[me].signature_key == before.roster[me].signature_key
    # removes: y removes an x member, x removes a y member
    m.commit(y[1], remove=[x[1]], handshake=h)
    m.cannot_read(x[1], m.send(y[0], b"x1 was removed"))
    m.commit(x[0], remove=[y[2]], handshake=h)
    m.cannot_read(y[2], m.send(x[0], b"y2 was removed"))
    m.cannot_read(y[2], m.send(y[1], b"y2 was removed"))
    # the freed leaves get reused by adds from each side
    s = m.commit(y[0], add=[x[2]], handshake=h)
    assert {mm.identity: mm.leaf_index for mm in s.roster}[x[2].encode()] == 2
    s = m.commit(x[2], add=[y[3]], handshake=h)
    assert {mm.identity: mm.leaf_index for mm in s.roster}[y[3].encode()] == 4
    # remove two at once, one of each side, by each side
    m.commit(y[3], remove=[x[2], y[1]], handshake=h)
    m.cannot_read(x[2], m.send(y[0], b"gone"))
    m.cannot_read(y[1], m.send(x[0], b"gone"))
    assert sorted(m.names) == sorted([x[0], y[0], y[3]])
    m.commit(x[0], remove=[y[3]], handshake=h)
    m.commit(y[0], handshake=h)
    assert m.epoch() == 15


def test_removed_member_cannot_decrypt(ts_peer: TsMlsPeer) -> None:
    """Removed members on either side cannot read the next commit nor any
    application message of the following epochs, from either side."""
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["tom", "bob", "tess"])
    m.commit("tom", remove=["bob"])  # ts-mls removes a Clave member
    m.commit("alice", remove=["tess"])  # Clave removes a ts-mls member
    later = [m.send(n, b"secret " + n.encode()) for n in ("alice", "tom")]
    commit, _, _ = m.make_commit("tom")
    m.deliver_commit(commit, committer="tom")
    later += [m.send(n, b"secret " + n.encode()) for n in ("alice", "tom")]
    for n in ("bob", "tess"):
        m.cannot_read(n, commit)
        for msg in later:
            m.cannot_read(n, msg)
    # both removed clients know they were removed (cannot_read uses bob's
    # state from before his removal, which is still "active")
    assert ts_peer.state("tess").status == "removedFromGroup"
    assert m.removed_clave["bob"].active and m.removed_clave["bob"].epoch == 1
    m.sync()


# ---------------------------------------------------------------- application messages


def test_application_messages_both_ways(ts_peer: TsMlsPeer) -> None:
    """Many messages, several generations, delivered out of order, both ways."""
    m = mixed(ts_peer)
    m.create("tom")
    m.commit("tom", add=["alice", "bob", "tess"])
    for sender in m.names:
        texts = [f"{sender} #{i}".encode() for i in range(6)]
        msgs = [m.send(sender, t) for t in texts]
        for r in m.names:
            if r == sender:
                continue
            for i in [5, 0, 3, 1, 4, 2]:
                assert m.receive(r, msgs[i]) == texts[i]
            # a replayed message is refused on both sides
            with pytest.raises((MLSError, TsMlsError)):
                m.receive(r, msgs[0])
    big = bytes(range(256)) * 40
    for sender in ("alice", "tom"):
        msg = m.send(sender, big)
        for r in m.names:
            if r != sender:
                assert m.receive(r, msg) == big
    m.sync()


# ---------------------------------------------------------------- proposals by reference


@pytest.mark.parametrize("handshake", HANDSHAKES)
def test_ts_proposes_clave_commits(ts_peer: TsMlsPeer, handshake: Handshake) -> None:
    m = mixed(ts_peer)
    h = handshake
    m.create("alice")
    m.commit("alice", add=["tom", "bob", "tess"], handshake=h)
    m.propose("tom", "add", target="carl", handshake=h)
    m.propose("tess", "update", handshake=h)
    m.commit("alice", add=["tara"], handshake=h)  # by reference + by value
    s = m.sync()
    assert {x.identity for x in s.roster} == {b"alice", b"tom", b"bob", b"tess", b"carl", b"tara"}
    m.propose("tom", "remove", target="bob", handshake=h)
    m.propose("tara", "remove", target="tess", handshake=h)
    m.commit("carl", handshake=h, pending_only=True)
    assert sorted(m.names) == ["alice", "carl", "tara", "tom"]
    m.cannot_read("bob", m.send("tom", b"bye"))
    m.cannot_read("tess", m.send("alice", b"bye"))


@pytest.mark.parametrize("handshake", HANDSHAKES)
def test_clave_proposes_ts_commits(ts_peer: TsMlsPeer, handshake: Handshake) -> None:
    m = mixed(ts_peer)
    h = handshake
    m.create("tom")
    m.commit("tom", add=["alice", "tess", "bob"], handshake=h)
    m.propose("alice", "add", target="tara", handshake=h)
    m.propose("bob", "update", handshake=h)
    m.commit("tess", handshake=h, pending_only=True)
    m.propose("alice", "update", handshake=h)
    m.propose("bob", "remove", target="tom", handshake=h)
    m.commit("tara", handshake=h, pending_only=True)
    m.cannot_read("tom", m.send("alice", b"bye"))
    # (not in the same commit as removing tom: ts-mls quirk, module docstring)
    m.propose("bob", "add", target="carl", handshake=h)
    m.propose("alice", "remove", target="bob", handshake=h)
    m.commit("tess", handshake=h, pending_only=True)
    assert sorted(m.names) == ["alice", "carl", "tara", "tess"]
    m.cannot_read("bob", m.send("tara", b"bye"))


@pytest.mark.parametrize("handshake", HANDSHAKES)
def test_mixed_proposals_committed_by_each_side(ts_peer: TsMlsPeer, handshake: Handshake) -> None:
    """Proposals from both sides in one commit, made once by each side; the
    committer's own proposals are included by reference too."""
    m = mixed(ts_peer)
    h = handshake
    m.create("alice")
    m.commit("alice", add=["tom", "bob", "tess"], handshake=h)
    m.propose("alice", "add", target="tara", handshake=h)
    m.propose("tom", "update", handshake=h)
    m.propose("bob", "update", handshake=h)
    m.propose("tess", "add", target="carl", handshake=h)
    m.commit("alice", handshake=h, pending_only=True)
    m.propose("tom", "add", target="theo", handshake=h)
    m.propose("alice", "remove", target="carl", handshake=h)
    m.propose("bob", "update", handshake=h)
    m.propose("tara", "update", handshake=h)
    m.commit("tom", handshake=h, pending_only=True)
    assert sorted(m.names) == ["alice", "bob", "tara", "tess", "theo", "tom"]


# ---------------------------------------------------------------- external join


@pytest.mark.parametrize("tree_in_group_info", [True, False])
def test_clave_joins_ts_group_externally(ts_peer: TsMlsPeer, tree_in_group_info: bool) -> None:
    m = mixed(ts_peer)
    m.create("tom")
    m.commit("tom", add=["tess"])
    m.external_join("alice", via="tess", ratchet_tree_extension=tree_in_group_info)
    m.commit("tom", add=["bob"])
    m.external_join("carl", via="tom", ratchet_tree_extension=tree_in_group_info)
    m.commit("alice", remove=["tess"], handshake="public")
    assert sorted(m.names) == ["alice", "bob", "carl", "tom"]


@pytest.mark.parametrize("tree_in_group_info", [True, False])
def test_ts_joins_clave_group_externally(ts_peer: TsMlsPeer, tree_in_group_info: bool) -> None:
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["bob"])
    m.external_join("tom", via="bob", ratchet_tree_extension=tree_in_group_info)
    m.external_join("tess", via="alice", ratchet_tree_extension=tree_in_group_info)
    m.commit("tom", remove=["bob"])
    m.commit("alice", add=["tara"])
    assert sorted(m.names) == ["alice", "tara", "tess", "tom"]


def test_external_join_with_clave_group_info_from_commit(ts_peer: TsMlsPeer) -> None:
    """The GroupInfo Clave returns with a commit works for a ts-mls joiner."""
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["tom"])
    out = m.groups["alice"].commit()
    m.groups["alice"].merge_pending_commit()
    m.deliver_commit(out.commit, committer="alice")
    m.sync()
    res = ts_peer.external_join("tess", out.group_info)
    m.deliver_commit(res.commit, committer=None)
    m.ts_members.append("tess")
    m.sync()
    m.talk()


def test_external_resync_both_sides(ts_peer: TsMlsPeer) -> None:
    """A member re-joins by external commit that removes its old leaf."""
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["tom", "bob"])
    # Clave bob loses its state and re-joins through tom's GroupInfo
    old_leaf = m.leaf_of("bob")
    info = ts_peer.group_info("tom")
    bob = m.groups.pop("bob")
    g, commit = Group.join_external(info, m.signers["bob"], rng=rng, now=now, resync_leaf=old_leaf)
    for n in ("alice",):
        ev = m.groups[n].process(commit)
        assert isinstance(ev, CommitProcessed)
        assert [x.leaf_index for x in ev.summary.removed] == [old_leaf]
    got = ts_peer.process("tom", commit)
    assert got.kind == "commit" and got.raw["sender_leaf_index"] is None
    m.groups["bob"] = g
    assert bob.epoch == g.epoch - 1
    s = m.sync()
    assert m.leaf_of("bob") == old_leaf == g.own_leaf_index
    assert len(s.roster) == 3
    m.talk()
    # ts-mls tom re-joins through Clave alice's GroupInfo
    old_leaf = m.leaf_of("tom")
    info = m.groups["alice"].group_info()
    m.ts_members.remove("tom")
    res = ts_peer.external_join("tom", info, resync=True)
    for n, grp in m.groups.items():
        ev = grp.process(res.commit)
        assert isinstance(ev, CommitProcessed), n
        assert [x.leaf_index for x in ev.summary.removed] == [old_leaf]
    m.ts_members.append("tom")
    m.sync()
    m.talk()


# ---------------------------------------------------------------- ratchet tree out of band


def test_ratchet_tree_out_of_band(ts_peer: TsMlsPeer) -> None:
    """Welcomes without the ratchet_tree extension, the tree handed over
    separately, in both directions."""
    m = mixed(ts_peer, GroupConfig(ratchet_tree_in_welcome=False))
    m.create("alice")
    # Clave's Welcome has no tree: ts-mls cannot join without it
    commit, welcome, tree = m.make_commit("alice", add=["tom"], ratchet_tree_extension=False)
    assert welcome is not None
    with pytest.raises(TsMlsError):
        ts_peer.join("tom", welcome)
    m.deliver_commit(commit, committer="alice")
    m.join("tom", welcome, tree)
    m.sync()
    m.talk()
    # ts-mls' Welcome has no tree: Clave cannot join without it
    commit, welcome, tree = m.make_commit("tom", add=["bob"], ratchet_tree_extension=False)
    assert welcome is not None
    with pytest.raises(MLSError):
        Group.join(welcome, m.bundles["bob"], rng=rng, now=now)
    m.deliver_commit(commit, committer="tom")
    m.join("bob", welcome, tree)
    m.sync()
    m.talk()
    # mixed joiners, a Welcome with path secrets, both sides
    m.commit("bob", add=["carl", "tess"], ratchet_tree_extension=False, force_path=True)
    m.commit("tess", add=["cody", "tara"], remove=["alice"], ratchet_tree_extension=False)
    assert sorted(m.names) == ["bob", "carl", "cody", "tara", "tess", "tom"]


def test_key_package_refs_agree(ts_peer: TsMlsPeer) -> None:
    """Welcomes name their recipients by KeyPackageRef (RFC 9420 sections 5.2,
    12.4.3.1): both sides compute the same references, for KeyPackages made
    by either side, in Welcomes made by either side."""
    m = mixed(ts_peer)
    suite = SUITE
    for creator, joiners in (("tom", ["alice", "tess"]), ("bob", ["carl", "tara"])):
        m.create(creator, group_id=creator.encode())
        kps = [m.key_package(n) for n in joiners]
        ours = [suite.make_key_package_ref(_bare_key_package(kp)) for kp in kps]
        if m.is_clave(creator):
            out = m.groups[creator].commit(add=kps)
            m.groups[creator].discard_pending_commit()
            welcome = out.welcome
        else:
            welcome = ts_peer.add(creator, kps).welcome
        assert welcome is not None
        body = MLSMessage.from_bytes(welcome).body
        assert isinstance(body, Welcome)
        assert [s.new_member for s in body.secrets] == ours
        m.groups.clear()
        m.ts_members.clear()
    theirs = ts_peer.call("key_package", name="tess")
    assert suite.make_key_package_ref(
        _bare_key_package(bytes.fromhex(theirs["key_package"]))
    ) == bytes.fromhex(theirs["key_package_ref"])


def _bare_key_package(mls_message: bytes) -> bytes:
    body = MLSMessage.from_bytes(mls_message).body
    assert isinstance(body, KeyPackage)
    return body.to_bytes()


# ---------------------------------------------------------------- concurrency


@pytest.mark.parametrize("winner", SIDES)
def test_concurrent_commits_one_wins(ts_peer: TsMlsPeer, winner: str) -> None:
    """Clave and ts-mls both commit in the same epoch; the delivery service
    accepts one, the other discards its pending commit and processes it."""
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["tom", "bob"])
    out = m.groups["alice"].commit()  # pending, not merged
    res = ts_peer.update("tom", merge=False)
    assert m.groups["alice"].has_pending_commit
    if winner == "clave":
        m.groups["alice"].merge_pending_commit()
        got = ts_peer.process("tom", out.commit)
        assert got.raw["discarded_pending_commit"] is True
        m.groups["bob"].process(out.commit)
    else:
        ts_peer.merge_pending_commit("tom")
        ev = m.groups["alice"].process(res.commit)
        assert isinstance(ev, CommitProcessed)
        assert not m.groups["alice"].has_pending_commit
        m.groups["bob"].process(res.commit)
    m.sync()
    m.talk()


def test_wire_formats_are_what_was_asked(ts_peer: TsMlsPeer) -> None:
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["tom"])
    for h in HANDSHAKES:
        out = m.groups["alice"].commit(wire_format=WIRE[h])
        m.groups["alice"].discard_pending_commit()
        assert wire_format_of(out.commit) == WIRE[h]
    assert_in_sync(m.groups, m.ts_members, ts_peer)


# ---------------------------------------------------------------- more interop corners


def test_grease_ts_clients(ts_peer: TsMlsPeer) -> None:
    """ts-mls clients advertising every GREASE value (RFC 9420 section 13.5)
    in their capabilities and a GREASE KeyPackage extension: Clave accepts
    their KeyPackages and leaves, and still interoperates."""
    m = Mixed(ts_peer)
    m.clave("alice", "bob")
    m.ts("tom", "tess", grease=True)
    m.create("alice")
    m.commit("alice", add=["tom"])
    m.commit("tom", add=["bob", "tess"], handshake="public")
    m.commit("tess")
    m.propose("tom", "update")
    m.commit("bob", pending_only=True)
    assert m.epoch() == 4


def test_group_context_extensions_at_creation(ts_peer: TsMlsPeer) -> None:
    """GroupContext extensions set at creation reach the joiners of either
    side intact, and all GroupContexts agree (the transcript and epoch
    secrets depend on them).

    Only required_capabilities: ts-mls 1.6.4 decodes the external_senders
    extension as one ExternalSender instead of the RFC 9420 vector
    ``ExternalSender external_senders<V>`` (section 12.1.8.1), so it refuses a
    conforming one; checked at the end so a fixed ts-mls shows up here.
    """
    exts = (RequiredCapabilities((), (), (int(CredentialType.basic),)).to_extension(),)
    wanted = [(int(e.extension_type), e.extension_data) for e in exts]
    rounds = (("tom", ["alice"], ["tom", "tess"]), ("bob", ["bob", "carl"], ["tara"]))
    for creator, clave_names, ts_names in rounds:
        m = Mixed(ts_peer)
        m.clave(*clave_names)
        m.ts(*ts_names)
        joiners = [n for n in [*clave_names, *ts_names] if n != creator]
        if m.is_clave(creator):
            m.groups[creator] = Group.create(
                SUITE_ID, creator.encode(), m.signers[creator], rng=rng, now=now, extensions=exts
            )
        else:
            ts_peer.create_group(
                creator,
                creator.encode(),
                extensions=[
                    {"extension_type": t, "extension_data": data.hex()} for t, data in wanted
                ],
            )
            m.ts_members.append(creator)
        m.commit(creator, add=joiners)
        for n in m.names:
            if m.is_clave(n):
                assert m.groups[n].extensions == exts
            else:
                got = ts_peer.call("state", name=n)["group_context_extensions"]
                assert [
                    (e["extension_type"], bytes.fromhex(e["extension_data"])) for e in got
                ] == wanted
        m.commit(joiners[0])
        m.commit(joiners[1], handshake="public")
    # ts-mls quirk: a conforming external_senders extension is refused
    sender_key = SUITE.signature_public_key(SUITE.generate_signature_key_pair(rng)[0])
    senders = ExternalSenders((ExternalSender(sender_key, Credential.basic(b"ds")),))
    ts_peer.new_client("theo", b"theo")
    with pytest.raises(TsMlsError, match="external_senders"):
        ts_peer.create_group(
            "theo",
            b"external senders",
            extensions=[{"extension_type": 5, "extension_data": senders.to_bytes().hex()}],
        )


def test_tree_truncation_and_blank_leaves(ts_peer: TsMlsPeer) -> None:
    """Removing the rightmost members truncates the tree (RFC 9420 section
    12.3); blank leaves in the middle are reused by the next Add; both sides
    encode the same ratchet tree throughout (checked by assert_in_sync)."""
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["tom", "bob", "tess", "carl", "tara"])  # leaves 0-5
    m.commit("tom", remove=["tara"])  # rightmost: the tree shrinks to 5 leaves
    m.commit("bob", remove=["carl"])  # rightmost again: 4 leaves
    m.commit("tess", remove=["bob"])  # middle leaf 2 blank
    s = m.commit("alice", add=["theo", "cody"])  # into leaf 2, then leaf 4
    leaves = {x.identity: x.leaf_index for x in s.roster}
    assert (leaves[b"theo"], leaves[b"cody"]) == (2, 4)
    m.commit("cody", remove=["tess", "theo"], handshake="public")  # truncates to leaf 4
    m.commit("tom")
    assert sorted(m.names) == ["alice", "cody", "tom"]


def test_authenticated_data_both_ways(ts_peer: TsMlsPeer) -> None:
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["tom"])
    msg = ts_peer.call("send", name="tom", data=b"hi", authenticated_data=b"aad-ts")
    ev = m.groups["alice"].process(bytes.fromhex(msg["message"]))
    assert isinstance(ev, ApplicationMessage)
    assert (ev.data, ev.authenticated_data) == (b"hi", b"aad-ts")
    back = m.groups["alice"].send(b"ho", authenticated_data=b"aad-clave")
    assert m.receive("tom", back) == b"ho"
    # commits carrying authenticated data, both directions
    out = m.groups["alice"].commit(authenticated_data=b"commit aad")
    m.groups["alice"].merge_pending_commit()
    m.deliver_commit(out.commit, committer="alice")
    res = ts_peer.call("update", name="tom", authenticated_data=b"ts commit aad")
    m.deliver_commit(bytes.fromhex(res["commit"]), committer="tom")
    m.sync()
    m.talk()


def test_exporter_parameters(ts_peer: TsMlsPeer) -> None:
    """MLS-Exporter (RFC 9420 section 8.5) agrees for unusual labels,
    contexts and lengths, on members of both sides."""
    m = mixed(ts_peer)
    m.create("tom")
    m.commit("tom", add=["alice"])
    cases = [
        ("", b"", 1),
        ("clave-interop", b"ctx", 64),
        ("x" * 200, bytes(range(256)) * 2, 255),
        ("long output", b"\x00", 1000),
        ("\u00e9t\u00e9", "\u00e9".encode(), 32),  # a non-ASCII label, UTF-8 encoded
    ]
    for label, context, length in cases:
        ours = m.groups["alice"].export_secret(label, context, length)
        theirs = ts_peer.export_secret("tom", label, context, length)
        assert len(ours) == length
        assert ours == theirs, (label, length)


def test_ts_mls_native_external_pub_is_not_rfc_9420(ts_peer: TsMlsPeer) -> None:
    """Documents the ts-mls 1.6.4 quirk the peer works around: natively its
    external_pub extension holds the bare key instead of the RFC 9420
    ``ExternalPub`` struct (an opaque<V> key, section 12.4.3.2), so Clave
    rejects such a GroupInfo and native ts-mls cannot use Clave's."""
    m = mixed(ts_peer)
    m.create("tom")
    native = bytes.fromhex(
        ts_peer.call("group_info", name="tom", external_pub_encoding="ts-mls")["group_info"]
    )
    assert len(_external_pub_data(native)) == 32  # the bare X25519 key
    with pytest.raises(MLSError):
        Group.join_external(native, m.signers["alice"], rng=rng, now=now)
    rfc = _external_pub_data(ts_peer.group_info("tom"))
    assert (rfc[0], len(rfc)) == (32, 33)  # what the peer sends by default
    alice = Group.create(SUITE_ID, b"clave group", m.signers["alice"], rng=rng, now=now)
    clave_info = alice.group_info()
    assert _external_pub_data(clave_info)[0] == 32
    with pytest.raises(TsMlsError):
        ts_peer.call(
            "external_join", name="tess", group_info=clave_info, external_pub_encoding="ts-mls"
        )


def _external_pub_data(group_info: bytes) -> bytes:
    info = MLSMessage.from_bytes(group_info).body
    assert isinstance(info, GroupInfo)
    (data,) = [e.extension_data for e in info.extensions if e.extension_type == 4]
    return data


def test_ts_mls_quirk_commit_secret_when_root_is_filtered_out(
    ts_peer: TsMlsPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents a ts-mls 1.6.4 divergence from RFC 9420, see
    ``interop_helpers.root_filtered_out``: when the whole left half of the
    tree is blank, the root is not in the committer's filtered direct path
    and ``commit_secret`` is DeriveSecret(last path secret, "path") (sections
    12.4.1, 12.4.2; Clave and mls-rs); ts-mls derives once more.

    Leaves 0-3 are removed in one commit by leaf 4: Clave's commit is
    accepted by Clave and refused by ts-mls; the same commit with the extra
    derivation is accepted by ts-mls, which pins the difference down exactly.
    """
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["tom", "cody", "theo", "bob", "tess", "carl", "tara"])
    left = ["alice", "tom", "cody", "theo"]
    assert [m.leaf_of(n) for n in left] == [0, 1, 2, 3]
    assert m.root_filtered_out_after(left)
    bob, carl = m.groups["bob"], m.groups["carl"]
    leaves = [m.leaf_of(n) for n in left]

    out = bob.commit(remove=leaves)  # RFC 9420
    carl_before = carl.to_bytes()
    ev = carl.process(out.commit)
    assert isinstance(ev, CommitProcessed)
    for n in ("tess", "tara"):
        with pytest.raises(TsMlsError, match="confirmation tag"):
            ts_peer.process(n, out.commit)
    bob.discard_pending_commit()

    real = treekem.create_update_path

    def ts_mls_commit_secret(*args: Any, **kwargs: Any) -> treekem.CreatedUpdatePath:
        created = real(*args, **kwargs)
        suite, tree, leaf = args[0], args[1], args[2]
        assert tree.root not in tree.filtered_direct_path(leaf)
        extra = treekem.next_path_secret(suite, created.commit_secret)
        return dataclasses.replace(created, commit_secret=extra)

    monkeypatch.setattr(treekem, "create_update_path", ts_mls_commit_secret)
    out = bob.commit(remove=leaves)  # ts-mls' derivation
    monkeypatch.undo()
    for n in ("tess", "tara"):
        assert ts_peer.process(n, out.commit).epoch == 2
    carl = Group.from_bytes(carl_before, rng=rng, now=now)
    with pytest.raises(MLSError):
        carl.process(out.commit)


def test_ts_mls_quirk_ts_commit_when_root_is_filtered_out(ts_peer: TsMlsPeer) -> None:
    """The same divergence the other way: ts-mls' commit is accepted by
    ts-mls and refused by Clave (confirmation tag)."""
    m = mixed(ts_peer)
    m.create("alice")
    m.commit("alice", add=["tom", "cody", "theo", "tess", "bob", "tara", "carl"])
    leaves = [m.leaf_of(n) for n in ("alice", "tom", "cody", "theo")]
    assert leaves == [0, 1, 2, 3]
    res = ts_peer.commit("tess", remove_leaf_indices=leaves)
    assert ts_peer.process("tara", res.commit).epoch == 2
    for n in ("bob", "carl"):
        with pytest.raises(ConfirmationTagError):
            m.groups[n].process(res.commit)


def test_ts_mls_quirk_join_refuses_valid_unmerged_leaves(ts_peer: TsMlsPeer) -> None:
    """Documents a ts-mls 1.6.4 divergence from RFC 9420 section 12.4.3.1, see
    ``interop_helpers.ts_mls_rejects_tree``: a Welcome into a valid tree in
    which the root lists unmerged leaves from both halves is accepted by the
    Clave joiner and refused by the ts-mls joiner of the same Welcome."""
    m = mixed(ts_peer)
    m.clave("dora")
    m.ts("tina")
    m.create("alice")
    m.commit("alice", add=["tom", "bob", "tess", "carl", "tara", "cody", "theo"])
    m.commit("bob", remove=["tom", "tara"])  # path over nodes 5, 3, 7
    assert not ts_mls_rejects_tree(m.sync().ratchet_tree)
    commit, welcome, tree = m.make_commit("alice", add=["dora", "tina"])  # into leaves 1, 5
    assert welcome is not None
    m.deliver_commit(commit, committer="alice")
    nodes = RatchetTree.from_bytes(SUITE, tree).nodes()
    unmerged = {x: v.unmerged_leaves for x, v in enumerate(nodes) if isinstance(v, ParentNode)}
    assert unmerged[3] == (1,) and unmerged[7] == (1, 5)  # valid: sections 7.1, 12.1.1
    assert ts_mls_rejects_tree(tree)
    m.join("dora", welcome)
    with pytest.raises(TsMlsError, match="unmerged_leaves"):
        ts_peer.join("tina", welcome)
    # the refused joiner's leaf is removed again; everybody else is in sync
    m.stranded.append("tina")
    m.remove_stranded("alice")
    m.talk()
    assert sorted(m.names) == sorted(["alice", "bob", "tess", "carl", "cody", "theo", "dora"])


def test_second_device_with_the_same_identity(ts_peer: TsMlsPeer) -> None:
    """A policy difference, not a bug on either side: RFC 9420 section 12.2
    leaves "the same client" to the application (for example, identical
    signature keys), and section 5.3.3 notes that a user's devices may all
    present the same identity. ts-mls treats only the same signature key as
    the same client; Clave also treats the same basic identity as the same
    client, so it refuses a ts-mls commit adding a second device of a member.
    """
    m = mixed(ts_peer)
    ts_peer.new_client("tom's tablet", b"tom")
    m.create("tom")
    m.commit("tom", add=["alice"])
    res = ts_peer.add("tom", [ts_peer.key_package("tom's tablet")])
    with pytest.raises(ProposalError, match="already in the group"):
        m.groups["alice"].process(res.commit)
    with pytest.raises(ProposalError, match="already in the group"):
        m.groups["alice"].commit(add=[ts_peer.key_package("tom's tablet")])


# ---------------------------------------------------------------- randomized


def _random_proposals(m: Mixed, r: random.Random, committer: str, h: Handshake) -> None:
    """A few valid proposals (RFC 9420 section 12.2) from random members."""
    members = m.names
    outside = [n for n in CLAVE_NAMES + TS_NAMES if n not in members]
    removed: set[str] = set()
    updated: set[str] = set()
    for p in r.sample(members, k=min(3, len(members))):
        kind = r.choice(["add", "update", "remove"])
        free = [n for n in outside if n not in m.proposed_adds]
        # ts-mls quirk: no Add in a commit that removes a ts-mls member
        ts_removed = any(not m.is_clave(n) for n in removed)
        targets = [
            n
            for n in members
            if n not in {p, committer} | removed | updated
            and not (m.proposed_adds and not m.is_clave(n))
        ]
        t = r.choice(targets) if targets else ""
        if kind == "add" and free and not ts_removed:
            m.propose(p, "add", target=r.choice(free), handshake=h)
        elif (
            kind == "remove"
            and targets
            and len(members) - len(removed) > 2
            # ts-mls quirk: keep the root in the filtered direct path
            and not m.root_filtered_out_after({*removed, t}, len(m.proposed_adds))
        ):
            removed.add(t)
            m.propose(p, "remove", target=t, handshake=h)
        elif p not in removed | updated:
            updated.add(p)
            m.propose(p, "update", handshake=h)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations(ts_peer: TsMlsPeer, seed: int) -> None:
    """A seeded random run of commits by random members of either side: adds,
    removes, self-updates, proposals by reference, external joins, in both
    wire formats; everybody is checked and talks after every step."""
    r = random.Random(seed)
    m = Mixed(ts_peer)
    m.clave(*CLAVE_NAMES)
    m.ts("tom", "tara")
    m.ts("tess", "theo", grease=True)  # GREASE capabilities and KeyPackage extension
    everyone = CLAVE_NAMES + TS_NAMES
    m.create(r.choice(everyone))
    for _ in range(16):
        members = m.names
        outside = [n for n in everyone if n not in members]
        h: Handshake = r.choice(HANDSHAKES)
        committer = r.choice(members)
        small = len(members) < 5  # keep the group at about 4-7 members
        weights = [3, 1, 1, 2, 1] if small else [1, 2, 1, 2, 1]
        op = r.choices(["add", "remove", "update", "proposals", "external"], weights)[0]
        if op == "external" and outside:
            joiner, via = r.choice(outside), r.choice(members)
            m.external_join(joiner, via=via, ratchet_tree_extension=r.random() < 0.5)
        elif op == "add" and outside:
            joiners = r.sample(outside, k=min(len(outside), r.randint(1, 2)))
            m.commit(committer, add=joiners, handshake=h, force_path=r.random() < 0.5)
        elif op == "remove" and len(members) > 2:
            others = [n for n in members if n != committer]
            victims = r.sample(others, k=min(len(others) - 1, r.randint(1, 2)))
            # ts-mls quirk: no Add in a commit that removes a ts-mls member
            clave_only = all(m.is_clave(v) for v in victims)
            add = [r.choice(outside)] if clave_only and outside and r.random() < 0.5 else []
            if m.root_filtered_out_after(victims, len(add)):
                continue  # ts-mls quirk: see root_filtered_out()
            m.commit(committer, remove=victims, add=add, handshake=h)
            for v in victims:
                m.cannot_read(v, m.send(committer, b"after removing " + v.encode()))
        elif op == "proposals" and len(members) > 2:
            _random_proposals(m, r, committer, h)
            m.commit(committer, handshake=h, pending_only=True)
        else:
            m.commit(committer, handshake=h, force_path=True)
    m.sync()
