"""Message framing (RFC 9420 section 6) and the transcript-hash inputs (section 8.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self, TypeAlias

from ..codec import Reader, Writer
from ..errors import DecodeError
from ._layout import (
    OPAQUE,
    U16,
    U32,
    U64,
    Checked,
    ClosedEnum,
    Encodable,
    Fixed,
    Nested,
    Select,
    Struct,
    Variant,
    When,
    WireLike,
    ZeroPadding,
    decode_exactly,
    layout,
)
from .commit import Commit
from .enums import MAC, ContentType, ProtocolVersion, SenderType, WireFormat
from .group_info import GroupContext
from .proposal import PROPOSAL, Proposal


@layout(
    ("sender_type", ClosedEnum(SenderType)),
    Select(
        "sender_type",
        {
            SenderType.member: [("index", U32)],
            SenderType.external: [("index", U32)],
            SenderType.new_member_proposal: [],
            SenderType.new_member_commit: [],
        },
    ),
)
@dataclass(frozen=True, slots=True)
class Sender(Struct):
    """RFC 9420 section 6. ``index`` is the leaf index (member), the external-senders
    index (external), and None for the two new-member types."""

    sender_type: SenderType
    index: int | None = None

    @classmethod
    def member(cls, leaf_index: int) -> Sender:
        return cls(SenderType.member, leaf_index)

    @classmethod
    def external(cls, sender_index: int) -> Sender:
        return cls(SenderType.external, sender_index)

    @classmethod
    def new_member_proposal(cls) -> Sender:
        return cls(SenderType.new_member_proposal)

    @classmethod
    def new_member_commit(cls) -> Sender:
        return cls(SenderType.new_member_commit)


Content: TypeAlias = bytes | Proposal | Commit
"""Framed content: application data (bytes), a Proposal or a Commit (RFC 9420 section 6)."""

CONTENT_ARMS: dict[ContentType, WireLike] = {
    ContentType.application: OPAQUE,
    ContentType.proposal: PROPOSAL,
    ContentType.commit: Commit,
}
"""``select (content_type)`` of the framed content: the layout of each content type."""


def content_type_of(content: Content) -> ContentType:
    """The ContentType that a content value is framed with."""
    if isinstance(content, bytes):
        return ContentType.application
    if isinstance(content, Commit):
        return ContentType.commit
    return ContentType.proposal


FRAMING_WIRE_FORMAT = ClosedEnum(
    WireFormat,
    U16,
    only=(WireFormat.mls_public_message, WireFormat.mls_private_message),
    reason="does not frame content",
)
"""The wire formats that frame content (PublicMessage, PrivateMessage)."""


@layout(
    ("group_id", OPAQUE),
    ("epoch", U64),
    ("sender", Sender),
    ("authenticated_data", OPAQUE),
    ("content", Variant("content_type", ClosedEnum(ContentType), CONTENT_ARMS)),
)
@dataclass(frozen=True, slots=True)
class FramedContent(Struct):
    """RFC 9420 section 6. ``content_type`` is derived from ``content``."""

    group_id: bytes
    epoch: int
    sender: Sender
    authenticated_data: bytes
    content: Content

    @property
    def content_type(self) -> ContentType:
        return content_type_of(self.content)


class _ByContentType(Encodable):
    """Base of the structures whose layout depends on the outer content type."""

    __slots__ = ()

    @classmethod
    def decode(cls, r: Reader, content_type: ContentType) -> Self:
        value: Self = r.decode_with(cls._wire_decode, content_type)
        return value

    @classmethod
    def from_bytes(cls, data: bytes, content_type: ContentType) -> Self:
        value: Self = decode_exactly(cls._wire_decode, data, cls.__name__, content_type)
        return value


@layout(
    ("signature", OPAQUE),
    ("confirmation_tag", When("content_type", {ContentType.commit}, OPAQUE, "for commits")),
    params=("content_type",),
)
@dataclass(frozen=True, slots=True)
class FramedContentAuthData(_ByContentType):
    """RFC 9420 section 6.1: ``confirmation_tag`` is present iff the content is a commit.

    Decoding needs the content type: ``decode(r, content_type)``.
    """

    signature: bytes
    confirmation_tag: MAC | None = None

    def check_content_type(self, content_type: ContentType) -> None:
        """ValueError unless the tag's presence matches ``content_type``."""
        if (self.confirmation_tag is not None) != (content_type == ContentType.commit):
            raise ValueError("confirmation_tag must be present exactly for commits")


def _sender_has_context(sender: Sender) -> bool:
    t = sender.sender_type
    return t == SenderType.member or t == SenderType.new_member_commit


def framed_content_tbs(
    wire_format: WireFormat, content: FramedContent, context: GroupContext | bytes | None
) -> bytes:
    """FramedContentTBS (RFC 9420 section 6.1), signed with label "FramedContentTBS".

    ``context`` (a GroupContext or its encoding) is required when the sender is
    ``member`` or ``new_member_commit`` and ignored for the other sender types,
    so callers can always pass the current context.
    """
    w = Writer()
    w.u16(ProtocolVersion.mls10)
    w.u16(wire_format)
    content.encode(w)
    if _sender_has_context(content.sender):
        if context is None:
            raise ValueError("FramedContentTBS for this sender needs the GroupContext")
        if isinstance(context, bytes):
            w.raw(context)
        else:
            context.encode(w)
    return w.finish()


def authenticated_content_tbm(content_tbs: bytes, auth: FramedContentAuthData) -> bytes:
    """AuthenticatedContentTBM (RFC 9420 section 6.2): the membership-tag MAC input."""
    return content_tbs + auth.to_bytes()


def _decoded_commit(content: FramedContent) -> None:
    if not isinstance(content.content, Commit):
        raise DecodeError("ConfirmedTranscriptHashInput content is not a commit")


def _encodable_commit(content: FramedContent) -> None:
    if not isinstance(content.content, Commit):
        raise ValueError("ConfirmedTranscriptHashInput content must be a commit")


@layout(
    ("wire_format", FRAMING_WIRE_FORMAT),
    ("content", Checked(FramedContent, decode=_decoded_commit, encode=_encodable_commit)),
    ("signature", OPAQUE),
)
@dataclass(frozen=True, slots=True)
class ConfirmedTranscriptHashInput(Struct):
    """RFC 9420 section 8.2 (``content`` must be a commit)."""

    wire_format: WireFormat
    content: FramedContent
    signature: bytes


@layout(("confirmation_tag", OPAQUE))
@dataclass(frozen=True, slots=True)
class InterimTranscriptHashInput(Struct):
    """RFC 9420 section 8.2."""

    confirmation_tag: MAC


@layout(
    ("wire_format", FRAMING_WIRE_FORMAT),
    ("content", FramedContent),
    ("auth", Nested(FramedContentAuthData, content_type="content.content_type")),
)
@dataclass(frozen=True, slots=True)
class AuthenticatedContent(Struct):
    """RFC 9420 section 6; its encoding is also the ProposalRef hash input (5.2)."""

    wire_format: WireFormat
    content: FramedContent
    auth: FramedContentAuthData

    def tbs(self, context: GroupContext | bytes | None) -> bytes:
        """FramedContentTBS for this content; see :func:`framed_content_tbs`."""
        return framed_content_tbs(self.wire_format, self.content, context)

    def confirmed_transcript_hash_input(self) -> ConfirmedTranscriptHashInput:
        return ConfirmedTranscriptHashInput(self.wire_format, self.content, self.auth.signature)

    def interim_transcript_hash_input(self) -> InterimTranscriptHashInput:
        if self.auth.confirmation_tag is None:
            raise ValueError("only commits have an interim transcript hash input")
        return InterimTranscriptHashInput(self.auth.confirmation_tag)


@layout(
    ("content", FramedContent),
    ("auth", Nested(FramedContentAuthData, content_type="content.content_type")),
    (
        "membership_tag",
        When("content.sender.sender_type", {SenderType.member}, OPAQUE, "for member senders"),
    ),
)
@dataclass(frozen=True, slots=True)
class PublicMessage(Struct):
    """RFC 9420 section 6.2: ``membership_tag`` is present iff the sender is a member."""

    content: FramedContent
    auth: FramedContentAuthData
    membership_tag: MAC | None = None

    def authenticated_content(self) -> AuthenticatedContent:
        return AuthenticatedContent(WireFormat.mls_public_message, self.content, self.auth)

    def tbm(self, context: GroupContext | bytes) -> bytes:
        """AuthenticatedContentTBM, the input to the membership-tag MAC (section 6.2)."""
        tbs = framed_content_tbs(WireFormat.mls_public_message, self.content, context)
        return authenticated_content_tbm(tbs, self.auth)


@layout(
    ("group_id", OPAQUE),
    ("epoch", U64),
    ("content_type", ClosedEnum(ContentType)),
    ("authenticated_data", OPAQUE),
    ("encrypted_sender_data", OPAQUE),
    ("ciphertext", OPAQUE),
)
@dataclass(frozen=True, slots=True)
class PrivateMessage(Struct):
    """RFC 9420 section 6.3."""

    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes
    encrypted_sender_data: bytes
    ciphertext: bytes

    def content_aad(self) -> PrivateContentAAD:
        return PrivateContentAAD(
            self.group_id, self.epoch, self.content_type, self.authenticated_data
        )

    def sender_data_aad(self) -> SenderDataAAD:
        return SenderDataAAD(self.group_id, self.epoch, self.content_type)


@layout(
    ("content", Variant("content_type", None, CONTENT_ARMS, by="content_type")),
    ("auth", Nested(FramedContentAuthData, content_type="content_type")),
    ("padding", ZeroPadding()),
    params=("content_type",),
)
@dataclass(frozen=True, slots=True)
class PrivateMessageContent(_ByContentType):
    """RFC 9420 section 6.3.1: content, auth, then ``padding`` zero octets.

    Decoding needs the content type (``decode(r, content_type)``), consumes the
    rest of the reader and rejects non-zero padding.
    """

    content: Content
    auth: FramedContentAuthData
    padding: int = 0

    @property
    def content_type(self) -> ContentType:
        return content_type_of(self.content)


@layout(
    ("group_id", OPAQUE),
    ("epoch", U64),
    ("content_type", ClosedEnum(ContentType)),
    ("authenticated_data", OPAQUE),
)
@dataclass(frozen=True, slots=True)
class PrivateContentAAD(Struct):
    """RFC 9420 section 6.3.1: AAD for the content encryption."""

    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes


@layout(("leaf_index", U32), ("generation", U32), ("reuse_guard", Fixed(4)))
@dataclass(frozen=True, slots=True)
class SenderData(Struct):
    """RFC 9420 section 6.3.2 (``reuse_guard`` is exactly 4 bytes)."""

    leaf_index: int
    generation: int
    reuse_guard: bytes


@layout(("group_id", OPAQUE), ("epoch", U64), ("content_type", ClosedEnum(ContentType)))
@dataclass(frozen=True, slots=True)
class SenderDataAAD(Struct):
    """RFC 9420 section 6.3.2: AAD for the sender-data encryption."""

    group_id: bytes
    epoch: int
    content_type: ContentType
