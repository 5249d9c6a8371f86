"""Meeting roles and the commit policy every member enforces.

Installed as the MLS group's policy hook (RFC 9420 leaves "who may commit
what" to the application, section 12.4), so each engine applies it both to
the commits it creates and to every commit it receives; a commit that
breaks it is refused and never changes the group.

* The **host** is the member with the lowest leaf index.
* Add: only the host, and never while the meeting is locked.
* GroupContextExtensions: only the host, and only to change the meeting
  policy extension (type 0xF0C1, private use, RFC 9420 section 17.3).
* Remove: the host; or, when the commit removes the host, the lowest-leaf
  member remaining after the commit (deterministic handover).
* A commit with no proposals (a key refresh with an UpdatePath, section
  12.4) may come from any member.
* Refused: standalone proposals (every change is committed by value),
  proposals by reference, external commits, Update (by value), PreSharedKey,
  ReInit and ExternalInit.

The meeting policy extension holds ``msgpack {"locked": bool, "auto_admit": bool}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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

MEETING_POLICY_EXTENSION_TYPE = 0xF0C1
MLS_CIPHER_SUITE = 1
"""MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (RFC 9420 section 17.1)."""

CAPABILITIES = Capabilities(
    versions=(ProtocolVersion.mls10,),
    cipher_suites=(MLS_CIPHER_SUITE,),
    extensions=(MEETING_POLICY_EXTENSION_TYPE,),
    credentials=(CredentialType.basic,),
)
"""Leaf capabilities of every Clave member: the group context carries 0xF0C1."""


class MeetingPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Meeting settings every member agrees on (they live in the GroupContext)."""

    locked: bool = False
    auto_admit: bool = False

    def to_extension(self) -> Extension:
        return Extension(MEETING_POLICY_EXTENSION_TYPE, _encoder.encode(self))


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(MeetingPolicy)


def meeting_policy(extensions: Iterable[Extension]) -> MeetingPolicy:
    """The policy in a GroupContext's extensions (defaults if absent; PolicyError if bad)."""
    exts = list(extensions)
    found = [e for e in exts if e.extension_type == MEETING_POLICY_EXTENSION_TYPE]
    if not found:
        return MeetingPolicy()
    if len(found) > 1:
        raise PolicyError("the meeting policy extension appears more than once")
    try:
        return _decoder.decode(found[0].extension_data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 raises the latter
        raise PolicyError(f"malformed meeting policy extension: {exc}") from None


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


def host_of(leaves: Iterable[int]) -> int | None:
    """The host: the lowest leaf index among the members (None for no members)."""
    return min(leaves, default=None)


def remover_of(leaves: Iterable[int], removed: Iterable[int]) -> int | None:
    """Who commits the removal of ``removed``: the host unless it is among them,
    else the lowest-leaf member that remains (None if nobody remains)."""
    members = set(leaves)
    gone = set(removed) & members
    host = host_of(members)
    if host is None or host not in gone:
        return host
    return host_of(members - gone)


def _others(extensions: Iterable[Extension]) -> list[Extension]:
    return [e for e in extensions if e.extension_type != MEETING_POLICY_EXTENSION_TYPE]


def check(info: PolicyInput) -> None:
    """The MLS policy hook: raise :class:`PolicyError` unless the change is allowed."""
    if info.kind == "proposal":
        raise PolicyError(
            "standalone proposals are not accepted in a Clave meeting; "
            "every change is committed by value"
        )
    if info.kind != "commit" or info.committer is None:
        raise PolicyError(f"{info.kind} is not accepted: members join only through a Welcome")
    committer = info.committer
    leaves = [m.leaf_index for m in info.roster]
    host = host_of(leaves)
    adds = 0
    removed: set[int] = set()
    new_policies: list[MeetingPolicy] = []
    for sender, proposal in info.proposals:
        if sender != committer:
            raise PolicyError(
                f"the commit includes a proposal of leaf {sender} by reference; "
                "Clave commits every change by value"
            )
        if isinstance(proposal, Add):
            adds += 1
        elif isinstance(proposal, Remove):
            removed.add(proposal.removed)
        elif isinstance(proposal, GroupContextExtensions):
            if _others(proposal.extensions) != _others(info.extensions):
                raise PolicyError(
                    "GroupContextExtensions may only change the meeting policy extension"
                )
            new_policies.append(meeting_policy(proposal.extensions))
        else:
            raise PolicyError(f"{type(proposal).__name__} proposals are not accepted")
    current = meeting_policy(info.extensions)
    if new_policies and committer != host:
        raise PolicyError(
            f"only the host (leaf {host}) may change the meeting settings, not leaf {committer}"
        )
    if adds:
        if committer != host:
            raise PolicyError(f"only the host (leaf {host}) may add members, not leaf {committer}")
        if current.locked or any(p.locked for p in new_policies):
            raise PolicyError("the meeting is locked: no one can be added")
    if removed and committer != host:
        allowed = remover_of(leaves, removed)
        if host not in removed or committer != allowed:
            raise PolicyError(
                f"leaf {committer} may not remove leaves {sorted(removed)}: only the host "
                f"(leaf {host}) may, or the lowest remaining member when the host is removed"
            )
