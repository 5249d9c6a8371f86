"""Commits (RFC 9420 section 12.4)."""

from __future__ import annotations

from dataclasses import dataclass

from ._layout import OPAQUE, ClosedEnum, Optional, Select, Struct, Vector, layout
from .enums import HashReference, ProposalOrRefType
from .proposal import PROPOSAL, Proposal
from .update_path import UpdatePath


@layout(
    ("type", ClosedEnum(ProposalOrRefType)),
    Select(
        "type",
        {
            ProposalOrRefType.proposal: [("proposal", PROPOSAL)],
            ProposalOrRefType.reference: [("reference", OPAQUE)],
        },
    ),
)
@dataclass(frozen=True, slots=True)
class ProposalOrRef(Struct):
    """RFC 9420 section 12.4: exactly one of ``proposal`` / ``reference`` is set."""

    proposal: Proposal | None = None
    reference: HashReference | None = None

    @classmethod
    def by_value(cls, proposal: Proposal) -> ProposalOrRef:
        return cls(proposal=proposal)

    @classmethod
    def by_reference(cls, reference: HashReference) -> ProposalOrRef:
        return cls(reference=reference)

    @property
    def type(self) -> ProposalOrRefType:
        if self.proposal is not None:
            return ProposalOrRefType.proposal
        return ProposalOrRefType.reference


@layout(("proposals", Vector(ProposalOrRef)), ("path", Optional(UpdatePath)))
@dataclass(frozen=True, slots=True)
class Commit(Struct):
    """RFC 9420 section 12.4."""

    proposals: tuple[ProposalOrRef, ...] = ()
    path: UpdatePath | None = None
