"""Shared fixtures for the Group API tests (tests/mls/test_group*.py).

Everything is deterministic: one seeded ``random.Random(...).randbytes`` per
:class:`World` feeds every key generation, HPKE encryption and reuse guard, and
the clock is frozen at :data:`NOW`. (All members of a world must share that one
rng: two rngs with the same seed would hand out identical keys.)

The ``craft_*`` helpers build handshake messages the Group API refuses to
produce, directly from the structs: they sign with :func:`framing.sign_content`
and a member's own signature key and protect with that member's epoch secrets,
reaching into ``Group`` internals (``_epoch``, ``_signer``) on purpose.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from clave.mls import framing
from clave.mls.ciphersuite import CipherSuite, get_suite
from clave.mls.events import CommitProcessed, Event, Member, Policy, allow_all
from clave.mls.group import DEFAULT_CONFIG, CommitOutput, Group, GroupConfig, Signer
from clave.mls.key_package import KeyPackageBundle, create_key_package
from clave.mls.key_schedule import confirmation_tag, confirmed_transcript_hash
from clave.mls.secret_tree import (
    apply_reuse_guard,
    ratchet_type_for_content_type,
    sender_data_key_nonce,
)
from clave.mls.structs import (
    AuthenticatedContent,
    Commit,
    Content,
    ContentType,
    Credential,
    FramedContent,
    FramedContentAuthData,
    MLSMessage,
    PrivateContentAAD,
    PrivateMessage,
    Proposal,
    ProposalOrRef,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    UpdatePath,
    WireFormat,
)

NOW = 1_700_000_000
SUITES = (1, 2, 3)
PUBLIC = WireFormat.mls_public_message
PRIVATE = WireFormat.mls_private_message
WIRE_FORMATS = (PUBLIC, PRIVATE)


def clock() -> int:
    return NOW


@dataclass
class World:
    """One deterministic universe of clients for a single cipher suite."""

    suite_id: int = 1
    seed: int = 0
    group_id: bytes = b"clave test group"
    config: GroupConfig = DEFAULT_CONFIG
    policy: Policy = allow_all
    suite: CipherSuite = field(init=False)
    signers: dict[str, Signer] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.suite = get_suite(self.suite_id)
        self.rng = random.Random(f"{self.suite_id}/{self.seed}").randbytes

    def signer(self, name: str) -> Signer:
        """The (cached) identity of client ``name``."""
        if name not in self.signers:
            priv, _ = self.suite.generate_signature_key_pair(self.rng)
            self.signers[name] = Signer(Credential.basic(name.encode()), priv)
        return self.signers[name]

    def key_package(self, name: str) -> KeyPackageBundle:
        """A fresh KeyPackage for client ``name`` (same signature key every time)."""
        s = self.signer(name)
        return create_key_package(
            self.suite,
            s.credential,
            rng=self.rng,
            now=NOW,
            signature_priv=s.signature_private_key,
        )

    def create(
        self,
        name: str = "alice",
        *,
        policy: Policy | None = None,
        config: GroupConfig | None = None,
    ) -> Group:
        return Group.create(
            self.suite_id,
            self.group_id,
            self.signer(name),
            rng=self.rng,
            now=clock,
            policy=self.policy if policy is None else policy,
            config=self.config if config is None else config,
        )

    def join(
        self,
        welcome: bytes | None,
        bundle: KeyPackageBundle,
        *,
        policy: Policy | None = None,
        config: GroupConfig | None = None,
        psks: dict[bytes, bytes] | None = None,
        ratchet_tree: bytes | None = None,
    ) -> Group:
        assert welcome is not None
        return Group.join(
            welcome,
            bundle,
            rng=self.rng,
            now=clock,
            policy=self.policy if policy is None else policy,
            config=self.config if config is None else config,
            psks=psks,
            ratchet_tree=ratchet_tree,
        )

    def restore(self, data: bytes, *, policy: Policy | None = None) -> Group:
        return Group.from_bytes(
            data,
            rng=self.rng,
            now=clock,
            policy=self.policy if policy is None else policy,
            config=self.config,
        )

    def join_external(self, group_info: bytes, name: str, **kwargs: object) -> tuple[Group, bytes]:
        return Group.join_external(
            group_info,
            self.signer(name),
            rng=self.rng,
            now=clock,
            policy=self.policy,
            config=self.config,
            **kwargs,  # type: ignore[arg-type]
        )

    def add(
        self,
        committer: Group,
        others: Sequence[Group],
        names: Sequence[str],
        *,
        join_psks: dict[bytes, bytes] | None = None,
        **commit_kwargs: object,
    ) -> list[Group]:
        """``committer`` adds ``names`` in one commit; everyone processes it; joiners join."""
        bundles = [self.key_package(n) for n in names]
        out = commit_and_deliver(
            committer,
            others,
            add=[b.key_package.to_bytes() for b in bundles],
            **commit_kwargs,
        )
        assert [m.identity for m in out.summary.added] == [n.encode() for n in names]
        return [self.join(out.welcome, b, psks=join_psks) for b in bundles]

    def group_of(self, names: Sequence[str], **commit_kwargs: object) -> list[Group]:
        """``names[0]`` creates the group and adds the rest in one commit."""
        first = self.create(names[0])
        return [first, *self.add(first, [], names[1:], **commit_kwargs)]


def deliver(message: bytes, receivers: Iterable[Group]) -> list[Event]:
    return [g.process(message) for g in receivers]


def commit_and_deliver(
    committer: Group, others: Sequence[Group], **commit_kwargs: object
) -> CommitOutput:
    """Commit, merge and have every other member process it; summaries must agree."""
    out = committer.commit(**commit_kwargs)  # type: ignore[arg-type]
    summary = committer.merge_pending_commit()
    assert summary == out.summary
    for g in others:
        event = g.process(out.commit)
        assert isinstance(event, CommitProcessed)
        got = event.summary
        assert (got.epoch, got.committer, got.added, got.removed, got.updated) == (
            summary.epoch,
            summary.committer,
            summary.added,
            summary.removed,
            summary.updated,
        )
        assert (got.extensions_changed, got.psk_count, got.has_path) == (
            summary.extensions_changed,
            summary.psk_count,
            summary.has_path,
        )
    return out


def roster_view(g: Group) -> list[tuple[int, bytes, bytes, bytes]]:
    return [(m.leaf_index, m.identity, m.signature_key, m.encryption_key) for m in g.roster()]


def identities(members: Iterable[Member]) -> list[bytes]:
    return [m.identity for m in members]


def assert_agree(groups: Sequence[Group]) -> None:
    """Every member sees the same epoch, secrets, roster, tree and context."""
    first = groups[0]
    for g in groups:
        assert g.active
        assert g.epoch == first.epoch
        assert g.group_id == first.group_id
        assert g.epoch_authenticator == first.epoch_authenticator
        assert g.export_secret("agree", b"ctx", 32) == first.export_secret("agree", b"ctx", 32)
        assert g.tree_hash == first.tree_hash
        assert g.confirmed_transcript_hash == first.confirmed_transcript_hash
        assert g.group_context == first.group_context
        assert roster_view(g) == roster_view(first)
        assert g.ratchet_tree() == first.ratchet_tree()
    leaves = [g.own_leaf_index for g in groups]
    assert len(set(leaves)) == len(leaves)


def snapshot(g: Group) -> tuple[object, ...]:
    """What a rejected message must leave unchanged."""
    return (
        g.active,
        g.epoch,
        g.epoch_authenticator,
        g.tree_hash,
        g.confirmed_transcript_hash,
        g.group_context,
        roster_view(g),
        g.export_secret("snapshot", b"", 32),
        g.pending_proposals,
        g.has_pending_commit,
    )


# -- crafting messages the API would refuse to send --------------------------------


def sign_content(
    g: Group,
    body: Content,
    *,
    wire_format: WireFormat = PUBLIC,
    sender: Sender | None = None,
    epoch: int | None = None,
    group_id: bytes | None = None,
    authenticated_data: bytes = b"",
    signature_priv: bytes | None = None,
    confirmation_tag: bytes | None = None,
) -> tuple[FramedContent, AuthenticatedContent]:
    """Sign ``body`` as member ``g`` (by default) over ``g``'s current GroupContext."""
    content = FramedContent(
        g.group_id if group_id is None else group_id,
        g.epoch if epoch is None else epoch,
        Sender.member(g.own_leaf_index) if sender is None else sender,
        authenticated_data,
        body,
    )
    if isinstance(body, Commit) and confirmation_tag is None:
        confirmation_tag = bytes(g.suite.nh)  # placeholder; see craft_commit
    auth = framing.sign_content(
        g.suite,
        wire_format,
        content,
        g._signer.signature_private_key if signature_priv is None else signature_priv,
        g._epoch.context_bytes,
        confirmation_tag,
    )
    return content, auth


def protect(g: Group, auth: AuthenticatedContent, *, membership_key: bytes | None = None) -> bytes:
    """Frame ``auth`` with ``g``'s epoch secrets (membership key / secret tree)."""
    ep = g._epoch
    if auth.wire_format == PUBLIC:
        key = ep.secrets.membership_key if membership_key is None else membership_key
        pub = framing.protect_public(g.suite, auth, ep.context, key)
        return MLSMessage(pub).to_bytes()
    priv = framing.protect_private(
        g.suite, auth, ep.context, ep.secret_tree, ep.secrets.sender_data_secret, rng=g._rng
    )
    return MLSMessage(priv).to_bytes()


def craft_commit(
    g: Group,
    proposals: Sequence[Proposal | ProposalOrRef],
    *,
    path: UpdatePath | None = None,
    wire_format: WireFormat = PUBLIC,
    sender: Sender | None = None,
    epoch: int | None = None,
    signature_priv: bytes | None = None,
) -> bytes:
    """A Commit built by hand and signed by member ``g``.

    Its confirmation tag is computed with ``g``'s *current* confirmation key
    over the would-be confirmed transcript hash: well-formed, but necessarily
    wrong for the new epoch, which nobody can derive for an invalid commit.
    Receivers must reject these commits in proposal/path validation, which
    section 12.4.2 orders before the confirmation tag check.
    """
    pors = tuple(
        p if isinstance(p, ProposalOrRef) else ProposalOrRef.by_value(p) for p in proposals
    )
    body = Commit(pors, path)
    _, auth = sign_content(
        g,
        body,
        wire_format=wire_format,
        sender=sender,
        epoch=epoch,
        signature_priv=signature_priv,
    )
    ep = g._epoch
    confirmed = confirmed_transcript_hash(
        g.suite, ep.interim_transcript_hash, auth.confirmed_transcript_hash_input().to_bytes()
    )
    tag = confirmation_tag(g.suite, ep.secrets.confirmation_key, confirmed)
    auth = AuthenticatedContent(
        auth.wire_format, auth.content, FramedContentAuthData(auth.auth.signature, tag)
    )
    return protect(g, auth)


def public_message(
    g: Group, auth: AuthenticatedContent, membership_key: bytes, context: bytes
) -> bytes:
    """A member PublicMessage with a membership tag under any key and context.

    Unlike :func:`protect` this skips every sender-side check (e.g. that the
    content's epoch is ``g``'s), to forge messages for other epochs.
    """
    tag = framing.membership_tag(g.suite, membership_key, auth, context)
    return MLSMessage(PublicMessage(auth.content, auth.auth, tag)).to_bytes()


def private_message_raw(
    g: Group,
    content_type: ContentType,
    plaintext: bytes,
    *,
    authenticated_data: bytes = b"",
) -> bytes:
    """A PrivateMessage from member ``g`` whose decrypted content is ``plaintext``.

    Correctly encrypted (sender data and content) with ``g``'s next generation,
    so only the parsing of the PrivateMessageContent can fail.
    """
    ep = g._epoch
    suite = g.suite
    kind = ratchet_type_for_content_type(content_type)
    generation, key, nonce = ep.secret_tree.next_send_key(g.own_leaf_index, kind)
    guard = g._rng(4)
    aad = PrivateContentAAD(g.group_id, g.epoch, content_type, authenticated_data).to_bytes()
    ciphertext = suite.aead_encrypt(key, apply_reuse_guard(nonce, guard), aad, plaintext)
    sd_key, sd_nonce = sender_data_key_nonce(suite, ep.secrets.sender_data_secret, ciphertext)
    sd_aad = SenderDataAAD(g.group_id, g.epoch, content_type).to_bytes()
    sender_data = SenderData(g.own_leaf_index, generation, guard).to_bytes()
    return MLSMessage(
        PrivateMessage(
            g.group_id,
            g.epoch,
            content_type,
            authenticated_data,
            suite.aead_encrypt(sd_key, sd_nonce, sd_aad, sender_data),
            ciphertext,
        )
    ).to_bytes()
