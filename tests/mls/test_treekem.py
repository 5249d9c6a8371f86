"""TreeKEM (RFC 9420 sections 7.4-7.6, 12.4.2) against treekem.json.

Besides processing the vectors' UpdatePaths with every member's private state,
each updating leaf of each vector also creates its own UpdatePath (fresh
randomness), which every other member of the vector must verify, decrypt and
turn into the same commit secret and tree.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable
from typing import Any

import pytest
from mls_vectors import claimed_suite, h, load_vectors, suite_params

from clave.mls.ciphersuite import CipherSuite
from clave.mls.errors import CommitError, LeafNodeError, MLSError, TreeError
from clave.mls.leaf_node import make_leaf_node, sign_leaf_node
from clave.mls.ratchet_tree import RatchetTree
from clave.mls.structs import (
    Capabilities,
    Credential,
    GroupContext,
    HPKECiphertext,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    ProtocolVersion,
    UpdatePath,
)
from clave.mls.tree_math import common_ancestor
from clave.mls.treekem import (
    CreatedUpdatePath,
    TreePrivateKeys,
    create_update_path,
    decrypt_update_path,
    derive_path_keys,
    merge_update_path,
    node_key_pair,
    path_keys_from_secret,
    process_update_path,
)

VECTORS = load_vectors("treekem")
PARAMS = suite_params(VECTORS)


@dataclasses.dataclass
class State:
    suite: CipherSuite
    tree: RatchetTree
    context: GroupContext
    keys: dict[int, TreePrivateKeys]
    signature_keys: dict[int, bytes]


def load_state(v: dict[str, Any]) -> State:
    """Public tree, every listed member's private keys (checked) and the GroupContext."""
    suite = claimed_suite(v)
    tree = RatchetTree.from_bytes(suite, h(v["ratchet_tree"]))
    keys: dict[int, TreePrivateKeys] = {}
    sigs: dict[int, bytes] = {}
    for lp in v["leaves_private"]:
        i = lp["index"]
        priv = h(lp["encryption_priv"])
        k = TreePrivateKeys()
        k.set(2 * i, priv, suite.hpke_public_key(priv))
        for ps in lp["path_secrets"]:
            k.set(ps["node"], *node_key_pair(suite, h(ps["path_secret"])))
        k.check_consistent(tree, i)
        keys[i] = k
        sigs[i] = h(lp["signature_priv"])
        leaf = tree.leaf(i)
        assert leaf is not None
        assert suite.signature_public_key(sigs[i]) == leaf.signature_key
    context = GroupContext(
        ProtocolVersion.mls10,
        suite.id,
        h(v["group_id"]),
        v["epoch"],
        tree.tree_hash(),
        h(v["confirmed_transcript_hash"]),
        (),
    )
    return State(suite, tree, context, keys, sigs)


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    r = random.Random(seed)
    return lambda n: r.randbytes(n)


# -- the vectors ------------------------------------------------------------------------


@pytest.mark.parametrize("v", PARAMS)
def test_treekem_vector_received_paths(v: dict[str, Any]) -> None:
    st = load_state(v)
    decrypted = 0
    for up in v["update_paths"]:
        sender = up["sender"]
        path = UpdatePath.from_bytes(h(up["update_path"]))
        merged = st.tree.copy()
        merge_update_path(st.suite, merged, sender, path, group_id=st.context.group_id)
        assert merged.tree_hash() == h(up["tree_hash_after"])
        merged.verify_parent_hashes()
        assert RatchetTree.from_bytes(st.suite, merged.to_bytes()).tree_hash() == (
            h(up["tree_hash_after"])
        )
        context = dataclasses.replace(st.context, tree_hash=merged.tree_hash())
        for j in range(st.tree.n_leaves):
            expected = up["path_secrets"][j]
            if j == sender or st.tree.leaf(j) is None:
                assert expected is None
                continue
            d = decrypt_update_path(
                st.suite,
                merged,
                sender,
                path,
                own_leaf=j,
                private_keys=st.keys[j],
                group_context=context,
            )
            lca = common_ancestor(2 * j, 2 * sender)
            assert min(d.path_secrets) == lca or lca in d.path_secrets
            assert d.path_secrets[lca] == h(expected)
            assert next(iter(d.path_secrets.values())) == h(expected)
            assert d.commit_secret == h(up["commit_secret"])
            # After pruning stale keys and adding the new ones, the state is consistent.
            updated = st.keys[j].copy()
            updated.prune(merged)
            updated.update(d.keys)
            updated.check_consistent(merged, j)
            decrypted += 1
    assert decrypted > 0


@pytest.mark.parametrize("v", PARAMS)
def test_treekem_vector_own_paths_decryptable_by_all(v: dict[str, Any]) -> None:
    """Our UpdatePaths must verify and decrypt for every other member of the vector."""
    st = load_state(v)
    checked = 0
    for n, up in enumerate(v["update_paths"]):
        sender = up["sender"]
        staged = st.tree.copy()
        template = st.tree.leaf(sender)
        assert template is not None
        created = create_update_path(
            st.suite,
            staged,
            sender,
            leaf_template=template,
            signature_priv=st.signature_keys[sender],
            group_context=st.context,
            rng=os.urandom if n % 2 else seeded_rng(n),
        )
        check_created(st, staged, created, sender)
        assert created.group_context.tree_hash == staged.tree_hash()
        assert dataclasses.replace(created.group_context, tree_hash=b"") == dataclasses.replace(
            st.context, tree_hash=b""
        )
        staged.verify_parent_hashes()
        staged.verify_integrity(st.context.group_id)
        created.private_keys.check_consistent(staged, sender)
        # The encoded path survives the wire.
        wire = UpdatePath.from_bytes(created.update_path.to_bytes())
        for j in st.keys:
            if j == sender:
                continue
            receiver_tree = st.tree.copy()
            context, d = process_update_path(
                st.suite,
                receiver_tree,
                sender,
                wire,
                own_leaf=j,
                private_keys=st.keys[j],
                group_context=st.context,
            )
            assert d.commit_secret == created.commit_secret
            assert receiver_tree == staged
            assert receiver_tree.tree_hash() == staged.tree_hash()
            assert context == created.group_context
            lca = common_ancestor(2 * j, 2 * sender)
            assert d.path_secrets[lca] == created.path_secrets[lca]
            checked += 1
    assert checked > 0


def check_created(
    st: State,
    staged: RatchetTree,
    created: CreatedUpdatePath,
    sender: int,
    exclude: tuple[int, ...] = (),
) -> None:
    """Shape of a created UpdatePath: one node per filtered-direct-path node, one
    ciphertext per resolution member (minus ``exclude``), a signed commit leaf."""
    fdp = staged.filtered_direct_path_with_copath(sender)
    path = created.update_path
    assert len(path.nodes) == len(fdp)
    for node, (p, s) in zip(path.nodes, fdp, strict=True):
        assert len(node.encrypted_path_secret) == len(staged.resolution(s, exclude))
        parent = staged.parent_node(p)
        assert parent is not None and parent.encryption_key == node.encryption_key
    leaf = path.leaf_node
    assert leaf.leaf_node_source == LeafNodeSource.commit
    assert staged.leaf(sender) == leaf
    assert leaf.parent_hash == (staged.parent_hash(fdp[0][0], fdp[0][1]) if fdp else b"")
    assert set(created.path_secrets) == {p for p, _ in fdp}


# -- joins, exclusions and edge cases -------------------------------------------------------


def suite1_state(n_members: int) -> tuple[dict[str, Any], State]:
    for v in VECTORS:
        if v["cipher_suite"] == 1 and len(v["leaves_private"]) == n_members:
            return v, load_state(v)
    raise AssertionError("no such vector")


def new_member(suite: CipherSuite, i: int) -> tuple[LeafNode, bytes, bytes]:
    """A key_package leaf for a joiner: (leaf, encryption private key, signature key)."""
    sig_priv, _ = suite.generate_signature_key_pair(os.urandom)
    enc_priv, enc_pub = suite.generate_hpke_key_pair(os.urandom)
    caps = Capabilities(versions=(1,), cipher_suites=(suite.id,), credentials=(1,))
    leaf = make_leaf_node(
        suite,
        encryption_key=enc_pub,
        signature_priv=sig_priv,
        credential=Credential.basic(b"joiner-%d" % i),
        capabilities=caps,
        source=LeafNodeSource.key_package,
        lifetime=Lifetime(0, 2**64 - 1),
    )
    return leaf, enc_priv, sig_priv


@pytest.mark.parametrize("n_members", [3, 5, 8])
def test_commit_with_adds_excludes_new_members_and_welcome_path_secret(n_members: int) -> None:
    _, st = suite1_state(n_members)
    staged = st.tree.copy()
    joiners = [new_member(st.suite, k) for k in range(2)]
    added = [staged.add_leaf(leaf) for leaf, _, _ in joiners]
    committer = 0
    before_path = staged.copy()
    created = create_update_path(
        st.suite,
        staged,
        committer,
        leaf_template=st.tree.leaf(committer) or pytest.fail("blank committer"),
        signature_priv=st.signature_keys[committer],
        group_context=st.context,
        exclude=added,
        rng=os.urandom,
    )
    check_created(st, staged, created, committer, tuple(added))
    missed_exclusion = 0
    # Without the exclusion there would be more ciphertexts somewhere.
    fdp = before_path.filtered_direct_path_with_copath(committer)
    assert sum(len(before_path.resolution(s)) for _, s in fdp) == sum(
        len(n.encrypted_path_secret) for n in created.update_path.nodes
    ) + len(added)
    for j in st.keys:
        if j == committer:
            continue
        receiver = before_path.copy()
        _, d = process_update_path(
            st.suite,
            receiver,
            committer,
            created.update_path,
            own_leaf=j,
            private_keys=st.keys[j],
            group_context=st.context,
            exclude=added,
        )
        assert d.commit_secret == created.commit_secret and receiver == staged
        # Forgetting the exclusion list makes the ciphertext count wrong for those
        # whose copath node covers a joiner.
        s = next(s for _, s in fdp if j in range(*_leaf_span(s)))
        if {2 * a for a in added} & set(before_path.resolution(s)):
            with pytest.raises(CommitError, match="ciphertexts"):
                process_update_path(
                    st.suite,
                    before_path.copy(),
                    committer,
                    created.update_path,
                    own_leaf=j,
                    private_keys=st.keys[j],
                    group_context=st.context,
                )
            missed_exclusion += 1
    assert missed_exclusion > 0 or n_members == 8  # a full tree puts joiners in a new subtree
    # Each joiner derives its path keys from the Welcome path secret.
    for (_, enc_priv, _), leaf_index in zip(joiners, added, strict=True):
        secret = created.path_secret_for(leaf_index)
        assert secret is not None
        d = path_keys_from_secret(st.suite, staged, leaf_index, committer, secret)
        keys = TreePrivateKeys(d.keys)
        keys.set(2 * leaf_index, enc_priv, st.suite.hpke_public_key(enc_priv))
        keys.check_consistent(staged, leaf_index)
        assert d.commit_secret == created.commit_secret
        with pytest.raises(TreeError, match="does not match"):
            derive_path_keys(st.suite, staged, common_ancestor(2 * leaf_index, 0), bytes(32))


def test_external_join_path_from_blank_leaf() -> None:
    _, st = suite1_state(8)  # full tree: the joiner extends it
    staged = st.tree.copy()
    joiner = staged.ensure_free_leaf()
    assert joiner == st.tree.n_leaves and staged.n_leaves == 2 * st.tree.n_leaves
    leaf, _, sig_priv = new_member(st.suite, 99)
    created = create_update_path(
        st.suite,
        staged,
        joiner,
        leaf_template=leaf,
        signature_priv=sig_priv,
        group_context=st.context,
        rng=os.urandom,
    )
    check_created(st, staged, created, joiner)
    for j in st.keys:
        receiver = st.tree.copy()
        assert receiver.ensure_free_leaf() == joiner
        _, d = process_update_path(
            st.suite,
            receiver,
            joiner,
            created.update_path,
            own_leaf=j,
            private_keys=st.keys[j],
            group_context=st.context,
        )
        assert d.commit_secret == created.commit_secret and receiver == staged
    staged.verify_integrity(st.context.group_id)


def test_single_member_path() -> None:
    _, st = suite1_state(2)
    leaf = st.tree.leaf(0)
    assert leaf is not None
    tree = RatchetTree.create(st.suite, leaf)
    created = create_update_path(
        st.suite,
        tree,
        0,
        leaf_template=leaf,
        signature_priv=st.signature_keys[0],
        group_context=st.context,
        rng=seeded_rng(7),
    )
    assert created.update_path.nodes == () and created.path_secrets == {}
    assert len(created.commit_secret) == st.suite.nh
    assert created.leaf_node.parent_hash == b""
    other = RatchetTree.create(st.suite, leaf)
    merge_update_path(st.suite, other, 0, created.update_path, group_id=st.context.group_id)
    assert other == tree


def test_create_is_deterministic_given_rng() -> None:
    _, st = suite1_state(4)
    out = []
    for _ in range(2):
        tree = st.tree.copy()
        created = create_update_path(
            st.suite,
            tree,
            1,
            leaf_template=st.tree.leaf(1) or pytest.fail("blank"),
            signature_priv=st.signature_keys[1],
            group_context=st.context,
            rng=seeded_rng(42),
        )
        out.append((created.update_path.to_bytes(), created.commit_secret))
    assert out[0] == out[1]


# -- rejections -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def committed() -> tuple[State, CreatedUpdatePath, RatchetTree]:
    _, st = suite1_state(8)
    staged = st.tree.copy()
    created = create_update_path(
        st.suite,
        staged,
        2,
        leaf_template=st.tree.leaf(2) or pytest.fail("blank"),
        signature_priv=st.signature_keys[2],
        group_context=st.context,
        rng=seeded_rng(3),
    )
    return st, created, staged


def receive(st: State, path: UpdatePath, own: int = 5, **kw: Any) -> None:
    process_update_path(
        st.suite,
        st.tree.copy(),
        kw.pop("sender", 2),
        path,
        own_leaf=own,
        private_keys=kw.pop("keys", st.keys[own]),
        group_context=kw.pop("context", st.context),
        **kw,
    )


def test_valid_path_is_accepted(committed: tuple[State, CreatedUpdatePath, RatchetTree]) -> None:
    st, created, _ = committed
    receive(st, created.update_path)


def test_rejects_bad_leaf(committed: tuple[State, CreatedUpdatePath, RatchetTree]) -> None:
    st, created, _ = committed
    path = created.update_path
    leaf = path.leaf_node
    bad_sig = dataclasses.replace(leaf, signature=bytes(len(leaf.signature)))
    with pytest.raises(LeafNodeError, match="signature"):
        receive(st, dataclasses.replace(path, leaf_node=bad_sig))
    as_update = sign_leaf_node(
        st.suite,
        dataclasses.replace(leaf, leaf_node_source=LeafNodeSource.update, parent_hash=None),
        st.signature_keys[2],
        group_id=st.context.group_id,
        leaf_index=2,
    )
    with pytest.raises(LeafNodeError, match="leaf_node_source"):
        receive(st, dataclasses.replace(path, leaf_node=as_update))
    # Signed for another leaf index, or taken from a different sender.
    with pytest.raises(LeafNodeError, match="signature"):
        receive(st, path, sender=3, own=5)
    # Reusing the committer's current encryption key.
    old = st.tree.leaf(2)
    assert old is not None
    stale = sign_leaf_node(
        st.suite,
        dataclasses.replace(leaf, encryption_key=old.encryption_key),
        st.signature_keys[2],
        group_id=st.context.group_id,
        leaf_index=2,
    )
    with pytest.raises(LeafNodeError, match="encryption_key"):
        receive(st, dataclasses.replace(path, leaf_node=stale))


def test_rejects_tampered_parent_hash(
    committed: tuple[State, CreatedUpdatePath, RatchetTree],
) -> None:
    st, created, _ = committed
    path = created.update_path
    leaf = path.leaf_node
    assert leaf.parent_hash
    forged = sign_leaf_node(
        st.suite,
        dataclasses.replace(leaf, parent_hash=bytes(len(leaf.parent_hash))),
        st.signature_keys[2],
        group_id=st.context.group_id,
        leaf_index=2,
    )
    with pytest.raises(CommitError, match="parent_hash"):
        receive(st, dataclasses.replace(path, leaf_node=forged))
    # Swapping in another key for a path node also breaks the leaf's parent hash.
    _, other_pub = st.suite.generate_hpke_key_pair(os.urandom)
    nodes = list(path.nodes)
    nodes[-1] = dataclasses.replace(nodes[-1], encryption_key=other_pub)
    with pytest.raises(CommitError, match="parent_hash"):
        receive(st, dataclasses.replace(path, nodes=tuple(nodes)))


def test_rejects_wrong_path_length_and_reused_keys(
    committed: tuple[State, CreatedUpdatePath, RatchetTree],
) -> None:
    st, created, _ = committed
    path = created.update_path
    with pytest.raises(CommitError, match="filtered direct path"):
        receive(st, dataclasses.replace(path, nodes=path.nodes[:-1]))
    _, extra_pub = st.suite.generate_hpke_key_pair(os.urandom)
    extra = dataclasses.replace(path.nodes[-1], encryption_key=extra_pub)
    with pytest.raises(CommitError, match="filtered direct path"):
        receive(st, dataclasses.replace(path, nodes=(*path.nodes, extra)))
    nodes = list(path.nodes)
    some_parent = next(v for x in range(1, st.tree.width, 2) if (v := st.tree.node(x)) is not None)
    nodes[0] = dataclasses.replace(nodes[0], encryption_key=some_parent.encryption_key)
    with pytest.raises(CommitError, match="encryption key"):
        receive(st, dataclasses.replace(path, nodes=tuple(nodes)))
    nodes[0] = dataclasses.replace(nodes[0], encryption_key=b"\x00" * 3)
    with pytest.raises(CommitError, match="invalid HPKE public key"):
        receive(st, dataclasses.replace(path, nodes=tuple(nodes)))


def test_rejects_undecryptable_or_inconsistent_secrets(
    committed: tuple[State, CreatedUpdatePath, RatchetTree],
) -> None:
    st, created, staged = committed
    path = created.update_path
    # Wrong provisional context (e.g. another epoch): HPKE decryption fails.
    with pytest.raises(CommitError, match="decrypt"):
        receive(st, path, context=dataclasses.replace(st.context, epoch=st.context.epoch + 1))
    own = 0
    k = next(
        m
        for m, (_, s) in enumerate(staged.filtered_direct_path_with_copath(2))
        if own in range(*_leaf_span(s))
    )
    # A corrupted ciphertext for us.
    nodes = list(path.nodes)
    cts = list(nodes[k].encrypted_path_secret)
    cts = [HPKECiphertext(ct.kem_output, bytes(len(ct.ciphertext))) for ct in cts]
    nodes[k] = dataclasses.replace(nodes[k], encrypted_path_secret=tuple(cts))
    with pytest.raises(CommitError, match="decrypt"):
        decrypt_update_path(
            st.suite,
            staged,
            2,
            dataclasses.replace(path, nodes=tuple(nodes)),
            own_leaf=own,
            private_keys=st.keys[own],
            group_context=created.group_context,
        )
    # A public key above our common ancestor that does not match the derived secret.
    assert k + 1 < len(nodes)
    _, other_pub = st.suite.generate_hpke_key_pair(os.urandom)
    nodes = list(path.nodes)
    nodes[k + 1] = dataclasses.replace(nodes[k + 1], encryption_key=other_pub)
    with pytest.raises(CommitError, match="derived public key"):
        decrypt_update_path(
            st.suite,
            staged,
            2,
            dataclasses.replace(path, nodes=tuple(nodes)),
            own_leaf=own,
            private_keys=st.keys[own],
            group_context=created.group_context,
        )
    # No usable private key, or decrypting one's own path.
    with pytest.raises(CommitError, match="no private key"):
        receive(st, path, keys=TreePrivateKeys())
    with pytest.raises(CommitError, match="own UpdatePath"):
        decrypt_update_path(
            st.suite,
            staged,
            2,
            path,
            own_leaf=2,
            private_keys=st.keys[2],
            group_context=created.group_context,
        )


def _leaf_span(x: int) -> tuple[int, int]:
    k = (x ^ (x + 1)).bit_length() - 1
    first = (x - ((1 << k) - 1)) >> 1
    return first, first + (1 << k)


def test_private_keys_track_the_tree(
    committed: tuple[State, CreatedUpdatePath, RatchetTree],
) -> None:
    st, _, staged = committed
    keys = st.keys[5].copy()
    assert 2 * 5 in keys and len(keys) >= 2
    with pytest.raises(TreeError):
        keys.check_consistent(staged, 5)  # the commit replaced nodes we hold keys for
    keys.prune(staged)
    keys.check_consistent(staged, 5)
    assert 2 * 5 in keys and staged.root not in keys
    bogus = TreePrivateKeys({1: (b"x", b"y")})
    with pytest.raises(TreeError, match="off the direct path"):
        bogus.check_consistent(staged, 5)
    with pytest.raises(TreeError, match=r"another public key|blank"):
        bogus.check_consistent(staged)


def test_create_rejects_mismatched_signature_key(
    committed: tuple[State, CreatedUpdatePath, RatchetTree],
) -> None:
    st, _, _ = committed
    with pytest.raises(ValueError, match="signature"):
        create_update_path(
            st.suite,
            st.tree.copy(),
            2,
            leaf_template=st.tree.leaf(2) or pytest.fail("blank"),
            signature_priv=st.signature_keys[3],
            group_context=st.context,
            rng=os.urandom,
        )


def test_errors_are_mls_errors() -> None:
    assert issubclass(CommitError, MLSError) and issubclass(LeafNodeError, MLSError)
