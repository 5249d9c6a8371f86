"""Glass -> engine control messages (docs/PROTOCOL.md, "Local UI channel"): one
handler per ``type``, dispatched through :data:`HANDLERS`.

Each handler checks its fields (a refused message raises :class:`BadMessage`,
which the bridge turns into an ``error`` reply that changes nothing) and then
acts on the :class:`~clave.engine.bridge.GlassBridge` (as a :class:`.glass_port.GlassPort`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from ..meeting.errors import MeetingError
from ..meeting.names import normalize_display_name
from .glass_channel import (
    BadMessage,
    Json,
    bool_field,
    int_field,
    media_state_field,
    stream_kind_field,
)
from .glass_port import GlassPort

Handler = Callable[[GlassPort, Json], Awaitable[None]]


async def on_join(bridge: GlassPort, msg: Json) -> None:
    """Join (once a meeting is over: join again, a fresh admission, same identity)."""
    name = msg.get("name")
    if not isinstance(name, str):
        raise BadMessage('join needs a string "name"')
    try:
        name = normalize_display_name(name)
    except MeetingError as exc:
        raise BadMessage(str(exc)) from None
    await bridge.join(name)


async def on_chat(bridge: GlassPort, msg: Json) -> None:
    text = msg.get("text")
    if not isinstance(text, str):
        raise BadMessage('chat needs a string "text"')
    await bridge.act("send a chat message", lambda m: m.send_chat(text))
    session = bridge.session
    if session is not None:  # echo: encrypted and sent, so the glass can mark it so
        meeting = session.meeting
        bridge.send(
            {
                "type": "chat",
                "sender": meeting.own_leaf,
                "name": meeting.name,
                "text": text,
                "ts": time.time_ns() // 1_000_000,
            }
        )


async def on_admit(bridge: GlassPort, msg: Json) -> None:
    rid = int_field(msg, "id")
    if await bridge.act("admit", lambda m: m.admit(rid)) is False:
        raise BadMessage("that join request is gone")


async def on_deny(bridge: GlassPort, msg: Json) -> None:
    rid = int_field(msg, "id")
    if await bridge.act("deny", lambda m: m.deny(rid)) is False:
        raise BadMessage("that join request is gone or already being admitted")


async def on_lock(bridge: GlassPort, msg: Json) -> None:
    locked = bool_field(msg, "locked")
    await bridge.act("lock the meeting", lambda m: m.set_locked(locked))


async def on_auto_admit(bridge: GlassPort, msg: Json) -> None:
    on = bool_field(msg, "on")
    await bridge.act("change auto-admit", lambda m: m.set_auto_admit(on))


def check_person(bridge: GlassPort, msg: Json, leaf: int) -> None:
    """If the glass names the person (``fingerprint``), the leaf must still be theirs:
    a leaf freed by someone leaving may be reused by a newcomer meanwhile."""
    wanted = msg.get("fingerprint")
    if wanted is None:
        return
    session = bridge.session
    entry = None
    if session is not None:
        entry = next((e for e in session.meeting.roster if e.leaf == leaf), None)
    if not isinstance(wanted, str) or entry is None or entry.fingerprint != wanted:
        raise BadMessage("that member is no longer in the meeting")


async def on_remove(bridge: GlassPort, msg: Json) -> None:
    leaf = int_field(msg, "leaf")
    check_person(bridge, msg, leaf)
    rotate = msg.get("replace_invitation", False)
    if not isinstance(rotate, bool):
        raise BadMessage('"replace_invitation" must be true or false')
    await bridge.act(
        "remove a member", lambda m: m.remove_member(leaf, replace_invitation=rotate)
    )


async def on_set_host(bridge: GlassPort, msg: Json) -> None:
    leaf = int_field(msg, "leaf")
    check_person(bridge, msg, leaf)
    host = bool_field(msg, "host")
    await bridge.act("change roles", lambda m: m.set_host(leaf, host))


async def on_verify(bridge: GlassPort, msg: Json) -> None:
    leaf = int_field(msg, "leaf")
    check_person(bridge, msg, leaf)
    verified = bool_field(msg, "verified")
    await bridge.act("mark a member verified", lambda m: m.set_verified(leaf, verified))
    bridge.people_changed()


async def on_rotate(bridge: GlassPort, msg: Json) -> None:
    await bridge.act("replace the invitation", lambda m: m.rotate_invitation())


async def on_request_keyframe(bridge: GlassPort, msg: Json) -> None:
    leaf = int_field(msg, "leaf")
    kind = stream_kind_field(msg)
    if (bridge.session is not None and not bridge.link_up) or leaf in bridge.away:
        return  # asked for by the bridge itself once the link (or that member) is back
    await bridge.act("request a keyframe", lambda m: m.request_keyframe(leaf, kind))


async def on_leave(bridge: GlassPort, msg: Json) -> None:
    await bridge.leave("you left the meeting")


async def on_media_state(bridge: GlassPort, msg: Json) -> None:
    """The glass's microphone, camera and screen switches, handed back to a reloaded tab."""
    bridge.media_state = media_state_field(msg)


async def on_stats(bridge: GlassPort, msg: Json) -> None:
    bridge.last_stats = msg


HANDLERS: dict[str, Handler] = {
    "join": on_join,
    "chat": on_chat,
    "admit": on_admit,
    "deny": on_deny,
    "lock": on_lock,
    "auto_admit": on_auto_admit,
    "remove": on_remove,
    "set_host": on_set_host,
    "verify": on_verify,
    "rotate": on_rotate,
    "request_keyframe": on_request_keyframe,
    "leave": on_leave,
    "media_state": on_media_state,
    "stats": on_stats,
}

__all__ = ["HANDLERS", "Handler", "check_person"]
