"""The people book: familiarity kinds, labels, JSON round trip, strict parsing, bounds."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clave.meeting import people as people_mod
from clave.meeting.errors import IdentityError
from clave.meeting.names import confusable
from clave.meeting.people import MAX_NAMES, Familiarity, PeopleBook

GRACE, MALLORY, BOB, ME = (bytes([i]) * 32 for i in (1, 2, 3, 4))
DAY = 86_400
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def _book() -> PeopleBook:
    book = PeopleBook()
    book.remember(GRACE, "Grace", T0)
    book.remember(BOB, "Bob", T0 + DAY)
    return book


def test_familiarity_kinds_and_labels() -> None:
    book = _book()
    assert book.familiarity(ME, "Me", own_key=ME) == Familiarity("self")
    assert book.familiarity(GRACE, "Grace") == Familiarity("known", T0)
    assert book.familiarity(GRACE, "Grace").label() == "known since 2023-11-14"
    assert book.familiarity(MALLORY, "Mallory") == Familiarity("new")
    book.set_verified(GRACE, True)
    assert book.familiarity(GRACE, "Grace") == Familiarity("verified", T0)
    assert [f.label() for f in (Familiarity("self"), Familiarity("verified", T0))] == [
        "you",
        "verified",
    ]
    assert Familiarity("new").label() == "new"


@pytest.mark.parametrize("name", ["Grace", "grace", "Grаce", "GRACE", "Gracе"])
def test_new_key_with_a_known_name_is_a_changed_key(name: str) -> None:
    book = _book()
    fam = book.familiarity(MALLORY, name)
    assert fam == Familiarity("changed_key", None, "Grace")
    assert fam.label() == "⚠ a different key than the Grace you met before"


def test_known_key_taking_another_persons_name_is_flagged() -> None:
    book = _book()
    book.remember(MALLORY, "Mallory", T0)
    assert book.familiarity(MALLORY, "Mallory").kind == "known"
    assert book.familiarity(MALLORY, "Grace") == Familiarity("changed_key", T0, "Grace")


def test_two_real_people_sharing_a_name() -> None:
    book = _book()
    book.remember(MALLORY, "Grace", T0 + 5)  # a second Grace, met and remembered
    assert book.familiarity(MALLORY, "Grace") == Familiarity("known", T0 + 5)
    assert book.familiarity(GRACE, "Grace") == Familiarity("known", T0)
    # A third key: the clash names the verified Grace first, else the most recent one.
    assert book.familiarity(ME, "Grace").kind == "changed_key"
    book.set_verified(GRACE, True)
    assert book.familiarity(ME, "Grace").name == "Grace"


def test_own_key_is_self_even_if_the_name_clashes() -> None:
    assert _book().familiarity(ME, "Grace", own_key=ME).kind == "self"


def test_remember_updates_names_and_times() -> None:
    book = PeopleBook()
    for i in range(MAX_NAMES + 3):
        book.remember(GRACE, f"Grace {i}", T0 + i)
    book.remember(GRACE, "Grace 5", T0 + 100)
    book.remember(GRACE, "Grace 5", T0 + 50)  # out of order: last_seen stays the latest
    person = book.get(GRACE)
    assert person is not None
    assert person.names[0] == "Grace 5" and len(person.names) == MAX_NAMES
    assert person.names[1:] == tuple(f"Grace {i}" for i in (10, 9, 8, 7, 6, 4, 3))
    assert (person.first_seen, person.last_seen) == (T0, T0 + 100)
    assert len(book) == 1
    # A name that dropped out of the last 8 no longer protects against impostors.
    assert book.familiarity(MALLORY, "Grace 0").kind == "new"
    assert book.familiarity(MALLORY, "Grace 3").kind == "changed_key"


@pytest.mark.parametrize(
    ("key", "name", "now"),
    [
        (b"\x01" * 31, "Grace", T0),
        (GRACE, "Grace ", T0),
        (GRACE, "Gr\u200bace", T0),
        (GRACE, "Grace", -1),
        (GRACE, "Grace", True),
    ],
)
def test_remember_validates(key: bytes, name: str, now: int) -> None:
    with pytest.raises(IdentityError):
        PeopleBook().remember(key, name, now)


def test_verification() -> None:
    book = _book()
    assert not book.is_verified(GRACE) and not book.is_verified(MALLORY)
    book.set_verified(GRACE, True)
    assert book.is_verified(GRACE)
    book.set_verified(GRACE, False)
    assert not book.is_verified(GRACE)
    with pytest.raises(IdentityError):
        book.set_verified(MALLORY, True)


def test_json_round_trip() -> None:
    book = _book()
    book.remember(GRACE, "Grace Hopper", T0 + 2 * DAY)
    book.set_verified(BOB, True)
    data = book.to_bytes()
    again = PeopleBook.from_bytes(data)
    assert again.to_bytes() == data
    assert len(again) == 2 and again.is_verified(BOB)
    assert again.get(GRACE) == book.get(GRACE)
    assert again.familiarity(MALLORY, "Grace").kind == "changed_key"
    doc = json.loads(data)
    assert doc["version"] == 1 and doc["people"][0]["key"] == GRACE.hex()
    assert PeopleBook.from_bytes(PeopleBook().to_bytes()).to_bytes() == PeopleBook().to_bytes()


def _person(**changes: object) -> dict[str, object]:
    person: dict[str, object] = {
        "key": GRACE.hex(),
        "names": ["Grace"],
        "first_seen": T0,
        "last_seen": T0,
        "verified": False,
    }
    person.update(changes)
    return person


def _doc(**changes: object) -> bytes:
    return json.dumps({"version": 1, "people": [_person(**changes)]}).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"[]",
        b'{"version": 2, "people": []}',
        b'{"version": 1}',
        b'{"version": 1, "people": [], "extra": 1}',
        b'{"version": 1, "people": {}}',
        _doc(key=GRACE.hex()[:-2]),
        _doc(key="AB" * 32),
        _doc(key=123),
        _doc(names=[]),
        _doc(names=["Grace"] * 2),
        _doc(names=[f"G{i}" for i in range(MAX_NAMES + 1)]),
        _doc(names=["Grace "]),
        _doc(names=["\u202eecarG"]),
        _doc(names=[7]),
        _doc(first_seen=-1),
        _doc(first_seen=T0 + 1),  # after last_seen
        _doc(last_seen="now"),
        _doc(last_seen=1.5),
        _doc(last_seen=True),
        _doc(verified=1),
        _doc(verified="yes"),
        _doc(colour="blue"),
        json.dumps({"version": 1, "people": [_person(), _person()]}).encode(),  # same key
        b"\xff\xfe",
    ],
)
def test_malformed_json_refused(data: bytes) -> None:
    with pytest.raises(IdentityError):
        PeopleBook.from_bytes(data)


def test_fixture_is_otherwise_valid() -> None:
    assert len(PeopleBook.from_bytes(_doc())) == 1
    assert len(PeopleBook.from_bytes(_doc(key="ab" * 32))) == 1


def test_bounds_evict_least_recently_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(people_mod, "MAX_PEOPLE", 3)
    book = PeopleBook()
    keys = [bytes([i]) * 32 for i in range(5)]
    for i, key in enumerate(keys[:3]):
        book.remember(key, f"P{i}", T0 + i)
    book.remember(keys[0], "P0", T0 + 10)  # seen again: now the most recent
    book.remember(keys[3], "P3", T0 + 11)
    assert len(book) == 3
    assert book.get(keys[1]) is None and book.get(keys[0]) is not None
    assert book.familiarity(keys[4], "P1").kind == "new"  # evicted: forgotten
    # Loading a larger book keeps the most recently seen.
    big = PeopleBook()
    monkeypatch.setattr(people_mod, "MAX_PEOPLE", 10)
    for i, key in enumerate(keys):
        big.remember(key, f"P{i}", T0 + 100 - i)
    monkeypatch.setattr(people_mod, "MAX_PEOPLE", 3)
    loaded = PeopleBook.from_bytes(big.to_bytes())
    assert [k for k in keys if loaded.get(k)] == keys[:3]


def test_default_bound_is_ten_thousand() -> None:
    assert people_mod.MAX_PEOPLE == 10_000


def test_oversized_input_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(people_mod, "MAX_BOOK_BYTES", 10)
    with pytest.raises(IdentityError, match="too large"):
        PeopleBook.from_bytes(b" " * 11)


_NAMES = ["Grace", "Grаce", "GRACE", "Bob", "Bοb", "Rob", "Kim", "Kirn", "Ivan", "lvan"]
_KEYS = [bytes([i]) * 32 for i in range(6)]


def _expected_kind(book: PeopleBook, key: bytes, name: str) -> str:
    """familiarity() without the index: every known person's names, one by one."""
    person = book.get(key)
    clash = any(
        any(confusable(name, n) for n in p.names)
        for k in _KEYS
        if k != key and (p := book.get(k)) is not None
    )
    if clash and (person is None or not any(confusable(name, n) for n in person.names)):
        return "changed_key"
    return "new" if person is None else "known"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.sampled_from(_NAMES), st.integers(0, 9)), max_size=30),
    st.integers(0, 5),
    st.sampled_from(_NAMES),
)
def test_familiarity_matches_brute_force(
    ops: list[tuple[int, str, int]], probe: int, name: str
) -> None:
    """The confusion index stays in step with renames and evictions."""
    book = PeopleBook()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(people_mod, "MAX_PEOPLE", 4)
        for k, who, now in ops:
            book.remember(_KEYS[k], who, now)
            assert book.familiarity(_KEYS[probe], name).kind == _expected_kind(
                book, _KEYS[probe], name
            )
    again = PeopleBook.from_bytes(book.to_bytes())
    assert again.familiarity(_KEYS[probe], name) == book.familiarity(_KEYS[probe], name)
