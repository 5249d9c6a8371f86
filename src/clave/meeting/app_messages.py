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
  switches (bit 1 microphone, 2 camera, 4 screen, 8 recording). Only a newcomer waiting for
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
* ``{"t": "media", "mic": bool, "cam": bool, "screen": bool, "rec": bool}``: the
  sender's own microphone, camera and screen-share switches and whether it is
  recording the meeting (``rec``, optional), sent when they change and carried in
  every Hello (``media``), so others show a mute as a mute, not as silence, and
  everyone sees who records.
* ``{"t": "hand", "up": bool}``: the sender raised or lowered its own hand; every
  member queues raised hands in the order they arrive (:mod:`.hands`).
* ``{"t": "react", "emoji": str}``: one of :data:`REACTIONS`, floated on the
  sender's tile; receivers drop a sender's reactions beyond a rate limit.
* ``{"t": "lower", "leaf": int}``, ``{"t": "ask_unmute", "leaf": int}``,
  ``{"t": "mute", "leaf": int}``: from a host only (a member's is refused): lower
  ``leaf``'s hand; ask ``leaf`` to unmute (its user chooses); stop ``leaf``'s audio
  (its engine stops sending audio until its user unmutes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, get_args

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


class MediaState(_Msg, tag="media", frozen=True, omit_defaults=True):
    mic: bool
    cam: bool
    screen: bool = False
    rec: bool = False
    """The sender is recording the meeting (shown to all as "Recording by <name>")."""


MAX_DIRECTORY = 1024
"""Bindings (and switches) one directory carries at most (about 15 KiB encoded)."""
MIC, CAM, SCREEN, REC = 1, 2, 4, 8
"""Bits of a directory's switches."""
Leaf = Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]
Bits = Annotated[int, msgspec.Meta(ge=0, le=MIC | CAM | SCREEN | REC)]


class Hello(_Msg, tag="hello", frozen=True, omit_defaults=True):
    conn: ConnId
    name: Name
    missing: Leaves = ()
    media: MediaState | None = None


class Directory(_Msg, tag="dir", frozen=True, omit_defaults=True):
    conns: Annotated[tuple[tuple[Leaf, ConnId], ...], msgspec.Meta(max_length=MAX_DIRECTORY)]
    media: Annotated[tuple[tuple[Leaf, Bits], ...], msgspec.Meta(max_length=MAX_DIRECTORY)] = ()


def media_bits(state: MediaState) -> int:
    switches = ((MIC, state.mic), (CAM, state.cam), (SCREEN, state.screen), (REC, state.rec))
    return sum(bit for bit, on in switches if on)


def media_of_bits(bits: int) -> MediaState:
    return MediaState(
        mic=bool(bits & MIC), cam=bool(bits & CAM), screen=bool(bits & SCREEN), rec=bool(bits & REC)
    )


def switches(state: MediaState) -> tuple[bool, bool, bool, bool]:
    """``(mic, cam, screen, rec)``, as :class:`~.events.MemberMedia` takes them."""
    return state.mic, state.cam, state.screen, state.rec


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


Emoji = Literal[
    "\U0001f44d", "\U0001f44f", "\u2764\ufe0f", "\U0001f602", "\U0001f62e", "\U0001f389"
]  # fmt: skip
REACTIONS: tuple[str, ...] = get_args(Emoji)
"""The fixed set of reactions: thumbs up, clapping, heart, laughing, surprised, party."""


class Hand(_Msg, tag="hand", frozen=True):
    """The sender raised (``up``) or lowered its own hand."""

    up: bool


class React(_Msg, tag="react", frozen=True):
    """A reaction from the fixed set, shown briefly on the sender's tile."""

    emoji: Emoji


class LowerHand(_Msg, tag="lower", frozen=True):
    """From a host only: lower ``leaf``'s hand."""

    leaf: Leaf


class AskUnmute(_Msg, tag="ask_unmute", frozen=True):
    """From a host only: ``leaf`` is asked to unmute (it chooses; nothing is unmuted)."""

    leaf: Leaf


class Mute(_Msg, tag="mute", frozen=True):
    """From a host only: ``leaf``'s engine stops sending audio until its user unmutes."""

    leaf: Leaf


AppMessage = (
    Hello | Chat | Bye | Alive | Invite | MediaState | Directory
    | Hand | React | LowerHand | AskUnmute | Mute
)  # fmt: skip

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
