"""Tree math (RFC 9420 section 4, Appendix C) against tree-math.json and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mls_vectors import load_vectors

from clave.mls import tree_math as tm
from clave.mls.errors import TreeError

VECTORS = load_vectors("tree-math")


def _opt(f: Any, *args: int) -> int | None:
    try:
        return int(f(*args))
    except TreeError:
        return None


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"n{v['n_leaves']}")
def test_tree_math_vector(v: dict[str, Any]) -> None:
    n = v["n_leaves"]
    assert tm.node_width(n) == v["n_nodes"]
    assert tm.n_leaves_for_width(v["n_nodes"]) == n
    assert tm.root(n) == v["root"]
    for i in range(v["n_nodes"]):
        assert _opt(tm.left, i) == v["left"][i], ("left", i)
        assert _opt(tm.right, i) == v["right"][i], ("right", i)
        assert _opt(tm.parent, i, n) == v["parent"][i], ("parent", i)
        assert _opt(tm.sibling, i, n) == v["sibling"][i], ("sibling", i)


def test_rfc_example_paths() -> None:
    """The five-member example of RFC 9420 section 4.1.2 (8 leaf slots)."""
    n = 8
    # Non-blank nodes: leaves A,B,E,F,G and parents T,W,X,Y.
    occupied = {0, 2, 8, 10, 12, 1, 7, 9, 11}

    def empty(c: int) -> bool:
        sub = tm.subtree_leaves(c)
        first, last = 2 * sub.start, 2 * (sub.stop - 1)
        return not any(first <= x <= last for x in occupied)

    t, u, w, x, y, z = 1, 3, 7, 9, 11, 13
    a, b, e, f, g, hh, v_ = 0, 2, 8, 10, 12, 14, 5
    table = {
        a: ([t, u, w], [b, v_, y], [t, w]),
        b: ([t, u, w], [a, v_, y], [t, w]),
        e: ([x, y, w], [f, z, u], [x, y, w]),
        f: ([x, y, w], [e, z, u], [x, y, w]),
        g: ([z, y, w], [hh, x, u], [y, w]),
    }
    for leaf, (dp, cp, fdp) in table.items():
        assert tm.direct_path(leaf, n) == dp
        assert tm.copath(leaf, n) == cp
        assert tm.filtered_direct_path(leaf, n, empty) == fdp


def test_root_has_empty_paths_and_no_parent() -> None:
    for n in (1, 2, 16):
        r = tm.root(n)
        assert tm.direct_path(r, n) == []
        assert tm.copath(r, n) == []
        with pytest.raises(TreeError):
            tm.parent(r, n)


@pytest.mark.parametrize("n", [0, 3, 5, 6, 12, -4])
def test_rejects_non_power_of_two_sizes(n: int) -> None:
    with pytest.raises(TreeError):
        tm.root(n)
    with pytest.raises(TreeError):
        tm.direct_path(0, n)


def test_rejects_out_of_range_nodes_and_leaves() -> None:
    with pytest.raises(TreeError):
        tm.parent(15, 8)
    with pytest.raises(TreeError):
        tm.direct_path(-1, 8)
    with pytest.raises(TreeError):
        tm.left(4)
    with pytest.raises(TreeError):
        tm.node_to_leaf(3)
    with pytest.raises(TreeError):
        tm.leaf_to_node(-1)
    with pytest.raises(TreeError):
        tm.n_leaves_for_width(5)


def test_log2_and_level() -> None:
    assert [tm.log2(x) for x in range(9)] == [0, 0, 1, 1, 2, 2, 2, 2, 3]
    assert [tm.level(x) for x in range(16)] == [0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0, 4]


sizes = st.integers(min_value=0, max_value=12).map(lambda k: 1 << k)


@given(st.data(), sizes)
def test_path_properties(data: st.DataObject, n: int) -> None:
    leaf = data.draw(st.integers(0, n - 1))
    x = tm.leaf_to_node(leaf)
    assert tm.node_to_leaf(x) == leaf and tm.is_leaf(x)
    dp = tm.direct_path(x, n)
    assert len(dp) == tm.log2(n)
    assert (dp[-1] if dp else x) == tm.root(n)
    assert [tm.level(p) for p in dp] == list(range(1, len(dp) + 1))
    for p, c in tm.direct_path_with_copath(x, n):
        assert tm.parent(c, n) == p
        assert leaf not in tm.subtree_leaves(c)
        assert leaf in tm.subtree_leaves(p)
    # copath subtrees plus the leaf partition all leaves
    covered = sorted([leaf] + [i for c in tm.copath(x, n) for i in tm.subtree_leaves(c)])
    assert covered == list(range(n))


@given(st.data(), sizes)
def test_common_ancestor_matches_semantic_definition(data: st.DataObject, n: int) -> None:
    width = tm.node_width(n)
    x = data.draw(st.integers(0, width - 1))
    y = data.draw(st.integers(0, width - 1))
    ax = {x, *tm.direct_path(x, n)}
    ay = {y, *tm.direct_path(y, n)}
    expected = min(ax & ay, key=tm.level)
    assert tm.common_ancestor(x, y) == expected
