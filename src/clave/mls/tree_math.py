"""Array-based ratchet-tree index arithmetic (RFC 9420 sections 4.1-4.2, 7.1, Appendix C).

Every MLS tree is perfect: it has ``2**d`` leaves (RFC 9420 section 4.1).
Leaf ``i`` sits at node ``2*i``; parent nodes have odd indices. Functions that
need the tree size take ``n_leaves`` (the number of leaf slots, a power of two)
and raise :class:`~clave.mls.errors.TreeError` for an invalid size or an index
outside the tree. Filtering a direct path needs the tree contents, so only the
primitives and a predicate-driven helper live here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from .errors import TreeError

LeafIndex: TypeAlias = int
"""Index of a leaf among the leaves (0-based, as in ``LeafNodeIndex`` on the wire)."""
NodeIndex: TypeAlias = int
"""Index of a node in the array representation."""

__all__ = [
    "LeafIndex",
    "NodeIndex",
    "common_ancestor",
    "copath",
    "direct_path",
    "direct_path_with_copath",
    "filtered_direct_path",
    "is_leaf",
    "leaf_to_node",
    "left",
    "level",
    "log2",
    "n_leaves_for_width",
    "node_to_leaf",
    "node_width",
    "parent",
    "right",
    "root",
    "sibling",
    "subtree_leaves",
]


def log2(x: int) -> int:
    """Exponent of the largest power of 2 not above ``x`` (``log2(0) == 0``)."""
    return x.bit_length() - 1 if x > 0 else 0


def level(x: NodeIndex) -> int:
    """Level of node ``x``: leaves are 0, their parents 1, and so on."""
    if x & 1 == 0:
        return 0
    # number of trailing one bits
    return ((x ^ (x + 1)).bit_length()) - 1


def is_leaf(x: NodeIndex) -> bool:
    """True iff node ``x`` is a leaf (even index)."""
    return x & 1 == 0


def leaf_to_node(leaf: LeafIndex) -> NodeIndex:
    """Node index of leaf ``leaf``."""
    if leaf < 0:
        raise TreeError(f"negative leaf index {leaf}")
    return 2 * leaf


def node_to_leaf(node: NodeIndex) -> LeafIndex:
    """Leaf index of node ``node``; TreeError if it is a parent node."""
    if node < 0 or node & 1:
        raise TreeError(f"node {node} is not a leaf")
    return node >> 1


def _check_size(n_leaves: int) -> None:
    if n_leaves <= 0 or n_leaves & (n_leaves - 1):
        raise TreeError(f"tree size {n_leaves} is not a positive power of two")


def _check_node(x: NodeIndex, n_leaves: int) -> None:
    _check_size(n_leaves)
    if not 0 <= x < 2 * n_leaves - 1:
        raise TreeError(f"node {x} outside a tree with {n_leaves} leaves")


def node_width(n_leaves: int) -> int:
    """Number of nodes in a tree with ``n_leaves`` leaves (``2n - 1``; 0 for 0)."""
    return 0 if n_leaves == 0 else 2 * (n_leaves - 1) + 1


def n_leaves_for_width(width: int) -> int:
    """Inverse of :func:`node_width` for perfect trees; TreeError if no such tree."""
    if width <= 0 or width & 1 == 0:
        raise TreeError(f"{width} nodes cannot form a perfect tree")
    n = (width + 1) // 2
    _check_size(n)
    return n


def root(n_leaves: int) -> NodeIndex:
    """Root node index of a tree with ``n_leaves`` leaves."""
    _check_size(n_leaves)
    return n_leaves - 1


def left(x: NodeIndex) -> NodeIndex:
    """Left child of parent node ``x``."""
    k = level(x)
    if k == 0:
        raise TreeError(f"leaf node {x} has no children")
    return x ^ (1 << (k - 1))


def right(x: NodeIndex) -> NodeIndex:
    """Right child of parent node ``x``."""
    k = level(x)
    if k == 0:
        raise TreeError(f"leaf node {x} has no children")
    return x ^ (3 << (k - 1))


def _parent(x: NodeIndex) -> NodeIndex:
    k = level(x)
    b = (x >> (k + 1)) & 1
    return (x | (1 << k)) ^ (b << (k + 1))


def parent(x: NodeIndex, n_leaves: int) -> NodeIndex:
    """Parent of node ``x``; TreeError for the root."""
    _check_node(x, n_leaves)
    if x == n_leaves - 1:
        raise TreeError("the root node has no parent")
    return _parent(x)


def sibling(x: NodeIndex, n_leaves: int) -> NodeIndex:
    """The other child of ``x``'s parent."""
    p = parent(x, n_leaves)
    return right(p) if x < p else left(p)


def direct_path(x: NodeIndex, n_leaves: int) -> list[NodeIndex]:
    """Direct path of ``x``, from its parent up to the root (empty for the root)."""
    _check_node(x, n_leaves)
    r = n_leaves - 1
    out: list[NodeIndex] = []
    while x != r:
        x = _parent(x)
        out.append(x)
    return out


def copath(x: NodeIndex, n_leaves: int) -> list[NodeIndex]:
    """Copath of ``x``: siblings of ``x`` and of its direct path minus the root."""
    return [c for _, c in direct_path_with_copath(x, n_leaves)]


def direct_path_with_copath(x: NodeIndex, n_leaves: int) -> list[tuple[NodeIndex, NodeIndex]]:
    """Pairs ``(p, c)``: each direct-path node ``p`` of ``x`` with its child ``c`` on the copath.

    This is the input to filtering (RFC 9420 section 4.1.2): ``p`` is dropped
    when the resolution of ``c`` is empty.
    """
    _check_node(x, n_leaves)
    r = n_leaves - 1
    out: list[tuple[NodeIndex, NodeIndex]] = []
    while x != r:
        p = _parent(x)
        out.append((p, right(p) if x < p else left(p)))
        x = p
    return out


def filtered_direct_path(
    x: NodeIndex, n_leaves: int, resolution_is_empty: Callable[[NodeIndex], bool]
) -> list[NodeIndex]:
    """Filtered direct path of ``x`` (RFC 9420 section 4.1.2).

    ``resolution_is_empty(c)`` must say whether copath node ``c`` has an empty
    resolution (counting unmerged leaves) in the caller's tree.
    """
    return [p for p, c in direct_path_with_copath(x, n_leaves) if not resolution_is_empty(c)]


def common_ancestor(x: NodeIndex, y: NodeIndex) -> NodeIndex:
    """Lowest node whose subtree contains both ``x`` and ``y`` (``x`` itself if equal)."""
    lx, ly = level(x) + 1, level(y) + 1
    if lx <= ly and x >> ly == y >> ly:
        return y
    if ly <= lx and x >> lx == y >> lx:
        return x
    k = 0
    while x != y:
        x >>= 1
        y >>= 1
        k += 1
    return (x << k) + (1 << (k - 1)) - 1


def subtree_leaves(x: NodeIndex) -> range:
    """Leaf indices covered by the subtree headed by node ``x``."""
    k = level(x)
    first_node = x - ((1 << k) - 1)
    return range(first_node >> 1, (first_node >> 1) + (1 << k))
