"""Rejection tests of the Group API (RFC 9420 sections 6, 7.9, 8, 9, 12.2, 12.4).

Every bad input must raise a *specific* MLSError subclass and leave the
receiver exactly as it was (:func:`_rejects` compares the group's snapshot:
epoch, epoch_authenticator, roster, tree hash, transcript, exporter, caches);
each test then checks that the group still works (:func:`_still_works`: a
commit and an application message from every member, then agreement).

How the bad messages are made (noted per test):

* "crafted": built from the structs and signed with the sending member's real
  signature key via group_helpers (``craft_commit`` / ``sign_content`` +
  ``protect``), so only the intended defect is present;
* "tampered": a valid message from the API, decoded, modified and re-encoded
  (re-signed / re-tagged where stated);
* "sender-side patch": the proposal-list validation of the *sender only* is
  monkeypatched for the duration of its ``commit()`` call, so the API itself
  produces a complete commit (path, confirmation tag) whose only defect is the
  proposal list; the patch is undone before any receiver sees the message.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import pytest
from group_helpers import (
    NOW,
    PRIVATE,
    PUBLIC,
    SUITES,
    WIRE_FORMATS,
    World,
    assert_agree,
    commit_and_deliver,
    craft_commit,
    deliver,
    private_message_raw,
    protect,
    public_message,
    sign_content,
    snapshot,
)

import clave.mls.commit_build as commit_build
import clave.mls.commit_stage as commit_stage
from clave.mls import framing, proposals
from clave.mls.errors import (
    CommitError,
    ConfirmationTagError,
    CryptoError,
    DecodeError,
    EpochError,
    GenerationError,
    LeafNodeError,
    MembershipTagError,
    MLSError,
    ProposalError,
    SignatureError,
    StateError,
    TreeError,
    ValidationError,
    WelcomeError,
)
from clave.mls.events import ApplicationMessage, ProposalReceived
from clave.mls.group import Group, GroupConfig
from clave.mls.group_info import sign_group_info
from clave.mls.key_package import KeyPackageBundle, create_key_package
from clave.mls.key_schedule import welcome_key_nonce, welcome_secret
from clave.mls.leaf_node import sign_leaf_node
from clave.mls.proposals import Sourced
from clave.mls.ratchet_tree import RatchetTree
from clave.mls.structs import (
    Add,
    AuthenticatedContent,
    Commit,
    ContentType,
    Credential,
    EncryptedGroupSecrets,
    ExtensionType,
    ExternalInit,
    FramedContentAuthData,
    GroupContextExtensions,
    GroupInfo,
    GroupSecrets,
    HPKECiphertext,
    LeafNode,
    MLSMessage,
    PreSharedKeyID,
    PrivateMessageContent,
    ProposalOrRef,
    PublicMessage,
    Remove,
    RequiredCapabilities,
    Sender,
    Update,
    UpdatePath,
    Welcome,
    WireFormat,
)
from clave.mls.welcome import WELCOME_LABEL


def _flip(data: bytes, index: int = 0, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def _rejects(
    receivers: list[Group], message: bytes, error: type[MLSError], match: str | None = None
) -> None:
    """Each receiver refuses ``message`` with exactly ``error`` and is left unchanged."""
    for g in receivers:
        before = snapshot(g)
        with pytest.raises(error, match=match) as info:
            g.process(message)
        assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
        assert snapshot(g) == before


def _still_works(members: list[Group]) -> None:
    """A fresh commit (taking any cached proposals) and messages go through; all agree."""
    for g in members:
        g.discard_pending_commit()
    commit_and_deliver(members[0], members[1:])
    for sender in members:
        msg = sender.send(b"still alive", authenticated_data=b"ad")
        for g in members:
            if g is not sender:
                event = g.process(msg)
                assert isinstance(event, ApplicationMessage) and event.data == b"still alive"
    assert_agree(members)


def _public(message: bytes) -> PublicMessage:
    body = MLSMessage.from_bytes(message).body
    assert isinstance(body, PublicMessage)
    return body


def _trio(suite_id: int = 1) -> tuple[World, Group, Group, Group]:
    w = World(suite_id)
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    return w, alice, bob, carol


# -- signatures and membership tags (section 6.1, 6.2) -------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_content_re_signed_with_another_key(suite_id: int) -> None:
    """Tampered: bob's valid PublicMessage commit re-signed with a stranger's key and
    re-tagged with the right membership key, so only the signature is wrong; and a
    crafted PrivateMessage (application data) signed with the stranger's key."""
    w, alice, bob, carol = _trio(suite_id)
    stranger, _ = w.suite.generate_signature_key_pair(w.rng)
    out = bob.commit(wire_format=PUBLIC)
    bob.discard_pending_commit()
    pub = _public(out.commit)
    forged = framing.sign_content(
        w.suite, PUBLIC, pub.content, stranger, bob.group_context, pub.auth.confirmation_tag
    )
    _rejects([alice, carol], protect(bob, forged), SignatureError)

    _, auth = sign_content(bob, b"forged", wire_format=PRIVATE, signature_priv=stranger)
    _rejects([alice, carol], protect(bob, auth), SignatureError)
    _still_works([alice, bob, carol])


@pytest.mark.parametrize("suite_id", SUITES)
def test_flipped_signature_byte_in_public_message(suite_id: int) -> None:
    """Tampered: one signature bit flipped. The membership tag covers the signature
    (MembershipTagError); with the tag recomputed, the signature check fails."""
    _w, alice, bob, carol = _trio(suite_id)
    out = bob.commit(wire_format=PUBLIC)
    bob.discard_pending_commit()
    pub = _public(out.commit)
    for index in (0, len(pub.auth.signature) // 2, len(pub.auth.signature) - 1):
        auth = AuthenticatedContent(
            PUBLIC,
            pub.content,
            FramedContentAuthData(_flip(pub.auth.signature, index, 3), pub.auth.confirmation_tag),
        )
        untagged = MLSMessage(PublicMessage(auth.content, auth.auth, pub.membership_tag))
        _rejects([alice, carol], untagged.to_bytes(), MembershipTagError)
        _rejects([alice, carol], protect(bob, auth), SignatureError)
    _still_works([alice, bob, carol])


def test_wrong_membership_tag() -> None:
    """Tampered: flipped tag, tag under last epoch's membership key, tag cut off."""
    _w, alice, bob, carol = _trio()
    old_membership_key = bob._epoch.secrets.membership_key
    commit_and_deliver(alice, [bob, carol])
    out = bob.commit(wire_format=PUBLIC)
    bob.discard_pending_commit()
    pub = _public(out.commit)
    assert pub.membership_tag is not None
    flipped = PublicMessage(pub.content, pub.auth, _flip(pub.membership_tag, 5))
    _rejects([alice, carol], MLSMessage(flipped).to_bytes(), MembershipTagError)
    stale = public_message(
        bob, pub.authenticated_content(), old_membership_key, bob.group_context.to_bytes()
    )
    _rejects([alice, carol], stale, MembershipTagError)
    # A member's PublicMessage without its tag does not even parse (section 6.2 makes
    # the field present exactly for member senders): strip the trailing opaque<V>.
    assert out.commit.endswith(bytes([len(pub.membership_tag)]) + pub.membership_tag)
    missing = out.commit[: -len(pub.membership_tag) - 1]
    _rejects([alice, carol], missing, DecodeError)
    _still_works([alice, bob, carol])


def test_confirmation_tag_mismatch() -> None:
    """Tampered: a flipped confirmation tag, re-tagged with the membership key (the
    signature does not cover the confirmation tag); and a crafted commit whose tag
    uses the current epoch's confirmation key."""
    w, alice, bob, carol = _trio()
    out = bob.commit(wire_format=PUBLIC)
    bob.discard_pending_commit()
    pub = _public(out.commit)
    assert pub.auth.confirmation_tag is not None
    auth = AuthenticatedContent(
        PUBLIC,
        pub.content,
        FramedContentAuthData(pub.auth.signature, _flip(pub.auth.confirmation_tag, 1)),
    )
    _rejects([alice, carol], protect(bob, auth), ConfirmationTagError)
    # A commit with only an Add needs no path; its tag is simply wrong.
    kp = w.key_package("dave").key_package
    _rejects([alice, carol], craft_commit(bob, [Add(kp)]), ConfirmationTagError)
    _still_works([alice, bob, carol])


# -- epochs, groups, generations (sections 6, 9) ---------------------------------------


def test_message_for_another_group() -> None:
    _w, alice, bob, carol = _trio()
    other = World(seed=1, group_id=b"another group")
    o_alice, o_bob = other.group_of(["alice", "bob"])
    _rejects([alice, bob], o_alice.send(b"wrong group"), EpochError, "different group")
    out = o_bob.commit(wire_format=PUBLIC)
    _rejects([alice, bob], out.commit, EpochError, "different group")
    # Same group_id, different group: the keys do not match.
    twin = World(seed=2)
    t_alice, _ = twin.group_of(["alice", "bob"])
    assert t_alice.group_id == alice.group_id and t_alice.epoch == alice.epoch
    _rejects([bob, carol], t_alice.send(b"twin"), CryptoError)
    out = t_alice.commit(wire_format=PUBLIC)
    _rejects([bob, carol], out.commit, MembershipTagError)
    _still_works([alice, bob, carol])


@pytest.mark.parametrize("wire_format", WIRE_FORMATS, ids=["public", "private"])
def test_message_for_past_and_future_epochs(wire_format: WireFormat) -> None:
    _w, alice, bob, carol = _trio()
    old = bob.commit(wire_format=wire_format)
    bob.discard_pending_commit()
    old_app = bob.send(b"epoch 1")
    commit_and_deliver(alice, [bob])  # carol is still at epoch 1
    new = bob.commit(wire_format=wire_format)
    bob.discard_pending_commit()
    _rejects([alice], old.commit, EpochError, "epoch 1")
    _rejects([alice], old_app, EpochError, "epoch 1")
    _rejects([carol], new.commit, EpochError, "epoch 2")
    _rejects([carol], bob.send(b"epoch 2"), EpochError, "epoch 2")
    _still_works([alice, bob])


@pytest.mark.parametrize("suite_id", SUITES)
def test_replayed_private_message_generation(suite_id: int) -> None:
    """A PrivateMessage processed once: its generation's key is gone (section 9.2)."""
    _w, alice, bob, carol = _trio(suite_id)
    msg = bob.send(b"once", authenticated_data=b"ad")
    for g in (alice, carol):
        event = g.process(msg)
        assert isinstance(event, ApplicationMessage)
        assert (event.data, event.generation) == (b"once", 0)
    _rejects([alice, carol], msg, GenerationError)
    # The same for a handshake message (a proposal is cached only once).
    proposal = bob.propose_update(wire_format=PRIVATE)
    for g in (alice, carol):
        assert isinstance(g.process(proposal), ProposalReceived)
        assert g.pending_proposals == 1
    _rejects([alice, carol], proposal, GenerationError)
    _still_works([alice, bob, carol])


def test_generation_too_far_ahead() -> None:
    w = World(config=GroupConfig(max_forward_distance=4))
    alice, bob = w.group_of(["alice", "bob"])
    messages = [bob.send(b"%d" % i) for i in range(7)]
    _rejects([alice], messages[5], GenerationError, "ahead")
    event = alice.process(messages[4])
    assert isinstance(event, ApplicationMessage) and event.generation == 4
    event = alice.process(messages[1])  # out of order, within the window
    assert isinstance(event, ApplicationMessage) and event.generation == 1
    _rejects([alice], messages[1], GenerationError)
    _still_works([alice, bob])


# -- malformed input (section 2.1) ------------------------------------------------------


def test_malformed_messages_are_decode_errors() -> None:
    _w, alice, bob, carol = _trio()
    r = random.Random(1234)
    public = bob.commit(wire_format=PUBLIC).commit
    bob.discard_pending_commit()
    private = bob.send(b"some application data")
    garbage = [b"", b"\x00", b"\x00\x01", b"\xff" * 3]
    garbage += [r.randbytes(r.randrange(1, 300)) for _ in range(40)]
    # A valid header (mls10 + each wire format), then noise.
    garbage += [bytes([0, 1, 0, wf]) + r.randbytes(r.randrange(0, 200)) for wf in (1, 2) * 20]
    for message in (public, private):
        garbage += [message[:cut] for cut in range(0, len(message), max(1, len(message) // 40))]
        garbage += [message + b"\x00", message + r.randbytes(9)]
    for g in (alice, carol):
        before = snapshot(g)
        for bad in garbage:
            with pytest.raises(DecodeError):
                g.process(bad)
        assert snapshot(g) == before
    for g in (alice, carol):  # the untouched originals still work
        assert isinstance(g.process(private), ApplicationMessage)
    _still_works([alice, bob, carol])


def test_malformed_private_message_content() -> None:
    """Crafted: correctly encrypted PrivateMessages whose plaintext does not parse."""
    _w, alice, bob, carol = _trio()
    good = sign_content(bob, b"x", wire_format=PRIVATE)[1]
    plain = PrivateMessageContent(good.content.content, good.auth).to_bytes()
    for bad in (b"", plain[:-1], plain + b"\x01", b"\xff" * 40):
        _rejects(
            [alice, carol], private_message_raw(bob, ContentType.application, bad), DecodeError
        )
    ok = private_message_raw(bob, ContentType.application, plain + bytes(7))  # zero padding
    for g in (alice, carol):
        event = g.process(ok)
        assert isinstance(event, ApplicationMessage) and event.data == b"x"
    _still_works([alice, bob, carol])


def test_wrong_message_types_for_process() -> None:
    w, alice, bob, carol = _trio()
    kp = MLSMessage(w.key_package("dave").key_package).to_bytes()
    for message in (kp, alice.group_info()):
        _rejects([bob], message, ValidationError, "cannot process")
    out = alice.commit(add=[kp])
    alice.discard_pending_commit()
    assert out.welcome is not None
    _rejects([bob], out.welcome, ValidationError, "cannot process")
    _still_works([alice, bob, carol])


# -- removed members (sections 6, 12.4.2) ---------------------------------------------


@pytest.mark.parametrize("wire_format", WIRE_FORMATS, ids=["public", "private"])
def test_commit_from_a_removed_member(wire_format: WireFormat) -> None:
    w = World()
    alice, bob, carol, dave = w.group_of(["alice", "bob", "carol", "dave"])
    bob_at_epoch_1 = bob.to_bytes()
    bob_commit = bob.commit(wire_format=wire_format)  # made before bob is removed
    bob.discard_pending_commit()
    commit_and_deliver(carol, [alice, dave, bob], remove=[1])
    assert not bob.active
    members = [alice, carol, dave]

    # 1. Bob's commit for the old epoch.
    _rejects(members, bob_commit.commit, EpochError, "epoch 1")

    # 2. Crafted by bob with what he knows (epoch 1 secrets), claiming epoch 2 and his
    #    old leaf: the membership tag / sender-data key are wrong.
    old_bob = w.restore(bob_at_epoch_1)
    body = Commit((ProposalOrRef.by_value(Remove(0)),), None)
    if wire_format == PUBLIC:
        _, auth = sign_content(old_bob, body, epoch=2)
        forged = public_message(
            old_bob,
            auth,
            old_bob._epoch.secrets.membership_key,
            dataclasses.replace(old_bob.group_context, epoch=2).to_bytes(),
        )
        _rejects(members, forged, MembershipTagError)
    else:
        old_bob_epoch = old_bob._epoch
        old_bob._epoch = dataclasses.replace(
            old_bob_epoch, context=dataclasses.replace(old_bob_epoch.context, epoch=2)
        )
        _, auth = sign_content(old_bob, body, wire_format=PRIVATE)
        forged = protect(old_bob, auth)
        _rejects(members, forged, CryptoError, "sender data")

    # 3. Worst case: epoch 2 secrets leaked to bob. The sender check still refuses his
    #    old leaf index, which is now blank.
    _, auth = sign_content(
        alice,
        body,
        wire_format=wire_format,
        sender=Sender.member(1),
        signature_priv=bob._signer.signature_private_key,
    )
    forged = protect(alice, auth)
    expected = ValidationError if wire_format == PUBLIC else framing.FramingError
    _rejects([carol, dave], forged, expected, "not a member")

    # 4. ... and once the leaf is reused, bob's signature does not match the new member.
    (erin,) = w.add(alice, [carol, dave], ["erin"])
    assert erin.own_leaf_index == 1
    _, auth = sign_content(
        alice,
        body,
        wire_format=wire_format,
        sender=Sender.member(1),
        signature_priv=bob._signer.signature_private_key,
    )
    _rejects([carol, dave], protect(alice, auth), SignatureError)
    _still_works([alice, erin, carol, dave])


# -- UpdatePath (section 7.9, 12.4.2) ----------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_invalid_parent_hash(suite_id: int) -> None:
    """Tampered: bob's self-update commit with the UpdatePath leaf's parent_hash changed;
    the leaf (LeafNodeTBS) and the content (FramedContentTBS) are re-signed with bob's
    key and the membership tag recomputed, so only the parent-hash check fails."""
    w, alice, bob, carol = _trio(suite_id)
    priv = bob._signer.signature_private_key
    out = bob.commit(wire_format=PUBLIC)
    bob.discard_pending_commit()
    pub = _public(out.commit)
    commit = pub.content.content
    assert isinstance(commit, Commit) and commit.path is not None
    leaf = commit.path.leaf_node
    assert leaf.parent_hash

    def rebuild(parent_hash: bytes) -> bytes:
        new_leaf = sign_leaf_node(
            w.suite,
            dataclasses.replace(leaf, parent_hash=parent_hash, signature=b""),
            priv,
            group_id=bob.group_id,
            leaf_index=1,
        )
        assert commit.path is not None
        body = Commit(commit.proposals, UpdatePath(new_leaf, commit.path.nodes))
        _, auth = sign_content(bob, body, confirmation_tag=pub.auth.confirmation_tag)
        return protect(bob, auth)

    if suite_id != 2:  # deterministic signatures: the rebuild alone changes nothing
        assert rebuild(leaf.parent_hash) == out.commit
    for bad in (_flip(leaf.parent_hash, 0), bytes(len(leaf.parent_hash)), b""):
        _rejects([alice, carol], rebuild(bad), CommitError, "parent_hash")
    _still_works([alice, bob, carol])


def test_update_path_leaf_with_bad_signature() -> None:
    """Tampered: UpdatePath leaf's parent_hash changed without re-signing the leaf."""
    _w, alice, bob, carol = _trio()
    out = bob.commit(wire_format=PUBLIC)
    bob.discard_pending_commit()
    pub = _public(out.commit)
    commit = pub.content.content
    assert isinstance(commit, Commit) and commit.path is not None
    leaf = commit.path.leaf_node
    assert leaf.parent_hash is not None
    bad_leaf = dataclasses.replace(leaf, parent_hash=_flip(leaf.parent_hash))
    body = Commit(commit.proposals, UpdatePath(bad_leaf, commit.path.nodes))
    _, auth = sign_content(bob, body, confirmation_tag=pub.auth.confirmation_tag)
    _rejects([alice, carol], protect(bob, auth), LeafNodeError, "signature")
    _still_works([alice, bob, carol])


# -- proposal list validation (section 12.2) --------------------------------------------


def _lenient(items: list[Sourced], **_: object) -> proposals.ListShape:
    """validate_proposal_list without the section 12.2 checks (sender-side patch)."""
    return proposals._shape(items)


def test_update_and_remove_of_the_same_leaf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sender-side patch (list validation and the committer's proposal selection): carol
    commits bob's Update (by reference) and a Remove of bob."""
    _w, alice, bob, carol = _trio()
    deliver(bob.propose_update(), [alice, carol])
    with monkeypatch.context() as m:
        m.setattr(commit_stage, "validate_proposal_list", _lenient)
        # Also keep the committer from dropping the Update (a Remove wins, section 12.2).
        m.setattr(commit_build, "_select_cached", lambda cached, *_: list(cached))
        out = carol.commit(remove=[1])
    assert out.summary.updated == (1,) and out.summary.removed[0].leaf_index == 1
    carol.discard_pending_commit()
    _rejects([alice, bob], out.commit, ProposalError, "multiple Update/Remove")
    _still_works([alice, bob, carol])


@pytest.mark.parametrize("wire_format", WIRE_FORMATS, ids=["public", "private"])
def test_two_removes_of_the_same_leaf(wire_format: WireFormat) -> None:
    """Crafted by bob, without a path (list validation comes first); and tampered:
    bob's valid Remove commit (path, confirmation tag) with the Remove duplicated,
    re-signed by bob: the path fits the tree the list would produce."""
    _w, alice, bob, carol = _trio()
    message = craft_commit(bob, [Remove(2), Remove(2)], wire_format=wire_format)
    _rejects([alice, carol], message, ProposalError, "multiple Update/Remove")
    out = bob.commit(remove=[2], wire_format=PUBLIC)
    bob.discard_pending_commit()
    pub = _public(out.commit)
    commit = pub.content.content
    assert isinstance(commit, Commit) and commit.path is not None
    body = Commit(commit.proposals * 2, commit.path)
    _, auth = sign_content(
        bob, body, wire_format=wire_format, confirmation_tag=pub.auth.confirmation_tag
    )
    _rejects([alice, carol], protect(bob, auth), ProposalError, "multiple Update/Remove")
    _still_works([alice, bob, carol])


@pytest.mark.parametrize("wire_format", WIRE_FORMATS, ids=["public", "private"])
def test_remove_of_the_committer(wire_format: WireFormat) -> None:
    """Crafted by bob: a commit removing bob himself."""
    _w, alice, bob, carol = _trio()
    message = craft_commit(bob, [Remove(1)], wire_format=wire_format)
    _rejects([alice, carol], message, ProposalError, "removes the committer")
    _still_works([alice, bob, carol])


def test_remove_of_a_blank_or_absent_leaf() -> None:
    """Crafted by bob."""
    _w, alice, bob, carol = _trio()
    for leaf in (3, 7, 1000):
        message = craft_commit(bob, [Remove(leaf)])
        _rejects([alice, carol], message, ProposalError, "blank or out of range")
    _still_works([alice, bob, carol])


def test_add_of_an_existing_member(monkeypatch: pytest.MonkeyPatch) -> None:
    """Crafted (same signature key as carol) and sender-side patch (a second client
    with carol's identity but a new key, which the sender's tree accepts)."""
    w, alice, bob, carol = _trio()
    same_key = w.key_package("carol").key_package
    _rejects([alice, carol], craft_commit(bob, [Add(same_key)]), ProposalError, "already")
    # carol's identity with a fresh signature key.
    impostor = create_key_package(w.suite, Credential.basic(b"carol"), rng=w.rng, now=NOW)
    assert impostor.signature_priv != carol._signer.signature_private_key
    with monkeypatch.context() as m:
        m.setattr(commit_stage, "validate_proposal_list", _lenient)
        out = bob.commit(add=[impostor.key_package.to_bytes()])
    bob.discard_pending_commit()
    assert [a.identity for a in out.summary.added] == [b"carol"]
    _rejects([alice, carol], out.commit, ProposalError, "already in the group")
    _still_works([alice, bob, carol])


def test_two_group_context_extensions() -> None:
    """Crafted by bob."""
    _w, alice, bob, carol = _trio()
    one = GroupContextExtensions((RequiredCapabilities().to_extension(),))
    two = GroupContextExtensions(())
    _rejects([alice, carol], craft_commit(bob, [one, two]), ProposalError, "more than one")
    _still_works([alice, bob, carol])


def test_external_init_in_a_regular_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Crafted by bob; also produced by the API with the sender's validation patched."""
    w, alice, bob, carol = _trio()
    # A kem_output for the group's real external_pub, as an external joiner would make.
    _, ext_commit = w.join_external(alice.group_info(), "mallory")
    ext_body = _public(ext_commit).content.content
    assert isinstance(ext_body, Commit)
    init = ext_body.proposals[0].proposal
    assert isinstance(init, ExternalInit)
    message = craft_commit(bob, [init])
    _rejects([alice, carol], message, ProposalError, "ExternalInit")

    original = Group._build_commit

    def with_external_init(self: Group, base: Any, by_value: list[Sourced], **kw: Any) -> Any:
        return original(self, base, [*by_value, Sourced(init, self.own_leaf_index)], **kw)

    with monkeypatch.context() as m:
        m.setattr(commit_stage, "validate_proposal_list", _lenient)
        m.setattr(Group, "_build_commit", with_external_init)
        out = bob.commit(wire_format=PUBLIC)
    bob.discard_pending_commit()
    _rejects([alice, carol], out.commit, ProposalError, "ExternalInit")
    _still_works([alice, bob, carol])


def test_commit_without_path_but_with_a_remove(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sender-side patch: path_required() returns False while bob builds the commit, so
    the API produces a path-less Remove commit with a correct confirmation tag."""
    _w, alice, bob, carol = _trio()
    with monkeypatch.context() as m:
        m.setattr(commit_build, "path_required", lambda _: False)
        out = bob.commit(remove=[2], wire_format=PUBLIC)
    bob.discard_pending_commit()
    assert not out.summary.has_path
    _rejects([alice, carol], out.commit, CommitError, "no path")
    # An empty commit also needs a path (section 12.4).
    _rejects([alice, carol], craft_commit(bob, []), CommitError, "no path")
    _still_works([alice, bob, carol])


def test_commit_with_the_committers_own_update() -> None:
    """Crafted by bob: his own Update proposal, by reference, in his commit."""
    _, alice, bob, carol = _trio()
    event = deliver(bob.propose_update(), [alice, carol])[0]
    assert isinstance(event, ProposalReceived)
    message = craft_commit(bob, [ProposalOrRef.by_reference(event.reference)])
    _rejects([alice, carol], message, ProposalError, "from the committer")
    _still_works([alice, bob, carol])


def test_update_by_value_and_unknown_reference() -> None:
    """Crafted by bob: an Update carried by value; a reference nobody has seen."""
    w, alice, bob, carol = _trio()
    proposal = carol.propose_update()
    carol_update = deliver(proposal, [alice])[0]
    assert isinstance(carol_update, ProposalReceived)
    assert isinstance(carol_update.proposal, Update)
    message = craft_commit(bob, [carol_update.proposal])
    _rejects([alice], message, ProposalError, "by value")
    message = craft_commit(bob, [ProposalOrRef.by_reference(w.rng(32))])
    _rejects([alice, carol], message, ProposalError, "not seen")
    deliver(proposal, [bob])
    _still_works([alice, bob, carol])


# -- Welcome and GroupInfo (section 12.4.3) ---------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_tampered_welcome(suite_id: int) -> None:
    """Tampered: bit flips in encrypted_group_info, in the encrypted GroupSecrets
    (ciphertext and kem_output); the untouched Welcome still works afterwards."""
    w, alice, bob, carol = _trio(suite_id)
    bundle = w.key_package("dave")
    out = commit_and_deliver(alice, [bob, carol], add=[bundle.key_package.to_bytes()])
    assert out.welcome is not None
    welcome = MLSMessage.from_bytes(out.welcome).body
    assert isinstance(welcome, Welcome)
    (entry,) = welcome.secrets
    ct = entry.encrypted_group_secrets

    def with_secrets(kem_output: bytes, ciphertext: bytes) -> bytes:
        e = dataclasses.replace(
            entry, encrypted_group_secrets=HPKECiphertext(kem_output, ciphertext)
        )
        return MLSMessage(dataclasses.replace(welcome, secrets=(e,))).to_bytes()

    tampered = [
        MLSMessage(
            dataclasses.replace(
                welcome, encrypted_group_info=_flip(welcome.encrypted_group_info, i)
            )
        ).to_bytes()
        for i in (0, len(welcome.encrypted_group_info) // 2, len(welcome.encrypted_group_info) - 1)
    ]
    tampered += [
        with_secrets(ct.kem_output, _flip(ct.ciphertext, 0)),
        with_secrets(ct.kem_output, _flip(ct.ciphertext, len(ct.ciphertext) - 1)),
        with_secrets(_flip(ct.kem_output, 7), ct.ciphertext),
    ]
    for bad in tampered:
        with pytest.raises(WelcomeError):
            w.join(bad, bundle)
    # Not for us: another KeyPackage.
    with pytest.raises(WelcomeError, match="no entry"):
        w.join(out.welcome, w.key_package("dave"))
    with pytest.raises(DecodeError):
        w.join(out.welcome[:-1], bundle)
    dave = w.join(out.welcome, bundle)
    assert_agree([alice, bob, carol, dave])
    _still_works([alice, bob, carol, dave])


def _rewrap_welcome(
    w: World,
    welcome: Welcome,
    bundle: KeyPackageBundle,
    mutate: Callable[[GroupInfo], GroupInfo],
    *,
    flip_group_info: bool = False,
) -> bytes:
    """Open the Welcome with the joiner's keys, change its GroupInfo and seal it again
    (GroupInfo AEAD, then the GroupSecrets HPKE bound to the new ciphertext)."""
    suite = w.suite
    (entry,) = welcome.secrets
    ct = entry.encrypted_group_secrets
    secrets_bytes = suite.decrypt_with_label(
        bundle.init_priv, WELCOME_LABEL, welcome.encrypted_group_info, ct.kem_output, ct.ciphertext
    )
    joiner_secret = GroupSecrets.from_bytes(secrets_bytes).joiner_secret
    key, nonce = welcome_key_nonce(suite, welcome_secret(suite, joiner_secret, None))
    info = GroupInfo.from_bytes(suite.aead_decrypt(key, nonce, b"", welcome.encrypted_group_info))
    sealed = suite.aead_encrypt(key, nonce, b"", mutate(info).to_bytes())
    if flip_group_info:
        sealed = _flip(sealed, len(sealed) // 2)
    kem_output, ciphertext = suite.encrypt_with_label(
        bundle.key_package.init_key, WELCOME_LABEL, sealed, secrets_bytes, rng=w.rng
    )
    entry = EncryptedGroupSecrets(entry.new_member, HPKECiphertext(kem_output, ciphertext))
    return MLSMessage(Welcome(suite.id, (entry,), sealed)).to_bytes()


@pytest.mark.parametrize("suite_id", SUITES)
def test_welcome_with_a_bad_group_info(suite_id: int) -> None:
    """Tampered, re-sealed for the joiner so that only the GroupInfo is wrong: its
    ciphertext (AEAD), its signature (a stranger's key, or the signer index moved), its
    confirmation tag (re-signed by the real signer)."""
    w, alice, bob, carol = _trio(suite_id)
    bundle = w.key_package("dave")
    out = commit_and_deliver(alice, [bob, carol], add=[bundle.key_package.to_bytes()])
    assert out.welcome is not None
    welcome = MLSMessage.from_bytes(out.welcome).body
    assert isinstance(welcome, Welcome)
    alice_key = alice._signer.signature_private_key
    stranger, _ = w.suite.generate_signature_key_pair(w.rng)

    def keep(info: GroupInfo) -> GroupInfo:
        return info

    with pytest.raises(WelcomeError, match="GroupInfo"):
        w.join(_rewrap_welcome(w, welcome, bundle, keep, flip_group_info=True), bundle)
    for mutate in (
        lambda info: sign_group_info(w.suite, info, stranger),
        lambda info: sign_group_info(w.suite, dataclasses.replace(info, signer=1), alice_key),
    ):
        with pytest.raises(SignatureError):
            w.join(_rewrap_welcome(w, welcome, bundle, mutate), bundle)

    def bad_tag(info: GroupInfo) -> GroupInfo:
        bad = dataclasses.replace(info, confirmation_tag=_flip(info.confirmation_tag, 3))
        return sign_group_info(w.suite, bad, alice_key)

    with pytest.raises(ConfirmationTagError):
        w.join(_rewrap_welcome(w, welcome, bundle, bad_tag), bundle)
    # The re-sealing itself is faithful: unchanged, the joiner gets in.
    dave = w.join(_rewrap_welcome(w, welcome, bundle, keep), bundle)
    _still_works([alice, bob, carol, dave])


@pytest.mark.parametrize("suite_id", SUITES)
def test_group_info_with_bad_signature_for_external_join(suite_id: int) -> None:
    """Tampered GroupInfo: flipped signature, wrong signer index, changed content, or
    re-signed by a key that is not the signer's."""
    w, alice, bob, carol = _trio(suite_id)
    message = MLSMessage.from_bytes(bob.group_info())
    info = message.body
    assert isinstance(info, GroupInfo) and info.signer == 1
    stranger, _ = w.suite.generate_signature_key_pair(w.rng)
    bad_infos = [
        dataclasses.replace(info, signature=_flip(info.signature, 2)),
        dataclasses.replace(info, signer=0),
        dataclasses.replace(
            info,
            group_context=dataclasses.replace(
                info.group_context, epoch=info.group_context.epoch + 1
            ),
        ),
        sign_group_info(w.suite, info, stranger),
    ]
    before = [snapshot(g) for g in (alice, bob, carol)]
    for bad in bad_infos:
        with pytest.raises(SignatureError):
            w.join_external(MLSMessage(bad).to_bytes(), "dave")
    with pytest.raises(ValidationError, match="external_pub"):
        w.join_external(bob.group_info(external_pub=False), "dave")
    assert [snapshot(g) for g in (alice, bob, carol)] == before
    dave, commit = w.join_external(MLSMessage(info).to_bytes(), "dave")
    deliver(commit, [alice, bob, carol])
    _still_works([alice, bob, carol, dave])


def test_tampered_external_commit() -> None:
    """Tampered external commits (new_member_commit sender, no membership tag): a
    flipped confirmation tag, and another joiner's ExternalInit kem_output re-signed
    with the joiner's key; both fail the confirmation tag (the init_secret differs)."""
    w, alice, bob, carol = _trio()
    info = alice.group_info()
    dave, commit = w.join_external(info, "dave")
    _, other = w.join_external(info, "erin")
    pub = _public(commit)
    assert pub.membership_tag is None and pub.auth.confirmation_tag is not None
    flipped = PublicMessage(
        pub.content,
        FramedContentAuthData(pub.auth.signature, _flip(pub.auth.confirmation_tag, 4)),
        None,
    )
    _rejects([alice, bob], MLSMessage(flipped).to_bytes(), ConfirmationTagError)

    body = pub.content.content
    other_body = _public(other).content.content
    assert isinstance(body, Commit) and isinstance(other_body, Commit)
    swapped = Commit((other_body.proposals[0], *body.proposals[1:]), body.path)
    content = dataclasses.replace(pub.content, content=swapped)
    auth = framing.sign_content(
        w.suite,
        PUBLIC,
        content,
        dave._signer.signature_private_key,
        alice.group_context,
        pub.auth.confirmation_tag,
    )
    resigned = MLSMessage(PublicMessage(auth.content, auth.auth, None)).to_bytes()
    _rejects([alice, bob], resigned, ConfirmationTagError)
    # A signature by someone else than the UpdatePath leaf's key.
    stranger, _ = w.suite.generate_signature_key_pair(w.rng)
    auth = framing.sign_content(
        w.suite, PUBLIC, pub.content, stranger, alice.group_context, pub.auth.confirmation_tag
    )
    _rejects(
        [alice, bob],
        MLSMessage(PublicMessage(auth.content, auth.auth, None)).to_bytes(),
        SignatureError,
    )
    deliver(commit, [alice, bob, carol])
    _still_works([alice, bob, carol, dave])


# -- PSKs and API misuse -----------------------------------------------------------------


def test_psk_unknown_to_a_member_or_joiner() -> None:
    w, alice, bob, carol = _trio()
    psk_id, psk = b"only alice and bob", w.rng(32)
    alice.add_external_psk(psk_id, psk)
    bob.add_external_psk(psk_id, psk)
    with pytest.raises(ProposalError, match="does not hold"):
        carol.commit(psks=[PreSharedKeyID.external(psk_id, w.rng(32))])
    assert not carol.has_pending_commit
    pid = PreSharedKeyID.external(psk_id, w.rng(32))
    bundle = w.key_package("dave")
    out = alice.commit(psks=[pid], add=[bundle.key_package.to_bytes()])
    _rejects([carol], out.commit, ProposalError, "does not hold")
    with pytest.raises(WelcomeError, match="unknown PSK"):
        w.join(out.welcome, bundle)
    with pytest.raises(MLSError):
        w.join(out.welcome, bundle, psks={psk_id: w.rng(32)})  # wrong value
    alice.merge_pending_commit()
    deliver(out.commit, [bob])
    carol.add_external_psk(psk_id, psk)
    deliver(out.commit, [carol])
    dave = w.join(out.welcome, bundle, psks={psk_id: psk})
    _still_works([alice, bob, carol, dave])


def test_psk_with_a_different_value() -> None:
    """The PSK enters the key schedule: same psk_id, other value -> other epoch."""
    w, alice, bob, carol = _trio()
    alice.add_external_psk(b"psk", bytes(range(32)))
    bob.add_external_psk(b"psk", bytes(range(32)))
    carol.add_external_psk(b"psk", bytes(32))
    out = alice.commit(psks=[PreSharedKeyID.external(b"psk", w.rng(32))])
    alice.merge_pending_commit()
    deliver(out.commit, [bob])
    _rejects([carol], out.commit, ConfirmationTagError)
    carol.add_external_psk(b"psk", bytes(range(32)))
    deliver(out.commit, [carol])
    _still_works([alice, bob, carol])


def test_api_misuse_is_a_state_error() -> None:
    _w, alice, bob, carol = _trio()
    with pytest.raises(StateError):
        alice.merge_pending_commit()
    with pytest.raises(StateError):
        alice.propose_remove(0)
    alice.commit()
    with pytest.raises(StateError):
        alice.commit()
    alice.discard_pending_commit()
    own = alice.send(b"echo")
    before = snapshot(alice)
    with pytest.raises(StateError):
        alice.process(own)
    assert snapshot(alice) == before
    assert isinstance(bob.process(own), ApplicationMessage)
    assert isinstance(carol.process(own), ApplicationMessage)
    _still_works([alice, bob, carol])


def test_removed_member_cannot_act() -> None:
    _w, alice, bob, carol = _trio()
    out = commit_and_deliver(alice, [bob, carol], remove=[2])
    assert isinstance(out.summary.removed[0].leaf_index, int)
    assert not carol.active
    for action in (
        lambda: carol.send(b"x"),
        lambda: carol.commit(),
        lambda: carol.propose_update(),
        lambda: carol.process(alice.send(b"x")),
    ):
        with pytest.raises(StateError):
            action()
    _still_works([alice, bob])


def test_resync_must_be_an_acceptable_successor() -> None:
    """Section 12.4.3.2: an external commit removing a leaf (resync) is judged by the
    credential validator as that leaf's successor; mallory cannot 'resync' bob away."""

    def same_identity(leaf: LeafNode, old: LeafNode | None) -> bool:
        return old is None or leaf.credential.identity == old.credential.identity

    w = World(config=GroupConfig(credential_validator=same_identity))
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    _, hostile = w.join_external(alice.group_info(), "mallory", resync_leaf=1)
    _rejects([alice, bob, carol], hostile, CommitError, "successor")
    new_bob, resync = w.join_external(alice.group_info(), "bob", resync_leaf=1)
    deliver(resync, [alice, carol])
    _still_works([alice, new_bob, carol])


def test_wrong_ratchet_tree_out_of_band() -> None:
    """The Welcome carries no tree; the one supplied must match the tree hash."""
    w = World(config=GroupConfig(ratchet_tree_in_welcome=False))
    alice = w.create("alice")
    bundle = w.key_package("bob")
    out = alice.commit(add=[bundle.key_package.to_bytes()])
    alice.merge_pending_commit()
    stale = alice.ratchet_tree()
    commit_and_deliver(alice, [w.join(out.welcome, bundle, ratchet_tree=stale)])
    bundle = w.key_package("carol")
    out = alice.commit(add=[bundle.key_package.to_bytes()])
    alice.merge_pending_commit()
    with pytest.raises(TreeError, match="tree hash"):
        w.join(out.welcome, bundle, ratchet_tree=stale)
    for malformed in (b"", b"\x00", alice.ratchet_tree()[:-1]):
        with pytest.raises(DecodeError):
            w.join(out.welcome, bundle, ratchet_tree=malformed)
    carol = w.join(out.welcome, bundle, ratchet_tree=alice.ratchet_tree())
    assert carol.epoch_authenticator == alice.epoch_authenticator


def test_group_info_with_a_stale_tree_signed_by_a_member() -> None:
    """Tampered: bob signs (with his real key) a GroupInfo carrying last epoch's tree."""
    w, alice, bob, carol = _trio()
    stale = RatchetTree.from_bytes(w.suite, alice.ratchet_tree())
    commit_and_deliver(alice, [bob, carol])
    info = MLSMessage.from_bytes(bob.group_info()).body
    assert isinstance(info, GroupInfo)
    exts = tuple(
        stale.to_extension() if e.extension_type == ExtensionType.ratchet_tree else e
        for e in info.extensions
    )
    bad = sign_group_info(
        w.suite, dataclasses.replace(info, extensions=exts), bob._signer.signature_private_key
    )
    with pytest.raises(TreeError, match="tree hash"):
        w.join_external(MLSMessage(bad).to_bytes(), "dave")
    _still_works([alice, bob, carol])


def test_corrupted_saved_state() -> None:
    w, alice, bob, carol = _trio()
    saved = alice.to_bytes()
    for bad in (b"", b"{}", b'{"v": 2}', saved[:-5], saved.replace(b'"v": 1', b'"v": "1"')):
        with pytest.raises(ValidationError):
            w.restore(bad)
    # Keys that do not belong to the claimed leaf.
    with pytest.raises(TreeError):
        w.restore(saved.replace(b'"own_leaf": 0', b'"own_leaf": 1'))
    assert snapshot(w.restore(saved)) == snapshot(alice)
    _still_works([alice, bob, carol])
