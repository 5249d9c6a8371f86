"""Typed control messages between engine and relay (MessagePack via msgspec).

Each message is a tagged msgspec Struct; a control frame is
``version || CONTROL || msgpack(message)``. Decoding is strict: unknown tags,
missing or extra-typed fields, and fields over their size limit raise
:class:`WireError` with msgspec's description of what was wrong.

Opaque ``data`` fields are ciphertext the relay cannot read: MLS
PrivateMessages, Welcomes, and join requests sealed under the link's join key.
"""

from __future__ import annotations

import base64
import hashlib
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
"""32 bytes: an access token, a SHA-256 hash or an epoch credential."""
ConnId = Annotated[int, msgspec.Meta(ge=1, le=0xFFFFFFFF)]
Handshake_ = Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_CONTROL_BYTES - 64)]
CommitData = Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_CONTROL_BYTES - 160)]
"""An MLS commit: room for the credential and the next hash in the same frame."""
SmallBlob = Annotated[bytes, msgspec.Meta(min_length=1, max_length=64 * 1024)]
ManifestBlob = Annotated[bytes, msgspec.Meta(min_length=1, max_length=4096)]
Reason = Annotated[str, msgspec.Meta(max_length=200)]
MAX_DROP = 128
MAX_WELCOMED = 64
"""Connections one ``WelcomeTo`` may name (a commit's newcomers)."""
MAX_SUBSCRIBED = 1000
"""Senders one ``Subscribe`` may name per media kind (a meeting's connections at most)."""
Layer = Annotated[int, msgspec.Meta(ge=0, le=2)]
"""A simulcast layer: 0 lowest resolution .. 2 (clave.wire.media.MAX_LAYER)."""
Kind = Annotated[int, msgspec.Meta(ge=0, le=2)]
"""Connections one :class:`Rotate` may drop at most."""


class ErrorCode(IntEnum):
    """Codes of :class:`Error`; 4 and 6 are retired (the relay never tells whether a
    room exists) and never sent."""

    bad_message = 1
    too_large = 2
    rate_limited = 3
    unknown_room = 4
    bad_token = 5
    room_exists = 6
    stale_epoch = 7
    """A commit's epoch credential was already used by another commit."""
    not_joined = 8
    unknown_peer = 9
    room_full = 10
    internal = 11
    bad_credential = 12
    """A commit, reopen or rotation presented a credential the room does not know."""
    rotated = 13
    """The room's invitation was replaced and this connection was dropped."""


ROOM_ID_LABEL = b"clave v2 room id"


def room_id_for_token(token: bytes) -> str:
    """The room id that belongs to an access token (docs/PROTOCOL.md, "Rooms").

    ``base64url(SHA-256("clave v2 room id" || token)[:16])``: a room id says nothing
    about the token, and only a token holder can name a room it may enter.
    """
    digest = hashlib.sha256(ROOM_ID_LABEL + bytes(token)).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def credential_hash(credential: bytes) -> bytes:
    """SHA-256 of an epoch credential: what the relay stores and compares."""
    return hashlib.sha256(bytes(credential)).digest()


class _Msg(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="t"):
    """Base of all control messages."""


# --------------------------------------------------------------- client -> relay


class Enter(_Msg, tag="enter", frozen=True):
    """Enter the room of an access token; the room is created if nobody is in it.

    ``room`` must equal :func:`room_id_for_token` of ``token``. ``cred_hash`` (a
    member's epoch credential hash) is registered only when the room holds none,
    so a member re-establishes ordering after the room was created empty.
    """

    room: RoomId
    token: Digest
    cred_hash: Digest | None = None


class Subscribe(_Msg, tag="sub", frozen=True):
    """Which media this connection wants to receive: each kind on or off and, for video
    and screen, optionally only from the senders named (connection ids; None: from
    everybody). It names connections only, never people; the relay learns who watches
    whom, as it learns sizes and timing. A new connection receives everything until
    it subscribes.

    Simulcast: of each video sender the relay forwards one layer, ``layers[conn]`` if
    named, else ``layer``, or the highest the sender sends below it; a change takes
    effect at the new layer's next keyframe (the relay asks the sender for one)."""

    audio: bool = True
    video: bool = True
    screen: bool = True
    video_from: Annotated[list[ConnId], msgspec.Meta(max_length=MAX_SUBSCRIBED)] | None = None
    screen_from: Annotated[list[ConnId], msgspec.Meta(max_length=MAX_SUBSCRIBED)] | None = None
    layer: Layer = 2
    layers: Annotated[dict[ConnId, Layer], msgspec.Meta(max_length=MAX_SUBSCRIBED)] | None = None


class Commit(_Msg, tag="commit", frozen=True):
    """An MLS commit (opaque) to be ordered: ``cred`` is the committer's epoch
    credential (its SHA-256 must be an open slot of the room), ``next`` the hash of
    the credential of the epoch the commit creates."""

    cred: Digest
    next: Digest
    data: CommitData


class Reopen(_Msg, tag="reopen", frozen=True):
    """The commit ordered with this credential was refused by the sender's engine:
    the slot opens again so an honest commit can be ordered for that epoch."""

    cred: Digest


class WelcomeTo(_Msg, tag="welcome_to", frozen=True):
    """An MLS Welcome (opaque) for connection ``to`` and the connections in ``also``:
    one Welcome serves every newcomer of a commit (RFC 9420 section 12.4.3.1), so a
    host uploads it once however many it admits."""

    to: ConnId
    data: Handshake_
    also: Annotated[list[ConnId], msgspec.Meta(max_length=MAX_WELCOMED - 1)] = []


class ReplyTo(_Msg, tag="reply_to", frozen=True):
    """A host's sealed answer to a join request (declined, locked), for one connection."""

    to: ConnId
    data: SmallBlob


class JoinRequest(_Msg, tag="join_req", frozen=True):
    """A join request sealed under the link's join key (KeyPackage and display name)."""

    data: SmallBlob


class AppMessage(_Msg, tag="app", frozen=True):
    """An MLS application message (chat, presence, control), opaque."""

    data: SmallBlob


class Manifest(_Msg, tag="manifest", frozen=True):
    """A sender's signed list of the hashes of its latest media frames (opaque to the
    relay; see docs/PROTOCOL.md, "Media authentication")."""

    data: ManifestBlob


class KeyframeRequest(_Msg, tag="kf_req", frozen=True):
    """Ask connection ``to`` for a keyframe of ``kind`` (0 audio, 1 video, 2 screen),
    of simulcast ``layer`` (None: of every layer it sends)."""

    to: ConnId
    kind: Kind = 1
    layer: Layer | None = None


class Rotate(_Msg, tag="rotate", frozen=True):
    """Move the room to a new access token (a replaced invitation): the room takes the
    id of ``token``; connections in ``drop`` leave it. ``cred`` proves membership."""

    cred: Digest
    token: Digest
    drop: Annotated[list[ConnId], msgspec.Meta(max_length=MAX_DROP)] = msgspec.field(
        default_factory=list
    )


class Leave(_Msg, tag="leave", frozen=True):
    """Leave the room cleanly."""


ClientMessage = (
    Enter
    | Subscribe
    | Commit
    | Reopen
    | WelcomeTo
    | ReplyTo
    | JoinRequest
    | AppMessage
    | Manifest
    | KeyframeRequest
    | Rotate
    | Leave
)

# --------------------------------------------------------------- relay -> client


class Joined(_Msg, tag="joined", frozen=True):
    """Admission to the room's relay channel (not to the meeting: that is MLS)."""

    conn: ConnId
    peers: list[ConnId]


class PeerJoined(_Msg, tag="peer_joined", frozen=True):
    conn: ConnId


class PeerLeft(_Msg, tag="peer_left", frozen=True):
    conn: ConnId
    reason: Reason = ""


class CommitFrom(_Msg, tag="commit_from", frozen=True):
    """Another connection's commit, ordered for its epoch."""

    sender: ConnId
    data: Handshake_


class CommitAccepted(_Msg, tag="commit_ok", frozen=True):
    """Our commit was ordered first for its epoch credential."""


class WelcomeFor(_Msg, tag="welcome", frozen=True):
    sender: ConnId
    data: Handshake_


class ReplyFrom(_Msg, tag="reply", frozen=True):
    sender: ConnId
    data: SmallBlob


class JoinRequestFrom(_Msg, tag="join_req_from", frozen=True):
    sender: ConnId
    data: SmallBlob


class AppFrom(_Msg, tag="app_from", frozen=True):
    sender: ConnId
    data: SmallBlob


class ManifestFrom(_Msg, tag="manifest_from", frozen=True):
    sender: ConnId
    data: ManifestBlob


class KeyframeWanted(_Msg, tag="kf_wanted", frozen=True):
    """Connection ``by`` (or the relay, switching someone's layer) needs a keyframe of
    ``kind`` and ``layer`` (None: of every layer)."""

    by: ConnId
    kind: Kind = 1
    layer: Layer | None = None


class LayerCap(_Msg, tag="layer_cap", frozen=True):
    """Congestion: this connection's queue at the relay grew, so until a later
    ``LayerCap`` the relay forwards no video layer above ``layer``; the engine should
    subscribe accordingly. Sent again with a higher layer once the queue stayed short."""

    layer: Layer


class Rotated(_Msg, tag="rotated", frozen=True):
    """Connection ``by`` moved the room to a new access token (see :class:`Rotate`)."""

    by: ConnId


class Error(_Msg, tag="error", frozen=True):
    """A refusal."""

    code: ErrorCode
    message: Reason


RelayMessage = (
    Joined
    | PeerJoined
    | PeerLeft
    | CommitFrom
    | CommitAccepted
    | WelcomeFor
    | ReplyFrom
    | JoinRequestFrom
    | AppFrom
    | ManifestFrom
    | KeyframeWanted
    | LayerCap
    | Rotated
    | Error
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
