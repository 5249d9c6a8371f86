"""A real engine (:class:`~clave.engine.headless.HeadlessParticipant`, audio only) run in
the test process on its own asyncio thread, so a browser test can both watch it and make
it misbehave: send application messages its own checks would refuse (a forged host
request), as a modified engine of a member could.

Its audio sends are counted twice: every frame its audio loop tried to send
(``audio_attempts``) and every one the session actually sent (``audio_sent``), so a
host's mute can be checked in frames, not in seconds."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from clave.engine.headless import HeadlessParticipant
from clave.meeting import events as ev
from clave.meeting.app_messages import AppMessage
from clave.meeting.link import parse_link
from clave.meeting.meeting import Meeting
from clave.wire import StreamKind

T = TypeVar("T")


class _Watched(HeadlessParticipant):
    """Keeps every event but media frames (decrypted, never decoded: the relay would drop
    a member that reads too slowly); counts audio attempts and sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[ev.Event] = []
        self.audio_attempts = 0
        self.audio_sent = 0
        self.at_mute: tuple[int, int] | None = None
        """(attempts, sent) when a host's mute was honoured."""

    async def start(self) -> None:
        await super().start()
        session = self.session
        assert session is not None
        send = session.send_media

        async def counted(kind: StreamKind, keyframe: bool, payload: bytes, layer: int = 0) -> bool:
            sent = await send(kind, keyframe, payload, layer)
            if kind is StreamKind.audio:
                self.audio_attempts += 1
                self.audio_sent += int(sent)
            return sent

        session.send_media = counted  # type: ignore[method-assign]

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.MediaFrameDecrypted):
            return  # not decoded: this thread shares the test's process, it must keep up
        self.events.append(event)
        if isinstance(event, ev.MutedByHost) and self.at_mute is None:
            self.at_mute = (self.audio_attempts, self.audio_sent)
        super()._on_event(event)


class ThreadMember:
    """``name`` joins the meeting of ``invitation`` (a host admits it from the lobby)."""

    def __init__(self, name: str, invitation: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"member-{name}")
        self._thread.daemon = True
        self._thread.start()
        self.participant = _Watched(parse_link(invitation), name, video=False, audio=True)
        self._run(self.participant.start())

    def _run(self, coro: Any, timeout: float = 30.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def call(self, action: Callable[[Meeting], T]) -> T:
        """Run ``action`` on the meeting core in its own thread, then send what it queued."""
        session = self.participant.session
        assert session is not None
        result: T = self._run(session.act(action))
        return result

    def wait_joined(self, timeout: float = 30.0) -> bool:
        joined: bool = self._run(self.participant.wait_joined(timeout), timeout + 5)
        return joined

    def send_app(self, *messages: AppMessage) -> None:
        """Send application messages as they are, past the core's own checks (an attack)."""

        def send(m: Meeting) -> None:
            for msg in messages:
                m._send_app(msg)

        self.call(send)

    def read(self, what: Callable[[_Watched], T]) -> T:
        """Read the participant's state in its own thread."""

        async def get() -> T:
            return what(self.participant)

        result: T = self._run(get())
        return result

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # best effort at teardown
            self._run(self.participant.stop(), 15.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
