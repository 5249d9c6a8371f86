"""Commit ordering by epoch credential (clave.relay.ordering), on its own."""

from __future__ import annotations

import pytest

from clave.relay.ordering import ByteBudget, EpochSlots, Verdict


def h(n: int) -> bytes:
    """A distinct 32-byte hash."""
    return n.to_bytes(32, "big")


EVERYONE = range(1, 1000)


def test_registration_until_the_first_ordered_commit() -> None:
    slots = EpochSlots()
    assert slots.seed(h(1), owner=7)
    assert slots.is_open(h(1)) and slots.owner(h(1)) == 7 and slots.open_count(7) == 1
    assert not slots.seed(h(2), owner=7)  # one registration per connection
    assert not slots.seed(h(1), owner=8)  # a known hash stays its first registrant's
    # members coming back after a relay restart register theirs, whoever comes first
    assert slots.seed(h(2), owner=8)
    assert slots.commit(h(1), h(3), owner=7, present=EVERYONE) is Verdict.accepted
    assert not slots.seed(h(4), owner=9)  # ordering has begun: hashes come from commits only
    assert h(4) not in slots and len(slots) == 3


def test_registration_is_bounded() -> None:
    slots = EpochSlots(max_slots=3)
    assert all(slots.seed(h(n), owner=n) for n in range(3))
    assert not slots.seed(h(9), owner=9)
    assert len(slots) == 3


def test_chain_replays_the_commits_ordered_since_an_epoch() -> None:
    slots = EpochSlots()
    slots.seed(h(0), owner=1)
    for n in range(4):
        assert slots.commit(h(n), h(n + 1), 1, EVERYONE, data=b"c%d" % n) is Verdict.accepted
    assert slots.chain(h(0)) == [(1, b"c0"), (1, b"c1"), (1, b"c2"), (1, b"c3")]
    assert slots.chain(h(2)) == [(1, b"c2"), (1, b"c3")]
    assert slots.chain(h(4)) == []  # the open, current epoch: nothing missed
    assert slots.chain(h(99)) == []  # unknown


def test_a_reopened_commit_is_not_replayed() -> None:
    slots = EpochSlots()
    slots.seed(h(0), owner=1)
    slots.commit(h(0), h(1), 2, EVERYONE, data=b"junk")
    assert slots.chain(h(0)) == [(2, b"junk")]
    slots.reopen(h(0))  # the members refused it
    assert slots.chain(h(0)) == []
    slots.commit(h(0), h(2), 1, EVERYONE, data=b"honest")
    assert slots.chain(h(0)) == [(1, b"honest")]


def test_the_commit_log_is_bounded_in_bytes() -> None:
    slots = EpochSlots(max_log_bytes=250)
    slots.seed(h(0), owner=1)
    for n in range(5):
        slots.commit(h(n), h(n + 1), 1, EVERYONE, data=bytes([n]) * 100)
    # the oldest commits are forgotten: a member that far behind gets nothing to replay
    assert slots.chain(h(0)) == [] and slots.chain(h(2)) == []
    assert slots.chain(h(3)) == [(1, bytes([3]) * 100), (1, bytes([4]) * 100)]
    slots.commit(h(5), h(6), 1, EVERYONE, data=b"x" * 251)  # larger than the log: not kept
    assert slots.chain(h(5)) == []
    assert slots.chain(h(4)) == [(1, bytes([4]) * 100)]


def test_open_slot_is_consumed_once_and_opens_the_next() -> None:
    slots = EpochSlots()
    slots.seed(h(0), owner=1)
    assert slots.commit(h(0), h(1), owner=2, present=EVERYONE) is Verdict.accepted
    assert h(0) in slots and not slots.is_open(h(0))
    assert slots.is_open(h(1)) and slots.owner(h(1)) == 2
    assert slots.open_count(1) == 0 and slots.open_count(2) == 1
    assert slots.commit(h(0), h(9), owner=3, present=EVERYONE) is Verdict.stale
    assert h(9) not in slots


def test_unknown_credential_is_never_ordered() -> None:
    slots = EpochSlots()
    slots.seed(h(0), owner=1)
    for n in range(100, 300):
        assert slots.commit(h(n), h(n + 1000), owner=5, present=EVERYONE) is Verdict.unknown
    assert len(slots) == 1 and slots.is_open(h(0))
    assert EpochSlots().commit(h(0), h(1), owner=1, present=EVERYONE) is Verdict.unknown


def test_a_known_next_is_left_as_it_is() -> None:
    slots = EpochSlots()
    slots.seed(h(0), owner=1)
    slots.commit(h(0), h(1), owner=1, present=EVERYONE)
    slots.reopen(h(0))
    # a second commit for epoch 0 that names the same next epoch: h(1) stays open, owned by 1
    assert slots.commit(h(0), h(1), owner=2, present=EVERYONE) is Verdict.accepted
    assert slots.owner(h(1)) == 1 and slots.is_open(h(1)) and slots.open_count(2) == 0
    # naming a consumed slot as next does not reopen it
    slots.commit(h(1), h(2), owner=1, present=EVERYONE)
    slots.reopen(h(1))
    assert slots.commit(h(1), h(0), owner=1, present=EVERYONE) is Verdict.accepted
    assert not slots.is_open(h(0))


def test_reopen_only_consumed_slots() -> None:
    slots = EpochSlots()
    slots.seed(h(0), owner=1)
    assert not slots.reopen(h(0))  # open already
    assert not slots.reopen(h(5))  # unknown
    slots.commit(h(0), h(1), owner=2, present=EVERYONE)
    assert slots.reopen(h(0))
    assert slots.is_open(h(0)) and slots.open_count(1) == 1
    assert slots.commit(h(0), h(2), owner=3, present=EVERYONE) is Verdict.accepted


def test_check_changes_nothing() -> None:
    slots = EpochSlots()
    slots.seed(h(0), owner=1)
    assert slots.check(h(0), h(1), owner=2, present=EVERYONE) is Verdict.accepted
    assert slots.is_open(h(0)) and h(1) not in slots
    assert slots.check(h(7), h(1), owner=2, present=EVERYONE) is Verdict.unknown


def test_owner_may_hold_a_bounded_number_of_open_slots() -> None:
    slots = EpochSlots(max_open_per_owner=2)
    slots.seed(h(0), owner=1)
    # owner 2 commits junk for epoch 0 twice (reopened each time): it owns 2 open slots
    for n in (10, 11):
        assert slots.commit(h(0), h(n), owner=2, present=EVERYONE) is Verdict.accepted
        slots.reopen(h(0))
    assert slots.open_count(2) == 2
    assert slots.commit(h(0), h(12), owner=2, present=EVERYONE) is Verdict.owner_limit
    assert slots.is_open(h(0)) and h(12) not in slots  # nothing changed
    # consuming one of its own open slots while opening another stays within the bound
    assert slots.commit(h(10), h(13), owner=2, present=EVERYONE) is Verdict.accepted
    assert slots.open_count(2) == 2
    # a known next adds nothing, so it is not limited
    assert slots.commit(h(0), h(11), owner=2, present=EVERYONE) is Verdict.accepted


def chain(slots: EpochSlots, start: int, count: int, owner: int) -> None:
    """``count`` honest commits by ``owner``: h(start) -> h(start+1) -> ..."""
    for n in range(start, start + count):
        assert slots.commit(h(n), h(n + 1), owner=owner, present=EVERYONE) is Verdict.accepted


def test_full_room_evicts_consumed_slots_oldest_first() -> None:
    slots = EpochSlots(max_slots=4, max_open_per_owner=4)
    slots.seed(h(0), owner=1)
    chain(slots, 0, 3, owner=1)  # h0 h1 h2 consumed, h3 open: full
    assert len(slots) == 4
    chain(slots, 3, 1, owner=1)  # h4 evicts h0
    assert h(0) not in slots and all(h(n) in slots for n in (1, 2, 3, 4))
    chain(slots, 4, 1, owner=1)  # h5 evicts h1
    assert h(1) not in slots and len(slots) == 4
    # an evicted credential is unknown now, not stale
    assert slots.commit(h(0), h(99), owner=1, present=EVERYONE) is Verdict.unknown


def test_full_room_then_evicts_open_slots_of_absent_owners_oldest_first() -> None:
    slots = EpochSlots(max_slots=4, max_open_per_owner=4)
    slots.seed(h(0), owner=1)
    # owners 2, 3, 4 each open a slot by committing for epoch 0 (reopened each time)
    for owner in (2, 3, 4):
        assert slots.commit(h(0), h(owner * 10), owner=owner, present=EVERYONE) is Verdict.accepted
        slots.reopen(h(0))
    assert len(slots) == 4 and all(slots.is_open(h(n)) for n in (0, 20, 30, 40))
    present = {1, 3, 4, 5}  # owner 2 left; owner 1 (of h0) is here
    assert slots.commit(h(0), h(50), owner=5, present=present) is Verdict.accepted
    # the oldest consumed slot would go first, but h0 was the only one and it is in use:
    assert h(0) in slots and not slots.is_open(h(0))
    assert h(20) not in slots and slots.open_count(2) == 0  # owner 2's open slot was evicted
    assert slots.is_open(h(50))
    # now h0 (consumed) is the victim before any open slot
    assert slots.commit(h(30), h(60), owner=3, present=present) is Verdict.accepted
    assert h(0) not in slots and slots.is_open(h(40))


def test_full_room_keeps_the_slot_being_consumed_and_refuses_when_nothing_may_go() -> None:
    slots = EpochSlots(max_slots=2, max_open_per_owner=4)
    slots.seed(h(0), owner=1)
    assert slots.commit(h(0), h(1), owner=2, present={2}) is Verdict.accepted
    slots.reopen(h(0))
    # full with two open slots: h0 (owner 1, absent) is the one being consumed, and
    # h1's owner 2 is present, so nothing may be evicted
    assert slots.check(h(0), h(2), owner=3, present={2, 3}) is Verdict.full
    assert slots.commit(h(0), h(2), owner=3, present={2, 3}) is Verdict.full
    assert slots.is_open(h(0)) and h(2) not in slots
    # once owner 2 has left, its open slot may go
    assert slots.commit(h(0), h(2), owner=3, present={3}) is Verdict.accepted
    assert h(1) not in slots and slots.is_open(h(2))


def test_a_junk_flood_from_a_member_stays_bounded() -> None:
    slots = EpochSlots(max_slots=16, max_open_per_owner=4)
    slots.seed(h(0), owner=1)
    refused = 0
    for n in range(1, 500):
        verdict = slots.commit(h(0), h(1000 + n), owner=666, present=EVERYONE)
        refused += verdict is not Verdict.accepted
        slots.reopen(h(0))  # the honest members reopen every junk commit
    assert len(slots) <= 16 and slots.open_count(666) <= 4 and refused == 499 - 4
    assert slots.commit(h(0), h(1), owner=1, present=EVERYONE) is Verdict.accepted


@pytest.mark.parametrize("kwargs", [{"max_slots": 1}, {"max_open_per_owner": 0}])
def test_nonsense_bounds_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        EpochSlots(**kwargs)


def test_commit_logs_of_all_rooms_share_one_budget() -> None:
    budget = ByteBudget(300)
    a, b = EpochSlots(budget=budget), EpochSlots(budget=budget)
    for slots in (a, b):
        slots.seed(h(0), owner=1)
    for n in range(3):
        a.commit(h(n), h(n + 1), 1, EVERYONE, data=bytes(100))
    assert budget.used == 300
    # room b may only take what room a gives up: it forgets nothing of a's
    assert b.commit(h(0), h(1), 1, EVERYONE, data=bytes(100)) is Verdict.accepted
    assert b.chain(h(0)) == [] and len(a.chain(h(0))) == 3
    a.forget_all()  # room a closed
    assert budget.used == 0
    b.commit(h(1), h(2), 1, EVERYONE, data=bytes(100))
    assert b.chain(h(1)) == [(1, bytes(100))] and budget.used == 100

