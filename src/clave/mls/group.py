"""One member's MLS group state machine (RFC 9420 sections 8, 11, 12).

Sans-I/O: bytes in, bytes and events out. Randomness (``rng``) and time
(``now``, Unix seconds) are injected. Every incoming message is processed on
staged copies of the tree and keys; the live state changes only when every
check the RFC requires has passed, so a rejected message leaves the group's
epoch, tree, roster, transcript hashes, key schedule, pending proposals and
pending commit as they were.

One state does move, by design of the secret tree (RFC 9420 section 9): once a
PrivateMessage's sender data decrypts (only a member of the epoch can produce
that, e.g. a genuine message whose content was corrupted in transit), the
sender's hash ratchet for the message's content type (application or
handshake) is moved forward to the generation its sender data names *before*
the content is decrypted, and stays there whatever check then fails (content
AEAD, parsing, signature, commit or proposal validation). The key of that
generation and of the generations skipped on the way are retained, not
consumed, so the genuine message and earlier ones still decrypt; skipped keys
beyond the retention window (``max_retained_keys``, 256) are deleted, as the
genuine message would have deleted them. A message whose sender data does not
decrypt, or that names a consumed, expired or too distant generation, changes
nothing. tests/mls/test_rejected_private_message.py shows each case.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import framing, treekem
from .ciphersuite import CipherSuite, get_suite
from .errors import (
    CommitError,
    MLSError,
    PolicyError,
    ProposalError,
    StateError,
    ValidationError,
    WelcomeError,
)
from .events import (
    ApplicationMessage,
    CommitProcessed,
    CommitSummary,
    Event,
    Member,
    Policy,
    PolicyInput,
    ProposalReceived,
    allow_all,
)
from .group_info import sign_group_info, verify_group_info
from .key_package import KeyPackageBundle, create_key_package, validate_key_package_for_group
from .key_schedule import (
    EpochSecrets,
    confirmation_tag,
    confirmed_transcript_hash,
    derive_epoch,
    external_init_secret_receiver,
    external_init_secret_sender,
    interim_transcript_hash,
    verify_confirmation_tag,
)
from .leaf_node import CredentialValidator, make_leaf_node, validate_leaf_node
from .proposals import EXTERNAL_SENDER_TYPES, Sourced, path_required, validate_proposal_list
from .psk import psk_secret
from .ratchet_tree import RatchetTree
from .secret_tree import SecretTree
from .structs import (
    Add,
    AuthenticatedContent,
    Capabilities,
    Commit,
    Credential,
    Extension,
    ExtensionType,
    ExternalInit,
    ExternalPub,
    ExternalSenders,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    GroupContextExtensions,
    GroupInfo,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    MLSMessage,
    PreSharedKey,
    PreSharedKeyID,
    PrivateMessage,
    Proposal,
    ProposalOrRef,
    ProposalOrRefType,
    PSKType,
    PublicMessage,
    ReInit,
    Remove,
    Sender,
    SenderType,
    Update,
    Welcome,
    WireFormat,
    find_extension,
    proposal_from_bytes,
    proposal_to_bytes,
)
from .tree_math import common_ancestor
from .treekem import TreePrivateKeys
from .welcome import WelcomeRecipient, create_welcome, process_welcome

Rng = Callable[[int], bytes]
Clock = Callable[[], int]


@dataclass(frozen=True, slots=True)
class Signer:
    """A member's identity: credential and signature key pair (RFC 9420 section 5.3)."""

    credential: Credential
    signature_private_key: bytes

    def public_key(self, suite: CipherSuite) -> bytes:
        return suite.signature_public_key(self.signature_private_key)


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """Local choices that do not affect interoperability."""

    handshake_wire_format: WireFormat = WireFormat.mls_private_message
    padding_block: int = 32
    max_forward_distance: int = 1000
    ratchet_tree_in_welcome: bool = True
    external_pub_in_group_info: bool = True
    capabilities: Capabilities | None = None
    credential_validator: CredentialValidator | None = None
    resumption_psk_epochs: int = 16
    """Past epochs whose ``resumption_psk`` is kept for resumption PSKs (section 8.6)."""


DEFAULT_CONFIG = GroupConfig()


@dataclass(frozen=True, slots=True)
class CommitOutput:
    """What :meth:`Group.commit` produces; the commit stays pending until merged."""

    commit: bytes
    welcome: bytes | None
    group_info: bytes
    summary: CommitSummary


@dataclass(slots=True)
class _Epoch:
    """Everything that changes at an epoch boundary."""

    context: GroupContext
    context_bytes: bytes
    tree: RatchetTree
    own_leaf: int
    keys: TreePrivateKeys  # own leaf and direct-path HPKE key pairs
    secrets: EpochSecrets
    secret_tree: SecretTree
    interim_transcript_hash: bytes
    confirmation_tag: bytes


@dataclass(frozen=True, slots=True)
class _Base:
    """What a commit builds on: the current epoch, or a GroupInfo for an external joiner."""

    context: GroupContext
    context_bytes: bytes
    tree: RatchetTree
    keys: TreePrivateKeys
    init_secret: bytes
    interim_transcript_hash: bytes


@dataclass(frozen=True, slots=True)
class _CachedProposal:
    sender: Sender
    proposal: Proposal
    reference: bytes


@dataclass(frozen=True, slots=True)
class _Built:
    epoch: _Epoch
    summary: CommitSummary
    content: AuthenticatedContent
    welcome: bytes | None
    group_info: bytes


@dataclass(slots=True)
class _Applied:
    """A proposal list applied (section 12.3) to copies of the tree and extensions."""

    tree: RatchetTree
    extensions: tuple[Extension, ...]
    adds: list[tuple[int, KeyPackage]] = field(default_factory=list)
    removed: list[Member] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    psk_ids: list[PreSharedKeyID] = field(default_factory=list)
    external_init: ExternalInit | None = None
    extensions_changed: bool = False


def _member(tree: RatchetTree, index: int) -> Member:
    leaf = tree.leaf(index) if 0 <= index < tree.n_leaves else None
    if leaf is None:
        raise ValidationError(f"leaf {index} is not a member")
    return Member(index, leaf.credential, leaf.signature_key, leaf.encryption_key)


def _new_secret_tree(
    suite: CipherSuite, secrets: EpochSecrets, n_leaves: int, cfg: GroupConfig
) -> SecretTree:
    return SecretTree(
        suite, secrets.encryption_secret, n_leaves, max_forward_distance=cfg.max_forward_distance
    )


class Group:
    """One member's view of an MLS group (RFC 9420).

    Create with :meth:`create`, :meth:`join` (Welcome) or :meth:`join_external`;
    restore with :meth:`from_bytes`. Outgoing handshake messages are
    PrivateMessages unless the config or the call asks for PublicMessage.
    """

    def __init__(
        self,
        suite: CipherSuite,
        signer: Signer,
        epoch: _Epoch | None,
        *,
        rng: Rng,
        now: Clock,
        policy: Policy = allow_all,
        config: GroupConfig = DEFAULT_CONFIG,
        psks: dict[bytes, bytes] | None = None,
    ) -> None:
        self._suite = suite
        self._signer = signer
        self._rng = rng
        self._now = now
        self._policy = policy
        self._config = config
        # (group_id, epoch) -> resumption_psk of this and recent epochs (section 8.6).
        self._resumption_psks: dict[tuple[bytes, int], bytes] = {}
        if epoch is not None:
            self._epoch = epoch
            self._remember_resumption_psk(epoch)
        self._psks: dict[bytes, bytes] = dict(psks or {})
        self._proposals: dict[bytes, _CachedProposal] = {}
        self._own_update_keys: dict[bytes, tuple[bytes, bytes]] = {}
        self._pending: tuple[_Built, CommitOutput] | None = None
        self._active = True
        self._welcome_signer: int | None = None

    # ------------------------------------------------------------------ creation

    @classmethod
    def create(
        cls,
        suite_id: int,
        group_id: bytes,
        signer: Signer,
        *,
        rng: Rng,
        now: Clock,
        extensions: Sequence[Extension] = (),
        policy: Policy = allow_all,
        config: GroupConfig = DEFAULT_CONFIG,
    ) -> Group:
        """Create a one-member group at epoch 0 (RFC 9420 section 11)."""
        suite = get_suite(suite_id)
        own = create_key_package(
            suite,
            signer.credential,
            rng=rng,
            now=now(),
            signature_priv=signer.signature_private_key,
            capabilities=config.capabilities,
        )
        leaf = own.key_package.leaf_node
        tree = RatchetTree.create(suite, leaf)
        context = GroupContext(
            own.key_package.version, suite_id, group_id, 0, tree.tree_hash(), b"", tuple(extensions)
        )
        context_bytes = context.to_bytes()
        secrets = derive_epoch(suite, rng(suite.nh), None, None, context_bytes).secrets
        tag = confirmation_tag(suite, secrets.confirmation_key, b"")
        keys = TreePrivateKeys({0: (own.encryption_priv, leaf.encryption_key)})
        epoch = _Epoch(
            context,
            context_bytes,
            tree,
            0,
            keys,
            secrets,
            _new_secret_tree(suite, secrets, 1, config),
            interim_transcript_hash(suite, b"", tag),
            tag,
        )
        return cls(suite, signer, epoch, rng=rng, now=now, policy=policy, config=config)

    @classmethod
    def join(
        cls,
        welcome_bytes: bytes,
        bundle: KeyPackageBundle,
        *,
        rng: Rng,
        now: Clock,
        ratchet_tree: bytes | None = None,
        psks: dict[bytes, bytes] | None = None,
        policy: Policy = allow_all,
        config: GroupConfig = DEFAULT_CONFIG,
    ) -> Group:
        """Join from a Welcome (RFC 9420 section 12.4.3.1).

        ``ratchet_tree`` is the encoded ``optional<Node> ratchet_tree<V>`` when
        the Welcome's GroupInfo does not carry it; external PSKs are looked up
        in ``psks`` by psk_id.
        """
        msg = _decode_message(welcome_bytes)
        if not isinstance(msg.body, Welcome):
            raise WelcomeError(f"expected a Welcome, got a {msg.wire_format.name}")
        kp = bundle.key_package
        suite = get_suite(kp.cipher_suite)
        known = dict(psks or {})
        trees: list[RatchetTree] = []

        def signer_key(info: GroupInfo) -> bytes:
            tree = _tree_from(suite, info.extensions, ratchet_tree, "Welcome")
            trees.append(tree)
            leaf = tree.leaf(info.signer) if info.signer < tree.n_leaves else None
            if leaf is None:
                raise WelcomeError(f"GroupInfo signer {info.signer} is not a member")
            return leaf.signature_key

        def psk_lookup(pid: PreSharedKeyID) -> bytes | None:
            return known.get(pid.psk_id) if pid.psktype == PSKType.external else None

        joined = process_welcome(
            msg.body, kp, bundle.init_priv, signer_key=signer_key, psk_lookup=psk_lookup
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
        epoch = _Epoch(
            gc,
            gc.to_bytes(),
            tree,
            own,
            keys,
            secrets,
            _new_secret_tree(suite, secrets, tree.n_leaves, config),
            joined.interim_transcript_hash,
            info.confirmation_tag,
        )
        signer = Signer(kp.leaf_node.credential, bundle.signature_priv)
        group = cls(
            suite, signer, epoch, rng=rng, now=now, policy=policy, config=config, psks=known
        )
        group._welcome_signer = info.signer
        return group

    @classmethod
    def join_external(
        cls,
        group_info_bytes: bytes,
        signer: Signer,
        *,
        rng: Rng,
        now: Clock,
        ratchet_tree: bytes | None = None,
        resync_leaf: int | None = None,
        authenticated_data: bytes = b"",
        policy: Policy = allow_all,
        config: GroupConfig = DEFAULT_CONFIG,
    ) -> tuple[Group, bytes]:
        """Join by external commit (RFC 9420 section 12.4.3.2).

        Returns the group, already in the new epoch, and the commit to send
        (always a PublicMessage). ``resync_leaf`` removes our old appearance.
        """
        msg = _decode_message(group_info_bytes)
        if not isinstance(msg.body, GroupInfo):
            raise ValidationError(f"expected a GroupInfo, got a {msg.wire_format.name}")
        info = msg.body
        gc = info.group_context
        suite = get_suite(gc.cipher_suite)
        tree = _tree_from(suite, info.extensions, ratchet_tree, "GroupInfo")
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
        base = _Base(
            gc,
            gc.to_bytes(),
            tree,
            TreePrivateKeys(),
            init_secret,
            interim_transcript_hash(suite, gc.confirmed_transcript_hash, info.confirmation_tag),
        )
        proposals: list[Proposal] = [ExternalInit(kem_output)]
        if resync_leaf is not None:
            proposals.append(Remove(resync_leaf))
        # The joiner has no epoch of its own until its commit is built.
        group = cls(suite, signer, None, rng=rng, now=now, policy=policy, config=config)
        built = group._build_commit(
            base,
            [Sourced(p, None) for p in proposals],
            by_reference=(),
            committer=None,
            force_path=True,
            wire_format=WireFormat.mls_public_message,
            authenticated_data=authenticated_data,
        )
        pub = framing.protect_public(suite, built.content, gc, None)
        group._install(built.epoch)
        return group, MLSMessage(pub).to_bytes()

    # ------------------------------------------------------------------ state

    @property
    def suite(self) -> CipherSuite:
        return self._suite

    @property
    def group_id(self) -> bytes:
        return self._epoch.context.group_id

    @property
    def epoch(self) -> int:
        return self._epoch.context.epoch

    @property
    def own_leaf_index(self) -> int:
        return self._epoch.own_leaf

    @property
    def active(self) -> bool:
        """False once a processed commit removed this member."""
        return self._active

    @property
    def group_context(self) -> GroupContext:
        return self._epoch.context

    @property
    def extensions(self) -> tuple[Extension, ...]:
        return self._epoch.context.extensions

    @property
    def tree_hash(self) -> bytes:
        return self._epoch.context.tree_hash

    @property
    def epoch_authenticator(self) -> bytes:
        """RFC 9420 section 8.7."""
        return self._epoch.secrets.epoch_authenticator

    @property
    def confirmed_transcript_hash(self) -> bytes:
        return self._epoch.context.confirmed_transcript_hash

    @property
    def has_pending_commit(self) -> bool:
        return self._pending is not None

    @property
    def pending_proposals(self) -> int:
        return len(self._proposals)

    @property
    def leaf_count(self) -> int:
        """Leaves of the ratchet tree, blanks included (sizes SFrame KIDs, RFC 9605 5.2)."""
        return self._epoch.tree.n_leaves

    def roster(self) -> list[Member]:
        """Members in leaf order (RFC 9420 section 7)."""
        return _roster(self._epoch.tree)

    def member(self, leaf_index: int) -> Member:
        return _member(self._epoch.tree, leaf_index)

    def export_secret(self, label: str | bytes, context: bytes, length: int) -> bytes:
        """MLS-Exporter (RFC 9420 section 8.5)."""
        return self._epoch.secrets.exporter(self._suite, label, context, length)

    def pending_export_secret(self, label: str | bytes, context: bytes, length: int) -> bytes:
        """MLS-Exporter (RFC 9420 section 8.5) of the epoch our pending commit creates.

        Lets a committer announce something derived from the next epoch (e.g. to a
        delivery service) before the commit is confirmed.
        """
        if self._pending is None:
            raise StateError("no pending commit")
        return self._pending[0].epoch.secrets.exporter(self._suite, label, context, length)

    @property
    def welcome_signer(self) -> int | None:
        """The leaf that signed the GroupInfo of the Welcome we joined from (RFC 9420
        section 12.4.3.1), or None if this group was not joined from a Welcome."""
        return self._welcome_signer

    def ratchet_tree(self) -> bytes:
        """The encoded ``optional<Node> ratchet_tree<V>`` of this epoch (section 12.4.3.3)."""
        return self._epoch.tree.to_bytes()

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        """Register (or replace) an external PSK by ``psk_id`` (RFC 9420 section 8.4).

        Needed to create or process commits with a PreSharedKey proposal naming
        it; the PSK is saved by :meth:`to_bytes`.
        """
        if not psk:
            raise ValueError("an external PSK must not be empty")
        self._psks[bytes(psk_id)] = bytes(psk)

    # ------------------------------------------------------------------ sending

    def send(self, data: bytes, authenticated_data: bytes = b"") -> bytes:
        """Encrypt an application message as a PrivateMessage (RFC 9420 section 6.3)."""
        self._require_active()
        if self._proposals:
            raise StateError(
                "proposals are pending in this epoch; commit them before sending "
                "application data (RFC 9420 section 12.4)"
            )
        content = FramedContent(
            self.group_id,
            self.epoch,
            Sender.member(self.own_leaf_index),
            bytes(authenticated_data),
            bytes(data),
        )
        return self._protect(self._sign(content, WireFormat.mls_private_message))

    def propose_add(self, key_package: bytes, wire_format: WireFormat | None = None) -> bytes:
        """Send an Add proposal (section 12.1.1) for an encoded KeyPackage."""
        kp = _key_package_from(key_package)
        self._validate_key_package(kp, self._epoch.tree, self._epoch.context)
        return self._propose(Add(kp), wire_format)[0]

    def propose_remove(self, leaf_index: int, wire_format: WireFormat | None = None) -> bytes:
        """Send a Remove proposal (section 12.1.3)."""
        _member(self._epoch.tree, leaf_index)
        if leaf_index == self.own_leaf_index:
            raise StateError("a member cannot propose to remove itself in a commit it makes")
        return self._propose(Remove(leaf_index), wire_format)[0]

    def propose_update(self, wire_format: WireFormat | None = None) -> bytes:
        """Send an Update proposal with a fresh leaf key (section 12.1.2)."""
        self._require_active()
        enc_priv, enc_pub = self._suite.generate_hpke_key_pair(self._rng)
        old = self._epoch.tree.leaf(self.own_leaf_index)
        assert old is not None
        leaf = make_leaf_node(
            self._suite,
            encryption_key=enc_pub,
            signature_priv=self._signer.signature_private_key,
            credential=self._signer.credential,
            capabilities=old.capabilities,
            source=LeafNodeSource.update,
            extensions=old.extensions,
            group_id=self.group_id,
            leaf_index=self.own_leaf_index,
        )
        msg, ref = self._propose(Update(leaf), wire_format)
        self._own_update_keys[ref] = (enc_priv, enc_pub)
        return msg

    def commit(
        self,
        *,
        add: Sequence[bytes] = (),
        remove: Sequence[int] = (),
        extensions: Sequence[Extension] | None = None,
        psks: Sequence[PreSharedKeyID] = (),
        include_pending: bool = True,
        force_path: bool = False,
        wire_format: WireFormat | None = None,
        authenticated_data: bytes = b"",
    ) -> CommitOutput:
        """Create a commit (RFC 9420 section 12.4.1); it stays pending until merged.

        ``add`` are encoded KeyPackages (bare or in an MLSMessage). With nothing
        to commit this is a self-update: a commit carrying only a path. Cached
        proposals of this epoch are included by reference unless
        ``include_pending`` is false.
        """
        self._require_active()
        if self._pending is not None:
            raise StateError("a commit is already pending; merge or discard it first")
        me = self.own_leaf_index
        by_value: list[Sourced] = []
        if extensions is not None:
            by_value.append(Sourced(GroupContextExtensions(tuple(extensions)), me))
        by_value += [Sourced(Remove(r), me) for r in remove]
        by_value += [Sourced(Add(_key_package_from(kp)), me) for kp in add]
        by_value += [Sourced(PreSharedKey(pid), me) for pid in psks]
        ep = self._epoch
        base = _Base(
            ep.context,
            ep.context_bytes,
            ep.tree,
            ep.keys,
            ep.secrets.init_secret,
            ep.interim_transcript_hash,
        )
        wf = wire_format or self._config.handshake_wire_format
        built = self._build_commit(
            base,
            by_value,
            by_reference=tuple(self._proposals.values()) if include_pending else (),
            committer=me,
            force_path=force_path,
            wire_format=wf,
            authenticated_data=authenticated_data,
        )
        output = CommitOutput(
            self._protect(built.content), built.welcome, built.group_info, built.summary
        )
        self._pending = (built, output)
        return output

    def merge_pending_commit(self) -> CommitSummary:
        """Apply our own pending commit once the delivery service accepted it."""
        if self._pending is None:
            raise StateError("no pending commit to merge")
        built, _ = self._pending
        self._install(built.epoch)
        return built.summary

    def discard_pending_commit(self) -> None:
        """Drop our pending commit (another commit won the epoch)."""
        self._pending = None

    def group_info(self, *, with_ratchet_tree: bool = True, external_pub: bool = True) -> bytes:
        """A signed GroupInfo for this epoch (RFC 9420 section 12.4.3)."""
        info = self._make_group_info(self._epoch, with_ratchet_tree, external_pub)
        return MLSMessage(info).to_bytes()

    # ------------------------------------------------------------------ receiving

    def process(self, data: bytes) -> Event:
        """Process one Public/PrivateMessage (RFC 9420 sections 6, 12.1, 12.4.2).

        Raises an :class:`MLSError` subclass if any check fails. The group state is
        then unchanged, except that a PrivateMessage whose sender data decrypted has
        moved that sender's ratchet forward to its generation, whose key stays
        retained (see the module docstring).
        """
        self._require_active()
        msg = _decode_message(data)
        body = msg.body
        ep = self._epoch
        if isinstance(body, PublicMessage):
            auth = framing.unprotect_public(
                self._suite,
                body,
                ep.context,
                ep.secrets.membership_key,
                signature_key=self._signature_key_of,
            )
            consume: Callable[[], None] = _noop
            generation = 0
        elif isinstance(body, PrivateMessage):

            def is_member(i: int) -> bool:
                # Our own PrivateMessage (echoed back by the delivery service): its
                # key was deleted when we sent it (section 9.2), so say what it is.
                if i == ep.own_leaf:
                    raise StateError(
                        "this is our own message; a sender cannot decrypt it "
                        "(merge_pending_commit() applies our own commit)"
                    )
                return i < ep.tree.n_leaves and ep.tree.leaf(i) is not None

            opened = framing.open_private(
                self._suite,
                body,
                ep.context,
                ep.secret_tree,
                ep.secrets.sender_data_secret,
                is_member=is_member,
                signature_key=self._signature_key_of,
            )
            auth, consume, generation = opened.content, opened.consume, opened.generation
        else:
            raise ValidationError(f"a group member cannot process a {msg.wire_format.name}")
        content = auth.content
        event: Event
        if isinstance(content.content, bytes):
            assert content.sender.index is not None
            event = ApplicationMessage(
                content.sender.index,
                content.content,
                content.authenticated_data,
                content.epoch,
                generation,
            )
            consume()
            return event
        if isinstance(content.content, Commit):
            built = self._stage_received_commit(auth)
            consume()
            if built.summary.removed_self:
                self._active = False
                self._pending = None
                self._proposals.clear()
            else:
                self._install(built.epoch)
            return CommitProcessed(built.summary)
        event = self._receive_proposal(auth)
        consume()
        return event

    # ------------------------------------------------------------------ internals

    def _require_active(self) -> None:
        if not self._active:
            raise StateError("this member was removed from the group")

    def _signature_key_of(self, content: FramedContent) -> bytes:
        """The key that must have signed ``content`` (RFC 9420 section 6.1)."""
        sender = content.sender
        tree = self._epoch.tree
        if sender.sender_type == SenderType.member:
            assert sender.index is not None
            return _member(tree, sender.index).signature_key
        if sender.sender_type == SenderType.external:
            ext = find_extension(self.extensions, ExtensionType.external_senders)
            if ext is None:
                raise ValidationError("external sender, but the group has no external_senders")
            senders = ExternalSenders.from_extension(ext).senders
            assert sender.index is not None
            if sender.index >= len(senders):
                raise ValidationError(f"unknown external sender index {sender.index}")
            return senders[sender.index].signature_key
        return framing.new_member_signature_key(content)

    def _check_policy(
        self,
        kind: str,
        committer: int | None,
        proposals: Sequence[Sourced],
        *,
        own: bool,
        base: _Base | None = None,
    ) -> None:
        """Ask the application whether this change is allowed (raises PolicyError)."""
        tree = self._epoch.tree if base is None else base.tree
        context = self._epoch.context if base is None else base.context
        info = PolicyInput(
            kind,
            committer,
            tuple((s.sender, s.proposal) for s in proposals),
            tuple(_roster(tree)),
            context.extensions,
            own,
        )
        try:
            self._policy(info)
        except PolicyError:
            raise
        except MLSError as exc:
            raise PolicyError(str(exc)) from exc

    def _sign(
        self,
        content: FramedContent,
        wire_format: WireFormat,
        context: bytes | None = None,
        tag: bytes | None = None,
    ) -> AuthenticatedContent:
        return framing.sign_content(
            self._suite,
            wire_format,
            content,
            self._signer.signature_private_key,
            self._epoch.context_bytes if context is None else context,
            tag,
        )

    def _protect(self, auth: AuthenticatedContent) -> bytes:
        ep = self._epoch
        if auth.wire_format == WireFormat.mls_public_message:
            pub = framing.protect_public(self._suite, auth, ep.context, ep.secrets.membership_key)
            return MLSMessage(pub).to_bytes()
        priv = framing.protect_private(
            self._suite,
            auth,
            ep.context,
            ep.secret_tree,
            ep.secrets.sender_data_secret,
            rng=self._rng,
            padding=self._config.padding_block,
        )
        return MLSMessage(priv).to_bytes()

    def _propose(self, proposal: Proposal, wire_format: WireFormat | None) -> tuple[bytes, bytes]:
        """Send a standalone proposal (section 12.1) and cache it for our own commit."""
        self._require_active()
        wf = wire_format or self._config.handshake_wire_format
        me = self.own_leaf_index
        self._check_policy("proposal", None, [Sourced(proposal, me)], own=True)
        sender = Sender.member(me)
        auth = self._sign(FramedContent(self.group_id, self.epoch, sender, b"", proposal), wf)
        ref = self._suite.make_proposal_ref(auth.to_bytes())
        out = self._protect(auth)
        self._proposals[ref] = _CachedProposal(sender, proposal, ref)
        return out, ref

    def _receive_proposal(self, auth: AuthenticatedContent) -> ProposalReceived:
        """Section 12.1: verify and cache a standalone proposal."""
        proposal = auth.content.content
        assert not isinstance(proposal, (bytes, Commit))
        sender = auth.content.sender
        if sender.sender_type == SenderType.external and (
            proposal.proposal_type not in EXTERNAL_SENDER_TYPES
        ):
            raise ProposalError(
                f"an external sender may not send a {proposal.proposal_type.name} proposal"
            )
        if isinstance(proposal, ExternalInit):
            raise ProposalError("ExternalInit may only appear in an external commit")
        leaf = sender.index if sender.sender_type == SenderType.member else None
        tree = self._epoch.tree
        if isinstance(proposal, Add):
            self._validate_key_package(proposal.key_package, tree, self._epoch.context)
        elif isinstance(proposal, Update):
            if leaf is None:
                raise ProposalError("Update proposal from a non-member")
            self._validate_update(proposal, leaf, tree, self._epoch.context)
        elif isinstance(proposal, Remove):
            _member(tree, proposal.removed)
        self._check_policy("proposal", None, [Sourced(proposal, leaf)], own=False)
        ref = self._suite.make_proposal_ref(auth.to_bytes())
        self._proposals[ref] = _CachedProposal(sender, proposal, ref)
        return ProposalReceived(sender, proposal, ref)

    def _validate_key_package(
        self, kp: KeyPackage, tree: RatchetTree, context: GroupContext
    ) -> None:
        """Section 10.1 plus section 7.3 against the staged tree and extensions."""
        extensions = context.extensions
        validate_key_package_for_group(kp, context, now=self._now())
        validate_leaf_node(
            self._suite,
            kp.leaf_node,
            expected_source=LeafNodeSource.key_package,
            group_context_extensions=extensions,
            tree=tree,
            now=self._now(),
            credential_validator=self._config.credential_validator,
        )

    def _validate_update(
        self, p: Update, leaf_index: int, tree: RatchetTree, context: GroupContext
    ) -> None:
        extensions = context.extensions
        validate_leaf_node(
            self._suite,
            p.leaf_node,
            expected_source=LeafNodeSource.update,
            group_id=context.group_id,
            leaf_index=leaf_index,
            group_context_extensions=extensions,
            tree=tree,
            credential_validator=self._config.credential_validator,
        )

    def _apply(
        self,
        base: _Base,
        proposals: Sequence[Sourced],
        *,
        committer: int | None,
    ) -> _Applied:
        """Validate (section 12.2) and apply (section 12.3) to copies of tree and context."""
        tree = base.tree.copy()
        external = committer is None
        removed_ids = {s.proposal.removed for s in proposals if isinstance(s.proposal, Remove)}

        def same_client(a: Add) -> int | None:
            new = a.key_package.leaf_node
            ident = new.credential.identity
            for i, leaf in tree.leaf_nodes():
                if leaf.signature_key == new.signature_key or (
                    ident and leaf.credential.identity == ident
                ):
                    return i
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
            nh=self._suite.nh,
            is_member_leaf=lambda i: i < tree.n_leaves and tree.leaf(i) is not None,
            same_client_as_member=same_client,
            member_supports_proposal_type=supported_by_all,
            current_version=int(base.context.version),
        )
        applied = _Applied(tree, base.context.extensions)
        if shape.gces:
            applied.extensions = shape.gces[0].extensions
            applied.extensions_changed = True
        staged_context = replace(base.context, extensions=applied.extensions)
        for leaf_index, upd in shape.updates:
            self._validate_update(upd, leaf_index, tree, staged_context)
            tree.update_leaf(leaf_index, upd.leaf_node)
            applied.updated.append(leaf_index)
        for rem in shape.removes:
            applied.removed.append(_member(tree, rem.removed))
            tree.remove_leaf(rem.removed)
        for add in shape.adds:
            self._validate_key_package(add.key_package, tree, staged_context)
            applied.adds.append((tree.add_leaf(add.key_package.leaf_node), add.key_package))
        applied.psk_ids = [p.psk for p in shape.psks]
        if shape.external_inits:
            applied.external_init = shape.external_inits[0]
        if applied.extensions_changed:
            for i, leaf in tree.leaf_nodes():
                try:
                    validate_leaf_node(
                        self._suite,
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

    def _build_commit(
        self,
        base: _Base,
        by_value: Sequence[Sourced],
        *,
        by_reference: Sequence[_CachedProposal],
        committer: int | None,
        force_path: bool,
        wire_format: WireFormat,
        authenticated_data: bytes,
    ) -> _Built:
        """Section 12.4.1: stage a commit, the new epoch, its GroupInfo and Welcome."""
        suite = self._suite
        sourced: list[Sourced] = []
        pors: list[ProposalOrRef] = []
        for cp in _select_cached(by_reference, by_value, committer, base.tree):
            idx = cp.sender.index if cp.sender.sender_type == SenderType.member else None
            sourced.append(Sourced(cp.proposal, idx))
            pors.append(ProposalOrRef.by_reference(cp.reference))
        for s in by_value:
            sourced.append(s)
            pors.append(ProposalOrRef.by_value(s.proposal))
        applied = self._apply(base, sourced, committer=committer)
        kind = "external_commit" if committer is None else "commit"
        self._check_policy(kind, committer, sourced, own=True, base=base)
        tree = applied.tree
        new_epoch = base.context.epoch + 1
        provisional = replace(base.context, epoch=new_epoch, extensions=applied.extensions)
        keys = base.keys.copy()
        commit_secret: bytes | None = None
        path = None
        path_secret_for: Callable[[int], bytes | None] = _no_path_secret
        own_leaf = tree.ensure_free_leaf() if committer is None else committer
        if force_path or path_required(sourced):
            old = None if committer is None else tree.leaf(committer)
            template = old or self._leaf_template(own_leaf)
            created = treekem.create_update_path(
                suite,
                tree,
                own_leaf,
                leaf_template=template,
                signature_priv=self._signer.signature_private_key,
                group_context=provisional,
                exclude=[i for i, _ in applied.adds],
                rng=self._rng,
            )
            path = created.update_path
            commit_secret = created.commit_secret
            keys = created.private_keys
            path_secret_for = created.path_secret_for
        else:
            keys.prune(tree)
        sender = Sender.member(committer) if committer is not None else Sender.new_member_commit()
        content = FramedContent(
            base.context.group_id,
            base.context.epoch,
            sender,
            bytes(authenticated_data),
            Commit(tuple(pors), path),
        )
        # Signed under the old context (section 6.1); the signature does not cover
        # the confirmation tag, which needs the new epoch's key and is set below.
        signed = self._sign(content, wire_format, base.context_bytes, b"")
        confirmed = confirmed_transcript_hash(
            suite,
            base.interim_transcript_hash,
            signed.confirmed_transcript_hash_input().to_bytes(),
        )
        context = GroupContext(
            base.context.version,
            base.context.cipher_suite,
            base.context.group_id,
            new_epoch,
            tree.tree_hash(),
            confirmed,
            applied.extensions,
        )
        context_bytes = context.to_bytes()
        psk = self._psk_secret(applied.psk_ids)
        ks = derive_epoch(suite, base.init_secret, commit_secret, psk, context_bytes)
        tag = confirmation_tag(suite, ks.secrets.confirmation_key, confirmed)
        auth = replace(signed, auth=FramedContentAuthData(signed.auth.signature, tag))
        epoch = _Epoch(
            context,
            context_bytes,
            tree,
            own_leaf,
            keys,
            ks.secrets,
            _new_secret_tree(suite, ks.secrets, tree.n_leaves, self._config),
            interim_transcript_hash(suite, confirmed, tag),
            tag,
        )
        # An external joiner counts as added (RFC 9420 section 12.4.3.2).
        added = [i for i, _ in applied.adds] + ([own_leaf] if committer is None else [])
        summary = CommitSummary(
            new_epoch,
            committer,
            committer is None,
            tuple(_member(tree, i) for i in added),
            tuple(applied.removed),
            tuple(applied.updated),
            applied.extensions_changed,
            len(applied.psk_ids),
            path is not None,
            False,
        )
        info = self._make_group_info(
            epoch, self._config.ratchet_tree_in_welcome, self._config.external_pub_in_group_info
        )
        welcome_bytes: bytes | None = None
        if applied.adds:
            welcome = create_welcome(
                suite,
                info,
                ks.joiner_secret,
                [WelcomeRecipient(kp, path_secret_for(i)) for i, kp in applied.adds],
                rng=self._rng,
                psks=[(pid, self._psk_value(pid)) for pid in applied.psk_ids],
            )
            welcome_bytes = MLSMessage(welcome).to_bytes()
        return _Built(epoch, summary, auth, welcome_bytes, MLSMessage(info).to_bytes())

    def _leaf_template(self, leaf_index: int) -> LeafNode:
        """An unsigned leaf carrying our credential, for an external joiner's path."""
        caps = self._config.capabilities
        if caps is None:
            caps = create_key_package(
                self._suite,
                self._signer.credential,
                rng=self._rng,
                now=self._now(),
                signature_priv=self._signer.signature_private_key,
            ).key_package.leaf_node.capabilities
        return LeafNode(
            encryption_key=b"",
            signature_key=self._signer.public_key(self._suite),
            credential=self._signer.credential,
            capabilities=caps,
            leaf_node_source=LeafNodeSource.commit,
            parent_hash=b"",
        )

    def _stage_received_commit(self, auth: AuthenticatedContent) -> _Built:
        """Section 12.4.2: validate a commit from another member or an external joiner."""
        ep = self._epoch
        suite = self._suite
        content = auth.content
        commit = content.content
        assert isinstance(commit, Commit)
        sender = content.sender
        external = sender.sender_type == SenderType.new_member_commit
        if not external and sender.sender_type != SenderType.member:
            raise CommitError(f"a commit cannot come from a {sender.sender_type.name} sender")
        committer = sender.index
        if committer is not None and committer == ep.own_leaf:
            raise StateError("this is our own commit: merge_pending_commit() applies it")
        sourced: list[Sourced] = []
        own_update: tuple[bytes, bytes] | None = None
        for por in commit.proposals:
            if por.type == ProposalOrRefType.reference:
                if external:
                    raise CommitError("an external commit may not include proposals by reference")
                assert por.reference is not None
                cached = self._proposals.get(por.reference)
                if cached is None:
                    raise ProposalError("commit references a proposal this member has not seen")
                s = cached.sender
                idx = s.index if s.sender_type == SenderType.member else None
                sourced.append(Sourced(cached.proposal, idx))
                own_update = self._own_update_keys.get(por.reference, own_update)
            else:
                assert por.proposal is not None
                if isinstance(por.proposal, Update):
                    raise ProposalError("a commit may not carry an Update proposal by value")
                sourced.append(Sourced(por.proposal, committer))
        base = _Base(
            ep.context,
            ep.context_bytes,
            ep.tree,
            ep.keys,
            ep.secrets.init_secret,
            ep.interim_transcript_hash,
        )
        applied = self._apply(base, sourced, committer=committer)
        self._check_policy(
            "external_commit" if external else "commit", committer, sourced, own=False
        )
        if commit.path is None and (external or path_required(sourced)):
            raise CommitError("commit has no path, but its proposals require one")
        validator = self._config.credential_validator
        if external and applied.removed and commit.path is not None and validator is not None:
            # Section 12.4.3.2: with a Remove (resync), the joiner's leaf must meet the
            # criteria of an Update for the removed leaf: the AS judges it as a successor.
            old_leaf = ep.tree.leaf(applied.removed[0].leaf_index)
            if not validator(commit.path.leaf_node, old_leaf):
                raise CommitError(
                    "external commit's leaf is not an acceptable successor of the leaf it removes"
                )
        tree = applied.tree
        new_epoch = ep.context.epoch + 1
        keys = ep.keys.copy()
        if own_update is not None:
            keys.set(2 * ep.own_leaf, *own_update)
        own_removed = any(m.leaf_index == ep.own_leaf for m in applied.removed)
        commit_secret: bytes | None = None
        external_leaf = -1
        if commit.path is not None:
            sender_leaf = tree.ensure_free_leaf() if external else committer
            assert sender_leaf is not None
            external_leaf = sender_leaf if external else -1
            provisional = replace(ep.context, epoch=new_epoch, extensions=applied.extensions)
            if own_removed:
                treekem.merge_update_path(
                    suite,
                    tree,
                    sender_leaf,
                    commit.path,
                    group_id=ep.context.group_id,
                    group_context_extensions=applied.extensions,
                    credential_validator=self._config.credential_validator,
                )
            else:
                _, derivation = treekem.process_update_path(
                    suite,
                    tree,
                    sender_leaf,
                    commit.path,
                    own_leaf=ep.own_leaf,
                    private_keys=keys,
                    group_context=provisional,
                    exclude=[i for i, _ in applied.adds],
                    credential_validator=self._config.credential_validator,
                )
                commit_secret = derivation.commit_secret
                keys.prune(tree)
                keys.update(derivation.keys)
        else:
            keys.prune(tree)
        confirmed = confirmed_transcript_hash(
            suite,
            ep.interim_transcript_hash,
            auth.confirmed_transcript_hash_input().to_bytes(),
        )
        context = GroupContext(
            ep.context.version,
            ep.context.cipher_suite,
            ep.context.group_id,
            new_epoch,
            tree.tree_hash(),
            confirmed,
            applied.extensions,
        )
        context_bytes = context.to_bytes()
        if applied.external_init is not None:
            ext_priv, _ = ep.secrets.external_key_pair(suite)
            init_secret = external_init_secret_receiver(
                suite, ext_priv, applied.external_init.kem_output
            )
        else:
            init_secret = ep.secrets.init_secret
        psk = self._psk_secret(applied.psk_ids)
        ks = derive_epoch(suite, init_secret, commit_secret, psk, context_bytes)
        tag = auth.auth.confirmation_tag
        if tag is None:
            raise CommitError("commit without a confirmation tag")
        if not own_removed:
            verify_confirmation_tag(suite, ks.secrets.confirmation_key, confirmed, tag)
        added = [i for i, _ in applied.adds]
        if external:
            added.append(external_leaf)
        summary = CommitSummary(
            new_epoch,
            committer,
            external,
            tuple(_member(tree, i) for i in added),
            tuple(applied.removed),
            tuple(applied.updated),
            applied.extensions_changed,
            len(applied.psk_ids),
            commit.path is not None,
            own_removed,
        )
        epoch = _Epoch(
            context,
            context_bytes,
            tree,
            ep.own_leaf,
            keys,
            ks.secrets,
            _new_secret_tree(suite, ks.secrets, tree.n_leaves, self._config),
            interim_transcript_hash(suite, confirmed, tag),
            tag,
        )
        return _Built(epoch, summary, auth, None, b"")

    def _install(self, epoch: _Epoch) -> None:
        self._epoch = epoch
        self._remember_resumption_psk(epoch)
        self._proposals.clear()
        self._own_update_keys.clear()
        self._pending = None
        self._active = True

    def _make_group_info(self, ep: _Epoch, with_tree: bool, external_pub: bool) -> GroupInfo:
        exts: list[Extension] = []
        if with_tree:
            exts.append(ep.tree.to_extension())
        if external_pub:
            _, pub = ep.secrets.external_key_pair(self._suite)
            exts.append(ExternalPub(pub).to_extension())
        info = GroupInfo(ep.context, tuple(exts), ep.confirmation_tag, ep.own_leaf)
        return sign_group_info(self._suite, info, self._signer.signature_private_key)

    def _remember_resumption_psk(self, epoch: _Epoch) -> None:
        """Keep ``epoch``'s resumption_psk and those of the last few epochs (section 8.6)."""
        known = self._resumption_psks
        known[(epoch.context.group_id, epoch.context.epoch)] = epoch.secrets.resumption_psk
        while len(known) > max(0, self._config.resumption_psk_epochs) + 1:
            del known[next(iter(known))]

    def _psk_value(self, pid: PreSharedKeyID) -> bytes:
        if pid.psktype == PSKType.external:
            value = self._psks.get(pid.psk_id)
        else:
            # Section 8.6: the resumption_psk of epoch psk_epoch of group psk_group_id;
            # proposal validation (section 12.2) admits only usage application here.
            value = self._resumption_psks.get((pid.psk_group_id, pid.psk_epoch))
        if value is None:
            raise ProposalError("PreSharedKey proposal names a PSK this member does not hold")
        return value

    def _psk_secret(self, ids: Sequence[PreSharedKeyID]) -> bytes | None:
        """Section 8.4; None (the all-zero secret) without PSKs."""
        if not ids:
            return None
        return psk_secret(self._suite, [(pid.to_bytes(), self._psk_value(pid)) for pid in ids])

    # ------------------------------------------------------------------ persistence

    def to_bytes(self) -> bytes:
        """Serialize the full state, secret-tree positions included (keep it secret).

        A pending commit is not saved: discard or merge it first.
        """
        if self._pending is not None:
            raise StateError("merge or discard the pending commit before saving")
        ep = self._epoch
        state: dict[str, Any] = {
            "v": 1,
            "suite": self._suite.id,
            "credential": self._signer.credential.to_bytes().hex(),
            "signature_priv": self._signer.signature_private_key.hex(),
            "context": ep.context_bytes.hex(),
            "tree": ep.tree.to_bytes().hex(),
            "own_leaf": ep.own_leaf,
            "keys": [[x, priv.hex(), pub.hex()] for x, (priv, pub) in ep.keys.items()],
            "secrets": {k: getattr(ep.secrets, k).hex() for k in _SECRET_FIELDS},
            "secret_tree": ep.secret_tree.to_dict(),
            "interim": ep.interim_transcript_hash.hex(),
            "confirmation_tag": ep.confirmation_tag.hex(),
            "proposals": [
                [p.sender.to_bytes().hex(), proposal_to_bytes(p.proposal).hex(), p.reference.hex()]
                for p in self._proposals.values()
            ],
            "own_update_keys": [
                [ref.hex(), priv.hex(), pub.hex()]
                for ref, (priv, pub) in self._own_update_keys.items()
            ],
            "psks": [[k.hex(), v.hex()] for k, v in self._psks.items()],
            "resumption_psks": [
                [gid.hex(), n, v.hex()] for (gid, n), v in self._resumption_psks.items()
            ],
            "active": self._active,
        }
        return json.dumps(state, sort_keys=True).encode()

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        rng: Rng,
        now: Clock,
        policy: Policy = allow_all,
        config: GroupConfig = DEFAULT_CONFIG,
    ) -> Group:
        """Restore a group saved with :meth:`to_bytes`."""
        try:
            st = json.loads(data)
            if not isinstance(st, dict) or st.get("v") != 1:
                raise ValidationError("unknown group state format")
            suite = get_suite(int(st["suite"]))
            signer = Signer(
                Credential.from_bytes(bytes.fromhex(st["credential"])),
                bytes.fromhex(st["signature_priv"]),
            )
            context_bytes = bytes.fromhex(st["context"])
            tree = RatchetTree.from_bytes(suite, bytes.fromhex(st["tree"]))
            secrets = EpochSecrets(**{k: bytes.fromhex(st["secrets"][k]) for k in _SECRET_FIELDS})
            keys = TreePrivateKeys(
                {int(x): (bytes.fromhex(a), bytes.fromhex(b)) for x, a, b in st["keys"]}
            )
            epoch = _Epoch(
                GroupContext.from_bytes(context_bytes),
                context_bytes,
                tree,
                int(st["own_leaf"]),
                keys,
                secrets,
                SecretTree.from_dict(st["secret_tree"]),
                bytes.fromhex(st["interim"]),
                bytes.fromhex(st["confirmation_tag"]),
            )
            keys.check_consistent(tree, epoch.own_leaf)
            psks = {bytes.fromhex(k): bytes.fromhex(v) for k, v in st["psks"]}
            group = cls(
                suite, signer, epoch, rng=rng, now=now, policy=policy, config=config, psks=psks
            )
            for sender_hex, prop_hex, ref_hex in st["proposals"]:
                ref = bytes.fromhex(ref_hex)
                group._proposals[ref] = _CachedProposal(
                    Sender.from_bytes(bytes.fromhex(sender_hex)),
                    proposal_from_bytes(bytes.fromhex(prop_hex)),
                    ref,
                )
            for ref_hex, priv, pub in st["own_update_keys"]:
                group._own_update_keys[bytes.fromhex(ref_hex)] = (
                    bytes.fromhex(priv),
                    bytes.fromhex(pub),
                )
            restored = {
                (bytes.fromhex(gid), int(n)): bytes.fromhex(v)
                for gid, n, v in st.get("resumption_psks", [])
            }
            restored.update(group._resumption_psks)  # the current epoch's, newest last
            group._resumption_psks = restored
            group._active = bool(st["active"])
            return group
        except MLSError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(f"malformed group state: {exc!r}") from exc


_SECRET_FIELDS = (
    "sender_data_secret",
    "encryption_secret",
    "exporter_secret",
    "external_secret",
    "confirmation_key",
    "membership_key",
    "resumption_psk",
    "epoch_authenticator",
    "init_secret",
)


def _select_cached(
    cached: Sequence[_CachedProposal],
    by_value: Sequence[Sourced],
    committer: int | None,
    tree: RatchetTree,
) -> list[_CachedProposal]:
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


def _roster(tree: RatchetTree) -> list[Member]:
    return [
        Member(i, leaf.credential, leaf.signature_key, leaf.encryption_key)
        for i, leaf in tree.leaf_nodes()
    ]


def _noop() -> None:
    return None


def _no_path_secret(_: int) -> bytes | None:
    return None


def _decode_message(data: bytes) -> MLSMessage:
    return MLSMessage.from_bytes(bytes(data))


def _key_package_from(data: bytes) -> KeyPackage:
    """A KeyPackage, bare or wrapped in an MLSMessage (RFC 9420 section 6)."""
    try:
        msg = MLSMessage.from_bytes(bytes(data))
    except MLSError:
        return KeyPackage.from_bytes(bytes(data))
    if not isinstance(msg.body, KeyPackage):
        raise ValidationError(f"expected a KeyPackage, got a {msg.wire_format.name}")
    return msg.body


def _tree_from(
    suite: CipherSuite, extensions: Sequence[Extension], out_of_band: bytes | None, where: str
) -> RatchetTree:
    """The tree from the ratchet_tree extension, else the one supplied out of band."""
    ext = find_extension(extensions, ExtensionType.ratchet_tree)
    if ext is not None:
        return RatchetTree.from_extension(suite, ext)
    if out_of_band is None:
        raise ValidationError(f"the {where} carries no ratchet tree and none was supplied")
    return RatchetTree.from_bytes(suite, out_of_band)
