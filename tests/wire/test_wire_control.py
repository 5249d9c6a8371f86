"""Control messages: round trips, strict rejection, size limits."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec
import pytest

from clave.wire import (
    CONTROL,
    MAX_CONTROL_BYTES,
    MAX_DROP,
    MAX_SUBSCRIBED,
    PROTOCOL_VERSION,
    AppFrom,
    AppMessage,
    Commit,
    CommitAccepted,
    CommitFrom,
    Enter,
    Error,
    ErrorCode,
    Joined,
    JoinRequest,
    JoinRequestFrom,
    KeyframeRequest,
    KeyframeWanted,
    Leave,
    PeerJoined,
    PeerLeft,
    Reopen,
    ReplyFrom,
    ReplyTo,
    Rotate,
    Rotated,
    Subscribe,
    WelcomeFor,
    WelcomeTo,
    WireError,
    credential_hash,
    decode_client,
    decode_relay,
    encode,
    room_id_for_token,
    split_frame,
)

ROOM = "AbCdEfGhIjKlMnOpQr_-09"
HANDSHAKE_MAX = MAX_CONTROL_BYTES - 64
BLOB_MAX = 64 * 1024

D1, D2, D3 = bytes(range(32)), b"\xff" * 32, bytes(32)
CLIENT_MESSAGES: list[Any] = [
    Enter(room=ROOM, token=D1),
    Enter(room=ROOM, token=D2, cred_hash=D3),
    Subscribe(),
    Subscribe(audio=True, video=False, screen=False),
    Subscribe(video_from=[2, 0xFFFFFFFF], screen_from=[]),
    Commit(cred=D1, next=D2, data=b"commit"),
    Reopen(cred=D1),
    WelcomeTo(to=1, data=b"welcome"),
    WelcomeTo(to=0xFFFFFFFF, data=b"w"),
    ReplyTo(to=2, data=b"declined"),
    JoinRequest(data=b"sealed"),
    AppMessage(data=b"chat"),
    KeyframeRequest(to=3),
    KeyframeRequest(to=3, kind=2),
    Rotate(cred=D1, token=D2),
    Rotate(cred=D1, token=D2, drop=[1, 0xFFFFFFFF]),
    Leave(),
]
RELAY_MESSAGES: list[Any] = [
    Joined(conn=1, peers=[]),
    Joined(conn=5, peers=[1, 2, 0xFFFFFFFF]),
    PeerJoined(conn=2),
    PeerLeft(conn=2),
    PeerLeft(conn=2, reason="timeout"),
    CommitFrom(sender=1, data=b"c"),
    CommitAccepted(),
    WelcomeFor(sender=1, data=b"w"),
    ReplyFrom(sender=1, data=b"r"),
    JoinRequestFrom(sender=9, data=b"r"),
    AppFrom(sender=1, data=b"a"),
    KeyframeWanted(by=4, kind=0),
    Rotated(by=3),
    *[Error(code, code.name) for code in ErrorCode],
]


def body(frame: bytes) -> memoryview:
    channel, rest = split_frame(frame)
    assert channel == CONTROL
    return rest


def raw(obj: Any) -> bytes:
    """A control body made of arbitrary MessagePack (for messages encode() would not build)."""
    return msgspec.msgpack.encode(obj)


@pytest.mark.parametrize("msg", CLIENT_MESSAGES, ids=repr)
def test_client_messages_round_trip(msg: Any) -> None:
    frame = encode(msg)
    assert frame[:2] == bytes((PROTOCOL_VERSION, CONTROL))
    assert decode_client(body(frame)) == msg
    assert decode_client(bytes(body(frame))) == msg
    with pytest.raises(WireError):
        decode_relay(body(frame))  # a client message is not a relay message


@pytest.mark.parametrize("msg", RELAY_MESSAGES, ids=repr)
def test_relay_messages_round_trip(msg: Any) -> None:
    frame = encode(msg)
    assert decode_relay(body(frame)) == msg
    with pytest.raises(WireError):
        decode_client(body(frame))


def largest_commit_data() -> int:
    """The largest ``Commit.data`` the schema allows; its frame (with the two digests) fits."""
    probe = 100_000  # same MessagePack bin header size as the largest
    overhead = len(encode(Commit(cred=D1, next=D2, data=b"x" * probe))) - probe
    assert MAX_CONTROL_BYTES - 160 + overhead <= MAX_CONTROL_BYTES
    return MAX_CONTROL_BYTES - 160


def test_largest_payloads_still_fit_after_the_relay_rewraps_them() -> None:
    # what the relay accepts from a client it must be able to forward
    data = b"x" * HANDSHAKE_MAX
    commit = b"x" * largest_commit_data()
    too_big = encode(Commit(cred=D1, next=D2, data=commit + b"x"))
    with pytest.raises(WireError):  # the schema refuses it, though the frame would fit
        decode_client(body(too_big))
    pairs: list[tuple[Any, Any]] = [
        (
            Commit(cred=D1, next=D2, data=commit),
            CommitFrom(sender=0xFFFFFFFF, data=commit),
        ),
        (WelcomeTo(to=0xFFFFFFFF, data=data), WelcomeFor(sender=0xFFFFFFFF, data=data)),
        (
            ReplyTo(to=0xFFFFFFFF, data=b"x" * BLOB_MAX),
            ReplyFrom(sender=0xFFFFFFFF, data=b"x" * BLOB_MAX),
        ),
        (
            AppMessage(data=b"x" * BLOB_MAX),
            AppFrom(sender=0xFFFFFFFF, data=b"x" * BLOB_MAX),
        ),
        (
            JoinRequest(data=b"x" * BLOB_MAX),
            JoinRequestFrom(sender=0xFFFFFFFF, data=b"x" * BLOB_MAX),
        ),
    ]
    for incoming, outgoing in pairs:
        assert decode_client(body(encode(incoming))) == incoming
        assert decode_relay(body(encode(outgoing))) == outgoing
        assert len(encode(outgoing)) <= MAX_CONTROL_BYTES


@pytest.mark.parametrize(
    "obj",
    [
        {"t": "nope"},
        {"t": "create", "room": ROOM, "token_hash": D1},  # retired
        {"t": "join", "room": ROOM, "token": D1},  # retired
        {"t": "hs", "epoch": 0, "commit": True, "data": b"x"},  # retired
        {"t": "enter", "room": ROOM},  # missing field
        {"t": "enter", "room": ROOM, "token": D1, "extra": 1},
        {"t": "enter", "room": ROOM[:-1], "token": D1},  # 21 chars
        {"t": "enter", "room": ROOM + "A", "token": D1},  # 23 chars
        {"t": "enter", "room": ROOM[:-1] + "!", "token": D1},
        {"t": "enter", "room": ROOM[:-1] + "=", "token": D1},
        {"t": "enter", "room": ROOM, "token": bytes(31)},
        {"t": "enter", "room": ROOM, "token": bytes(33)},
        {"t": "enter", "room": ROOM, "token": "a" * 32},  # str, not bytes
        {"t": "enter", "room": ROOM, "token": D1, "cred_hash": bytes(31)},
        {"t": "commit", "cred": D1, "next": D2},  # no data
        {"t": "commit", "cred": D1, "next": D2, "data": b""},
        {"t": "commit", "cred": bytes(33), "next": D2, "data": b"x"},
        {"t": "commit", "cred": D1, "next": bytes(31), "data": b"x"},
        {"t": "commit", "cred": D1, "next": D2, "data": b"x", "epoch": 0},
        {"t": "reopen", "cred": bytes(16)},
        {"t": "reopen"},
        {"t": "welcome_to", "to": 0, "data": b"x"},
        {"t": "welcome_to", "to": 2**32, "data": b"x"},
        {"t": "reply_to", "to": 1, "data": b"x" * (BLOB_MAX + 1)},
        {"t": "reply_to", "to": 0, "data": b"x"},
        {"t": "join_req", "data": b"x" * (BLOB_MAX + 1)},
        {"t": "app", "data": b""},
        {"t": "app", "epoch": 0, "data": b"x"},  # epochs are gone
        {"t": "kf_req", "to": 1, "kind": 3},
        {"t": "sub", "audio": "yes"},
        {"t": "sub", "video_from": [0]},
        {"t": "sub", "screen_from": list(range(1, MAX_SUBSCRIBED + 2))},
        {"t": "rotate", "cred": D1, "token": D2, "drop": [0]},
        {"t": "rotate", "cred": D1, "token": D2, "drop": list(range(1, MAX_DROP + 2))},
        {"t": "rotate", "cred": D1, "token": bytes(31)},
        {"t": "leave", "why": "x"},
        {"t": "joined", "conn": 1, "peers": []},  # relay-only tag
        [],
        "create",
        None,
        42,
    ],
    ids=repr,
)
def test_client_decoder_is_strict(obj: Any) -> None:
    with pytest.raises(WireError):
        decode_client(raw(obj))


@pytest.mark.parametrize(
    "obj",
    [
        {"t": "error", "code": 0, "message": "x"},
        {"t": "error", "code": 99, "message": "x"},
        {"t": "error", "code": 1, "message": "x" * 201},
        {"t": "peer_left", "conn": 1, "reason": "x" * 201},
        {"t": "error", "code": 4, "message": "x", "epoch": 1},  # epochs are gone
        {"t": "joined", "conn": 1, "peers": [0]},
        {"t": "joined", "conn": 1},
        {"t": "joined", "conn": 1, "epoch": 0, "peers": []},
        {"t": "commit_ok", "epoch": 1},
        {"t": "commit_from", "sender": 1, "data": b""},
        {"t": "hs_from", "sender": 1, "epoch": 0, "commit": True, "data": b"x"},  # retired
        {"t": "rotated"},
        {"t": "kf_wanted", "by": 1, "kind": -1},
        {"t": "commit", "cred": D1, "next": D2, "data": b"x"},  # client-only tag
    ],
    ids=repr,
)
def test_relay_decoder_is_strict(obj: Any) -> None:
    with pytest.raises(WireError):
        decode_relay(raw(obj))


def test_truncated_and_trailing_bytes_are_rejected() -> None:
    good = bytes(body(encode(AppMessage(data=b"hello"))))
    for cut in range(len(good)):
        with pytest.raises(WireError):
            decode_client(good[:cut])
    with pytest.raises(WireError):
        decode_client(good + b"\x00")


def test_size_limits() -> None:
    largest = WelcomeTo(to=0xFFFFFFFF, data=b"x" * HANDSHAKE_MAX)
    assert len(encode(largest)) <= MAX_CONTROL_BYTES
    with pytest.raises(WireError, match="exceeds"):  # the digests do not fit beside the most data
        encode(Commit(cred=D1, next=D2, data=b"x" * HANDSHAKE_MAX))
    with pytest.raises(WireError, match="exceeds"):
        encode(JoinRequestFrom(sender=1, data=b"x" * MAX_CONTROL_BYTES))  # unvalidated, too big
    with pytest.raises(WireError, match="exceeds"):
        decode_client(bytes(MAX_CONTROL_BYTES + 1))
    with pytest.raises(WireError, match="exceeds"):
        decode_relay(bytes(MAX_CONTROL_BYTES + 1))
    with pytest.raises(WireError):
        decode_client(
            raw({"t": "commit", "cred": D1, "next": D2, "data": b"x" * HANDSHAKE_MAX + b"x"})
        )


def test_room_id_for_token_is_the_documented_derivation() -> None:
    token = bytes(range(32))
    digest = hashlib.sha256(b"clave v2 room id" + token).digest()[:16]
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert room_id_for_token(token) == expected
    assert len(expected) == 22
    assert room_id_for_token(bytes(32)) != expected
    decode_client(body(encode(Enter(room=expected, token=token))))  # a valid RoomId


def test_credential_hash_is_sha256() -> None:
    assert credential_hash(b"c" * 32) == hashlib.sha256(b"c" * 32).digest()


def test_error_codes_are_stable() -> None:
    codes = {code.name: int(code) for code in ErrorCode}
    assert codes["bad_credential"] == 12 and codes["rotated"] == 13
    assert codes["stale_epoch"] == 7 and codes["bad_token"] == 5
