"""Credentials (RFC 9420 section 5.3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._layout import OPAQUE, U16, ClosedEnum, Select, Struct, Vector, layout
from .enums import CredentialType


@layout(
    ("credential_type", ClosedEnum(CredentialType, U16, unsupported=True)),
    Select(
        "credential_type",
        {
            CredentialType.basic: [("identity", OPAQUE)],
            CredentialType.x509: [("certificates", Vector(OPAQUE))],
        },
    ),
)
@dataclass(frozen=True, slots=True)
class Credential(Struct):
    """RFC 9420 section 5.3. ``identity`` for basic, ``certificates`` (DER) for x509.

    Unknown credential types cannot be skipped (the encoding carries no length)
    and are rejected on decode.
    """

    credential_type: CredentialType
    identity: bytes = b""
    certificates: tuple[bytes, ...] = ()

    @classmethod
    def basic(cls, identity: bytes) -> Credential:
        return cls(CredentialType.basic, identity=identity)

    @classmethod
    def x509(cls, certificates: Sequence[bytes]) -> Credential:
        return cls(CredentialType.x509, certificates=tuple(certificates))
