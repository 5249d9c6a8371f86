"""What one relay process holds: its settings, rooms, live connections, client accounts, stats."""

from __future__ import annotations

import itertools
from typing import Protocol

from .addresses import Accounts
from .close_codes import CloseCode
from .config import RelayConfig
from .room import Rooms
from .stats import RelayStats


class LiveConnection(Protocol):
    """What the relay needs of a live connection (:class:`.connection.Connection`):
    closing it from the relay's side when shutting down."""

    async def stop(self, code: CloseCode = CloseCode.going_away) -> None: ...


class RelayState:
    """Shared by every connection of one relay (one event loop, so no locking)."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.stats = RelayStats()
        self.accounts = Accounts(config, self.stats)
        self.rooms = Rooms(config, self.accounts, self.stats)
        self.connections: set[LiveConnection] = set()
        self._ids = itertools.count(1)

    def next_conn_id(self) -> int:
        """A connection id (u32, never 0: 0 marks an unstamped media frame)."""
        conn = next(self._ids) & 0xFFFFFFFF
        if conn == 0:
            conn = next(self._ids) & 0xFFFFFFFF
        return conn
