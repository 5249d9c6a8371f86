"""Message protection vectors (test-vectors.md "Message Protection"; RFC 9420 section 6).

For each of proposal, commit and application, with leaf 1 of a 2-member
secret tree as the sender: the vector's PublicMessage / PrivateMessage must
unprotect to the raw value, and protecting the raw value ourselves must
unprotect with the vector's keys (application data refuses PublicMessage).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from mls_vectors import claimed_suite, h, load_vectors, suite_params

from clave.mls.ciphersuite import CipherSuite, Rng
from clave.mls.framing import (
    FramingError,
    protect_private,
    protect_public,
    sign_content,
    unprotect_private,
    unprotect_public,
)
from clave.mls.secret_tree import SecretTree
from clave.mls.structs import (
    Commit,
    Content,
    FramedContent,
    GroupContext,
    MLSMessage,
    PrivateMessage,
    ProtocolVersion,
    PublicMessage,
    Sender,
    WireFormat,
    proposal_from_bytes,
    proposal_to_bytes,
)

VECTORS = load_vectors("message-protection")
SENDER = 1
KINDS = ("proposal", "commit", "application")


def _rng(seed: bytes) -> Rng:
    counter = [0]

    def rng(n: int) -> bytes:
        counter[0] += 1
        return hashlib.shake_256(seed + counter[0].to_bytes(8, "big")).digest(n)

    return rng


def _ctx(v: dict[str, Any]) -> GroupContext:
    return GroupContext(
        ProtocolVersion.mls10,
        v["cipher_suite"],
        h(v["group_id"]),
        v["epoch"],
        h(v["tree_hash"]),
        h(v["confirmed_transcript_hash"]),
        (),
    )


def _raw(v: dict[str, Any], kind: str) -> Content:
    data = h(v[kind])
    if kind == "proposal":
        return proposal_from_bytes(data)
    if kind == "commit":
        return Commit.from_bytes(data)
    return data


def _encode(content: Content) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, Commit):
        return content.to_bytes()
    return proposal_to_bytes(content)


def _tree(suite: CipherSuite, v: dict[str, Any]) -> SecretTree:
    return SecretTree(suite, h(v["encryption_secret"]), 2)


def _body(v: dict[str, Any], field: str) -> Any:
    msg = MLSMessage.from_bytes(h(v[field]))
    assert msg.to_bytes() == h(v[field])
    return msg.body


def _unprotect_priv(
    suite: CipherSuite, v: dict[str, Any], tree: SecretTree, msg: PrivateMessage
) -> Content:
    auth = unprotect_private(
        suite,
        msg,
        _ctx(v),
        tree,
        h(v["sender_data_secret"]),
        is_member=lambda leaf: leaf in (0, 1),
        signature_key=h(v["signature_pub"]),
    )
    assert auth.content.sender == Sender.member(SENDER)
    assert auth.wire_format is WireFormat.mls_private_message
    return auth.content.content


def _framed(v: dict[str, Any], content: Content) -> FramedContent:
    return FramedContent(h(v["group_id"]), v["epoch"], Sender.member(SENDER), b"", content)


def _tag_for(v: dict[str, Any], kind: str) -> bytes | None:
    """Commits need a confirmation tag; any MAC-sized value serves for framing."""
    return bytes(range(32)) if kind == "commit" else None


@pytest.mark.parametrize("kind", ["proposal", "commit"])
@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_public_vector_unprotects(v: dict[str, Any], kind: str) -> None:
    suite = claimed_suite(v)
    msg = _body(v, f"{kind}_pub")
    assert isinstance(msg, PublicMessage)
    auth = unprotect_public(
        suite, msg, _ctx(v), h(v["membership_key"]), signature_key=h(v["signature_pub"])
    )
    assert auth.content.sender == Sender.member(SENDER)
    assert _encode(auth.content.content) == h(v[kind])


@pytest.mark.parametrize("kind", ["proposal", "commit"])
@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_public_protect_roundtrip(v: dict[str, Any], kind: str) -> None:
    suite = claimed_suite(v)
    ctx = _ctx(v)
    auth = sign_content(
        suite,
        WireFormat.mls_public_message,
        _framed(v, _raw(v, kind)),
        h(v["signature_priv"]),
        ctx,
        _tag_for(v, kind),
    )
    msg = protect_public(suite, auth, ctx, h(v["membership_key"]))
    wire = MLSMessage(msg).to_bytes()
    back = MLSMessage.from_bytes(wire).body
    assert isinstance(back, PublicMessage)
    got = unprotect_public(
        suite, back, ctx, h(v["membership_key"]), signature_key=h(v["signature_pub"])
    )
    assert got == auth
    assert _encode(got.content.content) == h(v[kind])


@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_application_as_public_message_fails(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    ctx = _ctx(v)
    auth = sign_content(
        suite,
        WireFormat.mls_public_message,
        _framed(v, h(v["application"])),
        h(v["signature_priv"]),
        ctx,
    )
    with pytest.raises(FramingError, match="PrivateMessage"):
        protect_public(suite, auth, ctx, h(v["membership_key"]))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_private_vector_unprotects(v: dict[str, Any], kind: str) -> None:
    suite = claimed_suite(v)
    msg = _body(v, f"{kind}_priv")
    assert isinstance(msg, PrivateMessage)
    assert _encode(_unprotect_priv(suite, v, _tree(suite, v), msg)) == h(v[kind])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_private_protect_roundtrip(v: dict[str, Any], kind: str) -> None:
    suite = claimed_suite(v)
    ctx = _ctx(v)
    auth = sign_content(
        suite,
        WireFormat.mls_private_message,
        _framed(v, _raw(v, kind)),
        h(v["signature_priv"]),
        ctx,
        _tag_for(v, kind),
    )
    msg = protect_private(
        suite,
        auth,
        ctx,
        _tree(suite, v),
        h(v["sender_data_secret"]),
        rng=_rng(b"mp-" + kind.encode()),
    )
    back = MLSMessage.from_bytes(MLSMessage(msg).to_bytes()).body
    assert isinstance(back, PrivateMessage)
    assert _encode(_unprotect_priv(suite, v, _tree(suite, v), back)) == h(v[kind])
