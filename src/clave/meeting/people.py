"""The people an engine has met, keyed by long-term identity key (sans-I/O).

The lobby and the participant list show, for every member, whether this
engine has met that identity key before ("known since ..."), whether its
security code was verified, whether it is "new", or, the attack this guards
against, a new key under a name confusable with someone met before
("a different key than the Grace you met before"). Times are Unix seconds
passed in by the caller; :meth:`PeopleBook.to_bytes` gives the JSON that the
engine stores.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

from .errors import IdentityError
from .names import check_display_name, confusion_keys

__all__ = ["MAX_NAMES", "MAX_PEOPLE", "Familiarity", "PeopleBook", "Person"]

MAX_PEOPLE = 10_000
MAX_NAMES = 8
MAX_BOOK_BYTES = 16 << 20
KEY_BYTES = 32
_MAX_TIME = 2**53 - 1

Kind = Literal["self", "verified", "known", "new", "changed_key"]


@dataclass(frozen=True, slots=True)
class Familiarity:
    """How well this engine knows a member; :meth:`label` is the UI text."""

    kind: Kind
    since: int | None = None
    name: str | None = None

    def label(self) -> str:
        if self.kind == "self":
            return "you"
        if self.kind == "verified":
            return "verified"
        if self.kind == "known" and self.since is not None:
            day = datetime.fromtimestamp(self.since, tz=UTC).date().isoformat()
            return f"known since {day}"
        if self.kind == "changed_key":
            return f"⚠ a different key than the {self.name} you met before"
        return "new"


@dataclass(frozen=True, slots=True)
class Person:
    """One remembered identity key: names (most recent first) and when it was seen."""

    names: tuple[str, ...]
    first_seen: int
    last_seen: int
    verified: bool = False


# JSON shape of the stored book (strict: unknown fields, wrong types, refused).
_Time = Annotated[int, msgspec.Meta(ge=0, le=_MAX_TIME)]
_Hex = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
_Names = Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_NAMES)]


class _PersonJSON(msgspec.Struct, forbid_unknown_fields=True):
    key: _Hex
    names: _Names
    first_seen: _Time
    last_seen: _Time
    verified: bool


class _BookJSON(msgspec.Struct, forbid_unknown_fields=True):
    version: Literal[1]
    people: list[_PersonJSON]


def _last_seen(item: tuple[bytes, Person]) -> tuple[int, bytes]:
    return item[1].last_seen, item[0]


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise IdentityError(f"identity key must be {KEY_BYTES} bytes")
    return key


def _check_time(now: int) -> int:
    if isinstance(now, bool) or not isinstance(now, int) or not 0 <= now <= _MAX_TIME:
        raise IdentityError("time must be a non-negative integer number of Unix seconds")
    return now


class PeopleBook:
    """People met, by identity public key; at most :data:`MAX_PEOPLE` (least recent evicted)."""

    def __init__(self) -> None:
        self._people: dict[bytes, Person] = {}
        self._index: dict[str, set[bytes]] | None = None  # confusion key -> identity keys

    def __len__(self) -> int:
        return len(self._people)

    def get(self, identity_key: bytes) -> Person | None:
        return self._people.get(identity_key)

    def is_verified(self, identity_key: bytes) -> bool:
        person = self._people.get(identity_key)
        return person is not None and person.verified

    def familiarity(
        self, identity_key: bytes, name: str, *, own_key: bytes | None = None
    ) -> Familiarity:
        """What to show beside ``name`` claimed by ``identity_key``.

        "changed_key" when ``name`` is confusable with the name of a known
        person with another key, unless ``identity_key`` itself was already
        seen under a confusable name (two real people may share a name).
        """
        if own_key is not None and identity_key == own_key:
            return Familiarity("self")
        person = self._people.get(identity_key)
        keys = confusion_keys(name)
        since = None if person is None else person.first_seen
        if person is None or all(keys.isdisjoint(confusion_keys(n)) for n in person.names):
            clash = self._clash(identity_key, keys)
            if clash is not None:
                return Familiarity("changed_key", since, clash)
        if person is None:
            return Familiarity("new")
        return Familiarity("verified" if person.verified else "known", since)

    def _clash(self, identity_key: bytes, keys: frozenset[str]) -> str | None:
        """A name of a known person with another key that is confusable with ``keys``."""
        index = self._build_index()
        owners = set().union(*(index.get(k, set()) for k in keys))
        owners.discard(identity_key)
        if not owners:
            return None
        # Prefer verified people, then the most recently seen; ties broken by key.
        best = max(owners, key=lambda k: (self._people[k].verified, self._people[k].last_seen, k))
        return next(n for n in self._people[best].names if not keys.isdisjoint(confusion_keys(n)))

    def _build_index(self) -> dict[str, set[bytes]]:
        if self._index is None:
            self._index = {}
            for key, person in self._people.items():
                self._add_to_index(key, person)
        return self._index

    def _add_to_index(self, key: bytes, person: Person) -> None:
        if self._index is not None:
            for n in person.names:
                for ck in confusion_keys(n):
                    self._index.setdefault(ck, set()).add(key)

    def _drop_from_index(self, key: bytes, person: Person) -> None:
        if self._index is not None:
            for n in person.names:
                for ck in confusion_keys(n):
                    owners = self._index.get(ck, set())
                    owners.discard(key)
                    if not owners:
                        self._index.pop(ck, None)

    def remember(self, identity_key: bytes, name: str, now: int) -> None:
        """Record that ``identity_key`` was seen as ``name`` at ``now``."""
        _check_key(identity_key)
        check_display_name(name)
        _check_time(now)
        old = self._people.get(identity_key)
        if old is None:
            person = Person((name,), now, now)
        else:
            names = (name, *(n for n in old.names if n != name))[:MAX_NAMES]
            first, last = min(old.first_seen, now), max(old.last_seen, now)
            person = replace(old, names=names, first_seen=first, last_seen=last)
            self._drop_from_index(identity_key, old)
        self._people[identity_key] = person
        self._add_to_index(identity_key, person)
        self._evict()

    def set_verified(self, identity_key: bytes, verified: bool) -> None:
        """Mark a remembered person's security code as verified (IdentityError if unknown)."""
        person = self._people.get(identity_key)
        if person is None:
            raise IdentityError("cannot verify a person who was never remembered")
        self._people[identity_key] = replace(person, verified=bool(verified))

    def _evict(self) -> None:
        excess = len(self._people) - MAX_PEOPLE
        if excess > 0:
            by_age = heapq.nsmallest(excess, self._people.items(), key=_last_seen)
            for key, person in by_age:
                self._drop_from_index(key, person)
                del self._people[key]

    def to_bytes(self) -> bytes:
        """Canonical JSON (people sorted by key)."""
        people = [
            _PersonJSON(k.hex(), list(p.names), p.first_seen, p.last_seen, p.verified)
            for k, p in sorted(self._people.items())
        ]
        return msgspec.json.encode(_BookJSON(1, people))

    @classmethod
    def from_bytes(cls, data: bytes) -> PeopleBook:
        """Parse :meth:`to_bytes` output, validating every field (IdentityError if malformed)."""
        if len(data) > MAX_BOOK_BYTES:
            raise IdentityError("people book is too large")
        try:
            raw = msgspec.json.decode(data, type=_BookJSON)
        except msgspec.DecodeError as exc:  # ValidationError is a subclass
            raise IdentityError(f"people book is malformed: {exc}") from None
        book = cls()
        for i, entry in enumerate(raw.people):
            key = bytes.fromhex(entry.key)
            where = f"people book entry {i}"
            if key in book._people:
                raise IdentityError(f"{where} repeats an identity key")
            if entry.first_seen > entry.last_seen:
                raise IdentityError(f"{where} was last seen before it was first seen")
            if len(set(entry.names)) != len(entry.names):
                raise IdentityError(f"{where} repeats a name")
            try:
                names = tuple(check_display_name(n) for n in entry.names)
            except IdentityError as exc:
                raise IdentityError(f"{where}: {exc}") from None
            book._people[key] = Person(names, entry.first_seen, entry.last_seen, entry.verified)
        book._evict()
        return book
