"""What the glass is told when things go wrong: plain words, never a relay's or a
library's own error text, and never "ended" as if a meeting we were never in had ended.

The handlers are checked one by one against a recording stand-in for the bridge,
then end to end: a real relay that refuses a join (its room is full) and a relay
that is not there. Assertions count messages; nothing waits for a time to pass.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from engine_helpers import Glass, run

from clave.engine.bridge import GlassBridge
from clave.engine.glass_events import (
    COMMIT_FAILED,
    COULD_NOT_JOIN,
    EVENT_HANDLERS,
    LOBBY_FULL,
    RATE_LIMITED,
    REFUSALS,
    relay_failure,
)
from clave.engine.glass_media import BridgeCounters, FrameForwarder
from clave.engine.glass_messages import Alert, Error, MediaSwitches, Stats, ToGlass
from clave.engine.headless import HeadlessParticipant
from clave.engine.session import MeetingSession
from clave.engine.ui_server import UIServer
from clave.meeting import events as ev
from clave.meeting.link import MeetingLink, new_link
from clave.meeting.meeting import Meeting
from clave.meeting.roles import generate_owner_key
from clave.relay.config import RelayConfig
from clave.relay.server import start_relay

LIBRARY_TEXT = (
    "cannot reach the relay at ws://127.0.0.1:9/ws: Cannot connect to host 127.0.0.1:9 "
    "ssl:default [Connect call failed ('127.0.0.1', 9)]"
)
"""What aiohttp and the connection module say when nothing listens."""


class RecordingPort:
    """The bridge as the event handlers see it (:class:`GlassPort`), recording what the
    glass would be sent and how the meeting would end."""

    def __init__(self) -> None:
        self.session: MeetingSession | None = None
        self.frames = FrameForwarder(BridgeCounters(), lambda: None, self.send, lambda _: False)
        self.alerts: list[Alert] = []
        self.away: set[int] = set()
        self.known_leaves: set[int] = set()
        self.media_state: MediaSwitches | None = None
        self.last_stats: Stats | None = None
        self.stranded: str | None = None
        self.sent: list[ToGlass] = []
        self.ended: list[tuple[str, str | None]] = []

    @property
    def link_up(self) -> bool:
        return False

    def send(self, message: ToGlass) -> None:
        self.sent.append(message)

    async def act(self, what: str, action: Callable[[Meeting], object]) -> object:
        raise AssertionError("no action expected")

    async def join(self, name: str) -> None:
        raise AssertionError("no join expected")

    async def leave(self, reason: str) -> None:
        raise AssertionError("no leave expected")

    def end(self, reason: str, outcome: str | None = None) -> None:
        self.ended.append((reason, outcome))

    def restart(self) -> None:
        raise AssertionError("no restart expected")

    def nobody_answered(self) -> bool:
        return False

    def people_changed(self) -> None:
        pass

    def member_back(self, leaf: int) -> None:
        pass

    def back_in_room(self) -> None:
        pass


def told(event: Any) -> RecordingPort:
    port = RecordingPort()
    EVENT_HANDLERS[type(event)](port, event)
    return port


def test_a_relay_refusal_is_said_in_words_not_in_the_relays() -> None:
    raw = "RAW relay words: room is full (code 10)"
    port = told(ev.JoinRefused("room_full", raw))
    assert port.sent == [] and len(port.ended) == 1
    reason, outcome = port.ended[0]
    assert reason == COULD_NOT_JOIN + REFUSALS["room_full"] and outcome is None
    assert "RAW" not in reason and "code 10" not in reason
    # An unknown code still says we could not join, and still not the relay's text.
    reason = told(ev.JoinRefused("internal", "Traceback: KeyError 'x'")).ended[0][0]
    assert reason.startswith(COULD_NOT_JOIN) and "KeyError" not in reason


def test_meeting_errors_reach_the_glass_only_as_plain_actionable_words() -> None:
    cases = [
        (ev.Error(ev.ErrorCode.commit_failed, "cannot send Commit: ValueError('lifetime')"),
         COMMIT_FAILED),
        (ev.Error(ev.ErrorCode.lobby_full, "the lobby is full: request 7 was turned away"),
         LOBBY_FULL),
        (ev.Error(ev.ErrorCode.relay_error, "relay error rate_limited: commit rate limit"),
         RATE_LIMITED),
    ]
    for event, words in cases:
        port = told(event)
        assert port.sent == [Error(message=words)], event
        assert event.message not in words
    # Nothing the user can act on: nothing shown (the log has the code).
    for event in (
        ev.Error(ev.ErrorCode.relay_error, "relay error unknown_peer: no connection 3 here"),
        ev.Error(ev.ErrorCode.relay_error, "relay error internal: internal error"),
        ev.Error(ev.ErrorCode.bad_frame, "msgspec.DecodeError: Expected `array`, got `int`"),
        ev.Error(ev.ErrorCode.internal, "Traceback (most recent call last): ..."),
    ):
        assert told(event).sent == [], event


def test_giving_up_on_the_relay_ends_without_the_librarys_words() -> None:
    reason = f"the relay has been unreachable for 30 s ({LIBRARY_TEXT})"
    port = told(ev.MeetingEnded(reason))
    assert len(port.ended) == 1 and port.sent == []
    said = port.ended[0][0]
    assert "30 s" in said and "Cannot connect" not in said and "ssl:default" not in said
    # The meeting core's own sentences pass as they are.
    for words in ("nobody is in the meeting to admit you", "you left the meeting"):
        assert told(ev.MeetingEnded(words)).ended == [(words, None)]


def test_a_failed_relay_connection_is_one_plain_line() -> None:
    try:
        raise OSError(111, "Connect call failed ('127.0.0.1', 9)")
    except OSError as cause:
        exc = RuntimeError(LIBRARY_TEXT)
        exc.__cause__ = cause
    text = relay_failure(exc)
    assert text.startswith(COULD_NOT_JOIN) and "relay" in text
    assert "Connect call" not in text and "127.0.0.1" not in text


# ---------------------------------------------------------------- end to end


@contextlib.asynccontextmanager
async def glass_for(link: MeetingLink) -> AsyncIterator[tuple[GlassBridge, Glass]]:
    """A guest's bridge and UI server, and a scripted glass connected to it."""
    bridge = GlassBridge(link, host=False, default_name="Grace")
    server = UIServer(bridge)
    await server.start()
    glass = await Glass.connect(server)
    try:
        await glass.wait_message("padlock")
        yield bridge, glass
    finally:
        await glass.close()
        await bridge.close()
        await server.stop()


def phases(glass: Glass) -> list[str]:
    return [m["phase"] for m in glass.of_type("state")]


def all_text(glass: Glass) -> str:
    return "\n".join(
        str(m.get(key)) for m in glass.messages for key in ("message", "reason", "detail")
    )


def test_a_join_the_relay_refuses_ends_as_could_not_join() -> None:
    """The meeting's room is full (one connection, the host's): the guest's glass is
    told once that it could not join, in words, and was never in the meeting."""

    async def scenario() -> None:
        runner, port = await start_relay("127.0.0.1", 0, RelayConfig(max_conns_per_room=1))
        owner_private, owner_public = generate_owner_key(os.urandom)
        link = new_link(f"http://127.0.0.1:{port}", os.urandom, owner_public)
        host = HeadlessParticipant(
            link, "Hedy", host=True, owner_key=owner_private, video=False, audio=False
        )
        try:
            await host.start()
            assert await host.wait_joined(10)
            async with glass_for(link) as (bridge, glass):
                await glass.send({"type": "join", "name": "Grace"})
                ended = await glass.wait_message("ended")
                await glass.wait_state(lambda s: s["phase"] == "ended")
                assert len(glass.of_type("ended")) == 1
                assert ended["reason"] == COULD_NOT_JOIN + REFUSALS["room_full"]
                assert ended["outcome"] is None
                assert "in_meeting" not in phases(glass)
                assert "room is full" not in all_text(glass)  # the relay's own words
                assert not glass.of_type("error")  # the ended screen says it; no toast too
                assert bridge.ended_reason == ended["reason"]
        finally:
            await host.stop()
            await runner.cleanup()

    run(scenario(), timeout=30)


def link_to_nowhere() -> MeetingLink:
    """An invitation whose relay is a port on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return new_link(f"http://127.0.0.1:{port}", os.urandom, generate_owner_key(os.urandom)[1])


def test_a_relay_that_is_not_there_ends_the_join_plainly() -> None:
    async def scenario() -> None:
        link = link_to_nowhere()
        async with glass_for(link) as (_, glass):
            await glass.send({"type": "join", "name": "Grace"})
            ended = await glass.wait_message("ended")
            await glass.wait_state(lambda s: s["phase"] == "ended")
            assert len(glass.of_type("ended")) == 1
            assert "in_meeting" not in phases(glass)
            assert ended["reason"].startswith("could not")
            for library_words in ("Cannot connect", "Connect call failed", "ssl:default"):
                assert library_words not in ended["reason"]

    run(scenario(), timeout=20)


def test_no_library_words_reach_the_glass_when_the_relay_is_not_there() -> None:
    async def scenario() -> None:
        link = link_to_nowhere()
        async with glass_for(link) as (_, glass):
            await glass.send({"type": "join", "name": "Grace"})
            await glass.wait_message("ended")
            text = all_text(glass)
            for library_words in ("Cannot connect", "Connect call failed", "ssl:default"):
                assert library_words not in text

    run(scenario(), timeout=20)
