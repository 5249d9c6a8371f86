"""Joining by external commit (RFC 9420 section 12.4.3.2).

The joiner verifies the GroupInfo and its ratchet tree, derives an
``init_secret`` from the group's ``external_pub`` (section 8.3) and commits an
ExternalInit (plus a Remove of its old leaf when resyncing) with a path, as a
PublicMessage. The commit itself is built like any other
(:func:`clave.mls.commit_build.build_commit`, from the :class:`CommitBase` made
here); :meth:`clave.mls.group.Group.join_external` puts the two together.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import framing
from .ciphersuite import CipherSuite, get_suite
from .errors import ValidationError
from .group_info import verify_group_info
from .group_records import CommitBase, GroupConfig, Rng, Roster, decode_body, tree_from
from .key_schedule import external_init_secret_sender, interim_transcript_hash
from .proposals import Sourced
from .structs import (
    AuthenticatedContent,
    ExtensionType,
    ExternalInit,
    ExternalPub,
    GroupInfo,
    MLSMessage,
    Proposal,
    Remove,
    find_extension,
)
from .treekem import TreePrivateKeys


@dataclass(frozen=True, slots=True)
class ExternalJoin:
    """A verified GroupInfo turned into what the external commit builds on."""

    suite: CipherSuite
    base: CommitBase
    proposals: list[Sourced]


def prepare_external_join(
    group_info_bytes: bytes,
    *,
    rng: Rng,
    ratchet_tree: bytes | None,
    resync_leaf: int | None,
    config: GroupConfig,
) -> ExternalJoin:
    """Verify the GroupInfo and its tree; the base and proposals of the external commit."""
    info = decode_body(group_info_bytes, GroupInfo, ValidationError)
    gc = info.group_context
    suite = get_suite(gc.cipher_suite)
    tree = tree_from(suite, info.extensions, ratchet_tree, "GroupInfo")
    signer_leaf = tree.leaf(info.signer) if info.signer < tree.n_leaves else None
    if signer_leaf is None:
        raise ValidationError(f"GroupInfo signer {info.signer} is not a member")
    verify_group_info(suite, info, signer_leaf.signature_key)
    tree.verify_integrity(
        gc.group_id,
        suite,
        group_context_extensions=gc.extensions,
        expected_tree_hash=gc.tree_hash,
        credential_validator=config.credential_validator,
    )
    ext = find_extension(info.extensions, ExtensionType.external_pub)
    if ext is None:
        raise ValidationError("GroupInfo has no external_pub extension")
    external_pub = ExternalPub.from_extension(ext).external_pub
    kem_output, init_secret = external_init_secret_sender(suite, external_pub, rng=rng)
    base = CommitBase(
        context=gc,
        context_bytes=gc.to_bytes(),
        tree=tree,
        keys=TreePrivateKeys(),
        init_secret=init_secret,
        interim_transcript_hash=interim_transcript_hash(
            suite, gc.confirmed_transcript_hash, info.confirmation_tag
        ),
        roster=Roster.of(tree),
        external_secret=None,
    )
    proposals: list[Proposal] = [ExternalInit(kem_output)]
    if resync_leaf is not None:
        proposals.append(Remove(resync_leaf))
    return ExternalJoin(
        suite=suite, base=base, proposals=[Sourced(proposal=p, sender=None) for p in proposals]
    )


def external_commit_message(
    suite: CipherSuite, content: AuthenticatedContent, base: CommitBase
) -> bytes:
    """The external commit as a PublicMessage (no membership tag: section 6.2)."""
    pub = framing.protect_public(suite, content, base.context, None)
    return MLSMessage(pub).to_bytes()
