"""Tree hashes, resolutions and tree validation on join (RFC 9420 sections 4.1, 7.8,
7.9.2, 12.4.3.1) against tree-validation.json, plus tampered-tree negatives."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest
from mls_vectors import claimed_suite, h, load_vectors, suite_params

from clave.mls.ciphersuite import CipherSuite
from clave.mls.codec import encode_varint
from clave.mls.errors import DecodeError, LeafNodeError, MLSError, TreeError
from clave.mls.ratchet_tree import NodeValue, RatchetTree
from clave.mls.structs import LeafNodeSource, ParentNode

VECTORS = load_vectors("tree-validation")
PARAMS = suite_params(VECTORS)


def flip(b: bytes) -> bytes:
    return bytes([b[0] ^ 1]) + b[1:] if b else b"\x01"


def rebuilt(tree: RatchetTree, x: int, value: NodeValue) -> RatchetTree:
    nodes = list(tree.nodes())
    nodes[x] = value
    return RatchetTree(tree.suite, nodes)


def load(v: dict[str, Any]) -> tuple[CipherSuite, RatchetTree, bytes]:
    suite = claimed_suite(v)
    return suite, RatchetTree.from_bytes(suite, h(v["tree"])), h(v["group_id"])


@pytest.mark.parametrize("v", PARAMS)
def test_tree_validation_vector(v: dict[str, Any]) -> None:
    suite, tree, group_id = load(v)
    assert tree.to_bytes() == h(v["tree"])
    assert tree.width == len(v["tree_hashes"]) == len(v["resolutions"])
    assert tree.tree_hashes() == [h(x) for x in v["tree_hashes"]]
    for x in range(tree.width):
        assert tree.tree_hash(x) == h(v["tree_hashes"][x])
        assert list(tree.resolution(x)) == v["resolutions"][x]
    tree.verify_parent_hashes()
    tree.verify_integrity(group_id, suite, expected_tree_hash=h(v["tree_hashes"][tree.root]))


@pytest.mark.parametrize("v", PARAMS)
def test_wrong_group_id_or_tree_hash_rejected(v: dict[str, Any]) -> None:
    _, tree, group_id = load(v)
    with pytest.raises(LeafNodeError, match="signature"):
        tree.verify_integrity(group_id + b"x")
    with pytest.raises(TreeError, match="tree hash"):
        tree.verify_integrity(group_id, expected_tree_hash=bytes(32))


@pytest.mark.parametrize("v", PARAMS)
def test_tampered_parent_nodes_rejected(v: dict[str, Any]) -> None:
    """Changing the parent hash or key of any non-blank parent breaks a chain (7.9.2)."""
    _, tree, _ = load(v)
    parents = [x for x in range(1, tree.width, 2) if tree.node(x) is not None]
    assert parents
    for x in parents:
        p = tree.parent_node(x)
        assert p is not None
        for bad in (
            dataclasses.replace(p, parent_hash=flip(p.parent_hash)),
            dataclasses.replace(p, encryption_key=flip(p.encryption_key)),
        ):
            with pytest.raises(TreeError, match="parent-hash valid"):
                rebuilt(tree, x, bad).verify_parent_hashes()


@pytest.mark.parametrize("v", PARAMS)
def test_bad_leaf_signature_rejected(v: dict[str, Any]) -> None:
    _, tree, group_id = load(v)
    i, leaf = next(tree.leaf_nodes())
    bad = dataclasses.replace(leaf, signature=flip(leaf.signature))
    with pytest.raises(LeafNodeError, match=f"signature at leaf {i} is invalid"):
        rebuilt(tree, 2 * i, bad).verify_integrity(group_id)
    # Changing a signed field without re-signing is caught the same way.
    renamed = dataclasses.replace(
        leaf, credential=dataclasses.replace(leaf.credential, identity=b"x")
    )
    with pytest.raises(LeafNodeError, match="signature"):
        rebuilt(tree, 2 * i, renamed).verify_integrity(group_id)


@pytest.mark.parametrize("v", PARAMS)
def test_commit_leaf_parent_hash_anchors_its_parent(v: dict[str, Any]) -> None:
    """A commit leaf anchoring a chain: its parent hash changed leaves that parent unanchored."""
    _, tree, _ = load(v)
    for i, leaf in tree.leaf_nodes():
        if leaf.leaf_node_source != LeafNodeSource.commit or not leaf.parent_hash:
            continue
        bad = dataclasses.replace(leaf, parent_hash=flip(leaf.parent_hash))
        with pytest.raises(TreeError, match="parent-hash valid"):
            rebuilt(tree, 2 * i, bad).verify_parent_hashes()
        return
    pytest.fail("no commit leaf with a parent hash in the vector tree")


@pytest.mark.parametrize("v", PARAMS)
def test_duplicate_keys_rejected(v: dict[str, Any]) -> None:
    _, tree, group_id = load(v)
    leaves = list(tree.leaf_nodes())
    (i, a), (j, b) = leaves[0], leaves[1]
    dup_enc = dataclasses.replace(b, encryption_key=a.encryption_key)
    with pytest.raises(TreeError, match="share an encryption key"):
        rebuilt(tree, 2 * j, dup_enc).verify_integrity(group_id)
    dup_sig = dataclasses.replace(b, signature_key=a.signature_key)
    with pytest.raises(TreeError, match="share a signature key"):
        rebuilt(tree, 2 * j, dup_sig).verify_integrity(group_id)
    x = next(x for x in range(1, tree.width, 2) if tree.node(x) is not None)
    p = tree.parent_node(x)
    assert p is not None
    parent_dup = dataclasses.replace(p, encryption_key=a.encryption_key)
    with pytest.raises(TreeError, match="share an encryption key"):
        rebuilt(tree, x, parent_dup).verify_integrity(group_id)
    assert i != j


def _first_parent(tree: RatchetTree) -> tuple[int, ParentNode]:
    for x in range(tree.width - 2, 0, -2):  # prefer high nodes: more descendants
        p = tree.node(x)
        if isinstance(p, ParentNode):
            return x, p
    x = tree.root
    p = tree.parent_node(x)
    assert p is not None
    return x, p


@pytest.mark.parametrize("v", PARAMS)
def test_inconsistent_unmerged_leaves_rejected(v: dict[str, Any]) -> None:
    _, tree, group_id = load(v)
    x = tree.root
    p = tree.parent_node(x)
    assert p is not None
    members = [i for i, _ in tree.leaf_nodes()]
    blank = [i for i in range(tree.n_leaves) if tree.leaf(i) is None]
    cases: list[tuple[tuple[int, ...], str]] = [
        ((*p.unmerged_leaves, tree.n_leaves), "not its descendant"),
    ]
    if blank:
        cases.append(((*p.unmerged_leaves, blank[0]), "blank|increasing"))
    if len(members) >= 2:
        cases.append(((members[1], members[0]), "strictly increasing"))
    cases.append(((members[0], members[0]), "strictly increasing"))
    for unmerged, message in cases:
        bad = dataclasses.replace(p, unmerged_leaves=unmerged)
        with pytest.raises(TreeError, match=message):
            rebuilt(tree, x, bad).verify_integrity(group_id)
    # An unmerged leaf listed at the root must also be listed at non-blank nodes between.
    for i in members:
        between = [
            y
            for y in range(1, tree.width, 2)
            if y != x and i in range(*_span(y)) and tree.node(y) is not None
        ]
        if between and i not in p.unmerged_leaves:
            bad = dataclasses.replace(p, unmerged_leaves=tuple(sorted((*p.unmerged_leaves, i))))
            with pytest.raises(TreeError, match="unmerged at node"):
                rebuilt(tree, x, bad).verify_unmerged_leaves()
            break


def _span(x: int) -> tuple[int, int]:
    k = (x ^ (x + 1)).bit_length() - 1
    first = (x - ((1 << k) - 1)) >> 1
    return first, first + (1 << k)


def _raw_tree(inner: bytes) -> bytes:
    return encode_varint(len(inner)) + inner


@pytest.mark.parametrize("v", PARAMS)
def test_malformed_tree_encodings_rejected(v: dict[str, Any]) -> None:
    """Bad encodings fail with DecodeError/TreeError only (RFC 9420 section 12.4.3.3)."""
    suite = claimed_suite(v)
    data = h(v["tree"])
    n = len(encode_varint(len(data)))  # the vector's own prefix has the same size class
    inner = data[n:]
    bad_inputs = [
        b"",
        b"\x00",  # empty list
        data[:-1],  # truncated
        data + b"\x00",  # trailing bytes
        _raw_tree(inner + b"\x00"),  # ends with a blank node
        _raw_tree(inner + b"\x02"),  # invalid presence octet
        _raw_tree(b"\x01\x03" + inner[2:]),  # invalid node type
    ]
    for bad in bad_inputs:
        with pytest.raises((DecodeError, TreeError)):
            RatchetTree.from_bytes(suite, bad)
    # Every prefix and single-byte corruption is either rejected or a different valid tree.
    for cut in range(0, len(data), max(1, len(data) // 97)):
        with contextlib.suppress(DecodeError, TreeError):
            RatchetTree.from_bytes(suite, data[:cut])
    for pos in range(0, len(data), max(1, len(data) // 61)):
        corrupted = data[:pos] + bytes([data[pos] ^ 0x80]) + data[pos + 1 :]
        try:
            tree = RatchetTree.from_bytes(suite, corrupted)
        except (DecodeError, TreeError):
            continue
        with pytest.raises(MLSError):
            tree.verify_integrity(h(v["group_id"]), expected_tree_hash=h(v["tree_hashes"][-1]))


@pytest.mark.parametrize("v", PARAMS)
def test_untruncated_tree_rejected(v: dict[str, Any]) -> None:
    """A tree whose right half holds no member was not truncated (RFC 9420 12.1.3)."""
    suite, tree, _ = load(v)
    nodes: list[NodeValue] = list(tree.nodes()) + [None] * (tree.width + 1)
    nodes[-2] = ParentNode(b"k", b"", ())  # last slot before the new right-most leaf
    with pytest.raises(TreeError, match="not truncated"):
        RatchetTree.from_struct(suite, RatchetTree(suite, nodes).to_struct())
