"""Meeting core events -> what the glass is told: one handler per event type,
dispatched through :data:`EVENT_HANDLERS` by :class:`~clave.engine.bridge.GlassBridge`
(seen as a :class:`.glass_port.GlassPort`).

``ConnectionLost`` needs no handler: the session's ``link_state``, read on every
change, says it. ``Reconnected`` and ``MemberBack`` are when keyframes can be asked
for again (a member's connection is known only once it is back). ``Stranded`` only
marks the short while until the session swaps in a fresh joiner (then its
``rejoining`` says why).

What the glass is told is plain language: a relay's own error text, a library's
exception message or a Python error string never reaches it (they are logged,
without names, for whoever debugs). :func:`refusal_reason`, :func:`error_text` and
:func:`ended_reason` do the translating.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, cast

from ..meeting import events as ev
from ..meeting.app_messages import Emoji
from ..wire import StreamKind
from .glass_messages import (
    Alert,
    ChatMessage,
    Error,
    KeyframeRequest,
    Reaction,
    UnmuteRequest,
    VideoKind,
)
from .glass_port import GlassPort

log = logging.getLogger("clave.engine.bridge")

MAX_ALERTS = 50
"""Security alerts kept for a tab that reconnects."""
_KIND_NAMES: dict[StreamKind, VideoKind] = {
    StreamKind.video: "video",
    StreamKind.screen: "screen",
}

REFUSALS = {
    "room_full": "the meeting is full, or the relay has no room for more people; "
    "try again later",
    "rate_limited": "the relay is turning away connections from your network for now; "
    "try again in a minute",
    "bad_token": "the relay does not accept this invitation; ask the host for a new one",
    "rotated": "the invitation was replaced; ask the host for the new one",
    "bad_credential": "the relay does not accept this invitation; ask the host for a new one",
}
"""Why the relay turned a join away, by its error code, in words (its own text is not
shown: a relay is not trusted, and its words are for engineers)."""
REFUSED_OTHERWISE = "the relay turned the request away; try again, or ask the host"
COULD_NOT_JOIN = "could not join the meeting: "
"""How every ``ended`` reason for a join turned away before admission starts."""
COMMIT_FAILED = (
    "A change to the meeting (admitting, removing, locking or new keys) could not be "
    "made. Try again."
)
RATE_LIMITED = (
    "The relay is slowing this meeting's changes down: the last one may not have gone "
    "through. Wait a moment and try again."
)
LOBBY_FULL = (
    "The lobby is full: someone who asked to join was turned away. Admit or decline the "
    "people waiting to make room."
)
_RELAY_ERROR = re.compile(r"relay error (\w+):")
_UNREACHABLE = re.compile(r"the relay has been unreachable for ([\d.]+ s)\b")


def refusal_reason(code: str) -> str:
    """The ``ended`` reason for a join the relay refused (``code``: its error code)."""
    return COULD_NOT_JOIN + REFUSALS.get(code, REFUSED_OTHERWISE)


def error_text(event: ev.Error) -> str | None:
    """What the glass is told about a meeting error, or None: only what the user can act
    on (retry a change, make room in the lobby) is shown, never the raw text."""
    if event.code is ev.ErrorCode.commit_failed:
        return COMMIT_FAILED
    if event.code is ev.ErrorCode.lobby_full:
        return LOBBY_FULL
    if event.code is ev.ErrorCode.relay_error:
        match = _RELAY_ERROR.match(event.message)
        if match is not None and match.group(1) == "rate_limited":
            return RATE_LIMITED
    return None


def ended_reason(reason: str) -> str:
    """An ``ended`` reason in words: the meeting core's own sentences as they are, the
    engine giving up on the relay without the connection library's error text."""
    match = _UNREACHABLE.match(reason)
    if match is not None:
        return (
            "the connection to the relay was lost and it could not be reached again "
            f"for {match.group(1)}"
        )
    return reason


def relay_failure(exc: BaseException) -> str:
    """The ``ended`` reason for a join whose relay connection could not be opened: one
    plain line (the connection library's text goes to the log, by type only)."""
    log.info("relay connection failed: %s", type(exc.__cause__ or exc).__name__)
    return COULD_NOT_JOIN + (
        "the relay could not be reached; check this computer's network connection and "
        "that the relay is running, then press Rejoin"
    )


def start_failure(exc: BaseException) -> str:
    """The ``ended`` reason for a meeting that could not be set up on this computer."""
    log.info("could not start the meeting: %s", type(exc).__name__)
    return COULD_NOT_JOIN + "Clave could not set it up on this computer; press Rejoin to try again"


def on_frame(bridge: GlassPort, event: ev.MediaFrameDecrypted) -> None:
    bridge.stage.heard(event)  # audio: who speaks (engine/stage.py)
    bridge.frames.forward(event)
    if not bridge.recording.frame(event):  # our recording's decoder needs a keyframe
        bridge.frames.ask_keyframe(event.sender, event.kind)


def on_layer_capped(bridge: GlassPort, event: ev.LayerCapped) -> None:
    bridge.stage.capped(event.layer)


def on_frame_rejected(bridge: GlassPort, event: ev.FrameRejected) -> None:
    bridge.frames.failed(event)


def on_chat(bridge: GlassPort, event: ev.ChatReceived) -> None:
    bridge.send(
        ChatMessage(
            sender=event.sender, name=event.name, text=event.text, ts=time.time_ns() // 1_000_000
        )
    )


def on_keyframe_requested(bridge: GlassPort, event: ev.KeyframeRequested) -> None:
    name = _KIND_NAMES.get(event.kind)
    if name is not None:
        bridge.send(KeyframeRequest(kind=name, layer=event.layer))


def on_epoch(bridge: GlassPort, event: ev.EpochChanged) -> None:
    leaves = {e.leaf for e in event.roster}
    if leaves - bridge.known_leaves:
        # Newcomers (or we ourselves, just admitted) need a keyframe to start decoding.
        bridge.send(KeyframeRequest(kind="video"))
        bridge.send(KeyframeRequest(kind="screen"))
        bridge.people_changed()  # whom we met: the core remembered them
    bridge.known_leaves = leaves
    bridge.away &= leaves
    bridge.stage.refresh()  # members came or went: choose again


def on_media_switches(bridge: GlassPort, event: ev.MemberMedia) -> None:
    bridge.stage.refresh()  # a camera or a screen share went on or off


def on_declined(bridge: GlassPort, event: ev.JoinDeclined) -> None:
    bridge.end(event.reason, outcome=event.outcome)


def on_removed(bridge: GlassPort, event: ev.Removed) -> None:
    bridge.end(event.reason)


def on_meeting_ended(bridge: GlassPort, event: ev.MeetingEnded) -> None:
    if bridge.nobody_answered():
        bridge.restart()  # the owner starts its meeting again under the same invitation
        return
    bridge.end(ended_reason(event.reason))


def on_stranded(bridge: GlassPort, event: ev.Stranded) -> None:
    """The core missed too much while away: the session asks to be admitted afresh."""
    bridge.stranded = event.reason


def on_alert(bridge: GlassPort, event: ev.SecurityAlert) -> None:
    alert = Alert(id=len(bridge.alerts) + 1, kind=event.kind, message=event.message)
    if len(bridge.alerts) < MAX_ALERTS:
        bridge.alerts.append(alert)
    bridge.send(alert)


def on_refused(bridge: GlassPort, event: ev.JoinRefused) -> None:
    log.info("the relay refused to let us in (%s)", event.code)  # its text: not shown
    bridge.end(refusal_reason(event.code))


def on_away(bridge: GlassPort, event: ev.MemberAway) -> None:
    bridge.away.add(event.leaf)


def on_back(bridge: GlassPort, event: ev.MemberBack) -> None:
    bridge.member_back(event.leaf)


def on_left(bridge: GlassPort, event: ev.MemberLeft) -> None:
    bridge.away.discard(event.leaf)


def on_reconnected(bridge: GlassPort, event: ev.Reconnected) -> None:
    bridge.back_in_room()


def on_error(bridge: GlassPort, event: ev.Error) -> None:
    log.info("meeting reported %s", event.code)  # messages may carry names: not logged
    text = error_text(event)
    if text is not None:
        bridge.send(Error(message=text))


def on_reaction(bridge: GlassPort, event: ev.ReactionReceived) -> None:
    emoji = cast(Emoji, event.emoji)  # one of REACTIONS: the core decoded it strictly
    bridge.send(Reaction(sender=event.leaf, name=event.name, emoji=emoji))


def on_unmute_asked(bridge: GlassPort, event: ev.UnmuteAsked) -> None:
    """Shown to the user, who chooses: nothing is unmuted here."""
    bridge.send(UnmuteRequest(by=event.by, name=event.name))


EVENT_HANDLERS: dict[type[Any], Callable[[GlassPort, Any], None]] = {
    ev.MediaFrameDecrypted: on_frame,
    ev.FrameRejected: on_frame_rejected,
    ev.ChatReceived: on_chat,
    ev.KeyframeRequested: on_keyframe_requested,
    ev.EpochChanged: on_epoch,
    ev.JoinDeclined: on_declined,
    ev.Removed: on_removed,
    ev.MeetingEnded: on_meeting_ended,
    ev.Stranded: on_stranded,
    ev.SecurityAlert: on_alert,
    ev.JoinRefused: on_refused,
    ev.MemberAway: on_away,
    ev.MemberBack: on_back,
    ev.MemberLeft: on_left,
    ev.Reconnected: on_reconnected,
    ev.Error: on_error,
    ev.LayerCapped: on_layer_capped,
    ev.MemberMedia: on_media_switches,
    ev.ReactionReceived: on_reaction,
    ev.UnmuteAsked: on_unmute_asked,
}
QUIET_EVENTS = frozenset({ev.MediaFrameDecrypted, ev.FrameRejected})
"""Events that change nothing the ``state`` or ``padlock`` shows."""

__all__ = [
    "EVENT_HANDLERS",
    "QUIET_EVENTS",
    "ended_reason",
    "error_text",
    "refusal_reason",
    "relay_failure",
    "start_failure",
]
