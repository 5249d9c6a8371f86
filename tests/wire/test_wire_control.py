"""Control messages: round trips, strict rejection, size limits."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from clave.wire import (
    CONTROL,
    MAX_CONTROL_BYTES,
    PROTOCOL_VERSION,
    AppFrom,
    AppMessage,
    CommitAccepted,
    Create,
    Error,
    ErrorCode,
    Handshake,
    HandshakeFrom,
    Join,
    Joined,
    JoinRequest,
    JoinRequestFrom,
    KeyframeRequest,
    KeyframeWanted,
    Leave,
    PeerJoined,
    PeerLeft,
    Subscribe,
    WelcomeFor,
    WelcomeTo,
    WireError,
    decode_client,
    decode_relay,
    encode,
    split_frame,
)

ROOM = "AbCdEfGhIjKlMnOpQr_-09"
HANDSHAKE_MAX = MAX_CONTROL_BYTES - 64
BLOB_MAX = 64 * 1024

CLIENT_MESSAGES: list[Any] = [
    Create(room=ROOM, token_hash=bytes(range(32))),
    Join(room=ROOM, token=b"\xff" * 32),
    Subscribe(),
    Subscribe(audio=True, video=False, screen=False),
    Handshake(epoch=0, commit=True, data=b"commit"),
    Handshake(epoch=2**63 - 1, commit=False, data=b"p"),
    WelcomeTo(to=1, data=b"welcome"),
    WelcomeTo(to=0xFFFFFFFF, data=b"w"),
    JoinRequest(data=b"sealed"),
    AppMessage(epoch=7, data=b"chat"),
    KeyframeRequest(to=3),
    KeyframeRequest(to=3, kind=2),
    Leave(),
]
RELAY_MESSAGES: list[Any] = [
    Joined(conn=1, epoch=0, peers=[]),
    Joined(conn=5, epoch=9, peers=[1, 2, 0xFFFFFFFF]),
    PeerJoined(conn=2),
    PeerLeft(conn=2),
    PeerLeft(conn=2, reason="timeout"),
    HandshakeFrom(sender=1, epoch=3, commit=True, data=b"c"),
    CommitAccepted(epoch=4),
    WelcomeFor(sender=1, data=b"w"),
    JoinRequestFrom(sender=9, data=b"r"),
    AppFrom(sender=1, epoch=2, data=b"a"),
    KeyframeWanted(by=4, kind=0),
    Error(ErrorCode.stale_epoch, "stale", epoch=5),
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


def test_largest_payloads_still_fit_after_the_relay_rewraps_them() -> None:
    # what the relay accepts from a client it must be able to forward
    data = b"x" * HANDSHAKE_MAX
    pairs: list[tuple[Any, Any]] = [
        (
            Handshake(epoch=2**63 - 1, commit=True, data=data),
            HandshakeFrom(sender=0xFFFFFFFF, epoch=2**63 - 1, commit=True, data=data),
        ),
        (WelcomeTo(to=0xFFFFFFFF, data=data), WelcomeFor(sender=0xFFFFFFFF, data=data)),
        (
            AppMessage(epoch=2**63 - 1, data=b"x" * BLOB_MAX),
            AppFrom(sender=0xFFFFFFFF, epoch=2**63 - 1, data=b"x" * BLOB_MAX),
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
        {"t": "create", "room": ROOM},  # missing field
        {"t": "create", "room": ROOM, "token_hash": bytes(32), "extra": 1},
        {"t": "create", "room": ROOM[:-1], "token_hash": bytes(32)},  # 21 chars
        {"t": "create", "room": ROOM + "A", "token_hash": bytes(32)},  # 23 chars
        {"t": "create", "room": ROOM[:-1] + "!", "token_hash": bytes(32)},
        {"t": "create", "room": ROOM[:-1] + "=", "token_hash": bytes(32)},
        {"t": "create", "room": ROOM, "token_hash": bytes(31)},
        {"t": "join", "room": ROOM, "token": bytes(33)},
        {"t": "join", "room": ROOM, "token": "a" * 32},  # str, not bytes
        {"t": "hs", "epoch": -1, "commit": True, "data": b"x"},
        {"t": "hs", "epoch": 2**63, "commit": True, "data": b"x"},
        {"t": "hs", "epoch": 0, "commit": 1, "data": b"x"},
        {"t": "hs", "epoch": 0, "commit": True, "data": b""},
        {"t": "welcome_to", "to": 0, "data": b"x"},
        {"t": "welcome_to", "to": 2**32, "data": b"x"},
        {"t": "join_req", "data": b"x" * (BLOB_MAX + 1)},
        {"t": "app", "epoch": 0, "data": b""},
        {"t": "kf_req", "to": 1, "kind": 3},
        {"t": "sub", "audio": "yes"},
        {"t": "leave", "why": "x"},
        {"t": "joined", "conn": 1, "epoch": 0, "peers": []},  # relay-only tag
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
        {"t": "joined", "conn": 1, "epoch": 0, "peers": [0]},
        {"t": "joined", "conn": 1, "epoch": 0},
        {"t": "kf_wanted", "by": 1, "kind": -1},
        {"t": "hs", "epoch": 0, "commit": True, "data": b"x"},  # client-only tag
    ],
    ids=repr,
)
def test_relay_decoder_is_strict(obj: Any) -> None:
    with pytest.raises(WireError):
        decode_relay(raw(obj))


def test_truncated_and_trailing_bytes_are_rejected() -> None:
    good = bytes(body(encode(AppMessage(epoch=1, data=b"hello"))))
    for cut in range(len(good)):
        with pytest.raises(WireError):
            decode_client(good[:cut])
    with pytest.raises(WireError):
        decode_client(good + b"\x00")


def test_size_limits() -> None:
    too_big = Handshake(epoch=0, commit=True, data=b"x" * (MAX_CONTROL_BYTES - 64))
    assert len(encode(too_big)) <= MAX_CONTROL_BYTES
    with pytest.raises(WireError, match="exceeds"):
        encode(JoinRequestFrom(sender=1, data=b"x" * MAX_CONTROL_BYTES))  # unvalidated, too big
    with pytest.raises(WireError, match="exceeds"):
        decode_client(bytes(MAX_CONTROL_BYTES + 1))
    with pytest.raises(WireError, match="exceeds"):
        decode_relay(bytes(MAX_CONTROL_BYTES + 1))
    with pytest.raises(WireError):
        decode_client(
            raw({"t": "hs", "epoch": 0, "commit": True, "data": b"x" * HANDSHAKE_MAX + b"x"})
        )
