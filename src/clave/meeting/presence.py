"""Who is present: relay connections, MLS leaves, departures and silence.

The relay names connections; MLS names leaves. A member announces its
connection with an authenticated ``Hello`` after every epoch change; this
module keeps the map between the two, which connections the relay reports
present, which members have departed (``PeerLeft`` of their connection, or an
authenticated ``Bye``), and when each leaf was last *heard* (an authenticated
MLS message from it): the takeover rule asks how long a host has been silent,
and relay reports alone never count as hearing someone.
"""

from __future__ import annotations

from collections.abc import Iterable


class Presence:
    """Connections and leaves of one participant's view (clock readings passed in)."""

    def __init__(self) -> None:
        self.conn: int | None = None
        """Our own relay connection id."""
        self.peers: set[int] = set()
        """Other connections the relay reports in the room."""
        self.conn_of_leaf: dict[int, int] = {}
        self.leaf_of_conn: dict[int, int] = {}
        self.departed: set[int] = set()
        """Leaves that left (PeerLeft of their connection, or Bye) and await removal."""
        self.gone: set[int] = set()
        """Leaves whose connection the relay reported gone (a hint, not proof)."""
        self._heard: dict[int, float] = {}
        self._since = 0.0

    def start(self, now: float) -> None:
        """We entered the meeting: leaves never heard count as heard now."""
        self._since = now

    def joined(self, conn: int, peers: Iterable[int]) -> None:
        self.conn = conn
        self.peers = set(peers) - {conn}

    def peer_joined(self, conn: int) -> None:
        if conn != self.conn:
            self.peers.add(conn)

    def peer_left(self, conn: int) -> int | None:
        """A connection left; returns its member leaf, if it was one."""
        self.peers.discard(conn)
        leaf = self.leaf_of_conn.get(conn)
        if leaf is not None:
            self.gone.add(leaf)
            self.departed.add(leaf)
        return leaf

    def heard(self, leaf: int, now: float) -> None:
        self._heard[leaf] = now

    def silent_for(self, leaf: int, now: float) -> float:
        return now - self._heard.get(leaf, self._since)

    def map(self, leaf: int, conn: int) -> None:
        """Record that ``leaf`` speaks through relay connection ``conn``."""
        old_conn = self.conn_of_leaf.pop(leaf, None)
        if old_conn is not None:
            self.leaf_of_conn.pop(old_conn, None)
        old_leaf = self.leaf_of_conn.pop(conn, None)
        if old_leaf is not None:
            self.conn_of_leaf.pop(old_leaf, None)
        self.conn_of_leaf[leaf] = conn
        self.leaf_of_conn[conn] = leaf
        if conn not in self.peers and conn != self.conn:
            self.departed.add(leaf)  # it already left the relay
            self.gone.add(leaf)

    def forget(self, leaf: int) -> None:
        """``leaf`` was removed from the group."""
        conn = self.conn_of_leaf.pop(leaf, None)
        if conn is not None:
            self.leaf_of_conn.pop(conn, None)
        self.departed.discard(leaf)
        self.gone.discard(leaf)
        self._heard.pop(leaf, None)

    def keep_only(self, leaves: Iterable[int]) -> None:
        keep = set(leaves)
        self.departed &= keep
        self.gone &= keep

    def member_conns(self) -> set[int]:
        return set(self.leaf_of_conn)
