"""Fuzzing: arbitrary input never raises anything but WireError; valid messages round-trip."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clave.wire import (
    AppMessage,
    Commit,
    Enter,
    JoinRequest,
    KeyframeRequest,
    Leave,
    Reopen,
    ReplyTo,
    Rotate,
    StreamKind,
    Subscribe,
    WelcomeTo,
    WireError,
    decode_client,
    decode_media,
    decode_relay,
    encode,
    encode_media,
    split_frame,
    stamp_sender,
)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAGS = [
    "enter",
    "sub",
    "commit",
    "reopen",
    "welcome_to",
    "reply_to",
    "join_req",
    "app",
    "kf_req",
    "rotate",
    "leave",
    "joined",
    "peer_joined",
    "peer_left",
    "commit_from",
    "commit_ok",
    "welcome",
    "reply",
    "join_req_from",
    "app_from",
    "kf_wanted",
    "rotated",
    "error",
    "create",
    "hs",
    "t",
    "",
]
FIELDS = [
    "t",
    "room",
    "token",
    "cred_hash",
    "cred",
    "next",
    "drop",
    "audio",
    "video",
    "screen",
    "epoch",
    "data",
    "to",
    "kind",
    "conn",
    "peers",
    "reason",
    "sender",
    "by",
    "code",
    "message",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=30)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
message_like = st.builds(
    lambda tag, fields: {"t": tag, **fields},
    st.sampled_from(TAGS),
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=6),
)


def only_wire_errors(fn: Any, data: bytes) -> None:
    with contextlib.suppress(WireError):
        fn(data)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_wire_error(data: bytes) -> None:
    for fn in (decode_client, decode_relay, decode_media, split_frame):
        only_wire_errors(fn, data)
    only_wire_errors(decode_media, b"\x01\x4d" + data)


@FUZZ
@given(message_like)
def test_message_shaped_msgpack_raises_only_wire_error(obj: dict[str, Any]) -> None:
    data = msgspec.msgpack.encode(obj)
    only_wire_errors(decode_client, data)
    only_wire_errors(decode_relay, data)


rooms = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=22, max_size=22
)
digests = st.binary(min_size=32, max_size=32)
conns = st.integers(min_value=1, max_value=2**32 - 1)
blobs = st.binary(min_size=1, max_size=2000)
client_messages = st.one_of(
    st.builds(Enter, room=rooms, token=digests, cred_hash=st.none() | digests),
    st.builds(Subscribe, audio=st.booleans(), video=st.booleans(), screen=st.booleans()),
    st.builds(Commit, cred=digests, next=digests, data=blobs),
    st.builds(Reopen, cred=digests),
    st.builds(WelcomeTo, to=conns, data=blobs),
    st.builds(ReplyTo, to=conns, data=blobs),
    st.builds(JoinRequest, data=blobs),
    st.builds(AppMessage, data=blobs),
    st.builds(KeyframeRequest, to=conns, kind=st.integers(0, 2)),
    st.builds(Rotate, cred=digests, token=digests, drop=st.lists(conns, max_size=5)),
    st.just(Leave()),
)


@FUZZ
@given(client_messages)
def test_valid_client_messages_round_trip(msg: Any) -> None:
    frame = encode(msg)
    assert decode_client(frame[2:]) == msg


@FUZZ
@given(
    st.sampled_from(list(StreamKind)),
    st.booleans(),
    st.binary(min_size=1, max_size=500),
    st.integers(0, 2**32 - 1),
)
def test_media_round_trip_and_stamp(
    kind: StreamKind, keyframe: bool, sframe: bytes, sender: int
) -> None:
    frame = decode_media(stamp_sender(encode_media(kind, keyframe, sframe), sender))
    assert (frame.kind, frame.keyframe, frame.sender, frame.sframe) == (
        kind,
        keyframe,
        sender,
        sframe,
    )
