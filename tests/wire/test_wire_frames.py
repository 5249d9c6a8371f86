"""The shared binary channel: version and channel prefix."""

from __future__ import annotations

import pytest

from clave.wire import CONTROL, MEDIA, PROTOCOL_VERSION, WireError, split_frame


@pytest.mark.parametrize("channel", [CONTROL, MEDIA])
def test_split(channel: int) -> None:
    got, rest = split_frame(bytes((PROTOCOL_VERSION, channel)) + b"body")
    assert got == channel and bytes(rest) == b"body"
    got, rest = split_frame(bytes((PROTOCOL_VERSION, channel)))
    assert bytes(rest) == b""


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "shorter"),
        (b"\x01", "shorter"),
        (b"\x00\x43", "version"),
        (b"\x02\x4d", "version"),
        (b"\x01\x00", "channel"),
        (b"\x01\x63", "channel"),  # lowercase "c"
    ],
)
def test_rejections_say_why(data: bytes, why: str) -> None:
    with pytest.raises(WireError, match=why):
        split_frame(data)
