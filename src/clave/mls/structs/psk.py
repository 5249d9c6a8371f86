"""Pre-shared key identifiers (RFC 9420 section 8.4)."""

from __future__ import annotations

from dataclasses import dataclass

from ._layout import OPAQUE, U16, U64, ClosedEnum, Select, Struct, layout
from .enums import PSKType, ResumptionPSKUsage


@layout(
    ("psktype", ClosedEnum(PSKType)),
    Select(
        "psktype",
        {
            PSKType.external: [("psk_id", OPAQUE)],
            PSKType.resumption: [
                ("usage", ClosedEnum(ResumptionPSKUsage)),
                ("psk_group_id", OPAQUE),
                ("psk_epoch", U64),
            ],
        },
        strict=False,
    ),
    ("psk_nonce", OPAQUE),
)
@dataclass(frozen=True, slots=True)
class PreSharedKeyID(Struct):
    """RFC 9420 section 8.4. Use :meth:`external` / :meth:`resumption` to build.

    ``psk_id`` is meaningful for external PSKs; ``usage``, ``psk_group_id`` and
    ``psk_epoch`` for resumption PSKs (the fields of the other type are ignored
    when encoding).
    """

    psktype: PSKType
    psk_nonce: bytes
    psk_id: bytes = b""
    usage: ResumptionPSKUsage | None = None
    psk_group_id: bytes = b""
    psk_epoch: int = 0

    @classmethod
    def external(cls, psk_id: bytes, psk_nonce: bytes) -> PreSharedKeyID:
        return cls(PSKType.external, psk_nonce, psk_id=psk_id)

    @classmethod
    def resumption(
        cls, usage: ResumptionPSKUsage, psk_group_id: bytes, psk_epoch: int, psk_nonce: bytes
    ) -> PreSharedKeyID:
        return cls(
            PSKType.resumption,
            psk_nonce,
            usage=usage,
            psk_group_id=psk_group_id,
            psk_epoch=psk_epoch,
        )


@layout(("id", PreSharedKeyID), ("index", U16), ("count", U16))
@dataclass(frozen=True, slots=True)
class PSKLabel(Struct):
    """Input to the "derived psk" expansion (RFC 9420 section 8.4)."""

    id: PreSharedKeyID
    index: int
    count: int
