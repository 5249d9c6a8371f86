"""What one relay process holds: its settings, rooms, live connections, client accounts, stats."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Protocol

from .addresses import Accounts
from .close_codes import CloseCode
from .config import RelayConfig
from .rooms import Rooms
from .stats import RelayStats

if TYPE_CHECKING:
    from .cluster.node import ClusterNode


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
        self.cluster: ClusterNode | None = None
        """Set when this relay is a node of a cluster (``clave serve --nats``)."""

    def next_conn_id(self) -> int:
        """A connection id (u32, never 0: 0 marks an unstamped media frame); on a cluster
        node, ``slot << 24 | n`` (unique across the cluster)."""
        cluster = self.cluster
        if cluster is not None:
            return cluster.conn_base() | (next(self._ids) & 0xFFFFFF or next(self._ids))
        conn = next(self._ids) & 0xFFFFFFFF
        if conn == 0:
            conn = next(self._ids) & 0xFFFFFFFF
        return conn
