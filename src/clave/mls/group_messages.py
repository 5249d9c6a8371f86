"""Messages within one epoch: framing ours, opening others', standalone proposals.

RFC 9420 section 6 (PublicMessage and PrivateMessage framing, signature keys
of member, external and new-member senders), section 12.1 (standalone
proposals: checked against the current epoch, then cached by reference for a
later commit) and section 15.3 (application messages of a past epoch the group
still keeps). Commits are staged by :mod:`clave.mls.commit_stage`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import framing
from .commit_stage import check_policy, validate_key_package, validate_update
from .errors import ProposalError, StateError, ValidationError
from .events import ApplicationMessage
from .group_records import CachedProposal, EpochState, GroupEnv
from .leaf_node import make_leaf_node
from .past_epochs import PastEpochs
from .proposals import EXTERNAL_SENDER_TYPES, Sourced
from .structs import (
    Add,
    AuthenticatedContent,
    Commit,
    ContentType,
    ExtensionType,
    ExternalInit,
    ExternalSenders,
    FramedContent,
    LeafNodeSource,
    MLSMessage,
    PrivateMessage,
    Proposal,
    PublicMessage,
    Remove,
    SenderType,
    Update,
    WireFormat,
    find_extension,
)


def _noop() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Opened:
    """A verified message of the current epoch; ``consume()`` deletes its key (section 9.2)
    once the group accepted it."""

    content: AuthenticatedContent
    generation: int
    consume: Callable[[], None]

    def application(self) -> ApplicationMessage:
        content = self.content.content
        assert isinstance(content.content, bytes) and content.sender.index is not None
        return ApplicationMessage(
            sender=content.sender.index,
            data=content.content,
            authenticated_data=content.authenticated_data,
            epoch=content.epoch,
            generation=self.generation,
        )


def signature_key_of(epoch: EpochState, content: FramedContent) -> bytes:
    """The key that must have signed ``content`` (RFC 9420 section 6.1)."""
    sender = content.sender
    if sender.sender_type == SenderType.member:
        assert sender.index is not None
        return epoch.member(sender.index).signature_key
    if sender.sender_type == SenderType.external:
        ext = find_extension(epoch.context.extensions, ExtensionType.external_senders)
        if ext is None:
            raise ValidationError("external sender, but the group has no external_senders")
        senders = ExternalSenders.from_extension(ext).senders
        assert sender.index is not None
        if sender.index >= len(senders):
            raise ValidationError(f"unknown external sender index {sender.index}")
        return senders[sender.index].signature_key
    return framing.new_member_signature_key(content)


def open_message(
    env: GroupEnv, epoch: EpochState, past: PastEpochs, msg: MLSMessage
) -> Opened | ApplicationMessage:
    """Verify a Public/PrivateMessage of the current epoch (section 6) -> :class:`Opened`;
    an application message of a past epoch we keep is opened and returned as its event."""
    body = msg.body
    ep = epoch

    def key_of(content: FramedContent) -> bytes:
        return signature_key_of(ep, content)

    if isinstance(body, PrivateMessage) and body.epoch != ep.context.epoch:
        kept = past.get(body.epoch)
        if (
            kept is not None
            and body.content_type == ContentType.application
            and body.group_id == ep.context.group_id
        ):
            return kept.open(env.suite, body)
    if isinstance(body, PublicMessage):
        auth = framing.unprotect_public(
            env.suite, body, ep.context, ep.secrets.membership_key, signature_key=key_of
        )
        return Opened(content=auth, generation=0, consume=_noop)
    if isinstance(body, PrivateMessage):

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
            env.suite,
            body,
            ep.context,
            ep.secret_tree,
            ep.secrets.sender_data_secret,
            is_member=is_member,
            signature_key=key_of,
        )
        return Opened(content=opened.content, generation=opened.generation, consume=opened.consume)
    raise ValidationError(f"a group member cannot process a {msg.wire_format.name}")


def sign(
    env: GroupEnv, epoch: EpochState, content: FramedContent, wire_format: WireFormat
) -> AuthenticatedContent:
    """Sign application data or a proposal of ``epoch`` (section 6.1)."""
    return framing.sign_content(
        env.suite, wire_format, content, env.signer.signature_private_key, epoch.context_bytes
    )


def protect(env: GroupEnv, epoch: EpochState, auth: AuthenticatedContent) -> bytes:
    """Frame signed content as a PublicMessage or PrivateMessage (sections 6.2, 6.3)."""
    if auth.wire_format == WireFormat.mls_public_message:
        pub = framing.protect_public(env.suite, auth, epoch.context, epoch.secrets.membership_key)
        return MLSMessage(pub).to_bytes()
    priv = framing.protect_private(
        env.suite,
        auth,
        epoch.context,
        epoch.secret_tree,
        epoch.secrets.sender_data_secret,
        rng=env.rng,
        padding=env.config.padding_block,
    )
    return MLSMessage(priv).to_bytes()


def update_proposal(env: GroupEnv, epoch: EpochState) -> tuple[Update, tuple[bytes, bytes]]:
    """An Update of our leaf with a fresh HPKE key pair (section 12.1.2) and that pair."""
    enc_priv, enc_pub = env.suite.generate_hpke_key_pair(env.rng)
    old = epoch.tree.leaf(epoch.own_leaf)
    assert old is not None
    leaf = make_leaf_node(
        env.suite,
        encryption_key=enc_pub,
        signature_priv=env.signer.signature_private_key,
        credential=env.signer.credential,
        capabilities=old.capabilities,
        source=LeafNodeSource.update,
        extensions=old.extensions,
        group_id=epoch.context.group_id,
        leaf_index=epoch.own_leaf,
    )
    return Update(leaf), (enc_priv, enc_pub)


def check_proposal_policy(
    env: GroupEnv, epoch: EpochState, proposal: Proposal, sender: int | None, *, own: bool
) -> None:
    """Ask the application about a standalone proposal (raises PolicyError)."""
    check_policy(
        env,
        "proposal",
        None,
        [Sourced(proposal=proposal, sender=sender)],
        own=own,
        roster=epoch.members(),
        context=epoch.context,
    )


def verify_proposal(env: GroupEnv, epoch: EpochState, auth: AuthenticatedContent) -> CachedProposal:
    """Section 12.1: check a received standalone proposal; what to cache for it."""
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
    if isinstance(proposal, Add):
        validate_key_package(env, proposal.key_package, epoch.tree, epoch.context)
    elif isinstance(proposal, Update):
        if leaf is None:
            raise ProposalError("Update proposal from a non-member")
        validate_update(env, proposal, leaf, epoch.tree, epoch.context)
    elif isinstance(proposal, Remove):
        epoch.member(proposal.removed)
    check_proposal_policy(env, epoch, proposal, leaf, own=False)
    ref = env.suite.make_proposal_ref(auth.to_bytes())
    return CachedProposal(sender=sender, proposal=proposal, reference=ref)
