"""The MLSMessage envelope (RFC 9420 section 6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ._layout import U16, ClosedEnum, Struct, Variant, layout
from .enums import ProtocolVersion, WireFormat
from .framing import PrivateMessage, PublicMessage
from .group_info import GroupInfo
from .key_package import KeyPackage
from .welcome import Welcome

MessageBody: TypeAlias = PublicMessage | PrivateMessage | Welcome | GroupInfo | KeyPackage
"""What an MLSMessage can carry (RFC 9420 section 6)."""

_WIRE_FORMAT_OF: dict[type[Struct], WireFormat] = {
    PublicMessage: WireFormat.mls_public_message,
    PrivateMessage: WireFormat.mls_private_message,
    Welcome: WireFormat.mls_welcome,
    GroupInfo: WireFormat.mls_group_info,
    KeyPackage: WireFormat.mls_key_package,
}

_BODIES = {wire_format: cls for cls, wire_format in _WIRE_FORMAT_OF.items()}


@layout(
    ("version", ClosedEnum(ProtocolVersion, U16)),
    ("body", Variant("wire_format", ClosedEnum(WireFormat, U16), _BODIES)),
)
@dataclass(frozen=True, slots=True)
class MLSMessage(Struct):
    """RFC 9420 section 6: version (always mls10) and a body; ``wire_format`` is derived."""

    body: MessageBody

    @property
    def version(self) -> ProtocolVersion:
        return ProtocolVersion.mls10

    @property
    def wire_format(self) -> WireFormat:
        return _WIRE_FORMAT_OF[type(self.body)]
