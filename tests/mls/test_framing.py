"""Message framing: signatures, PublicMessage, PrivateMessage (RFC 9420 section 6)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import pytest

from clave.mls.ciphersuite import SUPPORTED_CIPHER_SUITES, CipherSuite, Rng, get_suite
from clave.mls.errors import (
    CryptoError,
    DecodeError,
    EpochError,
    GenerationError,
    MembershipTagError,
    SignatureError,
)
from clave.mls.framing import (
    FramingError,
    check_sender_content,
    membership_tag,
    new_member_signature_key,
    open_private,
    pad_to_multiple,
    protect_private,
    protect_public,
    sign_content,
    unprotect_private,
    unprotect_public,
    verify_content_signature,
)
from clave.mls.key_package import create_key_package
from clave.mls.secret_tree import (
    RatchetType,
    SecretTree,
    apply_reuse_guard,
    sender_data_key_nonce,
)
from clave.mls.structs import (
    Add,
    AuthenticatedContent,
    Capabilities,
    Commit,
    Content,
    ContentType,
    Credential,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    LeafNode,
    LeafNodeSource,
    MLSMessage,
    PrivateContentAAD,
    PrivateMessage,
    PrivateMessageContent,
    ProtocolVersion,
    PublicMessage,
    Remove,
    Sender,
    SenderData,
    SenderDataAAD,
    Update,
    UpdatePath,
    WireFormat,
)

N_LEAVES = 4
NOW = 1_700_000_000


def _rng(seed: bytes) -> Rng:
    counter = [0]

    def rng(n: int) -> bytes:
        counter[0] += 1
        return hashlib.shake_256(seed + counter[0].to_bytes(8, "big")).digest(n)

    return rng


class Env:
    """One epoch of a 3-member group (leaves 0-2 of a 4-leaf tree) seen from every side."""

    def __init__(self, cs: int) -> None:
        self.suite: CipherSuite = get_suite(cs)
        rng = _rng(b"env%d" % cs)
        self.ctx = GroupContext(ProtocolVersion.mls10, cs, b"group-id", 7, rng(32), rng(32), ())
        self.keys = [self.suite.generate_signature_key_pair(rng) for _ in range(3)]
        self.encryption_secret = rng(32)
        self.sender_data_secret = rng(32)
        self.membership_key = rng(32)
        self.rng = rng

    def tree(self) -> SecretTree:
        return SecretTree(self.suite, self.encryption_secret, N_LEAVES)

    def lookup(self, content: FramedContent) -> bytes:
        assert content.sender.index is not None
        return self.keys[content.sender.index][1]

    def framed(self, content: Content, leaf: int = 1, aad: bytes = b"") -> FramedContent:
        return FramedContent(self.ctx.group_id, self.ctx.epoch, Sender.member(leaf), aad, content)

    def signed(
        self,
        content: Content,
        wire_format: WireFormat,
        leaf: int = 1,
        sig_priv: bytes | None = None,
    ) -> AuthenticatedContent:
        tag = bytes(32) if isinstance(content, Commit) else None
        priv = self.keys[leaf][0] if sig_priv is None else sig_priv
        return sign_content(
            self.suite, wire_format, self.framed(content, leaf), priv, self.ctx, tag
        )

    def public(self, content: Content, leaf: int = 1) -> PublicMessage:
        auth = self.signed(content, WireFormat.mls_public_message, leaf)
        return protect_public(self.suite, auth, self.ctx, self.membership_key)

    def unprotect_public(self, msg: PublicMessage) -> AuthenticatedContent:
        return unprotect_public(
            self.suite, msg, self.ctx, self.membership_key, signature_key=self.lookup
        )

    def private(
        self,
        tree: SecretTree,
        content: Content,
        leaf: int = 1,
        padding: Callable[[int], int] | int | None = None,
        sig_priv: bytes | None = None,
    ) -> PrivateMessage:
        auth = self.signed(content, WireFormat.mls_private_message, leaf, sig_priv)
        return protect_private(
            self.suite,
            auth,
            self.ctx,
            tree,
            self.sender_data_secret,
            rng=self.rng,
            padding=padding,
        )

    def unprotect_private(self, tree: SecretTree, msg: PrivateMessage) -> AuthenticatedContent:
        return unprotect_private(
            self.suite,
            msg,
            self.ctx,
            tree,
            self.sender_data_secret,
            is_member=lambda leaf: leaf < 3,
            signature_key=self.lookup,
        )


@pytest.fixture(params=SUPPORTED_CIPHER_SUITES, ids=lambda cs: f"suite{cs}")
def env(request: pytest.FixtureRequest) -> Env:
    return Env(request.param)


def _flip(data: bytes, index: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1
    return bytes(out)


# -- signatures ------------------------------------------------------------------


def test_signature_covers_group_context(env: Env) -> None:
    auth = env.signed(Remove(2), WireFormat.mls_public_message)
    verify_content_signature(env.suite, auth, env.keys[1][1], env.ctx)
    other_ctx = dataclasses.replace(env.ctx, epoch=8)
    with pytest.raises(SignatureError):
        verify_content_signature(env.suite, auth, env.keys[1][1], other_ctx)
    # The wire format is signed too.
    swapped = dataclasses.replace(auth, wire_format=WireFormat.mls_private_message)
    with pytest.raises(SignatureError):
        verify_content_signature(env.suite, swapped, env.keys[1][1], env.ctx)


def test_sign_content_argument_checks(env: Env) -> None:
    priv = env.keys[1][0]
    with pytest.raises(FramingError, match="confirmation_tag"):
        sign_content(env.suite, WireFormat.mls_public_message, env.framed(Commit()), priv, env.ctx)
    with pytest.raises(FramingError, match="confirmation_tag"):
        sign_content(
            env.suite, WireFormat.mls_public_message, env.framed(Remove(0)), priv, env.ctx, b"t"
        )
    with pytest.raises(FramingError, match="wire format"):
        sign_content(env.suite, WireFormat.mls_welcome, env.framed(Remove(0)), priv, env.ctx)
    external = FramedContent(b"group-id", 7, Sender.external(0), b"", Remove(0))
    with pytest.raises(FramingError, match="only members"):
        sign_content(env.suite, WireFormat.mls_private_message, external, priv, env.ctx)


# -- PublicMessage -----------------------------------------------------------------


def test_public_roundtrip_and_membership_tag(env: Env) -> None:
    msg = env.public(Remove(2), leaf=0)
    auth = env.unprotect_public(msg)
    assert auth.content.content == Remove(2)
    assert msg.membership_tag == membership_tag(env.suite, env.membership_key, auth, env.ctx)


def test_public_forged_signature(env: Env) -> None:
    msg = env.public(Remove(2))
    forged = dataclasses.replace(msg, auth=FramedContentAuthData(_flip(msg.auth.signature, 3)))
    # Recompute the tag so that only the signature is wrong (a malicious member).
    auth = forged.authenticated_content()
    forged = dataclasses.replace(
        forged, membership_tag=membership_tag(env.suite, env.membership_key, auth, env.ctx)
    )
    with pytest.raises(SignatureError):
        env.unprotect_public(forged)
    # Signed by leaf 2 but claiming to be leaf 1.
    auth2 = env.signed(Remove(2), WireFormat.mls_public_message, 1, sig_priv=env.keys[2][0])
    with pytest.raises(SignatureError):
        env.unprotect_public(protect_public(env.suite, auth2, env.ctx, env.membership_key))


def test_public_wrong_membership_tag(env: Env) -> None:
    msg = env.public(Remove(2))
    assert msg.membership_tag is not None
    with pytest.raises(MembershipTagError):
        env.unprotect_public(dataclasses.replace(msg, membership_tag=_flip(msg.membership_tag)))
    with pytest.raises(MembershipTagError):
        unprotect_public(env.suite, msg, env.ctx, bytes(32), signature_key=env.lookup)
    tampered = dataclasses.replace(
        msg, content=dataclasses.replace(msg.content, authenticated_data=b"x")
    )
    with pytest.raises(MembershipTagError):
        env.unprotect_public(tampered)
    with pytest.raises(MembershipTagError, match="lacks"):
        env.unprotect_public(dataclasses.replace(msg, membership_tag=None))
    with pytest.raises(FramingError, match="membership_key"):
        unprotect_public(env.suite, msg, env.ctx, None, signature_key=env.lookup)


def test_public_wrong_group_or_epoch(env: Env) -> None:
    msg = env.public(Remove(2))
    for ctx in (
        dataclasses.replace(env.ctx, epoch=6),
        dataclasses.replace(env.ctx, group_id=b"other"),
    ):
        with pytest.raises(EpochError):
            unprotect_public(env.suite, msg, ctx, env.membership_key, signature_key=env.lookup)
        auth = env.signed(Remove(2), WireFormat.mls_public_message)
        with pytest.raises(EpochError):
            protect_public(env.suite, auth, ctx, env.membership_key)


def test_public_application_rejected_both_ways(env: Env) -> None:
    auth = env.signed(b"hello", WireFormat.mls_public_message)
    with pytest.raises(FramingError, match="PrivateMessage"):
        protect_public(env.suite, auth, env.ctx, env.membership_key)
    tag = membership_tag(env.suite, env.membership_key, auth, env.ctx)
    msg = PublicMessage(auth.content, auth.auth, tag)
    parsed = MLSMessage.from_bytes(MLSMessage(msg).to_bytes()).body
    assert isinstance(parsed, PublicMessage)
    with pytest.raises(FramingError, match="PublicMessage"):
        env.unprotect_public(parsed)


def test_public_protect_checks(env: Env) -> None:
    priv_auth = env.signed(Remove(2), WireFormat.mls_private_message)
    with pytest.raises(FramingError, match="wire format"):
        protect_public(env.suite, priv_auth, env.ctx, env.membership_key)
    auth = env.signed(Remove(2), WireFormat.mls_public_message)
    with pytest.raises(FramingError, match="membership_key"):
        protect_public(env.suite, auth, env.ctx, None)


# -- non-member senders (section 6.1) ---------------------------------------------------


def test_external_sender(env: Env) -> None:
    ext_priv, ext_pub = env.keys[2]
    content = FramedContent(b"group-id", 7, Sender.external(0), b"", Remove(1))
    auth = sign_content(env.suite, WireFormat.mls_public_message, content, ext_priv, None)
    msg = protect_public(env.suite, auth, env.ctx, None)
    assert msg.membership_tag is None
    parsed = MLSMessage.from_bytes(MLSMessage(msg).to_bytes()).body
    assert isinstance(parsed, PublicMessage)
    got = unprotect_public(env.suite, parsed, env.ctx, None, signature_key=ext_pub)
    assert got == auth
    with pytest.raises(FramingError, match="only member senders"):
        unprotect_public(
            env.suite,
            dataclasses.replace(parsed, membership_tag=b"x"),
            env.ctx,
            None,
            signature_key=ext_pub,
        )


def _leaf(env: Env, source: LeafNodeSource) -> LeafNode:
    return LeafNode(
        b"\x01" * 32,
        env.keys[2][1],
        Credential.basic(b"joiner"),
        Capabilities(),
        source,
        parent_hash=b"" if source is LeafNodeSource.commit else None,
    )


@pytest.mark.parametrize(
    ("sender", "content", "error"),
    [
        (Sender.external(0), b"app", "only send proposals"),
        (Sender.external(0), Commit(), "only send proposals"),
        (Sender.external(0), "update", "not allowed for external"),
        (Sender.new_member_commit(), Remove(0), "only send a commit"),
        (Sender.new_member_proposal(), Remove(0), "only send an Add"),
        (Sender.new_member_proposal(), Commit(), "only send an Add"),
    ],
)
def test_sender_content_rules(sender: Sender, content: object, error: str) -> None:
    env = Env(1)
    body = content
    if content == "update":
        body = Update(_leaf(env, LeafNodeSource.update))
    assert isinstance(body, bytes | Commit | Remove | Update)
    framed = FramedContent(b"group-id", 7, sender, b"", body)
    with pytest.raises(FramingError, match=error):
        check_sender_content(framed)
    with pytest.raises(FramingError, match=error):
        sign_content(env.suite, WireFormat.mls_public_message, framed, env.keys[0][0], env.ctx)


def test_new_member_proposal_and_commit(env: Env) -> None:
    kp = create_key_package(env.suite, Credential.basic(b"joiner"), rng=_rng(b"joiner"), now=NOW)
    proposal = FramedContent(b"group-id", 7, Sender.new_member_proposal(), b"", Add(kp.key_package))
    auth = sign_content(env.suite, WireFormat.mls_public_message, proposal, kp.signature_priv, None)
    msg = protect_public(env.suite, auth, env.ctx, None)
    got = unprotect_public(env.suite, msg, env.ctx, None, signature_key=new_member_signature_key)
    assert got == auth

    path = UpdatePath(_leaf(env, LeafNodeSource.commit), ())
    commit = FramedContent(b"group-id", 7, Sender.new_member_commit(), b"", Commit((), path))
    assert new_member_signature_key(commit) == env.keys[2][1]
    auth = sign_content(
        env.suite, WireFormat.mls_public_message, commit, env.keys[2][0], env.ctx, bytes(32)
    )
    msg = protect_public(env.suite, auth, env.ctx, None)
    got = unprotect_public(env.suite, msg, env.ctx, None, signature_key=new_member_signature_key)
    assert got == auth
    # The signature covers the GroupContext for new_member_commit.
    with pytest.raises(SignatureError):
        unprotect_public(
            env.suite,
            msg,
            dataclasses.replace(env.ctx, tree_hash=bytes(32)),
            None,
            signature_key=new_member_signature_key,
        )
    with pytest.raises(FramingError, match="UpdatePath"):
        new_member_signature_key(dataclasses.replace(commit, content=Commit()))
    with pytest.raises(FramingError, match="no in-message signature key"):
        new_member_signature_key(env.framed(Remove(0)))


# -- PrivateMessage ------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"hello", Remove(0), Commit()], ids=["app", "prop", "commit"])
def test_private_roundtrip(env: Env, content: Content) -> None:
    sender, receiver = env.tree(), env.tree()
    msg = env.private(sender, content, leaf=2)
    parsed = MLSMessage.from_bytes(MLSMessage(msg).to_bytes()).body
    assert isinstance(parsed, PrivateMessage)
    auth = env.unprotect_private(receiver, parsed)
    assert auth.content == env.framed(content, 2)
    assert auth.wire_format is WireFormat.mls_private_message
    kind = RatchetType.APPLICATION if isinstance(content, bytes) else RatchetType.HANDSHAKE
    assert sender.next_generation(2, kind) == 1


def test_private_authenticated_data_is_bound(env: Env) -> None:
    auth = sign_content(
        env.suite,
        WireFormat.mls_private_message,
        env.framed(b"x", 1, aad=b"meta"),
        env.keys[1][0],
        env.ctx,
    )
    msg = protect_private(env.suite, auth, env.ctx, env.tree(), env.sender_data_secret, rng=env.rng)
    assert msg.authenticated_data == b"meta"
    assert env.unprotect_private(env.tree(), msg).content.authenticated_data == b"meta"
    with pytest.raises(CryptoError, match="content"):
        env.unprotect_private(env.tree(), dataclasses.replace(msg, authenticated_data=b"meta2"))


def test_private_padding(env: Env) -> None:
    for block in (1, 16, 100):
        msg = env.private(env.tree(), b"hello world", padding=pad_to_multiple(block))
        plaintext_len = len(msg.ciphertext) - 16  # both AEADs have a 16-byte tag
        assert plaintext_len % block == 0
        assert env.unprotect_private(env.tree(), msg).content.content == b"hello world"
    with pytest.raises(ValueError):
        pad_to_multiple(0)
    with pytest.raises(ValueError, match="negative"):
        env.private(env.tree(), b"x", padding=lambda n: -1)


def test_private_is_deterministic_given_rng(env: Env) -> None:
    def make() -> PrivateMessage:
        auth = env.signed(b"same", WireFormat.mls_private_message)
        return protect_private(
            env.suite, auth, env.ctx, env.tree(), env.sender_data_secret, rng=_rng(b"fixed")
        )

    assert make() == make()


def test_private_tampered_ciphertext_does_not_burn_key(env: Env) -> None:
    receiver = env.tree()
    msg = env.private(env.tree(), b"secret")
    with pytest.raises(CryptoError):  # sender data key is sampled from the ciphertext
        env.unprotect_private(receiver, dataclasses.replace(msg, ciphertext=_flip(msg.ciphertext)))
    tail = len(msg.ciphertext) - 1  # beyond the sample: sender data decrypts, content fails
    with pytest.raises(CryptoError, match="content"):
        env.unprotect_private(
            receiver, dataclasses.replace(msg, ciphertext=_flip(msg.ciphertext, tail))
        )
    with pytest.raises(CryptoError, match="sender data"):
        env.unprotect_private(
            receiver,
            dataclasses.replace(msg, encrypted_sender_data=_flip(msg.encrypted_sender_data)),
        )
    with pytest.raises(CryptoError):
        env.unprotect_private(receiver, dataclasses.replace(msg, content_type=ContentType.proposal))
    assert env.unprotect_private(receiver, msg).content.content == b"secret"


def test_private_replay_rejected(env: Env) -> None:
    receiver = env.tree()
    msg = env.private(env.tree(), b"once")
    env.unprotect_private(receiver, msg)
    with pytest.raises(GenerationError):
        env.unprotect_private(receiver, msg)


def test_private_out_of_order(env: Env) -> None:
    sender, receiver = env.tree(), env.tree()
    msgs = [env.private(sender, b"m%d" % i) for i in range(3)]
    for i in (2, 0, 1):
        assert env.unprotect_private(receiver, msgs[i]).content.content == b"m%d" % i
    for m in msgs:
        with pytest.raises(GenerationError):
            env.unprotect_private(receiver, m)


def test_private_forged_signature_keeps_key(env: Env) -> None:
    receiver = env.tree()
    forged = env.private(env.tree(), b"forged", sig_priv=env.keys[2][0])
    with pytest.raises(SignatureError):
        env.unprotect_private(receiver, forged)
    # The generation is still retained (not consumed by a failed verification).
    assert receiver.peek_key(1, RatchetType.APPLICATION, 0)


def test_private_wrong_epoch_or_group(env: Env) -> None:
    msg = env.private(env.tree(), b"x")
    for ctx in (
        dataclasses.replace(env.ctx, epoch=8),
        dataclasses.replace(env.ctx, group_id=b"nope"),
    ):
        with pytest.raises(EpochError):
            unprotect_private(
                env.suite,
                msg,
                ctx,
                env.tree(),
                env.sender_data_secret,
                is_member=lambda _: True,
                signature_key=env.lookup,
            )
        auth = env.signed(b"x", WireFormat.mls_private_message)
        with pytest.raises(EpochError):
            protect_private(env.suite, auth, ctx, env.tree(), env.sender_data_secret, rng=env.rng)


def test_private_sender_not_member(env: Env) -> None:
    receiver = env.tree()
    msg = env.private(env.tree(), b"x", leaf=2)
    with pytest.raises(FramingError, match="leaf 2 is not a member"):
        unprotect_private(
            env.suite,
            msg,
            env.ctx,
            receiver,
            env.sender_data_secret,
            is_member=lambda leaf: leaf != 2,
            signature_key=env.lookup,
        )
    assert env.unprotect_private(receiver, msg).content.sender == Sender.member(2)


def test_private_protect_checks(env: Env) -> None:
    pub_auth = env.signed(b"x", WireFormat.mls_public_message)
    with pytest.raises(FramingError, match="wire format"):
        protect_private(
            env.suite, pub_auth, env.ctx, env.tree(), env.sender_data_secret, rng=env.rng
        )
    external = AuthenticatedContent(
        WireFormat.mls_private_message,
        FramedContent(b"group-id", 7, Sender.external(0), b"", Remove(0)),
        FramedContentAuthData(b"sig"),
    )
    with pytest.raises(FramingError, match="only members"):
        protect_private(
            env.suite, external, env.ctx, env.tree(), env.sender_data_secret, rng=env.rng
        )


def _encrypt_raw(
    env: Env, plaintext: bytes, leaf: int, content_type: ContentType
) -> PrivateMessage:
    """A PrivateMessage around an arbitrary plaintext (for malformed-content tests)."""
    gen, key, nonce = env.tree().next_send_key(leaf, RatchetType.APPLICATION)
    guard = b"\x01\x02\x03\x04"
    aad = PrivateContentAAD(env.ctx.group_id, env.ctx.epoch, content_type, b"").to_bytes()
    ct = env.suite.aead_encrypt(key, apply_reuse_guard(nonce, guard), aad, plaintext)
    sd_key, sd_nonce = sender_data_key_nonce(env.suite, env.sender_data_secret, ct)
    sd_aad = SenderDataAAD(env.ctx.group_id, env.ctx.epoch, content_type).to_bytes()
    esd = env.suite.aead_encrypt(sd_key, sd_nonce, sd_aad, SenderData(leaf, gen, guard).to_bytes())
    return PrivateMessage(env.ctx.group_id, env.ctx.epoch, content_type, b"", esd, ct)


def test_private_nonzero_padding_rejected(env: Env) -> None:
    auth = env.signed(b"pad", WireFormat.mls_private_message)
    body = PrivateMessageContent(b"pad", auth.auth).to_bytes()
    receiver = env.tree()
    ok = _encrypt_raw(env, body + bytes(8), 1, ContentType.application)
    bad = _encrypt_raw(env, body + bytes(7) + b"\x01", 1, ContentType.application)
    with pytest.raises(DecodeError, match="padding"):
        env.unprotect_private(receiver, bad)
    # The failed parse did not consume generation 0: the well-formed message still opens.
    assert env.unprotect_private(receiver, ok).content.content == b"pad"


def test_private_malformed_content_and_sender_data(env: Env) -> None:
    with pytest.raises(DecodeError, match="PrivateMessageContent"):
        env.unprotect_private(env.tree(), _encrypt_raw(env, b"\x05ab", 1, ContentType.application))
    # Sender data of the wrong length.
    msg = env.private(env.tree(), b"x")
    sd_key, sd_nonce = sender_data_key_nonce(env.suite, env.sender_data_secret, msg.ciphertext)
    sd_aad = msg.sender_data_aad().to_bytes()
    esd = env.suite.aead_encrypt(sd_key, sd_nonce, sd_aad, b"\x00" * 11)
    with pytest.raises(DecodeError, match="SenderData"):
        env.unprotect_private(env.tree(), dataclasses.replace(msg, encrypted_sender_data=esd))


def test_private_generation_too_far_ahead(env: Env) -> None:
    sender = env.tree()
    for _ in range(5):
        sender.next_send_key(1, RatchetType.APPLICATION)
    msg = env.private(sender, b"late")
    receiver = SecretTree(env.suite, env.encryption_secret, N_LEAVES, max_forward_distance=2)
    with pytest.raises(GenerationError):
        env.unprotect_private(receiver, msg)


def test_open_private_defers_consumption(env: Env) -> None:
    receiver = env.tree()
    msg = env.private(env.tree(), Remove(0))
    opened = open_private(
        env.suite,
        msg,
        env.ctx,
        receiver,
        env.sender_data_secret,
        is_member=lambda leaf: leaf < 3,
        signature_key=env.lookup,
    )
    assert opened.content.content.content == Remove(0)
    assert opened.generation == 0
    # Not consumed yet: the same message opens again (e.g. after the group rejected it).
    assert env.unprotect_private(receiver, msg) == opened.content
    with pytest.raises(GenerationError):
        opened.consume()
    with pytest.raises(GenerationError):
        env.unprotect_private(receiver, msg)


def test_padding_block_as_int(env: Env) -> None:
    msg = env.private(env.tree(), b"abc", padding=64)
    assert (len(msg.ciphertext) - 16) % 64 == 0
    assert env.unprotect_private(env.tree(), msg).content.content == b"abc"
