"""One member's MLS group state machine (RFC 9420 sections 8, 11, 12, 14).

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

:class:`Group` is the facade; the work is done by one module per concept, in
the order of RFC 9420 section 12:

* :mod:`~clave.mls.group_create`: a new group (section 11), joining from a
  Welcome (12.4.3.1); :mod:`~clave.mls.external_join`: by external commit (12.4.3.2);
* :mod:`~clave.mls.group_messages`: framing and opening messages, standalone
  proposals (sections 6, 12.1);
* :mod:`~clave.mls.commit_build`: our own commit, its Welcome and GroupInfo (12.4.1, 12.4.3);
* :mod:`~clave.mls.commit_stage`: proposal validation and application (12.2, 12.3)
  and the staging both our commits and received ones go through (12.4.2, 8);
* :mod:`~clave.mls.past_epochs`: late application messages of past epochs (14, 15.3);
* :mod:`~clave.mls.group_view`: what the current epoch shows (roster, exporter);
* :mod:`~clave.mls.group_state`: saving and restoring the state;
* :mod:`~clave.mls.group_records`: the records they share.
"""

from __future__ import annotations

from collections.abc import Sequence

from .ciphersuite import CipherSuite
from .commit_build import BuiltCommit, build_commit, make_group_info
from .commit_stage import stage_received_commit, validate_key_package
from .errors import StateError
from .events import (
    ApplicationMessage,
    CommitProcessed,
    CommitSummary,
    Event,
    Policy,
    ProposalReceived,
    allow_all,
)
from .external_join import external_commit_message, prepare_external_join
from .group_create import create_epoch, join_from_welcome
from .group_info import RatchetTreeEncoder
from .group_messages import (
    check_proposal_policy,
    open_message,
    protect,
    sign,
    update_proposal,
    verify_proposal,
)
from .group_records import (
    DEFAULT_CONFIG,
    CachedProposal,
    Clock,
    CommitBase,
    CommitOutput,
    EpochState,
    GroupConfig,
    GroupEnv,
    PskStore,
    Rng,
    Signer,
    decode_message,
    key_package_from,
)
from .group_state import load_group, save_group
from .group_view import GroupView
from .key_package import KeyPackageBundle
from .past_epochs import PastEpochs
from .proposals import Sourced
from .structs import (
    Add,
    Commit,
    Extension,
    FramedContent,
    GroupContextExtensions,
    MLSMessage,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    Remove,
    Sender,
    WireFormat,
)

__all__ = [
    "DEFAULT_CONFIG",
    "Clock",
    "CommitOutput",
    "Group",
    "GroupConfig",
    "Rng",
    "Signer",
]


class Group(GroupView):
    """One member's view of an MLS group (RFC 9420).

    Create with :meth:`create`, :meth:`join` (Welcome) or :meth:`join_external`;
    restore with :meth:`from_bytes`. Outgoing handshake messages are
    PrivateMessages unless the config or the call asks for PublicMessage.
    With ``GroupConfig.max_past_epochs`` set, application messages of that many
    past epochs still decrypt (:meth:`process`, :attr:`past_epochs`).
    """

    def __init__(
        self,
        suite: CipherSuite,
        signer: Signer,
        epoch: EpochState | None,
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
        self._psks = PskStore(psks, config.resumption_psk_epochs)
        self._past = PastEpochs(config.max_past_epochs)
        self._tree_encoder = RatchetTreeEncoder()
        if epoch is not None:
            self._epoch = epoch
            self._psks.remember(epoch)
        self._proposals: dict[bytes, CachedProposal] = {}
        self._own_update_keys: dict[bytes, tuple[bytes, bytes]] = {}
        self._pending: tuple[BuiltCommit, CommitOutput] | None = None
        self._active = True
        self._welcome_signer: int | None = None

    # ------------------------------------------------------------------ creation

    @classmethod
    def create(
        cls,
        suite: CipherSuite | int,
        group_id: bytes,
        signer: Signer,
        *,
        rng: Rng,
        now: Clock,
        extensions: Sequence[Extension] = (),
        policy: Policy = allow_all,
        config: GroupConfig = DEFAULT_CONFIG,
    ) -> Group:
        """Create a one-member group at epoch 0 (RFC 9420 section 11).

        ``suite`` is a :class:`CipherSuite` or its id; ``now`` is the clock the
        group reads whenever it needs the time.
        """
        cs, epoch = create_epoch(
            suite, group_id, signer, rng=rng, now=now(), extensions=extensions, config=config
        )
        return cls(cs, signer, epoch, rng=rng, now=now, policy=policy, config=config)

    @classmethod
    def join(
        cls,
        welcome_bytes: bytes,
        bundles: KeyPackageBundle | Sequence[KeyPackageBundle],
        *,
        rng: Rng,
        now: Clock,
        ratchet_tree: bytes | None = None,
        psks: dict[bytes, bytes] | None = None,
        policy: Policy = allow_all,
        config: GroupConfig = DEFAULT_CONFIG,
    ) -> Group:
        """Join from a Welcome (RFC 9420 section 12.4.3.1).

        ``bundles`` is one KeyPackageBundle or several: the one whose KeyPackageRef
        the Welcome has an entry for is used (WelcomeNotForUsError if none).
        ``ratchet_tree`` is the encoded ``optional<Node> ratchet_tree<V>`` when
        the Welcome's GroupInfo does not carry it; external PSKs are looked up
        in ``psks`` by psk_id.
        """
        known = dict(psks or {})
        joined = join_from_welcome(
            welcome_bytes, bundles, ratchet_tree=ratchet_tree, psks=known, config=config
        )
        group = cls(
            joined.suite,
            joined.signer,
            joined.epoch,
            rng=rng,
            now=now,
            policy=policy,
            config=config,
            psks=known,
        )
        group._welcome_signer = joined.welcome_signer
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
        ext = prepare_external_join(
            group_info_bytes,
            rng=rng,
            ratchet_tree=ratchet_tree,
            resync_leaf=resync_leaf,
            config=config,
        )
        # The joiner has no epoch of its own until its commit is built.
        group = cls(ext.suite, signer, None, rng=rng, now=now, policy=policy, config=config)
        built = group._build_commit(
            ext.base,
            ext.proposals,
            by_reference=(),
            committer=None,
            force_path=True,
            wire_format=WireFormat.mls_public_message,
            authenticated_data=authenticated_data,
        )
        message = external_commit_message(ext.suite, built.staged.content, ext.base)
        group._install(built.staged.epoch)
        return group, message

    # ------------------------------------------------------------------ state (see GroupView)

    @property
    def active(self) -> bool:
        """False once a processed commit removed this member."""
        return self._active

    @property
    def has_pending_commit(self) -> bool:
        return self._pending is not None

    @property
    def pending_proposals(self) -> int:
        return len(self._proposals)

    @property
    def past_epochs(self) -> tuple[int, ...]:
        """Past epochs whose application messages still decrypt, oldest first.

        At most ``GroupConfig.max_past_epochs``; see :meth:`forget_past_epochs`.
        """
        return self._past.epochs()

    def forget_past_epochs(self, before: int | None = None) -> None:
        """Delete the secrets of every past epoch, or of those numbered below ``before``
        (e.g. once a grace period for late messages is over)."""
        self._past.forget(before)

    def pending_export_secret(self, label: str | bytes, context: bytes, length: int) -> bytes:
        """MLS-Exporter (RFC 9420 section 8.5) of the epoch our pending commit creates.

        Lets a committer announce something derived from the next epoch (e.g. to a
        delivery service) before the commit is confirmed.
        """
        if self._pending is None:
            raise StateError("no pending commit")
        secrets = self._pending[0].staged.epoch.secrets
        return secrets.exporter(self._suite, label, context, length)

    @property
    def welcome_signer(self) -> int | None:
        """The leaf that signed the GroupInfo of the Welcome we joined from (RFC 9420
        section 12.4.3.1), or None if this group was not joined from a Welcome."""
        return self._welcome_signer

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        """Register (or replace) an external PSK by ``psk_id`` (RFC 9420 section 8.4).

        Needed to create or process commits with a PreSharedKey proposal naming
        it; the PSK is saved by :meth:`to_bytes`.
        """
        if not psk:
            raise ValueError("an external PSK must not be empty")
        self._psks.external[bytes(psk_id)] = bytes(psk)

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
            group_id=self.group_id,
            epoch=self.epoch,
            sender=Sender.member(self.own_leaf_index),
            authenticated_data=bytes(authenticated_data),
            content=bytes(data),
        )
        env, ep = self._env(), self._epoch
        return protect(env, ep, sign(env, ep, content, WireFormat.mls_private_message))

    def propose_add(self, key_package: bytes, wire_format: WireFormat | None = None) -> bytes:
        """Send an Add proposal (section 12.1.1) for an encoded KeyPackage."""
        kp = key_package_from(key_package)
        validate_key_package(self._env(), kp, self._epoch.tree, self._epoch.context)
        return self._propose(Add(kp), wire_format)[0]

    def leaf_of(self, identity: bytes) -> int:
        """The leaf of the one member with this credential identity (else MemberLookupError)."""
        return self._epoch.members().leaf_of(identity)

    def propose_remove(self, member: int | bytes, wire_format: WireFormat | None = None) -> bytes:
        """Send a Remove proposal (section 12.1.3) for a leaf index or an identity."""
        leaf_index = member if isinstance(member, int) else self.leaf_of(member)
        self.member(leaf_index)
        if leaf_index == self.own_leaf_index:
            raise StateError("a member cannot propose to remove itself in a commit it makes")
        return self._propose(Remove(leaf_index), wire_format)[0]

    def propose_update(self, wire_format: WireFormat | None = None) -> bytes:
        """Send an Update proposal with a fresh leaf key (section 12.1.2)."""
        self._require_active()
        update, key_pair = update_proposal(self._env(), self._epoch)
        msg, ref = self._propose(update, wire_format)
        self._own_update_keys[ref] = key_pair
        return msg

    def commit(
        self,
        *,
        add: Sequence[bytes] = (),
        remove: Sequence[int | bytes] = (),
        extensions: Sequence[Extension] | None = None,
        psks: Sequence[PreSharedKeyID] = (),
        include_pending: bool = True,
        force_path: bool = False,
        wire_format: WireFormat | None = None,
        authenticated_data: bytes = b"",
    ) -> CommitOutput:
        """Create a commit (RFC 9420 section 12.4.1); it stays pending until merged.

        ``add`` are encoded KeyPackages (bare or in an MLSMessage); ``remove`` are
        leaf indices or credential identities (see :meth:`leaf_of`). With nothing
        to commit this is a self-update: a commit carrying only a path. Cached
        proposals of this epoch are included by reference unless
        ``include_pending`` is false. The output's ``group_info`` is signed when
        first read, unless the Welcome already needed it.
        """
        self._require_active()
        if self._pending is not None:
            raise StateError("a commit is already pending; merge or discard it first")
        me = self.own_leaf_index
        by_value: list[Sourced] = []
        if extensions is not None:
            by_value.append(Sourced(proposal=GroupContextExtensions(tuple(extensions)), sender=me))
        leaves = self._epoch.members().leaves(remove)
        by_value += [Sourced(proposal=Remove(r), sender=me) for r in leaves]
        by_value += [Sourced(proposal=Add(key_package_from(kp)), sender=me) for kp in add]
        by_value += [Sourced(proposal=PreSharedKey(pid), sender=me) for pid in psks]
        built = self._build_commit(
            CommitBase.of(self._epoch),
            by_value,
            by_reference=tuple(self._proposals.values()) if include_pending else (),
            committer=me,
            force_path=force_path,
            wire_format=wire_format or self._config.handshake_wire_format,
            authenticated_data=authenticated_data,
        )
        output = CommitOutput(
            commit=protect(self._env(), self._epoch, built.staged.content),
            welcome=built.welcome,
            summary=built.staged.summary,
            group_info_source=built.group_info.get,
        )
        self._pending = (built, output)
        return output

    def merge_pending_commit(self) -> CommitSummary:
        """Apply our own pending commit once the delivery service accepted it."""
        if self._pending is None:
            raise StateError("no pending commit to merge")
        built, _ = self._pending
        self._install(built.staged.epoch)
        return built.staged.summary

    def discard_pending_commit(self) -> None:
        """Drop our pending commit (another commit won the epoch)."""
        self._pending = None

    def group_info(self, *, with_ratchet_tree: bool = True, external_pub: bool = True) -> bytes:
        """A signed GroupInfo for this epoch (RFC 9420 section 12.4.3)."""
        info = make_group_info(
            self._env(), self._epoch, with_tree=with_ratchet_tree, external_pub=external_pub
        )
        return MLSMessage(info).to_bytes()

    # ------------------------------------------------------------------ receiving

    def process(self, data: bytes) -> Event:
        """Process one Public/PrivateMessage (RFC 9420 sections 6, 12.1, 12.4.2).

        Raises an :class:`MLSError` subclass if any check fails. The group state is
        then unchanged, except that a PrivateMessage whose sender data decrypted has
        moved that sender's ratchet forward to its generation, whose key stays
        retained (see the module docstring). An application message of a past
        epoch the group still keeps (:attr:`past_epochs`) is decrypted with that
        epoch's secrets; its event names that epoch.
        """
        self._require_active()
        ep = self._epoch
        opened = open_message(self._env(), ep, self._past, decode_message(data))
        if isinstance(opened, ApplicationMessage):
            return opened
        content = opened.content.content
        if isinstance(content.content, bytes):
            event = opened.application()
            opened.consume()
            return event
        if isinstance(content.content, Commit):
            staged = stage_received_commit(
                self._env(),
                ep,
                opened.content,
                cached=self._proposals,
                own_update_keys=self._own_update_keys,
            )
            opened.consume()
            if staged.summary.removed_self:
                self._active = False
                self._pending = None
                self._proposals.clear()
            else:
                self._install(staged.epoch)
            return CommitProcessed(summary=staged.summary)
        cached = verify_proposal(self._env(), ep, opened.content)
        opened.consume()
        self._proposals[cached.reference] = cached
        return ProposalReceived(
            sender=cached.sender, proposal=cached.proposal, reference=cached.reference
        )

    # ------------------------------------------------------------------ persistence

    def to_bytes(self) -> bytes:
        """Serialize the full state, secret-tree positions included (keep it secret).

        A pending commit is not saved: discard or merge it first. Past epochs kept
        for late application messages are saved with it.
        """
        if self._pending is not None:
            raise StateError("merge or discard the pending commit before saving")
        return save_group(
            suite=self._suite,
            signer=self._signer,
            epoch=self._epoch,
            proposals=self._proposals.values(),
            own_update_keys=self._own_update_keys,
            psks=self._psks,
            past=self._past,
            active=self._active,
            tree_encoder=self._tree_encoder,
        )

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
        """Restore a group saved with :meth:`to_bytes` (past epochs up to ``config``'s limit)."""
        saved = load_group(data)
        group = cls(
            saved.suite,
            saved.signer,
            saved.epoch,
            rng=rng,
            now=now,
            policy=policy,
            config=config,
            psks=saved.external_psks,
        )
        group._proposals = {p.reference: p for p in saved.proposals}
        group._own_update_keys = saved.own_update_keys
        restored = dict(saved.resumption_psks)
        restored.update(group._psks.resumption)  # the current epoch's, newest last
        group._psks.resumption = restored
        group._past.restore(saved.past)
        group._active = saved.active
        return group

    # ------------------------------------------------------------------ internals

    def _env(self) -> GroupEnv:
        return GroupEnv(
            suite=self._suite,
            signer=self._signer,
            rng=self._rng,
            now=self._now,
            policy=self._policy,
            config=self._config,
            psks=self._psks,
            tree_encoder=self._tree_encoder,
        )

    def _build_commit(
        self,
        base: CommitBase,
        by_value: Sequence[Sourced],
        *,
        by_reference: Sequence[CachedProposal],
        committer: int | None,
        force_path: bool,
        wire_format: WireFormat,
        authenticated_data: bytes,
    ) -> BuiltCommit:
        """Section 12.4.1: stage a commit, the new epoch, its Welcome and GroupInfo."""
        return build_commit(
            self._env(),
            base,
            by_value,
            by_reference=by_reference,
            committer=committer,
            force_path=force_path,
            wire_format=wire_format,
            authenticated_data=authenticated_data,
        )

    def _install(self, epoch: EpochState) -> None:
        previous: EpochState | None = getattr(self, "_epoch", None)
        if previous is not None:
            self._past.retire(previous)
        self._epoch = epoch
        self._psks.remember(epoch)
        self._proposals.clear()
        self._own_update_keys.clear()
        self._pending = None
        self._active = True

    def _require_active(self) -> None:
        if not self._active:
            raise StateError("this member was removed from the group")

    def _propose(self, proposal: Proposal, wire_format: WireFormat | None) -> tuple[bytes, bytes]:
        """Send a standalone proposal (section 12.1) and cache it for our own commit."""
        self._require_active()
        env, ep = self._env(), self._epoch
        me = self.own_leaf_index
        check_proposal_policy(env, ep, proposal, me, own=True)
        sender = Sender.member(me)
        content = FramedContent(
            group_id=self.group_id,
            epoch=self.epoch,
            sender=sender,
            authenticated_data=b"",
            content=proposal,
        )
        auth = sign(env, ep, content, wire_format or self._config.handshake_wire_format)
        ref = self._suite.make_proposal_ref(auth.to_bytes())
        out = protect(env, ep, auth)
        self._proposals[ref] = CachedProposal(sender=sender, proposal=proposal, reference=ref)
        return out, ref
