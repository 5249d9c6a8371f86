"""Commit ordering by epoch credential: which commit a room orders first for an epoch.

Every MLS epoch has an *epoch credential*, a secret that only the group's
members can derive; the relay only ever sees its SHA-256. A room keeps
**slots** keyed by such hashes. A slot is *open* (no commit ordered for that
epoch yet) or *consumed*, and has an *owner* (the connection that registered
it).

* A commit presents its epoch's credential ``cred`` and the hash ``next`` of
  the credential of the epoch it creates. If SHA-256(cred) is an open slot, the
  commit is ordered: the slot is consumed and ``next`` becomes an open slot
  owned by the committer (a ``next`` already known stays as it is). A consumed
  slot means another commit won that epoch (*stale*); an unknown hash means
  the sender never was a member (*unknown*). A connection that knows no
  credential therefore gets none of its commits ordered: junk commits from a
  link holder cannot win an epoch and so cannot refuse the host's Remove as
  stale forever.
* A member whose engine refused the commit ordered for its epoch (a member's
  junk) *reopens* that slot, so an honest commit can still be ordered for it.
  Reopening a slot nobody uses any more is harmless: honest members have moved
  on to the next epoch's slot.
* A consumed slot remembers the commit that consumed it and the slot it opened,
  so a member coming back after a dropped connection can be **replayed** the
  commits it missed (:meth:`chain`, from the slot of the epoch it is in). The
  commits are ciphertext the relay forwarded anyway; the log is bounded in
  bytes per room (``max_log_bytes``: the oldest commits are forgotten first,
  and a member further behind must be admitted again) and, through a shared
  :class:`ByteBudget`, for the whole relay (a commit that does not fit is not
  remembered).
* **Registration.** Until the room orders its first commit, every entering
  member may register one hash (its epoch's credential): the creator does, and
  after a relay restart (rooms are in memory only) the members coming back do,
  whoever comes first. A link holder may register a hash of its own then, but
  that only lets it order a commit for an epoch no member is in, which every
  member refuses; it cannot take the members' slots. Once a commit was ordered,
  new hashes come only from ordered commits.
* Bounds: a connection owns at most ``max_open_per_owner`` open slots (a commit
  that would exceed it is refused, nothing changed), and a room holds at most
  ``max_slots``. When full, consumed slots are evicted oldest first, then open
  slots whose owner has left, oldest first; otherwise the commit is refused.
  Age is the order of registration (reopening does not make a slot younger).

Plain data: no I/O, no clock. :mod:`clave.relay.room` maps verdicts to errors.
"""

from __future__ import annotations

from collections.abc import Container
from enum import Enum


class Verdict(Enum):
    """What became of a commit."""

    accepted = "accepted"
    stale = "stale"
    """Its credential's slot is consumed: another commit won that epoch."""
    unknown = "unknown"
    """Its credential is not a slot of the room: the sender knows no credential."""
    owner_limit = "owner_limit"
    """The committer would own more than ``max_open_per_owner`` open slots."""
    full = "full"
    """The room holds ``max_slots`` slots and none may be evicted."""


class ByteBudget:
    """Bytes that several owners draw from together (the relay's commit logs)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> bool:
        if self.used + n > self.limit:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used -= n


class _Slot:
    __slots__ = ("by", "commit", "is_open", "next", "owner")

    def __init__(self, owner: int) -> None:
        self.owner = owner
        self.is_open = True
        self.commit: bytes | None = None
        """The commit that consumed this slot (None while open, or once forgotten)."""
        self.next: bytes | None = None
        """The slot that commit opened."""
        self.by = 0
        """The connection that sent that commit."""


class EpochSlots:
    """The slots of one room (see the module docstring)."""

    __slots__ = (
        "_budget",
        "_log",
        "_log_bytes",
        "_open_by_owner",
        "_ordered",
        "_registered",
        "_slots",
        "max_log_bytes",
        "max_open_per_owner",
        "max_slots",
    )

    def __init__(
        self,
        max_slots: int = 512,
        max_open_per_owner: int = 4,
        max_log_bytes: int = 1 << 20,
        budget: ByteBudget | None = None,
    ) -> None:
        if max_slots < 2 or max_open_per_owner < 1 or max_log_bytes < 0:
            raise ValueError("need max_slots >= 2, max_open_per_owner >= 1, max_log_bytes >= 0")
        self.max_slots = max_slots
        self.max_open_per_owner = max_open_per_owner
        self.max_log_bytes = max_log_bytes
        self._slots: dict[bytes, _Slot] = {}
        """Hash -> slot, in registration order (oldest first)."""
        self._open_by_owner: dict[int, int] = {}
        self._ordered = 0
        self._registered: set[int] = set()
        self._log: list[bytes] = []
        """Consumed slots whose commit is remembered, oldest first."""
        self._log_bytes = 0
        self._budget = budget or ByteBudget(max_log_bytes)

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        """True if ``key`` is a slot, open or consumed."""
        return key in self._slots

    @property
    def ordered(self) -> bool:
        """Whether the room has ordered a commit (registration is over then)."""
        return bool(self._ordered)

    def registered(self, owner: int) -> bool:
        """Whether ``owner`` registered a hash already (once per connection)."""
        return owner in self._registered

    def is_open(self, key: bytes) -> bool:
        slot = self._slots.get(key)
        return slot is not None and slot.is_open

    def owner(self, key: bytes) -> int | None:
        slot = self._slots.get(key)
        return None if slot is None else slot.owner

    def open_count(self, owner: int) -> int:
        """How many open slots ``owner`` holds."""
        return self._open_by_owner.get(owner, 0)

    # ------------------------------------------------------------ changes

    def seed(self, key: bytes, owner: int) -> bool:
        """Register ``key`` (an entering member's credential hash) as an open slot of
        ``owner``: only until the room ordered its first commit, once per connection, and
        not if ``key`` is known already."""
        if self._ordered or owner in self._registered or key in self._slots:
            return False
        if self.open_count(owner) >= self.max_open_per_owner or len(self._slots) >= self.max_slots:
            return False
        self._registered.add(owner)
        self._add(key, owner)
        return True

    def chain(self, key: bytes) -> list[tuple[int, bytes]]:
        """The commits ordered from the slot ``key`` on, in order, with the connection that
        sent each (a member that was in that epoch needs them all to catch up); empty if
        ``key`` is open or unknown."""
        out: list[tuple[int, bytes]] = []
        seen: set[bytes] = set()
        slot = self._slots.get(key)
        while slot is not None and slot.commit is not None and slot.next is not None:
            if key in seen:  # pragma: no cover - hashes never repeat
                break
            seen.add(key)
            out.append((slot.by, slot.commit))
            key = slot.next
            slot = self._slots.get(key)
        return out

    def check(self, cred: bytes, next_: bytes, owner: int, present: Container[int]) -> Verdict:
        """The verdict :meth:`commit` would give, changing nothing."""
        return self._verdict(cred, next_, owner, present)[0]

    def commit(
        self,
        cred: bytes,
        next_: bytes,
        owner: int,
        present: Container[int],
        data: bytes = b"",
    ) -> Verdict:
        """Order a commit by ``owner`` (hashes ``cred`` and ``next_``, the commit ``data``);
        change state if accepted. ``present`` holds the connections still in the room."""
        verdict, victim = self._verdict(cred, next_, owner, present)
        if verdict is not Verdict.accepted:
            return verdict
        if victim is not None:
            self._remove(victim)
        slot = self._slots[cred]
        slot.is_open = False
        self._count(slot.owner, -1)
        self._ordered += 1
        self._registered.clear()  # registration is over
        if next_ not in self._slots:
            self._add(next_, owner)
        if data:
            self._remember(cred, slot, data, next_, owner)
        return verdict

    def reopen(self, key: bytes) -> bool:
        """Open a consumed slot again; False (nothing changed) if ``key`` is not consumed."""
        slot = self._slots.get(key)
        if slot is None or slot.is_open:
            return False
        slot.is_open = True
        self._count(slot.owner, 1)
        self._forget(key)
        return True

    # ------------------------------------------------------------ internals

    def _verdict(
        self, cred: bytes, next_: bytes, owner: int, present: Container[int]
    ) -> tuple[Verdict, bytes | None]:
        slot = self._slots.get(cred)
        if slot is None:
            return Verdict.unknown, None
        if not slot.is_open:
            return Verdict.stale, None
        if next_ in self._slots:
            return Verdict.accepted, None
        held = self.open_count(owner) - (slot.owner == owner)
        if held + 1 > self.max_open_per_owner:
            return Verdict.owner_limit, None
        if len(self._slots) < self.max_slots:
            return Verdict.accepted, None
        victim = self._victim(cred, present)
        return (Verdict.full, None) if victim is None else (Verdict.accepted, victim)

    def _victim(self, keep: bytes, present: Container[int]) -> bytes | None:
        """The slot to evict: the oldest consumed, else the oldest open one of an absent owner."""
        for key, slot in self._slots.items():
            if not slot.is_open:
                return key
        for key, slot in self._slots.items():
            if slot.owner not in present and key != keep:
                return key
        return None

    def _remember(self, key: bytes, slot: _Slot, data: bytes, next_: bytes, by: int) -> None:
        size = len(data)
        if size > self.max_log_bytes:
            return
        while self._log and self._log_bytes + size > self.max_log_bytes:
            self._forget(self._log[0])
        while not self._budget.take(size):
            if not self._log:
                return  # the relay's logs are full: this one is not remembered
            self._forget(self._log[0])
        slot.commit, slot.next, slot.by = bytes(data), next_, by
        self._log.append(key)
        self._log_bytes += size

    def forget_all(self) -> None:
        """Forget every remembered commit (the room is closed): the budget gets it back."""
        while self._log:
            self._forget(self._log[0])

    def _forget(self, key: bytes) -> None:
        """Forget the commit remembered for ``key`` (the slot itself stays)."""
        slot = self._slots.get(key)
        if slot is None or slot.commit is None:
            return
        self._log_bytes -= len(slot.commit)
        self._budget.give(len(slot.commit))
        slot.commit = slot.next = None
        self._log.remove(key)

    def _add(self, key: bytes, owner: int) -> None:
        self._slots[key] = _Slot(owner)
        self._count(owner, 1)

    def _remove(self, key: bytes) -> None:
        self._forget(key)
        slot = self._slots.pop(key)
        if slot.is_open:
            self._count(slot.owner, -1)

    def _count(self, owner: int, delta: int) -> None:
        count = self._open_by_owner.get(owner, 0) + delta
        if count:
            self._open_by_owner[owner] = count
        else:
            del self._open_by_owner[owner]
