"""Typed control messages between engine and relay (MessagePack via msgspec).

Each message is a tagged msgspec Struct; a control frame is
``version || CONTROL || msgpack(message)``. Decoding is strict: unknown tags,
missing or extra-typed fields, and fields over their size limit raise
:class:`WireError` with msgspec's description of what was wrong.

Opaque ``data`` fields are ciphertext the relay cannot read: MLS
PrivateMessages, Welcomes, and join requests sealed under the link's join key.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

import msgspec

from .errors import WireError
from .frames import CONTROL, PROTOCOL_VERSION

MAX_CONTROL_BYTES = 1024 * 1024
"""Largest control frame: a Welcome with the ratchet tree of a 1000-member group fits."""

RoomId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{22}$")]
"""128 random bits, base64url without padding."""
Digest = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
ConnId = Annotated[int, msgspec.Meta(ge=1, le=0xFFFFFFFF)]
Epoch = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Handshake_ = Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_CONTROL_BYTES - 64)]
SmallBlob = Annotated[bytes, msgspec.Meta(min_length=1, max_length=64 * 1024)]
Reason = Annotated[str, msgspec.Meta(max_length=200)]


class ErrorCode(IntEnum):
    bad_message = 1
    too_large = 2
    rate_limited = 3
    unknown_room = 4
    bad_token = 5
    room_exists = 6
    stale_epoch = 7
    not_joined = 8
    unknown_peer = 9
    room_full = 10
    internal = 11


class _Msg(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="t"):
    """Base of all control messages."""


# --------------------------------------------------------------- client -> relay


class Create(_Msg, tag="create", frozen=True):
    """Create a room; the relay keeps only the SHA-256 of its access token."""

    room: RoomId
    token_hash: Digest


class Join(_Msg, tag="join", frozen=True):
    """Join a room with its access token (the relay compares SHA-256(token))."""

    room: RoomId
    token: Digest


class Subscribe(_Msg, tag="sub", frozen=True):
    """Which media kinds this connection wants to receive."""

    audio: bool = True
    video: bool = True
    screen: bool = True


class Handshake(_Msg, tag="hs", frozen=True):
    """An MLS handshake message (opaque) for ``epoch``; ``commit`` asks for ordering."""

    epoch: Epoch
    commit: bool
    data: Handshake_


class WelcomeTo(_Msg, tag="welcome_to", frozen=True):
    """An MLS Welcome (opaque) for one connection."""

    to: ConnId
    data: Handshake_


class JoinRequest(_Msg, tag="join_req", frozen=True):
    """A join request sealed under the link's join key (KeyPackage and display name)."""

    data: SmallBlob


class AppMessage(_Msg, tag="app", frozen=True):
    """An MLS application message (chat, presence, control), opaque."""

    epoch: Epoch
    data: SmallBlob


class KeyframeRequest(_Msg, tag="kf_req", frozen=True):
    """Ask connection ``to`` for a keyframe of ``kind`` (0 audio, 1 video, 2 screen)."""

    to: ConnId
    kind: Annotated[int, msgspec.Meta(ge=0, le=2)] = 1


class Leave(_Msg, tag="leave", frozen=True):
    """Leave the room cleanly."""


ClientMessage = (
    Create | Join | Subscribe | Handshake | WelcomeTo | JoinRequest | AppMessage
    | KeyframeRequest | Leave
)

# --------------------------------------------------------------- relay -> client


class Joined(_Msg, tag="joined", frozen=True):
    """Admission to the room's relay channel (not to the meeting: that is MLS)."""

    conn: ConnId
    epoch: Epoch
    peers: list[ConnId]


class PeerJoined(_Msg, tag="peer_joined", frozen=True):
    conn: ConnId


class PeerLeft(_Msg, tag="peer_left", frozen=True):
    conn: ConnId
    reason: Reason = ""


class HandshakeFrom(_Msg, tag="hs_from", frozen=True):
    sender: ConnId
    epoch: Epoch
    commit: bool
    data: Handshake_


class CommitAccepted(_Msg, tag="commit_ok", frozen=True):
    """Our commit was ordered first for its epoch; the room is now at ``epoch``."""

    epoch: Epoch


class WelcomeFor(_Msg, tag="welcome", frozen=True):
    sender: ConnId
    data: Handshake_


class JoinRequestFrom(_Msg, tag="join_req_from", frozen=True):
    sender: ConnId
    data: SmallBlob


class AppFrom(_Msg, tag="app_from", frozen=True):
    sender: ConnId
    epoch: Epoch
    data: SmallBlob


class KeyframeWanted(_Msg, tag="kf_wanted", frozen=True):
    by: ConnId
    kind: Annotated[int, msgspec.Meta(ge=0, le=2)] = 1


class Error(_Msg, tag="error", frozen=True):
    """A refusal. ``epoch`` is the room's current epoch for ``stale_epoch``."""

    code: ErrorCode
    message: Reason
    epoch: Epoch | None = None


RelayMessage = (
    Joined | PeerJoined | PeerLeft | HandshakeFrom | CommitAccepted | WelcomeFor
    | JoinRequestFrom | AppFrom | KeyframeWanted | Error
)

_encoder = msgspec.msgpack.Encoder()
_client_decoder = msgspec.msgpack.Decoder(ClientMessage)
_relay_decoder = msgspec.msgpack.Decoder(RelayMessage)
_PREFIX = bytes((PROTOCOL_VERSION, CONTROL))


def encode(msg: _Msg) -> bytes:
    """A whole control frame (prefix included)."""
    out = _PREFIX + _encoder.encode(msg)
    if len(out) > MAX_CONTROL_BYTES:
        raise WireError(f"control message of {len(out)} bytes exceeds {MAX_CONTROL_BYTES}")
    return out


def _decode(
    decoder: msgspec.msgpack.Decoder[ClientMessage] | msgspec.msgpack.Decoder[RelayMessage],
    body: bytes | memoryview,
) -> ClientMessage | RelayMessage:
    if len(body) > MAX_CONTROL_BYTES:
        raise WireError(f"control message of {len(body)} bytes exceeds {MAX_CONTROL_BYTES}")
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # ValidationError is a DecodeError; invalid UTF-8 in a str raises UnicodeDecodeError.
        raise WireError(f"bad control message: {exc}") from None


def decode_client(body: bytes | memoryview) -> ClientMessage:
    """Decode the MessagePack body of a client's control frame (prefix removed)."""
    msg = _decode(_client_decoder, body)
    assert not isinstance(msg, RelayMessage)
    return msg


def decode_relay(body: bytes | memoryview) -> RelayMessage:
    """Decode the MessagePack body of a relay's control frame (prefix removed)."""
    msg = _decode(_relay_decoder, body)
    assert not isinstance(msg, ClientMessage)
    return msg


