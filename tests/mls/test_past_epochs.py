"""Late application messages of past epochs, kept inside Group (RFC 9420 sections 9.2, 14, 15.3).

With ``GroupConfig.max_past_epochs`` set, a member keeps the application
secrets of that many epochs before the current one: a message sent in such an
epoch and delivered after the commit that ended it still decrypts (once), and
nothing else of that epoch is accepted. The default (0) keeps none, as before.
"""

from __future__ import annotations

import json

import pytest
from group_helpers import PRIVATE, PUBLIC, World, assert_agree, commit_and_deliver, deliver

from clave.mls.errors import EpochError, GenerationError, StateError, ValidationError
from clave.mls.events import ApplicationMessage
from clave.mls.group import Group, GroupConfig
from clave.mls.structs import WireFormat

KEEP_ONE = GroupConfig(max_past_epochs=1)


def _trio(config: GroupConfig = KEEP_ONE) -> tuple[World, Group, Group, Group]:
    w = World(config=config)
    alice, bob, carol = w.group_of(["alice", "bob", "carol"])
    return w, alice, bob, carol


def _app(event: object) -> ApplicationMessage:
    assert isinstance(event, ApplicationMessage)
    return event


def test_a_late_message_of_the_previous_epoch_decrypts_once() -> None:
    _w, alice, bob, carol = _trio()
    late = bob.send(b"sent in epoch 1")
    commit_and_deliver(alice, [bob, carol])
    assert carol.epoch == 2 and carol.past_epochs == (1,)
    event = _app(carol.process(late))
    assert (event.sender, event.data, event.epoch) == (bob.own_leaf_index, b"sent in epoch 1", 1)
    with pytest.raises(GenerationError):
        carol.process(late)  # its key was consumed (section 9.2)
    # The current epoch is untouched by reading the past one.
    assert_agree([alice, bob, carol])
    assert _app(carol.process(bob.send(b"now"))).epoch == 2


def test_the_committer_reads_late_messages_of_the_epoch_it_ended() -> None:
    _w, alice, bob, carol = _trio()
    late = bob.send(b"before alice's commit")
    out = alice.commit()
    alice.merge_pending_commit()
    deliver(out.commit, [bob, carol])
    assert _app(alice.process(late)).data == b"before alice's commit"


def test_a_member_removed_since_is_still_a_member_of_the_past_epoch() -> None:
    _w, alice, bob, carol = _trio()
    late = bob.send(b"last words")
    commit_and_deliver(alice, [carol], remove=[bob.own_leaf_index])
    assert [m.leaf_index for m in carol.roster()] == [0, 2]
    assert _app(carol.process(late)).sender == 1


def test_only_max_past_epochs_are_kept() -> None:
    for keep in (1, 2):
        _w, alice, bob, carol = _trio(GroupConfig(max_past_epochs=keep))
        late = bob.send(b"epoch 1")
        commit_and_deliver(alice, [bob, carol])
        commit_and_deliver(alice, [bob, carol])
        assert carol.past_epochs == (1, 2)[-keep:]
        if keep == 2:
            assert _app(carol.process(late)).epoch == 1
        else:
            with pytest.raises(EpochError, match="epoch 1"):
                carol.process(late)


def test_by_default_no_past_epoch_is_kept() -> None:
    _w, alice, bob, carol = _trio(GroupConfig())
    late = bob.send(b"epoch 1")
    commit_and_deliver(alice, [bob, carol])
    assert carol.past_epochs == ()
    with pytest.raises(EpochError, match="message is for epoch 1, the group is at 2"):
        carol.process(late)


def test_forgetting_past_epochs() -> None:
    _w, alice, bob, carol = _trio(GroupConfig(max_past_epochs=3))
    lates = []
    for _ in range(3):
        lates.append(bob.send(b"late"))
        commit_and_deliver(alice, [bob, carol])
    assert carol.past_epochs == (1, 2, 3)
    carol.forget_past_epochs(before=3)
    assert carol.past_epochs == (3,)
    with pytest.raises(EpochError):
        carol.process(lates[0])
    assert _app(carol.process(lates[2])).epoch == 3
    carol.forget_past_epochs()
    assert carol.past_epochs == ()
    with pytest.raises(EpochError):
        carol.process(lates[1])


@pytest.mark.parametrize("wire_format", [PUBLIC, PRIVATE], ids=["public", "private"])
def test_handshake_messages_of_a_past_epoch_are_still_refused(wire_format: WireFormat) -> None:
    _w, alice, bob, carol = _trio()
    proposal = bob.propose_remove(alice.own_leaf_index, wire_format=wire_format)
    stale = bob.commit(wire_format=wire_format)
    bob.discard_pending_commit()
    commit_and_deliver(alice, [bob, carol])
    assert carol.past_epochs == (1,)
    for message in (proposal, stale.commit):
        with pytest.raises(EpochError, match="epoch 1"):
            carol.process(message)


def test_our_own_message_of_a_past_epoch_is_named() -> None:
    _w, alice, bob, carol = _trio()
    mine = carol.send(b"mine")
    commit_and_deliver(alice, [bob, carol])
    with pytest.raises(StateError, match="our own message"):
        carol.process(mine)


def test_past_epochs_are_saved_with_the_group() -> None:
    w, alice, bob, carol = _trio()
    late = bob.send(b"survives a restart")
    commit_and_deliver(alice, [bob, carol])
    saved = carol.to_bytes()
    assert len(json.loads(saved)["past"]) == 1
    restored = w.restore(saved)
    assert restored.past_epochs == (1,)
    assert _app(restored.process(late)).data == b"survives a restart"
    # Restored with the default configuration, none is kept.
    plain = Group.from_bytes(saved, rng=w.rng, now=lambda: 0)
    assert plain.past_epochs == ()


def test_without_past_epochs_the_saved_state_is_unchanged() -> None:
    _w, alice, bob, carol = _trio(GroupConfig())
    commit_and_deliver(alice, [bob, carol])
    assert "past" not in json.loads(carol.to_bytes())


def test_the_old_way_a_saved_copy_of_the_previous_epoch_still_works() -> None:
    """Callers that kept a serialised copy of the group to read late messages."""
    w, alice, bob, carol = _trio(GroupConfig())
    copy = w.restore(carol.to_bytes())
    late = bob.send(b"read by the copy")
    commit_and_deliver(alice, [bob, carol])
    assert _app(copy.process(late)).epoch == 1


def test_a_malformed_saved_past_epoch_is_refused() -> None:
    w, alice, bob, carol = _trio()
    commit_and_deliver(alice, [bob, carol])
    state = json.loads(carol.to_bytes())
    del state["past"][0]["secret_tree"]
    with pytest.raises(ValidationError, match="malformed group state"):
        w.restore(json.dumps(state).encode())
