"""Who is in a room on each relay node, and what each of them subscribed to.

Each node publishes, per room it has connections in, one entry of a NATS key-value
bucket: key ``<room handle>.<node>``, value a :class:`Roster` of its connections in
that room with each one's last ``Subscribe`` (connection ids and layer numbers only,
as the relay sees them: never names, tokens or keys). The other nodes with
connections in that room watch its keys: a connection that appears becomes a peer
of their room (its queue feeds that node's outbox), one that disappears leaves, and
a changed subscription is applied to that peer, so media is chosen for it where it
enters the cluster (:mod:`.outbox`).

:func:`diff` turns two rosters of one node into those changes; plain data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from clave.wire import Subscribe

MAX_ROSTER = 4096
"""Connections one node may list for one room (above any room's connection cap)."""
MAX_ROSTER_BYTES = 1 << 20


class Member(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    conn: int
    subscribe: Subscribe | None = None


class Departed(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    conn: int
    reason: str = msgspec.field(default="left")


class Roster(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    members: list[Member]
    left: list[Departed] = msgspec.field(default_factory=list)
    """Who left since the node's previous roster, and why (PeerLeft's reason)."""


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Roster).decode


class RosterError(Exception):
    """A roster entry this node will not use."""


MAX_REASON = 64


def encode_roster(
    members: dict[int, Subscribe | None], left: dict[int, str] | None = None
) -> bytes:
    """This node's connections in a room (conn -> last Subscribe), ordered by conn, and
    who left since its previous roster (conn -> reason)."""
    gone = [Departed(c, r[:MAX_REASON]) for c, r in (left or {}).items()]
    return _encode(Roster([Member(c, members[c]) for c in sorted(members)], gone))


def decode_roster(
    data: bytes, slot: int, shift: int
) -> tuple[dict[int, Subscribe | None], dict[int, str]]:
    """Another node's roster and departures, checked: bounded, and every connection id
    of that node (``conn >> shift == slot``): a node cannot speak for another's."""
    if len(data) > MAX_ROSTER_BYTES:
        raise RosterError(f"roster of {len(data)} bytes is over {MAX_ROSTER_BYTES}")
    try:
        roster = _decode(data) if data else Roster([])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise RosterError(f"malformed roster: {exc}") from None
    if len(roster.members) > MAX_ROSTER:
        raise RosterError(f"roster of {len(roster.members)} connections is over {MAX_ROSTER}")
    if len(roster.left) > MAX_ROSTER:
        raise RosterError(f"roster of {len(roster.left)} departures is over {MAX_ROSTER}")
    out: dict[int, Subscribe | None] = {}
    for conn in [m.conn for m in roster.members] + [d.conn for d in roster.left]:
        if conn >> shift != slot or not 0 < conn <= 0xFFFFFFFF:
            raise RosterError(f"connection {conn} is not one of node {slot}'s")
    for m in roster.members:
        out[m.conn] = m.subscribe
    return out, {d.conn: d.reason[:MAX_REASON] for d in roster.left}


@dataclass
class Changes:
    """What one node's new roster changes in a room on this node."""

    joined: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    subscribed: dict[int, Subscribe] = field(default_factory=dict)
    """Connections (joined or staying) whose subscription is new or changed."""


def diff(old: dict[int, Subscribe | None], new: dict[int, Subscribe | None]) -> Changes:
    changes = Changes()
    for conn, sub in new.items():
        if conn not in old:
            changes.joined.append(conn)
        if sub is not None and old.get(conn) != sub:
            changes.subscribed[conn] = sub
    changes.left = [conn for conn in old if conn not in new]
    return changes


__all__ = [
    "Changes",
    "Departed",
    "Member",
    "Roster",
    "RosterError",
    "decode_roster",
    "diff",
    "encode_roster",
]
