"""TreeKEM: creating and processing UpdatePaths (RFC 9420 sections 7.4-7.6, 12.4.2).

Private keys are kept outside the public tree, in :class:`TreePrivateKeys`
(node index -> HPKE key pair). Randomness comes only from the injected ``rng``.

Committer: :func:`create_update_path` refreshes the committer's leaf and
filtered direct path in a staged tree, signs the new leaf, computes the
provisional GroupContext (whose ``tree_hash`` covers the merged path and the new
leaf) and encrypts each path secret to the resolution of the copath child,
leaving out the members added by the same commit.

Receiver: :func:`merge_update_path` validates the new leaf and merges the
public path (checking the leaf's parent hash); :func:`decrypt_update_path`
then recovers the path secrets with the receiver's keys and checks every derived
public key; :func:`process_update_path` does both around the provisional
GroupContext. :func:`derive_path_keys` turns a Welcome's ``path_secret`` into
node keys.

Functions taking a ``tree`` modify it in place and may leave it half-updated on
error: pass the staged copy of the tree for the new epoch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import cast

from .ciphersuite import CipherSuite, Rng
from .errors import CommitError, CryptoError, TreeError
from .hpke import draw
from .leaf_node import CredentialValidator, sign_leaf_node, validate_leaf_node
from .ratchet_tree import RatchetTree
from .structs import (
    Extension,
    GroupContext,
    HPKECiphertext,
    LeafNode,
    LeafNodeSource,
    UpdatePath,
    UpdatePathNode,
)
from .tree_math import common_ancestor, direct_path, subtree_leaves

__all__ = [
    "UPDATE_PATH_LABEL",
    "CreatedUpdatePath",
    "KeyPair",
    "MemberIndex",
    "PathDerivation",
    "TreePrivateKeys",
    "create_update_path",
    "decrypt_update_path",
    "derive_path_keys",
    "merge_update_path",
    "next_path_secret",
    "node_key_pair",
    "path_keys_from_secret",
    "process_update_path",
]

UPDATE_PATH_LABEL = "UpdatePathNode"
"""EncryptWithLabel label of path secrets (RFC 9420 section 7.6)."""

KeyPair = tuple[bytes, bytes]
"""(HPKE private key, HPKE public key), both serialized."""


def node_key_pair(suite: CipherSuite, path_secret: bytes) -> KeyPair:
    """``KEM.DeriveKeyPair(DeriveSecret(path_secret, "node"))`` (RFC 9420 section 7.4)."""
    return suite.derive_key_pair(suite.derive_secret(path_secret, "node"))


def next_path_secret(suite: CipherSuite, path_secret: bytes) -> bytes:
    """``DeriveSecret(path_secret, "path")`` (RFC 9420 section 7.4)."""
    return suite.derive_secret(path_secret, "path")


class TreePrivateKeys:
    """A member's HPKE key pairs for tree nodes, by node index (RFC 9420 section 4.2).

    Holds the leaf's key and those of the parents whose private key the member
    knows. Use :meth:`prune` after the public tree changes to delete keys of
    nodes that were blanked or replaced (RFC 9420 section 7.5).
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[int, KeyPair] | None = None) -> None:
        self._keys: dict[int, KeyPair] = dict(keys or {})

    def __contains__(self, x: object) -> bool:
        return x in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._keys))

    def __repr__(self) -> str:
        return f"TreePrivateKeys(nodes={sorted(self._keys)})"

    def copy(self) -> TreePrivateKeys:
        return TreePrivateKeys(self._keys)

    def items(self) -> list[tuple[int, KeyPair]]:
        return sorted(self._keys.items())

    def get(self, x: int) -> KeyPair | None:
        return self._keys.get(x)

    def set(self, x: int, private_key: bytes, public_key: bytes) -> None:
        self._keys[x] = (private_key, public_key)

    def update(self, keys: Mapping[int, KeyPair]) -> None:
        self._keys.update(keys)

    def private_key_for(self, tree: RatchetTree, x: int) -> bytes | None:
        """Private key of node ``x`` if held and matching the node's public key."""
        pair = self._keys.get(x)
        if pair is None or not 0 <= x < tree.width:
            return None
        node = tree.node(x)
        if node is None or node.encryption_key != pair[1]:
            return None
        return pair[0]

    def check_consistent(self, tree: RatchetTree, leaf_index: int | None = None) -> None:
        """TreeError unless every held key's node is non-blank with that public key
        (and, given ``leaf_index``, is that leaf or on its direct path)."""
        allowed: set[int] | None = None
        if leaf_index is not None:
            allowed = {2 * leaf_index, *direct_path(2 * leaf_index, tree.n_leaves)}
        for x in self._keys:
            if allowed is not None and x not in allowed:
                raise TreeError(
                    f"private key for node {x} off the direct path of leaf {leaf_index}"
                )
            if self.private_key_for(tree, x) is None:
                node = None if not 0 <= x < tree.width else tree.node(x)
                what = "blank or absent" if node is None else "holds another public key"
                raise TreeError(f"private key for node {x}: node {what}")

    def prune(self, tree: RatchetTree) -> None:
        """Delete keys whose node is gone, blank or holds a different public key."""
        stale = [x for x in self._keys if self.private_key_for(tree, x) is None]
        for x in stale:
            del self._keys[x]


class MemberIndex:
    """A tree's members as leaf validation sees them (:class:`~clave.mls.leaf_node.MemberLeaves`).

    Answers exactly as the tree would, but the members are listed once and the
    encryption keys gathered into a set, so the uniqueness and compatibility
    checks of RFC 9420 section 7.3 take one pass over the members instead of
    several over the whole node array. A snapshot: build it again once the tree
    changes.
    """

    __slots__ = ("_leaves", "_tree", "encryption_keys")

    def __init__(self, tree: RatchetTree) -> None:
        nodes = tree.nodes()
        self._tree = tree
        self._leaves = [(i, cast(LeafNode, v)) for i, v in enumerate(nodes[::2]) if v is not None]
        self.encryption_keys = {v.encryption_key for v in nodes if v is not None}
        """Every encryption key held by a non-blank node."""

    @property
    def n_leaves(self) -> int:
        return self._tree.n_leaves

    def leaf(self, i: int) -> LeafNode | None:
        return self._tree.leaf(i)

    def leaf_nodes(self) -> Iterator[tuple[int, LeafNode]]:
        return iter(self._leaves)

    def find_encryption_key(self, key: bytes) -> int | None:
        if key not in self.encryption_keys:
            return None
        return self._tree.find_encryption_key(key)


@dataclass(frozen=True, slots=True)
class PathDerivation:
    """Secrets derived along a path (RFC 9420 sections 7.4, 12.4.2).

    ``path_secrets`` and ``keys`` are by node index; ``commit_secret`` is the
    secret derived from the last path secret.
    """

    path_secrets: dict[int, bytes]
    keys: dict[int, KeyPair]
    commit_secret: bytes


@dataclass(frozen=True, slots=True)
class CreatedUpdatePath:
    """Result of :func:`create_update_path`.

    ``group_context`` is the provisional GroupContext used for encryption (its
    ``tree_hash`` is that of the staged tree after the merge); ``path_secrets``
    maps each filtered-direct-path node to its path secret (for Welcome);
    ``private_keys`` holds the new leaf and path keys, which replace all of the
    committer's previous keys (its whole direct path is now new or blank).
    """

    update_path: UpdatePath
    leaf_index: int
    group_context: GroupContext
    path_secrets: dict[int, bytes]
    private_keys: TreePrivateKeys
    commit_secret: bytes

    @property
    def leaf_node(self) -> LeafNode:
        return self.update_path.leaf_node

    def path_secret_for(self, new_member: int) -> bytes | None:
        """Path secret at the lowest common ancestor of the committer and leaf
        ``new_member`` (the GroupSecrets ``path_secret``, RFC 9420 section 12.4.3.1)."""
        return self.path_secrets.get(common_ancestor(2 * self.leaf_index, 2 * new_member))


def create_update_path(
    suite: CipherSuite,
    tree: RatchetTree,
    leaf_index: int,
    *,
    leaf_template: LeafNode,
    signature_priv: bytes,
    group_context: GroupContext,
    exclude: Collection[int] = (),
    rng: Rng,
) -> CreatedUpdatePath:
    """Refresh leaf ``leaf_index``'s path in ``tree`` and build the UpdatePath (12.4.2).

    ``tree`` is the staged tree after the commit's proposals (for an external
    commit, with the joiner's blank leaf reserved); it is updated in place.
    ``leaf_template`` supplies the new leaf's signature key, credential,
    capabilities and extensions; its encryption key, source (``commit``),
    lifetime and parent hash are replaced and it is signed with
    ``signature_priv``. ``group_context`` is the provisional GroupContext (new
    epoch and extensions, old transcript hash); its ``tree_hash`` is replaced by
    the hash of the merged tree. ``exclude`` lists the leaves added by this commit.
    """
    if leaf_template.signature_key != suite.signature_public_key(signature_priv):
        raise ValueError("leaf_template.signature_key does not match signature_priv")
    fdp = tree.filtered_direct_path_with_copath(leaf_index)
    leaf_priv, leaf_pub = node_key_pair(suite, draw(rng, suite.nh))
    path_secret = draw(rng, suite.nh)
    secrets: dict[int, bytes] = {}
    keys: dict[int, KeyPair] = {2 * leaf_index: (leaf_priv, leaf_pub)}
    for p, _ in fdp:
        secrets[p] = path_secret
        keys[p] = node_key_pair(suite, path_secret)
        path_secret = next_path_secret(suite, path_secret)
    commit_secret = path_secret  # with an empty filtered direct path: fresh randomness

    parent_hash = tree.merge_path(leaf_index, [keys[p][1] for p, _ in fdp])
    leaf = dataclasses.replace(
        leaf_template,
        encryption_key=leaf_pub,
        leaf_node_source=LeafNodeSource.commit,
        lifetime=None,
        parent_hash=parent_hash,
        signature=b"",
    )
    leaf = sign_leaf_node(
        suite, leaf, signature_priv, group_id=group_context.group_id, leaf_index=leaf_index
    )
    tree.set_leaf(leaf_index, leaf)

    context = dataclasses.replace(group_context, tree_hash=tree.tree_hash())
    context_bytes = context.to_bytes()
    nodes = []
    for p, s in fdp:
        ciphertexts = []
        for r in tree.resolution(s, tuple(exclude)):
            target = tree.node(r)
            assert target is not None
            kem_output, ct = suite.encrypt_with_label(
                target.encryption_key, UPDATE_PATH_LABEL, context_bytes, secrets[p], rng=rng
            )
            ciphertexts.append(HPKECiphertext(kem_output, ct))
        nodes.append(UpdatePathNode(keys[p][1], tuple(ciphertexts)))
    return CreatedUpdatePath(
        update_path=UpdatePath(leaf, tuple(nodes)),
        leaf_index=leaf_index,
        group_context=context,
        path_secrets=secrets,
        private_keys=TreePrivateKeys(keys),
        commit_secret=commit_secret,
    )


def merge_update_path(
    suite: CipherSuite,
    tree: RatchetTree,
    sender: int,
    path: UpdatePath,
    *,
    group_id: bytes,
    group_context_extensions: Collection[Extension] = (),
    credential_validator: CredentialValidator | None = None,
) -> None:
    """Validate and merge a received UpdatePath into ``tree`` (RFC 9420 section 12.4.2).

    Validates the leaf node (section 7.3, source ``commit``, against the staged
    tree), checks that no public key of the path is already in the tree and that
    the path has one node per filtered-direct-path node, merges the keys, checks
    the leaf's parent hash and stores the leaf. Raises LeafNodeError or CommitError.
    """
    if not 0 <= sender < tree.n_leaves:
        raise CommitError(f"UpdatePath sender {sender} is outside the tree")
    leaf = path.leaf_node
    members = MemberIndex(tree)
    validate_leaf_node(
        suite,
        leaf,
        expected_source=LeafNodeSource.commit,
        group_id=group_id,
        leaf_index=sender,
        group_context_extensions=tuple(group_context_extensions),
        tree=members,
        credential_validator=credential_validator,
    )
    keys = [n.encryption_key for n in path.nodes]
    in_tree = members.encryption_keys
    seen = {leaf.encryption_key}
    for k in keys:
        if k in in_tree or k in seen:
            raise CommitError("UpdatePath repeats an encryption key or reuses one from the tree")
        seen.add(k)
        try:
            suite.validate_hpke_public_key(k)
        except CryptoError:
            raise CommitError("UpdatePath carries an invalid HPKE public key") from None
    expected = len(tree.filtered_direct_path_with_copath(sender))
    if len(keys) != expected:
        raise CommitError(
            f"UpdatePath has {len(keys)} nodes, the sender's filtered direct path {expected}"
        )
    parent_hash = tree.merge_path(sender, keys)
    if leaf.parent_hash != parent_hash:
        raise CommitError("UpdatePath leaf node parent_hash does not match the merged path")
    tree.set_leaf(sender, leaf)


def _derive_along(
    suite: CipherSuite,
    nodes: list[tuple[int, bytes]],
    path_secret: bytes,
    error: type[Exception],
) -> PathDerivation:
    """Derive secrets and keys for ``(node, expected public key)`` in order, checking keys."""
    secrets: dict[int, bytes] = {}
    keys: dict[int, KeyPair] = {}
    for x, expected_pub in nodes:
        priv, pub = node_key_pair(suite, path_secret)
        if pub != expected_pub:
            raise error(f"derived public key for node {x} does not match the tree")
        secrets[x] = path_secret
        keys[x] = (priv, pub)
        path_secret = next_path_secret(suite, path_secret)
    return PathDerivation(secrets, keys, path_secret)


def decrypt_update_path(
    suite: CipherSuite,
    tree: RatchetTree,
    sender: int,
    path: UpdatePath,
    *,
    own_leaf: int,
    private_keys: TreePrivateKeys,
    group_context: GroupContext | bytes,
    exclude: Collection[int] = (),
) -> PathDerivation:
    """Recover the path secrets of a merged UpdatePath (RFC 9420 section 12.4.2).

    ``tree`` already has the path merged; ``group_context`` is the provisional
    GroupContext (or its encoding). Finds the filtered-direct-path node whose
    copath child covers ``own_leaf``, decrypts its path secret with the key of the
    matching node of that child's resolution (minus ``exclude``), derives the
    secrets up to the root and checks each public key. Returns the new path
    secrets and keys (from the common ancestor up) and the commit secret.
    Raises CommitError.
    """
    if own_leaf == sender:
        raise CommitError("cannot decrypt one's own UpdatePath")
    fdp = tree.filtered_direct_path_with_copath(sender)
    if len(fdp) != len(path.nodes):
        raise CommitError("UpdatePath length does not match the sender's filtered direct path")
    k = next((m for m, (_, s) in enumerate(fdp) if own_leaf in subtree_leaves(s)), None)
    if k is None:
        raise CommitError(f"leaf {own_leaf} is under no copath node of leaf {sender}")
    resolution = tree.resolution(fdp[k][1], tuple(exclude))
    ciphertexts = path.nodes[k].encrypted_path_secret
    if len(ciphertexts) != len(resolution):
        raise CommitError(
            f"UpdatePath node {k} has {len(ciphertexts)} ciphertexts for a resolution of"
            f" {len(resolution)}"
        )
    held = [(j, private_keys.private_key_for(tree, r)) for j, r in enumerate(resolution)]
    j, priv = next(((j, priv) for j, priv in held if priv is not None), (-1, None))
    if priv is None:
        raise CommitError("no private key for the resolution of the copath node")
    context = group_context if isinstance(group_context, bytes) else group_context.to_bytes()
    ct = ciphertexts[j]
    try:
        path_secret = suite.decrypt_with_label(
            priv, UPDATE_PATH_LABEL, context, ct.kem_output, ct.ciphertext
        )
    except CryptoError as exc:
        raise CommitError(f"cannot decrypt the path secret: {exc}") from None
    nodes = [(p, path.nodes[m].encryption_key) for m, (p, _) in enumerate(fdp) if m >= k]
    return _derive_along(suite, nodes, path_secret, CommitError)


def process_update_path(
    suite: CipherSuite,
    tree: RatchetTree,
    sender: int,
    path: UpdatePath,
    *,
    own_leaf: int,
    private_keys: TreePrivateKeys,
    group_context: GroupContext,
    exclude: Collection[int] = (),
    credential_validator: CredentialValidator | None = None,
) -> tuple[GroupContext, PathDerivation]:
    """Merge then decrypt a received UpdatePath (RFC 9420 section 12.4.2).

    ``group_context`` is the provisional GroupContext with any ``tree_hash``; the
    one actually used (tree hash of the merged tree) is returned with the
    derivation. ``private_keys`` is not modified: afterwards call
    ``private_keys.prune(tree)`` and ``private_keys.update(derivation.keys)``.
    """
    merge_update_path(
        suite,
        tree,
        sender,
        path,
        group_id=group_context.group_id,
        group_context_extensions=group_context.extensions,
        credential_validator=credential_validator,
    )
    context = dataclasses.replace(group_context, tree_hash=tree.tree_hash())
    derivation = decrypt_update_path(
        suite,
        tree,
        sender,
        path,
        own_leaf=own_leaf,
        private_keys=private_keys,
        group_context=context,
        exclude=exclude,
    )
    return context, derivation


def derive_path_keys(
    suite: CipherSuite, tree: RatchetTree, node: int, path_secret: bytes
) -> PathDerivation:
    """Keys from a path secret at ``node`` and its non-blank ancestors (12.4.3.1).

    For a Welcome's ``path_secret`` at the common ancestor of the joiner and the
    committer: each successive non-blank node on the way to the root gets the
    next path secret, and every derived public key must equal the tree's
    (TreeError otherwise).
    """
    if not 0 <= node < tree.width or tree.node(node) is None:
        raise TreeError(f"path secret for blank or absent node {node}")
    nodes: list[tuple[int, bytes]] = []
    for x in [node, *direct_path(node, tree.n_leaves)]:
        v = tree.node(x)
        if v is not None:
            nodes.append((x, v.encryption_key))
    return _derive_along(suite, nodes, path_secret, TreeError)


def path_keys_from_secret(
    suite: CipherSuite,
    tree: RatchetTree,
    own_leaf: int,
    committer: int,
    path_secret: bytes,
) -> PathDerivation:
    """Keys of a Welcome's ``path_secret`` (RFC 9420 section 12.4.3.1).

    The secret belongs to the lowest common ancestor of ``own_leaf`` and the
    committer (the GroupInfo signer); see :func:`derive_path_keys`.
    """
    if own_leaf == committer:
        raise TreeError("the joiner cannot be the committer")
    node = common_ancestor(2 * own_leaf, 2 * committer)
    return derive_path_keys(suite, tree, node, path_secret)
