"""Unit and property tests of the MLS wire structures (clave.mls.structs).

Besides syntax, the to-be-signed / MAC'd / hashed byte strings are checked
against the signatures, membership tags and hashes in the RFC 9420 test
vectors (the crypto lives in this test only, never in the structs module).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clave.mls.codec import Reader, Writer
from clave.mls.errors import DecodeError, MLSError
from clave.mls.structs import (
    GREASE_VALUES,
    Add,
    ApplicationId,
    AuthenticatedContent,
    Capabilities,
    Commit,
    ConfirmedTranscriptHashInput,
    ContentType,
    Credential,
    CredentialType,
    EncryptedGroupSecrets,
    Extension,
    ExtensionType,
    ExternalInit,
    ExternalPub,
    ExternalSender,
    ExternalSenders,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    GroupContextExtensions,
    GroupInfo,
    GroupSecrets,
    HPKECiphertext,
    InterimTranscriptHashInput,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    MLSMessage,
    Node,
    NodeType,
    ParentHashInput,
    ParentNode,
    PreSharedKey,
    PreSharedKeyID,
    PrivateContentAAD,
    PrivateMessage,
    PrivateMessageContent,
    Proposal,
    ProposalOrRef,
    ProposalOrRefType,
    ProposalType,
    ProtocolVersion,
    PSKLabel,
    PSKType,
    PublicMessage,
    RatchetTree,
    ReInit,
    Remove,
    RequiredCapabilities,
    ResumptionPSKUsage,
    Sender,
    SenderData,
    SenderDataAAD,
    SenderType,
    Update,
    UpdatePath,
    UpdatePathNode,
    Welcome,
    WireFormat,
    authenticated_content_tbm,
    content_type_of,
    find_extension,
    framed_content_tbs,
    leaf_tree_hash_input,
    parent_tree_hash_input,
    proposal_from_bytes,
    proposal_to_bytes,
)

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "mls"


@cache
def load(name: str) -> list[dict[str, Any]]:
    path = VECTORS / name
    if not path.is_file():
        pytest.fail(f"test vector file missing: {path}")
    data = json.loads(path.read_text())
    assert isinstance(data, list) and data
    return data


# ---------------------------------------------------------------------------
# Fixtures built by hand
# ---------------------------------------------------------------------------

CAPS = Capabilities(
    versions=(1,),
    cipher_suites=(1, 0x0A0A),
    extensions=(0x1A1A,),
    proposals=(0x2A2A,),
    credentials=(1, 0x3A3A),
)


def make_leaf(
    source: LeafNodeSource = LeafNodeSource.key_package, signature: bytes = b"sig"
) -> LeafNode:
    return LeafNode(
        encryption_key=b"enc",
        signature_key=b"sk",
        credential=Credential.basic(b"alice"),
        capabilities=CAPS,
        leaf_node_source=source,
        lifetime=Lifetime(1, 2) if source == LeafNodeSource.key_package else None,
        parent_hash=b"ph" if source == LeafNodeSource.commit else None,
        extensions=(Extension(0x1A1A, b"grease"), ApplicationId(b"app").to_extension()),
        signature=signature,
    )


def make_key_package() -> KeyPackage:
    return KeyPackage(ProtocolVersion.mls10, 1, b"init", make_leaf(), (), b"kpsig")


def make_context() -> GroupContext:
    return GroupContext(ProtocolVersion.mls10, 1, b"gid", 7, b"th", b"cth", ())


def make_commit() -> Commit:
    return Commit(
        (
            ProposalOrRef.by_value(Remove(3)),
            ProposalOrRef.by_reference(b"ref"),
        ),
        UpdatePath(
            make_leaf(LeafNodeSource.commit),
            (UpdatePathNode(b"pk", (HPKECiphertext(b"kem", b"ct"),)),),
        ),
    )


# ---------------------------------------------------------------------------
# Enumerations, extensibility, closed enums
# ---------------------------------------------------------------------------


def test_enum_values() -> None:
    assert int(ProtocolVersion.mls10) == 1
    assert [int(t) for t in WireFormat] == [1, 2, 3, 4, 5]
    assert [int(t) for t in ContentType] == [1, 2, 3]
    assert [int(t) for t in SenderType] == [1, 2, 3, 4]
    assert [int(t) for t in ProposalType] == [1, 2, 3, 4, 5, 6, 7]
    assert [int(t) for t in ExtensionType] == [1, 2, 3, 4, 5]
    assert [int(t) for t in CredentialType] == [1, 2]
    assert [int(t) for t in NodeType] == [1, 2]
    assert [int(t) for t in LeafNodeSource] == [1, 2, 3]
    assert [int(t) for t in PSKType] == [1, 2]
    assert [int(t) for t in ResumptionPSKUsage] == [1, 2, 3]
    assert [int(t) for t in ProposalOrRefType] == [1, 2]
    assert sorted(GREASE_VALUES)[:2] == [0x0A0A, 0x1A1A] and max(GREASE_VALUES) == 0xEAEA


def test_unknown_extension_kept_opaque() -> None:
    ext = Extension.from_bytes(bytes.fromhex("fafa03616263"))
    assert ext == Extension(0xFAFA, b"abc")
    assert ext.to_bytes() == bytes.fromhex("fafa03616263")
    known = Extension.from_bytes(bytes.fromhex("000200"))
    assert known.extension_type is ExtensionType.ratchet_tree


def test_capabilities_keep_grease_and_unknown_values() -> None:
    decoded = Capabilities.from_bytes(CAPS.to_bytes())
    assert decoded == CAPS
    assert decoded.cipher_suites == (1, 0x0A0A)
    with pytest.raises(DecodeError, match="multiple of 2"):
        Capabilities.from_bytes(bytes.fromhex("01000000000000"))


@pytest.mark.parametrize(
    ("decoder", "data", "field"),
    [
        (Sender.from_bytes, b"\x00", "Sender.sender_type"),
        (Sender.from_bytes, b"\x05", "Sender.sender_type"),
        (Node.from_bytes, b"\x03", "Node.node_type"),
        (ProposalOrRef.from_bytes, b"\x03", "ProposalOrRef.type"),
        (PreSharedKeyID.from_bytes, b"\x00", "PreSharedKeyID.psktype"),
        (PreSharedKeyID.from_bytes, b"\x02\x04", "PreSharedKeyID.usage"),
        (SenderDataAAD.from_bytes, b"\x00" + bytes(8) + b"\x04", "SenderDataAAD.content_type"),
        (MLSMessage.from_bytes, b"\x00\x02\x00\x01", "MLSMessage.version"),
        (MLSMessage.from_bytes, b"\x00\x01\x00\x06", "MLSMessage.wire_format"),
        (MLSMessage.from_bytes, b"\x00\x01\xfa\xfa", "MLSMessage.wire_format"),
        (GroupContext.from_bytes, b"\x00\x00", "GroupContext.version"),
        (KeyPackage.from_bytes, b"\x00\x02", "KeyPackage.version"),
        (Credential.from_bytes, b"\x00\x03\x00", "Credential.credential_type"),
        (Credential.from_bytes, b"\x0a\x0a\x00", "Credential.credential_type"),
        (proposal_from_bytes, b"\x00\x08", "Proposal.proposal_type"),
        (proposal_from_bytes, b"\x0a\x0a", "Proposal.proposal_type"),
        (AuthenticatedContent.from_bytes, b"\x00\x03", "AuthenticatedContent.wire_format"),
    ],
)
def test_closed_values_rejected_naming_field(
    decoder: Callable[[bytes], object], data: bytes, field: str
) -> None:
    with pytest.raises(DecodeError, match=field.replace(".", r"\.")):
        decoder(data)


def test_framed_content_unknown_content_type() -> None:
    fc = FramedContent(b"g", 1, Sender.member(0), b"", b"data")
    data = bytearray(fc.to_bytes())
    data[1 + 1 + 8 + 5 + 1] = 9  # content_type octet
    with pytest.raises(DecodeError, match=r"FramedContent\.content_type"):
        FramedContent.from_bytes(bytes(data))


def test_reinit_accepts_future_version() -> None:
    p = ReInit(b"g", 0x0002, 1, ())
    assert ReInit.from_bytes(p.to_bytes()) == p
    assert ReInit.from_bytes(ReInit(b"g", 1, 1).to_bytes()).version is ProtocolVersion.mls10


# ---------------------------------------------------------------------------
# Individual structures
# ---------------------------------------------------------------------------


def test_credentials() -> None:
    basic = Credential.basic(b"\xff\xfe not utf-8")
    assert basic.to_bytes() == b"\x00\x01\x0c" + b"\xff\xfe not utf-8"
    assert Credential.from_bytes(basic.to_bytes()) == basic
    x509 = Credential.x509([b"cert1", b"c2"])
    assert x509.to_bytes() == b"\x00\x02\x09\x05cert1\x02c2"
    assert Credential.from_bytes(x509.to_bytes()) == x509
    with pytest.raises(ValueError):
        Credential(CredentialType.basic, b"x", (b"c",)).to_bytes()
    with pytest.raises(ValueError):
        Credential(CredentialType.x509, b"x").to_bytes()
    with pytest.raises(ValueError):
        Credential(0x0A0A, b"x").to_bytes()  # type: ignore[arg-type]


def test_leaf_node_sources() -> None:
    for source in LeafNodeSource:
        leaf = make_leaf(source)
        assert LeafNode.from_bytes(leaf.to_bytes()) == leaf
    bad = dataclasses.replace(make_leaf(LeafNodeSource.update), lifetime=Lifetime(0, 1))
    with pytest.raises(ValueError):
        bad.to_bytes()
    with pytest.raises(ValueError):
        dataclasses.replace(make_leaf(), lifetime=None).to_bytes()
    with pytest.raises(ValueError):
        dataclasses.replace(make_leaf(LeafNodeSource.commit), parent_hash=None).to_bytes()


def test_leaf_node_tbs() -> None:
    kp_leaf = make_leaf(signature=b"S" * 5)
    encoded = kp_leaf.to_bytes()
    assert kp_leaf.tbs() == encoded[: -len(b"\x05SSSSS")]
    assert kp_leaf.tbs(b"ignored", 3) == kp_leaf.tbs()
    for source in (LeafNodeSource.update, LeafNodeSource.commit):
        leaf = make_leaf(source, signature=b"")
        tbs = leaf.tbs(b"group", 5)
        assert tbs == leaf.to_bytes()[:-1] + b"\x05group" + (5).to_bytes(4, "big")
        with pytest.raises(ValueError):
            leaf.tbs()
        with pytest.raises(ValueError):
            leaf.tbs(b"group")


def test_key_package_and_group_info_tbs() -> None:
    kp = make_key_package()
    assert kp.tbs() + b"\x05kpsig" == kp.to_bytes()
    gi = GroupInfo(make_context(), (ExternalPub(b"xpub").to_extension(),), b"tag", 9, b"gisig")
    assert gi.tbs() + b"\x05gisig" == gi.to_bytes()
    assert gi.tbs().endswith(b"\x03tag" + (9).to_bytes(4, "big"))
    assert GroupInfo.from_bytes(gi.to_bytes()) == gi


def test_parent_node_and_ratchet_tree() -> None:
    parent = ParentNode(b"pk", b"ph", (1, 2, 70000))
    assert ParentNode.from_bytes(parent.to_bytes()) == parent
    with pytest.raises(DecodeError, match="multiple of 4"):
        ParentNode.from_bytes(b"\x00\x00\x03\x00\x00\x01")
    leaf = Node(make_leaf())
    assert leaf.node_type is NodeType.leaf and leaf.leaf_node is not None
    assert Node(parent).node_type is NodeType.parent and Node(parent).parent_node == parent
    tree = RatchetTree.from_nodes([leaf, Node(parent), leaf, None, None, None, None])
    assert len(tree.nodes) == 3
    assert RatchetTree.from_bytes(tree.to_bytes()) == tree
    ext = tree.to_extension()
    assert ext.extension_type == ExtensionType.ratchet_tree
    assert RatchetTree.from_extension(ext) == tree
    with pytest.raises(ValueError):
        RatchetTree((leaf, None)).to_bytes()
    with pytest.raises(ValueError):
        RatchetTree(()).to_bytes()


def _raw_tree(entries: list[Node | None]) -> bytes:
    inner = Writer()
    for node in entries:
        inner.optional(node, lambda w, n: n.encode(w))
    return Writer().opaque(inner.finish()).finish()


def test_ratchet_tree_decode_checks() -> None:
    leaf = Node(make_leaf())
    parent = Node(ParentNode(b"pk", b"", ()))
    with pytest.raises(DecodeError, match="empty"):
        RatchetTree.from_bytes(_raw_tree([]))
    with pytest.raises(DecodeError, match="blank"):
        RatchetTree.from_bytes(_raw_tree([leaf, None]))
    with pytest.raises(DecodeError, match="node 1 must be a parent"):
        RatchetTree.from_bytes(_raw_tree([leaf, leaf, leaf]))
    with pytest.raises(DecodeError, match="node 0 must be a leaf"):
        RatchetTree.from_bytes(_raw_tree([parent]))
    with pytest.raises(DecodeError, match="presence"):
        RatchetTree.from_bytes(b"\x01\x02")
    assert RatchetTree.from_bytes(_raw_tree([leaf, None, leaf])).nodes[1] is None


def test_extension_contents() -> None:
    sender = ExternalSender(b"spk", Credential.basic(b"ds"))
    contents = [
        ApplicationId(b"id"),
        ExternalPub(b"xpub"),
        ExternalSenders((sender, sender)),
        RequiredCapabilities((0xFAFA,), (8,), (1, 2)),
    ]
    for content in contents:
        ext = content.to_extension()
        assert ext.extension_type == type(content).extension_type
        assert type(content).from_extension(ext) == content
    assert ApplicationId(b"id").to_extension().extension_data == b"\x02id"
    with pytest.raises(ValueError):
        ExternalPub.from_extension(ApplicationId(b"id").to_extension())
    with pytest.raises(DecodeError):
        ExternalPub.from_extension(Extension(ExtensionType.external_pub, b"\x05ab"))
    exts = [Extension(0x0A0A, b""), ExternalPub(b"k").to_extension()]
    found = find_extension(exts, ExtensionType.external_pub)
    assert found is not None and ExternalPub.from_extension(found).external_pub == b"k"
    assert find_extension(exts, ExtensionType.ratchet_tree) is None


def test_psk_structures() -> None:
    ext = PreSharedKeyID.external(b"id", b"nonce")
    res = PreSharedKeyID.resumption(ResumptionPSKUsage.branch, b"g", 5, b"n")
    assert ext.to_bytes() == b"\x01\x02id\x05nonce"
    assert res.to_bytes() == b"\x02\x03\x01g" + (5).to_bytes(8, "big") + b"\x01n"
    for psk in (ext, res):
        assert PreSharedKeyID.from_bytes(psk.to_bytes()) == psk
    label = PSKLabel(res, 1, 3)
    assert label.to_bytes() == res.to_bytes() + b"\x00\x01\x00\x03"
    assert PSKLabel.from_bytes(label.to_bytes()) == label
    with pytest.raises(ValueError):
        PreSharedKeyID(PSKType.resumption, b"n").to_bytes()


def test_proposals_tagged_and_untagged() -> None:
    proposals: list[Proposal] = [
        Add(make_key_package()),
        Update(make_leaf(LeafNodeSource.update)),
        Remove(2),
        PreSharedKey(PreSharedKeyID.external(b"id", b"n")),
        ReInit(b"g", 1, 2, ()),
        ExternalInit(b"kem"),
        GroupContextExtensions((RequiredCapabilities().to_extension(),)),
    ]
    for i, p in enumerate(proposals, start=1):
        assert int(p.proposal_type) == i
        tagged = proposal_to_bytes(p)
        assert tagged == i.to_bytes(2, "big") + p.to_bytes()
        assert proposal_from_bytes(tagged) == p
        assert type(p).from_bytes(p.to_bytes()) == p
    assert Remove(2).to_bytes() == b"\x00\x00\x00\x02"


def test_proposal_or_ref_and_commit() -> None:
    commit = make_commit()
    assert commit.proposals[0].type is ProposalOrRefType.proposal
    assert commit.proposals[1].type is ProposalOrRefType.reference
    assert Commit.from_bytes(commit.to_bytes()) == commit
    assert Commit().to_bytes() == b"\x00\x00"
    with pytest.raises(ValueError):
        ProposalOrRef().to_bytes()
    with pytest.raises(ValueError):
        ProposalOrRef(Remove(1), b"ref").to_bytes()


def test_sender() -> None:
    assert Sender.member(5).to_bytes() == b"\x01\x00\x00\x00\x05"
    assert Sender.external(1).to_bytes() == b"\x02\x00\x00\x00\x01"
    assert Sender.new_member_proposal().to_bytes() == b"\x03"
    assert Sender.new_member_commit().to_bytes() == b"\x04"
    for s in (Sender.member(5), Sender.external(1), Sender.new_member_commit()):
        assert Sender.from_bytes(s.to_bytes()) == s
    with pytest.raises(ValueError):
        Sender(SenderType.member).to_bytes()
    with pytest.raises(ValueError):
        Sender(SenderType.new_member_commit, 1).to_bytes()


def test_auth_data_depends_on_content_type() -> None:
    auth = FramedContentAuthData(b"sig", b"tag")
    data = auth.to_bytes()
    assert FramedContentAuthData.from_bytes(data, ContentType.commit) == auth
    with pytest.raises(DecodeError, match="trailing"):
        FramedContentAuthData.from_bytes(data, ContentType.proposal)
    plain = FramedContentAuthData(b"sig")
    assert FramedContentAuthData.from_bytes(plain.to_bytes(), ContentType.application) == plain
    with pytest.raises(DecodeError):
        FramedContentAuthData.from_bytes(plain.to_bytes(), ContentType.commit)


def test_public_message_membership_tag_presence() -> None:
    for sender in (
        Sender.member(0),
        Sender.external(0),
        Sender.new_member_proposal(),
        Sender.new_member_commit(),
    ):
        content: bytes | Proposal | Commit
        content = make_commit() if sender.sender_type is SenderType.new_member_commit else Remove(1)
        fc = FramedContent(b"g", 3, sender, b"aad", content)
        tag = b"tag" if isinstance(content, Commit) else None
        auth = FramedContentAuthData(b"sig", tag)
        membership = b"mt" if sender.sender_type is SenderType.member else None
        pm = PublicMessage(fc, auth, membership)
        assert PublicMessage.from_bytes(pm.to_bytes()) == pm
        assert MLSMessage.from_bytes(MLSMessage(pm).to_bytes()).body == pm
        with pytest.raises(ValueError):
            PublicMessage(fc, auth, None if membership else b"mt").to_bytes()
    fc = FramedContent(b"g", 3, Sender.member(0), b"", make_commit())
    with pytest.raises(ValueError, match="confirmation_tag"):
        PublicMessage(fc, FramedContentAuthData(b"sig"), b"mt").to_bytes()


def test_framed_content_tbs_and_tbm() -> None:
    ctx = make_context()
    member = FramedContent(b"gid", 7, Sender.member(1), b"", b"hello")
    tbs = framed_content_tbs(WireFormat.mls_private_message, member, ctx)
    assert tbs == b"\x00\x01\x00\x02" + member.to_bytes() + ctx.to_bytes()
    assert framed_content_tbs(WireFormat.mls_private_message, member, ctx.to_bytes()) == tbs
    with pytest.raises(ValueError):
        framed_content_tbs(WireFormat.mls_public_message, member, None)
    external = FramedContent(b"gid", 7, Sender.external(0), b"", Remove(0))
    tbs_ext = framed_content_tbs(WireFormat.mls_public_message, external, None)
    assert tbs_ext == b"\x00\x01\x00\x01" + external.to_bytes()
    assert framed_content_tbs(WireFormat.mls_public_message, external, ctx) == tbs_ext
    nm_proposal = FramedContent(
        b"gid", 7, Sender.new_member_proposal(), b"", Add(make_key_package())
    )
    assert framed_content_tbs(WireFormat.mls_public_message, nm_proposal, ctx) == (
        b"\x00\x01\x00\x01" + nm_proposal.to_bytes()
    )
    commit_nm = FramedContent(b"gid", 7, Sender.new_member_commit(), b"", make_commit())
    assert framed_content_tbs(WireFormat.mls_public_message, commit_nm, ctx).endswith(
        ctx.to_bytes()
    )
    auth = FramedContentAuthData(b"sig")
    pm = PublicMessage(member, auth, b"mt")
    expected = framed_content_tbs(WireFormat.mls_public_message, member, ctx) + auth.to_bytes()
    assert (
        pm.tbm(ctx)
        == expected
        == authenticated_content_tbm(
            framed_content_tbs(WireFormat.mls_public_message, member, ctx), auth
        )
    )
    ac = pm.authenticated_content()
    assert ac.wire_format is WireFormat.mls_public_message
    assert ac.tbs(ctx) == framed_content_tbs(WireFormat.mls_public_message, member, ctx)


def test_transcript_inputs() -> None:
    fc = FramedContent(b"g", 1, Sender.member(0), b"", make_commit())
    ac = AuthenticatedContent(
        WireFormat.mls_public_message, fc, FramedContentAuthData(b"sig", b"tag")
    )
    cthi = ac.confirmed_transcript_hash_input()
    assert cthi.to_bytes() == b"\x00\x01" + fc.to_bytes() + b"\x03sig"
    assert ConfirmedTranscriptHashInput.from_bytes(cthi.to_bytes()) == cthi
    ithi = ac.interim_transcript_hash_input()
    assert ithi.to_bytes() == b"\x03tag"
    assert InterimTranscriptHashInput.from_bytes(b"\x03tag") == ithi
    assert ac.to_bytes() == b"\x00\x01" + fc.to_bytes() + b"\x03sig\x03tag"
    app = FramedContent(b"g", 1, Sender.member(0), b"", b"x")
    with pytest.raises(ValueError):
        ConfirmedTranscriptHashInput(WireFormat.mls_public_message, app, b"s").to_bytes()
    raw = b"\x00\x01" + app.to_bytes() + b"\x00"
    with pytest.raises(DecodeError, match="not a commit"):
        ConfirmedTranscriptHashInput.from_bytes(raw)
    with pytest.raises(DecodeError, match="does not frame content"):
        AuthenticatedContent.from_bytes(b"\x00\x03" + app.to_bytes() + b"\x00")


def test_private_message_and_aads() -> None:
    pm = PrivateMessage(b"gid", 9, ContentType.commit, b"aad", b"esd", b"ct")
    assert PrivateMessage.from_bytes(pm.to_bytes()) == pm
    assert pm.content_aad() == PrivateContentAAD(b"gid", 9, ContentType.commit, b"aad")
    assert pm.content_aad().to_bytes() == pm.to_bytes()[: 4 + 8 + 1 + 4]
    assert pm.sender_data_aad() == SenderDataAAD(b"gid", 9, ContentType.commit)
    assert pm.sender_data_aad().to_bytes() == b"\x03gid" + (9).to_bytes(8, "big") + b"\x03"
    for aad in (pm.content_aad(), pm.sender_data_aad()):
        assert type(aad).from_bytes(aad.to_bytes()) == aad
    sd = SenderData(3, 42, b"\x01\x02\x03\x04")
    assert sd.to_bytes() == b"\x00\x00\x00\x03\x00\x00\x00\x2a\x01\x02\x03\x04"
    assert SenderData.from_bytes(sd.to_bytes()) == sd
    with pytest.raises(ValueError):
        SenderData(0, 0, b"abc").to_bytes()


def test_private_message_content_padding() -> None:
    pmc = PrivateMessageContent(b"hello", FramedContentAuthData(b"sig"), padding=10)
    data = pmc.to_bytes()
    assert data == b"\x05hello\x03sig" + bytes(10)
    assert PrivateMessageContent.from_bytes(data, ContentType.application) == pmc
    unpadded = PrivateMessageContent.from_bytes(data[:-10], ContentType.application)
    assert unpadded.padding == 0
    for pos in (-1, -10):
        bad = bytearray(data)
        bad[pos] = 1
        with pytest.raises(DecodeError, match="padding"):
            PrivateMessageContent.from_bytes(bytes(bad), ContentType.application)
    commit = PrivateMessageContent(make_commit(), FramedContentAuthData(b"s", b"t"), 3)
    assert PrivateMessageContent.from_bytes(commit.to_bytes(), ContentType.commit) == commit
    assert commit.content_type is ContentType.commit
    with pytest.raises(DecodeError):
        PrivateMessageContent.from_bytes(commit.to_bytes(), ContentType.proposal)
    with pytest.raises(ValueError):
        PrivateMessageContent(b"x", FramedContentAuthData(b"s", b"t")).to_bytes()


def test_welcome_and_group_secrets() -> None:
    egs = EncryptedGroupSecrets(b"ref1", HPKECiphertext(b"kem", b"ct"))
    welcome = Welcome(1, (egs, EncryptedGroupSecrets(b"ref2", HPKECiphertext(b"", b""))), b"egi")
    assert Welcome.from_bytes(welcome.to_bytes()) == welcome
    assert welcome.secrets_for(b"ref1") == egs and welcome.secrets_for(b"nope") is None
    msg = MLSMessage(welcome)
    assert msg.wire_format is WireFormat.mls_welcome and msg.version is ProtocolVersion.mls10
    assert msg.to_bytes()[:4] == b"\x00\x01\x00\x03"
    gs = GroupSecrets(b"js", b"ps", (PreSharedKeyID.external(b"i", b"n"),))
    assert gs.to_bytes().startswith(b"\x02js\x01\x02ps")
    assert GroupSecrets.from_bytes(gs.to_bytes()) == gs
    none = GroupSecrets(b"js", None)
    assert none.to_bytes() == b"\x02js\x00\x00"
    with pytest.raises(DecodeError, match="presence"):
        GroupSecrets.from_bytes(b"\x02js\x02\x00")


def test_tree_hash_inputs() -> None:
    leaf = make_leaf()
    assert leaf_tree_hash_input(3, None) == b"\x01\x00\x00\x00\x03\x00"
    assert leaf_tree_hash_input(3, leaf) == b"\x01\x00\x00\x00\x03\x01" + leaf.to_bytes()
    parent = ParentNode(b"pk", b"", (1,))
    assert parent_tree_hash_input(None, b"L", b"R") == b"\x02\x00\x01L\x01R"
    assert parent_tree_hash_input(parent, b"", b"") == b"\x02\x01" + parent.to_bytes() + b"\0\0"
    phi = ParentHashInput(b"pk", b"ph", b"sib")
    assert phi.to_bytes() == b"\x02pk\x02ph\x03sib"
    assert ParentHashInput.from_bytes(phi.to_bytes()) == phi


def test_objects_are_immutable_and_hashable() -> None:
    kp = make_key_package()
    with pytest.raises(dataclasses.FrozenInstanceError):
        kp.signature = b"x"  # type: ignore[misc]
    assert hash(MLSMessage(kp)) == hash(MLSMessage.from_bytes(MLSMessage(kp).to_bytes()))
    assert not hasattr(kp, "__dict__")


def test_encode_range_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        Capabilities(versions=(70000,)).to_bytes()
    with pytest.raises(ValueError):
        ParentNode(b"", b"", (-1,)).to_bytes()


# ---------------------------------------------------------------------------
# Checks of the signed / MAC'd / hashed byte strings against the vectors
# ---------------------------------------------------------------------------

HASHES = {1: "sha256", 2: "sha256", 3: "sha256", 4: "sha512", 5: "sha512", 6: "sha512"}
HASHES[7] = "sha384"
ECDSA: dict[int, tuple[ec.EllipticCurve, hashes.HashAlgorithm]] = {
    2: (ec.SECP256R1(), hashes.SHA256()),
    5: (ec.SECP521R1(), hashes.SHA512()),
    7: (ec.SECP384R1(), hashes.SHA384()),
}


def verify_with_label(
    suite: int, public_key: bytes, label: str, content: bytes, sig: bytes
) -> bool:
    """VerifyWithLabel of RFC 9420 section 5.1.2 (test-only crypto)."""
    message = Writer().opaque(b"MLS 1.0 " + label.encode()).opaque(content).finish()
    try:
        if suite in (1, 3):
            Ed25519PublicKey.from_public_bytes(public_key).verify(sig, message)
        elif suite in (4, 6):
            Ed448PublicKey.from_public_bytes(public_key).verify(sig, message)
        else:
            curve, algorithm = ECDSA[suite]
            key = ec.EllipticCurvePublicKey.from_encoded_point(curve, public_key)
            key.verify(sig, message, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


def check_leaf_signature(
    suite: int, leaf: LeafNode, group_id: bytes | None = None, index: int | None = None
) -> None:
    tbs = leaf.tbs(group_id, index)
    assert verify_with_label(suite, leaf.signature_key, "LeafNodeTBS", tbs, leaf.signature)
    assert not verify_with_label(
        suite, leaf.signature_key, "LeafNodeTBS", tbs + b"\0", leaf.signature
    )


def check_key_package(suite: int, kp: KeyPackage) -> None:
    assert kp.cipher_suite == suite
    key = kp.leaf_node.signature_key
    assert verify_with_label(suite, key, "KeyPackageTBS", kp.tbs(), kp.signature)
    check_leaf_signature(suite, kp.leaf_node)


def test_key_package_signatures_match_tbs() -> None:
    seen: set[int] = set()
    for entry in load("welcome.json") + load("passive-client-welcome.json"):
        msg = MLSMessage.from_bytes(bytes.fromhex(entry["key_package"]))
        assert isinstance(msg.body, KeyPackage)
        check_key_package(entry["cipher_suite"], msg.body)
        seen.add(entry["cipher_suite"])
    assert seen >= {1, 2, 3}


def test_tree_leaf_signatures_match_tbs() -> None:
    sources: set[LeafNodeSource] = set()
    for entry in load("tree-validation.json"):
        tree = RatchetTree.from_bytes(bytes.fromhex(entry["tree"]))
        group_id = bytes.fromhex(entry["group_id"])
        for i, node in enumerate(tree.nodes):
            if node is None or node.leaf_node is None:
                continue
            sources.add(node.leaf_node.leaf_node_source)
            check_leaf_signature(entry["cipher_suite"], node.leaf_node, group_id, i // 2)
    # Update proposals and commit paths sent as PublicMessages by members
    for name in ("passive-client-handling-commit.json", "passive-client-random.json"):
        for entry in load(name):
            for epoch in entry["epochs"]:
                for raw in [*epoch["proposals"], epoch["commit"]]:
                    pm = MLSMessage.from_bytes(bytes.fromhex(raw)).body
                    if not isinstance(pm, PublicMessage) or pm.content.sender.index is None:
                        continue
                    c = pm.content.content
                    leaf = (
                        c.leaf_node
                        if isinstance(c, Update)
                        else c.path.leaf_node
                        if isinstance(c, Commit) and c.path is not None
                        else None
                    )
                    if leaf is not None:
                        sources.add(leaf.leaf_node_source)
                        check_leaf_signature(
                            entry["cipher_suite"],
                            leaf,
                            pm.content.group_id,
                            pm.content.sender.index,
                        )
    assert sources == set(LeafNodeSource)


def _level(x: int) -> int:
    k = 0
    while (x >> k) & 1:
        k += 1
    return k


def test_tree_hashes_match_vectors() -> None:
    for entry in load("tree-validation.json"):
        hash_name = HASHES[entry["cipher_suite"]]
        tree = RatchetTree.from_bytes(bytes.fromhex(entry["tree"]))
        expected = [bytes.fromhex(h) for h in entry["tree_hashes"]]
        nodes = list(tree.nodes) + [None] * (len(expected) - len(tree.nodes))

        def tree_hash(
            x: int, nodes: list[Node | None] = nodes, hash_name: str = hash_name
        ) -> bytes:
            node = nodes[x]
            k = _level(x)
            if k == 0:
                data = leaf_tree_hash_input(x // 2, node.leaf_node if node else None)
            else:
                left = tree_hash(x ^ (1 << (k - 1)))
                right = tree_hash(x ^ (3 << (k - 1)))
                data = parent_tree_hash_input(node.parent_node if node else None, left, right)
            return hashlib.new(hash_name, data).digest()

        for x, want in enumerate(expected):
            assert tree_hash(x) == want


def test_public_message_signature_and_membership_tag() -> None:
    for entry in load("message-protection.json"):
        suite = entry["cipher_suite"]
        ctx = GroupContext(
            ProtocolVersion.mls10,
            suite,
            bytes.fromhex(entry["group_id"]),
            entry["epoch"],
            bytes.fromhex(entry["tree_hash"]),
            bytes.fromhex(entry["confirmed_transcript_hash"]),
            (),
        )
        for key in ("proposal_pub", "commit_pub"):
            msg = MLSMessage.from_bytes(bytes.fromhex(entry[key]))
            pm = msg.body
            assert isinstance(pm, PublicMessage)
            assert pm.content.sender == Sender.member(1)
            tbs = pm.authenticated_content().tbs(ctx)
            pub = bytes.fromhex(entry["signature_pub"])
            assert verify_with_label(suite, pub, "FramedContentTBS", tbs, pm.auth.signature)
            mac = hmac.new(
                bytes.fromhex(entry["membership_key"]), pm.tbm(ctx), HASHES[suite]
            ).digest()
            assert pm.membership_tag == mac
        proposal = proposal_from_bytes(bytes.fromhex(entry["proposal"]))
        pub_msg = MLSMessage.from_bytes(bytes.fromhex(entry["proposal_pub"])).body
        assert isinstance(pub_msg, PublicMessage) and pub_msg.content.content == proposal


def test_transcript_hashes_match_vectors() -> None:
    for entry in load("transcript-hashes.json"):
        hash_name = HASHES[entry["cipher_suite"]]
        ac = AuthenticatedContent.from_bytes(bytes.fromhex(entry["authenticated_content"]))
        assert ac.content.content_type is ContentType.commit
        confirmed = hashlib.new(
            hash_name,
            bytes.fromhex(entry["interim_transcript_hash_before"])
            + ac.confirmed_transcript_hash_input().to_bytes(),
        ).digest()
        assert confirmed == bytes.fromhex(entry["confirmed_transcript_hash_after"])
        interim = hashlib.new(
            hash_name, confirmed + ac.interim_transcript_hash_input().to_bytes()
        ).digest()
        assert interim == bytes.fromhex(entry["interim_transcript_hash_after"])
        tag = hmac.new(bytes.fromhex(entry["confirmation_key"]), confirmed, hash_name).digest()
        assert ac.auth.confirmation_tag == tag


# ---------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 0xFFFFFFFFFFFFFFFF)
blob = st.binary(max_size=12)
big_blob = st.binary(max_size=100)


def tuples(strategy: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[Any]:
    return st.lists(strategy, max_size=max_size).map(tuple)


extension = st.builds(Extension, u16, blob)
extensions = tuples(extension)
credential = st.one_of(blob.map(Credential.basic), tuples(blob).map(Credential.x509))
capabilities = st.builds(
    Capabilities, tuples(u16), tuples(u16), tuples(u16), tuples(u16), tuples(u16)
)
lifetime = st.builds(Lifetime, u64, u64)


@st.composite
def leaf_nodes(draw: st.DrawFn) -> LeafNode:
    source = draw(st.sampled_from(LeafNodeSource))
    return LeafNode(
        draw(blob),
        draw(blob),
        draw(credential),
        draw(capabilities),
        source,
        draw(lifetime) if source is LeafNodeSource.key_package else None,
        draw(blob) if source is LeafNodeSource.commit else None,
        draw(extensions),
        draw(blob),
    )


leaf_node = leaf_nodes()
parent_node = st.builds(ParentNode, blob, blob, tuples(u32))
hpke_ct = st.builds(HPKECiphertext, blob, blob)
update_path = st.builds(
    UpdatePath, leaf_node, tuples(st.builds(UpdatePathNode, blob, tuples(hpke_ct)))
)
key_package = st.builds(
    KeyPackage, st.just(ProtocolVersion.mls10), u16, blob, leaf_node, extensions, blob
)
psk_id = st.one_of(
    st.builds(PreSharedKeyID.external, blob, blob),
    st.builds(PreSharedKeyID.resumption, st.sampled_from(ResumptionPSKUsage), blob, u64, blob),
)
proposal: st.SearchStrategy[Proposal] = st.one_of(
    st.builds(Add, key_package),
    st.builds(Update, leaf_node),
    st.builds(Remove, u32),
    st.builds(PreSharedKey, psk_id),
    st.builds(ReInit, blob, u16, u16, extensions),
    st.builds(ExternalInit, blob),
    st.builds(GroupContextExtensions, extensions),
)
proposal_or_ref = st.one_of(
    proposal.map(ProposalOrRef.by_value), blob.map(ProposalOrRef.by_reference)
)
commit = st.builds(Commit, tuples(proposal_or_ref), st.none() | update_path)
sender = st.one_of(
    u32.map(Sender.member),
    u32.map(Sender.external),
    st.just(Sender.new_member_proposal()),
    st.just(Sender.new_member_commit()),
)
content = st.one_of(blob, proposal, commit)
framed_content = st.builds(FramedContent, blob, u64, sender, blob, content)


def auth_for(draw: st.DrawFn, ct: ContentType) -> FramedContentAuthData:
    return FramedContentAuthData(draw(blob), draw(blob) if ct is ContentType.commit else None)


@st.composite
def public_messages(draw: st.DrawFn) -> PublicMessage:
    fc = draw(framed_content)
    member = fc.sender.sender_type is SenderType.member
    return PublicMessage(fc, auth_for(draw, fc.content_type), draw(blob) if member else None)


@st.composite
def authenticated_contents(draw: st.DrawFn) -> AuthenticatedContent:
    fc = draw(framed_content)
    wf = draw(st.sampled_from([WireFormat.mls_public_message, WireFormat.mls_private_message]))
    return AuthenticatedContent(wf, fc, auth_for(draw, fc.content_type))


@st.composite
def private_contents(draw: st.DrawFn) -> PrivateMessageContent:
    c = draw(content)
    return PrivateMessageContent(c, auth_for(draw, content_type_of(c)), draw(st.integers(0, 40)))


@st.composite
def ratchet_trees(draw: st.DrawFn) -> RatchetTree:
    n = 2 * draw(st.integers(0, 4)) + 1
    nodes: list[Node | None] = []
    for i in range(n):
        value: LeafNode | ParentNode = draw(leaf_node) if i % 2 == 0 else draw(parent_node)
        blank = i < n - 1 and draw(st.booleans())
        nodes.append(None if blank else Node(value))
    return RatchetTree(tuple(nodes))


private_message = st.builds(
    PrivateMessage, blob, u64, st.sampled_from(ContentType), blob, blob, big_blob
)
group_context = st.builds(
    GroupContext, st.just(ProtocolVersion.mls10), u16, blob, u64, blob, blob, extensions
)
group_info = st.builds(GroupInfo, group_context, extensions, blob, u32, blob)
welcome = st.builds(Welcome, u16, tuples(st.builds(EncryptedGroupSecrets, blob, hpke_ct)), blob)
mls_message = st.one_of(public_messages(), private_message, welcome, group_info, key_package).map(
    MLSMessage
)


@st.composite
def commit_cthis(draw: st.DrawFn) -> ConfirmedTranscriptHashInput:
    fc = FramedContent(draw(blob), draw(u64), draw(sender), draw(blob), draw(commit))
    wf = draw(st.sampled_from([WireFormat.mls_public_message, WireFormat.mls_private_message]))
    return ConfirmedTranscriptHashInput(wf, fc, draw(blob))


Codec = tuple[Callable[[bytes], Any], Callable[[Any], bytes]]


def _std(cls: Any) -> Codec:
    return cls.from_bytes, lambda obj: obj.to_bytes()


def _ctd(cls: Any, ct: ContentType) -> Codec:
    return (lambda data: cls.from_bytes(data, ct)), lambda obj: obj.to_bytes()


ROUNDTRIP: dict[str, tuple[Codec, st.SearchStrategy[Any]]] = {
    "Credential": (_std(Credential), credential),
    "Capabilities": (_std(Capabilities), capabilities),
    "Extension": (_std(Extension), extension),
    "LeafNode": (_std(LeafNode), leaf_node),
    "ParentNode": (_std(ParentNode), parent_node),
    "Node": (_std(Node), st.one_of(leaf_node, parent_node).map(Node)),
    "RatchetTree": (_std(RatchetTree), ratchet_trees()),
    "UpdatePath": (_std(UpdatePath), update_path),
    "KeyPackage": (_std(KeyPackage), key_package),
    "PreSharedKeyID": (_std(PreSharedKeyID), psk_id),
    "PSKLabel": (_std(PSKLabel), st.builds(PSKLabel, psk_id, u16, u16)),
    "Proposal": ((proposal_from_bytes, proposal_to_bytes), proposal),
    "ProposalOrRef": (_std(ProposalOrRef), proposal_or_ref),
    "Commit": (_std(Commit), commit),
    "Sender": (_std(Sender), sender),
    "FramedContent": (_std(FramedContent), framed_content),
    "AuthenticatedContent": (_std(AuthenticatedContent), authenticated_contents()),
    "ConfirmedTranscriptHashInput": (
        _std(ConfirmedTranscriptHashInput),
        commit_cthis(),
    ),
    "InterimTranscriptHashInput": (
        _std(InterimTranscriptHashInput),
        st.builds(InterimTranscriptHashInput, blob),
    ),
    "PublicMessage": (_std(PublicMessage), public_messages()),
    "PrivateMessage": (_std(PrivateMessage), private_message),
    "PrivateContentAAD": (
        _std(PrivateContentAAD),
        st.builds(PrivateContentAAD, blob, u64, st.sampled_from(ContentType), blob),
    ),
    "SenderData": (
        _std(SenderData),
        st.builds(SenderData, u32, u32, st.binary(min_size=4, max_size=4)),
    ),
    "SenderDataAAD": (
        _std(SenderDataAAD),
        st.builds(SenderDataAAD, blob, u64, st.sampled_from(ContentType)),
    ),
    "GroupContext": (_std(GroupContext), group_context),
    "GroupInfo": (_std(GroupInfo), group_info),
    "GroupSecrets": (
        _std(GroupSecrets),
        st.builds(GroupSecrets, blob, st.none() | blob, tuples(psk_id)),
    ),
    "Welcome": (_std(Welcome), welcome),
    "MLSMessage": (_std(MLSMessage), mls_message),
    "ApplicationId": (_std(ApplicationId), st.builds(ApplicationId, blob)),
    "ExternalPub": (_std(ExternalPub), st.builds(ExternalPub, blob)),
    "ExternalSenders": (
        _std(ExternalSenders),
        st.builds(ExternalSenders, tuples(st.builds(ExternalSender, blob, credential))),
    ),
    "RequiredCapabilities": (
        _std(RequiredCapabilities),
        st.builds(RequiredCapabilities, tuples(u16), tuples(u16), tuples(u16)),
    ),
    "ParentHashInput": (_std(ParentHashInput), st.builds(ParentHashInput, blob, blob, blob)),
}


@pytest.mark.parametrize("name", sorted(ROUNDTRIP))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_roundtrip_constructed(name: str, data: st.DataObject) -> None:
    (decode, encode), strategy = ROUNDTRIP[name]
    obj = data.draw(strategy)
    encoded = encode(obj)
    assert decode(encoded) == obj
    assert encode(decode(encoded)) == encoded


def test_roundtrip_private_message_content() -> None:
    @settings(max_examples=100, deadline=None)
    @given(private_contents())
    def run(pmc: PrivateMessageContent) -> None:
        decoded = PrivateMessageContent.from_bytes(pmc.to_bytes(), pmc.content_type)
        assert decoded == pmc

    run()


# Every decoder exposed by the module (content-type dependent ones once per type).
DECODERS: dict[str, Callable[[bytes], Any]] = {
    name: codec[0] for name, (codec, _strategy) in ROUNDTRIP.items()
}
DECODERS.update(
    {
        "Lifetime": Lifetime.from_bytes,
        "HPKECiphertext": HPKECiphertext.from_bytes,
        "UpdatePathNode": UpdatePathNode.from_bytes,
        "EncryptedGroupSecrets": EncryptedGroupSecrets.from_bytes,
        "ExternalSender": ExternalSender.from_bytes,
        **{f"{cls.__name__}": cls.from_bytes for cls in (Add, Update, Remove, PreSharedKey)},
        **{f"{cls.__name__}": cls.from_bytes for cls in (ReInit, ExternalInit)},
        "GroupContextExtensions": GroupContextExtensions.from_bytes,
    }
)
for _ct in ContentType:
    DECODERS[f"FramedContentAuthData[{_ct.name}]"] = _ctd(FramedContentAuthData, _ct)[0]
    DECODERS[f"PrivateMessageContent[{_ct.name}]"] = _ctd(PrivateMessageContent, _ct)[0]


def _decode_or_mls_error(decode: Callable[[bytes], Any], data: bytes) -> Any:
    """Decode; MLSError is fine, anything else fails the test. Success must be canonical."""
    try:
        obj = decode(data)
    except MLSError:
        return None
    assert obj.to_bytes() == data, "accepted input does not re-encode identically"
    return obj


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_only_raise_mls_errors(name: str, data: bytes) -> None:
    _decode_or_mls_error(DECODERS[name], data)


@cache
def _vector_samples() -> list[tuple[Callable[[bytes], Any], bytes]]:
    entries = load("messages.json")[:3]
    samples: list[tuple[Callable[[bytes], Any], bytes]] = []
    for entry in entries:
        for field in entry:
            if field.startswith(("mls_", "public_", "private_")):
                samples.append((MLSMessage.from_bytes, bytes.fromhex(entry[field])))
        samples.append((RatchetTree.from_bytes, bytes.fromhex(entry["ratchet_tree"])))
        samples.append((GroupSecrets.from_bytes, bytes.fromhex(entry["group_secrets"])))
        samples.append((Commit.from_bytes, bytes.fromhex(entry["commit"])))
    return samples


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_mutated_vectors_only_raise_mls_errors(data: st.DataObject) -> None:
    decode, original = data.draw(st.sampled_from(_vector_samples()))
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["flip", "set", "delete", "insert"]))
        pos = data.draw(st.integers(0, max(len(mutated) - 1, 0)))
        if kind == "flip" and mutated:
            mutated[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set" and mutated:
            mutated[pos] = data.draw(u8)
        elif kind == "delete":
            del mutated[pos : pos + data.draw(st.integers(1, 8))]
        else:
            mutated[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    _decode_or_mls_error(decode, bytes(mutated))


@pytest.mark.parametrize("name", ["MLSMessage", "RatchetTree", "Commit", "GroupInfo", "LeafNode"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_truncated_constructed_encodings_rejected(name: str, data: st.DataObject) -> None:
    (decode, encode), strategy = ROUNDTRIP[name]
    encoded = encode(data.draw(strategy))
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(DecodeError):
        decode(encoded[:cut])


def test_reader_level_decode_leaves_following_bytes() -> None:
    """``decode(r)`` consumes exactly one structure, so structures can be concatenated."""
    leaf, kp = make_leaf(), make_key_package()
    r = Reader(leaf.to_bytes() + kp.to_bytes())
    assert LeafNode.decode(r) == leaf
    assert KeyPackage.decode(r) == kp
    r.done()
