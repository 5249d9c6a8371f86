"""Who is present: relay connections, MLS leaves, departures, absences and silence.

The relay names connections; MLS names leaves. A member announces its
connection with an authenticated ``Hello`` when it is new to the others (after
joining and after reconnecting), and a newcomer learns the others' from a host's
directory (:meth:`Presence.learn`, never over what a Hello taught); this module
keeps the map between the two and what each leaf's state is:

* **present**: its announced connection is in the room;
* **away** (:attr:`Presence.away`): its connection vanished without a goodbye
  (the relay's ``PeerLeft``, or our own reconnection found it gone). It keeps its
  place until a deadline, the *resume window*, unless a Hello binds a new
  connection to it first;
* **departed** (:attr:`Presence.departed`): it said ``Bye``, or its resume window
  ran out. A host removes departed members.

It also keeps when each leaf was last *heard* (an authenticated MLS message from
it): the takeover rule asks how long a host has been silent, and relay reports
alone never count as hearing someone. After our own reconnection nobody counts
as quiet for longer than we have been back (:meth:`Presence.quiet_for`), so a
successor coming back from an outage does not take over from hosts it simply
could not hear.
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
        """Leaves that said Bye or whose resume window ran out; they await removal."""
        self.away: dict[int, float] = {}
        """Leaves whose connection vanished without Bye -> end of their resume window."""
        self.gone: set[int] = set()
        """Leaves whose connection the relay reported gone (a hint, not proof)."""
        self._said_bye: set[int] = set()
        self._heard: dict[int, float] = {}
        self._since = 0.0
        self._back = 0.0

    def start(self, now: float) -> None:
        """We entered the meeting: leaves never heard count as heard now."""
        self._since = now
        self._back = now

    def joined(self, conn: int, peers: Iterable[int]) -> None:
        self.conn = conn
        self.peers = set(peers) - {conn}

    def peer_joined(self, conn: int) -> None:
        if conn != self.conn:
            self.peers.add(conn)

    def peer_left(self, conn: int, deadline: float) -> int | None:
        """A connection left without Bye; returns its member leaf, now away until
        ``deadline``, if it was one."""
        self.peers.discard(conn)
        leaf = self.leaf_of_conn.get(conn)
        if leaf is not None:
            self.gone.add(leaf)
            if leaf not in self.departed:
                self.away.setdefault(leaf, deadline)
        return leaf

    def bye(self, leaf: int) -> None:
        """``leaf`` said goodbye: it departs at once."""
        self.away.pop(leaf, None)
        self.departed.add(leaf)
        self._said_bye.add(leaf)

    def rejoined(self, conn: int, peers: Iterable[int], deadline: float, now: float) -> list[int]:
        """We are back in the room on ``conn`` after an outage. Every member whose
        connection is not in ``peers`` may have come back on a connection we have not
        heard of: it is away until ``deadline`` (a fresh window from now), and so are the
        members whose window ran out while we could not hear them. Returns the leaves
        that are away now.

        A relay numbers connections from where its process started: a new id no
        greater than every id we knew means the relay restarted (or we reached another
        cluster node), and old ids may now be other members' connections. Then no
        binding is trusted: every member is away and unbound, so our Hello asks each
        to announce itself."""
        known = [c for c in (self.conn, *self.conn_of_leaf.values()) if c is not None]
        restarted = bool(known) and conn <= max(known)
        self.joined(conn, peers)
        self._back = now
        for leaf in self.departed - self._said_bye:
            self.away[leaf] = deadline
        self.departed &= self._said_bye
        for leaf, old in list(self.conn_of_leaf.items()):
            if (restarted or old not in self.peers) and leaf not in self.departed:
                self.away[leaf] = deadline
                self.gone.add(leaf)
            if restarted:
                del self.conn_of_leaf[leaf]
                self.leaf_of_conn.pop(old, None)
        return sorted(self.away)

    def expire(self, now: float) -> list[int]:
        """Leaves whose resume window has run out: they depart now."""
        due = [leaf for leaf, at in self.away.items() if at <= now]
        for leaf in due:
            del self.away[leaf]
            self.departed.add(leaf)
        return due

    def next_deadline(self) -> float | None:
        return min(self.away.values(), default=None)

    def heard(self, leaf: int, now: float) -> None:
        self._heard[leaf] = now

    def silent_for(self, leaf: int, now: float) -> float:
        """Seconds since we last heard ``leaf`` (what we accept takeovers by)."""
        return now - self._heard.get(leaf, self._since)

    def quiet_for(self, leaf: int, now: float) -> float:
        """Like :meth:`silent_for`, but not longer than we have been back from our own
        last outage (what we take over by)."""
        return min(self.silent_for(leaf, now), now - self._back)

    def map(self, leaf: int, conn: int, deadline: float) -> bool:
        """Record that ``leaf`` speaks through relay connection ``conn``; True if this
        brought back a leaf that was away. A connection no longer in the room makes the
        leaf away until ``deadline``."""
        old_conn = self.conn_of_leaf.pop(leaf, None)
        if old_conn is not None:
            self.leaf_of_conn.pop(old_conn, None)
        old_leaf = self.leaf_of_conn.pop(conn, None)
        if old_leaf is not None:
            self.conn_of_leaf.pop(old_leaf, None)
        self.conn_of_leaf[leaf] = conn
        self.leaf_of_conn[conn] = leaf
        if conn not in self.peers and conn != self.conn:
            self.gone.add(leaf)  # it already left the relay
            if leaf not in self.departed:
                self.away.setdefault(leaf, deadline)
            return False
        self.gone.discard(leaf)
        if leaf in self.departed and leaf not in self._said_bye:
            self.departed.discard(leaf)  # back before a host removed it
            return True
        return self.away.pop(leaf, None) is not None

    def learn(self, leaf: int, conn: int, deadline: float) -> bool:
        """A binding from a host's directory: recorded only if neither ``leaf`` nor
        ``conn`` is bound yet (what a member's own Hello taught always wins). True if
        recorded."""
        if leaf in self.conn_of_leaf or conn in self.leaf_of_conn or conn == self.conn:
            return False
        self.map(leaf, conn, deadline)
        return True

    def unknown(self, leaves: Iterable[int], me: int) -> set[int]:
        """Of ``leaves``, those other than ``me`` whose connection we never learned (and
        that did not say goodbye)."""
        return {x for x in leaves if x != me and x not in self.conn_of_leaf} - self._said_bye

    def missing(self) -> tuple[int, ...]:
        """Members away from our view: a Hello asks them to announce themselves."""
        return tuple(sorted(self.away))

    def forget(self, leaf: int) -> None:
        """``leaf`` was removed from the group."""
        conn = self.conn_of_leaf.pop(leaf, None)
        if conn is not None:
            self.leaf_of_conn.pop(conn, None)
        self.departed.discard(leaf)
        self._said_bye.discard(leaf)
        self.away.pop(leaf, None)
        self.gone.discard(leaf)
        self._heard.pop(leaf, None)

    def keep_only(self, leaves: Iterable[int]) -> None:
        keep = set(leaves)
        self.departed &= keep
        self._said_bye &= keep
        self.gone &= keep
        for leaf in [leaf for leaf in self.away if leaf not in keep]:
            del self.away[leaf]

    def member_conns(self) -> set[int]:
        return set(self.leaf_of_conn)
