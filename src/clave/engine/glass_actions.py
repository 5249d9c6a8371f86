"""Glass -> engine control messages (docs/PROTOCOL.md, "Local UI channel"): one
handler per message struct, dispatched through :data:`HANDLERS`.

A handler receives its message decoded and checked by
:func:`.glass_channel.parse_control` (types, bounds), checks what only the meeting
knows (a refused message raises :class:`BadMessage`, which the bridge turns into an
``error`` reply that changes nothing) and acts on the
:class:`~clave.engine.bridge.GlassBridge` (as a :class:`.glass_port.GlassPort`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..media.errors import MediaError
from ..meeting.errors import MeetingError
from ..meeting.meeting import Phase
from ..meeting.names import normalize_display_name
from ..wire import StreamKind
from . import glass_messages as gm
from .connection import RelayConnectionError
from .glass_channel import BadMessage
from .glass_port import GlassPort
from .session import LinkState

Handler = Callable[[GlassPort, Any], Awaitable[None]]
"""``handler(bridge, message)``, ``message`` of the struct type it is registered for."""

_STREAM_KINDS = {"video": StreamKind.video, "screen": StreamKind.screen}


async def on_join(bridge: GlassPort, msg: gm.Join) -> None:
    """Join (once a meeting is over: join again, a fresh admission, same identity)."""
    try:
        name = normalize_display_name(msg.name)
    except MeetingError as exc:
        raise BadMessage(str(exc)) from None
    await bridge.join(name)


async def on_chat(bridge: GlassPort, msg: gm.Chat) -> None:
    text = msg.text
    await bridge.act("send a chat message", lambda m: m.send_chat(text))
    session = bridge.session
    if session is not None:  # echo: encrypted and sent, so the glass can mark it so
        meeting = session.meeting
        missed = [e.name for e in meeting.roster if e.leaf in bridge.away and not e.is_self]
        bridge.send(
            gm.ChatMessage(
                sender=meeting.own_leaf,
                name=meeting.name,
                text=text,
                ts=time.time_ns() // 1_000_000,
                missed=missed or msgspec.UNSET,
                queued=session.link_state != LinkState.connected or msgspec.UNSET,
            )
        )


async def on_admit(bridge: GlassPort, msg: gm.Admit) -> None:
    rid = gm.as_int(msg.id)
    if await bridge.act("admit", lambda m: m.admit(rid)) is False:
        raise BadMessage("that join request is gone")


async def on_admit_all(bridge: GlassPort, msg: gm.AdmitAll) -> None:
    """Everyone waiting, listed on the page or not: ``admit_batch`` per commit."""
    await bridge.act("admit everyone waiting", lambda m: m.admit_all())


async def on_deny(bridge: GlassPort, msg: gm.Deny) -> None:
    rid = gm.as_int(msg.id)
    if await bridge.act("deny", lambda m: m.deny(rid)) is False:
        raise BadMessage("that join request is gone or already being admitted")


async def on_lock(bridge: GlassPort, msg: gm.Lock) -> None:
    await bridge.act("lock the meeting", lambda m: m.set_locked(msg.locked))


async def on_auto_admit(bridge: GlassPort, msg: gm.AutoAdmit) -> None:
    await bridge.act("change auto-admit", lambda m: m.set_auto_admit(msg.on))


def check_person(bridge: GlassPort, fingerprint: str | None, leaf: int) -> None:
    """If the glass names the person (``fingerprint``), the leaf must still be theirs:
    a leaf freed by someone leaving may be reused by a newcomer meanwhile."""
    if fingerprint is None:
        return
    session = bridge.session
    entry = None
    if session is not None:
        entry = next((e for e in session.meeting.roster if e.leaf == leaf), None)
    if entry is None or entry.fingerprint != fingerprint:
        raise BadMessage("that member is no longer in the meeting")


async def on_remove(bridge: GlassPort, msg: gm.Remove) -> None:
    leaf = gm.as_int(msg.leaf)
    check_person(bridge, msg.fingerprint, leaf)
    await bridge.act(
        "remove a member",
        lambda m: m.remove_member(leaf, replace_invitation=msg.replace_invitation),
    )


async def on_set_host(bridge: GlassPort, msg: gm.SetHost) -> None:
    leaf = gm.as_int(msg.leaf)
    check_person(bridge, msg.fingerprint, leaf)
    await bridge.act("change roles", lambda m: m.set_host(leaf, msg.host))


async def on_verify(bridge: GlassPort, msg: gm.Verify) -> None:
    leaf = gm.as_int(msg.leaf)
    check_person(bridge, msg.fingerprint, leaf)
    await bridge.act("mark a member verified", lambda m: m.set_verified(leaf, msg.verified))
    bridge.people_changed()


async def on_rotate(bridge: GlassPort, msg: gm.Rotate) -> None:
    await bridge.act("replace the invitation", lambda m: m.rotate_invitation())


async def on_remember(bridge: GlassPort, msg: gm.Remember) -> None:
    """Keep the page's choices for the next meeting (:mod:`.glass_prefs`)."""
    bridge.remembered.update(msg.choices)


async def on_record(bridge: GlassPort, msg: gm.Record) -> None:
    """Host: start or stop a recording this engine writes (:mod:`.glass_recording`)."""
    session = bridge.session
    if session is None or session.meeting.phase is not Phase.in_meeting:
        raise BadMessage("Cannot record: you are not in the meeting.")
    if not msg.on:
        await bridge.recording.stop(session)
        return
    if not session.meeting.is_host:
        raise BadMessage("Only a host can record the meeting.")
    try:
        await bridge.recording.start(session)
    except MediaError as exc:
        raise BadMessage(f"Cannot record: {exc}") from None
    await bridge.act("ask for keyframes", lambda m: bridge.frames.ask_everyone())


async def on_request_keyframe(bridge: GlassPort, msg: gm.RequestKeyframe) -> None:
    leaf = gm.as_int(msg.leaf)
    kind = _STREAM_KINDS[msg.kind]
    if (bridge.session is not None and not bridge.link_up) or leaf in bridge.away:
        return  # asked for by the bridge itself once the link (or that member) is back
    await bridge.act("request a keyframe", lambda m: m.request_keyframe(leaf, kind))


async def on_leave(bridge: GlassPort, msg: gm.Leave) -> None:
    await bridge.leave("you left the meeting")


async def on_media_state(bridge: GlassPort, msg: gm.MediaState) -> None:
    """The glass's microphone, camera and screen switches, handed back to a reloaded tab."""
    bridge.media_state = gm.MediaSwitches(mic=msg.mic, cam=msg.cam, screen=msg.screen)
    await share_media_state(bridge)  # the others see a mute as a mute


async def share_media_state(bridge: GlassPort) -> None:
    """Tell the meeting the glass's microphone, camera and screen switches, so the others
    show a mute as a mute (``Meeting.set_media_state``); nothing before a meeting."""
    session, switches = bridge.session, bridge.media_state
    if session is None or switches is None or session.meeting.phase is Phase.ended:
        return
    mic, cam, screen = switches.mic, switches.cam, switches.screen
    with contextlib.suppress(MeetingError, RelayConnectionError):
        await session.act(lambda m: m.set_media_state(mic=mic, cam=cam, screen=screen))


async def on_pin(bridge: GlassPort, msg: gm.Pin) -> None:
    """Keep a member's video on stage whoever speaks (engine/stage.py)."""
    leaf = gm.as_int(msg.leaf)
    await bridge.act("pin a member", lambda m: bridge.stage.pin(leaf, True))


async def on_unpin(bridge: GlassPort, msg: gm.Unpin) -> None:
    leaf = gm.as_int(msg.leaf)
    await bridge.act("unpin a member", lambda m: bridge.stage.pin(leaf, False))


async def on_view(bridge: GlassPort, msg: gm.View) -> None:
    """Grid or speaker view: the layers chosen follow (kept for the next meeting too)."""
    speaker = msg.mode == "speaker"
    session = bridge.session
    if session is None or session.meeting.phase is not Phase.in_meeting or not bridge.link_up:
        bridge.stage.speaker_view = speaker  # the next choice uses it
        return
    await bridge.act("change the layout", lambda m: bridge.stage.set_view(speaker))


async def on_hand(bridge: GlassPort, msg: gm.Hand) -> None:
    await bridge.act("raise a hand", lambda m: m.raise_hand(msg.up))


async def on_lower_hand(bridge: GlassPort, msg: gm.LowerHand) -> None:
    leaf = gm.as_int(msg.leaf)
    await bridge.act("lower a hand", lambda m: m.lower_hand(leaf))


async def on_react(bridge: GlassPort, msg: gm.React) -> None:
    """Beyond the rate limit the reaction is not sent (quietly: the button cools down)."""
    await bridge.act("react", lambda m: m.react(msg.emoji))


async def on_ask_unmute(bridge: GlassPort, msg: gm.AskUnmute) -> None:
    leaf = gm.as_int(msg.leaf)
    check_person(bridge, msg.fingerprint, leaf)
    await bridge.act("ask someone to unmute", lambda m: m.ask_to_unmute(leaf))


async def on_mute(bridge: GlassPort, msg: gm.Mute) -> None:
    leaf = gm.as_int(msg.leaf)
    check_person(bridge, msg.fingerprint, leaf)
    await bridge.act("mute someone", lambda m: m.mute_member(leaf))


async def on_stats(bridge: GlassPort, msg: gm.Stats) -> None:
    bridge.last_stats = msg


HANDLERS: dict[type[gm.ToEngine], Handler] = {
    gm.Join: on_join,
    gm.Chat: on_chat,
    gm.Admit: on_admit,
    gm.AdmitAll: on_admit_all,
    gm.Deny: on_deny,
    gm.Lock: on_lock,
    gm.AutoAdmit: on_auto_admit,
    gm.Remove: on_remove,
    gm.SetHost: on_set_host,
    gm.Verify: on_verify,
    gm.Rotate: on_rotate,
    gm.RequestKeyframe: on_request_keyframe,
    gm.Leave: on_leave,
    gm.MediaState: on_media_state,
    gm.Stats: on_stats,
    gm.Pin: on_pin,
    gm.Unpin: on_unpin,
    gm.View: on_view,
    gm.Hand: on_hand,
    gm.LowerHand: on_lower_hand,
    gm.React: on_react,
    gm.AskUnmute: on_ask_unmute,
    gm.Mute: on_mute,
    gm.Record: on_record,
    gm.Remember: on_remember,
}

__all__ = ["HANDLERS", "Handler", "check_person"]
