"""A member's first epoch: creating a group or joining one from a Welcome.

RFC 9420 section 11 (a one-member group at epoch 0) and section 12.4.3.1
(processing a Welcome: decrypt and verify it, check the ratchet tree, find our
leaf and import the path secret). Joining by external commit is in
:mod:`clave.mls.external_join`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import treekem
from .ciphersuite import CipherSuite, get_suite
from .errors import WelcomeError, WelcomeNotForUsError
from .group_records import (
    EpochState,
    GroupConfig,
    Rng,
    Signer,
    decode_body,
    new_secret_tree,
    tree_from,
)
from .key_package import KeyPackageBundle, create_key_package, key_package_ref, suite_of
from .key_schedule import confirmation_tag, derive_epoch, interim_transcript_hash
from .ratchet_tree import RatchetTree
from .structs import Extension, GroupContext, GroupInfo, PreSharedKeyID, PSKType, Welcome
from .tree_math import common_ancestor
from .treekem import TreePrivateKeys
from .welcome import process_welcome


def create_epoch(
    suite: CipherSuite | int,
    group_id: bytes,
    signer: Signer,
    *,
    rng: Rng,
    now: int,
    extensions: Sequence[Extension],
    config: GroupConfig,
) -> tuple[CipherSuite, EpochState]:
    """The cipher suite and epoch 0 of a one-member group (RFC 9420 section 11)."""
    suite = suite_of(suite)
    own = create_key_package(suite, signer, rng=rng, now=now, capabilities=config.capabilities)
    leaf = own.key_package.leaf_node
    tree = RatchetTree.create(suite, leaf)
    context = GroupContext(
        version=own.key_package.version,
        cipher_suite=suite.id,
        group_id=group_id,
        epoch=0,
        tree_hash=tree.tree_hash(),
        confirmed_transcript_hash=b"",
        extensions=tuple(extensions),
    )
    context_bytes = context.to_bytes()
    secrets = derive_epoch(suite, rng(suite.nh), None, None, context_bytes).secrets
    tag = confirmation_tag(suite, secrets.confirmation_key, b"")
    return suite, EpochState(
        context=context,
        context_bytes=context_bytes,
        tree=tree,
        own_leaf=0,
        keys=TreePrivateKeys({0: (own.encryption_priv, leaf.encryption_key)}),
        secrets=secrets,
        secret_tree=new_secret_tree(suite, secrets, 1, config),
        interim_transcript_hash=interim_transcript_hash(suite, b"", tag),
        confirmation_tag=tag,
    )


@dataclass(frozen=True, slots=True)
class Joined:
    """What joining from a Welcome produced: our identity, first epoch and its signer."""

    suite: CipherSuite
    signer: Signer
    epoch: EpochState
    welcome_signer: int


def bundle_for(
    welcome: Welcome, bundles: KeyPackageBundle | Sequence[KeyPackageBundle]
) -> KeyPackageBundle:
    """The bundle whose KeyPackageRef has an entry in the Welcome's secrets (section 12.4.3.1).

    WelcomeNotForUsError if none has (a KeyPackage of another cipher suite never has).
    """
    candidates = [bundles] if isinstance(bundles, KeyPackageBundle) else list(bundles)
    if not candidates:
        raise ValueError("Group.join needs at least one KeyPackageBundle")
    cs = welcome.cipher_suite
    wanted = {entry.new_member for entry in welcome.secrets}
    for bundle in candidates:
        kp = bundle.key_package
        if kp.cipher_suite == cs and key_package_ref(kp) in wanted:
            return bundle
    suites = sorted({b.key_package.cipher_suite for b in candidates})
    n = len(candidates)
    which = "our KeyPackage" if n == 1 else f"any of our {n} KeyPackages"
    raise WelcomeNotForUsError(
        f"Welcome (cipher suite {cs}) has no entry for {which} (cipher suites {suites})"
    )


def join_from_welcome(
    welcome_bytes: bytes,
    bundles: KeyPackageBundle | Sequence[KeyPackageBundle],
    *,
    ratchet_tree: bytes | None,
    psks: dict[bytes, bytes],
    config: GroupConfig,
) -> Joined:
    """Join from a Welcome (RFC 9420 section 12.4.3.1); see :meth:`Group.join`."""
    welcome = decode_body(welcome_bytes, Welcome, WelcomeError)
    bundle = bundle_for(welcome, bundles)
    kp = bundle.key_package
    suite = get_suite(kp.cipher_suite)
    trees: list[RatchetTree] = []

    def signer_key(info: GroupInfo) -> bytes:
        tree = tree_from(suite, info.extensions, ratchet_tree, "Welcome")
        trees.append(tree)
        leaf = tree.leaf(info.signer) if info.signer < tree.n_leaves else None
        if leaf is None:
            raise WelcomeError(f"GroupInfo signer {info.signer} is not a member")
        return leaf.signature_key

    def psk_lookup(pid: PreSharedKeyID) -> bytes | None:
        return psks.get(pid.psk_id) if pid.psktype == PSKType.external else None

    joined = process_welcome(
        welcome, kp, bundle.init_priv, signer_key=signer_key, psk_lookup=psk_lookup
    )
    info = joined.group_info
    gc = info.group_context
    tree = trees[-1]
    tree.verify_integrity(
        gc.group_id,
        suite,
        group_context_extensions=gc.extensions,
        expected_tree_hash=gc.tree_hash,
        credential_validator=config.credential_validator,
    )
    own = tree.find_leaf(kp.leaf_node)
    if own is None:
        raise WelcomeError("the group's tree does not contain our KeyPackage's leaf node")
    keys = TreePrivateKeys({2 * own: (bundle.encryption_priv, kp.leaf_node.encryption_key)})
    path_secret = joined.group_secrets.path_secret
    if path_secret is not None:
        node = common_ancestor(2 * own, 2 * info.signer)
        keys.update(treekem.derive_path_keys(suite, tree, node, path_secret).keys)
    secrets = joined.epoch.secrets
    epoch = EpochState(
        context=gc,
        context_bytes=gc.to_bytes(),
        tree=tree,
        own_leaf=own,
        keys=keys,
        secrets=secrets,
        secret_tree=new_secret_tree(suite, secrets, tree.n_leaves, config),
        interim_transcript_hash=joined.interim_transcript_hash,
        confirmation_tag=info.confirmation_tag,
    )
    signer = Signer(credential=kp.leaf_node.credential, signature_private_key=bundle.signature_priv)
    return Joined(suite=suite, signer=signer, epoch=epoch, welcome_signer=info.signer)
