"""The Local UI channel's JSON control messages, both ways (docs/PROTOCOL.md, "Local UI
channel"): one msgspec Struct per message, tagged by ``type``.

Glass -> engine messages are decoded by one decoder (:func:`.glass_channel.parse_control`)
and handed to their handler (:mod:`.glass_actions`) typed; engine -> glass messages are
built as structs and encoded by the glass's outbox (:class:`.glass_channel.GlassOutbox`).
The glass has the same definitions in ``ui/protocol.js`` (``SCHEMA``);
tests/engine/test_glass_schema.py checks that both say the same: a field, a type, an
enumeration or a bound changed on one side only fails it.

Bounds are those the glass holds to: what it clamps when it reads a message, what it
lets a user type. Glass -> engine structs refuse unknown fields (a renamed field is an
error, not silently ignored).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ..meeting.app_messages import MAX_CHAT_CHARS, Emoji
from ..meeting.events import AlertKind, Role
from ..meeting.names import MAX_NAME_CHARS

U32 = 0xFFFF_FFFF
"""Largest leaf or join request id."""


def _decimal_up_to(limit: int) -> str:
    """A regular expression for the decimal strings of 0 to ``limit`` (leading zeros
    allowed, no more digits than ``limit`` has)."""
    top = str(limit)
    ways = [f"[0-9]{{1,{len(top) - 1}}}"] if len(top) > 1 else []
    for i, digit in enumerate(top):
        if digit != "0":
            below = f"[0-{int(digit) - 1}]" if digit != "1" else "0"
            rest = len(top) - i - 1
            ways.append(top[:i] + below + (f"[0-9]{{{rest}}}" if rest else ""))
    ways.append(top)
    return "^(?:" + "|".join(ways) + ")$"


DECIMAL_U32 = _decimal_up_to(U32)
"""A leaf or request id as a string of decimal digits (JavaScript may keep ids as strings)."""

Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS)]
ChatText = Annotated[str, msgspec.Meta(max_length=MAX_CHAT_CHARS)]
Short = Annotated[str, msgspec.Meta(max_length=200)]
"""A key fingerprint, the security code, a ``familiarity`` sentence."""
Fingerprint = Short
Sentence = Annotated[str, msgspec.Meta(max_length=500)]
"""Words shown to the user: a reason, a detail, an error."""
Link = Annotated[str, msgspec.Meta(max_length=2048)]
INVITE_LINK = r"^clave://[^\s/?#]+/\S*$"
"""An invitation: a clave:// URL (it holds the meeting's secret)."""
PAGE_URL = r"^https?://[^\s/?#]+/[^\s#]*$"
"""The relay's page for invitees (no secret): an http(s) URL without fragment."""
InviteLink = Annotated[str, msgspec.Meta(max_length=2048, pattern=INVITE_LINK)]
PageUrl = Annotated[str, msgspec.Meta(max_length=2048, pattern=PAGE_URL)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Layer = Annotated[int, msgspec.Meta(ge=0, le=2)]
"""A simulcast layer: 0 (smallest) to 2 (full size)."""
WireId = (
    Annotated[int, msgspec.Meta(ge=0, le=U32)] | Annotated[str, msgspec.Meta(pattern=DECIMAL_U32)]
)
"""A leaf or join request id from the glass: an integer, or its decimal digits."""
MAX_LIST = 1000
"""Roster, lobby and pending removals: entries the glass reads at most."""
LOBBY_SHOWN = 50
"""Join requests a ``state`` lists at most (the first to arrive); ``lobby_waiting`` counts
them all, so hundreds waiting cost neither the engine nor the page."""
MAX_STATS_ENTRIES = 32 * 1024
"""Entries of a ``stats`` map or list at most (more never fit in a control message)."""
_STATS_BOUND = msgspec.Meta(max_length=MAX_STATS_ENTRIES)
StatsKey = Annotated[str, msgspec.Meta(max_length=40)]
"""``"<leaf>:<kind>"``, a stream kind, a leaf or a jitter buffer's counter."""
Counts = Annotated[dict[StatsKey, NonNegative], _STATS_BOUND]

GlassPhase = Literal["prejoin", "connecting", "lobby", "in_meeting", "ended"]
PadlockState = Literal["encrypted", "warning", "rekeying", "reconnecting", "not_encrypted"]
Connection = Literal["connected", "reconnecting", "closed"]
RejoinMode = Literal["knock", "restart"]
Outcome = Literal["declined", "locked", "full"]
VideoKind = Literal["video", "screen"]


def as_int(value: int | str) -> int:
    """A :data:`WireId` as the integer it names (the decoder checked its range)."""
    return int(value)


# --------------------------------------------------------------- glass -> engine


class ToEngine(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of the glass -> engine messages."""


class Join(ToEngine, tag="join", frozen=True):
    """Join (once a meeting is over: join again). ``name`` is normalised by the engine
    (NFKC, trimmed; 1-64 characters, see docs/PROTOCOL.md, "Identity")."""

    name: Name


class Chat(ToEngine, tag="chat", frozen=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CHAT_CHARS)]


class Admit(ToEngine, tag="admit", frozen=True):
    id: WireId


class Deny(ToEngine, tag="deny", frozen=True):
    id: WireId


class Lock(ToEngine, tag="lock", frozen=True):
    locked: bool


class AutoAdmit(ToEngine, tag="auto_admit", frozen=True):
    on: bool


class AdmitAll(ToEngine, tag="admit_all", frozen=True):
    """Admit every waiting request, listed or not (the meeting adds them in batches)."""


class Remove(ToEngine, tag="remove", frozen=True):
    """``fingerprint``, when given, must still be the leaf's member's (leaves are reused)."""

    leaf: WireId
    replace_invitation: bool = False
    fingerprint: Fingerprint | None = None


class SetHost(ToEngine, tag="set_host", frozen=True):
    leaf: WireId
    host: bool
    fingerprint: Fingerprint | None = None


class Verify(ToEngine, tag="verify", frozen=True):
    leaf: WireId
    verified: bool
    fingerprint: Fingerprint | None = None


class Rotate(ToEngine, tag="rotate", frozen=True):
    """Replace the invitation."""


class RequestKeyframe(ToEngine, tag="request_keyframe", frozen=True):
    leaf: WireId
    kind: VideoKind


class Pin(ToEngine, tag="pin", frozen=True):
    """Keep this member's video on stage (received, one layer up) whoever speaks."""

    leaf: WireId


class Unpin(ToEngine, tag="unpin", frozen=True):
    leaf: WireId


class View(ToEngine, tag="view", frozen=True):
    """The glass's layout: in speaker view the focus is received at the top layer and
    the filmstrip at the lowest (engine/stage.py)."""

    mode: Literal["grid", "speaker"]


class Leave(ToEngine, tag="leave", frozen=True):
    """Say goodbye; ``ended`` follows."""


class MediaState(ToEngine, tag="media_state", frozen=True):
    """The glass's own capture switches (handed back in ``hello``)."""

    mic: bool
    cam: bool
    screen: bool


class Stats(ToEngine, tag="stats", frozen=True):
    """The media worker's report (every 2 s in the meeting; see ui/media/worker.js):
    decoder outputs and capture-to-decode latencies per ``"<leaf>:<kind>"`` since the
    last report, totals, and the audio jitter buffers' state per sender."""

    interval_ms: NonNegative = 0
    decoded: Counts = msgspec.field(default_factory=dict)
    latency_ms: Annotated[
        dict[StatsKey, Annotated[list[float], _STATS_BOUND]], _STATS_BOUND
    ] = msgspec.field(default_factory=dict)
    decoded_total: Counts = msgspec.field(default_factory=dict)
    sent_total: Counts = msgspec.field(default_factory=dict)
    lag_skips: NonNegative = 0
    audio_dropped: NonNegative = 0
    audio: Annotated[
        dict[StatsKey, Annotated[dict[StatsKey, float | None], _STATS_BOUND]], _STATS_BOUND
    ] = msgspec.field(default_factory=dict)
    decoded_layers: Counts = msgspec.field(default_factory=dict)
    """Decoder outputs per ``"<leaf>:<kind>:<layer>"`` (simulcast layer) since the page
    loaded."""


class Hand(ToEngine, tag="hand", frozen=True):
    """Raise (``up``) or lower our own hand."""

    up: bool


class LowerHand(ToEngine, tag="lower_hand", frozen=True):
    """Lower a member's hand (someone else's: hosts only)."""

    leaf: WireId


class React(ToEngine, tag="react", frozen=True):
    """Send a reaction from the fixed set."""

    emoji: Emoji


class AskUnmute(ToEngine, tag="ask_unmute", frozen=True):
    """Host: ask a member to unmute (they choose)."""

    leaf: WireId
    fingerprint: Fingerprint | None = None


class Mute(ToEngine, tag="mute", frozen=True):
    """Host: mute a member's outgoing audio for everyone (their engine honours it)."""

    leaf: WireId
    fingerprint: Fingerprint | None = None


class Record(ToEngine, tag="record", frozen=True):
    """Host: start (``on``) or stop a recording of the meeting that this engine writes
    to a file; everyone is told who records."""

    on: bool


LangTag = Annotated[str, msgspec.Meta(max_length=3, pattern="^[a-z]{2,3}$")]
"""A language of the glass's catalogue: ``en``, ``de``."""


class Remembered(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The glass's choices the engine keeps for the next meeting, on any address
    (:mod:`.glass_prefs`): the name typed, devices by label (a device's id differs from
    one page address to the next; its label does not), the pre-join switches, the
    language and the layout. Nothing secret; null: nothing kept."""

    name: Name | None = None
    camera: Short | None = None
    mic: Short | None = None
    speaker: Short | None = None
    mic_on: bool | None = None
    cam_on: bool | None = None
    lang: LangTag | None = None
    view: Literal["grid", "speaker"] | None = None


class Remember(ToEngine, tag="remember", frozen=True):
    """Keep these choices for next time (a null field keeps what was kept)."""

    choices: Remembered


GlassMessage = (
    Join | Chat | Admit | AdmitAll | Deny | Lock | AutoAdmit | Remove | SetHost | Verify
    | Rotate | RequestKeyframe | Leave | MediaState | Stats | Pin | Unpin | View
    | Hand | LowerHand | React | AskUnmute | Mute | Record | Remember
)
"""Everything the glass may send."""

# --------------------------------------------------------------- engine -> glass


class ToGlass(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of the engine -> glass messages."""


class _Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of the objects nested in a message."""


class MediaSwitches(_Entry, frozen=True):
    mic: bool
    cam: bool
    screen: bool


class Hello(ToGlass, tag="hello", frozen=True):
    """First, on connect. ``default_name``: the last ``join``'s, else the command's;
    ``media``: the switches the glass last reported (a reloaded tab starts with them)."""

    role: Literal["host", "guest"]
    link: Link
    info_url: PageUrl
    default_name: Name
    fingerprint: Fingerprint | None
    media: MediaSwitches | None
    remembered: Remembered | None = None
    """The choices kept from earlier meetings (``remember``), if any."""


class RosterEntry(_Entry, frozen=True):
    """A member. ``away`` is sent only while somebody is away (then for everyone)."""

    leaf: NonNegative
    name: Name
    fingerprint: Fingerprint
    is_host: bool
    is_self: bool
    role: Role
    familiarity: Short
    verified: bool
    confusable_with: Name | None
    mic: bool | None
    """The member's announced microphone switch (null: it said nothing yet)."""
    cam: bool | None
    """The member's announced camera switch (null: it said nothing yet)."""
    away: bool | msgspec.UnsetType = msgspec.UNSET
    recording: bool = False
    """The member announced that it records the meeting ("Recording by <name>")."""


class LobbyEntry(_Entry, frozen=True):
    """A join request (hosts only); the glass sends ``id`` back to admit or deny it."""

    id: int
    name: Name
    fingerprint: Fingerprint
    familiarity: Short
    confusable_with: Name | None


class Policy(_Entry, frozen=True):
    locked: bool
    auto_admit: bool


class State(ToGlass, tag="state", frozen=True):
    """The meeting as the glass shows it; sent on connect and after every change."""

    phase: GlassPhase
    self_leaf: int | None
    is_host: bool
    epoch: int | None
    security_code: Short | None
    roster: Annotated[list[RosterEntry], msgspec.Meta(max_length=MAX_LIST)]
    lobby: Annotated[list[LobbyEntry], msgspec.Meta(max_length=MAX_LIST)]
    """The first ``LOBBY_SHOWN`` join requests waiting (hosts only)."""
    lobby_waiting: NonNegative
    """Join requests waiting in all (hosts only)."""
    policy: Policy
    pending_removals: Annotated[list[NonNegative], msgspec.Meta(max_length=MAX_LIST)]
    ordering: Sentence | None
    link: InviteLink | None
    info_url: PageUrl
    connection: Connection | None
    reconnects: NonNegative
    rejoining: Sentence | None
    rejoin: RejoinMode | None
    hands: Annotated[list[NonNegative], msgspec.Meta(max_length=MAX_LIST)] = msgspec.field(
        default_factory=list
    )
    """Leaves with a raised hand, in the order raised."""
    muted_by: Name | None = None
    """The host who muted our audio, until we unmute (no audio is sent meanwhile)."""


class Padlock(ToGlass, tag="padlock", frozen=True):
    state: PadlockState
    detail: Sentence


class FrameFailed(ToGlass, tag="frame_failed", frozen=True):
    sender: int | None
    name: Name | None
    reason: Annotated[str, msgspec.Meta(max_length=300)]


class ChatMessage(ToGlass, tag="chat", frozen=True):
    """A member's chat message, or our own echoed once encrypted and sent; ``ts`` in ms
    since the Unix epoch."""

    sender: int | None
    name: Name
    text: ChatText
    ts: int
    missed: Annotated[list[Name], msgspec.Meta(max_length=1000)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    """Our own message only: members it could not reach when it was sent (away: their
    connection is gone; they never get it, as it is not kept for them)."""
    queued: bool | msgspec.UnsetType = msgspec.UNSET
    """Our own message only: the relay link is down; it goes out once it is back."""


class KeyframeRequest(ToGlass, tag="keyframe_request", frozen=True):
    """A keyframe of ``kind`` is wanted: of that simulcast ``layer`` only, or (null) of
    every layer."""

    kind: VideoKind
    layer: Layer | None = None


class Stage(ToGlass, tag="stage", frozen=True):
    """Who is on stage (their video is received; the others are avatars), who speaks.

    ``video``: leaves whose video the engine subscribed to, in the order chosen (pinned,
    recent speakers, the rest); ``layers``: the layer asked for each (``"<leaf>"`` keys);
    ``speaking``: leaves speaking now, most recent first; ``active``: the focus (the
    first pinned, else the most recent speaker), or null; ``pinned``: the glass's pins
    still in the meeting."""

    video: Annotated[list[NonNegative], msgspec.Meta(max_length=MAX_LIST)]
    layers: Annotated[dict[StatsKey, Layer], msgspec.Meta(max_length=MAX_LIST)]
    speaking: Annotated[list[NonNegative], msgspec.Meta(max_length=MAX_LIST)]
    active: NonNegative | None
    pinned: Annotated[list[NonNegative], msgspec.Meta(max_length=MAX_LIST)]


class Alert(ToGlass, tag="alert", frozen=True):
    id: int
    kind: AlertKind
    message: Sentence


class Ended(ToGlass, tag="ended", frozen=True):
    """The meeting is over for us; ``joined``: we had been in it."""

    reason: Sentence
    outcome: Outcome | None
    joined: bool


class Reaction(ToGlass, tag="reaction", frozen=True):
    """A member's reaction (ours too), floated on its tile."""

    sender: NonNegative
    name: Name
    emoji: Emoji


class UnmuteRequest(ToGlass, tag="unmute_request", frozen=True):
    """A host asks us to unmute: the user chooses (nothing is unmuted meanwhile)."""

    by: NonNegative
    name: Name


class Error(ToGlass, tag="error", frozen=True):
    """A refused message, or a problem the user can act on (never a library's words)."""

    message: Sentence


class Recording(ToGlass, tag="recording", frozen=True):
    """Our own recording (started from this page): on or off, and the file it writes."""

    on: bool
    path: Link | None


EngineMessage = (
    Hello | State | Padlock | FrameFailed | ChatMessage | KeyframeRequest | Alert | Ended
    | Error | Stage | Reaction | UnmuteRequest | Recording
)
"""Everything the engine sends the glass."""

__all__ = [
    "DECIMAL_U32",
    "INVITE_LINK",
    "LOBBY_SHOWN",
    "MAX_LIST",
    "MAX_STATS_ENTRIES",
    "PAGE_URL",
    "U32",
    "Admit",
    "AdmitAll",
    "Alert",
    "AskUnmute",
    "AutoAdmit",
    "Chat",
    "ChatMessage",
    "Connection",
    "Deny",
    "Ended",
    "EngineMessage",
    "Error",
    "FrameFailed",
    "GlassMessage",
    "GlassPhase",
    "Hand",
    "Hello",
    "Join",
    "KeyframeRequest",
    "Layer",
    "Leave",
    "LobbyEntry",
    "Lock",
    "LowerHand",
    "MediaState",
    "MediaSwitches",
    "Mute",
    "Outcome",
    "Padlock",
    "PadlockState",
    "Pin",
    "Policy",
    "React",
    "Reaction",
    "Record",
    "Recording",
    "RejoinMode",
    "Remove",
    "RequestKeyframe",
    "RosterEntry",
    "Rotate",
    "SetHost",
    "Stage",
    "State",
    "Stats",
    "ToEngine",
    "ToGlass",
    "UnmuteRequest",
    "Unpin",
    "Verify",
    "VideoKind",
    "View",
    "WireId",
    "as_int",
]
