"""Meeting messages carried as MLS application data (RFC 9420 section 6.3).

msgspec Structs tagged by ``"t"`` and MessagePack-encoded; decoding is strict
(unknown tags, extra fields, wrong types and oversized values raise
:class:`AppMessageError`):

* ``{"t": "hello", "conn": int, "name": str, "missing": [int]}``: announces the
  sender's relay connection id (which must equal the relay's ``AppFrom.sender``),
  so every member can map relay connections to MLS leaves. Sent only when that
  binding is new to the others: after joining (once the directory arrived), after
  reconnecting (binding the new connection to the leaf) and in answer to another
  Hello's ``missing``, never merely because the epoch changed (an epoch change
  costs O(N) messages, not O(N²)). ``missing`` (optional) lists the leaves whose
  connection the sender does not know to be present; each of them answers with
  its own Hello.
* ``{"t": "dir", "conns": [[leaf, conn]], "media": [[leaf, bits]]}``: the
  *directory* a host sends right after its commit that added members, in the new
  epoch: every leaf -> connection binding it knows and each member's announced
  switches (bit 1 microphone, 2 camera, 4 screen). Only a newcomer waiting for
  one reads it, only from a host, and never over a binding a member's own Hello
  taught it; others ignore it after decoding.
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

from collections.abc import Mapping
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


MAX_DIRECTORY = 1024
"""Bindings (and switches) one directory carries at most (about 15 KiB encoded)."""
MIC, CAM, SCREEN = 1, 2, 4
"""Bits of a directory's switches."""
Leaf = Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]
Bits = Annotated[int, msgspec.Meta(ge=0, le=MIC | CAM | SCREEN)]


class Hello(_Msg, tag="hello", frozen=True, omit_defaults=True):
    conn: ConnId
    name: Name
    missing: Leaves = ()
    media: MediaState | None = None


class Directory(_Msg, tag="dir", frozen=True, omit_defaults=True):
    conns: Annotated[tuple[tuple[Leaf, ConnId], ...], msgspec.Meta(max_length=MAX_DIRECTORY)]
    media: Annotated[tuple[tuple[Leaf, Bits], ...], msgspec.Meta(max_length=MAX_DIRECTORY)] = ()


def media_bits(state: MediaState) -> int:
    return (MIC if state.mic else 0) | (CAM if state.cam else 0) | (SCREEN if state.screen else 0)


def media_of_bits(bits: int) -> MediaState:
    return MediaState(mic=bool(bits & MIC), cam=bool(bits & CAM), screen=bool(bits & SCREEN))


def make_directory(conns: Mapping[int, int], media: Mapping[int, MediaState]) -> Directory:
    """A directory of ``conns`` (leaf -> connection) and ``media`` (leaf -> switches),
    by leaf, the first ``MAX_DIRECTORY`` of each."""
    bits = sorted((leaf, media_bits(state)) for leaf, state in media.items())
    return Directory(
        conns=tuple(sorted(conns.items()))[:MAX_DIRECTORY], media=tuple(bits)[:MAX_DIRECTORY]
    )


class Chat(_Msg, tag="chat", frozen=True, omit_defaults=True):
    text: Text
    id: Annotated[int, msgspec.Meta(ge=0, le=0x7FFFFFFFFFFFFFFF)] = 0


class Bye(_Msg, tag="bye", frozen=True):
    pass


class Alive(_Msg, tag="alive", frozen=True):
    pass


class Invite(_Msg, tag="invite", frozen=True):
    secret: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


AppMessage = Hello | Chat | Bye | Alive | Invite | MediaState | Directory

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
