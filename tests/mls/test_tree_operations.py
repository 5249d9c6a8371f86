"""Ratchet tree operations (RFC 9420 sections 7.7, 7.8, 12.1) against tree-operations.json."""

from __future__ import annotations

from typing import Any

import pytest
from mls_vectors import claimed_suite, h, load_vectors, suite_params

from clave.mls.ratchet_tree import RatchetTree
from clave.mls.structs import Add, Remove, Update, proposal_from_bytes

VECTORS = load_vectors("tree-operations")


def apply_proposal(tree: RatchetTree, proposal: object, sender: int) -> None:
    """Apply one Add, Update or Remove proposal as section 12.1 describes."""
    if isinstance(proposal, Add):
        tree.add_leaf(proposal.key_package.leaf_node)
    elif isinstance(proposal, Update):
        tree.update_leaf(sender, proposal.leaf_node)
    elif isinstance(proposal, Remove):
        tree.remove_leaf(proposal.removed)
    else:  # pragma: no cover - the vectors only hold these three
        raise AssertionError(f"unexpected proposal {proposal!r}")


@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_tree_operations_vector(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    tree = RatchetTree.from_bytes(suite, h(v["tree_before"]))
    assert tree.tree_hash() == h(v["tree_hash_before"])
    assert tree.to_bytes() == h(v["tree_before"])

    staged = tree.copy()
    apply_proposal(staged, proposal_from_bytes(h(v["proposal"])), v["proposal_sender"])
    assert staged.to_bytes() == h(v["tree_after"])
    assert staged.tree_hash() == h(v["tree_hash_after"])
    # The cached hash equals a from-scratch computation, and the original is untouched.
    assert RatchetTree.from_bytes(suite, h(v["tree_after"])).tree_hash() == staged.tree_hash()
    assert tree.to_bytes() == h(v["tree_before"])
    assert tree.tree_hash() == h(v["tree_hash_before"])


def test_vectors_cover_all_proposal_types() -> None:
    kinds = {type(proposal_from_bytes(h(v["proposal"]))) for v in VECTORS}
    assert kinds == {Add, Update, Remove}
