"""Extensions and the contents of the known extension types (RFC 9420 sections 7.2, 13)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Self

from ._layout import OPAQUE, U16, OpenEnum, Struct, Uints, Vector, layout
from .credential import Credential
from .enums import ExtensionType, HPKEPublicKey, SignaturePublicKey


@layout(("extension_type", OpenEnum(ExtensionType, U16)), ("extension_data", OPAQUE))
@dataclass(frozen=True, slots=True)
class Extension(Struct):
    """RFC 9420 section 7.2: any uint16 type with opaque data (unknown types kept)."""

    extension_type: int
    extension_data: bytes


EXTENSIONS = Vector(Extension)
"""``Extension extensions<V>``, as a tuple."""


def find_extension(extensions: Iterable[Extension], extension_type: int) -> Extension | None:
    """The first extension of the given type, or None."""
    for ext in extensions:
        if ext.extension_type == extension_type:
            return ext
    return None


class ExtensionContent(Struct):
    """Base of the content of a known extension type (RFC 9420 section 13)."""

    __slots__ = ()
    extension_type: ClassVar[ExtensionType]

    def to_extension(self) -> Extension:
        return Extension(self.extension_type, self.to_bytes())

    @classmethod
    def from_extension(cls, ext: Extension) -> Self:
        """Parse ``ext.extension_data``; ValueError if the type is wrong."""
        if ext.extension_type != cls.extension_type:
            raise ValueError(
                f"extension type {ext.extension_type} is not {cls.extension_type.name}"
            )
        return cls.from_bytes(ext.extension_data)


@layout(("application_id", OPAQUE))
@dataclass(frozen=True, slots=True)
class ApplicationId(ExtensionContent):
    """``opaque application_id<V>`` leaf-node extension (RFC 9420 section 5.3.3)."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.application_id
    application_id: bytes


@layout(
    ("extension_types", Uints(U16)),
    ("proposal_types", Uints(U16)),
    ("credential_types", Uints(U16)),
)
@dataclass(frozen=True, slots=True)
class RequiredCapabilities(ExtensionContent):
    """Group-context extension (RFC 9420 section 11.1); values are raw uint16."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.required_capabilities
    extension_types: tuple[int, ...] = ()
    proposal_types: tuple[int, ...] = ()
    credential_types: tuple[int, ...] = ()


@layout(("external_pub", OPAQUE))
@dataclass(frozen=True, slots=True)
class ExternalPub(ExtensionContent):
    """GroupInfo extension for external joins (RFC 9420 section 12.4.3.2)."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.external_pub
    external_pub: HPKEPublicKey


@layout(("signature_key", OPAQUE), ("credential", Credential))
@dataclass(frozen=True, slots=True)
class ExternalSender(Struct):
    """One entry of the ``external_senders`` extension (RFC 9420 section 12.1.8.1)."""

    signature_key: SignaturePublicKey
    credential: Credential


@layout(("senders", Vector(ExternalSender)))
@dataclass(frozen=True, slots=True)
class ExternalSenders(ExtensionContent):
    """``ExternalSender external_senders<V>`` (RFC 9420 section 12.1.8.1)."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.external_senders
    senders: tuple[ExternalSender, ...]
