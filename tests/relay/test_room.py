"""Rooms without sockets: admission, commit ordering, rotation, routing, fan-out."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

from clave.relay import RelayConfig
from clave.relay.limits import TokenBucket
from clave.relay.queues import OutQueue
from clave.relay.room import BAD_TOKEN, HANDLERS, Peer, Room
from clave.relay.rooms import Rooms
from clave.wire import (
    AppFrom,
    AppMessage,
    Commit,
    CommitAccepted,
    CommitFrom,
    Error,
    ErrorCode,
    Joined,
    JoinRequest,
    JoinRequestFrom,
    KeyframeRequest,
    KeyframeWanted,
    Manifest,
    ManifestFrom,
    PeerJoined,
    PeerLeft,
    RelayMessage,
    Reopen,
    ReplyFrom,
    ReplyTo,
    Rotate,
    Rotated,
    StreamKind,
    Subscribe,
    WelcomeFor,
    WelcomeTo,
    credential_hash,
    decode_relay,
    encode_media,
    room_id_for_token,
)

CONFIG = RelayConfig(commit_burst=1000, room_commit_burst=1000)
TOKEN = b"t" * 32
ROOM = room_id_for_token(TOKEN)
CRED = [bytes([i]) * 32 for i in range(10)]
"""Epoch credentials of successive epochs."""


def H(cred: bytes) -> bytes:
    return credential_hash(cred)


def peer(conn: int, config: RelayConfig = CONFIG) -> Peer:
    bucket = TokenBucket(config.commit_rate, config.commit_burst, 0.0)
    return Peer(conn, OutQueue(10**6, 4 * 10**6, 16 * 2**20), bucket)


def inbox(p: Peer) -> list[RelayMessage | bytes]:
    """Everything queued for ``p``: control decoded, media as raw bytes."""
    out: list[RelayMessage | bytes] = []
    while (data := p.queue.pop()) is not None:
        out.append(data if data[1] == 0x4D else decode_relay(memoryview(data)[2:]))
    return out


def room_of(
    *conns: int, seed: bytes | None = H(CRED[0]), config: RelayConfig = CONFIG
) -> tuple[Room, list[Peer]]:
    """A room whose first peer seeded the slot of ``seed``; inboxes emptied."""
    room = Room(ROOM, hashlib.sha256(TOKEN).digest(), 1, config, 0.0)
    peers = [peer(c, config) for c in conns]
    for i, p in enumerate(peers):
        room.add(p, seed if i == 0 else None)
    for p in peers:
        inbox(p)
    return room, peers


def commit(epoch: int, data: bytes = b"commit") -> Commit:
    return Commit(cred=CRED[epoch], next=H(CRED[epoch + 1]), data=data)


def codes(messages: list[RelayMessage | bytes]) -> list[ErrorCode]:
    return [m.code for m in messages if isinstance(m, Error)]


def test_join_tells_the_others_and_announces_the_newcomer() -> None:
    room, (a, b) = room_of(1, 2)
    c = peer(3)
    room.add(c)
    assert inbox(c) == [Joined(conn=3, peers=[1, 2])]
    assert inbox(a) == inbox(b) == [PeerJoined(conn=3)]


def test_cred_hash_registers_only_until_a_commit_is_ordered() -> None:
    room, _ = room_of(1, seed=None)
    assert len(room.slots) == 0  # created empty by a joiner
    host = peer(2)
    room.add(host, H(CRED[0]))
    assert room.slots.is_open(H(CRED[0])) and room.slots.owner(H(CRED[0])) == 2
    room.commit(host, commit(0, b"first"), 0.0)
    late = peer(3)
    room.add(late, H(b"x" * 32))  # ordering has begun: ignored
    assert H(b"x" * 32) not in room.slots and len(room.slots) == 2


def test_a_member_coming_back_is_replayed_what_it_missed_before_joined() -> None:
    room, (a, b) = room_of(1, 2)
    room.commit(a, commit(0, b"commit-0"), 0.0)
    room.remove(b, "gone")  # b's connection drops before it saw commit-1
    room.commit(a, commit(1, b"commit-1"), 0.0)
    inbox(a)
    back = peer(3)
    room.add(back, H(CRED[1]))  # b, at epoch 1, comes back on a new connection
    assert inbox(back) == [CommitFrom(sender=1, data=b"commit-1"), Joined(conn=3, peers=[1])]
    current = peer(4)
    room.add(current, H(CRED[2]))  # up to date: nothing to replay
    assert inbox(current) == [Joined(conn=4, peers=[1, 3])]


def test_first_commit_wins_its_epoch_and_the_second_is_stale() -> None:
    room, (a, b, c) = room_of(1, 2, 3)
    room.commit(a, commit(0, b"commit-a"), 0.0)
    room.commit(b, commit(0, b"commit-b"), 0.0)
    assert inbox(a) == [CommitAccepted()]
    assert inbox(b) == [
        CommitFrom(sender=1, data=b"commit-a"),
        Error(ErrorCode.stale_epoch, "another commit was ordered for that epoch"),
    ]
    assert inbox(c) == [CommitFrom(sender=1, data=b"commit-a")]
    # b catches up and commits for the next epoch, whose slot a's commit opened
    room.commit(b, commit(1, b"commit-b2"), 0.0)
    assert inbox(b) == [CommitAccepted()]
    assert inbox(a) == inbox(c) == [CommitFrom(sender=2, data=b"commit-b2")]
    assert room.slots.owner(H(CRED[2])) == 2


def test_commit_with_unknown_credential_is_refused_and_forwarded_to_nobody() -> None:
    room, (a, b) = room_of(1, 2)
    room.commit(b, Commit(cred=os.urandom(32), next=os.urandom(32), data=b"junk"), 0.0)
    assert codes(inbox(b)) == [ErrorCode.bad_credential]
    assert inbox(a) == []
    assert len(room.slots) == 1


def test_reopen_opens_a_consumed_slot_for_an_honest_commit() -> None:
    room, (host, evil, c) = room_of(1, 2, 3)
    room.commit(evil, Commit(cred=CRED[0], next=H(b"junk" * 8), data=b"junk"), 0.0)
    inbox(host), inbox(c)
    room.commit(host, commit(0, b"honest"), 0.0)
    assert codes(inbox(host)) == [ErrorCode.stale_epoch]
    room.reopen(c, Reopen(cred=CRED[0]), 0.0)
    room.reopen(host, Reopen(cred=CRED[0]), 0.0)  # already open: nothing happens
    room.reopen(host, Reopen(cred=os.urandom(32)), 0.0)  # unknown: ignored
    assert inbox(c) == [] and inbox(host) == []
    room.commit(host, commit(0, b"honest"), 0.0)
    assert inbox(host) == [CommitAccepted()]
    assert inbox(c) == [CommitFrom(sender=1, data=b"honest")]


def test_commit_budget_per_connection_and_per_room() -> None:
    config = RelayConfig(commit_burst=2, commit_rate=1, room_commit_burst=3, room_commit_rate=1)
    room, (a, b) = room_of(1, 2, config=config)
    room.commit(a, commit(0), 0.0)
    room.commit(a, commit(1), 0.0)
    room.commit(a, commit(2), 0.0)  # a's bucket is empty
    assert inbox(a) == [
        CommitAccepted(),
        CommitAccepted(),
        Error(ErrorCode.rate_limited, "commit rate limit"),
    ]
    room.commit(b, commit(2), 0.0)  # the room's third token
    room.commit(b, commit(3), 0.5)  # b has a token, the room has none
    assert codes(inbox(b)) == [ErrorCode.rate_limited]
    assert room.slots.is_open(H(CRED[3]))  # the refused commit changed nothing
    room.commit(b, commit(3), 1.0)  # a second later, one token each
    assert inbox(b)[-1] == CommitAccepted()


def test_refusals_do_not_spend_the_room_budget() -> None:
    config = RelayConfig(commit_burst=1000, room_commit_burst=1, room_commit_rate=0.001)
    room, peers = room_of(*range(1, 12), config=config)
    host, outsiders = peers[0], peers[1:]
    for outsider in outsiders:
        for _ in range(10):
            room.commit(outsider, Commit(cred=os.urandom(32), next=bytes(32), data=b"x"), 0.0)
            room.reopen(outsider, Reopen(cred=os.urandom(32)), 0.0)
    room.commit(host, commit(0), 0.0)
    assert inbox(host)[-1] == CommitAccepted()


def test_owner_limit_refuses_without_changing_anything() -> None:
    config = RelayConfig(commit_burst=1000, room_commit_burst=1000, max_open_epochs=2)
    room, (a, b) = room_of(1, 2, config=config)
    # b consumes a's slot three times (reopened by a), opening slots of its own
    for i in range(2):
        room.commit(b, Commit(cred=CRED[0], next=H(bytes([100 + i]) * 32), data=b"j"), 0.0)
        room.reopen(a, Reopen(cred=CRED[0]), 0.0)
    assert room.slots.open_count(2) == 2
    room.commit(b, Commit(cred=CRED[0], next=H(b"z" * 32), data=b"j"), 0.0)
    assert inbox(b)[-1] == Error(ErrorCode.rate_limited, "too many open epochs")
    assert room.slots.is_open(H(CRED[0])) and H(b"z" * 32) not in room.slots


def test_rotate_moves_the_room_drops_and_tells_the_others() -> None:
    rooms = Rooms(CONFIG)
    room = rooms.enter(ROOM, TOKEN, 0.0)
    assert isinstance(room, Room)
    dropped: list[int] = []
    a, b, c = peer(1), peer(2), peer(3)
    c.on_drop = lambda: dropped.append(3)
    room.add(a, H(CRED[0]))
    room.add(b)
    room.add(c)
    for p in (a, b, c):
        inbox(p)
    new_token = os.urandom(32)
    room.rotate(a, Rotate(cred=CRED[0], token=new_token, drop=[3, 3, 1, 99]), 0.0)
    assert room.id == room_id_for_token(new_token)
    assert room.token_hash == hashlib.sha256(new_token).digest()
    assert rooms.get(room.id) is room and rooms.get(ROOM) is None
    assert inbox(c) == [Error(ErrorCode.rotated, "the meeting's invitation was replaced")]
    assert dropped == [3] and c.room is None and set(room.peers) == {1, 2}
    assert inbox(a) == [PeerLeft(conn=3, reason="removed")]
    assert inbox(b) == [PeerLeft(conn=3, reason="removed"), Rotated(by=1)]
    # the old token is now told that the invitation was replaced (no empty room of its
    # own), a wrong token for the old id gets the usual refusal
    assert rooms.enter(ROOM, TOKEN, 0.0) == Error(
        ErrorCode.rotated, "the meeting's invitation was replaced"
    )
    assert rooms.enter(ROOM, os.urandom(32), 0.0) == BAD_TOKEN
    assert rooms.get(ROOM) is None and len(rooms) == 1
    assert rooms.enter(room.id, new_token, 0.0) is room


def test_replaced_invitations_are_remembered_up_to_a_bound() -> None:
    rooms = Rooms(replace(CONFIG, replaced_kept=1))
    room = rooms.enter(ROOM, TOKEN, 0.0)
    assert isinstance(room, Room)
    room.add(peer(1), H(CRED[0]))
    second, third = os.urandom(32), os.urandom(32)
    room.rotate(room.peers[1], Rotate(cred=CRED[0], token=second, drop=[]), 0.0)
    assert isinstance(rooms.enter(ROOM, TOKEN, 0.0), Error)
    room.rotate(room.peers[1], Rotate(cred=CRED[0], token=third, drop=[]), 1.0)
    # only the newest replaced id is kept: the first token opens a room of its own again
    assert rooms.enter(room_id_for_token(second), second, 0.0) == Error(
        ErrorCode.rotated, "the meeting's invitation was replaced"
    )
    fresh = rooms.enter(ROOM, TOKEN, 0.0)
    assert isinstance(fresh, Room) and fresh is not room and len(fresh) == 0


def test_rotate_refusals() -> None:
    rooms = Rooms(CONFIG)
    room = rooms.enter(ROOM, TOKEN, 0.0)
    other_token = os.urandom(32)
    other = rooms.enter(room_id_for_token(other_token), other_token, 0.0)
    assert isinstance(room, Room) and isinstance(other, Room)
    a, b = peer(1), peer(2)
    room.add(a, H(CRED[0]))
    room.add(b)
    other.add(peer(3))
    inbox(a), inbox(b)
    room.rotate(b, Rotate(cred=os.urandom(32), token=os.urandom(32), drop=[1]), 0.0)
    assert codes(inbox(b)) == [ErrorCode.bad_credential]
    room.rotate(a, Rotate(cred=CRED[0], token=other_token, drop=[2]), 0.0)
    assert codes(inbox(a)) == [ErrorCode.room_exists]
    assert room.id == ROOM and set(room.peers) == {1, 2} and inbox(b) == []
    # the same token: nothing moves, but the drop happens
    room.rotate(a, Rotate(cred=CRED[0], token=TOKEN, drop=[2]), 0.0)
    assert room.id == ROOM and set(room.peers) == {1}
    assert inbox(a) == [PeerLeft(conn=2, reason="removed")]
    assert codes(inbox(b)) == [ErrorCode.rotated]


def test_an_ex_member_cannot_rotate_with_a_used_credential() -> None:
    """Only the current epoch's credential (an open slot) moves the room: a removed
    member knows the credentials of the epochs it was in, all consumed."""
    rooms = Rooms(CONFIG)
    room = rooms.enter(ROOM, TOKEN, 0.0)
    assert isinstance(room, Room)
    a, b = peer(1), peer(2)
    room.add(a, H(CRED[0]))
    room.add(b)
    inbox(a), inbox(b)
    room.commit(a, Commit(cred=CRED[0], next=H(CRED[1]), data=b"removes b"), 0.0)
    inbox(a), inbox(b)
    room.rotate(b, Rotate(cred=CRED[0], token=os.urandom(32), drop=[1]), 0.0)
    assert codes(inbox(b)) == [ErrorCode.bad_credential]
    assert room.id == ROOM and set(room.peers) == {1, 2} and inbox(a) == []
    room.rotate(a, Rotate(cred=CRED[1], token=os.urandom(32), drop=[2]), 0.0)
    assert room.id != ROOM and set(room.peers) == {1}


def test_welcome_reply_and_keyframe_request_go_to_one_peer_only() -> None:
    room, (a, b, c) = room_of(1, 2, 3)
    room.welcome(a, WelcomeTo(to=3, data=b"welcome"), 0.0)
    room.reply(a, ReplyTo(to=3, data=b"declined"), 0.0)
    room.keyframe_request(b, KeyframeRequest(to=1, kind=2), 0.0)
    assert inbox(c) == [
        WelcomeFor(sender=1, data=b"welcome"),
        ReplyFrom(sender=1, data=b"declined"),
    ]
    assert inbox(a) == [KeyframeWanted(by=2, kind=2)]
    assert inbox(b) == []
    room.welcome(a, WelcomeTo(to=99, data=b"welcome"), 0.0)
    room.reply(a, ReplyTo(to=99, data=b"no"), 0.0)
    room.keyframe_request(a, KeyframeRequest(to=99), 0.0)
    assert codes(inbox(a)) == [ErrorCode.unknown_peer] * 3


def test_join_requests_and_app_messages_go_to_all_others() -> None:
    room, (a, b, c) = room_of(1, 2, 3)
    room.join_request(c, JoinRequest(data=b"let me in"), 0.0)
    room.app(a, AppMessage(data=b"chat"), 0.0)
    assert inbox(a) == [JoinRequestFrom(sender=3, data=b"let me in")]
    assert inbox(b) == [
        JoinRequestFrom(sender=3, data=b"let me in"),
        AppFrom(sender=1, data=b"chat"),
    ]
    assert inbox(c) == [AppFrom(sender=1, data=b"chat")]


def test_manifests_go_to_all_others() -> None:
    room, (a, b, c) = room_of(1, 2, 3)
    room.manifest(b, Manifest(data=b"signed hashes"), 0.0)
    assert inbox(a) == inbox(c) == [ManifestFrom(sender=2, data=b"signed hashes")]
    assert inbox(b) == []


def test_every_client_message_but_enter_and_leave_has_a_handler() -> None:
    names = {t.__name__ for t in HANDLERS}
    assert names == {
        "Subscribe",
        "Commit",
        "Reopen",
        "Rotate",
        "WelcomeTo",
        "ReplyTo",
        "JoinRequest",
        "AppMessage",
        "Manifest",
        "KeyframeRequest",
    }


def test_media_goes_to_subscribed_others() -> None:
    room, (a, b, c) = room_of(1, 2, 3)
    room.subscribe(c, Subscribe(audio=True, video=False, screen=False), 0.0)
    video = encode_media(StreamKind.video, True, b"v", sender=1)
    audio = encode_media(StreamKind.audio, False, b"a", sender=1)
    room.media(a, video, StreamKind.video, True, 0.0)
    room.media(a, audio, StreamKind.audio, False, 0.0)
    assert inbox(a) == []
    assert inbox(b) == [video, audio]
    assert inbox(c) == [audio]


def test_a_receiver_chooses_whose_video_and_screen_it_gets() -> None:
    room, (a, b, c, d) = room_of(1, 2, 3, 4)
    room.subscribe(d, Subscribe(video_from=[2], screen_from=[]), 0.0)
    sent = {}
    for p in (a, b, c):
        for kind in (StreamKind.audio, StreamKind.video, StreamKind.screen):
            frame = encode_media(kind, True, bytes([p.conn, kind]), sender=p.conn)
            sent[p.conn, kind] = frame
            room.media(p, frame, kind, True, 0.0)
    # everybody's audio, only conn 2's video, nobody's screen
    assert inbox(d) == [sent[1, StreamKind.audio], sent[2, StreamKind.audio],
                        sent[2, StreamKind.video], sent[3, StreamKind.audio]]  # fmt: skip
    assert len(inbox(a)) == 6  # the others keep receiving everything but their own
    room.subscribe(d, Subscribe(), 0.0)  # back to everything
    room.media(c, sent[3, StreamKind.video], StreamKind.video, True, 0.0)
    assert inbox(d) == [sent[3, StreamKind.video]]


def test_dropped_delta_asks_the_sender_for_a_keyframe() -> None:
    room = Room(ROOM, b"h" * 32, 1, CONFIG, 0.0)
    a = peer(1)
    slow = Peer(2, OutQueue(high_water=15, hard_limit=100, control_cap=2**20), a.commits)
    room.add(a)
    room.add(slow)
    inbox(a)
    inbox(slow)
    frame = encode_media(StreamKind.video, False, b"x" * 10, sender=1)
    for _ in range(3):
        room.media(a, frame, StreamKind.video, False, 0.0)
    assert inbox(a) == [KeyframeWanted(by=2, kind=1, layer=0)]  # once per recovery
    assert inbox(slow) == [frame]


def test_leaving_announces_and_room_vanishes_when_empty() -> None:
    rooms = Rooms(CONFIG)
    room = rooms.enter(ROOM, TOKEN, 0.0)
    assert isinstance(room, Room)
    a, b = peer(1), peer(2)
    room.add(a)
    room.add(b)
    inbox(a)
    room.remove(b, "left")
    room.remove(b, "left")  # idempotent
    assert inbox(a) == [PeerLeft(conn=2, reason="left")]
    assert not rooms.discard_if_empty(room)
    room.remove(a, "disconnected")
    assert rooms.discard_if_empty(room)
    assert len(rooms) == 0
    again = rooms.enter(ROOM, TOKEN, 0.0)
    assert isinstance(again, Room) and again is not room


def test_enter_needs_the_token_of_the_id_and_refusals_look_the_same() -> None:
    rooms = Rooms(CONFIG)
    room = rooms.enter(ROOM, TOKEN, 0.0)
    assert isinstance(room, Room)
    assert room.token_hash == hashlib.sha256(TOKEN).digest()
    stored = [getattr(room, name) for name in Room.__slots__]
    assert not any(value == TOKEN for value in stored)  # only the hash is kept
    assert not hasattr(room, "__dict__")
    room.add(peer(1))
    assert rooms.enter(ROOM, TOKEN, 0.0) is room
    wrong_token = rooms.enter(ROOM, os.urandom(32), 0.0)
    unknown_room = rooms.enter(room_id_for_token(os.urandom(32)), os.urandom(32), 0.0)
    squat = rooms.enter("u" * 22, TOKEN, 0.0)  # a chosen id with some token
    assert wrong_token == unknown_room == squat == BAD_TOKEN
    assert len(rooms) == 1
    # a room whose hash does not match (cannot happen honestly) refuses alike
    room.token_hash = bytes(32)
    assert rooms.enter(ROOM, TOKEN, 0.0) == BAD_TOKEN


def test_caps_max_rooms_and_room_full() -> None:
    rooms = Rooms(RelayConfig(max_rooms=2, max_conns_per_room=2))
    tokens = [os.urandom(32) for _ in range(3)]
    first = rooms.enter(room_id_for_token(tokens[0]), tokens[0], 0.0)
    assert isinstance(first, Room)
    assert isinstance(rooms.enter(room_id_for_token(tokens[1]), tokens[1], 0.0), Room)
    full = rooms.enter(room_id_for_token(tokens[2]), tokens[2], 0.0)
    assert isinstance(full, Error) and full.code is ErrorCode.room_full
    first.add(peer(1))
    first.add(peer(2))
    crowded = rooms.enter(first.id, tokens[0], 0.0)
    assert isinstance(crowded, Error) and crowded.code is ErrorCode.room_full


def test_one_welcome_reaches_every_newcomer_it_names() -> None:
    room, (a, b, c, d) = room_of(1, 2, 3, 4)
    room.welcome(a, WelcomeTo(to=2, data=b"welcome", also=[4, 2, 99]), 0.0)
    assert inbox(b) == inbox(d) == [WelcomeFor(sender=1, data=b"welcome")]
    assert inbox(c) == []  # not named
    assert codes(inbox(a)) == [ErrorCode.unknown_peer]  # 99; the repeated 2 got one
