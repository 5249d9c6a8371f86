"""A host's mute, honoured by the engine itself (issue 15 requirement 5): while
``Meeting.muted_by`` is set, no audio leaves, whatever the glass or a media loop hands
over (the glass's chunks are counted as held; the session refuses audio frames); video
goes on. Counted in chunks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from engine_helpers import AUDIO, VIDEO, run

from clave.engine.glass_channel import GLASS_CHUNK_HEADER
from clave.engine.glass_media import BridgeCounters, ChunkSender
from clave.engine.session import MeetingSession
from clave.wire import StreamKind


class _Session:
    """What ChunkSender uses of a session: ``meeting.muted_by`` and ``send_media``."""

    def __init__(self, muted_by: str | None) -> None:
        self.meeting = SimpleNamespace(muted_by=muted_by)
        self.sent: list[StreamKind] = []

    async def send_media(self, kind: StreamKind, *args: Any) -> bool:
        self.sent.append(kind)
        return True


def _chunk(kind: int) -> bytes:
    return GLASS_CHUNK_HEADER.pack(kind, 0, 1) + b"x"


def test_the_glass_audio_is_held_while_a_host_mute_holds() -> None:
    counters = BridgeCounters()
    sender = ChunkSender(counters, lambda: None, lambda text: None)
    muted, free = _Session("Alice"), _Session(None)

    async def feed() -> None:
        for _ in range(5):
            await sender.handle(_chunk(AUDIO), cast(MeetingSession, muted))
            await sender.handle(_chunk(VIDEO), cast(MeetingSession, muted))
        await sender.handle(_chunk(AUDIO), cast(MeetingSession, free))

    run(feed())
    assert counters.audio_held == 5
    assert muted.sent == [StreamKind.video] * 5
    assert free.sent == [StreamKind.audio]
    assert counters.chunks_dropped == 0  # held by choice, not for want of keys


def test_the_session_refuses_audio_while_muted_by_a_host() -> None:
    protected: list[StreamKind] = []
    meeting = SimpleNamespace(
        encrypted=True, link_up=True, muted_by="Alice",
        protect_media=lambda kind, *a: protected.append(kind) or b"frame",
        frames_to_send=lambda: [],
    )  # fmt: skip
    session = MeetingSession.__new__(MeetingSession)
    session.meeting = cast(Any, meeting)
    session.link_state = "connected"  # type: ignore[assignment]
    assert run(session.send_media(StreamKind.audio, False, b"opus")) is False
    assert protected == []
