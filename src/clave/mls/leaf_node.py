"""Leaf node signing and validation (RFC 9420 sections 7.2-7.3).

:func:`sign_leaf_node` / :func:`make_leaf_node` produce signed LeafNodes;
:func:`validate_leaf_node` runs every check of RFC 9420 section 7.3 and raises
:class:`~clave.mls.errors.LeafNodeError` with a message naming the failed check.
Time is never read from a clock: lifetime checks take ``now`` (seconds since
the Unix epoch) from the caller. Credential validation with the Authentication
Service (RFC 9420 section 5.3.1) is the caller's ``credential_validator`` hook.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, TypeAlias

from .ciphersuite import CipherSuite
from .errors import CryptoError, DecodeError, LeafNodeError, SignatureError
from .structs import (
    DEFAULT_EXTENSION_TYPES,
    DEFAULT_PROPOSAL_TYPES,
    Capabilities,
    Credential,
    Extension,
    ExtensionType,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    ProtocolVersion,
    RequiredCapabilities,
    find_extension,
)

__all__ = [
    "LEAF_NODE_LABEL",
    "CredentialValidator",
    "MemberLeaves",
    "check_capabilities_support",
    "make_leaf_node",
    "sign_leaf_node",
    "validate_leaf_node",
    "verify_leaf_node_signature",
]

LEAF_NODE_LABEL = "LeafNodeTBS"
"""Signature label of LeafNodeTBS (RFC 9420 section 7.2)."""

CredentialValidator: TypeAlias = Callable[[LeafNode, LeafNode | None], bool]
"""Authentication Service hook (RFC 9420 section 5.3.1).

Called with the leaf being validated and the leaf it replaces (None for a new
member or a tree being joined); must return True iff the credential is valid
for the leaf's ``signature_key`` (and, when replacing, a valid successor).
"""


class MemberLeaves(Protocol):
    """The view of a group's tree that leaf validation needs (RFC 9420 section 7.3).

    :class:`~clave.mls.ratchet_tree.RatchetTree` provides it; leaf validation
    does not depend on the tree class itself.
    """

    @property
    def n_leaves(self) -> int:
        """Number of leaf slots."""
        ...

    def leaf(self, i: int) -> LeafNode | None:
        """The LeafNode at leaf index ``i``, or None if blank."""
        ...

    def leaf_nodes(self) -> Iterator[tuple[int, LeafNode]]:
        """``(leaf_index, LeafNode)`` for every non-blank leaf."""
        ...

    def find_encryption_key(self, key: bytes) -> int | None:
        """Node index of a non-blank node whose encryption key is ``key``, else None."""
        ...


def _needs_context(source: LeafNodeSource) -> bool:
    return source != LeafNodeSource.key_package


def _tbs(leaf: LeafNode, group_id: bytes | None, leaf_index: int | None) -> bytes:
    if _needs_context(leaf.leaf_node_source) and (group_id is None or leaf_index is None):
        raise LeafNodeError(
            f"LeafNodeTBS of a {leaf.leaf_node_source.name} leaf needs group_id and leaf_index"
        )
    try:
        return leaf.tbs(group_id, leaf_index)
    except ValueError as exc:
        raise LeafNodeError(f"leaf node cannot be encoded: {exc}") from None


def sign_leaf_node(
    suite: CipherSuite,
    leaf: LeafNode,
    signature_priv: bytes,
    *,
    group_id: bytes | None = None,
    leaf_index: int | None = None,
) -> LeafNode:
    """``leaf`` with its signature set: SignWithLabel(., "LeafNodeTBS", LeafNodeTBS).

    ``group_id`` and ``leaf_index`` are required for the ``update`` and
    ``commit`` sources (RFC 9420 section 7.2) and ignored for ``key_package``.
    """
    signature = suite.sign_with_label(
        signature_priv, LEAF_NODE_LABEL, _tbs(leaf, group_id, leaf_index)
    )
    return dataclasses.replace(leaf, signature=signature)


def make_leaf_node(
    suite: CipherSuite,
    *,
    encryption_key: bytes,
    signature_priv: bytes,
    credential: Credential,
    capabilities: Capabilities,
    source: LeafNodeSource,
    lifetime: Lifetime | None = None,
    parent_hash: bytes | None = None,
    extensions: Sequence[Extension] = (),
    group_id: bytes | None = None,
    leaf_index: int | None = None,
) -> LeafNode:
    """Build and sign a LeafNode (RFC 9420 section 7.2).

    ``lifetime`` is required iff ``source`` is ``key_package``, ``parent_hash``
    iff it is ``commit``; ``group_id``/``leaf_index`` for ``update``/``commit``.
    The signature key is the public key of ``signature_priv``.
    """
    leaf = LeafNode(
        encryption_key=encryption_key,
        signature_key=suite.signature_public_key(signature_priv),
        credential=credential,
        capabilities=capabilities,
        leaf_node_source=source,
        lifetime=lifetime,
        parent_hash=parent_hash,
        extensions=tuple(extensions),
    )
    return sign_leaf_node(suite, leaf, signature_priv, group_id=group_id, leaf_index=leaf_index)


def verify_leaf_node_signature(
    suite: CipherSuite,
    leaf: LeafNode,
    *,
    group_id: bytes | None = None,
    leaf_index: int | None = None,
) -> None:
    """Verify the LeafNode signature with its ``signature_key`` (RFC 9420 section 7.3)."""
    tbs = _tbs(leaf, group_id, leaf_index)
    try:
        suite.verify_with_label(leaf.signature_key, LEAF_NODE_LABEL, tbs, leaf.signature)
    except SignatureError:
        where = "" if leaf_index is None else f" at leaf {leaf_index}"
        raise LeafNodeError(f"leaf node signature{where} is invalid") from None


def check_capabilities_support(capabilities: Capabilities, extensions: Sequence[Extension]) -> None:
    """LeafNodeError unless ``capabilities`` cover ``required_capabilities`` and the
    non-default extension types of ``extensions`` (GroupContext extensions; RFC 9420
    sections 7.3, 11.1, 13)."""
    caps_ext = set(capabilities.extensions)
    for ext in extensions:
        t = int(ext.extension_type)
        if t not in DEFAULT_EXTENSION_TYPES and t not in caps_ext:
            raise LeafNodeError(
                f"capabilities do not support group context extension type {t:#06x}"
            )
    found = find_extension(extensions, ExtensionType.required_capabilities)
    if found is None:
        return
    try:
        required = RequiredCapabilities.from_extension(found)
    except (DecodeError, ValueError) as exc:
        raise LeafNodeError(f"malformed required_capabilities extension: {exc}") from None
    for t in required.extension_types:
        if t not in DEFAULT_EXTENSION_TYPES and t not in caps_ext:
            raise LeafNodeError(f"capabilities lack required extension type {t:#06x}")
    caps_prop = set(capabilities.proposals)
    for t in required.proposal_types:
        if t not in DEFAULT_PROPOSAL_TYPES and t not in caps_prop:
            raise LeafNodeError(f"capabilities lack required proposal type {t:#06x}")
    caps_cred = set(capabilities.credentials)
    for t in required.credential_types:
        if t not in caps_cred:
            raise LeafNodeError(f"capabilities lack required credential type {t:#06x}")


def _check_own_consistency(suite: CipherSuite, leaf: LeafNode) -> None:
    """Checks on the leaf alone: keys, suite/version, credential, extensions (7.2-7.3, 11.1)."""
    try:
        suite.validate_signature_public_key(leaf.signature_key)
    except CryptoError:
        raise LeafNodeError("leaf node signature_key is not a valid public key") from None
    try:
        suite.validate_hpke_public_key(leaf.encryption_key)
    except CryptoError:
        raise LeafNodeError("leaf node encryption_key is not a valid HPKE public key") from None
    caps = leaf.capabilities
    if ProtocolVersion.mls10 not in caps.versions:
        raise LeafNodeError("capabilities do not list protocol version mls10")
    if suite.id not in caps.cipher_suites:
        raise LeafNodeError(f"capabilities do not list the group's cipher suite {suite.id}")
    if leaf.credential.credential_type not in caps.credentials:
        raise LeafNodeError(
            f"credential type {leaf.credential.credential_type} not listed in capabilities"
        )
    seen: set[int] = set()
    caps_ext = set(caps.extensions)
    for ext in leaf.extensions:
        t = int(ext.extension_type)
        if t in seen:
            raise LeafNodeError(f"leaf node carries extension type {t:#06x} twice")
        seen.add(t)
        if t not in DEFAULT_EXTENSION_TYPES and t not in caps_ext:
            raise LeafNodeError(f"leaf node extension type {t:#06x} not listed in capabilities")


def _check_lifetime(leaf: LeafNode, now: int | None, max_lifetime: int | None) -> None:
    lifetime = leaf.lifetime
    if lifetime is None:
        return
    if lifetime.not_before > lifetime.not_after:
        raise LeafNodeError("leaf node lifetime is empty (not_before > not_after)")
    if max_lifetime is not None and lifetime.not_after - lifetime.not_before > max_lifetime:
        raise LeafNodeError("leaf node lifetime exceeds the maximum allowed")
    if now is not None and not lifetime.not_before <= now <= lifetime.not_after:
        raise LeafNodeError("current time is outside the leaf node lifetime")


def _check_against_members(
    leaf: LeafNode,
    members: Iterable[tuple[int, LeafNode]],
    replaced: int | None,
) -> None:
    """Credential-type compatibility and signature-key uniqueness (RFC 9420 section 7.3)."""
    own_type = leaf.credential.credential_type
    own_supported = set(leaf.capabilities.credentials)
    for index, member in members:
        if index == replaced:
            continue
        if own_type not in member.capabilities.credentials:
            raise LeafNodeError(f"credential type {own_type} is not supported by leaf {index}")
        if member.credential.credential_type not in own_supported:
            raise LeafNodeError(
                f"capabilities lack credential type {member.credential.credential_type}"
                f" used by leaf {index}"
            )
        if member.signature_key == leaf.signature_key:
            raise LeafNodeError(f"signature_key is already used by leaf {index}")


def validate_leaf_node(
    suite: CipherSuite,
    leaf: LeafNode,
    *,
    expected_source: LeafNodeSource | None,
    group_id: bytes | None = None,
    leaf_index: int | None = None,
    group_context_extensions: Sequence[Extension] = (),
    tree: MemberLeaves | None = None,
    now: int | None = None,
    max_lifetime: int | None = None,
    credential_validator: CredentialValidator | None = None,
) -> None:
    """Validate a LeafNode as RFC 9420 section 7.3 requires; LeafNodeError on failure.

    * ``expected_source``: ``key_package`` (KeyPackage/Add), ``update`` (Update
      proposal), ``commit`` (UpdatePath), or None to accept any (tree on join).
    * ``group_id``/``leaf_index``: signature context for update/commit leaves;
      ``leaf_index`` is also the leaf being replaced (excluded from the member
      comparisons; its encryption key must still differ).
    * ``group_context_extensions``: the group's (new) GroupContext extensions,
      checked against the leaf's capabilities (``required_capabilities``).
    * ``tree``: when given, the credential type must be supported by all other
      members and vice versa, and ``signature_key`` / ``encryption_key`` must be
      unique in the tree.
    * ``now``/``max_lifetime``: lifetime checks (sources with a lifetime only).
    * ``credential_validator``: the Authentication Service hook.
    """
    if expected_source is not None and leaf.leaf_node_source != expected_source:
        raise LeafNodeError(
            f"leaf_node_source is {leaf.leaf_node_source.name}, expected {expected_source.name}"
        )
    _check_own_consistency(suite, leaf)
    verify_leaf_node_signature(suite, leaf, group_id=group_id, leaf_index=leaf_index)
    check_capabilities_support(leaf.capabilities, group_context_extensions)
    _check_lifetime(leaf, now, max_lifetime)
    replaced = None if leaf.leaf_node_source == LeafNodeSource.key_package else leaf_index
    old: LeafNode | None = None
    if tree is not None:
        if replaced is not None and replaced < tree.n_leaves:
            old = tree.leaf(replaced)
        _check_against_members(leaf, tree.leaf_nodes(), replaced)
        if old is not None and old.encryption_key == leaf.encryption_key:
            raise LeafNodeError("encryption_key equals that of the leaf node being replaced")
        holder = tree.find_encryption_key(leaf.encryption_key)
        if holder is not None:
            raise LeafNodeError(f"encryption_key is already used by node {holder}")
    if credential_validator is not None and not credential_validator(leaf, old):
        raise LeafNodeError("credential rejected by the authentication service")
