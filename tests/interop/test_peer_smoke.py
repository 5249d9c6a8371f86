"""Smoke tests of the ts-mls peer on its own: ts-mls clients talk to each
other through the Python driver, and after every step all members must agree
on epoch, exporter, epoch authenticator, tree hash, transcript and roster.

These tests check the harness, not Clave; the Python-vs-ts-mls tests build
on the same ops.
"""

from __future__ import annotations

import pytest
from peer import TS_MLS_VERSION, GroupState, Handshake, TsMlsError, TsMlsPeer

GROUP_ID = b"clave-interop-group"
HANDSHAKES: list[Handshake] = ["private", "public"]


def assert_in_sync(peer: TsMlsPeer, *names: str) -> GroupState:
    """All named clients agree on everything shared; return one state."""
    states = {n: peer.state(n) for n in names}
    first = states[names[0]]
    for n, s in states.items():
        assert s.status == "active", n
        assert s.shared_view() == first.shared_view(), f"{n} differs from {names[0]}"
        assert len(s.exporter) == 32
        assert len(s.epoch_authenticator) == 32
        assert identities(first)[s.leaf_index] == n.encode()
    # Non-default exporter parameters agree as well, and differ from the default.
    custom = {n: peer.export_secret(n, "other label", b"\x00\x01", 16) for n in names}
    assert len(set(custom.values())) == 1
    assert custom[names[0]] != first.exporter[:16]
    return first


def identities(state: GroupState) -> dict[int, bytes | None]:
    return {m.leaf_index: m.identity for m in state.roster}


def exchange(peer: TsMlsPeer, sender: str, receivers: list[str], text: bytes) -> None:
    msg = peer.send(sender, text)
    for r in receivers:
        got = peer.process(r, msg)
        assert got.kind == "application"
        assert got.application_data == text


def make_clients(peer: TsMlsPeer, *names: str) -> dict[str, bytes]:
    return {n: peer.new_client(n, n.encode()) for n in names}


def start_group(peer: TsMlsPeer, handshake: Handshake, *others: str) -> GroupState:
    """alice creates the group and adds ``others`` in one commit."""
    peer.create_group("alice", GROUP_ID)
    kps = [peer.key_package(n) for n in others]
    res = peer.add("alice", kps, handshake=handshake)
    assert res.epoch == 1
    assert res.welcome is not None
    for n in others:
        peer.join(n, res.welcome)
    return assert_in_sync(peer, "alice", *others)


# ---------------------------------------------------------------- protocol


def test_ping_and_errors_keep_the_peer_alive(ts_peer: TsMlsPeer) -> None:
    info = ts_peer.ping()
    assert info["ts_mls"] == TS_MLS_VERSION
    with pytest.raises(TsMlsError) as e:
        ts_peer.call("no_such_op")
    assert e.value.error_type == "ProtocolError"
    with pytest.raises(TsMlsError):
        ts_peer.call("new_client", name="x", identity="not hex")
    with pytest.raises(TsMlsError):
        ts_peer.state("nobody")
    ts_peer.new_client("alice", b"alice")
    with pytest.raises(TsMlsError):
        ts_peer.new_client("alice", b"alice")
    ts_peer.create_group("alice", GROUP_ID)
    with pytest.raises(TsMlsError):
        ts_peer.process("alice", b"\x00\x01garbage")
    with pytest.raises(TsMlsError):
        ts_peer.join("alice", b"\x00\x01\x00\x03")
    # still serving requests after all those errors
    assert ts_peer.state("alice").epoch == 0
    assert ts_peer.ping()["ts_mls"] == TS_MLS_VERSION


def test_key_package_is_mls_message(ts_peer: TsMlsPeer) -> None:
    sig = ts_peer.new_client("bob", b"bob")
    kp = ts_peer.key_package("bob")
    # MLSMessage: version mls10 (1), wire_format mls_key_package (5), then
    # KeyPackage: version mls10, cipher_suite 1.
    assert kp[:8] == bytes.fromhex("0001000500010001")
    assert sig in kp
    assert kp != ts_peer.key_package("bob")


def test_two_peer_processes(ts_peer: TsMlsPeer) -> None:
    with TsMlsPeer() as other:
        ts_peer.new_client("alice", b"alice")
        other.new_client("bob", b"bob")
        ts_peer.create_group("alice", GROUP_ID)
        res = ts_peer.add("alice", [other.key_package("bob")])
        assert res.welcome is not None
        other.join("bob", res.welcome)
        a, b = ts_peer.state("alice"), other.state("bob")
        assert a.shared_view() == b.shared_view()
        msg = other.send("bob", b"across processes")
        assert ts_peer.process("alice", msg).application_data == b"across processes"


# ---------------------------------------------------------------- lifecycle


@pytest.mark.parametrize("handshake", HANDSHAKES)
def test_add_message_update_remove(ts_peer: TsMlsPeer, handshake: Handshake) -> None:
    make_clients(ts_peer, "alice", "bob", "carol")
    s = start_group(ts_peer, handshake, "bob")
    assert s.epoch == 1
    assert identities(s) == {0: b"alice", 1: b"bob"}
    exchange(ts_peer, "alice", ["bob"], b"hello bob")
    exchange(ts_peer, "bob", ["alice"], b"hello alice")
    e1 = s.epoch_authenticator

    # bob self-updates (empty commit with an UpdatePath)
    upd = ts_peer.update("bob", handshake=handshake)
    assert upd.welcome is None
    got = ts_peer.process("alice", upd.commit)
    assert got.kind == "commit"
    assert got.raw["sender_leaf_index"] == 1
    assert got.raw["proposals"] == []
    s = assert_in_sync(ts_peer, "alice", "bob")
    assert s.epoch == 2
    assert s.epoch_authenticator != e1
    exchange(ts_peer, "bob", ["alice"], b"after update")

    # alice adds carol; bob processes the commit, carol the welcome
    add = ts_peer.add("alice", [ts_peer.key_package("carol")], handshake=handshake)
    assert add.welcome is not None
    assert ts_peer.process("bob", add.commit).raw["proposals"] == [
        {"type": "add", "sender_leaf_index": 0}
    ]
    assert ts_peer.join("carol", add.welcome) == 2
    s = assert_in_sync(ts_peer, "alice", "bob", "carol")
    assert s.epoch == 3
    exchange(ts_peer, "carol", ["alice", "bob"], b"hi all")

    # alice removes bob
    rem = ts_peer.remove("alice", 1, handshake=handshake)
    assert rem.welcome is None
    assert ts_peer.process("carol", rem.commit).kind == "commit"
    gone = ts_peer.process("bob", rem.commit)
    assert gone.removed
    assert ts_peer.state("bob").status == "removedFromGroup"
    s = assert_in_sync(ts_peer, "alice", "carol")
    assert s.epoch == 4
    assert identities(s) == {0: b"alice", 2: b"carol"}
    exchange(ts_peer, "alice", ["carol"], b"bob is gone")
    with pytest.raises(TsMlsError):
        ts_peer.send("bob", b"still here?")


@pytest.mark.parametrize("handshake", HANDSHAKES)
def test_add_several_in_one_commit(ts_peer: TsMlsPeer, handshake: Handshake) -> None:
    names = ["bob", "carol", "dave"]
    make_clients(ts_peer, "alice", *names)
    s = start_group(ts_peer, handshake, *names)
    assert identities(s) == {0: b"alice", 1: b"bob", 2: b"carol", 3: b"dave"}
    exchange(ts_peer, "dave", ["alice", "bob", "carol"], b"four")
    # a commit mixing removes and adds carries an UpdatePath and the new
    # member gets a path secret in its Welcome
    ts_peer.new_client("erin", b"erin")
    res = ts_peer.commit(
        "carol",
        add_key_packages=[ts_peer.key_package("erin")],
        remove_leaf_indices=[1],
        handshake=handshake,
    )
    assert res.welcome is not None
    for n in ["alice", "dave"]:
        assert ts_peer.process(n, res.commit).kind == "commit"
    # bob is not given this commit: ts-mls 1.6.4 decides "was I removed?"
    # after the adds, sees erin in its old leaf, and then fails with
    # "No overlap between provided private keys and update path".
    assert ts_peer.join("erin", res.welcome) == 1  # the freed leaf is reused
    s = assert_in_sync(ts_peer, "alice", "carol", "dave", "erin")
    assert identities(s) == {0: b"alice", 1: b"erin", 2: b"carol", 3: b"dave"}
    exchange(ts_peer, "erin", ["alice", "carol", "dave"], b"five")


def test_join_with_out_of_band_ratchet_tree(ts_peer: TsMlsPeer) -> None:
    make_clients(ts_peer, "alice", "bob")
    ts_peer.create_group("alice", GROUP_ID)
    res = ts_peer.add("alice", [ts_peer.key_package("bob")], ratchet_tree_extension=False)
    assert res.welcome is not None
    with pytest.raises(TsMlsError):
        ts_peer.join("bob", res.welcome)  # no tree anywhere
    ts_peer.join("bob", res.welcome, ratchet_tree=res.ratchet_tree)
    assert_in_sync(ts_peer, "alice", "bob")


# ---------------------------------------------------------------- proposals


@pytest.mark.parametrize("handshake", HANDSHAKES)
def test_by_reference_proposals(ts_peer: TsMlsPeer, handshake: Handshake) -> None:
    make_clients(ts_peer, "alice", "bob", "carol")
    start_group(ts_peer, handshake, "bob")

    # bob proposes adding carol, alice commits it
    prop = ts_peer.propose_add("bob", ts_peer.key_package("carol"), handshake=handshake)
    got = ts_peer.process("alice", prop)
    assert got.kind == "proposal"
    assert got.raw["proposal_type"] == "add"
    assert got.raw["sender_leaf_index"] == 1
    assert ts_peer.state("alice").pending_proposals == 1
    res = ts_peer.commit_pending("alice", handshake=handshake)
    assert res.welcome is not None
    assert ts_peer.process("bob", res.commit).raw["proposals"] == [
        {"type": "add", "sender_leaf_index": 1}
    ]
    ts_peer.join("carol", res.welcome)
    s = assert_in_sync(ts_peer, "alice", "bob", "carol")
    assert s.pending_proposals == 0
    assert identities(s) == {0: b"alice", 1: b"bob", 2: b"carol"}

    # bob proposes an update of his own leaf; carol commits it
    old_key = {m.leaf_index: m.encryption_key for m in s.roster}[1]
    prop = ts_peer.propose_update("bob", handshake=handshake)
    for n in ["alice", "carol"]:
        assert ts_peer.process(n, prop).raw["proposal_type"] == "update"
    res = ts_peer.commit_pending("carol", handshake=handshake)
    for n in ["alice", "bob"]:
        assert ts_peer.process(n, res.commit).raw["proposals"] == [
            {"type": "update", "sender_leaf_index": 1}
        ]
    s = assert_in_sync(ts_peer, "alice", "bob", "carol")
    assert {m.leaf_index: m.encryption_key for m in s.roster}[1] != old_key
    exchange(ts_peer, "bob", ["alice", "carol"], b"new leaf key")

    # carol proposes removing bob; alice commits
    prop = ts_peer.propose_remove("carol", 1, handshake=handshake)
    for n in ["alice", "bob"]:
        assert ts_peer.process(n, prop).raw["proposal_type"] == "remove"
    res = ts_peer.commit_pending("alice", handshake=handshake)
    assert ts_peer.process("carol", res.commit).kind == "commit"
    assert ts_peer.process("bob", res.commit).removed
    s = assert_in_sync(ts_peer, "alice", "carol")
    assert identities(s) == {0: b"alice", 2: b"carol"}


# ---------------------------------------------------------------- external join


def test_external_join(ts_peer: TsMlsPeer) -> None:
    make_clients(ts_peer, "alice", "bob", "carol")
    start_group(ts_peer, "private", "bob")
    gi = ts_peer.group_info("bob")
    assert gi[:4] == bytes.fromhex("00010004")  # MLSMessage(mls_group_info)
    res = ts_peer.external_join("carol", gi)
    assert res.epoch == 2
    for n in ["alice", "bob"]:
        got = ts_peer.process(n, res.commit)
        assert got.kind == "commit"
        assert got.raw["sender_leaf_index"] is None
        assert got.raw["proposals"] == [{"type": "external_init", "sender_leaf_index": None}]
    s = assert_in_sync(ts_peer, "alice", "bob", "carol")
    assert identities(s) == {0: b"alice", 1: b"bob", 2: b"carol"}
    exchange(ts_peer, "carol", ["alice", "bob"], b"came in from outside")


def test_external_join_with_separate_tree(ts_peer: TsMlsPeer) -> None:
    make_clients(ts_peer, "alice", "bob")
    ts_peer.create_group("alice", GROUP_ID)
    reply = ts_peer.call("group_info", name="alice", ratchet_tree_extension=False)
    gi, tree = bytes.fromhex(reply["group_info"]), bytes.fromhex(reply["ratchet_tree"])
    res = ts_peer.external_join("bob", gi, ratchet_tree=tree)
    ts_peer.process("alice", res.commit)
    assert_in_sync(ts_peer, "alice", "bob")


def test_external_resync(ts_peer: TsMlsPeer) -> None:
    make_clients(ts_peer, "alice", "bob", "carol")
    start_group(ts_peer, "private", "bob", "carol")
    res = ts_peer.external_join("bob", ts_peer.group_info("alice"), resync=True)
    for n in ["alice", "carol"]:
        got = ts_peer.process(n, res.commit)
        assert got.raw["proposals"] == [
            {"type": "remove", "sender_leaf_index": None},
            {"type": "external_init", "sender_leaf_index": None},
        ]
    s = assert_in_sync(ts_peer, "alice", "bob", "carol")
    assert identities(s) == {0: b"alice", 1: b"bob", 2: b"carol"}
    exchange(ts_peer, "bob", ["alice", "carol"], b"resynced")


def test_removed_client_can_be_added_again(ts_peer: TsMlsPeer) -> None:
    make_clients(ts_peer, "alice", "bob")
    start_group(ts_peer, "private", "bob")
    rem = ts_peer.remove("alice", 1)
    assert ts_peer.process("bob", rem.commit).removed
    add = ts_peer.add("alice", [ts_peer.key_package("bob")])
    assert add.welcome is not None
    ts_peer.join("bob", add.welcome)
    s = assert_in_sync(ts_peer, "alice", "bob")
    assert s.epoch == 3
    exchange(ts_peer, "bob", ["alice"], b"back again")


# ---------------------------------------------------------------- pending commits, GREASE


def test_discard_pending_commit_after_losing_race(ts_peer: TsMlsPeer) -> None:
    make_clients(ts_peer, "alice", "bob")
    start_group(ts_peer, "public", "bob")
    mine = ts_peer.update("alice", handshake="public", merge=False)
    assert ts_peer.state("alice").pending_commit
    with pytest.raises(TsMlsError):
        ts_peer.update("alice")  # one pending commit at a time
    theirs = ts_peer.update("bob", handshake="public")  # the DS picks bob's
    got = ts_peer.process("alice", theirs.commit)
    assert got.raw["discarded_pending_commit"] is True
    assert not ts_peer.state("alice").pending_commit
    with pytest.raises(TsMlsError):
        ts_peer.process("bob", mine.commit)  # stale epoch
    s = assert_in_sync(ts_peer, "alice", "bob")
    assert s.epoch == 2


def test_merge_and_discard_pending_commit(ts_peer: TsMlsPeer) -> None:
    make_clients(ts_peer, "alice", "bob")
    ts_peer.create_group("alice", GROUP_ID)
    ts_peer.add("alice", [ts_peer.key_package("bob")], merge=False)
    assert ts_peer.discard_pending_commit("alice") == 0
    with pytest.raises(TsMlsError):
        ts_peer.merge_pending_commit("alice")
    res = ts_peer.add("alice", [ts_peer.key_package("bob")], merge=False)
    assert ts_peer.state("alice").epoch == 0
    assert ts_peer.merge_pending_commit("alice") == 1
    assert res.welcome is not None
    ts_peer.join("bob", res.welcome)
    assert_in_sync(ts_peer, "alice", "bob")


def test_grease_capabilities(ts_peer: TsMlsPeer) -> None:
    ts_peer.new_client("alice", b"alice", grease=True)
    ts_peer.new_client("bob", b"bob", grease=True)
    kp = ts_peer.key_package("bob")
    assert bytes.fromhex("4a4a") in kp
    start_group(ts_peer, "private", "bob")
    exchange(ts_peer, "alice", ["bob"], b"grease ok")
