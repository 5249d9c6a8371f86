"""Update paths (RFC 9420 section 7.6)."""

from __future__ import annotations

from dataclasses import dataclass

from ._layout import OPAQUE, Struct, Vector, layout
from .enums import HPKEPublicKey
from .tree import LeafNode


@layout(("kem_output", OPAQUE), ("ciphertext", OPAQUE))
@dataclass(frozen=True, slots=True)
class HPKECiphertext(Struct):
    """RFC 9420 section 7.6."""

    kem_output: bytes
    ciphertext: bytes


@layout(("encryption_key", OPAQUE), ("encrypted_path_secret", Vector(HPKECiphertext)))
@dataclass(frozen=True, slots=True)
class UpdatePathNode(Struct):
    """RFC 9420 section 7.6."""

    encryption_key: HPKEPublicKey
    encrypted_path_secret: tuple[HPKECiphertext, ...]


@layout(("leaf_node", LeafNode), ("nodes", Vector(UpdatePathNode)))
@dataclass(frozen=True, slots=True)
class UpdatePath(Struct):
    """RFC 9420 section 7.6."""

    leaf_node: LeafNode
    nodes: tuple[UpdatePathNode, ...]
