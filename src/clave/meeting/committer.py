"""Who commits what, and when (RFC 9420 section 12.4 under the meeting policy).

:func:`plan` turns the queued user actions and what presence knows into the
one commit this member should send now, or None. It follows the same rules
that every receiver enforces (:class:`clave.meeting.policy.CommitRules`), so an
honest member never sends a commit the others refuse:

* The **primary host** (the first host in the policy's list that is present)
  removes departed members, answers requests automatically (auto-admit) and
  keeps up to ``WANTED_SUCCESSORS`` successors, chosen among the longest
  present members that do not announce a recording, and certified with its own
  chain. Every host commits its own
  user's actions (admit, remove, lock, roles).
* A crashed owner-host is removed by another host only once it has been
  silent as long as the takeover rule asks.
* A **successor** takes over when every host (and every successor ahead of
  it) has been silent for ``TAKEOVER_AFTER`` seconds (``TAKEOVER_AFTER_GONE``
  once they departed; a host that is away is waited for until its resume
  window runs out, since it may come back).
* A leaving **only host** first hands the role over by commit (its first
  successor, else the longest-present member); the owner always gives up its
  host role before it leaves.
* Anyone may commit a key refresh, never two in a row.
* A newcomer whose identity key is already a member's (someone admitted again
  after being stranded) replaces that member's old leaf in the same commit.
* Admissions are **batched**: one commit adds every admitted request up to
  ``Queue.batch`` newcomers, fewer when its Welcome (one for all of them, sent
  once with every newcomer's connection named, carrying the ratchet tree) would
  exceed ``Queue.welcome_budget`` bytes; the rest go in the next commit.

Exactly one commit of ours is in flight at a time (:class:`Inflight`); the
relay orders it by the epoch credential (docs/PROTOCOL.md, "Ordering").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..mls.events import Member
from .errors import RoleError
from .lobby import LobbyEntry
from .policy import TAKEOVER_AFTER, TAKEOVER_AFTER_GONE, MeetingPolicy
from .presence import Presence
from .roles import HostEntry, extend

WANTED_SUCCESSORS = 2
WELCOME_BYTES_PER_MEMBER = 300
"""Estimated Welcome bytes per member of the new epoch (measured: 287 KB at 1000 members
with 12-character names; the ratchet tree's leaves dominate)."""


@dataclass(slots=True)
class Queue:
    """Changes the user (or the engine) asked for, waiting to be committed."""

    admit: list[int] = field(default_factory=list)
    """Lobby request ids, in the order the host admitted them."""
    kick: set[int] = field(default_factory=set)
    settings: dict[str, bool] = field(default_factory=dict)
    """``locked`` / ``auto_admit`` targets."""
    promote: set[bytes] = field(default_factory=set)
    """Signature keys to make hosts."""
    demote: set[bytes] = field(default_factory=set)
    refresh: bool = False
    handover: bool = False
    """We are leaving: give up our host role first."""
    batch: int = 50
    """Newcomers one commit adds at most."""
    welcome_budget: int = 2 * 1024 * 1024
    """Bytes of the Welcome (one for all newcomers) one commit may cost us at most."""


def batch_size(queue: Queue, members: int, waiting: int) -> int:
    """How many of ``waiting`` admitted requests the next commit adds (at least one)."""
    k = min(waiting, max(1, queue.batch))
    while k > 1 and WELCOME_BYTES_PER_MEMBER * (members + k) > queue.welcome_budget:
        k -= 1
    return k


@dataclass(frozen=True, slots=True)
class Plan:
    """One commit to make."""

    adds: tuple[LobbyEntry, ...] = ()
    removes: frozenset[int] = frozenset()
    policy: MeetingPolicy | None = None
    """The new policy, if it changes."""
    refresh: bool = False
    takeover: bool = False
    handover: bool = False

    @property
    def empty(self) -> bool:
        return not (self.adds or self.removes or self.policy is not None or self.refresh)


@dataclass(slots=True)
class Inflight:
    """Our commit sent to the relay, until ``CommitAccepted`` or a refusal."""

    plan: Plan
    commit: bytes
    welcome: bytes | None
    cred: bytes
    next: bytes
    """SHA-256 of the next epoch's credential (sent with the commit, and again after a
    reconnection)."""
    sent_at: float
    superseded: bool = False
    """Another commit won our epoch: ours is void, its refusal still to come."""


@dataclass(frozen=True, slots=True)
class View:
    """What :func:`plan` needs to know about this member and the group."""

    me: int
    my_key: bytes
    my_private: bytes
    group_id: bytes
    policy: MeetingPolicy
    members: Mapping[int, Member]
    presence: Presence
    lobby: Mapping[int, LobbyEntry]
    seniority: Callable[[int], tuple[int, int]]
    """Sort key: smaller means present longer."""
    now: float
    last_refresh_by: int | None
    fingerprints: Mapping[int, str] = field(default_factory=dict)
    """Leaf -> identity fingerprint of each member."""
    recorders: frozenset[int] = frozenset()
    """Leaves announcing that they record (``rec``): never made successors or heirs (a
    recording bot is not someone to hand the meeting to)."""


def _leaf_of(view: View, key: bytes) -> int | None:
    return next((i for i, m in view.members.items() if m.signature_key == key), None)


def _wait_for(view: View, leaf: int) -> float:
    """Seconds until ``leaf`` has been quiet long enough to take over from it: a leaf
    that is away is waited for until its resume window has run out (it may come back)."""
    presence = view.presence
    away_until = presence.away.get(leaf)
    if away_until is not None:
        return max(away_until - view.now, 0.0) + 0.001  # decided once it departs
    wait = TAKEOVER_AFTER_GONE if leaf in presence.departed else TAKEOVER_AFTER
    return wait - presence.quiet_for(leaf, view.now)


def _silent_enough(view: View, leaf: int) -> bool:
    return _wait_for(view, leaf) <= 0


def primary_host(
    policy: MeetingPolicy, members: Mapping[int, Member], presence: Presence
) -> bytes | None:
    """The first listed host that is a member and has not departed."""
    for entry in policy.hosts:
        leaf = next((i for i, m in members.items() if m.signature_key == entry.key), None)
        if leaf is not None and leaf not in presence.departed:
            return entry.key
    return None


def plan(view: View, queue: Queue) -> Plan | None:
    """The commit this member should make now (None: nothing to do, or not ours to do)."""
    host = view.policy.is_host(view.my_key)
    result = _plan_host(view, queue) if host else _plan_takeover(view)
    idle = result is None or result.empty
    if idle and queue.refresh and view.last_refresh_by != view.me:
        result = Plan(refresh=True)
    return None if result is None or result.empty else result


def _plan_host(view: View, queue: Queue) -> Plan:
    policy = view.policy
    members = view.members
    primary = primary_host(policy, members, view.presence) == view.my_key
    removes = {leaf for leaf in queue.kick if leaf in members}
    if primary:
        removes |= view.presence.departed & set(members)
    target = policy.replace(**queue.settings) if queue.settings else policy
    adds: list[LobbyEntry] = []
    if not target.locked:
        adds = [view.lobby[r] for r in queue.admit if r in view.lobby and r in view.presence.peers]
        adds = adds[: batch_size(queue, len(members), len(adds))]
    # Someone admitted again (stranded while away, see clave.meeting.resume) takes the
    # place of their old leaf: the same identity key, so the same person.
    returning = {e.member.fingerprint for e in adds}
    removes |= {leaf for leaf, fp in view.fingerprints.items() if fp in returning}
    removes.discard(view.me)
    owner_leaf = _leaf_of(view, policy.owner)
    if (
        owner_leaf in removes
        and policy.is_host(policy.owner)
        and not _silent_enough(view, owner_leaf)
    ):
        removes.discard(owner_leaf)  # retried once the takeover silence has passed
    gone_keys = {members[leaf].signature_key for leaf in removes}
    hosts = [h for h in target.hosts if h.key not in gone_keys and h.key not in queue.demote]
    recording = {members[leaf].signature_key for leaf in view.recorders if leaf in members}
    successors = [
        s for s in target.successors if s.key not in gone_keys and s.key not in recording
    ]
    mine = policy.host_entry(view.my_key)
    assert mine is not None
    for key in sorted(queue.promote):
        if key not in gone_keys and all(h.key != key for h in hosts):
            successors = [s for s in successors if s.key != key]
            hosts.append(
                policy.host_entry(key) or extend(mine, view.my_private, view.group_id, key)
            )
    handover = queue.handover
    if handover:
        hosts = [h for h in hosts if h.key != view.my_key]
        if not hosts:
            heir = _heir(view, successors, removes)
            if heir is not None:
                successors = [s for s in successors if s.key != heir]
                entry = policy.host_entry(heir) or extend(
                    mine, view.my_private, view.group_id, heir
                )
                hosts.append(entry)
        if not hosts:  # nobody else to hand over to: keep the role, leave as the last one
            hosts = [mine]
            handover = False
    if primary and not handover:
        successors = _fill_successors(view, hosts, successors, removes, adds, mine)
    new = target.replace(hosts=tuple(hosts), successors=tuple(successors))
    return Plan(
        adds=tuple(adds),
        removes=frozenset(removes),
        policy=None if new == policy else new,
        handover=handover,
    )


def _heir(view: View, successors: list[HostEntry], removes: set[int]) -> bytes | None:
    present = [s.key for s in successors if (_leaf_of(view, s.key) or -1) not in removes]
    if present:
        return present[0]
    others = [
        leaf
        for leaf in view.members
        if leaf != view.me
        and leaf not in removes
        and leaf not in view.presence.departed
        and leaf not in view.recorders
    ]
    if not others:
        return None
    return view.members[min(others, key=view.seniority)].signature_key


def _fill_successors(
    view: View,
    hosts: list[HostEntry],
    successors: list[HostEntry],
    removes: set[int],
    adds: list[LobbyEntry],
    mine: HostEntry,
) -> list[HostEntry]:
    if len(successors) >= WANTED_SUCCESSORS:
        return successors
    taken = {h.key for h in hosts} | {s.key for s in successors}
    candidates = [
        leaf
        for leaf, m in view.members.items()
        if leaf not in removes
        and leaf not in view.presence.departed
        and leaf not in view.recorders
        and m.signature_key not in taken
    ]
    keys = [view.members[leaf].signature_key for leaf in sorted(candidates, key=view.seniority)]
    keys += [e.signature_key for e in adds if e.signature_key not in taken]
    out = list(successors)
    for key in keys[: WANTED_SUCCESSORS - len(out)]:
        try:
            out.append(extend(mine, view.my_private, view.group_id, key))
        except RoleError:  # our chain is at its length limit: we cannot certify anyone
            break
    return out


def _ahead(view: View) -> tuple[int, list[int]] | None:
    """Our rank among the successors and the present leaves ahead of us (every host and
    every earlier successor); None if we are no successor."""
    policy = view.policy
    keys = policy.successor_keys
    if view.my_key not in keys:
        return None
    rank = keys.index(view.my_key)
    leaves = [_leaf_of(view, k) for k in [h.key for h in policy.hosts] + list(keys[:rank])]
    return rank, [leaf for leaf in leaves if leaf is not None]


def _plan_takeover(view: View) -> Plan | None:
    found = _ahead(view)
    if found is None:
        return None
    rank, present = found
    if not all(_silent_enough(view, leaf) for leaf in present):
        return None
    policy = view.policy
    new = policy.replace(hosts=(policy.successors[rank],), successors=policy.successors[rank + 1 :])
    return Plan(removes=frozenset(present), policy=new, takeover=True)


def takeover_wait(view: View) -> float | None:
    """Seconds until :func:`plan` could take over (None: we are no successor)."""
    found = _ahead(view)
    if found is None:
        return None
    return max(0.0, max((_wait_for(view, leaf) for leaf in found[1]), default=0.0))
