"""Building our own commit (RFC 9420 section 12.4.1), its Welcome and GroupInfo (12.4.3).

:func:`build_commit` chooses the cached proposals to include by reference
(:func:`_select_cached`), then stages the commit with the same
:func:`~clave.mls.commit_stage.stage_commit` a receiver runs, on the making
side: create the UpdatePath if one is needed, sign the content under the old
GroupContext and compute the confirmation tag. A Welcome is made when the
commit adds members; the signed GroupInfo of the new epoch (with the ratchet
tree, the expensive part at scale) is built then, or when someone asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from . import framing, treekem
from .commit_stage import PathOutcome, stage_commit
from .group_info import create_group_info
from .group_records import (
    AppliedProposals,
    CachedProposal,
    CommitBase,
    EpochState,
    GroupEnv,
    StagedCommit,
)
from .key_package import create_key_package
from .key_schedule import confirmation_tag
from .proposals import Sourced, path_required
from .ratchet_tree import RatchetTree
from .structs import (
    Add,
    AuthenticatedContent,
    Commit,
    Extension,
    ExternalPub,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    GroupContextExtensions,
    GroupInfo,
    LeafNode,
    LeafNodeSource,
    MLSMessage,
    PreSharedKey,
    ProposalOrRef,
    ReInit,
    Remove,
    Sender,
    SenderType,
    Update,
    UpdatePath,
    WireFormat,
)
from .welcome import WelcomeRecipient, create_welcome


class Deferred:
    """Bytes computed on first use, then kept."""

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], bytes]) -> None:
        self._make = make
        self._value: bytes | None = None

    @classmethod
    def ready(cls, value: bytes) -> Deferred:
        out = cls(lambda: value)
        out._value = value
        return out

    def get(self) -> bytes:
        if self._value is None:
            self._value = self._make()
        return self._value


@dataclass(frozen=True, slots=True)
class BuiltCommit:
    """Our staged commit, its Welcome (when it adds members) and the new GroupInfo."""

    staged: StagedCommit
    welcome: bytes | None
    group_info: Deferred


def make_group_info(
    env: GroupEnv, epoch: EpochState, *, with_tree: bool, external_pub: bool
) -> GroupInfo:
    """The GroupInfo of ``epoch`` signed by us (RFC 9420 section 12.4.3)."""
    exts: list[Extension] = []
    if with_tree:
        exts.append(env.tree_encoder.extension(epoch.tree))
    if external_pub:
        _, pub = epoch.secrets.external_key_pair(env.suite)
        exts.append(ExternalPub(pub).to_extension())
    return create_group_info(
        env.suite,
        epoch.context,
        exts,
        epoch.confirmation_tag,
        epoch.own_leaf,
        env.signer.signature_private_key,
    )


def _welcome_group_info(env: GroupEnv, epoch: EpochState) -> GroupInfo:
    return make_group_info(
        env,
        epoch,
        with_tree=env.config.ratchet_tree_in_welcome,
        external_pub=env.config.external_pub_in_group_info,
    )


def leaf_template(env: GroupEnv) -> LeafNode:
    """An unsigned leaf carrying our credential, for an external joiner's path."""
    caps = env.config.capabilities
    if caps is None:
        caps = create_key_package(
            env.suite,
            env.signer.credential,
            rng=env.rng,
            now=env.now(),
            signature_priv=env.signer.signature_private_key,
        ).key_package.leaf_node.capabilities
    return LeafNode(
        encryption_key=b"",
        signature_key=env.signer.public_key(env.suite),
        credential=env.signer.credential,
        capabilities=caps,
        leaf_node_source=LeafNodeSource.commit,
        parent_hash=b"",
    )


@dataclass(frozen=True, slots=True)
class _Making:
    """The making side of :func:`~clave.mls.commit_stage.stage_commit`."""

    proposals: Sequence[Sourced]
    references: Sequence[ProposalOrRef]
    committer: int | None
    force_path: bool
    wire_format: WireFormat
    authenticated_data: bytes

    @property
    def own(self) -> bool:
        return True

    def path(
        self, env: GroupEnv, base: CommitBase, applied: AppliedProposals, provisional: GroupContext
    ) -> PathOutcome:
        tree = applied.tree
        committer = self.committer
        own_leaf = tree.ensure_free_leaf() if committer is None else committer
        joiner_leaf = own_leaf if committer is None else None
        if not (self.force_path or path_required(self.proposals)):
            keys = base.keys.copy()
            keys.prune(tree)
            return PathOutcome(
                own_leaf=own_leaf,
                keys=keys,
                commit_secret=None,
                update_path=None,
                path_leaf=None,
                joiner_leaf=joiner_leaf,
            )
        old = None if committer is None else tree.leaf(committer)
        created = treekem.create_update_path(
            env.suite,
            tree,
            own_leaf,
            leaf_template=old or leaf_template(env),
            signature_priv=env.signer.signature_private_key,
            group_context=provisional,
            exclude=[i for i, _ in applied.adds],
            rng=env.rng,
        )
        return PathOutcome(
            own_leaf=own_leaf,
            keys=created.private_keys,
            commit_secret=created.commit_secret,
            update_path=created.update_path,
            path_leaf=own_leaf,
            joiner_leaf=joiner_leaf,
            path_secret_for=created.path_secret_for,
        )

    def content(
        self, env: GroupEnv, base: CommitBase, update_path: UpdatePath | None
    ) -> AuthenticatedContent:
        committer = self.committer
        sender = Sender.member(committer) if committer is not None else Sender.new_member_commit()
        content = FramedContent(
            group_id=base.context.group_id,
            epoch=base.context.epoch,
            sender=sender,
            authenticated_data=bytes(self.authenticated_data),
            content=Commit(proposals=tuple(self.references), path=update_path),
        )
        # Signed under the old context (section 6.1); the signature does not cover
        # the confirmation tag, which needs the new epoch's key and is set in confirm().
        return framing.sign_content(
            env.suite,
            self.wire_format,
            content,
            env.signer.signature_private_key,
            base.context_bytes,
            b"",
        )

    def confirm(
        self,
        env: GroupEnv,
        auth: AuthenticatedContent,
        confirmation_key: bytes,
        confirmed: bytes,
        outcome: PathOutcome,
    ) -> tuple[AuthenticatedContent, bytes]:
        tag = confirmation_tag(env.suite, confirmation_key, confirmed)
        signed = FramedContentAuthData(signature=auth.auth.signature, confirmation_tag=tag)
        return replace(auth, auth=signed), tag


def build_commit(
    env: GroupEnv,
    base: CommitBase,
    by_value: Sequence[Sourced],
    *,
    by_reference: Sequence[CachedProposal],
    committer: int | None,
    force_path: bool,
    wire_format: WireFormat,
    authenticated_data: bytes,
) -> BuiltCommit:
    """Section 12.4.1: stage our commit, the new epoch, its Welcome and GroupInfo."""
    sourced: list[Sourced] = []
    references: list[ProposalOrRef] = []
    for cp in _select_cached(by_reference, by_value, committer, base.tree):
        idx = cp.sender.index if cp.sender.sender_type == SenderType.member else None
        sourced.append(Sourced(proposal=cp.proposal, sender=idx))
        references.append(ProposalOrRef.by_reference(cp.reference))
    for s in by_value:
        sourced.append(s)
        references.append(ProposalOrRef.by_value(s.proposal))
    side = _Making(
        proposals=sourced,
        references=references,
        committer=committer,
        force_path=force_path,
        wire_format=wire_format,
        authenticated_data=authenticated_data,
    )
    staged = stage_commit(env, base, sourced, committer=committer, side=side)
    epoch = staged.epoch
    adds = staged.applied.adds
    if not adds:
        # Signed only if someone asks (CommitOutput.group_info): at scale, encoding
        # the ratchet tree costs more than the rest of the commit.
        def later() -> bytes:
            return MLSMessage(_welcome_group_info(env, epoch)).to_bytes()

        return BuiltCommit(staged=staged, welcome=None, group_info=Deferred(later))
    info = _welcome_group_info(env, epoch)
    welcome = create_welcome(
        env.suite,
        info,
        staged.joiner_secret,
        [WelcomeRecipient(key_package=kp, path_secret=staged.path_secret_for(i)) for i, kp in adds],
        rng=env.rng,
        psks=[(pid, env.psks.value(pid)) for pid in staged.applied.psk_ids],
    )
    return BuiltCommit(
        staged=staged,
        welcome=MLSMessage(welcome).to_bytes(),
        group_info=Deferred.ready(MLSMessage(info).to_bytes()),
    )


def _select_cached(
    cached: Sequence[CachedProposal],
    by_value: Sequence[Sourced],
    committer: int | None,
    tree: RatchetTree,
) -> list[CachedProposal]:
    """The cached proposals a commit includes by reference (RFC 9420 sections 12.2, 12.4).

    The committer SHOULD include every valid proposal of the epoch as long as
    the list stays valid, so conflicting ones are left out rather than making
    the commit impossible: our own Update (superseded by the path); a Remove of
    the committer (another member must commit it) or of a leaf already removed;
    of several Update/Remove proposals for one leaf, any Remove wins, else the
    most recent Update; an Add of a client already in the group (and staying)
    or already added; a repeated PreSharedKeyID; all but the most recent
    GroupContextExtensions (none if one is given by value); a ReInit unless it
    is the only proposal. Order is preserved.
    """
    if not cached:
        return []
    explicit = [s.proposal for s in by_value]
    removed = {p.removed for p in explicit if isinstance(p, Remove)}
    psk_ids = {p.psk.to_bytes() for p in explicit if isinstance(p, PreSharedKey)}
    gce_given = any(isinstance(p, GroupContextExtensions) for p in explicit)
    keep: set[int] = set()
    for i, cp in enumerate(cached):
        p = cp.proposal
        if isinstance(p, Remove):
            live = 0 <= p.removed < tree.n_leaves and tree.leaf(p.removed) is not None
            if live and p.removed != committer and p.removed not in removed:
                removed.add(p.removed)
                keep.add(i)
    latest_update: dict[int, int] = {}
    latest_gce: int | None = None
    reinits: list[int] = []
    sig_keys: set[bytes] = set()
    identities: set[bytes] = set()
    for j, leaf in tree.leaf_nodes():
        if j not in removed:
            sig_keys.add(leaf.signature_key)
            identities.add(leaf.credential.identity)
    for p in explicit:
        if isinstance(p, Add):
            sig_keys.add(p.key_package.leaf_node.signature_key)
            identities.add(p.key_package.leaf_node.credential.identity)
    identities.discard(b"")
    for i, cp in enumerate(cached):
        p = cp.proposal
        sender = cp.sender.index if cp.sender.sender_type == SenderType.member else None
        if isinstance(p, Update):
            if sender is not None and sender != committer and sender not in removed:
                latest_update[sender] = i
        elif isinstance(p, GroupContextExtensions):
            if not gce_given:
                latest_gce = i
        elif isinstance(p, Add):
            new = p.key_package.leaf_node
            ident = new.credential.identity
            if new.signature_key in sig_keys or (ident and ident in identities):
                continue
            sig_keys.add(new.signature_key)
            if ident:
                identities.add(ident)
            keep.add(i)
        elif isinstance(p, PreSharedKey):
            if p.psk.to_bytes() not in psk_ids:
                psk_ids.add(p.psk.to_bytes())
                keep.add(i)
        elif isinstance(p, ReInit):
            reinits.append(i)
        elif not isinstance(p, Remove):
            keep.add(i)
    keep.update(latest_update.values())
    if latest_gce is not None:
        keep.add(latest_gce)
    if reinits and not keep and not explicit:
        keep.add(reinits[0])
    return [cp for i, cp in enumerate(cached) if i in keep]
