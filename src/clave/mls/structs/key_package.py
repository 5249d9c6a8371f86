"""Key packages (RFC 9420 section 10)."""

from __future__ import annotations

from dataclasses import dataclass

from ._layout import OPAQUE, U16, ClosedEnum, Struct, layout, tbs_encoder
from .enums import HPKEPublicKey, ProtocolVersion
from .extension import EXTENSIONS, Extension
from .tree import LeafNode


@layout(
    ("version", ClosedEnum(ProtocolVersion, U16)),
    ("cipher_suite", U16),
    ("init_key", OPAQUE),
    ("leaf_node", LeafNode),
    ("extensions", EXTENSIONS),
    ("signature", OPAQUE),
    signed=True,
)
@dataclass(frozen=True, slots=True)
class KeyPackage(Struct):
    """RFC 9420 section 10. :meth:`tbs` gives the signed KeyPackageTBS bytes.

    Only ``mls10`` is accepted for ``version`` when decoding.
    """

    version: ProtocolVersion
    cipher_suite: int
    init_key: HPKEPublicKey
    leaf_node: LeafNode
    extensions: tuple[Extension, ...] = ()
    signature: bytes = b""

    def tbs(self) -> bytes:
        """KeyPackageTBS (RFC 9420 section 10), signed with label "KeyPackageTBS"."""
        return _KEY_PACKAGE_TBS(self)


_KEY_PACKAGE_TBS = tbs_encoder(KeyPackage)
