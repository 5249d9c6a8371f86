"""Passive-client scenarios (mls-implementations test vectors) through the public Group API.

Every entry of ``passive-client-welcome``, ``passive-client-handling-commit``
and ``passive-client-random`` is its own test, with the id
``<file>-suite<N>-<index>`` (e.g. ``welcome-suite1-3``,
``handling-commit-suite2-7``, ``random-suite1-0``); the conftest prints the
per-file, per-suite table at the end of the run. Entries of unclaimed cipher
suites are reported as visible skips.

For each entry (test-vectors.md, "Passive Client Scenarios"):

* the vector's ``init_priv``, ``encryption_priv`` and ``signature_priv`` must
  be the private halves of the KeyPackage's ``init_key``,
  ``leaf_node.encryption_key`` and ``leaf_node.signature_key``;
* :meth:`Group.join` with the Welcome, the out-of-band ratchet tree when the
  vector carries one, and the external PSKs; its ``epoch_authenticator`` must
  equal ``initial_epoch_authenticator``;
* per epoch, every proposal message and then the commit go through
  :meth:`Group.process`; the resulting ``epoch_authenticator`` must match.

Time: the vectors' KeyPackages carry arbitrary lifetimes (2023-03 to 2024-03
in the welcome file, the full uint64 range elsewhere) and the generator does
not say when it ran. Section 10.1 has a receiver validate the KeyPackage of an
Add "according to" section 7.3, where checking that the current time lies in
the lifetime of a *received* leaf is RECOMMENDED (not required: it may have
expired in transit). clave performs that recommended check with the injected
clock, and this test keeps it on: the clock is set to an instant inside the
lifetime of every KeyPackage the entry contains (the joiner's own and every
one carried in an Add, by value or by reference, in a PublicMessage). The
latest ``not_before`` of those lies in every window for all the vectors; if
an entry's windows had no common point the test would say so rather than
pick an arbitrary time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mls_vectors import CLAIMED, claimed_suite, h, load_vectors

from clave.mls.ciphersuite import CipherSuite
from clave.mls.errors import ProposalError
from clave.mls.events import CommitProcessed, ProposalReceived
from clave.mls.group import DEFAULT_CONFIG, Group, GroupConfig
from clave.mls.key_package import KeyPackageBundle
from clave.mls.structs import (
    Add,
    Commit,
    KeyPackage,
    Lifetime,
    MLSMessage,
    PreSharedKey,
    ProposalOrRefType,
    PSKType,
    PublicMessage,
)

FILES = {
    "welcome": "passive-client-welcome",
    "handling-commit": "passive-client-handling-commit",
    "random": "passive-client-random",
}

# Each file is loaded once, so every test of an entry gets the same dict (the
# conftest summary attributes tests to entries by identity).
_VECTORS = {short: load_vectors(name) for short, name in FILES.items()}


def _params(*only: str) -> list[Any]:
    """One param per entry of the files named (short names; default all three)."""
    out: list[Any] = []
    for short, vectors in _VECTORS.items():
        if only and short not in only:
            continue
        for i, v in enumerate(vectors):
            out.append(pytest.param(v, id=f"{short}-suite{v['cipher_suite']}-{i}"))
    return out


def _no_rng(n: int) -> bytes:
    # A passive client never needs randomness; drawing any would be a bug worth seeing.
    raise AssertionError(f"a passive client drew {n} random bytes")


def _key_package(data: str) -> KeyPackage:
    msg = MLSMessage.from_bytes(h(data))
    assert isinstance(msg.body, KeyPackage), "key_package must be an MLSMessage(KeyPackage)"
    return msg.body


def _lifetimes(vector: dict[str, Any], own: KeyPackage) -> list[Lifetime]:
    """Lifetimes of the joiner's KeyPackage and of every Add visible in PublicMessages."""
    out: list[Lifetime] = []
    if own.leaf_node.lifetime is not None:
        out.append(own.leaf_node.lifetime)
    for epoch in vector["epochs"]:
        for raw in (*epoch["proposals"], epoch["commit"]):
            body = MLSMessage.from_bytes(h(raw)).body
            if not isinstance(body, PublicMessage):
                continue  # a PrivateMessage's Adds are unreadable before processing
            content = body.content.content
            props = []
            if isinstance(content, Commit):
                props = [
                    p.proposal
                    for p in content.proposals
                    if p.type == ProposalOrRefType.proposal and p.proposal is not None
                ]
            elif not isinstance(content, bytes):
                props = [content]
            for p in props:
                if isinstance(p, Add) and p.key_package.leaf_node.lifetime is not None:
                    out.append(p.key_package.leaf_node.lifetime)
    return out


def _clock(vector: dict[str, Any], own: KeyPackage) -> int:
    lifetimes = _lifetimes(vector, own)
    now = max(lt.not_before for lt in lifetimes)
    bad = [lt for lt in lifetimes if not lt.not_before <= now <= lt.not_after]
    assert not bad, f"no single instant lies in every KeyPackage lifetime: {bad}"
    return now


def _check_private_keys(suite: CipherSuite, vector: dict[str, Any], kp: KeyPackage) -> None:
    assert suite.hpke_public_key(h(vector["init_priv"])) == kp.init_key, "init_priv"
    assert suite.hpke_public_key(h(vector["encryption_priv"])) == kp.leaf_node.encryption_key, (
        "encryption_priv"
    )
    assert suite.signature_public_key(h(vector["signature_priv"])) == kp.leaf_node.signature_key, (
        "signature_priv"
    )


def _join(vector: dict[str, Any], config: GroupConfig = DEFAULT_CONFIG) -> tuple[Group, int]:
    """Check the vector's private keys, join from its Welcome; returns the group and clock."""
    suite = claimed_suite(vector)
    kp = _key_package(vector["key_package"])
    assert kp.cipher_suite == suite.id
    _check_private_keys(suite, vector, kp)
    bundle = KeyPackageBundle(
        kp, h(vector["init_priv"]), h(vector["encryption_priv"]), h(vector["signature_priv"])
    )
    now = _clock(vector, kp)
    tree = vector.get("ratchet_tree")
    group = Group.join(
        h(vector["welcome"]),
        bundle,
        rng=_no_rng,
        now=lambda: now,
        ratchet_tree=h(tree) if tree else None,
        psks={h(p["psk_id"]): h(p["psk"]) for p in vector["external_psks"]},
        config=config,
    )
    assert group.epoch_authenticator.hex() == vector["initial_epoch_authenticator"]
    return group, now


def _follow(
    group: Group, vector: dict[str, Any], after_each: Callable[[Group], Group] | None = None
) -> Group:
    """Process every epoch's proposals, then its commit; check each epoch_authenticator."""
    for n, epoch in enumerate(vector["epochs"]):
        start = group.epoch
        for k, raw in enumerate(epoch["proposals"]):
            event = group.process(h(raw))
            assert isinstance(event, ProposalReceived), f"epoch {n} proposal {k}: {event!r}"
            group = after_each(group) if after_each else group
        event = group.process(h(epoch["commit"]))
        assert isinstance(event, CommitProcessed), f"epoch {n} commit: {event!r}"
        group = after_each(group) if after_each else group
        assert group.epoch == start + 1
        assert group.epoch_authenticator.hex() == epoch["epoch_authenticator"], f"epoch {n}"
    return group


@pytest.mark.parametrize("vector", _params())
def test_passive_client(vector: dict[str, Any]) -> None:
    group, _ = _join(vector)
    _follow(group, vector)


@pytest.mark.parametrize("vector", _params("handling-commit"))
def test_passive_client_survives_save_restore(vector: dict[str, Any]) -> None:
    """The same scenario, with the state saved and restored after every message.

    Covers what a restored member must remember: cached proposals and the
    resumption PSKs of earlier epochs (several entries use the previous epoch's).
    """
    group, now = _join(vector)

    def restore(g: Group) -> Group:
        return Group.from_bytes(g.to_bytes(), rng=_no_rng, now=lambda: now)

    _follow(restore(group), vector, restore)


def _resumption_psk_epochs(raw: str) -> list[int]:
    """``psk_epoch`` of each resumption PreSharedKeyID a PublicMessage carries."""
    body = MLSMessage.from_bytes(h(raw)).body
    assert isinstance(body, PublicMessage)
    content = body.content.content
    if isinstance(content, Commit):
        props: list[object] = [p.proposal for p in content.proposals if p.proposal is not None]
    else:
        props = [content]
    return [
        p.psk.psk_epoch
        for p in props
        if isinstance(p, PreSharedKey) and p.psk.psktype == PSKType.resumption
    ]


_PREVIOUS_EPOCH_PSK = [
    p
    for p in _params("handling-commit")
    if p.values[0]["cipher_suite"] in CLAIMED
    and len(p.values[0]["epochs"]) > 1
    and any(
        _resumption_psk_epochs(raw)
        for raw in (*p.values[0]["epochs"][1]["proposals"], p.values[0]["epochs"][1]["commit"])
    )
]


@pytest.mark.parametrize("vector", _PREVIOUS_EPOCH_PSK)
def test_resumption_psk_outside_retention_window_is_rejected(vector: dict[str, Any]) -> None:
    """With no past epochs retained, a commit using the previous epoch's resumption PSK
    cannot be processed (the PSK is unknown, section 8.4) and the state is unchanged."""
    group, _ = _join(vector, GroupConfig(resumption_psk_epochs=0))
    first, second = vector["epochs"][:2]
    for raw in first["proposals"]:
        group.process(h(raw))
    group.process(h(first["commit"]))
    assert all(
        e == group.epoch - 1
        for raw in (*second["proposals"], second["commit"])
        for e in _resumption_psk_epochs(raw)
    )
    for raw in second["proposals"]:
        group.process(h(raw))
    before = group.epoch, group.epoch_authenticator
    with pytest.raises(ProposalError, match="PSK this member does not hold"):
        group.process(h(second["commit"]))
    assert (group.epoch, group.epoch_authenticator) == before
