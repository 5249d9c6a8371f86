"""RatchetTree structure, caches and encoding, and leaf node validation (RFC 9420 4, 7).

Structural tests use placeholder leaves (hashing and resolutions need no valid
keys); leaf-node validation uses real signed leaves.
"""

from __future__ import annotations

import dataclasses
import os
import random
from typing import Any

import pytest

from clave.mls.ciphersuite import CipherSuite, get_suite
from clave.mls.errors import DecodeError, LeafNodeError, TreeError
from clave.mls.leaf_node import (
    check_capabilities_support,
    make_leaf_node,
    sign_leaf_node,
    validate_leaf_node,
    verify_leaf_node_signature,
)
from clave.mls.ratchet_tree import NodeValue, RatchetTree
from clave.mls.structs import (
    ApplicationId,
    Capabilities,
    Credential,
    CredentialType,
    Extension,
    ExtensionType,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    Node,
    ParentNode,
    RequiredCapabilities,
)
from clave.mls.structs import RatchetTree as RatchetTreeStruct

SUITE = get_suite(1)
CAPS = Capabilities(versions=(1,), cipher_suites=(1, 2, 3), credentials=(1,))
LIFETIME = Lifetime(1_000, 2_000)


def fake_leaf(i: int) -> LeafNode:
    """A syntactically valid leaf with placeholder keys (no crypto checks)."""
    return LeafNode(
        encryption_key=b"enc-%d" % i,
        signature_key=b"sig-%d" % i,
        credential=Credential.basic(b"member-%d" % i),
        capabilities=CAPS,
        leaf_node_source=LeafNodeSource.key_package,
        lifetime=LIFETIME,
    )


def fake_parent(tag: str, unmerged: tuple[int, ...] = ()) -> ParentNode:
    return ParentNode(b"penc-" + tag.encode(), b"", unmerged)


def fake_tree(n_leaves: int, blank_leaves: frozenset[int] | set[int] = frozenset()) -> RatchetTree:
    nodes: list[NodeValue] = []
    for x in range(2 * n_leaves - 1):
        if x % 2 == 0:
            nodes.append(None if x // 2 in blank_leaves else fake_leaf(x // 2))
        else:
            nodes.append(None)
    return RatchetTree(SUITE, nodes)


class CountingSuite:
    """Proxy of a CipherSuite counting calls of ``hash``."""

    def __init__(self, suite: CipherSuite) -> None:
        self._suite = suite
        self.calls = 0

    def hash(self, data: bytes) -> bytes:
        self.calls += 1
        return self._suite.hash(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._suite, name)


def member(
    suite: CipherSuite,
    i: int,
    *,
    source: LeafNodeSource = LeafNodeSource.key_package,
    caps: Capabilities = CAPS,
    extensions: tuple[Extension, ...] = (),
    group_id: bytes = b"group",
    credential: Credential | None = None,
) -> tuple[LeafNode, bytes]:
    """A real signed leaf for leaf index ``i`` and its signature private key."""
    sig_priv, _ = suite.generate_signature_key_pair(os.urandom)
    _, enc_pub = suite.generate_hpke_key_pair(os.urandom)
    leaf = make_leaf_node(
        suite,
        encryption_key=enc_pub,
        signature_priv=sig_priv,
        credential=credential or Credential.basic(b"member-%d" % i),
        capabilities=caps,
        source=source,
        lifetime=LIFETIME if source == LeafNodeSource.key_package else None,
        parent_hash=b"" if source == LeafNodeSource.commit else None,
        extensions=extensions,
        group_id=group_id,
        leaf_index=i,
    )
    return leaf, sig_priv


# -- resolutions and filtered direct paths (RFC 9420 section 4.1) ---------------------


def test_resolution_example_from_rfc() -> None:
    """Figure 'A Tree with Blanks and Unmerged Leaves' (RFC 9420 section 4.1.1)."""
    tree = fake_tree(8, blank_leaves={2, 6})
    tree._set(3, fake_parent("X", (1,)))  # X at node 3 with unmerged B (leaf 1)
    tree._set(9, fake_parent("Y"))  # Y above E, F
    assert tree.resolution(3) == (3, 2)
    assert tree.resolution(4) == ()
    assert tree.resolution(12) == ()
    assert tree.resolution(7) == (3, 2, 9, 14)
    assert tree.resolution(7, exclude_leaves=[1, 7]) == (3, 9)


def test_filtered_direct_path_example_from_rfc() -> None:
    """Figure 'A Complete Tree with Five Members' (RFC 9420 section 4.1.2)."""
    tree = fake_tree(8, blank_leaves={2, 3, 7})
    for x, tag in ((1, "T"), (7, "W"), (9, "X"), (11, "Y")):
        tree._set(x, fake_parent(tag))
    assert tree.filtered_direct_path(0) == [1, 7]
    assert tree.filtered_direct_path(1) == [1, 7]
    assert tree.filtered_direct_path(4) == [9, 11, 7]
    assert tree.filtered_direct_path(5) == [9, 11, 7]
    assert tree.filtered_direct_path(6) == [11, 7]


# -- Add / Update / Remove (RFC 9420 sections 7.7, 12.1) ---------------------------


def test_add_fills_leftmost_blank_and_extends_when_full() -> None:
    tree = RatchetTree.create(SUITE, fake_leaf(0))
    assert (tree.n_leaves, tree.width) == (1, 1)
    assert tree.add_leaf(fake_leaf(1)) == 1
    assert tree.n_leaves == 2
    assert tree.add_leaf(fake_leaf(2)) == 2
    assert (tree.n_leaves, tree.free_leaf()) == (4, 3)
    tree.remove_leaf(1)
    assert tree.free_leaf() == 1
    assert tree.add_leaf(fake_leaf(9)) == 1
    assert tree.add_leaf(fake_leaf(3)) == 3
    assert tree.free_leaf() == 4 == tree.n_leaves
    assert tree.add_leaf(fake_leaf(4)) == 4
    assert tree.n_leaves == 8 and tree.member_count() == 5


def test_add_marks_unmerged_at_nonblank_ancestors_sorted() -> None:
    tree = fake_tree(8, blank_leaves={2, 6, 7})
    tree._set(7, fake_parent("root", (5,)))
    tree._set(11, fake_parent("Y", (5,)))
    tree._set(3, fake_parent("X"))
    assert tree.add_leaf(fake_leaf(2)) == 2
    root = tree.parent_node(7)
    x = tree.parent_node(3)
    assert root is not None and root.unmerged_leaves == (2, 5)
    assert x is not None and x.unmerged_leaves == (2,)
    assert tree.node(5) is None  # blank ancestors stay blank
    y = tree.parent_node(11)
    assert y is not None and y.unmerged_leaves == (5,)


def test_update_blanks_direct_path_only() -> None:
    tree = fake_tree(4)
    for x in (1, 3, 5):
        tree._set(x, fake_parent(str(x)))
    new = dataclasses.replace(fake_leaf(7), leaf_node_source=LeafNodeSource.update, lifetime=None)
    tree.update_leaf(2, new)
    assert tree.leaf(2) == new
    assert [tree.node(x) is None for x in (1, 3, 5)] == [False, True, True]
    with pytest.raises(TreeError):
        fake_tree(2, blank_leaves={1}).update_leaf(1, new)


def test_remove_blanks_path_and_truncates() -> None:
    tree = fake_tree(8, blank_leaves={3, 4, 6})
    for x in range(1, 15, 2):
        tree._set(x, fake_parent(str(x)))
    tree.remove_leaf(5)
    # leaf 7 is still there: no truncation, leaf 5's direct path blanked
    assert tree.n_leaves == 8
    assert all(tree.node(x) is None for x in (10, 9, 11, 7))
    tree.remove_leaf(7)
    assert tree.n_leaves == 4  # right half (leaves 4-7) all blank
    tree.remove_leaf(2)
    assert tree.n_leaves == 2
    tree.remove_leaf(1)
    assert tree.n_leaves == 1 and tree.leaf(0) == fake_leaf(0)
    with pytest.raises(TreeError):
        tree.remove_leaf(3)
    with pytest.raises(TreeError):
        fake_tree(2, blank_leaves={1}).remove_leaf(1)


def test_truncate_is_noop_on_truncated_tree() -> None:
    tree = fake_tree(4, blank_leaves={1, 3})
    before = tree.copy()
    tree.truncate()
    assert tree == before and tree.n_leaves == 4


# -- caches ------------------------------------------------------------------------


def test_tree_hash_recomputation_touches_only_the_changed_path() -> None:
    counting = CountingSuite(SUITE)
    n = 1024
    nodes: list[NodeValue] = [fake_leaf(x // 2) if x % 2 == 0 else None for x in range(2 * n - 1)]
    tree = RatchetTree(counting, nodes)  # type: ignore[arg-type]
    root = tree.tree_hash()
    assert counting.calls == 2 * n - 1
    counting.calls = 0
    tree.set_leaf(700, fake_leaf(5000))
    assert tree.tree_hash() != root
    assert counting.calls == 11  # the leaf and its 10 ancestors
    counting.calls = 0
    clone = tree.copy()
    clone.tree_hash()
    assert counting.calls == 0  # copies keep the caches


def _fresh(tree: RatchetTree) -> RatchetTree:
    return RatchetTree(tree.suite, tree.nodes())


def test_caches_match_recomputation_under_random_operations() -> None:
    rnd = random.Random(1234)
    tree = RatchetTree.create(SUITE, fake_leaf(0))
    tree.tree_hashes()
    counter = 1
    for step in range(300):
        members = [i for i, _ in tree.leaf_nodes()]
        op = rnd.random()
        if op < 0.45 or len(members) < 2:
            tree.add_leaf(fake_leaf(counter))
            counter += 1
        elif op < 0.65:
            tree.remove_leaf(rnd.choice(members))
        elif op < 0.8:
            i = rnd.choice(members)
            tree.update_leaf(i, fake_leaf(counter))
            counter += 1
        else:
            # set a random sender's filtered direct path as a commit would
            i = rnd.choice(members)
            keys = [b"k%d-%d" % (step, p) for p in tree.filtered_direct_path(i)]
            tree.merge_path(i, keys)
        if step % 7 == 0:
            fresh = _fresh(tree)
            assert tree.tree_hashes() == fresh.tree_hashes()
            assert [tree.resolution(x) for x in range(tree.width)] == [
                fresh.resolution(x) for x in range(fresh.width)
            ]
        if step % 5 == 0:
            tree.tree_hash()
            tree.resolution(tree.root)


def test_copy_is_independent() -> None:
    tree = fake_tree(4)
    h = tree.tree_hash()
    clone = tree.copy()
    clone.remove_leaf(3)
    clone.add_leaf(fake_leaf(42))
    assert tree.tree_hash() == h and tree.leaf(3) == fake_leaf(3)
    assert clone != tree


# -- encoding (RFC 9420 section 12.4.3.3) ------------------------------------------


def test_encoding_strips_trailing_blanks_and_round_trips() -> None:
    tree = fake_tree(4, blank_leaves={3})
    tree._set(1, fake_parent("a"))
    struct = tree.to_struct()
    assert len(struct.nodes) == 5
    data = tree.to_bytes()
    back = RatchetTree.from_bytes(SUITE, data)
    assert back == tree and back.tree_hash() == tree.tree_hash()
    assert RatchetTree.from_extension(SUITE, tree.to_extension()) == tree
    assert tree.to_extension().extension_type == ExtensionType.ratchet_tree


def _encode(nodes: list[NodeValue]) -> bytes:
    return RatchetTreeStruct(tuple(None if v is None else Node(v) for v in nodes)).to_bytes()


def test_decoding_rejects_malformed_trees() -> None:
    a, b = fake_leaf(0), fake_leaf(1)
    p = fake_parent("p")
    good = _encode([a, p, b])
    with pytest.raises(DecodeError):
        RatchetTree.from_bytes(SUITE, good[:-1])  # truncated
    with pytest.raises(DecodeError):
        RatchetTree.from_bytes(SUITE, good + b"\x00")  # trailing bytes
    with pytest.raises(DecodeError):
        RatchetTree.from_bytes(SUITE, b"\x00")  # empty vector
    w = Node(a).to_bytes()
    blank_last = bytes([len(w) + 2]) + b"\x01" + w + b"\x00"
    with pytest.raises(DecodeError):
        RatchetTree.from_bytes(SUITE, blank_last)
    with pytest.raises(DecodeError):
        RatchetTree.from_bytes(SUITE, _encode([p]))  # parent at a leaf position
    with pytest.raises(DecodeError):
        RatchetTree.from_bytes(SUITE, _encode([a, b]))  # leaf at a parent position
    # not truncated: the right subtree of the root has no non-blank leaf
    with pytest.raises(TreeError, match="not truncated"):
        RatchetTree.from_bytes(SUITE, _encode([a, p]))
    with pytest.raises(TreeError, match="not truncated"):
        RatchetTree.from_bytes(SUITE, _encode([a, p, b, None, None, p]))
    with pytest.raises(TreeError):
        RatchetTree(SUITE, [])
    with pytest.raises(TreeError):
        RatchetTree(SUITE, [p])


def test_decoding_pads_to_minimal_perfect_tree() -> None:
    a, b, c = fake_leaf(0), fake_leaf(1), fake_leaf(2)
    tree = RatchetTree.from_bytes(SUITE, _encode([a, None, b, None, c]))
    assert (tree.n_leaves, tree.width) == (4, 7)
    assert tree.leaf(3) is None and tree.node(5) is None
    assert RatchetTree.from_bytes(SUITE, _encode([a])).n_leaves == 1


def test_lookup_helpers() -> None:
    tree = fake_tree(4, blank_leaves={1})
    assert [i for i, _ in tree.leaf_nodes()] == [0, 2, 3]
    assert tree.find_leaf(fake_leaf(2)) == 2
    assert tree.find_leaf(fake_leaf(1)) is None
    assert tree.find_leaf(lambda leaf: leaf.credential.identity == b"member-3") == 3
    assert tree.find_signature_key(b"sig-3") == 3
    assert tree.find_encryption_key(b"enc-2") == 4
    assert tree.find_encryption_key(b"nope") is None
    assert tree.free_leaf() == 1
    assert tree.ensure_free_leaf() == 1 and tree.n_leaves == 4
    with pytest.raises(TreeError):
        tree.leaf(4)
    with pytest.raises(TreeError):
        tree.parent_node(2)
    with pytest.raises(TreeError):
        tree.node(7)


# -- leaf node signing and validation (RFC 9420 sections 7.2-7.3) -----------------------


@pytest.mark.parametrize("suite_id", [1, 2, 3])
def test_sign_and_verify_leaf_node(suite_id: int) -> None:
    suite = get_suite(suite_id)
    caps = dataclasses.replace(CAPS, cipher_suites=(suite_id,))
    for source in LeafNodeSource:
        leaf, _ = member(suite, 3, source=source, caps=caps, group_id=b"gid")
        validate_leaf_node(suite, leaf, expected_source=source, group_id=b"gid", leaf_index=3)
        if source != LeafNodeSource.key_package:
            with pytest.raises(LeafNodeError, match="signature"):
                verify_leaf_node_signature(suite, leaf, group_id=b"other", leaf_index=3)
            with pytest.raises(LeafNodeError, match="signature"):
                verify_leaf_node_signature(suite, leaf, group_id=b"gid", leaf_index=4)
            with pytest.raises(LeafNodeError, match="needs group_id"):
                verify_leaf_node_signature(suite, leaf)


def test_validate_leaf_node_checks() -> None:
    s = SUITE
    leaf, sig = member(s, 0)
    ok: dict[str, Any] = {"expected_source": LeafNodeSource.key_package}
    validate_leaf_node(s, leaf, **ok)

    with pytest.raises(LeafNodeError, match="leaf_node_source"):
        validate_leaf_node(s, leaf, expected_source=LeafNodeSource.update)
    with pytest.raises(LeafNodeError, match="signature"):
        validate_leaf_node(s, dataclasses.replace(leaf, signature=bytes(64)), **ok)

    def resigned(**changes: Any) -> LeafNode:
        return sign_leaf_node(s, dataclasses.replace(leaf, **changes), sig)

    with pytest.raises(LeafNodeError, match="signature_key"):
        validate_leaf_node(s, dataclasses.replace(leaf, signature_key=b"x"), **ok)
    with pytest.raises(LeafNodeError, match="encryption_key is not a valid"):
        validate_leaf_node(s, resigned(encryption_key=b"short"), **ok)
    no_cred = dataclasses.replace(CAPS, credentials=(2,))
    with pytest.raises(LeafNodeError, match="credential type"):
        validate_leaf_node(s, resigned(capabilities=no_cred), **ok)
    with pytest.raises(LeafNodeError, match="cipher suite"):
        validate_leaf_node(
            s, resigned(capabilities=dataclasses.replace(CAPS, cipher_suites=(2,))), **ok
        )
    with pytest.raises(LeafNodeError, match="version"):
        validate_leaf_node(s, resigned(capabilities=dataclasses.replace(CAPS, versions=(2,))), **ok)

    # extensions in the leaf must be listed unless default (7.2, 7.3)
    custom = Extension(0xF000, b"x")
    with pytest.raises(LeafNodeError, match="0xf000 not listed"):
        validate_leaf_node(s, resigned(extensions=(custom,)), **ok)
    listed = dataclasses.replace(CAPS, extensions=(0xF000,))
    validate_leaf_node(s, resigned(extensions=(custom,), capabilities=listed), **ok)
    app_id = ApplicationId(b"app").to_extension()
    validate_leaf_node(s, resigned(extensions=(app_id,)), **ok)
    with pytest.raises(LeafNodeError, match="twice"):
        validate_leaf_node(s, resigned(extensions=(app_id, app_id)), **ok)

    # lifetime (injected time)
    validate_leaf_node(s, leaf, now=1_500, **ok)
    for now in (999, 2_001):
        with pytest.raises(LeafNodeError, match="lifetime"):
            validate_leaf_node(s, leaf, now=now, **ok)
    with pytest.raises(LeafNodeError, match="maximum"):
        validate_leaf_node(s, leaf, max_lifetime=500, **ok)
    with pytest.raises(LeafNodeError, match="empty"):
        validate_leaf_node(s, resigned(lifetime=Lifetime(5, 4)), **ok)

    # credential hook
    seen: list[tuple[LeafNode, LeafNode | None]] = []

    def reject(new: LeafNode, old: LeafNode | None) -> bool:
        seen.append((new, old))
        return False

    with pytest.raises(LeafNodeError, match="authentication service"):
        validate_leaf_node(s, leaf, credential_validator=reject, **ok)
    assert seen == [(leaf, None)]


def test_required_capabilities_and_group_extensions() -> None:
    caps = dataclasses.replace(CAPS, extensions=(0xF001,), proposals=(0xF002,), credentials=(1, 2))
    req = RequiredCapabilities((0xF001, 5), (0xF002, 1), (2,)).to_extension()
    check_capabilities_support(caps, [req])
    check_capabilities_support(caps, [req, Extension(0xF001, b"")])
    with pytest.raises(LeafNodeError, match="required extension"):
        check_capabilities_support(CAPS, [RequiredCapabilities((0xF001,)).to_extension()])
    with pytest.raises(LeafNodeError, match="required proposal"):
        check_capabilities_support(CAPS, [RequiredCapabilities((), (0xF002,)).to_extension()])
    with pytest.raises(LeafNodeError, match="required credential"):
        check_capabilities_support(CAPS, [RequiredCapabilities((), (), (2,)).to_extension()])
    with pytest.raises(LeafNodeError, match="group context extension"):
        check_capabilities_support(CAPS, [Extension(0xF003, b"")])
    with pytest.raises(LeafNodeError, match="malformed"):
        check_capabilities_support(CAPS, [Extension(ExtensionType.required_capabilities, b"\x01")])
    leaf, _ = member(SUITE, 0)
    with pytest.raises(LeafNodeError, match="required"):
        validate_leaf_node(
            SUITE,
            leaf,
            expected_source=LeafNodeSource.key_package,
            group_context_extensions=[req],
        )


def test_validation_against_tree_members() -> None:
    s = SUITE
    leaves = [member(s, i) for i in range(3)]
    tree = RatchetTree(s, [leaves[0][0], None, leaves[1][0], None, leaves[2][0]])
    new, new_sig = member(s, 9)
    validate_leaf_node(s, new, expected_source=LeafNodeSource.key_package, tree=tree)

    def resigned(**changes: Any) -> LeafNode:
        return sign_leaf_node(s, dataclasses.replace(new, **changes), new_sig)

    dup_enc = resigned(encryption_key=leaves[1][0].encryption_key)
    with pytest.raises(LeafNodeError, match="encryption_key is already used by node 2"):
        validate_leaf_node(s, dup_enc, expected_source=LeafNodeSource.key_package, tree=tree)
    dup_sig = dataclasses.replace(new, signature_key=leaves[2][0].signature_key)
    dup_sig = sign_leaf_node(s, dup_sig, leaves[2][1])
    with pytest.raises(LeafNodeError, match="signature_key is already used by leaf 2"):
        validate_leaf_node(s, dup_sig, expected_source=LeafNodeSource.key_package, tree=tree)

    # credential types: the newcomer must support those in use and vice versa
    x509 = Credential.x509([b"cert"])
    both = dataclasses.replace(CAPS, credentials=(1, 2))
    with pytest.raises(LeafNodeError, match="not supported by leaf 0"):
        validate_leaf_node(
            s,
            resigned(credential=x509, capabilities=both),
            expected_source=LeafNodeSource.key_package,
            tree=tree,
        )
    x509_member, _ = member(s, 5, caps=both, credential=x509)
    mixed = RatchetTree(s, [x509_member])
    with pytest.raises(LeafNodeError, match="lack credential type 2 used by leaf 0"):
        validate_leaf_node(s, new, expected_source=LeafNodeSource.key_package, tree=mixed)

    # an update by leaf 1 may keep its signature key but must change its encryption key
    upd = dataclasses.replace(leaves[1][0], leaf_node_source=LeafNodeSource.update, lifetime=None)
    upd_same = sign_leaf_node(s, upd, leaves[1][1], group_id=b"group", leaf_index=1)
    with pytest.raises(LeafNodeError, match="leaf node being replaced"):
        validate_leaf_node(
            s,
            upd_same,
            expected_source=LeafNodeSource.update,
            group_id=b"group",
            leaf_index=1,
            tree=tree,
        )
    _, fresh_pub = s.generate_hpke_key_pair(os.urandom)
    upd_new = sign_leaf_node(
        s,
        dataclasses.replace(upd, encryption_key=fresh_pub),
        leaves[1][1],
        group_id=b"group",
        leaf_index=1,
    )
    validate_leaf_node(
        s,
        upd_new,
        expected_source=LeafNodeSource.update,
        group_id=b"group",
        leaf_index=1,
        tree=tree,
    )


def test_verify_integrity_checks_credential_support_and_suite() -> None:
    s = SUITE
    a, _ = member(s, 0)
    x509_caps = dataclasses.replace(CAPS, credentials=(1, 2))
    b, _ = member(s, 1, caps=x509_caps, credential=Credential.x509([b"c"]))
    tree = RatchetTree(s, [a, None, b])
    assert b.credential.credential_type == CredentialType.x509
    with pytest.raises(LeafNodeError, match="credential types in use"):
        tree.verify_integrity(b"group")
    with pytest.raises(TreeError, match="cipher suite"):
        RatchetTree(s, [a]).verify_integrity(b"group", get_suite(2))
    RatchetTree(s, [a]).verify_integrity(b"group", s)
