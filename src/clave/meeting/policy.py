"""The meeting policy and the commit rules every member enforces.

The policy lives in the GroupContext (extension type 0xF0C2, private use,
RFC 9420 section 17.3), so all members agree on it and a joiner reads it from
the Welcome's GroupInfo. It names roles by key (:mod:`.roles`), never by leaf
position:

* ``owner``: the meeting owner's signature key (the invitation carries its
  fingerprint);
* ``hosts``: certified keys with the host role (admit, remove, lock, change
  roles); never empty;
* ``successors``: certified keys that take over, in order, when every host
  has fallen silent (a crash), see :class:`CommitRules`;
* ``locked`` and ``auto_admit``.

:class:`CommitRules` is installed as the MLS group's policy hook (RFC 9420
leaves "who may commit what" to the application, section 12.4), so every
engine applies it to the commits it creates and to every commit it receives;
a commit that breaks it is refused and never changes the group:

* Add: a host, never while the meeting is locked (before or after the commit).
* Remove: a host; the owner while it holds the host role only once it has
  been silent for ``TAKEOVER_ACCEPT`` seconds (a crash). Or a **takeover**:
  the first successor whose every predecessor (all hosts, earlier successors)
  has been silent for at least ``TAKEOVER_ACCEPT`` seconds at this member
  removes them and becomes the only host. While a host is present and sending
  (hosts and successors send an authenticated ``Alive`` every ``ALIVE_INTERVAL``), no member
  can trigger it.
* GroupContextExtensions: only the policy extension may change; by a host
  (only the owner may drop the owner's host entry), or by a takeover (hosts
  become the successor alone; ``locked``/``auto_admit`` unchanged).
* Every new policy: the same owner, every host and successor entry certified
  (chain from the owner, this group id), roles held only by members, no key
  twice, at most ``MAX_HOSTS`` hosts and ``MAX_SUCCESSORS`` successors.
* A commit without proposals (a key refresh, section 12.4): any member, but
  not twice in a row by the same member (the previous commit of the group must
  not be a refresh by the same leaf); the relay also limits commits per
  connection. The security code does not change on refreshes.
* Refused always: standalone proposals (every change is committed by value),
  proposals by reference, external commits, Update, PreSharedKey, ReInit and
  ExternalInit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated

import msgspec

from ..mls.errors import PolicyError
from ..mls.events import PolicyInput
from ..mls.structs import (
    Add,
    Capabilities,
    CredentialType,
    Extension,
    GroupContextExtensions,
    ProtocolVersion,
    Remove,
    RequiredCapabilities,
    find_extension,
)
from .errors import RoleError
from .roles import MLS_CIPHER_SUITE, HostEntry, Key, verify_entry

MEETING_POLICY_EXTENSION_TYPE = 0xF0C2
MAX_HOSTS = 16
MAX_SUCCESSORS = 3
ALIVE_INTERVAL = 2.0
"""Seconds between two authenticated ``Alive`` messages of a host (when it sent nothing else)."""
TAKEOVER_AFTER = 10.0
"""A successor takes over once every predecessor has been silent this long."""
TAKEOVER_AFTER_GONE = 6.0
"""... or this long once the predecessor departed (said Bye, or its resume window ran out)."""
TAKEOVER_ACCEPT = 5.0
"""Receivers accept a takeover only if each removed predecessor was silent this long."""

CAPABILITIES = Capabilities(
    versions=(ProtocolVersion.mls10,),
    cipher_suites=(MLS_CIPHER_SUITE,),
    extensions=(MEETING_POLICY_EXTENSION_TYPE,),
    credentials=(CredentialType.basic,),
)
"""Leaf capabilities of every Clave member: the group context carries 0xF0C2."""


class MeetingPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Meeting settings and roles every member agrees on (they live in the GroupContext)."""

    owner: Key
    hosts: Annotated[tuple[HostEntry, ...], msgspec.Meta(min_length=1, max_length=MAX_HOSTS)]
    successors: Annotated[tuple[HostEntry, ...], msgspec.Meta(max_length=MAX_SUCCESSORS)] = ()
    locked: bool = False
    auto_admit: bool = False

    def to_extension(self) -> Extension:
        return Extension(MEETING_POLICY_EXTENSION_TYPE, _encoder.encode(self))

    @property
    def host_keys(self) -> frozenset[bytes]:
        return frozenset(h.key for h in self.hosts)

    @property
    def successor_keys(self) -> tuple[bytes, ...]:
        return tuple(s.key for s in self.successors)

    def is_host(self, key: bytes) -> bool:
        return any(h.key == key for h in self.hosts)

    def host_entry(self, key: bytes) -> HostEntry | None:
        return next((h for h in (*self.hosts, *self.successors) if h.key == key), None)

    def replace(self, **changes: object) -> MeetingPolicy:
        return msgspec.structs.replace(self, **changes)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(MeetingPolicy)


class AuthorityError(PolicyError):
    """A member used a role it does not hold (add, remove, settings, takeover)."""


def meeting_policy(extensions: Iterable[Extension]) -> MeetingPolicy:
    """The policy in a GroupContext's extensions (PolicyError if absent, twice or malformed)."""
    found = [e for e in extensions if e.extension_type == MEETING_POLICY_EXTENSION_TYPE]
    if not found:
        raise PolicyError("the group has no Clave meeting policy extension")
    if len(found) > 1:
        raise PolicyError("the meeting policy extension appears more than once")
    try:
        return _decoder.decode(found[0].extension_data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 raises the latter
        raise PolicyError(f"malformed meeting policy extension: {exc}") from None


def validate_policy(policy: MeetingPolicy, group_id: bytes, members: Iterable[bytes]) -> None:
    """Every entry certified from the owner, held by a member, no key twice (PolicyError)."""
    keys = [e.key for e in (*policy.hosts, *policy.successors)]
    if len(set(keys)) != len(keys):
        raise PolicyError("a key appears twice among the meeting's hosts and successors")
    present = set(members)
    for entry in (*policy.hosts, *policy.successors):
        if entry.key not in present:
            raise PolicyError("the meeting policy gives a role to a key that is not a member")
        try:
            verify_entry(policy.owner, group_id, entry)
        except RoleError as exc:
            raise PolicyError(str(exc)) from None


def initial_extensions(policy: MeetingPolicy) -> tuple[Extension, ...]:
    """GroupContext extensions of a new meeting: the policy and required_capabilities."""
    required = RequiredCapabilities(extension_types=(MEETING_POLICY_EXTENSION_TYPE,))
    return (policy.to_extension(), required.to_extension())


def with_policy(extensions: Sequence[Extension], policy: MeetingPolicy) -> tuple[Extension, ...]:
    """``extensions`` with the meeting policy replaced (or appended)."""
    new = policy.to_extension()
    if find_extension(extensions, MEETING_POLICY_EXTENSION_TYPE) is None:
        return (*extensions, new)
    return tuple(
        new if e.extension_type == MEETING_POLICY_EXTENSION_TYPE else e for e in extensions
    )


def _others(extensions: Iterable[Extension]) -> list[Extension]:
    return [e for e in extensions if e.extension_type != MEETING_POLICY_EXTENSION_TYPE]


@dataclass(frozen=True, slots=True)
class _Change:
    """A commit's proposals, sorted by kind."""

    adds: tuple[bytes, ...]
    """Signature keys of added members."""
    removed: frozenset[int]
    new_policy: MeetingPolicy | None
    empty: bool


def _classify(info: PolicyInput) -> _Change:
    committer = info.committer
    adds: list[bytes] = []
    removed: set[int] = set()
    policies: list[MeetingPolicy] = []
    for sender, proposal in info.proposals:
        if sender != committer:
            raise PolicyError(
                f"the commit includes a proposal of leaf {sender} by reference; "
                "Clave commits every change by value"
            )
        if isinstance(proposal, Add):
            adds.append(proposal.key_package.leaf_node.signature_key)
        elif isinstance(proposal, Remove):
            removed.add(proposal.removed)
        elif isinstance(proposal, GroupContextExtensions):
            if _others(proposal.extensions) != _others(info.extensions):
                raise PolicyError(
                    "GroupContextExtensions may only change the meeting policy extension"
                )
            policies.append(meeting_policy(proposal.extensions))
        else:
            raise PolicyError(f"{type(proposal).__name__} proposals are not accepted")
    if len(policies) > 1:
        raise PolicyError("more than one GroupContextExtensions proposal")
    return _Change(
        tuple(adds), frozenset(removed), policies[0] if policies else None, not info.proposals
    )


@dataclass(frozen=True, slots=True)
class CommitRules:
    """The MLS policy hook of one member (see the module docstring).

    ``silent_for(leaf)`` is how long, by this member's clock, it has heard nothing
    authenticated from ``leaf`` (since it joined, for leaves it never heard);
    ``last_refresh_by`` is the leaf whose key refresh created the current epoch.
    """

    group_id: bytes
    silent_for: Callable[[int], float]
    last_refresh_by: int | None = None

    def __call__(self, info: PolicyInput) -> None:
        if info.kind == "proposal":
            raise PolicyError(
                "standalone proposals are not accepted in a Clave meeting; "
                "every change is committed by value"
            )
        if info.kind != "commit" or info.committer is None:
            raise PolicyError(f"{info.kind} is not accepted: members join only through a Welcome")
        committer = info.committer
        change = _classify(info)
        current = meeting_policy(info.extensions)
        keys = {m.leaf_index: m.signature_key for m in info.roster}
        key = keys.get(committer)
        if key is None:  # pragma: no cover - MLS only processes commits of members
            raise PolicyError(f"the committer (leaf {committer}) is not a member")
        if change.empty:
            if self.last_refresh_by == committer:
                raise PolicyError(
                    f"leaf {committer} refreshed its keys in the previous commit already; "
                    "a member may not commit two key refreshes in a row"
                )
            return
        if current.is_host(key):
            self._check_host(current, change, keys, key)
        else:
            self._check_takeover(current, change, keys, key, committer)
        members = {k for i, k in keys.items() if i not in change.removed} | set(change.adds)
        new = change.new_policy or current
        if new.owner != current.owner:
            raise PolicyError("the meeting owner never changes")
        validate_policy(new, self.group_id, members)
        if change.adds and (current.locked or new.locked):
            raise PolicyError("the meeting is locked: no one can be added")

    def _check_host(
        self, current: MeetingPolicy, change: _Change, keys: dict[int, bytes], key: bytes
    ) -> None:
        owner_is_host = current.is_host(current.owner)
        owner_leaf = next((i for i, k in keys.items() if k == current.owner), None)
        owner_removed = owner_leaf is not None and owner_leaf in change.removed
        if owner_removed and owner_is_host:
            assert owner_leaf is not None
            if self.silent_for(owner_leaf) < TAKEOVER_ACCEPT:
                raise AuthorityError(
                    "the meeting owner cannot be removed while it is a host and present"
                )
        new = change.new_policy
        dropped = new is not None and owner_is_host and not new.is_host(current.owner)
        if dropped and key != current.owner and not owner_removed:
            raise AuthorityError("only the owner can give up the owner's host role")

    def _check_takeover(
        self,
        current: MeetingPolicy,
        change: _Change,
        keys: dict[int, bytes],
        key: bytes,
        committer: int,
    ) -> None:
        refuse = (
            f"leaf {committer} is not a host: only hosts add, remove or change settings "
            "(or a successor, once every host has been silent for "
            f"{TAKEOVER_ACCEPT:g} s)"
        )
        if key not in current.successor_keys or change.adds or change.new_policy is None:
            raise AuthorityError(refuse)
        rank = current.successor_keys.index(key)
        ahead = current.host_keys | set(current.successor_keys[:rank])
        leaf_of = {k: i for i, k in keys.items()}
        ahead_leaves = {leaf_of[k] for k in ahead if k in leaf_of}
        if change.removed != ahead_leaves:
            raise AuthorityError(refuse)
        for leaf in ahead_leaves:
            if self.silent_for(leaf) < TAKEOVER_ACCEPT:
                raise AuthorityError(
                    f"leaf {committer} tried to take over while leaf {leaf}, ahead of it, is "
                    "still present and sending"
                )
        new = change.new_policy
        mine = current.successors[rank]
        if new.hosts != (mine,) or (new.locked, new.auto_admit) != (
            current.locked,
            current.auto_admit,
        ):
            raise PolicyError("a takeover makes the successor the only host and changes no setting")
