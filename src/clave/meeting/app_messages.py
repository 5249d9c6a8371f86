"""Meeting messages carried as MLS application data (RFC 9420 section 6.3).

msgspec Structs tagged by ``"t"`` and MessagePack-encoded; decoding is strict
(unknown tags, extra fields, wrong types and oversized values raise
:class:`AppMessageError`):

* ``{"t": "hello", "conn": int, "name": str, "missing": [int]}``: announces the
  sender's relay connection id (which must equal the relay's ``AppFrom.sender``),
  so every member can map relay connections to MLS leaves. Sent after joining,
  after every epoch change and after reconnecting (binding the new connection
  to the leaf). ``missing`` (optional) lists the leaves whose connection the
  sender does not know to be present; each of them answers with its own Hello.
* ``{"t": "chat", "text": str, "id": int}``: up to 4000 characters; ``id``
  (optional, random 63 bits) lets receivers drop a copy resent after a
  reconnection.
* ``{"t": "bye"}``: the sender is leaving; a host removes its leaf.
* ``{"t": "alive"}``: a host (or successor) is present; sent every
  ``policy.ALIVE_INTERVAL`` seconds when it sent nothing else, so members can
  tell a crashed host from a quiet one (the takeover rule).
* ``{"t": "invite", "secret": bin (32 bytes)}``: from a host only: the meeting's
  invitation was replaced; the relay room moves to the new secret's token.
* ``{"t": "media", "mic": bool, "cam": bool, "screen": bool}``: the sender's own
  microphone, camera and screen-share switches, sent when they change and carried
  in every Hello (``media``), so others show a mute as a mute, not as silence.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from .errors import AppMessageError
from .names import MAX_NAME_CHARS

MAX_CHAT_CHARS = 4000

ConnId = Annotated[int, msgspec.Meta(ge=1, le=0xFFFFFFFF)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CHAT_CHARS)]


class _Msg(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="t"):
    """Base of all meeting application messages."""


MAX_MISSING = 1024
"""Leaves one Hello may ask about."""
Leaves = Annotated[
    tuple[Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)], ...],
    msgspec.Meta(max_length=MAX_MISSING),
]


class MediaState(_Msg, tag="media", frozen=True):
    mic: bool
    cam: bool
    screen: bool = False


class Hello(_Msg, tag="hello", frozen=True, omit_defaults=True):
    conn: ConnId
    name: Name
    missing: Leaves = ()
    media: MediaState | None = None


class Chat(_Msg, tag="chat", frozen=True, omit_defaults=True):
    text: Text
    id: Annotated[int, msgspec.Meta(ge=0, le=0x7FFFFFFFFFFFFFFF)] = 0


class Bye(_Msg, tag="bye", frozen=True):
    pass


class Alive(_Msg, tag="alive", frozen=True):
    pass


class Invite(_Msg, tag="invite", frozen=True):
    secret: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


AppMessage = Hello | Chat | Bye | Alive | Invite | MediaState

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AppMessage)


def encode_app_message(msg: AppMessage) -> bytes:
    return _encoder.encode(msg)


def decode_app_message(data: bytes) -> AppMessage:
    try:
        msg: AppMessage = _decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 raises the latter
        raise AppMessageError(f"bad application message: {exc}") from None
    return msg
