"""The roster as people see it: names, roles, identity fingerprints, familiarity.

Each member's credential carries its long-term identity key
(:mod:`.identity`); the :class:`~clave.meeting.people.PeopleBook` says whether
this engine met that key before. Familiarity is judged once, on first sight in
this meeting, before the person is remembered, so the list keeps saying "new"
for someone met for the first time today. A name that looks like another
present member's name (:func:`~clave.meeting.names.confusable`) is flagged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ..mls.events import Member
from .errors import IdentityError
from .events import LobbyRequest, Role, RosterEntry
from .identity import MemberIdentity, fingerprint, parse_credential
from .lobby import LobbyEntry
from .names import confusable, confusion_keys
from .people import PeopleBook
from .policy import MeetingPolicy

UnixTime = Callable[[], int]


def role_of(policy: MeetingPolicy, key: bytes) -> Role:
    if policy.is_host(key):
        return Role.owner if key == policy.owner else Role.host
    if key in policy.successor_keys:
        return Role.successor
    return Role.member


def _identity(member: Member) -> MemberIdentity | None:
    try:
        return parse_credential(member.credential)
    except IdentityError:  # pragma: no cover - the credential validator refuses these
        return None


class Familiarity:
    """First-sight familiarity of the people in one meeting, from the people book."""

    def __init__(self, people: PeopleBook | None, own_key: bytes, now: UnixTime) -> None:
        self._people = people
        self._own_key = own_key
        self._now = now
        self._labels: dict[bytes, str] = {}

    def label(self, who: MemberIdentity, *, other_seat: bool = False) -> str:
        """The familiarity label; ``other_seat``: ``who`` is not our own leaf, so our own
        identity key there means our identity in another engine (another device)."""
        key = who.identity_key
        if other_seat and key == self._own_key:
            return "you, on another device"
        if key not in self._labels:
            if self._people is None:
                self._labels[key] = "you" if key == self._own_key else "new"
            else:
                fam = self._people.familiarity(key, who.name, own_key=self._own_key)
                self._labels[key] = fam.label()
        return self._labels[key]

    def verified(self, who: MemberIdentity) -> bool:
        return self._people is not None and self._people.is_verified(who.identity_key)

    def remember(self, people: Iterable[MemberIdentity]) -> None:
        """Record that we met these people (after their labels were judged)."""
        if self._people is None:
            return
        now = self._now()
        for who in people:
            if who.identity_key != self._own_key:
                self._people.remember(who.identity_key, who.name, now)

    def set_verified(self, who: MemberIdentity, verified: bool) -> None:
        if self._people is not None and who.identity_key != self._own_key:
            self._people.set_verified(who.identity_key, verified)
            self._labels.pop(who.identity_key, None)


def _look_alike(who: MemberIdentity, others: Iterable[MemberIdentity]) -> str | None:
    for other in others:
        if other.identity_key != who.identity_key and confusable(other.name, who.name):
            return other.name
    return None


def _look_alikes(identities: list[MemberIdentity]) -> dict[int, str]:
    """For each position in ``identities``, the name of the first other person whose name
    may be taken for its name, as :func:`_look_alike` finds it; through an index of
    :func:`~clave.meeting.names.confusion_keys`, so a roster of N costs N key
    computations, not N² (issue 13: 1000 members)."""
    keys = [confusion_keys(who.name) for who in identities]
    index: dict[str, list[int]] = {}
    for i, names in enumerate(keys):
        for key in names:
            index.setdefault(key, []).append(i)
    out: dict[int, str] = {}
    for i, who in enumerate(identities):
        firsts = (
            next((j for j in index[key] if identities[j].identity_key != who.identity_key), None)
            for key in keys[i]
        )
        first = min((j for j in firsts if j is not None), default=None)
        if first is not None:
            out[i] = identities[first].name
    return out


def build_roster(
    members: Iterable[Member], policy: MeetingPolicy, me: int, fam: Familiarity
) -> dict[int, RosterEntry]:
    people = {m.leaf_index: (m, _identity(m)) for m in members}
    seated = [(leaf, who) for leaf, (_, who) in people.items() if who is not None]
    identities = [who for _, who in seated]
    alike = {seated[i][0]: name for i, name in _look_alikes(identities).items()}
    out: dict[int, RosterEntry] = {}
    for leaf, (m, who) in sorted(people.items()):
        if who is None:  # pragma: no cover - refused by the credential validator
            continue
        role = role_of(policy, m.signature_key)
        out[leaf] = RosterEntry(
            leaf,
            who.name,
            who.fingerprint,
            role in (Role.owner, Role.host),
            leaf == me,
            role,
            "you" if leaf == me else fam.label(who, other_seat=True),
            fam.verified(who),
            alike.get(leaf),
        )
    fam.remember(identities)
    return out


def identities_of(members: Iterable[Member]) -> Mapping[int, MemberIdentity]:
    out: dict[int, MemberIdentity] = {}
    for m in members:
        who = _identity(m)
        if who is not None:
            out[m.leaf_index] = who
    return out


def lobby_request(
    entry: LobbyEntry, members: Iterable[Member], waiting: Iterable[LobbyEntry], fam: Familiarity
) -> LobbyRequest:
    others = [*identities_of(members).values()]
    others += [e.member for e in waiting if e.request_id != entry.request_id]
    return LobbyRequest(
        entry.request_id,
        entry.name,
        fingerprint(entry.member.identity_key),
        fam.label(entry.member),
        _look_alike(entry.member, others),
    )
