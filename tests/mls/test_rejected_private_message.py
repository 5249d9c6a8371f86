"""What a rejected PrivateMessage changes, exactly as the Group docstrings state it.

A rejected message leaves the group's epoch, tree, roster, transcript, key schedule
and pending proposals as they were (the snapshot of group_helpers). The one state it
can move, by design of the secret tree (RFC 9420 section 9): once a PrivateMessage's
sender data decrypts, the receiver ratchets that sender's chain forward to the
generation the sender data names *before* the content is decrypted, so a message
rejected afterwards (content corrupted in transit, bad signature, ...) leaves the
ratchet advanced. The key of that generation and of the skipped ones are retained,
not consumed: the genuine message and earlier ones still decrypt. Skipped keys beyond
the retention window are deleted, as the genuine message would have deleted them. A
message whose sender data does not decrypt changes nothing.
"""

from __future__ import annotations

import pytest
from group_helpers import PRIVATE, World, protect, sign_content, snapshot

from clave.mls.errors import CryptoError, GenerationError, SignatureError
from clave.mls.events import ApplicationMessage
from clave.mls.group import Group
from clave.mls.secret_tree import DEFAULT_MAX_RETAINED_KEYS, RatchetType
from clave.mls.structs import MLSMessage, PrivateMessage

APP = RatchetType.APPLICATION


def _pair() -> tuple[Group, Group]:
    alice, bob = World().group_of(["alice", "bob"])
    return alice, bob


def _position(receiver: Group, sender: Group) -> int:
    """The next generation ``receiver``'s ratchet for ``sender``'s application messages
    will produce."""
    return receiver._epoch.secret_tree.next_generation(sender.own_leaf_index, APP)


def _corrupt(message: bytes, index: int) -> bytes:
    """Flip one bit of the PrivateMessage's content ciphertext at ``index``."""
    mls = MLSMessage.from_bytes(message)
    body = mls.body
    assert isinstance(body, PrivateMessage)
    ct = bytearray(body.ciphertext)
    ct[index] ^= 0x01
    bad = PrivateMessage(
        body.group_id,
        body.epoch,
        body.content_type,
        body.authenticated_data,
        body.encrypted_sender_data,
        bytes(ct),
    )
    return MLSMessage(bad).to_bytes()


def _opens(receiver: Group, message: bytes, text: bytes) -> None:
    event = receiver.process(message)
    assert isinstance(event, ApplicationMessage) and event.data == text, event


def test_corrupted_content_with_intact_sender_data_advances_the_ratchet_only() -> None:
    alice, bob = _pair()
    sent = [alice.send(b"message %d" % i) for i in range(6)]
    assert _position(bob, alice) == 0
    before = snapshot(bob)
    # The last byte is in the AEAD tag, past the sample the sender-data key comes from.
    bad = _corrupt(sent[5], -1)
    with pytest.raises(CryptoError, match="content"):
        bob.process(bad)
    assert snapshot(bob) == before  # epoch, tree, roster, transcript, secrets, proposals
    assert _position(bob, alice) == 6  # ... but Alice's ratchet moved past generation 5
    # The keys were retained, not consumed: the genuine messages all still decrypt, in
    # any order, and each exactly once.
    _opens(bob, sent[5], b"message 5")
    for i in (2, 0, 4, 1, 3):
        _opens(bob, sent[i], b"message %d" % i)
    with pytest.raises(GenerationError):
        bob.process(sent[5])
    with pytest.raises(GenerationError):  # the corrupted copy again: its key is gone now
        bob.process(bad)
    _opens(bob, alice.send(b"message 6"), b"message 6")


def test_corrupted_sender_data_sample_changes_nothing() -> None:
    alice, bob = _pair()
    sent = [alice.send(b"message %d" % i) for i in range(3)]
    assert _position(bob, alice) == 0
    before = snapshot(bob)
    # The first bytes of the ciphertext are the sample that keys the sender data.
    with pytest.raises(CryptoError, match="sender data"):
        bob.process(_corrupt(sent[2], 0))
    assert snapshot(bob) == before
    assert _position(bob, alice) == 0
    for i in range(3):
        _opens(bob, sent[i], b"message %d" % i)


def test_a_message_rejected_after_decryption_also_leaves_the_ratchet_advanced() -> None:
    """Bad signature: sender data and content decrypt (keys of Alice's epoch), the
    signature check fails; the generation's key stays retained, so the same message is
    refused again for its signature, not as a replay."""
    alice, bob = _pair()
    stranger, _ = alice.suite.generate_signature_key_pair(World(seed=9).rng)
    alice.send(b"generation 0")  # never delivered
    _, auth = sign_content(alice, b"forged", wire_format=PRIVATE, signature_priv=stranger)
    forged = protect(alice, auth)  # generation 1
    before = snapshot(bob)
    with pytest.raises(SignatureError):
        bob.process(forged)
    assert snapshot(bob) == before
    assert _position(bob, alice) == 2
    with pytest.raises(SignatureError):
        bob.process(forged)


def test_skipped_keys_beyond_the_retention_window_are_deleted() -> None:
    """A corrupted message far ahead evicts the oldest skipped keys, exactly as the
    genuine one would: generations more than ``max_retained_keys`` behind it are gone."""
    alice, bob = _pair()
    n = DEFAULT_MAX_RETAINED_KEYS + 10
    sent = [alice.send(b"m%d" % i) for i in range(n)]
    with pytest.raises(CryptoError, match="content"):
        bob.process(_corrupt(sent[-1], -1))
    assert _position(bob, alice) == n
    evicted = n - DEFAULT_MAX_RETAINED_KEYS  # generations 0 .. evicted-1
    for i in (0, evicted - 1):
        with pytest.raises(GenerationError):
            bob.process(sent[i])
    for i in (evicted, n - 2, n - 1):
        _opens(bob, sent[i], b"m%d" % i)
