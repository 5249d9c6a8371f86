"""Records shared by the modules of one member's group state machine (RFC 9420).

The :class:`~clave.mls.group.Group` facade keeps one :class:`EpochState` (what
changes at an epoch boundary, section 8) and hands the modules that create,
build, stage and persist epochs what they need as data: a :class:`GroupEnv`
(cipher suite, identity, randomness, clock, policy, configuration, PSKs) and a
:class:`CommitBase` (what a commit builds on). No module refers back to the
facade, so the group modules import in one direction only::

    group (the facade)
      -> group_view, group_create, external_join, group_state, group_messages, commit_build
      -> commit_stage, past_epochs
      -> group_records -> group_info, key_package (Signer, Clock)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .ciphersuite import CipherSuite
from .errors import (
    AmbiguousMemberError,
    MLSError,
    ProposalError,
    UnknownMemberError,
    ValidationError,
)
from .events import CommitSummary, Member, Policy
from .group_info import RatchetTreeEncoder
from .key_package import Clock as Clock
from .key_package import Signer as Signer
from .key_package import decode_key_package
from .key_schedule import EpochSecrets
from .leaf_node import CredentialValidator
from .psk import psk_secret
from .ratchet_tree import RatchetTree
from .secret_tree import SecretTree
from .structs import (
    AuthenticatedContent,
    Capabilities,
    Extension,
    ExtensionType,
    ExternalInit,
    GroupContext,
    KeyPackage,
    MLSMessage,
    PreSharedKeyID,
    Proposal,
    PSKType,
    Sender,
    WireFormat,
    find_extension,
)
from .treekem import TreePrivateKeys

Rng = Callable[[int], bytes]
_Body = TypeVar("_Body")


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
    max_past_epochs: int = 0
    """Past epochs whose application secrets are kept, so that application messages
    sent in them and delivered late still decrypt (RFC 9420 section 15.3); 0 keeps none."""


DEFAULT_CONFIG = GroupConfig()


@dataclass(frozen=True, slots=True, eq=False)
class CommitOutput:
    """What :meth:`Group.commit <clave.mls.group.Group.commit>` produces; the commit
    stays pending until merged."""

    commit: bytes
    welcome: bytes | None
    summary: CommitSummary
    group_info_source: Callable[[], bytes] = field(repr=False)
    """Signs the new epoch's GroupInfo on first use (kept after)."""

    @property
    def group_info(self) -> bytes:
        """The signed GroupInfo of the epoch the commit creates, as an MLSMessage."""
        return self.group_info_source()


class Roster:
    """The members of one epoch's tree by leaf index, ``None`` for a blank leaf.

    Built once per tree and then carried from epoch to epoch by replacing only
    the leaves a commit changed, so the roster (policy input, ``Group.roster``)
    costs no scan of the tree per commit.
    """

    __slots__ = ("_by_leaf", "_members")

    def __init__(self, by_leaf: Sequence[Member | None]) -> None:
        self._by_leaf = tuple(by_leaf)
        self._members: tuple[Member, ...] | None = None

    @classmethod
    def of(cls, tree: RatchetTree) -> Roster:
        by_leaf: list[Member | None] = [None] * tree.n_leaves
        for i, _ in tree.leaf_nodes():
            by_leaf[i] = member_of(tree, i)
        return cls(by_leaf)

    def members(self) -> tuple[Member, ...]:
        """Non-blank leaves in leaf order (RFC 9420 section 7)."""
        if self._members is None:
            self._members = tuple(m for m in self._by_leaf if m is not None)
        return self._members

    def member(self, index: int) -> Member:
        m = self._by_leaf[index] if 0 <= index < len(self._by_leaf) else None
        if m is None:
            raise ValidationError(f"leaf {index} is not a member")
        return m

    def leaf_of(self, identity: bytes) -> int:
        """The leaf of the one member whose basic credential identity is ``identity``.

        UnknownMemberError if no member has it, AmbiguousMemberError if several do.
        """
        identity = bytes(identity)
        shown = repr(identity[:24]) + ("..." if len(identity) > 24 else "")
        leaves = [m.leaf_index for m in self.members() if identity and m.identity == identity]
        if not leaves:
            raise UnknownMemberError(f"no member has the identity {shown}")
        if len(leaves) > 1:
            raise AmbiguousMemberError(
                f"the identity {shown} is held by leaves {leaves}; name one by leaf index"
            )
        return leaves[0]

    def leaves(self, targets: Sequence[int | bytes]) -> list[int]:
        """Leaf indices as given, identities resolved with :meth:`leaf_of`."""
        if isinstance(targets, bytes | bytearray):
            raise TypeError("expected a list of leaf indices or identities, not one bytes string")
        return [t if isinstance(t, int) else self.leaf_of(t) for t in targets]

    def changed(self, tree: RatchetTree, leaves: Iterable[int]) -> Roster:
        """The roster of ``tree``, which differs from ours at most at ``leaves``."""
        by_leaf = list(self._by_leaf)
        n = tree.n_leaves
        del by_leaf[n:]
        by_leaf.extend([None] * (n - len(by_leaf)))
        for i in leaves:
            if 0 <= i < n:
                by_leaf[i] = None if tree.leaf(i) is None else member_of(tree, i)
        return Roster(by_leaf)


@dataclass(slots=True)
class EpochState:
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
    roster: Roster | None = None
    """Filled on first use, or carried over from the previous epoch by the commit."""

    def members(self) -> Roster:
        if self.roster is None:
            self.roster = Roster.of(self.tree)
        return self.roster

    def member(self, index: int) -> Member:
        """The member at leaf ``index`` (ValidationError if blank or out of range)."""
        if self.roster is not None:
            return self.roster.member(index)
        return member_of(self.tree, index)


@dataclass(frozen=True, slots=True)
class CommitBase:
    """What a commit builds on: the current epoch, or a GroupInfo for an external joiner."""

    context: GroupContext
    context_bytes: bytes
    tree: RatchetTree
    keys: TreePrivateKeys
    init_secret: bytes
    interim_transcript_hash: bytes
    roster: Roster
    external_secret: bytes | None
    """The epoch's ``external_secret`` (None for an external joiner, which has none)."""

    @classmethod
    def of(cls, epoch: EpochState) -> CommitBase:
        return cls(
            context=epoch.context,
            context_bytes=epoch.context_bytes,
            tree=epoch.tree,
            keys=epoch.keys,
            init_secret=epoch.secrets.init_secret,
            interim_transcript_hash=epoch.interim_transcript_hash,
            roster=epoch.members(),
            external_secret=epoch.secrets.external_secret,
        )


@dataclass(frozen=True, slots=True)
class CachedProposal:
    """A proposal of this epoch, kept by reference for a commit (section 12.1)."""

    sender: Sender
    proposal: Proposal
    reference: bytes


@dataclass(slots=True)
class AppliedProposals:
    """A proposal list applied (section 12.3) to copies of the tree and extensions."""

    tree: RatchetTree
    extensions: tuple[Extension, ...]
    adds: list[tuple[int, KeyPackage]] = field(default_factory=list)
    removed: list[Member] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    psk_ids: list[PreSharedKeyID] = field(default_factory=list)
    external_init: ExternalInit | None = None
    extensions_changed: bool = False


@dataclass(frozen=True, slots=True)
class StagedCommit:
    """A commit checked and applied to copies of the group state: the epoch it creates."""

    epoch: EpochState
    summary: CommitSummary
    content: AuthenticatedContent
    joiner_secret: bytes
    applied: AppliedProposals
    path_secret_for: Callable[[int], bytes | None]
    """The GroupSecrets ``path_secret`` for a member added by the commit (our own commits)."""


class PskStore:
    """External PSKs by ``psk_id`` and the ``resumption_psk`` of recent epochs (section 8.6)."""

    __slots__ = ("external", "keep_epochs", "resumption")

    def __init__(self, external: Mapping[bytes, bytes] | None, keep_epochs: int) -> None:
        self.external: dict[bytes, bytes] = dict(external or {})
        self.resumption: dict[tuple[bytes, int], bytes] = {}
        """(group_id, epoch) -> resumption_psk, oldest first."""
        self.keep_epochs = keep_epochs

    def remember(self, epoch: EpochState) -> None:
        """Keep ``epoch``'s resumption_psk and those of the last few epochs."""
        known = self.resumption
        known[(epoch.context.group_id, epoch.context.epoch)] = epoch.secrets.resumption_psk
        while len(known) > max(0, self.keep_epochs) + 1:
            del known[next(iter(known))]

    def value(self, pid: PreSharedKeyID) -> bytes:
        if pid.psktype == PSKType.external:
            value = self.external.get(pid.psk_id)
        else:
            # Section 8.6: the resumption_psk of epoch psk_epoch of group psk_group_id;
            # proposal validation (section 12.2) admits only usage application here.
            value = self.resumption.get((pid.psk_group_id, pid.psk_epoch))
        if value is None:
            raise ProposalError("PreSharedKey proposal names a PSK this member does not hold")
        return value

    def secret(self, suite: CipherSuite, ids: Sequence[PreSharedKeyID]) -> bytes | None:
        """Section 8.4; None (the all-zero secret) without PSKs."""
        if not ids:
            return None
        return psk_secret(suite, [(pid.to_bytes(), self.value(pid)) for pid in ids])


@dataclass(frozen=True, slots=True)
class GroupEnv:
    """What the group modules need from the member running them, passed as data."""

    suite: CipherSuite
    signer: Signer
    rng: Rng
    now: Clock
    policy: Policy
    config: GroupConfig
    psks: PskStore
    tree_encoder: RatchetTreeEncoder


def member_of(tree: RatchetTree, index: int) -> Member:
    leaf = tree.leaf(index) if 0 <= index < tree.n_leaves else None
    if leaf is None:
        raise ValidationError(f"leaf {index} is not a member")
    return Member(
        leaf_index=index,
        credential=leaf.credential,
        signature_key=leaf.signature_key,
        encryption_key=leaf.encryption_key,
    )


def new_secret_tree(
    suite: CipherSuite, secrets: EpochSecrets, n_leaves: int, cfg: GroupConfig
) -> SecretTree:
    return SecretTree(
        suite, secrets.encryption_secret, n_leaves, max_forward_distance=cfg.max_forward_distance
    )


def decode_message(data: bytes) -> MLSMessage:
    return MLSMessage.from_bytes(bytes(data))


def decode_body(data: bytes, kind: type[_Body], error: type[MLSError]) -> _Body:
    """The ``kind`` an MLSMessage carries (``error`` if it carries something else)."""
    msg = decode_message(data)
    if not isinstance(msg.body, kind):
        raise error(f"expected a {kind.__name__}, got a {msg.wire_format.name}")
    return msg.body


def key_package_from(data: bytes) -> KeyPackage:
    """A KeyPackage, bare or wrapped in an MLSMessage (RFC 9420 section 6)."""
    return decode_key_package(data)


def tree_from(
    suite: CipherSuite, extensions: Sequence[Extension], out_of_band: bytes | None, where: str
) -> RatchetTree:
    """The tree from the ratchet_tree extension, else the one supplied out of band."""
    ext = find_extension(extensions, ExtensionType.ratchet_tree)
    if ext is not None:
        return RatchetTree.from_extension(suite, ext)
    if out_of_band is None:
        raise ValidationError(f"the {where} carries no ratchet tree and none was supplied")
    return RatchetTree.from_bytes(suite, out_of_band)
