"""Secret tree and sender ratchets (RFC 9420 sections 6.3.2, 9) against secret-tree.json."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mls_vectors import claimed_suite, h, load_vectors, suite_params

from clave.mls.ciphersuite import SUPPORTED_CIPHER_SUITES, get_suite
from clave.mls.errors import GenerationError, TreeError, ValidationError
from clave.mls.secret_tree import (
    RatchetType,
    SecretTree,
    apply_reuse_guard,
    ratchet_type_for_content_type,
    sender_data_key_nonce,
)

HS, APP = RatchetType.HANDSHAKE, RatchetType.APPLICATION
SUITE = get_suite(1)
SECRET = bytes(range(32))


@pytest.mark.parametrize("v", suite_params(load_vectors("secret-tree")))
def test_secret_tree_vector(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    sd = v["sender_data"]
    key, nonce = sender_data_key_nonce(suite, h(sd["sender_data_secret"]), h(sd["ciphertext"]))
    assert (key, nonce) == (h(sd["key"]), h(sd["nonce"]))

    tree = SecretTree(suite, h(v["encryption_secret"]), len(v["leaves"]))
    checked = 0
    for leaf, gens in enumerate(v["leaves"]):
        for g in gens:
            n = g["generation"]
            assert tree.take_key(leaf, HS, n) == (h(g["handshake_key"]), h(g["handshake_nonce"]))
            assert tree.take_key(leaf, APP, n) == (
                h(g["application_key"]),
                h(g["application_nonce"]),
            )
            checked += 1
    assert checked == sum(len(gens) for gens in v["leaves"]) > 0
    # Everything is now derived: no node secret may remain (deletion schedule).
    assert tree.to_dict()["nodes"] == []


def test_sender_data_sample_shorter_than_nh() -> None:
    k1, n1 = sender_data_key_nonce(SUITE, SECRET, b"short")
    assert (k1, n1) == (
        SUITE.expand_with_label(SECRET, "key", b"short", 16),
        SUITE.expand_with_label(SECRET, "nonce", b"short", 12),
    )
    long_ct = bytes(range(40))
    assert sender_data_key_nonce(SUITE, SECRET, long_ct) == sender_data_key_nonce(
        SUITE, SECRET, long_ct[:32]
    )


def test_sender_and_receiver_agree() -> None:
    sender = SecretTree(SUITE, SECRET, 4)
    receiver = SecretTree(SUITE, SECRET, 4)
    for expected in range(5):
        g, key, nonce = sender.next_send_key(2, APP)
        assert g == expected
        assert receiver.take_key(2, APP, g) == (key, nonce)
    assert sender.next_generation(2, APP) == 5
    assert sender.next_generation(2, HS) == 0


def test_consumed_generation_cannot_be_reused() -> None:
    t = SecretTree(SUITE, SECRET, 2)
    t.take_key(1, APP, 0)
    with pytest.raises(GenerationError):
        t.take_key(1, APP, 0)
    with pytest.raises(GenerationError):
        t.consume_key(1, APP, 0)
    _, _, _ = t.next_send_key(0, HS)
    with pytest.raises(GenerationError):
        t.peek_key(0, HS, 0)


def test_peek_does_not_consume() -> None:
    t = SecretTree(SUITE, SECRET, 2)
    a = t.peek_key(0, APP, 3)
    assert t.peek_key(0, APP, 3) == a
    t.consume_key(0, APP, 3)
    with pytest.raises(GenerationError):
        t.peek_key(0, APP, 3)
    # skipped generations stay available, once each
    for g in (2, 0, 1):
        t.take_key(0, APP, g)
        with pytest.raises(GenerationError):
            t.take_key(0, APP, g)


def test_out_of_order_matches_in_order() -> None:
    in_order = SecretTree(SUITE, SECRET, 8)
    expected = [in_order.take_key(5, HS, g) for g in range(10)]
    t = SecretTree(SUITE, SECRET, 8)
    for g in (9, 3, 0, 7, 1, 2, 8, 4, 6, 5):
        assert t.take_key(5, HS, g) == expected[g]


def test_forward_distance_bound() -> None:
    t = SecretTree(SUITE, SECRET, 2, max_forward_distance=10)
    with pytest.raises(GenerationError):
        t.peek_key(0, APP, 11)
    t.take_key(0, APP, 10)  # exactly at the bound
    with pytest.raises(GenerationError):
        t.peek_key(0, APP, 22)
    t.take_key(0, APP, 21)


def test_retained_keys_bounded_oldest_evicted() -> None:
    t = SecretTree(SUITE, SECRET, 2, max_retained_keys=4)
    reference = SecretTree(SUITE, SECRET, 2)
    expected = [reference.take_key(1, APP, g) for g in range(21)]
    assert t.take_key(1, APP, 20) == expected[20]
    for g in range(17):
        with pytest.raises(GenerationError):
            t.peek_key(1, APP, g)
    for g in (17, 18, 19):
        assert t.take_key(1, APP, g) == expected[g]
    state = t.to_dict()
    assert all(len(r["retained"]) <= 4 for r in state["ratchets"])


def test_generation_limits() -> None:
    t = SecretTree(SUITE, SECRET, 2, max_forward_distance=1 << 40)
    for bad in (-1, 1 << 32):
        with pytest.raises(GenerationError):
            t.peek_key(0, APP, bad)


def test_leaf_bounds_and_tree_size() -> None:
    t = SecretTree(SUITE, SECRET, 4)
    for bad in (-1, 4, 100):
        with pytest.raises(TreeError):
            t.peek_key(bad, APP, 0)
    with pytest.raises(TreeError):
        SecretTree(SUITE, SECRET, 3)


def test_deletion_schedule_of_node_secrets() -> None:
    t = SecretTree(SUITE, SECRET, 8)
    t.peek_key(0, APP, 0)
    # Root 7 and path nodes 3, 1 and leaf 0 are consumed; their siblings remain.
    assert [n for n, _ in t.to_dict()["nodes"]] == [2, 5, 11]
    t.peek_key(3, HS, 0)  # leaf 3 = node 6, below node 5
    assert [n for n, _ in t.to_dict()["nodes"]] == [2, 4, 11]


def test_state_round_trip_continues_identically() -> None:
    t = SecretTree(SUITE, SECRET, 16, max_forward_distance=50, max_retained_keys=8)
    t.take_key(3, APP, 5)
    t.peek_key(3, APP, 7)
    t.next_send_key(9, HS)
    state = json.loads(json.dumps(t.to_dict()))
    restored = SecretTree.from_dict(state)
    assert restored.to_dict() == t.to_dict()
    assert (restored.max_forward_distance, restored.max_retained_keys) == (50, 8)
    for leaf, kind, g in [(3, APP, 2), (3, APP, 7), (3, APP, 12), (9, HS, 1), (15, APP, 0)]:
        assert restored.take_key(leaf, kind, g) == t.take_key(leaf, kind, g)
    with pytest.raises(GenerationError):
        restored.take_key(3, APP, 5)


def _corruptions() -> list[Any]:
    t = SecretTree(SUITE, SECRET, 4)
    t.take_key(1, APP, 3)
    base = t.to_dict()

    def mutate(f: Any) -> dict[str, Any]:
        s = json.loads(json.dumps(base))
        f(s)
        return s

    def drop_nodes(s: dict[str, Any]) -> None:
        s["nodes"] = []

    def extra_root(s: dict[str, Any]) -> None:
        s["nodes"].append([3, "00" * 32])

    def one_ratchet(s: dict[str, Any]) -> None:
        s["ratchets"].pop()

    def short_secret(s: dict[str, Any]) -> None:
        s["ratchets"][0]["secret"] = "00"

    def future_retained(s: dict[str, Any]) -> None:
        s["ratchets"][1]["retained"].append([99, "00" * 16, "00" * 12])

    def bad_suite(s: dict[str, Any]) -> None:
        s["cipher_suite"] = 9

    def bad_size(s: dict[str, Any]) -> None:
        s["n_leaves"] = 3

    def bool_int(s: dict[str, Any]) -> None:
        s["n_leaves"] = True

    def missing(s: dict[str, Any]) -> None:
        del s["ratchets"]

    def bad_hex(s: dict[str, Any]) -> None:
        s["nodes"][0][1] = "zz"

    def version(s: dict[str, Any]) -> None:
        s["version"] = 2

    fs = [
        drop_nodes,
        extra_root,
        one_ratchet,
        short_secret,
        future_retained,
        bad_suite,
        bad_size,
        bool_int,
        missing,
        bad_hex,
        version,
    ]
    return [pytest.param(mutate(f), id=f.__name__) for f in fs]


@pytest.mark.parametrize("state", _corruptions())
def test_from_dict_rejects_malformed_state(state: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SecretTree.from_dict(state)


@settings(max_examples=50, deadline=None)
@given(st.permutations(list(range(12))), st.sampled_from(SUPPORTED_CIPHER_SUITES))
def test_any_delivery_order_within_window(order: list[int], suite_id: int) -> None:
    suite = get_suite(suite_id)
    ref = SecretTree(suite, SECRET, 2)
    expected = [ref.take_key(1, APP, g) for g in range(12)]
    t = SecretTree(suite, SECRET, 2, max_retained_keys=12)
    for g in order:
        assert t.take_key(1, APP, g) == expected[g]
    assert all(r["retained"] == [] for r in t.to_dict()["ratchets"])


def test_helpers() -> None:
    nonce = bytes(range(12))
    guarded = apply_reuse_guard(nonce, b"\xff\x00\xff\x00")
    assert guarded == bytes([0xFF, 1, 0xFD, 3]) + nonce[4:]
    assert apply_reuse_guard(guarded, b"\xff\x00\xff\x00") == nonce
    with pytest.raises(ValidationError):
        apply_reuse_guard(nonce, b"abc")
    assert ratchet_type_for_content_type(1) is APP
    assert ratchet_type_for_content_type(2) is HS
    assert ratchet_type_for_content_type(3) is HS
    with pytest.raises(ValidationError):
        ratchet_type_for_content_type(0)
