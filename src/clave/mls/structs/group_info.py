"""Group context and group info (RFC 9420 sections 8.1, 12.4.3)."""

from __future__ import annotations

from dataclasses import dataclass

from ._layout import OPAQUE, U16, U32, U64, ClosedEnum, Struct, layout, tbs_encoder
from .enums import MAC, ProtocolVersion
from .extension import EXTENSIONS, Extension


@layout(
    ("version", ClosedEnum(ProtocolVersion, U16)),
    ("cipher_suite", U16),
    ("group_id", OPAQUE),
    ("epoch", U64),
    ("tree_hash", OPAQUE),
    ("confirmed_transcript_hash", OPAQUE),
    ("extensions", EXTENSIONS),
)
@dataclass(frozen=True, slots=True)
class GroupContext(Struct):
    """RFC 9420 section 8.1 (only ``mls10`` is accepted when decoding)."""

    version: ProtocolVersion
    cipher_suite: int
    group_id: bytes
    epoch: int
    tree_hash: bytes
    confirmed_transcript_hash: bytes
    extensions: tuple[Extension, ...] = ()


@layout(
    ("group_context", GroupContext),
    ("extensions", EXTENSIONS),
    ("confirmation_tag", OPAQUE),
    ("signer", U32),
    ("signature", OPAQUE),
    signed=True,
)
@dataclass(frozen=True, slots=True)
class GroupInfo(Struct):
    """RFC 9420 section 12.4.3. :meth:`tbs` gives the signed GroupInfoTBS bytes."""

    group_context: GroupContext
    extensions: tuple[Extension, ...]
    confirmation_tag: MAC
    signer: int
    signature: bytes = b""

    def tbs(self) -> bytes:
        """GroupInfoTBS (RFC 9420 section 12.4.3), signed with label "GroupInfoTBS"."""
        return _GROUP_INFO_TBS(self)


_GROUP_INFO_TBS = tbs_encoder(GroupInfo)
