"""Proposals (RFC 9420 section 12.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from ..codec import Reader, Writer
from ._layout import (
    OPAQUE,
    U16,
    U32,
    ClosedEnum,
    OpenEnum,
    Struct,
    Variant,
    compile_type,
    decode_exactly,
    layout,
)
from .enums import ProposalType, ProtocolVersion
from .extension import EXTENSIONS, Extension
from .key_package import KeyPackage
from .psk import PreSharedKeyID
from .tree import LeafNode


@layout(("key_package", KeyPackage))
@dataclass(frozen=True, slots=True)
class Add(Struct):
    """RFC 9420 section 12.1.1."""

    proposal_type: ClassVar[ProposalType] = ProposalType.add
    key_package: KeyPackage


@layout(("leaf_node", LeafNode))
@dataclass(frozen=True, slots=True)
class Update(Struct):
    """RFC 9420 section 12.1.2."""

    proposal_type: ClassVar[ProposalType] = ProposalType.update
    leaf_node: LeafNode


@layout(("removed", U32))
@dataclass(frozen=True, slots=True)
class Remove(Struct):
    """RFC 9420 section 12.1.3."""

    proposal_type: ClassVar[ProposalType] = ProposalType.remove
    removed: int


@layout(("psk", PreSharedKeyID))
@dataclass(frozen=True, slots=True)
class PreSharedKey(Struct):
    """RFC 9420 section 12.1.4."""

    proposal_type: ClassVar[ProposalType] = ProposalType.psk
    psk: PreSharedKeyID


@layout(
    ("group_id", OPAQUE),
    ("version", OpenEnum(ProtocolVersion, U16)),
    ("cipher_suite", U16),
    ("extensions", EXTENSIONS),
)
@dataclass(frozen=True, slots=True)
class ReInit(Struct):
    """RFC 9420 section 12.1.5. ``version`` is a raw uint16 (may name a future version)."""

    proposal_type: ClassVar[ProposalType] = ProposalType.reinit
    group_id: bytes
    version: int
    cipher_suite: int
    extensions: tuple[Extension, ...] = ()


@layout(("kem_output", OPAQUE))
@dataclass(frozen=True, slots=True)
class ExternalInit(Struct):
    """RFC 9420 section 12.1.6."""

    proposal_type: ClassVar[ProposalType] = ProposalType.external_init
    kem_output: bytes


@layout(("extensions", EXTENSIONS))
@dataclass(frozen=True, slots=True)
class GroupContextExtensions(Struct):
    """RFC 9420 section 12.1.7."""

    proposal_type: ClassVar[ProposalType] = ProposalType.group_context_extensions
    extensions: tuple[Extension, ...]


Proposal: TypeAlias = (
    Add | Update | Remove | PreSharedKey | ReInit | ExternalInit | GroupContextExtensions
)
"""The ``Proposal`` struct (RFC 9420 section 12.1): one of the seven default proposal bodies.

Encode/decode the tagged form with :func:`encode_proposal` / :func:`decode_proposal`;
each body class's own ``encode``/``decode`` handle the untagged body.
"""

PROPOSAL_CLASSES: dict[ProposalType, type[Proposal]] = {
    cls.proposal_type: cls
    for cls in (Add, Update, Remove, PreSharedKey, ReInit, ExternalInit, GroupContextExtensions)
}

PROPOSAL = Variant(
    "Proposal.proposal_type",
    ClosedEnum(ProposalType, U16, unsupported=True),
    PROPOSAL_CLASSES,
)
"""``Proposal``: proposal_type then the body; unknown proposal types are rejected."""

_encode_proposal, _decode_proposal = compile_type(PROPOSAL, "Proposal")


def encode_proposal(w: Writer, proposal: Proposal) -> None:
    """``Proposal``: proposal_type then the body (RFC 9420 section 12.1)."""
    w.raw(_encode_proposal(proposal))


def decode_proposal(r: Reader) -> Proposal:
    """Decode a tagged ``Proposal``; unknown proposal types raise DecodeError."""
    proposal: Proposal = r.decode_with(_decode_proposal)
    return proposal


def proposal_to_bytes(proposal: Proposal) -> bytes:
    return _encode_proposal(proposal)


def proposal_from_bytes(data: bytes) -> Proposal:
    proposal: Proposal = decode_exactly(_decode_proposal, data, "Proposal")
    return proposal
