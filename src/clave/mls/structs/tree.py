"""Ratchet-tree nodes and their hash inputs (RFC 9420 sections 7.1-7.2, 7.8-7.9, 12.4.3.3)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..codec import Writer, varint_prefix
from ..errors import DecodeError
from ._layout import (
    OPAQUE,
    U16,
    U32,
    U64,
    Checked,
    ClosedEnum,
    Optional,
    Select,
    Struct,
    Uints,
    Variant,
    Vector,
    layout,
    tbs_encoder,
)
from .credential import Credential
from .enums import ExtensionType, HPKEPublicKey, LeafNodeSource, NodeType, SignaturePublicKey
from .extension import EXTENSIONS, Extension, ExtensionContent


@layout(
    ("versions", Uints(U16)),
    ("cipher_suites", Uints(U16)),
    ("extensions", Uints(U16)),
    ("proposals", Uints(U16)),
    ("credentials", Uints(U16)),
)
@dataclass(frozen=True, slots=True)
class Capabilities(Struct):
    """RFC 9420 section 7.2. Values are raw uint16 so unknown/GREASE values survive."""

    versions: tuple[int, ...] = ()
    cipher_suites: tuple[int, ...] = ()
    extensions: tuple[int, ...] = ()
    proposals: tuple[int, ...] = ()
    credentials: tuple[int, ...] = ()


@layout(("not_before", U64), ("not_after", U64))
@dataclass(frozen=True, slots=True)
class Lifetime(Struct):
    """RFC 9420 section 7.2: validity interval in seconds since the Unix epoch."""

    not_before: int
    not_after: int


@layout(("encryption_key", OPAQUE), ("parent_hash", OPAQUE), ("unmerged_leaves", Uints(U32)))
@dataclass(frozen=True, slots=True)
class ParentNode(Struct):
    """RFC 9420 section 7.1."""

    encryption_key: HPKEPublicKey
    parent_hash: bytes
    unmerged_leaves: tuple[int, ...]


@layout(
    ("encryption_key", OPAQUE),
    ("signature_key", OPAQUE),
    ("credential", Credential),
    ("capabilities", Capabilities),
    ("leaf_node_source", ClosedEnum(LeafNodeSource)),
    Select(
        "leaf_node_source",
        {
            LeafNodeSource.key_package: [("lifetime", Lifetime)],
            LeafNodeSource.update: [],
            LeafNodeSource.commit: [("parent_hash", OPAQUE)],
        },
    ),
    ("extensions", EXTENSIONS),
    ("signature", OPAQUE),
    signed=True,
)
@dataclass(frozen=True, slots=True)
class LeafNode(Struct):
    """RFC 9420 section 7.2.

    ``lifetime`` is present iff the source is ``key_package``; ``parent_hash``
    iff it is ``commit``. :meth:`tbs` gives the signed LeafNodeTBS bytes.
    """

    encryption_key: HPKEPublicKey
    signature_key: SignaturePublicKey
    credential: Credential
    capabilities: Capabilities
    leaf_node_source: LeafNodeSource
    lifetime: Lifetime | None = None
    parent_hash: bytes | None = None
    extensions: tuple[Extension, ...] = ()
    signature: bytes = b""

    def tbs(self, group_id: bytes | None = None, leaf_index: int | None = None) -> bytes:
        """LeafNodeTBS (RFC 9420 section 7.2), the content signed with label "LeafNodeTBS".

        ``group_id`` and ``leaf_index`` are required for sources ``update`` and
        ``commit`` and ignored for ``key_package``.
        """
        content = _LEAF_NODE_TBS(self)
        if self.leaf_node_source == LeafNodeSource.key_package:
            return content
        if group_id is None or leaf_index is None:
            raise ValueError("LeafNodeTBS for update/commit needs group_id and leaf_index")
        return Writer().raw(content).opaque(group_id).u32(leaf_index).finish()


_LEAF_NODE_TBS = tbs_encoder(LeafNode)


@layout(
    (
        "value",
        Variant(
            "node_type",
            ClosedEnum(NodeType),
            {NodeType.leaf: LeafNode, NodeType.parent: ParentNode},
        ),
    )
)
@dataclass(frozen=True, slots=True)
class Node(Struct):
    """A non-blank ratchet-tree node (RFC 9420 section 12.4.3.3)."""

    value: LeafNode | ParentNode

    @property
    def node_type(self) -> NodeType:
        return NodeType.leaf if isinstance(self.value, LeafNode) else NodeType.parent

    @property
    def leaf_node(self) -> LeafNode | None:
        return self.value if isinstance(self.value, LeafNode) else None

    @property
    def parent_node(self) -> ParentNode | None:
        return self.value if isinstance(self.value, ParentNode) else None


def _check_decoded_tree(nodes: Sequence[Node | None]) -> None:
    """What the serialization guarantees: non-empty, last node non-blank, parities."""
    if not nodes:
        raise DecodeError("ratchet_tree is empty")
    if nodes[-1] is None:
        raise DecodeError("ratchet_tree ends with a blank node")
    for i, node in enumerate(nodes):
        if node is not None and isinstance(node.value, LeafNode) != (i % 2 == 0):
            kind = "leaf" if i % 2 == 0 else "parent"
            raise DecodeError(f"ratchet_tree node {i} must be a {kind} node")


def _check_encodable_tree(nodes: Sequence[Node | None]) -> None:
    if not nodes or nodes[-1] is None:
        raise ValueError("ratchet_tree must be non-empty and end with a non-blank node")


@layout(
    (
        "nodes",
        Checked(Vector(Optional(Node)), decode=_check_decoded_tree, encode=_check_encodable_tree),
    )
)
@dataclass(frozen=True, slots=True)
class RatchetTree(ExtensionContent):
    """``optional<Node> ratchet_tree<V>`` (RFC 9420 section 12.4.3.3).

    ``nodes`` is in array (in-order) layout, ``None`` for blank nodes. Decoding
    checks what the serialization itself guarantees: the list is non-empty, the
    last node is non-blank, leaves sit at even and parents at odd indices.
    The receiver still has to pad the tree to 2^(d+1)-1 nodes.
    """

    extension_type: ClassVar[ExtensionType] = ExtensionType.ratchet_tree
    nodes: tuple[Node | None, ...]

    @classmethod
    def from_nodes(cls, nodes: Iterable[Node | None]) -> RatchetTree:
        """Build from a full array, dropping trailing blank nodes as the RFC requires."""
        out = list(nodes)
        while out and out[-1] is None:
            out.pop()
        return cls(tuple(out))


def leaf_tree_hash_input(leaf_index: int, leaf_node: LeafNode | None) -> bytes:
    """TreeHashInput for a leaf: node_type + LeafNodeHashInput (RFC 9420 section 7.8)."""
    head = b"\x01" + leaf_index.to_bytes(4, "big")
    if leaf_node is None:
        return head + b"\x00"
    return head + b"\x01" + leaf_node.to_bytes()


def parent_tree_hash_input(
    parent_node: ParentNode | None, left_hash: bytes, right_hash: bytes
) -> bytes:
    """TreeHashInput for a parent: node_type + ParentNodeHashInput (RFC 9420 section 7.8)."""
    node = b"\x02\x00" if parent_node is None else b"\x02\x01" + parent_node.to_bytes()
    return b"".join(
        (node, varint_prefix(len(left_hash)), left_hash, varint_prefix(len(right_hash)), right_hash)
    )


@layout(
    ("encryption_key", OPAQUE),
    ("parent_hash", OPAQUE),
    ("original_sibling_tree_hash", OPAQUE),
)
@dataclass(frozen=True, slots=True)
class ParentHashInput(Struct):
    """RFC 9420 section 7.9."""

    encryption_key: HPKEPublicKey
    parent_hash: bytes
    original_sibling_tree_hash: bytes
