"""Audit of a departed member's keys, from outside the meeting (``--linger``).

What any ex-member still holding the invitation can do: keep a connection in the
relay room after leaving and collect the media that keeps flowing. A
:class:`RemovalAudit` is such a connection, opened by the departing participant
just before its goodbye; every media frame it then receives is handed to a check
(the headless participant tries it with its last epoch's SFrame base key, RFC 9605
section 4.4.2, see :func:`clave.engine.audit.base_key_opens`). The meeting core and
its session know nothing of it: they leave as anyone leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from .. import wire
from ..meeting.link import MeetingLink
from .connection import RelayConnection, RelayConnectionError
from .tls import RelayTrust


class RemovalAudit:
    """A bare relay connection in a meeting's room, passing each media frame to ``check``."""

    def __init__(
        self,
        link: MeetingLink,
        check: Callable[[bytes], None],
        *,
        relay_url: str | None = None,
        trust: RelayTrust | None = None,
    ) -> None:
        self._link = link
        self._check = check
        self._conn = RelayConnection(relay_url or link.relay_url, trust=trust)
        self._reader: asyncio.Task[None] | None = None
        self.frames = 0
        """Media frames received."""

    async def start(self) -> None:
        """Enter the room (before the goodbye, so nothing sent after it is missed)."""
        await self._conn.open()
        link = self._link
        await self._conn.send(wire.encode(wire.Enter(room=link.room_id, token=link.access_token)))
        self._reader = asyncio.create_task(self._read(), name="removal-audit")

    async def _read(self) -> None:
        with contextlib.suppress(RelayConnectionError):
            async for frame in self._conn.frames():
                if len(frame) > 1 and frame[1] == wire.MEDIA:
                    self.frames += 1
                    self._check(frame)

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, RelayConnectionError):
                await self._reader
        with contextlib.suppress(RelayConnectionError):
            await self._conn.close()


__all__ = ["RemovalAudit"]
