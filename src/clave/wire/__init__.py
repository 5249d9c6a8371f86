"""Messages between engine and relay (pure data, no I/O).

* :mod:`.control`: typed control messages (msgspec Structs, tagged union,
  MessagePack), strictly decoded with size limits.
* :mod:`.media`: the compact binary envelope of an SFrame-protected media frame.
* :mod:`.frames`: how both share one WebSocket binary channel.

The relay handles only these types; every payload that matters (MLS
handshakes, Welcomes, join requests, chat, media) is opaque ciphertext to it.
"""

from .control import (
    MAX_CONTROL_BYTES,
    AppFrom,
    AppMessage,
    ClientMessage,
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
    RelayMessage,
    Subscribe,
    WelcomeFor,
    WelcomeTo,
    decode_client,
    decode_relay,
    encode,
)
from .errors import WireError
from .frames import CONTROL, MEDIA, PROTOCOL_VERSION, split_frame
from .media import (
    MAX_MEDIA_BYTES,
    MediaFrame,
    StreamKind,
    decode_media,
    encode_media,
    media_aad,
    pack_payload,
    stamp_sender,
    unpack_payload,
)

__all__ = [
    "CONTROL",
    "MAX_CONTROL_BYTES",
    "MAX_MEDIA_BYTES",
    "MEDIA",
    "PROTOCOL_VERSION",
    "AppFrom",
    "AppMessage",
    "ClientMessage",
    "CommitAccepted",
    "Create",
    "Error",
    "ErrorCode",
    "Handshake",
    "HandshakeFrom",
    "Join",
    "JoinRequest",
    "JoinRequestFrom",
    "Joined",
    "KeyframeRequest",
    "KeyframeWanted",
    "Leave",
    "MediaFrame",
    "PeerJoined",
    "PeerLeft",
    "RelayMessage",
    "StreamKind",
    "Subscribe",
    "WelcomeFor",
    "WelcomeTo",
    "WireError",
    "decode_client",
    "decode_media",
    "decode_relay",
    "encode",
    "encode_media",
    "media_aad",
    "pack_payload",
    "split_frame",
    "stamp_sender",
    "unpack_payload",
]
