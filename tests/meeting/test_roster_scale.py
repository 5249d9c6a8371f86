"""The roster's look-alike check scales with the meeting (issue 13: 1000 members): it
finds the same names as comparing every pair, with one key computation per member."""

from __future__ import annotations

import os
import random

import pytest
from meeting_harness import Net

from clave.meeting import names, roster
from clave.meeting.identity import Identity, MemberIdentity


def _who(name: str, key: bytes | None = None) -> MemberIdentity:
    return MemberIdentity(name, key or Identity.generate(os.urandom).public_key, b"")


def test_look_alikes_match_the_pairwise_check() -> None:
    rnd = random.Random(7)
    pool = ["Alice", "Аlice", "ALICE", "Bob", "B0b", "Carol", "Dave", "dave", "Eve", "Ева"]
    people = [_who(rnd.choice(pool)) for _ in range(40)]
    people.append(_who(people[0].name, people[0].identity_key))  # same person, two seats
    found = roster._look_alikes(people)
    assert found
    for i, who in enumerate(people):
        assert found.get(i) == roster._look_alike(who, people), (i, who.name)


def test_an_epoch_costs_each_member_n_confusion_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net()
    host = net.host("Host", auto_admit=True)
    net.pump()
    for i in range(11):
        net.guest(f"Member {i}")
        net.pump()
    assert len(net.members()) == 12
    calls = 0
    real = names.confusion_keys

    def counted(name: str) -> frozenset[str]:
        nonlocal calls
        calls += 1
        return real(name)

    monkeypatch.setattr(roster, "confusion_keys", counted)
    monkeypatch.setattr(names, "confusion_keys", counted)
    net.guest("Newcomer")
    net.pump()
    assert len(net.members()) == 13 and host.meeting.epoch is not None
    # one roster of 13 for each of 13 members, plus the host's look at the knock (13);
    # comparing every pair would take 2 x 13 x 13 for each member.
    assert calls <= 13 * 13 + 2 * 13, calls
