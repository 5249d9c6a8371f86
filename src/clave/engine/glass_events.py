"""Meeting core events -> what the glass is told: one handler per event type,
dispatched through :data:`EVENT_HANDLERS` by :class:`~clave.engine.bridge.GlassBridge`
(seen as a :class:`.glass_port.GlassPort`).

``ConnectionLost`` needs no handler: the session's ``link_state``, read on every
change, says it. ``Reconnected`` and ``MemberBack`` are when keyframes can be asked
for again (a member's connection is known only once it is back). ``Stranded`` only
marks the short while until the session swaps in a fresh joiner (then its
``rejoining`` says why).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..meeting import events as ev
from ..wire import StreamKind
from .glass_port import GlassPort

log = logging.getLogger("clave.engine.bridge")

MAX_ALERTS = 50
"""Security alerts kept for a tab that reconnects."""
_FORWARDED_ERRORS = (ev.ErrorCode.commit_failed, ev.ErrorCode.relay_error, ev.ErrorCode.lobby_full)
_KIND_NAMES = {StreamKind.video: "video", StreamKind.screen: "screen"}


def on_frame(bridge: GlassPort, event: ev.MediaFrameDecrypted) -> None:
    bridge.frames.forward(event)


def on_frame_rejected(bridge: GlassPort, event: ev.FrameRejected) -> None:
    bridge.frames.failed(event)


def on_chat(bridge: GlassPort, event: ev.ChatReceived) -> None:
    bridge.send(
        {
            "type": "chat",
            "sender": event.sender,
            "name": event.name,
            "text": event.text,
            "ts": time.time_ns() // 1_000_000,
        }
    )


def on_keyframe_requested(bridge: GlassPort, event: ev.KeyframeRequested) -> None:
    name = _KIND_NAMES.get(event.kind)
    if name is not None:
        bridge.send({"type": "keyframe_request", "kind": name})


def on_epoch(bridge: GlassPort, event: ev.EpochChanged) -> None:
    leaves = {e.leaf for e in event.roster}
    if leaves - bridge.known_leaves:
        # Newcomers (or we ourselves, just admitted) need a keyframe to start decoding.
        bridge.send({"type": "keyframe_request", "kind": "video"})
        bridge.send({"type": "keyframe_request", "kind": "screen"})
        bridge.people_changed()  # whom we met: the core remembered them
    bridge.known_leaves = leaves
    bridge.away &= leaves


def on_declined(bridge: GlassPort, event: ev.JoinDeclined) -> None:
    bridge.end(event.reason, outcome=event.outcome)


def on_removed(bridge: GlassPort, event: ev.Removed) -> None:
    bridge.end(event.reason)


def on_meeting_ended(bridge: GlassPort, event: ev.MeetingEnded) -> None:
    if bridge.nobody_answered():
        bridge.restart()  # the owner starts its meeting again under the same invitation
        return
    bridge.end(event.reason)


def on_stranded(bridge: GlassPort, event: ev.Stranded) -> None:
    """The core missed too much while away: the session asks to be admitted afresh."""
    bridge.stranded = event.reason


def on_alert(bridge: GlassPort, event: ev.SecurityAlert) -> None:
    alert = {
        "type": "alert",
        "id": len(bridge.alerts) + 1,
        "kind": event.kind.value,
        "message": event.message,
    }
    if len(bridge.alerts) < MAX_ALERTS:
        bridge.alerts.append(alert)
    bridge.send(alert)


def on_refused(bridge: GlassPort, event: ev.JoinRefused) -> None:
    bridge.end(f"the relay refused: {event.reason}")


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
    if event.code in _FORWARDED_ERRORS:
        bridge.send({"type": "error", "message": event.message})


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
}
QUIET_EVENTS = frozenset({ev.MediaFrameDecrypted, ev.FrameRejected})
"""Events that change nothing the ``state`` or ``padlock`` shows."""

__all__ = ["EVENT_HANDLERS", "QUIET_EVENTS"]
