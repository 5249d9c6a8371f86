"""Who records is announced as an authenticated MLS application message (the ``rec``
switch of ``media``, in every Hello and in a host's directory): everyone, newcomers
too, is told; a mute or a camera switch keeps it; bad values are refused with a typed
error. Counted in events (issue 15 requirement 1)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from meeting_harness import Net, host_and_bob

from clave.meeting import MemberMedia
from clave.meeting.app_messages import (
    REC,
    Directory,
    MediaState,
    decode_app_message,
    encode_app_message,
    media_bits,
    media_of_bits,
)
from clave.meeting.errors import AppMessageError


def recording(events: list[MemberMedia]) -> list[tuple[str, bool]]:
    return [(e.name, e.recording) for e in events]


def test_a_recorder_is_announced_to_everyone_and_a_mute_keeps_it() -> None:
    net = Net()
    alice, bob = host_and_bob(net)
    alice.clear()
    bob.meeting.set_recording(True)
    net.pump()
    assert recording(alice.of(MemberMedia)) == [("Bob", True)]
    assert bob.meeting.recording
    bob.meeting.set_media_state(mic=False, cam=True)  # the glass's switches: rec stays on
    net.pump()
    assert alice.of(MemberMedia)[-1] == MemberMedia(
        bob.meeting.own_leaf, "Bob", False, True, False, True
    )
    bob.meeting.set_recording(False)
    net.pump()
    assert recording(alice.of(MemberMedia))[-1] == ("Bob", False)
    assert not bob.meeting.recording


def test_a_newcomer_learns_who_records() -> None:
    net = Net()
    alice, bob = host_and_bob(net)
    bob.meeting.set_recording(True)
    net.pump()
    carol = net.guest("Carol")
    net.admit_via_lobby(alice, carol)
    net.pump()
    assert carol.meeting.media_states[bob.meeting.own_leaf].rec
    assert ("Bob", True) in recording(carol.of(MemberMedia))


def test_recording_rides_in_the_directory_bits() -> None:
    state = MediaState(mic=True, cam=False, rec=True)
    assert media_bits(state) & REC
    assert media_of_bits(media_bits(state)) == state
    directory = Directory(conns=((0, 7),), media=((0, media_bits(state)),))
    assert decode_app_message(encode_app_message(directory)) == directory


def test_a_member_not_recording_sends_no_rec_field() -> None:
    wire = msgspec.msgpack.decode(encode_app_message(MediaState(mic=True, cam=True)))
    assert "rec" not in wire  # nothing new on the wire unless someone records


@pytest.mark.parametrize(
    "bad",
    [
        {"t": "media", "mic": True, "cam": True, "rec": "yes"},
        {"t": "media", "mic": True, "cam": True, "rec": 1},
        {"t": "dir", "conns": [[0, 7]], "media": [[0, 16]]},
    ],
)
def test_bad_recording_values_are_typed_errors(bad: dict[str, object]) -> None:
    with pytest.raises(AppMessageError):
        decode_app_message(msgspec.msgpack.encode(bad))


def test_the_protocol_document_shows_the_media_message_as_encoded() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    for state in (MediaState(mic=False, cam=True), MediaState(mic=False, cam=False, rec=True)):
        assert f"`{encode_app_message(state).hex()}`" in doc


def test_a_recorder_is_never_a_successor() -> None:
    """A recording bot is not someone to hand the meeting to: the host drops it from the
    successors once it announces a recording and picks others (counted in roles)."""
    net = Net()
    alice, bob = host_and_bob(net)
    roles = {r.name: r.role for r in alice.meeting.roster}
    assert roles["Bob"] == "successor"  # the longest present guest, before recording
    bob.meeting.set_recording(True)
    net.pump()
    for name in ("Carol", "Dave"):
        guest = net.guest(name)
        net.admit_via_lobby(alice, guest)
        net.pump()
    roles = {r.name: r.role for r in alice.meeting.roster}
    assert roles == {
        "Alice": "owner",
        "Bob": "member",
        "Carol": "successor",
        "Dave": "successor",
    }, roles
    assert {r.role for r in bob.meeting.roster if r.is_self} == {"member"}
