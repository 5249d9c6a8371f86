"""Signing and verifying GroupInfo (RFC 9420 section 12.4.3), and its ratchet tree.

The signer's public key is the ``signature_key`` of the LeafNode at leaf index
``GroupInfo.signer`` in the group's ratchet tree; looking it up (and failing if
that leaf is blank) is the caller's job.

:class:`RatchetTreeEncoder` produces the ``ratchet_tree`` extension (section
12.4.3.3) of a GroupInfo, reusing the encoding of every node that has not
changed since the last tree it encoded.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from .ciphersuite import CipherSuite
from .codec import encode_varint
from .errors import ValidationError
from .ratchet_tree import NodeValue, RatchetTree
from .structs import Extension, ExtensionType, GroupContext, GroupInfo, Node

__all__ = ["RatchetTreeEncoder", "create_group_info", "sign_group_info", "verify_group_info"]

GROUP_INFO_LABEL = "GroupInfoTBS"


def _check_suite(suite: CipherSuite, group_info: GroupInfo) -> None:
    if group_info.group_context.cipher_suite != suite.id:
        raise ValidationError(
            f"GroupInfo is for cipher suite {group_info.group_context.cipher_suite}, not {suite.id}"
        )


def sign_group_info(suite: CipherSuite, group_info: GroupInfo, signature_priv: bytes) -> GroupInfo:
    """Return ``group_info`` with ``SignWithLabel(., "GroupInfoTBS", GroupInfoTBS)`` set."""
    _check_suite(suite, group_info)
    signature = suite.sign_with_label(signature_priv, GROUP_INFO_LABEL, group_info.tbs())
    return GroupInfo(
        group_info.group_context,
        group_info.extensions,
        group_info.confirmation_tag,
        group_info.signer,
        signature,
    )


def create_group_info(
    suite: CipherSuite,
    group_context: GroupContext,
    extensions: Sequence[Extension],
    confirmation_tag: bytes,
    signer: int,
    signature_priv: bytes,
) -> GroupInfo:
    """Build and sign a GroupInfo for leaf ``signer`` (RFC 9420 section 12.4.3)."""
    unsigned = GroupInfo(group_context, tuple(extensions), confirmation_tag, signer)
    return sign_group_info(suite, unsigned, signature_priv)


def verify_group_info(suite: CipherSuite, group_info: GroupInfo, signer_public_key: bytes) -> None:
    """Verify the GroupInfo signature with the signer leaf's key; SignatureError if invalid.

    Also rejects (ValidationError) a GroupInfo whose GroupContext names another suite.
    """
    _check_suite(suite, group_info)
    suite.verify_with_label(
        signer_public_key, GROUP_INFO_LABEL, group_info.tbs(), group_info.signature
    )


class RatchetTreeEncoder:
    """Encodes ``optional<Node> ratchet_tree<V>`` (RFC 9420 section 12.4.3.3), node by node.

    Node values are immutable and shared between the trees of successive epochs,
    so the encoding of each one is kept (by identity) from one call to the next:
    after a commit only the nodes it changed are encoded again. Only the nodes of
    the last tree encoded are kept. The output is byte for byte that of
    :meth:`RatchetTree.to_bytes`.
    """

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[int, tuple[NodeValue, bytes]] = {}

    def encode(self, tree: RatchetTree) -> bytes:
        nodes = tree.nodes()
        end = len(nodes)
        while end and nodes[end - 1] is None:
            end -= 1
        if not end:
            raise ValueError("ratchet_tree must be non-empty and end with a non-blank node")
        known = self._known
        kept: dict[int, tuple[NodeValue, bytes]] = {}
        parts: list[bytes] = []
        for value in nodes[:end]:
            if value is None:
                parts.append(b"\x00")
                continue
            entry = known.get(id(value))
            if entry is None or entry[0] is not value:
                entry = (value, b"\x01" + Node(value).to_bytes())
            kept[id(value)] = entry
            parts.append(entry[1])
        self._known = kept
        body = b"".join(parts)
        return encode_varint(len(body)) + body

    def extension(self, tree: RatchetTree) -> Extension:
        """The ``ratchet_tree`` extension carrying ``tree``."""
        return Extension(ExtensionType.ratchet_tree, self.encode(tree))

    def __deepcopy__(self, memo: dict[int, Any]) -> RatchetTreeEncoder:
        # Keyed by identity: map each node to its copy (the one the copied tree holds).
        other = RatchetTreeEncoder()
        for value, encoded in self._known.values():
            twin = copy.deepcopy(value, memo)
            other._known[id(twin)] = (twin, encoded)
        return other
