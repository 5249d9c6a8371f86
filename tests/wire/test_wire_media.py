"""The media envelope: layout, authenticated flags, strict parsing, the relay's stamp."""

from __future__ import annotations

import pytest

from clave.wire import (
    MAX_MEDIA_BYTES,
    MEDIA,
    PROTOCOL_VERSION,
    MediaFrame,
    StreamKind,
    WireError,
    decode_media,
    encode_media,
    media_aad,
    split_frame,
    stamp_sender,
)
from clave.wire.media import HEADER_BYTES


@pytest.mark.parametrize("kind", list(StreamKind))
@pytest.mark.parametrize("keyframe", [False, True])
def test_round_trip_and_layout(kind: StreamKind, keyframe: bool) -> None:
    data = encode_media(kind, keyframe, b"sframe bytes", sender=0x01020304)
    assert data[:2] == bytes((PROTOCOL_VERSION, MEDIA))
    assert data[2] == int(kind) | (0x80 if keyframe else 0)
    assert data[3:7] == b"\x01\x02\x03\x04"
    assert data[:3] == media_aad(kind, keyframe)
    assert decode_media(data) == MediaFrame(kind, keyframe, 0x01020304, b"sframe bytes")
    channel, _ = split_frame(data)
    assert channel == MEDIA


def test_clients_send_sender_zero_and_the_relay_stamps_it() -> None:
    data = encode_media(StreamKind.video, True, b"payload")
    assert decode_media(data).sender == 0
    stamped = stamp_sender(data, 0xDEADBEEF)
    frame = decode_media(stamped)
    assert frame.sender == 0xDEADBEEF
    assert (frame.kind, frame.keyframe, frame.sframe) == (StreamKind.video, True, b"payload")
    assert stamped[:3] == data[:3]  # the authenticated part is untouched
    assert stamped[7:] == data[7:]
    assert len(stamped) == len(data)


@pytest.mark.parametrize("flags", [0x03, 0x04, 0x08, 0x10, 0x20, 0x40, 0x83, 0xFF])
def test_reserved_flag_bits_and_unknown_kinds_are_rejected(flags: int) -> None:
    with pytest.raises(WireError):
        decode_media(bytes((PROTOCOL_VERSION, MEDIA, flags, 0, 0, 0, 0)) + b"x")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01\x4d\x01\x00\x00\x00\x00",  # no payload
        b"\x01\x4d\x01",
        b"\x02\x4d\x01\x00\x00\x00\x00x",  # version
        b"\x01\x43\x01\x00\x00\x00\x00x",  # control channel
    ],
)
def test_malformed_envelopes_are_rejected(data: bytes) -> None:
    with pytest.raises(WireError):
        decode_media(data)


def test_size_limit() -> None:
    largest = encode_media(StreamKind.video, True, bytes(MAX_MEDIA_BYTES - HEADER_BYTES))
    assert len(largest) == MAX_MEDIA_BYTES
    assert len(decode_media(largest).sframe) == MAX_MEDIA_BYTES - HEADER_BYTES
    with pytest.raises(WireError, match="exceeds"):
        encode_media(StreamKind.video, True, bytes(MAX_MEDIA_BYTES - HEADER_BYTES + 1))
    with pytest.raises(WireError, match="exceeds"):
        decode_media(largest + b"x")
