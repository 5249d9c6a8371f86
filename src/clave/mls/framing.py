"""Message framing: signing, PublicMessage and PrivateMessage protection (RFC 9420 section 6).

Pure functions for the group state machine. Sending::

    auth = sign_content(suite, WireFormat.mls_private_message, content, sig_priv, ctx)
    msg = protect_private(suite, auth, ctx, secret_tree, sender_data_secret, rng=rng)

Receiving::

    auth = unprotect_private(suite, msg, ctx, secret_tree, sender_data_secret,
                             is_member=..., signature_key=...)

or, to consume the ratchet key only once the group has accepted the message,
``opened = open_private(...)`` and later ``opened.consume()``: a rejected
message then leaves its key unconsumed, though decrypting its sender data
already advanced that sender's ratchet to its generation (the keys passed are
kept, up to the window; see ``Group.process``).

Every ``unprotect_*`` checks the group id and epoch against the GroupContext
(:class:`EpochError`), the membership tag or AEAD, the sender / content-type
rules of section 6.1 and the signature (section 6.1: recipients MUST verify
it). The signature key comes from the caller, either as bytes or as a
:data:`SignatureKeyLookup` over the decoded FramedContent, since finding it
needs the ratchet tree or the ``external_senders`` extension; the helper
:func:`new_member_signature_key` covers the two new-member sender types. The
``confirmation_tag`` of a commit is checked by the group once it has the new
epoch's ``confirmation_key`` (section 12.4.2); :func:`next_transcript_hashes`
computes its input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .ciphersuite import CipherSuite, Rng
from .codec import Reader
from .errors import CryptoError, DecodeError, EpochError, MembershipTagError, ValidationError
from .hpke import draw
from .key_schedule import confirmed_transcript_hash, interim_transcript_hash
from .secret_tree import (
    SecretTree,
    apply_reuse_guard,
    ratchet_type_for_content_type,
    sender_data_key_nonce,
)
from .structs import (
    Add,
    AuthenticatedContent,
    Commit,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    PrivateContentAAD,
    PrivateMessage,
    PrivateMessageContent,
    ProposalType,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    SenderType,
    WireFormat,
    authenticated_content_tbm,
    framed_content_tbs,
)

__all__ = [
    "EXTERNAL_SENDER_PROPOSAL_TYPES",
    "FramingError",
    "OpenedPrivateMessage",
    "PaddingPolicy",
    "SignatureKeyLookup",
    "check_sender_content",
    "membership_tag",
    "new_member_signature_key",
    "next_transcript_hashes",
    "open_private",
    "pad_to_multiple",
    "protect_private",
    "protect_public",
    "sign_content",
    "unprotect_private",
    "unprotect_public",
    "verify_content_signature",
    "verify_membership_tag",
]

SIGNATURE_LABEL = "FramedContentTBS"

SignatureKeyLookup = Callable[[FramedContent], bytes]
"""Returns the sender's SignaturePublicKey for a FramedContent, or raises an MLSError."""

PaddingPolicy = Callable[[int], int]
"""Given the unpadded PrivateMessageContent length, the number of zero octets to append."""

EXTERNAL_SENDER_PROPOSAL_TYPES: frozenset[ProposalType] = frozenset(
    {
        ProposalType.add,
        ProposalType.remove,
        ProposalType.psk,
        ProposalType.reinit,
        ProposalType.group_context_extensions,
    }
)
"""Default proposal types allowed for ``external`` senders ("External" column, section 17.4)."""


class FramingError(ValidationError):
    """A message violates the framing rules of RFC 9420 section 6."""


def pad_to_multiple(block: int) -> PaddingPolicy:
    """Padding policy filling PrivateMessageContent up to a multiple of ``block`` octets."""
    if block < 1:
        raise ValueError("padding block size must be positive")
    return lambda length: -length % block


# -- content authentication (section 6.1) -------------------------------------


def check_sender_content(content: FramedContent) -> None:
    """Enforce which content a sender type may carry (RFC 9420 section 6.1)."""
    t = content.sender.sender_type
    body = content.content
    if t is SenderType.member:
        return
    if t is SenderType.external:
        if isinstance(body, bytes | Commit):
            raise FramingError("an external sender may only send proposals")
        if body.proposal_type not in EXTERNAL_SENDER_PROPOSAL_TYPES:
            raise FramingError(
                f"proposal type {body.proposal_type.name} is not allowed for external senders"
            )
    elif t is SenderType.new_member_commit:
        if not isinstance(body, Commit):
            raise FramingError("a new_member_commit sender may only send a commit")
    elif t is SenderType.new_member_proposal:
        if not isinstance(body, Add):
            raise FramingError("a new_member_proposal sender may only send an Add proposal")
    else:  # pragma: no cover - Sender decoding rejects other values
        raise FramingError(f"unknown sender type {t}")


def new_member_signature_key(content: FramedContent) -> bytes:
    """The signature key of a ``new_member_commit`` / ``new_member_proposal`` sender (6.1).

    That is the key in the Commit's UpdatePath leaf, or in the Add's KeyPackage leaf.
    """
    t = content.sender.sender_type
    body = content.content
    if t is SenderType.new_member_commit and isinstance(body, Commit):
        if body.path is None:
            raise FramingError("an external commit must carry an UpdatePath")
        return body.path.leaf_node.signature_key
    if t is SenderType.new_member_proposal and isinstance(body, Add):
        return body.key_package.leaf_node.signature_key
    raise FramingError(f"no in-message signature key for a {t.name} sender with this content")


def sign_content(
    suite: CipherSuite,
    wire_format: WireFormat,
    content: FramedContent,
    signature_priv: bytes,
    group_context: GroupContext | bytes | None,
    confirmation_tag: bytes | None = None,
) -> AuthenticatedContent:
    """Sign ``content`` for ``wire_format`` -> AuthenticatedContent (RFC 9420 section 6.1).

    ``group_context`` is covered for ``member`` and ``new_member_commit`` senders.
    ``confirmation_tag`` must be given exactly for commits.
    """
    check_sender_content(content)
    if wire_format is WireFormat.mls_private_message and (
        content.sender.sender_type is not SenderType.member
    ):
        raise FramingError("only members can send a PrivateMessage")
    if wire_format not in (WireFormat.mls_public_message, WireFormat.mls_private_message):
        raise FramingError(f"wire format {wire_format.name} does not carry framed content")
    if (confirmation_tag is not None) != (content.content_type is ContentType.commit):
        raise FramingError("a confirmation_tag must be given exactly for commits")
    tbs = framed_content_tbs(wire_format, content, group_context)
    signature = suite.sign_with_label(signature_priv, SIGNATURE_LABEL, tbs)
    return AuthenticatedContent(
        wire_format, content, FramedContentAuthData(signature, confirmation_tag)
    )


def verify_content_signature(
    suite: CipherSuite,
    auth_content: AuthenticatedContent,
    signature_pub: bytes,
    group_context: GroupContext | bytes | None,
) -> None:
    """Verify the FramedContentTBS signature; SignatureError if invalid (section 6.1)."""
    tbs = auth_content.tbs(group_context)
    suite.verify_with_label(signature_pub, SIGNATURE_LABEL, tbs, auth_content.auth.signature)


def _verify_signature(
    suite: CipherSuite,
    auth_content: AuthenticatedContent,
    signature_key: bytes | SignatureKeyLookup,
    context: bytes,
) -> None:
    pub = signature_key if isinstance(signature_key, bytes) else signature_key(auth_content.content)
    verify_content_signature(suite, auth_content, pub, context)


def _check_group(content_group_id: bytes, content_epoch: int, ctx: GroupContext) -> None:
    if content_group_id != ctx.group_id:
        raise EpochError("message is for a different group")
    if content_epoch != ctx.epoch:
        raise EpochError(f"message is for epoch {content_epoch}, the group is at {ctx.epoch}")


# -- PublicMessage (section 6.2) ----------------------------------------------


def membership_tag(
    suite: CipherSuite,
    membership_key: bytes,
    auth_content: AuthenticatedContent,
    group_context: GroupContext | bytes,
) -> bytes:
    """``MAC(membership_key, AuthenticatedContentTBM)`` (RFC 9420 section 6.2)."""
    tbs = framed_content_tbs(WireFormat.mls_public_message, auth_content.content, group_context)
    return suite.mac(membership_key, authenticated_content_tbm(tbs, auth_content.auth))


def verify_membership_tag(
    suite: CipherSuite,
    membership_key: bytes,
    message: PublicMessage,
    group_context: GroupContext | bytes,
) -> None:
    """Constant-time membership tag check; MembershipTagError on mismatch (section 6.2)."""
    if message.membership_tag is None:
        raise MembershipTagError("PublicMessage from a member lacks a membership_tag")
    if not suite.verify_mac(membership_key, message.tbm(group_context), message.membership_tag):
        raise MembershipTagError("membership_tag mismatch")


def protect_public(
    suite: CipherSuite,
    auth_content: AuthenticatedContent,
    group_context: GroupContext,
    membership_key: bytes | None,
) -> PublicMessage:
    """Encode signed content as a PublicMessage (RFC 9420 section 6.2).

    ``membership_key`` is required for ``member`` senders (it keys the
    membership tag) and ignored otherwise. Application data is refused: it
    MUST be sent as a PrivateMessage.
    """
    content = auth_content.content
    if auth_content.wire_format is not WireFormat.mls_public_message:
        raise FramingError("content was signed for a different wire format than PublicMessage")
    if content.content_type is ContentType.application:
        raise FramingError("application data must be sent as a PrivateMessage")
    check_sender_content(content)
    _check_group(content.group_id, content.epoch, group_context)
    tag: bytes | None = None
    if content.sender.sender_type is SenderType.member:
        if membership_key is None:
            raise FramingError("a member's PublicMessage needs the membership_key")
        tag = membership_tag(suite, membership_key, auth_content, group_context)
    return PublicMessage(content, auth_content.auth, tag)


def unprotect_public(
    suite: CipherSuite,
    message: PublicMessage,
    group_context: GroupContext,
    membership_key: bytes | None,
    *,
    signature_key: bytes | SignatureKeyLookup,
) -> AuthenticatedContent:
    """Verify a PublicMessage and return its AuthenticatedContent (RFC 9420 section 6.2).

    Checks, in order: group id and epoch (EpochError), no application data
    (FramingError), sender/content rules, the membership tag for members
    (MembershipTagError), the signature (SignatureError).
    """
    content = message.content
    _check_group(content.group_id, content.epoch, group_context)
    if content.content_type is ContentType.application:
        raise FramingError("application data must not be sent as a PublicMessage")
    check_sender_content(content)
    context = group_context.to_bytes()
    if content.sender.sender_type is SenderType.member:
        if membership_key is None:
            raise FramingError("a member's PublicMessage needs the membership_key to verify")
        verify_membership_tag(suite, membership_key, message, context)
    elif message.membership_tag is not None:
        raise FramingError("only member senders carry a membership_tag")
    auth_content = message.authenticated_content()
    _verify_signature(suite, auth_content, signature_key, context)
    return auth_content


# -- PrivateMessage (section 6.3) ---------------------------------------------


def protect_private(
    suite: CipherSuite,
    auth_content: AuthenticatedContent,
    group_context: GroupContext,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
    *,
    rng: Rng,
    padding: PaddingPolicy | int | None = None,
) -> PrivateMessage:
    """Encrypt signed content into a PrivateMessage (RFC 9420 sections 6.3.1-6.3.2).

    Takes the next generation of the sender's handshake or application
    ratchet, XORs a fresh 4-byte reuse guard from ``rng`` into the nonce,
    and encrypts the sender data under keys sampled from the ciphertext.
    ``padding`` is a :data:`PaddingPolicy` or a block size for
    :func:`pad_to_multiple` (0: none); padding octets are zero (section 6.3.1).
    """
    content = auth_content.content
    if auth_content.wire_format is not WireFormat.mls_private_message:
        raise FramingError("content was signed for a different wire format than PrivateMessage")
    sender = content.sender
    if sender.sender_type is not SenderType.member or sender.index is None:
        raise FramingError("only members can send a PrivateMessage")
    _check_group(content.group_id, content.epoch, group_context)
    content_type = content.content_type

    unpadded = PrivateMessageContent(content.content, auth_content.auth).to_bytes()
    if isinstance(padding, int):
        padding = None if padding == 0 else pad_to_multiple(padding)
    pad = 0 if padding is None else padding(len(unpadded))
    if pad < 0:
        raise ValueError("padding policy returned a negative length")
    plaintext = unpadded + bytes(pad)

    generation, key, nonce = secret_tree.next_send_key(
        sender.index, ratchet_type_for_content_type(content_type)
    )
    reuse_guard = draw(rng, 4)
    aad = PrivateContentAAD(
        content.group_id, content.epoch, content_type, content.authenticated_data
    ).to_bytes()
    ciphertext = suite.aead_encrypt(key, apply_reuse_guard(nonce, reuse_guard), aad, plaintext)

    sd_key, sd_nonce = sender_data_key_nonce(suite, sender_data_secret, ciphertext)
    sd_aad = SenderDataAAD(content.group_id, content.epoch, content_type).to_bytes()
    sender_data = SenderData(sender.index, generation, reuse_guard).to_bytes()
    encrypted_sender_data = suite.aead_encrypt(sd_key, sd_nonce, sd_aad, sender_data)
    return PrivateMessage(
        content.group_id,
        content.epoch,
        content_type,
        content.authenticated_data,
        encrypted_sender_data,
        ciphertext,
    )


@dataclass(frozen=True, slots=True)
class OpenedPrivateMessage:
    """A decrypted, signature-verified PrivateMessage whose ratchet key is still held.

    Call :meth:`consume` once the group accepts the message; until then its key
    stays unconsumed (the sender's ratchet may already have advanced to its
    generation, the skipped keys kept).
    """

    content: AuthenticatedContent
    generation: int
    secret_tree: SecretTree

    def consume(self) -> None:
        """Delete the generation's key (RFC 9420 section 9.2); GenerationError if gone."""
        sender = self.content.content.sender
        assert sender.index is not None
        kind = ratchet_type_for_content_type(self.content.content.content_type)
        self.secret_tree.consume_key(sender.index, kind, self.generation)


def open_private(
    suite: CipherSuite,
    message: PrivateMessage,
    group_context: GroupContext,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
    *,
    is_member: Callable[[int], bool],
    signature_key: bytes | SignatureKeyLookup,
) -> OpenedPrivateMessage:
    """Decrypt and verify a PrivateMessage without consuming its key (sections 6.3.1-6.3.2).

    Checks group id and epoch (EpochError), decrypts the sender data
    (CryptoError), requires ``is_member(leaf_index)`` (the leaf is non-blank;
    FramingError), fetches the generation's key with ``peek_key``
    (GenerationError if consumed or out of window), decrypts the content
    (CryptoError), parses it strictly with zero padding (DecodeError) and
    verifies the signature (SignatureError).
    """
    _check_group(message.group_id, message.epoch, group_context)
    content_type = message.content_type

    sd_key, sd_nonce = sender_data_key_nonce(suite, sender_data_secret, message.ciphertext)
    try:
        sender_data_bytes = suite.aead_decrypt(
            sd_key, sd_nonce, message.sender_data_aad().to_bytes(), message.encrypted_sender_data
        )
    except CryptoError:
        raise CryptoError("could not decrypt the PrivateMessage sender data") from None
    try:
        sender_data = SenderData.from_bytes(sender_data_bytes)
    except DecodeError as exc:
        raise DecodeError(f"malformed SenderData: {exc}") from None
    leaf = sender_data.leaf_index
    if not is_member(leaf):
        raise FramingError(f"PrivateMessage sender leaf {leaf} is not a member of the group")

    kind = ratchet_type_for_content_type(content_type)
    key, nonce = secret_tree.peek_key(leaf, kind, sender_data.generation)
    try:
        plaintext = suite.aead_decrypt(
            key,
            apply_reuse_guard(nonce, sender_data.reuse_guard),
            message.content_aad().to_bytes(),
            message.ciphertext,
        )
    except CryptoError:
        raise CryptoError("could not decrypt the PrivateMessage content") from None
    try:
        pmc = PrivateMessageContent.decode(Reader(plaintext), content_type)
    except DecodeError as exc:
        raise DecodeError(f"malformed PrivateMessageContent: {exc}") from None

    auth_content = AuthenticatedContent(
        WireFormat.mls_private_message,
        FramedContent(
            message.group_id,
            message.epoch,
            Sender.member(leaf),
            message.authenticated_data,
            pmc.content,
        ),
        pmc.auth,
    )
    _verify_signature(suite, auth_content, signature_key, group_context.to_bytes())
    return OpenedPrivateMessage(auth_content, sender_data.generation, secret_tree)


def unprotect_private(
    suite: CipherSuite,
    message: PrivateMessage,
    group_context: GroupContext,
    secret_tree: SecretTree,
    sender_data_secret: bytes,
    *,
    is_member: Callable[[int], bool],
    signature_key: bytes | SignatureKeyLookup,
) -> AuthenticatedContent:
    """:func:`open_private`, then consume the key: for messages accepted on verification.

    The key is consumed only after decryption and signature verification
    succeeded, so a forged or corrupted message cannot burn it; a replayed
    generation raises GenerationError.
    """
    opened = open_private(
        suite,
        message,
        group_context,
        secret_tree,
        sender_data_secret,
        is_member=is_member,
        signature_key=signature_key,
    )
    opened.consume()
    return opened.content


# -- transcript hashes (section 8.2) ------------------------------------------


def next_transcript_hashes(
    suite: CipherSuite, interim_before: bytes, auth_content: AuthenticatedContent
) -> tuple[bytes, bytes]:
    """``(confirmed_transcript_hash, interim_transcript_hash)`` after a commit (section 8.2)."""
    tag = auth_content.auth.confirmation_tag
    if not isinstance(auth_content.content.content, Commit) or tag is None:
        raise FramingError("transcript hashes are only updated by a commit")
    confirmed = confirmed_transcript_hash(
        suite, interim_before, auth_content.confirmed_transcript_hash_input().to_bytes()
    )
    return confirmed, interim_transcript_hash(suite, confirmed, tag)
