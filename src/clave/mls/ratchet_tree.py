"""The public ratchet tree (RFC 9420 sections 4, 7.1-7.9, 12.1, 12.4.3.1, 12.4.3.3).

:class:`RatchetTree` holds the array of nodes (``LeafNode``, ``ParentNode`` or
None for blank) of a perfect tree with a power-of-two number of leaves. It
implements the proposal operations (Add/Update/Remove with extension and
truncation, sections 7.7 and 12.1), resolutions and filtered direct paths
(section 4.1), tree hashes (7.8), parent hashes (7.9), merging an UpdatePath's
public keys (7.5, 12.4.2), the integrity checks on joining (12.4.3.1) and the
``ratchet_tree`` extension encoding (12.4.3.3).

Tree hashes and resolutions are cached per node; changing a node invalidates
only the caches along its direct path, so the work after a commit is
proportional to the changed path. Node values are immutable dataclasses, so
:meth:`RatchetTree.copy` is an O(n) pointer copy. No private keys live here
(see :mod:`clave.mls.treekem`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from itertools import pairwise

from .ciphersuite import CipherSuite
from .errors import DecodeError, LeafNodeError, TreeError
from .leaf_node import CredentialValidator, check_capabilities_support, validate_leaf_node
from .structs import (
    Extension,
    LeafNode,
    LeafNodeSource,
    Node,
    ParentHashInput,
    ParentNode,
    leaf_tree_hash_input,
    parent_tree_hash_input,
)
from .structs import RatchetTree as RatchetTreeStruct
from .tree_math import (
    direct_path,
    direct_path_with_copath,
    is_leaf,
    left,
    level,
    right,
    subtree_leaves,
)

__all__ = ["NodeValue", "RatchetTree"]

NodeValue = LeafNode | ParentNode | None
"""The content of one node slot: a leaf, a parent, or None for a blank node."""


def _min_leaves(width: int) -> int:
    """Smallest power-of-two leaf count whose tree has at least ``width`` nodes."""
    n = 1
    while 2 * n - 1 < width:
        n *= 2
    return n


class RatchetTree:
    """A ratchet tree for one cipher suite (RFC 9420 sections 4 and 7).

    Leaf ``i`` is node ``2*i``; parents have odd indices. Mutating methods keep
    the per-node tree-hash and resolution caches consistent.
    """

    __slots__ = ("_hashes", "_nodes", "_res", "suite")

    def __init__(self, suite: CipherSuite, nodes: Sequence[NodeValue]) -> None:
        """Build from nodes in array order, padded with blanks to a perfect tree.

        TreeError if ``nodes`` is empty or a leaf/parent sits at the wrong parity.
        """
        if not nodes:
            raise TreeError("a ratchet tree needs at least one node")
        for i, v in enumerate(nodes):
            if v is not None and isinstance(v, LeafNode) != (i % 2 == 0):
                raise TreeError(f"node {i} must be a {'leaf' if i % 2 == 0 else 'parent'} node")
        width = 2 * _min_leaves(len(nodes)) - 1
        self.suite = suite
        self._nodes: list[NodeValue] = list(nodes) + [None] * (width - len(nodes))
        self._hashes: list[bytes | None] = [None] * width
        self._res: list[tuple[int, ...] | None] = [None] * width

    @classmethod
    def create(cls, suite: CipherSuite, leaf: LeafNode) -> RatchetTree:
        """A one-member tree (RFC 9420 section 11)."""
        return cls(suite, [leaf])

    # -- encoding (RFC 9420 section 12.4.3.3) -----------------------------------

    @classmethod
    def from_struct(cls, suite: CipherSuite, tree: RatchetTreeStruct) -> RatchetTree:
        """Tree from a decoded ``ratchet_tree`` extension, strictly checked.

        The list must be non-empty and end with a non-blank node (DecodeError), and
        the padded tree must be truncated: the right subtree of the root holds a
        non-blank leaf, as sections 7.7 and 12.1.3 guarantee (TreeError).
        """
        if not tree.nodes:
            raise DecodeError("ratchet_tree is empty")
        if tree.nodes[-1] is None:
            raise DecodeError("ratchet_tree ends with a blank node")
        self = cls(suite, [None if n is None else n.value for n in tree.nodes])
        last = self._last_nonblank_leaf()
        if last is None:
            raise TreeError("ratchet tree has no non-blank leaf")
        if self.n_leaves > 1 and last < self.n_leaves // 2:
            raise TreeError(
                f"ratchet tree of {self.n_leaves} leaves is not truncated"
                " (its right subtree has no non-blank leaf)"
            )
        return self

    @classmethod
    def from_bytes(cls, suite: CipherSuite, data: bytes) -> RatchetTree:
        """Decode ``optional<Node> ratchet_tree<V>`` (DecodeError / TreeError)."""
        return cls.from_struct(suite, RatchetTreeStruct.from_bytes(data))

    @classmethod
    def from_extension(cls, suite: CipherSuite, ext: Extension) -> RatchetTree:
        """Decode the data of a ``ratchet_tree`` extension."""
        if ext.extension_type != RatchetTreeStruct.extension_type:
            raise DecodeError(f"extension type {ext.extension_type} is not ratchet_tree")
        return cls.from_bytes(suite, ext.extension_data)

    def to_struct(self) -> RatchetTreeStruct:
        """The ``ratchet_tree`` content, trailing blank nodes stripped."""
        return RatchetTreeStruct.from_nodes(None if v is None else Node(v) for v in self._nodes)

    def to_bytes(self) -> bytes:
        return self.to_struct().to_bytes()

    def to_extension(self) -> Extension:
        return self.to_struct().to_extension()

    # -- basic accessors ----------------------------------------------------------

    @property
    def n_leaves(self) -> int:
        """Number of leaf slots (a power of two)."""
        return (len(self._nodes) + 1) // 2

    @property
    def width(self) -> int:
        """Number of node slots (``2 * n_leaves - 1``)."""
        return len(self._nodes)

    @property
    def root(self) -> int:
        return self.n_leaves - 1

    def copy(self) -> RatchetTree:
        """Independent copy sharing the immutable node values and the caches' contents."""
        other = RatchetTree.__new__(RatchetTree)
        other.suite = self.suite
        other._nodes = list(self._nodes)
        other._hashes = list(self._hashes)
        other._res = list(self._res)
        return other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RatchetTree):
            return NotImplemented
        return self.suite.id == other.suite.id and self._nodes == other._nodes

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RatchetTree({self.member_count()} members, {self.n_leaves} leaves)"

    def _check_node_index(self, x: int) -> None:
        if not 0 <= x < len(self._nodes):
            raise TreeError(f"node {x} outside a tree of {len(self._nodes)} nodes")

    def _check_leaf_index(self, i: int) -> None:
        if not 0 <= i < self.n_leaves:
            raise TreeError(f"leaf {i} outside a tree of {self.n_leaves} leaves")

    def node(self, x: int) -> NodeValue:
        """The value at node ``x`` (None if blank)."""
        self._check_node_index(x)
        return self._nodes[x]

    def nodes(self) -> tuple[NodeValue, ...]:
        """All node values in array order (full width)."""
        return tuple(self._nodes)

    def leaf(self, i: int) -> LeafNode | None:
        """The LeafNode at leaf index ``i``, or None if blank."""
        self._check_leaf_index(i)
        v = self._nodes[2 * i]
        assert v is None or isinstance(v, LeafNode)
        return v

    def parent_node(self, x: int) -> ParentNode | None:
        """The ParentNode at node ``x`` (odd), or None if blank."""
        self._check_node_index(x)
        if is_leaf(x):
            raise TreeError(f"node {x} is a leaf")
        v = self._nodes[x]
        assert v is None or isinstance(v, ParentNode)
        return v

    def leaf_nodes(self) -> Iterator[tuple[int, LeafNode]]:
        """``(leaf_index, LeafNode)`` for every non-blank leaf, left to right."""
        nodes = self._nodes
        for x in range(0, len(nodes), 2):
            v = nodes[x]
            if v is not None:
                assert isinstance(v, LeafNode)
                yield x // 2, v

    def member_count(self) -> int:
        return sum(1 for v in self._nodes[::2] if v is not None)

    def find_leaf(self, match: LeafNode | Callable[[LeafNode], bool]) -> int | None:
        """Leaf index of the first leaf equal to ``match`` (or satisfying it), else None."""
        pred: Callable[[LeafNode], bool] = (
            (lambda leaf: leaf == match) if isinstance(match, LeafNode) else match
        )
        for i, leaf in self.leaf_nodes():
            if pred(leaf):
                return i
        return None

    def find_encryption_key(self, key: bytes) -> int | None:
        """Node index of a non-blank node whose encryption key is ``key``, else None."""
        for x, v in enumerate(self._nodes):
            if v is not None and v.encryption_key == key:
                return x
        return None

    def find_signature_key(self, key: bytes) -> int | None:
        """Leaf index of the leaf whose signature key is ``key``, else None."""
        return self.find_leaf(lambda leaf: leaf.signature_key == key)

    def encryption_keys(self) -> set[bytes]:
        """Every encryption key held by a non-blank node."""
        return {v.encryption_key for v in self._nodes if v is not None}

    def _last_nonblank_leaf(self) -> int | None:
        for x in range(len(self._nodes) - 1, -1, -2):
            if self._nodes[x] is not None:
                return x // 2
        return None

    # -- mutation with cache invalidation ----------------------------------------

    def _set(self, x: int, value: NodeValue) -> None:
        self._nodes[x] = value
        self._hashes[x] = None
        self._res[x] = None
        r = len(self._nodes) // 2
        while x != r:
            k = level(x)
            x = (x | (1 << k)) ^ (((x >> (k + 1)) & 1) << (k + 1))
            self._hashes[x] = None
            self._res[x] = None

    def set_leaf(self, i: int, leaf: LeafNode | None) -> None:
        """Set leaf ``i`` (no other node changes)."""
        self._check_leaf_index(i)
        self._set(2 * i, leaf)

    def blank_path(self, i: int) -> None:
        """Blank every node on the direct path of leaf ``i`` (the leaf is kept)."""
        self._check_leaf_index(i)
        for p in direct_path(2 * i, self.n_leaves):
            if self._nodes[p] is not None:
                self._set(p, None)

    def _extend(self) -> None:
        """Double the leaf count: new blank root and blank right subtree (section 7.7)."""
        extra = len(self._nodes) + 1
        self._nodes.extend([None] * extra)
        self._hashes.extend([None] * extra)
        self._res.extend([None] * extra)

    def truncate(self) -> None:
        """Drop right subtrees without a non-blank leaf (RFC 9420 sections 7.7, 12.1.3)."""
        last = self._last_nonblank_leaf()
        n = 1
        while last is not None and n <= last:
            n *= 2
        if n < self.n_leaves:
            width = 2 * n - 1
            del self._nodes[width:]
            del self._hashes[width:]
            del self._res[width:]

    def free_leaf(self) -> int:
        """Index of the leftmost blank leaf; ``n_leaves`` if every leaf is taken."""
        nodes = self._nodes
        for x in range(0, len(nodes), 2):
            if nodes[x] is None:
                return x // 2
        return self.n_leaves

    def ensure_free_leaf(self) -> int:
        """Leftmost blank leaf, extending the tree first if it is full (sections 7.7, 12.4.2)."""
        i = self.free_leaf()
        if i == self.n_leaves:
            self._extend()
        return i

    def add_leaf(self, leaf: LeafNode) -> int:
        """Apply an Add (RFC 9420 section 12.1.1); returns the new member's leaf index.

        The leaf goes into the leftmost blank leaf (extending the tree when full)
        and is recorded as unmerged at every non-blank node of its direct path.
        """
        i = self.ensure_free_leaf()
        for p in direct_path(2 * i, self.n_leaves):
            v = self._nodes[p]
            if v is not None:
                assert isinstance(v, ParentNode)
                unmerged = tuple(sorted((*v.unmerged_leaves, i)))
                self._set(p, ParentNode(v.encryption_key, v.parent_hash, unmerged))
        self._set(2 * i, leaf)
        return i

    def update_leaf(self, i: int, leaf: LeafNode) -> None:
        """Apply an Update from leaf ``i`` (RFC 9420 section 12.1.2)."""
        if self.leaf(i) is None:
            raise TreeError(f"cannot update blank leaf {i}")
        self._set(2 * i, leaf)
        self.blank_path(i)

    def remove_leaf(self, i: int) -> None:
        """Apply a Remove of leaf ``i`` and truncate (RFC 9420 section 12.1.3)."""
        if self.leaf(i) is None:
            raise TreeError(f"cannot remove blank leaf {i}")
        self._set(2 * i, None)
        self.blank_path(i)
        self.truncate()

    # -- resolutions and filtered direct paths (RFC 9420 section 4.1) -----------------

    def resolution(self, x: int, exclude_leaves: Sequence[int] | None = None) -> tuple[int, ...]:
        """Resolution of node ``x`` as node indices (RFC 9420 section 4.1.1).

        Leaves in ``exclude_leaves`` (e.g. members added by the current commit,
        section 12.4.2) are left out.
        """
        self._check_node_index(x)
        res = self._resolution(x)
        if exclude_leaves:
            skip = {2 * i for i in exclude_leaves}
            res = tuple(r for r in res if r not in skip)
        return res

    def _resolution(self, x: int) -> tuple[int, ...]:
        cached = self._res[x]
        if cached is not None:
            return cached
        v = self._nodes[x]
        res: tuple[int, ...]
        if v is None:
            res = () if is_leaf(x) else self._resolution(left(x)) + self._resolution(right(x))
        elif isinstance(v, ParentNode):
            res = (x, *(2 * i for i in v.unmerged_leaves))
        else:
            res = (x,)
        self._res[x] = res
        return res

    def filtered_direct_path_with_copath(self, i: int) -> list[tuple[int, int]]:
        """``(parent, copath child)`` pairs of leaf ``i``'s filtered direct path (4.1.2)."""
        self._check_leaf_index(i)
        return [
            (p, c) for p, c in direct_path_with_copath(2 * i, self.n_leaves) if self._resolution(c)
        ]

    def filtered_direct_path(self, i: int) -> list[int]:
        """Filtered direct path of leaf ``i`` (RFC 9420 section 4.1.2)."""
        return [p for p, _ in self.filtered_direct_path_with_copath(i)]

    # -- tree hashes (RFC 9420 section 7.8) -------------------------------------------

    def tree_hash(self, x: int | None = None) -> bytes:
        """Tree hash of node ``x`` (the root by default), cached per node."""
        if x is None:
            x = self.root
        else:
            self._check_node_index(x)
        return self._tree_hash(x)

    def _tree_hash(self, x: int) -> bytes:
        cached = self._hashes[x]
        if cached is not None:
            return cached
        v = self._nodes[x]
        if is_leaf(x):
            assert v is None or isinstance(v, LeafNode)
            h = self.suite.hash(leaf_tree_hash_input(x // 2, v))
        else:
            assert v is None or isinstance(v, ParentNode)
            h = self.suite.hash(
                parent_tree_hash_input(v, self._tree_hash(left(x)), self._tree_hash(right(x)))
            )
        self._hashes[x] = h
        return h

    def tree_hashes(self) -> list[bytes]:
        """Tree hash of every node, in array order."""
        self._tree_hash(self.root)
        return [self._tree_hash(x) for x in range(len(self._nodes))]

    def _tree_hash_without(self, x: int, removed: tuple[int, ...], gone: frozenset[int]) -> bytes:
        """Tree hash of ``x`` with the leaves ``removed`` (sorted; ``gone`` as a set)
        blanked and dropped from every ``unmerged_leaves`` list (RFC 9420 section 7.9)."""
        span = subtree_leaves(x)
        k = bisect_left(removed, span.start)
        if k == len(removed) or removed[k] >= span.stop:
            return self._tree_hash(x)
        if is_leaf(x):
            return self.suite.hash(leaf_tree_hash_input(x // 2, None))
        v = self._nodes[x]
        assert v is None or isinstance(v, ParentNode)
        if v is not None:
            kept = tuple(i for i in v.unmerged_leaves if i not in gone)
            v = ParentNode(v.encryption_key, v.parent_hash, kept)
        return self.suite.hash(
            parent_tree_hash_input(
                v,
                self._tree_hash_without(left(x), removed, gone),
                self._tree_hash_without(right(x), removed, gone),
            )
        )

    # -- parent hashes (RFC 9420 section 7.9) -------------------------------------------

    def parent_hash(self, p: int, s: int) -> bytes:
        """Parent hash of non-blank parent ``p`` with copath child ``s`` (section 7.9)."""
        v = self.parent_node(p)
        if v is None:
            raise TreeError(f"parent hash of blank node {p}")
        if s not in (left(p), right(p)):
            raise TreeError(f"node {s} is not a child of node {p}")
        removed = tuple(sorted(v.unmerged_leaves))
        sibling_hash = self._tree_hash_without(s, removed, frozenset(removed))
        return self.suite.hash(
            ParentHashInput(v.encryption_key, v.parent_hash, sibling_hash).to_bytes()
        )

    def merge_path(self, i: int, public_keys: Sequence[bytes]) -> bytes:
        """Merge an UpdatePath's public keys for leaf ``i`` (RFC 9420 sections 7.5, 12.4.2).

        Blanks the direct path of leaf ``i``, sets each filtered-direct-path node
        to a ParentNode with the next key, no unmerged leaves and its parent hash
        (computed root-first), and returns the parent hash that leaf ``i``'s new
        LeafNode must carry. The leaf itself is not changed.
        """
        fdp = self.filtered_direct_path_with_copath(i)
        if len(public_keys) != len(fdp):
            raise TreeError(
                f"path has {len(public_keys)} nodes, the filtered direct path of leaf {i}"
                f" has {len(fdp)}"
            )
        self.blank_path(i)
        ph = b""
        for (p, s), key in zip(reversed(fdp), reversed(public_keys), strict=True):
            self._set(p, ParentNode(key, ph, ()))
            ph = self.suite.hash(ParentHashInput(key, ph, self._tree_hash(s)).to_bytes())
        return ph

    def _stored_parent_hash(self, x: int) -> bytes | None:
        v = self._nodes[x]
        if isinstance(v, ParentNode):
            return v.parent_hash
        if isinstance(v, LeafNode) and v.leaf_node_source == LeafNodeSource.commit:
            return v.parent_hash
        return None

    def verify_parent_hashes(self) -> None:
        """Every non-blank parent must be parent-hash valid (RFC 9420 section 7.9.2).

        Top-down form: each non-blank parent P has exactly one descendant D whose
        parent hash is valid with respect to P (D in the resolution of P's child C,
        the rest of that resolution being exactly P's unmerged leaves under C, and
        D's ``parent_hash`` equal to P's parent hash with copath child S). As D is
        itself a leaf or a parent-hash-valid parent, this chains every parent back
        to a leaf. TreeError otherwise.
        """
        for p in range(1, len(self._nodes), 2):
            v = self._nodes[p]
            if v is None:
                continue
            assert isinstance(v, ParentNode)
            valid = 0
            for c, s in ((left(p), right(p)), (right(p), left(p))):
                span = subtree_leaves(c)
                unmerged = {2 * i for i in v.unmerged_leaves if i in span}
                res = self._resolution(c)
                others = [r for r in res if r not in unmerged]
                if len(others) != 1 or len(res) != len(unmerged) + 1:
                    continue
                if set(res) - {others[0]} != unmerged:
                    continue
                stored = self._stored_parent_hash(others[0])
                if stored is not None and stored == self.parent_hash(p, s):
                    valid += 1
            if valid != 1:
                raise TreeError(f"parent node {p} is not parent-hash valid")

    # -- integrity on join (RFC 9420 section 12.4.3.1) --------------------------------

    def verify_unmerged_leaves(self) -> None:
        """``unmerged_leaves`` consistency (RFC 9420 sections 7.1, 12.4.3.1); TreeError."""
        n = self.n_leaves
        for p in range(1, len(self._nodes), 2):
            v = self._nodes[p]
            if v is None:
                continue
            assert isinstance(v, ParentNode)
            span = subtree_leaves(p)
            if any(a >= b for a, b in pairwise(v.unmerged_leaves)):
                raise TreeError(f"unmerged_leaves of node {p} are not strictly increasing")
            for i in v.unmerged_leaves:
                if i not in span:
                    raise TreeError(f"unmerged leaf {i} of node {p} is not its descendant")
                if self._nodes[2 * i] is None:
                    raise TreeError(f"unmerged leaf {i} of node {p} is blank")
                for q in direct_path(2 * i, n):
                    if q == p:
                        break
                    w = self._nodes[q]
                    if w is not None:
                        assert isinstance(w, ParentNode)
                        if i not in w.unmerged_leaves:
                            raise TreeError(f"leaf {i} is unmerged at node {p} but not at node {q}")

    def check_supports_extensions(self, extensions: Sequence[Extension]) -> None:
        """LeafNodeError unless every member supports the GroupContext ``extensions``
        (including a ``required_capabilities`` extension; RFC 9420 sections 11.1, 12.1.7)."""
        for i, leaf in self.leaf_nodes():
            try:
                check_capabilities_support(leaf.capabilities, extensions)
            except LeafNodeError as exc:
                raise LeafNodeError(f"leaf {i}: {exc}") from None

    def verify_key_uniqueness(self) -> None:
        """Encryption keys unique among all nodes, signature keys among leaves (7.3)."""
        enc: dict[bytes, int] = {}
        for x, v in enumerate(self._nodes):
            if v is None:
                continue
            other = enc.setdefault(v.encryption_key, x)
            if other != x:
                raise TreeError(f"nodes {other} and {x} share an encryption key")
        sig: dict[bytes, int] = {}
        for i, leaf in self.leaf_nodes():
            other = sig.setdefault(leaf.signature_key, i)
            if other != i:
                raise TreeError(f"leaves {other} and {i} share a signature key")

    def verify_integrity(
        self,
        group_id: bytes,
        suite: CipherSuite | None = None,
        *,
        group_context_extensions: Sequence[Extension] = (),
        expected_tree_hash: bytes | None = None,
        now: int | None = None,
        max_lifetime: int | None = None,
        credential_validator: CredentialValidator | None = None,
    ) -> None:
        """Verify a tree received on joining (RFC 9420 section 12.4.3.1).

        Checks the tree hash (if ``expected_tree_hash`` is given), unmerged-leaf
        consistency, key uniqueness, every leaf per section 7.3 (signature with
        ``group_id`` and the leaf index for update/commit leaves, capabilities vs.
        ``group_context_extensions``, credential types in use, lifetime if ``now``
        is given, the credential hook) and the parent hashes of all parent nodes.
        Raises TreeError or LeafNodeError. ``suite``, if given, must be the tree's.
        """
        if suite is not None and suite.id != self.suite.id:
            raise TreeError(f"tree is for cipher suite {self.suite.id}, not {suite.id}")
        if self._last_nonblank_leaf() is None:
            raise TreeError("ratchet tree has no non-blank leaf")
        if expected_tree_hash is not None and self.tree_hash() != expected_tree_hash:
            raise TreeError("tree hash does not match the group context")
        self.verify_unmerged_leaves()
        self.verify_key_uniqueness()
        in_use = {leaf.credential.credential_type for _, leaf in self.leaf_nodes()}
        for i, leaf in self.leaf_nodes():
            validate_leaf_node(
                self.suite,
                leaf,
                expected_source=None,
                group_id=group_id,
                leaf_index=i,
                group_context_extensions=group_context_extensions,
                now=now,
                max_lifetime=max_lifetime,
                credential_validator=credential_validator,
            )
            missing = in_use.difference(leaf.capabilities.credentials)
            if missing:
                raise LeafNodeError(
                    f"leaf {i} does not support credential types in use: {sorted(missing)}"
                )
        self.verify_parent_hashes()
