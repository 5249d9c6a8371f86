"""What driving one participant's media takes, whoever captures and renders it: the
headless participant (:mod:`.headless`) and the glass bridge (:mod:`.bridge`) share it.

* :class:`KeyframeAsker`: a decoder with a gap asks the sender for a keyframe
  (``KeyframeRequest``, docs/PROTOCOL.md "Relay channel"), at most once per interval
  per sender and stream, so a burst of undecodable deltas is one request.
* :func:`send_chunk`: one encoded chunk, stamped with its capture time
  (:func:`clave.wire.pack_payload`), protected with SFrame and sent; fail closed
  (nothing is sent unless media is encrypted under the current epoch).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..meeting.meeting import Meeting
from ..wire import StreamKind, pack_payload
from .connection import RelayConnectionError
from .session import MeetingSession

KEYFRAME_ASK_INTERVAL = 0.5
"""Seconds between two keyframe requests for the same sender and stream."""


class KeyframeAsker:
    """Keyframe requests, throttled per (sender leaf, stream kind)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        interval: float = KEYFRAME_ASK_INTERVAL,
    ) -> None:
        self._clock = clock
        self._interval = interval
        self._last: dict[tuple[int, int], float] = {}

    def ask(self, meeting: Meeting, leaf: int, kind: StreamKind) -> bool:
        """Queue a request to ``leaf`` on ``meeting`` unless one went out within the
        interval; True if queued (the caller's session sends what the core queued)."""
        now = self._clock()
        key = (leaf, int(kind))
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return False
        self._last[key] = now
        meeting.request_keyframe(leaf, kind)
        return True

    def allow_now(self, leaf: int, kind: StreamKind) -> None:
        """The next request for this stream goes out at once (a new decoder)."""
        self._last.pop((leaf, int(kind)), None)

    def clear(self) -> None:
        """A new meeting core: its leaves are other people."""
        self._last.clear()


async def send_chunk(
    session: MeetingSession,
    kind: StreamKind,
    keyframe: bool,
    capture_us: int,
    data: bytes,
    layer: int = 0,
) -> bool:
    """Protect and send one encoded chunk of simulcast ``layer`` captured at
    ``capture_us`` (µs since the Unix epoch); False if it was not sent: media is not
    encrypted under the current epoch, or the relay link dropped mid-send (the session
    reconnects). A chunk too large for the wire raises :class:`clave.wire.WireError`."""
    try:
        return await session.send_media(kind, keyframe, pack_payload(capture_us, data), layer)
    except RelayConnectionError:
        return False


__all__ = ["KEYFRAME_ASK_INTERVAL", "KeyframeAsker", "send_chunk"]
