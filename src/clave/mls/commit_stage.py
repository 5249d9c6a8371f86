"""Staging a commit: the new epoch it creates, checked on copies (RFC 9420 sections 12.2-12.4).

:func:`stage_commit` is the one path from a proposal list to a new epoch, for
the commits we make (:mod:`clave.mls.commit_build`) and for those we receive
(:func:`stage_received_commit`): validate and apply the proposals to a copy of
the tree (sections 12.2, 12.3), ask the policy, create or merge the UpdatePath
(section 12.4.1 / 12.4.2), update the transcript hash, GroupContext and key
schedule (section 8) and set or verify the confirmation tag. What differs
between the two sides is a :class:`CommitSide`. Nothing here changes the live
group state: the caller installs the staged epoch once everything passed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from . import treekem
from .errors import CommitError, MLSError, PolicyError, ProposalError, StateError
from .events import CommitSummary, PolicyInput
from .group_records import (
    AppliedProposals,
    CachedProposal,
    CommitBase,
    EpochState,
    GroupEnv,
    Roster,
    StagedCommit,
    member_of,
    new_secret_tree,
)
from .key_package import validate_key_package_for_group
from .key_schedule import (
    confirmed_transcript_hash,
    derive_epoch,
    external_init_secret_receiver,
    interim_transcript_hash,
    verify_confirmation_tag,
)
from .leaf_node import validate_leaf_node
from .proposals import Sourced, path_required, validate_proposal_list
from .ratchet_tree import RatchetTree
from .structs import (
    Add,
    AuthenticatedContent,
    Commit,
    GroupContext,
    KeyPackage,
    LeafNodeSource,
    ProposalOrRefType,
    Remove,
    SenderType,
    Update,
    UpdatePath,
)
from .treekem import MemberIndex, TreePrivateKeys

# -- proposals (sections 10.1, 12.1, 12.2, 12.3) ----------------------------------------


def validate_key_package(
    env: GroupEnv, kp: KeyPackage, tree: RatchetTree, context: GroupContext
) -> None:
    """Section 10.1 plus section 7.3 against the staged tree and extensions."""
    validate_key_package_for_group(kp, context, now=env.now())
    validate_leaf_node(
        env.suite,
        kp.leaf_node,
        expected_source=LeafNodeSource.key_package,
        group_context_extensions=context.extensions,
        tree=MemberIndex(tree),
        now=env.now(),
        credential_validator=env.config.credential_validator,
    )


def validate_update(
    env: GroupEnv, p: Update, leaf_index: int, tree: RatchetTree, context: GroupContext
) -> None:
    validate_leaf_node(
        env.suite,
        p.leaf_node,
        expected_source=LeafNodeSource.update,
        group_id=context.group_id,
        leaf_index=leaf_index,
        group_context_extensions=context.extensions,
        tree=MemberIndex(tree),
        credential_validator=env.config.credential_validator,
    )


def check_policy(
    env: GroupEnv,
    kind: str,
    committer: int | None,
    proposals: Sequence[Sourced],
    *,
    own: bool,
    roster: Roster,
    context: GroupContext,
) -> None:
    """Ask the application whether this change is allowed (raises PolicyError)."""
    info = PolicyInput(
        kind=kind,
        committer=committer,
        proposals=tuple((s.sender, s.proposal) for s in proposals),
        roster=roster.members(),
        extensions=context.extensions,
        own=own,
    )
    try:
        env.policy(info)
    except PolicyError:
        raise
    except MLSError as exc:
        raise PolicyError(str(exc)) from exc


def apply_proposals(
    env: GroupEnv, base: CommitBase, proposals: Sequence[Sourced], *, committer: int | None
) -> AppliedProposals:
    """Validate (section 12.2) and apply (section 12.3) to copies of tree and context."""
    tree = base.tree.copy()
    external = committer is None
    removed_ids = {s.proposal.removed for s in proposals if isinstance(s.proposal, Remove)}

    def same_client(a: Add) -> int | None:
        # Checked before any proposal is applied: the members are the base roster.
        new = a.key_package.leaf_node
        ident = new.credential.identity
        for m in base.roster.members():
            if m.signature_key == new.signature_key or (ident and m.credential.identity == ident):
                return m.leaf_index
        return None

    def supported_by_all(ptype: int) -> bool:
        return all(
            ptype in leaf.capabilities.proposals
            for i, leaf in tree.leaf_nodes()
            if i not in removed_ids
        )

    shape = validate_proposal_list(
        proposals,
        committer=committer,
        external=external,
        nh=env.suite.nh,
        is_member_leaf=lambda i: i < tree.n_leaves and tree.leaf(i) is not None,
        same_client_as_member=same_client,
        member_supports_proposal_type=supported_by_all,
        current_version=int(base.context.version),
    )
    applied = AppliedProposals(tree=tree, extensions=base.context.extensions)
    if shape.gces:
        applied.extensions = shape.gces[0].extensions
        applied.extensions_changed = True
    staged_context = replace(base.context, extensions=applied.extensions)
    for leaf_index, upd in shape.updates:
        validate_update(env, upd, leaf_index, tree, staged_context)
        tree.update_leaf(leaf_index, upd.leaf_node)
        applied.updated.append(leaf_index)
    for rem in shape.removes:
        applied.removed.append(member_of(tree, rem.removed))
        tree.remove_leaf(rem.removed)
    for add in shape.adds:
        validate_key_package(env, add.key_package, tree, staged_context)
        applied.adds.append((tree.add_leaf(add.key_package.leaf_node), add.key_package))
    applied.psk_ids = [p.psk for p in shape.psks]
    if shape.external_inits:
        applied.external_init = shape.external_inits[0]
    if applied.extensions_changed:
        for i, leaf in tree.leaf_nodes():
            try:
                validate_leaf_node(
                    env.suite,
                    leaf,
                    expected_source=None,
                    group_id=base.context.group_id,
                    leaf_index=i,
                    group_context_extensions=applied.extensions,
                )
            except MLSError as exc:
                raise ProposalError(
                    f"GroupContextExtensions not supported by leaf {i}: {exc}"
                ) from exc
    return applied


# -- the shared staging (sections 8, 12.4) ----------------------------------------------


def _no_path_secret(_: int) -> bytes | None:
    return None


@dataclass(frozen=True, slots=True)
class PathOutcome:
    """The UpdatePath step of a commit (section 12.4.1 / 12.4.2), done on the staged tree."""

    own_leaf: int
    """Our leaf in the new epoch."""
    keys: TreePrivateKeys
    """Our HPKE private keys for the new epoch's tree."""
    commit_secret: bytes | None
    update_path: UpdatePath | None
    path_leaf: int | None
    """The leaf the path replaced (the committer's), None without a path."""
    joiner_leaf: int | None = None
    """An external committer's new leaf."""
    path_secret_for: Callable[[int], bytes | None] = _no_path_secret
    removed_self: bool = False


class CommitSide(Protocol):
    """What differs between staging our own commit and one we received."""

    @property
    def own(self) -> bool:
        """True for our own commit (policy input, init secret)."""
        ...

    def path(
        self, env: GroupEnv, base: CommitBase, applied: AppliedProposals, provisional: GroupContext
    ) -> PathOutcome:
        """Create (ours) or check and merge (theirs) the UpdatePath in ``applied.tree``."""
        ...

    def content(
        self, env: GroupEnv, base: CommitBase, update_path: UpdatePath | None
    ) -> AuthenticatedContent:
        """The commit's content, signed under the old GroupContext (section 6.1)."""
        ...

    def confirm(
        self,
        env: GroupEnv,
        auth: AuthenticatedContent,
        confirmation_key: bytes,
        confirmed: bytes,
        outcome: PathOutcome,
    ) -> tuple[AuthenticatedContent, bytes]:
        """Set (ours) or verify (theirs) the confirmation tag -> (content, tag)."""
        ...


def stage_commit(
    env: GroupEnv,
    base: CommitBase,
    proposals: Sequence[Sourced],
    *,
    committer: int | None,
    side: CommitSide,
) -> StagedCommit:
    """Sections 12.2-12.4 and 8: the epoch a commit of ``proposals`` creates from ``base``."""
    suite = env.suite
    external = committer is None
    applied = apply_proposals(env, base, proposals, committer=committer)
    check_policy(
        env,
        "external_commit" if external else "commit",
        committer,
        proposals,
        own=side.own,
        roster=base.roster,
        context=base.context,
    )
    new_epoch = base.context.epoch + 1
    provisional = replace(base.context, epoch=new_epoch, extensions=applied.extensions)
    outcome = side.path(env, base, applied, provisional)
    auth = side.content(env, base, outcome.update_path)
    tree = applied.tree
    confirmed = confirmed_transcript_hash(
        suite, base.interim_transcript_hash, auth.confirmed_transcript_hash_input().to_bytes()
    )
    context = GroupContext(
        version=base.context.version,
        cipher_suite=base.context.cipher_suite,
        group_id=base.context.group_id,
        epoch=new_epoch,
        tree_hash=tree.tree_hash(),
        confirmed_transcript_hash=confirmed,
        extensions=applied.extensions,
    )
    context_bytes = context.to_bytes()
    init_secret = base.init_secret
    if applied.external_init is not None and not side.own:
        assert base.external_secret is not None
        ext_priv, _ = suite.derive_key_pair(base.external_secret)
        init_secret = external_init_secret_receiver(
            suite, ext_priv, applied.external_init.kem_output
        )
    psk = env.psks.secret(suite, applied.psk_ids)
    ks = derive_epoch(suite, init_secret, outcome.commit_secret, psk, context_bytes)
    auth, tag = side.confirm(env, auth, ks.secrets.confirmation_key, confirmed, outcome)
    # An external joiner counts as added (RFC 9420 section 12.4.3.2).
    added = [i for i, _ in applied.adds]
    if outcome.joiner_leaf is not None:
        added.append(outcome.joiner_leaf)
    changed = [*applied.updated, *(m.leaf_index for m in applied.removed), *added]
    if outcome.path_leaf is not None:
        changed.append(outcome.path_leaf)
    roster = base.roster.changed(tree, changed)
    summary = CommitSummary(
        epoch=new_epoch,
        committer=committer,
        external=external,
        added=tuple(roster.member(i) for i in added),
        removed=tuple(applied.removed),
        updated=tuple(applied.updated),
        extensions_changed=applied.extensions_changed,
        psk_count=len(applied.psk_ids),
        has_path=outcome.update_path is not None,
        removed_self=outcome.removed_self,
    )
    epoch = EpochState(
        context=context,
        context_bytes=context_bytes,
        tree=tree,
        own_leaf=outcome.own_leaf,
        keys=outcome.keys,
        secrets=ks.secrets,
        secret_tree=new_secret_tree(suite, ks.secrets, tree.n_leaves, env.config),
        interim_transcript_hash=interim_transcript_hash(suite, confirmed, tag),
        confirmation_tag=tag,
        roster=roster,
    )
    return StagedCommit(
        epoch=epoch,
        summary=summary,
        content=auth,
        joiner_secret=ks.joiner_secret,
        applied=applied,
        path_secret_for=outcome.path_secret_for,
    )


# -- a received commit (section 12.4.2) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Received:
    """The receiving side of :func:`stage_commit`: check and merge the sender's path."""

    received: AuthenticatedContent
    commit: Commit
    proposals: Sequence[Sourced]
    external: bool
    committer: int | None
    own_leaf: int
    own_update: tuple[bytes, bytes] | None

    @property
    def own(self) -> bool:
        return False

    def path(
        self, env: GroupEnv, base: CommitBase, applied: AppliedProposals, provisional: GroupContext
    ) -> PathOutcome:
        commit = self.commit
        if commit.path is None and (self.external or path_required(self.proposals)):
            raise CommitError("commit has no path, but its proposals require one")
        validator = env.config.credential_validator
        if self.external and applied.removed and commit.path is not None and validator is not None:
            # Section 12.4.3.2: with a Remove (resync), the joiner's leaf must meet the
            # criteria of an Update for the removed leaf: the AS judges it as a successor.
            old_leaf = base.tree.leaf(applied.removed[0].leaf_index)
            if not validator(commit.path.leaf_node, old_leaf):
                raise CommitError(
                    "external commit's leaf is not an acceptable successor of the leaf it removes"
                )
        tree = applied.tree
        keys = base.keys.copy()
        if self.own_update is not None:
            keys.set(2 * self.own_leaf, *self.own_update)
        own_removed = any(m.leaf_index == self.own_leaf for m in applied.removed)
        if commit.path is None:
            keys.prune(tree)
            return PathOutcome(
                own_leaf=self.own_leaf,
                keys=keys,
                commit_secret=None,
                update_path=None,
                path_leaf=None,
                removed_self=own_removed,
            )
        sender_leaf = tree.ensure_free_leaf() if self.external else self.committer
        assert sender_leaf is not None
        commit_secret: bytes | None = None
        if own_removed:
            treekem.merge_update_path(
                env.suite,
                tree,
                sender_leaf,
                commit.path,
                group_id=base.context.group_id,
                group_context_extensions=applied.extensions,
                credential_validator=validator,
            )
        else:
            _, derivation = treekem.process_update_path(
                env.suite,
                tree,
                sender_leaf,
                commit.path,
                own_leaf=self.own_leaf,
                private_keys=keys,
                group_context=provisional,
                exclude=[i for i, _ in applied.adds],
                credential_validator=validator,
            )
            commit_secret = derivation.commit_secret
            keys.prune(tree)
            keys.update(derivation.keys)
        return PathOutcome(
            own_leaf=self.own_leaf,
            keys=keys,
            commit_secret=commit_secret,
            update_path=commit.path,
            path_leaf=sender_leaf,
            joiner_leaf=sender_leaf if self.external else None,
            removed_self=own_removed,
        )

    def content(
        self, env: GroupEnv, base: CommitBase, update_path: UpdatePath | None
    ) -> AuthenticatedContent:
        return self.received

    def confirm(
        self,
        env: GroupEnv,
        auth: AuthenticatedContent,
        confirmation_key: bytes,
        confirmed: bytes,
        outcome: PathOutcome,
    ) -> tuple[AuthenticatedContent, bytes]:
        tag = auth.auth.confirmation_tag
        if tag is None:
            raise CommitError("commit without a confirmation tag")
        if not outcome.removed_self:
            verify_confirmation_tag(env.suite, confirmation_key, confirmed, tag)
        return auth, tag


def stage_received_commit(
    env: GroupEnv,
    epoch: EpochState,
    auth: AuthenticatedContent,
    *,
    cached: Mapping[bytes, CachedProposal],
    own_update_keys: Mapping[bytes, tuple[bytes, bytes]],
) -> StagedCommit:
    """Section 12.4.2: validate a commit from another member or an external joiner.

    ``cached`` are this epoch's proposals by reference; ``own_update_keys`` the
    leaf keys of our own Update proposals, by reference.
    """
    content = auth.content
    commit = content.content
    assert isinstance(commit, Commit)
    sender = content.sender
    external = sender.sender_type == SenderType.new_member_commit
    if not external and sender.sender_type != SenderType.member:
        raise CommitError(f"a commit cannot come from a {sender.sender_type.name} sender")
    committer = sender.index
    if committer is not None and committer == epoch.own_leaf:
        raise StateError("this is our own commit: merge_pending_commit() applies it")
    sourced: list[Sourced] = []
    own_update: tuple[bytes, bytes] | None = None
    for por in commit.proposals:
        if por.type == ProposalOrRefType.reference:
            if external:
                raise CommitError("an external commit may not include proposals by reference")
            assert por.reference is not None
            found = cached.get(por.reference)
            if found is None:
                raise ProposalError("commit references a proposal this member has not seen")
            s = found.sender
            idx = s.index if s.sender_type == SenderType.member else None
            sourced.append(Sourced(proposal=found.proposal, sender=idx))
            own_update = own_update_keys.get(por.reference, own_update)
        else:
            assert por.proposal is not None
            if isinstance(por.proposal, Update):
                raise ProposalError("a commit may not carry an Update proposal by value")
            sourced.append(Sourced(proposal=por.proposal, sender=committer))
    side = _Received(
        received=auth,
        commit=commit,
        proposals=sourced,
        external=external,
        committer=committer,
        own_leaf=epoch.own_leaf,
        own_update=own_update,
    )
    return stage_commit(env, CommitBase.of(epoch), sourced, committer=committer, side=side)
