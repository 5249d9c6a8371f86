"""Proposal list validation and application (RFC 9420 sections 12.1-12.3).

:func:`validate_proposal_list` enforces the rules of section 12.2 for regular
and external commits; :func:`apply_proposals` applies a validated list to a
staged copy of the ratchet tree and group context in the order section 12.3
prescribes. Neither touches the group's live state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .errors import ProposalError
from .structs import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    Proposal,
    ProposalType,
    PSKType,
    ReInit,
    Remove,
    ResumptionPSKUsage,
    Update,
)

# Proposal types defined by RFC 9420 (section 17.4); others must be supported by all members.
DEFAULT_PROPOSAL_TYPES = frozenset(int(t) for t in ProposalType)

# Section 12.4: proposal types whose presence requires an UpdatePath.
PATH_REQUIRED = frozenset(
    {
        ProposalType.update,
        ProposalType.remove,
        ProposalType.external_init,
        ProposalType.group_context_extensions,
    }
)

# Section 12.1.8: the only proposal types an `external` sender may send.
EXTERNAL_SENDER_TYPES = frozenset(
    {
        ProposalType.add,
        ProposalType.remove,
        ProposalType.psk,
        ProposalType.reinit,
        ProposalType.group_context_extensions,
    }
)


@dataclass(frozen=True, slots=True)
class Sourced:
    """A proposal with the leaf index of the member that sent it (``None``: non-member)."""

    proposal: Proposal
    sender: int | None


def proposal_type(p: Proposal) -> int:
    return int(p.proposal_type)


def path_required(proposals: Sequence[Sourced]) -> bool:
    """Section 12.4: a path is required for an empty commit or a path-required type."""
    return not proposals or any(proposal_type(s.proposal) in PATH_REQUIRED for s in proposals)


@dataclass(slots=True)
class ListShape:
    """The proposals of a list grouped by type, in list order."""

    adds: list[Add] = field(default_factory=list)
    updates: list[tuple[int, Update]] = field(default_factory=list)
    removes: list[Remove] = field(default_factory=list)
    psks: list[PreSharedKey] = field(default_factory=list)
    reinits: list[ReInit] = field(default_factory=list)
    external_inits: list[ExternalInit] = field(default_factory=list)
    gces: list[GroupContextExtensions] = field(default_factory=list)


def _shape(proposals: Sequence[Sourced]) -> ListShape:
    shape = ListShape()
    for s in proposals:
        p = s.proposal
        if isinstance(p, Add):
            shape.adds.append(p)
        elif isinstance(p, Update):
            if s.sender is None:
                raise ProposalError("Update proposal from a non-member sender")
            shape.updates.append((s.sender, p))
        elif isinstance(p, Remove):
            shape.removes.append(p)
        elif isinstance(p, PreSharedKey):
            shape.psks.append(p)
        elif isinstance(p, ReInit):
            shape.reinits.append(p)
        elif isinstance(p, ExternalInit):
            shape.external_inits.append(p)
        elif isinstance(p, GroupContextExtensions):
            shape.gces.append(p)
        else:  # pragma: no cover - structs rejects unknown proposal types
            raise ProposalError(f"unsupported proposal type {proposal_type(p)}")
    return shape


def _check_psk(p: PreSharedKey, nh: int) -> None:
    """Section 12.1.4: PSK proposal validity."""
    psk = p.psk
    if psk.psktype == PSKType.resumption and psk.usage in (
        ResumptionPSKUsage.reinit,
        ResumptionPSKUsage.branch,
    ):
        raise ProposalError(
            f"PreSharedKey proposal with resumption usage {psk.usage.name} is only valid "
            "inside a reinit or branch Welcome"
        )
    if len(psk.psk_nonce) != nh:
        raise ProposalError(f"PreSharedKey psk_nonce is {len(psk.psk_nonce)} bytes, need {nh}")


def validate_proposal_list(
    proposals: Sequence[Sourced],
    *,
    committer: int | None,
    external: bool,
    nh: int,
    is_member_leaf: Callable[[int], bool],
    same_client_as_member: Callable[[Add], int | None],
    member_supports_proposal_type: Callable[[int], bool],
    current_version: int,
) -> ListShape:
    """Check a commit's proposal list against RFC 9420 section 12.2.

    ``same_client_as_member`` returns the leaf index of an existing member that
    the Add's KeyPackage represents (identical signature key or identity), or
    ``None``. ``member_supports_proposal_type`` says whether every member that
    stays in the group supports a non-default proposal type.
    """
    shape = _shape(proposals)
    if external:
        if len(shape.external_inits) != 1:
            raise ProposalError(
                f"external commit must contain exactly one ExternalInit, has "
                f"{len(shape.external_inits)}"
            )
        if len(shape.removes) > 1:
            raise ProposalError("external commit may contain at most one Remove")
        if shape.adds or shape.updates or shape.reinits or shape.gces:
            raise ProposalError(
                "external commit may contain only ExternalInit, one Remove and PreSharedKey"
            )
    else:
        if shape.external_inits:
            raise ProposalError("ExternalInit proposal in a regular commit")
        if shape.reinits and len(proposals) > 1:
            raise ProposalError("ReInit proposal together with other proposals")
    for reinit in shape.reinits:
        if reinit.version < current_version:
            raise ProposalError(f"ReInit to version {reinit.version} is lower than the group's")
    if len(shape.gces) > 1:
        raise ProposalError("more than one GroupContextExtensions proposal")

    touched: set[int] = set()
    for sender, _ in shape.updates:
        if sender == committer:
            raise ProposalError(f"Update proposal from the committer (leaf {sender})")
        if sender in touched:
            raise ProposalError(f"multiple Update/Remove proposals for leaf {sender}")
        touched.add(sender)
    for r in shape.removes:
        if not is_member_leaf(r.removed):
            raise ProposalError(f"Remove of leaf {r.removed}, which is blank or out of range")
        if r.removed == committer:
            raise ProposalError(f"Remove proposal removes the committer (leaf {r.removed})")
        if r.removed in touched:
            raise ProposalError(f"multiple Update/Remove proposals for leaf {r.removed}")
        touched.add(r.removed)

    removed = {r.removed for r in shape.removes}
    seen_sig: set[bytes] = set()
    seen_identity: set[bytes] = set()
    for a in shape.adds:
        leaf = a.key_package.leaf_node
        ident = leaf.credential.identity
        if leaf.signature_key in seen_sig or (ident and ident in seen_identity):
            raise ProposalError("multiple Add proposals for the same client")
        seen_sig.add(leaf.signature_key)
        if ident:
            seen_identity.add(ident)
        existing = same_client_as_member(a)
        if existing is not None and existing not in removed:
            raise ProposalError(
                f"Add proposal for a client already in the group (leaf {existing})"
            )

    psk_ids: set[bytes] = set()
    for p in shape.psks:
        _check_psk(p, nh)
        key = p.psk.to_bytes()
        if key in psk_ids:
            raise ProposalError("multiple PreSharedKey proposals with the same PreSharedKeyID")
        psk_ids.add(key)

    for s in proposals:
        t = proposal_type(s.proposal)
        if t not in DEFAULT_PROPOSAL_TYPES and not member_supports_proposal_type(t):
            raise ProposalError(f"proposal type {t} is not supported by every member")
    return shape

