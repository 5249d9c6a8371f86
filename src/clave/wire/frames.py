"""One WebSocket binary channel carries control messages and media frames.

Every WebSocket binary message starts with two bytes: the protocol version
and the channel (``CONTROL`` or ``MEDIA``). Text messages are not used.
"""

from __future__ import annotations

from .errors import WireError

PROTOCOL_VERSION = 1
CONTROL = 0x43  # "C": the rest is one MessagePack-encoded control message
MEDIA = 0x4D  # "M": the rest is a media envelope (see clave.wire.media)


def split_frame(data: bytes) -> tuple[int, memoryview]:
    """Return (channel, body) of one WebSocket binary message; WireError if malformed."""
    if len(data) < 2:
        raise WireError(f"frame of {len(data)} bytes is shorter than its 2-byte prefix")
    if data[0] != PROTOCOL_VERSION:
        raise WireError(f"unsupported protocol version {data[0]} (this side speaks 1)")
    channel = data[1]
    if channel not in (CONTROL, MEDIA):
        raise WireError(f"unknown channel 0x{channel:02x}")
    return channel, memoryview(data)[2:]
