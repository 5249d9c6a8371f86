"""Rooms without sockets: admission, delivery-service ordering, routing, fan-out."""

from __future__ import annotations

import hashlib
import os

from clave.relay.queues import OutQueue
from clave.relay.room import Peer, Room, Rooms
from clave.wire import (
    AppFrom,
    AppMessage,
    CommitAccepted,
    Error,
    ErrorCode,
    Handshake,
    HandshakeFrom,
    Joined,
    JoinRequest,
    JoinRequestFrom,
    KeyframeRequest,
    KeyframeWanted,
    PeerJoined,
    PeerLeft,
    RelayMessage,
    StreamKind,
    Subscribe,
    WelcomeFor,
    WelcomeTo,
    decode_relay,
    encode_media,
)

ROOM = "r" * 22


def peer(conn: int) -> Peer:
    return Peer(conn, OutQueue(10**6, 4 * 10**6, 16 * 2**20))


def inbox(p: Peer) -> list[RelayMessage | bytes]:
    """Everything queued for ``p``: control decoded, media as raw bytes."""
    out: list[RelayMessage | bytes] = []
    while (data := p.queue.pop()) is not None:
        out.append(data if data[1] == 0x4D else decode_relay(memoryview(data)[2:]))
    return out


def room_of(*conns: int) -> tuple[Room, list[Peer]]:
    room = Room(ROOM, b"h" * 32, 1)
    peers = [peer(c) for c in conns]
    for p in peers:
        room.add(p)
    for p in peers:
        inbox(p)
    return room, peers


def test_join_tells_epoch_and_others_and_announces_the_newcomer() -> None:
    room, (a, b) = room_of(1, 2)
    room.epoch = 5
    c = peer(3)
    room.add(c)
    assert inbox(c) == [Joined(conn=3, epoch=5, peers=[1, 2])]
    assert inbox(a) == inbox(b) == [PeerJoined(conn=3)]


def test_first_commit_wins_the_epoch_and_the_second_is_stale() -> None:
    room, (a, b, c) = room_of(1, 2, 3)
    room.handshake(a, Handshake(epoch=0, commit=True, data=b"commit-a"))
    room.handshake(b, Handshake(epoch=0, commit=True, data=b"commit-b"))
    assert room.epoch == 1
    assert inbox(a) == [CommitAccepted(epoch=1)]
    assert inbox(b) == [
        HandshakeFrom(sender=1, epoch=0, commit=True, data=b"commit-a"),
        Error(ErrorCode.stale_epoch, "handshake for epoch 0, room is at 1", epoch=1),
    ]
    assert inbox(c) == [HandshakeFrom(sender=1, epoch=0, commit=True, data=b"commit-a")]
    # b catches up and retries for epoch 1
    room.handshake(b, Handshake(epoch=1, commit=True, data=b"commit-b2"))
    assert room.epoch == 2
    assert inbox(b) == [CommitAccepted(epoch=2)]
    assert (
        inbox(a) == inbox(c) == [HandshakeFrom(sender=2, epoch=1, commit=True, data=b"commit-b2")]
    )


def test_proposals_forwarded_for_current_epoch_only() -> None:
    room, (a, b) = room_of(1, 2)
    room.handshake(a, Handshake(epoch=0, commit=False, data=b"proposal"))
    assert room.epoch == 0
    assert inbox(a) == []
    assert inbox(b) == [HandshakeFrom(sender=1, epoch=0, commit=False, data=b"proposal")]
    room.handshake(a, Handshake(epoch=3, commit=False, data=b"future"))
    assert inbox(a) == [
        Error(ErrorCode.stale_epoch, "handshake for epoch 3, room is at 0", epoch=0)
    ]
    assert inbox(b) == []


def test_welcome_and_keyframe_request_go_to_one_peer_only() -> None:
    room, (a, b, c) = room_of(1, 2, 3)
    room.welcome(a, WelcomeTo(to=3, data=b"welcome"))
    room.keyframe_request(b, KeyframeRequest(to=1, kind=2))
    assert inbox(c) == [WelcomeFor(sender=1, data=b"welcome")]
    assert inbox(a) == [KeyframeWanted(by=2, kind=2)]
    assert inbox(b) == []
    room.welcome(a, WelcomeTo(to=99, data=b"welcome"))
    room.keyframe_request(a, KeyframeRequest(to=99))
    errors = inbox(a)
    assert [e.code for e in errors if isinstance(e, Error)] == [ErrorCode.unknown_peer] * 2


def test_join_requests_and_app_messages_go_to_all_others() -> None:
    room, (a, b, c) = room_of(1, 2, 3)
    room.join_request(c, JoinRequest(data=b"let me in"))
    room.app(a, AppMessage(epoch=0, data=b"chat"))
    assert inbox(a) == [JoinRequestFrom(sender=3, data=b"let me in")]
    assert inbox(b) == [
        JoinRequestFrom(sender=3, data=b"let me in"),
        AppFrom(sender=1, epoch=0, data=b"chat"),
    ]
    assert inbox(c) == [AppFrom(sender=1, epoch=0, data=b"chat")]


def test_media_goes_to_subscribed_others() -> None:
    room, (a, b, c) = room_of(1, 2, 3)
    room.subscribe(c, Subscribe(audio=True, video=False, screen=False))
    video = encode_media(StreamKind.video, True, b"v", sender=1)
    audio = encode_media(StreamKind.audio, False, b"a", sender=1)
    room.media(a, video, StreamKind.video, True, 0.0)
    room.media(a, audio, StreamKind.audio, False, 0.0)
    assert inbox(a) == []
    assert inbox(b) == [video, audio]
    assert inbox(c) == [audio]


def test_dropped_delta_asks_the_sender_for_a_keyframe() -> None:
    room = Room(ROOM, b"h" * 32, 1)
    a = peer(1)
    slow = Peer(2, OutQueue(high_water=15, hard_limit=100, control_cap=2**20))
    room.add(a)
    room.add(slow)
    inbox(a)
    inbox(slow)
    frame = encode_media(StreamKind.video, False, b"x" * 10, sender=1)
    for _ in range(3):
        room.media(a, frame, StreamKind.video, False, 0.0)
    assert inbox(a) == [KeyframeWanted(by=2, kind=1)]  # once per recovery
    assert inbox(slow) == [frame]


def test_leaving_announces_and_room_vanishes_when_empty() -> None:
    rooms = Rooms(max_rooms=10, max_conns_per_room=10)
    room = rooms.create(ROOM, b"h" * 32)
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
    assert isinstance(rooms.create(ROOM, b"h" * 32), Room)


def test_admission_needs_the_token_and_unknown_rooms_look_the_same() -> None:
    rooms = Rooms(max_rooms=10, max_conns_per_room=10)
    token = os.urandom(32)
    room = rooms.create(ROOM, hashlib.sha256(token).digest())
    assert isinstance(room, Room)
    assert room.token_hash == hashlib.sha256(token).digest()
    stored = [getattr(room, name) for name in Room.__slots__]
    assert not any(token == value for value in stored)  # only the hash is kept
    assert not hasattr(room, "__dict__")
    assert rooms.admit(ROOM, token) is room
    wrong = rooms.admit(ROOM, os.urandom(32))
    unknown = rooms.admit("u" * 22, token)
    assert isinstance(wrong, Error) and wrong.code is ErrorCode.bad_token
    assert wrong == unknown


def test_caps_room_exists_max_rooms_room_full() -> None:
    rooms = Rooms(max_rooms=2, max_conns_per_room=2)
    token = os.urandom(32)
    first = rooms.create("a" * 22, hashlib.sha256(token).digest())
    assert isinstance(first, Room)
    exists = rooms.create("a" * 22, b"x" * 32)
    assert isinstance(exists, Error) and exists.code is ErrorCode.room_exists
    assert isinstance(rooms.create("b" * 22, b"x" * 32), Room)
    full = rooms.create("c" * 22, b"x" * 32)
    assert isinstance(full, Error) and full.code is ErrorCode.room_full
    first.add(peer(1))
    first.add(peer(2))
    crowded = rooms.admit("a" * 22, token)
    assert isinstance(crowded, Error) and crowded.code is ErrorCode.room_full
