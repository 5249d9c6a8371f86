"""Helpers for the Clave <-> ts-mls interop tests (test_interop_ts_mls.py).

A :class:`Mixed` group has members on both sides: Clave ``Group`` objects held
in this process, and ts-mls clients held by the node peer (``TsMlsPeer``),
each known by a name that is also its basic-credential identity. Every helper
that changes the group delivers the message to all other members, checks what
each of them reports, and then checks that everybody agrees on the new epoch
(:func:`assert_in_sync`).

Test-only code: nothing here is part of Clave.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from peer import GroupState, Handshake, TsMlsError, TsMlsPeer

from clave.mls.ciphersuite import get_suite
from clave.mls.errors import MLSError
from clave.mls.events import ApplicationMessage, CommitProcessed, ProposalReceived
from clave.mls.group import Group, GroupConfig, Signer
from clave.mls.key_package import KeyPackageBundle, create_key_package
from clave.mls.ratchet_tree import RatchetTree
from clave.mls.structs import Credential, GroupInfo, MLSMessage, ParentNode, WireFormat
from clave.mls.tree_math import direct_path

SUITE_ID = 1
SUITE = get_suite(SUITE_ID)
EXPORT_LABEL = "clave-interop"  # the peer's `state` defaults
EXPORT_CONTEXT = b"ctx"
EXPORT_LENGTH = 32
OTHER_EXPORT = ("other label", b"\x00\x01", 16)

WIRE: dict[Handshake, WireFormat] = {
    "private": WireFormat.mls_private_message,
    "public": WireFormat.mls_public_message,
}


def rng(n: int) -> bytes:
    return os.urandom(n)


def now() -> int:
    return int(time.time())


def wire_format_of(message: bytes) -> WireFormat:
    """The wire format of an MLSMessage (RFC 9420 section 6)."""
    return MLSMessage.from_bytes(message).wire_format


def _confirmation_tag(group: Group) -> bytes:
    info = MLSMessage.from_bytes(group.group_info(with_ratchet_tree=False)).body
    assert isinstance(info, GroupInfo)
    return info.confirmation_tag


def assert_in_sync(
    clave_groups: Mapping[str, Group],
    ts_names: Sequence[str],
    peer: TsMlsPeer,
    *,
    absent: Sequence[str] = (),
) -> GroupState:
    """Every member, on both sides, agrees on the current epoch.

    Compared across all of them: epoch, group id, suite, the exporter output
    (the peer's default label/context/length and one other set), epoch
    authenticator, tree hash, confirmed transcript hash, confirmation tag,
    GroupContext extensions, the encoded ratchet tree and the roster (leaf
    index, identity, signature key, encryption key). Each member's own leaf
    index must hold its own identity; the roster holds exactly these members
    plus ``absent`` ones (in the tree, but not running here). Returns one
    ts-mls view (or a view built from the first Clave member when there is no
    ts-mls member).
    """
    assert clave_groups or ts_names, "empty group"
    states = {n: peer.state(n) for n in ts_names}
    for n, s in states.items():
        assert s.status == "active", f"ts-mls {n} is {s.status}"
        assert not s.pending_commit, f"ts-mls {n} has a pending commit"
    ts_other = {n: peer.export_secret(n, *OTHER_EXPORT) for n in ts_names}

    # (epoch, exporter, other exporter, epoch authenticator, tree hash,
    #  confirmed transcript hash, confirmation tag, group id, ratchet tree)
    views: dict[str, tuple[object, ...]] = {}
    rosters: dict[str, tuple[tuple[int, bytes, bytes, bytes], ...]] = {}
    own_leaf: dict[str, int] = {}
    for n, s in states.items():
        views[f"ts-mls {n}"] = (
            s.epoch,
            s.group_id,
            s.ciphersuite,
            s.exporter,
            ts_other[n],
            s.epoch_authenticator,
            s.tree_hash,
            s.confirmed_transcript_hash,
            s.confirmation_tag,
            s.ratchet_tree,
        )
        rosters[f"ts-mls {n}"] = tuple(
            (m.leaf_index, m.identity or b"", m.signature_key, m.encryption_key) for m in s.roster
        )
        own_leaf[f"ts-mls {n}"] = s.leaf_index
    for n, g in clave_groups.items():
        assert g.active, f"Clave {n} is not active"
        assert not g.has_pending_commit, f"Clave {n} has a pending commit"
        views[f"Clave {n}"] = (
            g.epoch,
            g.group_id,
            g.suite.id,
            g.export_secret(EXPORT_LABEL, EXPORT_CONTEXT, EXPORT_LENGTH),
            g.export_secret(*OTHER_EXPORT),
            g.epoch_authenticator,
            g.tree_hash,
            g.confirmed_transcript_hash,
            _confirmation_tag(g),
            g.ratchet_tree(),
        )
        rosters[f"Clave {n}"] = tuple(
            (m.leaf_index, m.identity, m.signature_key, m.encryption_key) for m in g.roster()
        )
        own_leaf[f"Clave {n}"] = g.own_leaf_index

    fields = (
        "epoch",
        "group_id",
        "ciphersuite",
        "exporter",
        "exporter(other label)",
        "epoch_authenticator",
        "tree_hash",
        "confirmed_transcript_hash",
        "confirmation_tag",
        "ratchet_tree",
    )
    first = next(iter(views))
    for who, view in views.items():
        for name, mine, theirs in zip(fields, view, views[first], strict=True):
            assert mine == theirs, f"{who} and {first} differ in {name}: {mine!r} != {theirs!r}"
        assert rosters[who] == rosters[first], f"{who} and {first} differ in the roster"
    exporter = views[first][3]
    assert isinstance(exporter, bytes) and len(exporter) == EXPORT_LENGTH
    assert exporter[:16] != views[first][4]

    identities = {leaf: ident for leaf, ident, _, _ in rosters[first]}
    expected = {n.encode() for n in [*clave_groups, *ts_names, *absent]}
    assert sorted(identities.values()) == sorted(expected), "roster"
    for who, leaf in own_leaf.items():
        assert identities.get(leaf) == who.split(" ", 1)[1].encode(), f"{who} at leaf {leaf}"
    if states:
        return next(iter(states.values()))
    return peer_view_of(next(iter(clave_groups.values())))


def ts_mls_rejects_tree(ratchet_tree: bytes) -> bool:
    """Whether ts-mls 1.6.4 refuses to join a group with this (valid) tree.

    RFC 9420 section 12.4.3.1 asks, for each leaf L in a parent node P's
    ``unmerged_leaves``, that every non-blank node *between* L and P list L
    too. ts-mls instead demands that every non-blank node on L's whole direct
    path have exactly P's ``unmerged_leaves`` list ("non-blank intermediate
    node must list leaf node in its unmerged_leaves"), which valid trees break
    as soon as unmerged leaves from two subtrees meet at a parent node, or a
    node above P was refreshed by a later UpdatePath. ts-mls members already
    in the group never re-check the tree, so only joiners are affected.
    This mirrors its check (clientState.js, validateRatchetTree).
    """
    tree = RatchetTree.from_bytes(SUITE, ratchet_tree)
    nodes = tree.nodes()
    for node in nodes:
        if not isinstance(node, ParentNode):
            continue
        for leaf in node.unmerged_leaves:
            for y in direct_path(2 * leaf, tree.n_leaves):
                above = nodes[y]
                if isinstance(above, ParentNode) and above.unmerged_leaves != node.unmerged_leaves:
                    return True
    return False


def root_filtered_out(leaves: Iterable[int]) -> bool:
    """Whether the root drops out of every committer's filtered direct path
    (RFC 9420 section 4.1.2) in a tree whose non-blank leaves are ``leaves``.

    After truncation (section 12.3) the right half of the tree always holds a
    member, so this happens exactly when the left half has none. Then the
    root's copath child has an empty resolution, the last path secret belongs
    to a node below the root, and ``commit_secret`` is the next secret after
    it (sections 12.4.1, 12.4.2). ts-mls 1.6.4 (pathSecrets.js,
    getCommitSecret) walks on to the blank root and derives once more, so
    every commit with an UpdatePath in such a tree gets a different
    commit_secret in ts-mls than in Clave (and mls-rs): the confirmation tag
    check fails on the other side. Members of a ts-mls-only group agree with
    each other, so ts-mls' own tests do not see it.
    """
    present = sorted(leaves)
    if not present:
        return False
    n = 1
    while n <= present[-1]:
        n *= 2
    return n > 1 and present[0] >= n // 2


def peer_view_of(g: Group) -> GroupState:
    """A GroupState built from a Clave member (for a group without ts-mls members)."""
    from peer import Member as TsMember

    return GroupState(
        epoch=g.epoch,
        group_id=g.group_id,
        ciphersuite=g.suite.id,
        leaf_index=g.own_leaf_index,
        status="active" if g.active else "removedFromGroup",
        exporter=g.export_secret(EXPORT_LABEL, EXPORT_CONTEXT, EXPORT_LENGTH),
        epoch_authenticator=g.epoch_authenticator,
        tree_hash=g.tree_hash,
        confirmed_transcript_hash=g.confirmed_transcript_hash,
        confirmation_tag=_confirmation_tag(g),
        ratchet_tree=g.ratchet_tree(),
        roster=tuple(
            TsMember(m.leaf_index, m.identity, m.signature_key, m.encryption_key, "basic")
            for m in g.roster()
        ),
        pending_proposals=g.pending_proposals,
        pending_commit=g.has_pending_commit,
    )


@dataclass
class Mixed:
    """One group with Clave and ts-mls members, driven step by step.

    Names are identities. A name belongs to one side for good: ``clave(name)``
    or ``ts(name)`` registers it. ``groups`` (Clave) and ``ts_members`` hold
    the current members; ``removed_clave``/``removed_ts`` those removed since
    (a removed Clave member's state from just before its removal is kept, so
    tests can show it cannot read the group any more). ``proposed_*`` track
    proposals waiting to be committed by reference, ``stranded`` ts-mls
    joiners that refused their Welcome (see :func:`ts_mls_rejects_tree`).
    """

    peer: TsMlsPeer
    config: GroupConfig = field(default_factory=GroupConfig)
    signers: dict[str, Signer] = field(default_factory=dict)
    ts_clients: set[str] = field(default_factory=set)
    bundles: dict[str, KeyPackageBundle] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    ts_members: list[str] = field(default_factory=list)
    removed_clave: dict[str, Group] = field(default_factory=dict)  # state before removal
    removed_ts: list[str] = field(default_factory=list)
    proposed_adds: list[str] = field(default_factory=list)  # pending by reference
    proposed_removes: list[str] = field(default_factory=list)
    stranded: list[str] = field(default_factory=list)  # added, but ts-mls refused to join

    # ------------------------------------------------------------ clients

    def clave(self, *names: str) -> None:
        for n in names:
            priv, _ = SUITE.generate_signature_key_pair(rng)
            self.signers[n] = Signer(Credential.basic(n.encode()), priv)

    def ts(self, *names: str, grease: bool = False) -> None:
        for n in names:
            self.peer.new_client(n, n.encode(), grease=grease)
            self.ts_clients.add(n)

    def is_clave(self, name: str) -> bool:
        if name in self.signers:
            return True
        assert name in self.ts_clients, f"unknown client {name}"
        return False

    def key_package(self, name: str) -> bytes:
        """A fresh KeyPackage of ``name``, MLSMessage-encoded."""
        if self.is_clave(name):
            s = self.signers[name]
            bundle = create_key_package(
                SUITE,
                s.credential,
                rng=rng,
                now=now(),
                signature_priv=s.signature_private_key,
                capabilities=self.config.capabilities,
            )
            self.bundles[name] = bundle
            return MLSMessage(bundle.key_package).to_bytes()
        return self.peer.key_package(name)

    # ------------------------------------------------------------ views

    @property
    def names(self) -> list[str]:
        return [*self.groups, *self.ts_members]

    def sync(self) -> GroupState:
        return assert_in_sync(self.groups, self.ts_members, self.peer, absent=self.stranded)

    def epoch(self) -> int:
        return self.sync().epoch

    def leaf_of(self, name: str) -> int:
        for m in self.sync().roster:
            if m.identity == name.encode():
                return m.leaf_index
        raise AssertionError(f"{name} is not in the roster")

    def root_filtered_out_after(self, removed: Iterable[str], adds: int = 0) -> bool:
        """:func:`root_filtered_out` for the tree after removing ``removed``
        and adding ``adds`` members (adds fill the leftmost blank leaves)."""
        gone = {n.encode() for n in removed}
        leaves = {m.leaf_index for m in self.sync().roster if m.identity not in gone}
        i = 0
        for _ in range(adds):
            while i in leaves:
                i += 1
            leaves.add(i)
        return root_filtered_out(leaves)

    def state(self, name: str) -> GroupState:
        if self.is_clave(name):
            return peer_view_of(self.groups[name])
        return self.peer.state(name)

    # ------------------------------------------------------------ group set-up

    def create(self, name: str, group_id: bytes = b"clave/ts-mls interop") -> None:
        if self.is_clave(name):
            self.groups[name] = Group.create(
                SUITE_ID, group_id, self.signers[name], rng=rng, now=now, config=self.config
            )
        else:
            self.peer.create_group(name, group_id)
            self.ts_members.append(name)
        assert self.epoch() == 0

    def join(
        self,
        name: str,
        welcome: bytes,
        ratchet_tree: bytes | None = None,
        *,
        tree_now: bytes | None = None,
    ) -> None:
        """``name`` joins from ``welcome``; ``tree_now`` is the group's tree
        (to foresee the ts-mls join quirk, see :func:`ts_mls_rejects_tree`)."""
        self._rejoining(name)
        if not self.is_clave(name) and tree_now is not None and ts_mls_rejects_tree(tree_now):
            try:
                self.peer.join(name, welcome, ratchet_tree=ratchet_tree)
            except TsMlsError as exc:
                assert "unmerged_leaves" in exc.error, exc
                self.stranded.append(name)
                return
            raise AssertionError("ts-mls joined a tree that ts_mls_rejects_tree() flags")
        if self.is_clave(name):
            self.groups[name] = Group.join(
                welcome,
                self.bundles.pop(name),
                rng=rng,
                now=now,
                ratchet_tree=ratchet_tree,
                config=self.config,
            )
        else:
            self.peer.join(name, welcome, ratchet_tree=ratchet_tree)
            self.ts_members.append(name)

    def _rejoining(self, name: str) -> None:
        assert name not in self.names, f"{name} is already a member"
        self.removed_clave.pop(name, None)
        if name in self.removed_ts:
            self.removed_ts.remove(name)

    # ------------------------------------------------------------ commits

    def make_commit(
        self,
        committer: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        handshake: Handshake = "private",
        ratchet_tree_extension: bool = True,
        force_path: bool = False,
        pending_only: bool = False,
    ) -> tuple[bytes, bytes | None, bytes]:
        """``committer`` commits (and merges) adds/removes plus every pending
        proposal; returns (commit, welcome, ratchet tree of the new epoch)."""
        kps = [self.key_package(n) for n in add]
        leaves = [self.leaf_of(n) for n in remove]
        old_epoch = self.epoch()
        if self.is_clave(committer):
            g = self.groups[committer]
            assert ratchet_tree_extension == self.config.ratchet_tree_in_welcome
            out = g.commit(
                add=kps, remove=leaves, force_path=force_path, wire_format=WIRE[handshake]
            )
            summary = g.merge_pending_commit()
            assert summary.epoch == old_epoch + 1 == g.epoch
            # by-value adds/removes come after the by-reference ones
            added = [m.identity for m in summary.added]
            assert added[len(added) - len(add) :] == [n.encode() for n in add]
            assert set(leaves) <= {m.leaf_index for m in summary.removed}
            commit, welcome, tree = out.commit, out.welcome, g.ratchet_tree()
        else:
            if pending_only:
                assert not kps and not leaves
                res = self.peer.commit_pending(committer, handshake=handshake)
            elif add and not remove:
                res = self.peer.add(
                    committer,
                    kps,
                    handshake=handshake,
                    ratchet_tree_extension=ratchet_tree_extension,
                )
            elif remove and not add and len(remove) == 1:
                res = self.peer.remove(committer, leaves[0], handshake=handshake)
            elif not add and not remove:
                res = self.peer.update(committer, handshake=handshake)
            else:
                res = self.peer.commit(
                    committer,
                    add_key_packages=kps,
                    remove_leaf_indices=leaves,
                    handshake=handshake,
                    ratchet_tree_extension=ratchet_tree_extension,
                )
            assert res.epoch == old_epoch + 1
            commit, welcome, tree = res.commit, res.welcome, res.ratchet_tree
        assert wire_format_of(commit) == WIRE[handshake]
        assert (welcome is not None) == bool(add or self.proposed_adds)
        return commit, welcome, tree

    def deliver_commit(
        self,
        commit: bytes,
        *,
        committer: str | None,
        removed: Iterable[str] = (),
    ) -> None:
        """Every member but ``committer`` processes ``commit``; ``removed`` get
        told they were removed and leave the member lists."""
        removed = set(removed)
        committer_leaf: int | None = None
        if committer is None:  # external commit: the joiner is not listed yet
            new_epoch = self.state(self.names[0]).epoch + 1
        else:  # the committer has merged its commit already
            own = self.state(committer)
            new_epoch, committer_leaf = own.epoch, own.leaf_index
        for n, g in list(self.groups.items()):
            if n == committer:
                continue
            # A removed member keeps its last state (still active, old epoch) so
            # tests can show it cannot read anything of the new epoch.
            stale = Group.from_bytes(g.to_bytes(), rng=rng, now=now) if n in removed else None
            ev = g.process(commit)
            assert isinstance(ev, CommitProcessed), f"Clave {n} got {ev!r}"
            assert ev.summary.epoch == new_epoch
            assert ev.summary.committer == committer_leaf
            assert ev.summary.external == (committer is None)
            assert ev.summary.removed_self == (n in removed), f"Clave {n}"
            if n in removed:
                assert not g.active and stale is not None
                del self.groups[n]
                self.removed_clave[n] = stale
            else:
                assert g.epoch == new_epoch
        for n in list(self.ts_members):
            if n == committer:
                continue
            got = self.peer.process(n, commit)
            assert got.kind == "commit", f"ts-mls {n} got {got.raw}"
            assert got.raw["sender_leaf_index"] == committer_leaf
            assert got.removed == (n in removed), f"ts-mls {n}: {got.raw}"
            if n in removed:
                self.ts_members.remove(n)
                self.removed_ts.append(n)
            else:
                assert got.epoch == new_epoch
        assert not removed & set(self.names), "removed member still listed"

    def commit(
        self,
        committer: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        handshake: Handshake = "private",
        ratchet_tree_extension: bool = True,
        force_path: bool = False,
        pending_only: bool = False,
    ) -> GroupState:
        """A full step: commit, deliver to everybody, join the added members
        from the Welcome (with the tree out of band when the GroupInfo lacks
        it), check everyone is in sync and can talk to everyone. Proposals
        sent with :meth:`propose` are committed by reference as well."""
        by_ref_adds, by_ref_removes = self.proposed_adds, self.proposed_removes
        commit, welcome, tree = self.make_commit(
            committer,
            add=add,
            remove=remove,
            handshake=handshake,
            ratchet_tree_extension=ratchet_tree_extension,
            force_path=force_path,
            pending_only=pending_only,
        )
        self.proposed_adds, self.proposed_removes = [], []
        self.deliver_commit(commit, committer=committer, removed=[*by_ref_removes, *remove])
        if welcome is not None:
            for n in [*by_ref_adds, *add]:
                oob = None if ratchet_tree_extension else tree
                self.join(n, welcome, oob, tree_now=tree)
        if self.stranded:
            self.remove_stranded(committer, handshake=handshake)
        state = self.sync()
        self.talk()
        return state

    def remove_stranded(self, committer: str, *, handshake: Handshake = "private") -> None:
        """``committer`` removes the leaves of ts-mls joiners that refused
        their Welcome (ts-mls quirk, :func:`ts_mls_rejects_tree`)."""
        self.sync()
        commit, _, _ = self.make_commit(committer, remove=self.stranded, handshake=handshake)
        self.deliver_commit(commit, committer=committer)
        self.stranded = []
        self.sync()

    def external_join(
        self, joiner: str, via: str, *, ratchet_tree_extension: bool = True
    ) -> GroupState | None:
        """``joiner`` joins by external commit using ``via``'s GroupInfo.

        None if ``joiner`` is a ts-mls client that refuses the (valid) tree:
        see :func:`ts_mls_rejects_tree`."""
        if self.is_clave(via):
            g = self.groups[via]
            info = g.group_info(with_ratchet_tree=ratchet_tree_extension)
            tree = g.ratchet_tree()
        else:
            info = self.peer.group_info(via, ratchet_tree_extension=ratchet_tree_extension)
            tree = self.state(via).ratchet_tree
        oob = None if ratchet_tree_extension else tree
        new_epoch = self.epoch() + 1
        if self.is_clave(joiner):
            g, commit = Group.join_external(
                info, self.signers[joiner], rng=rng, now=now, ratchet_tree=oob, config=self.config
            )
            assert g.epoch == new_epoch
        elif ts_mls_rejects_tree(tree):
            try:
                self.peer.external_join(joiner, info, ratchet_tree=oob)
            except TsMlsError as exc:
                assert "unmerged_leaves" in exc.error, exc
                return None
            raise AssertionError("ts-mls joined a tree that ts_mls_rejects_tree() flags")
        else:
            res = self.peer.external_join(joiner, info, ratchet_tree=oob)
            assert res.epoch == new_epoch
            commit = res.commit
        assert wire_format_of(commit) == WireFormat.mls_public_message
        self.deliver_commit(commit, committer=None)
        self._rejoining(joiner)
        if self.is_clave(joiner):
            self.groups[joiner] = g
        else:
            self.ts_members.append(joiner)
        state = self.sync()
        self.talk()
        return state

    # ------------------------------------------------------------ proposals

    def propose(
        self,
        proposer: str,
        kind: str,
        *,
        target: str | None = None,
        handshake: Handshake = "private",
    ) -> bytes:
        """``proposer`` sends an add/remove/update proposal; all other members
        process (and cache) it. Returns the proposal message."""
        if kind == "add":
            assert target is not None
            kp = self.key_package(target)
        leaf = None if kind != "remove" else self.leaf_of(target or "")
        proposer_leaf = self.leaf_of(proposer)
        if self.is_clave(proposer):
            g = self.groups[proposer]
            wf = WIRE[handshake]
            if kind == "add":
                msg = g.propose_add(kp, wire_format=wf)
            elif kind == "remove":
                assert leaf is not None
                msg = g.propose_remove(leaf, wire_format=wf)
            else:
                msg = g.propose_update(wire_format=wf)
        elif kind == "add":
            msg = self.peer.propose_add(proposer, kp, handshake=handshake)
        elif kind == "remove":
            assert leaf is not None
            msg = self.peer.propose_remove(proposer, leaf, handshake=handshake)
        else:
            msg = self.peer.propose_update(proposer, handshake=handshake)
        assert wire_format_of(msg) == WIRE[handshake]
        if kind == "add":
            self.proposed_adds.append(target or "")
        elif kind == "remove":
            self.proposed_removes.append(target or "")
        for n, g in self.groups.items():
            if n == proposer:
                continue
            ev = g.process(msg)
            assert isinstance(ev, ProposalReceived), f"Clave {n} got {ev!r}"
            assert ev.sender.index == proposer_leaf
            assert ev.proposal.proposal_type.name == kind
        for n in self.ts_members:
            if n == proposer:
                continue
            got = self.peer.process(n, msg)
            assert got.kind == "proposal", got.raw
            assert got.raw["proposal_type"] == kind
            assert got.raw["sender_leaf_index"] == proposer_leaf
        return msg

    # ------------------------------------------------------------ messages

    def send(self, sender: str, data: bytes) -> bytes:
        if self.is_clave(sender):
            return self.groups[sender].send(data)
        return self.peer.send(sender, data)

    def receive(self, receiver: str, message: bytes) -> bytes:
        """``receiver`` processes an application message; returns its plaintext."""
        if self.is_clave(receiver):
            ev = self.groups[receiver].process(message)
            assert isinstance(ev, ApplicationMessage), f"Clave {receiver} got {ev!r}"
            return ev.data
        got = self.peer.process(receiver, message)
        assert got.kind == "application", got.raw
        assert got.application_data is not None
        return got.application_data

    def talk(self) -> None:
        """Each member sends one application message that all others read."""
        epoch = self.epoch()
        for sender in self.names:
            data = f"{sender} in epoch {epoch}".encode()
            msg = self.send(sender, data)
            assert wire_format_of(msg) == WireFormat.mls_private_message
            for r in self.names:
                if r != sender:
                    assert self.receive(r, msg) == data, f"{r} reading {sender}"

    def cannot_read(self, name: str, message: bytes) -> None:
        """A removed member fails to process ``message``."""
        if name in self.removed_clave:
            try:
                ev = self.removed_clave[name].process(message)
            except MLSError:
                return
            raise AssertionError(f"removed Clave {name} processed {ev!r}")
        assert name in self.removed_ts
        try:
            got = self.peer.process(name, message)
        except TsMlsError:
            return
        raise AssertionError(f"removed ts-mls {name} processed {got.raw}")
