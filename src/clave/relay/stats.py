"""What the relay refused, counted and logged without addresses, tokens or room ids.

Each refusal is counted by kind in :attr:`RelayStats.refused` (tests and operators read
the counts); it is logged at INFO the 1st, 2nd, 4th, 8th ... time of its kind and at
DEBUG otherwise, so a flood cannot flood the log.
"""

from __future__ import annotations

import logging
from collections import Counter
from enum import Enum

log = logging.getLogger("clave.relay")


class Refused(Enum):
    """A kind of refusal; the value is the log text."""

    relay_full = "connection refused: the relay is at its connection limit"
    address_conns = "connection refused: too many connections from one address"
    bad_token = "entry refused: bad token"
    replaced = "entry refused: the room's invitation was replaced"
    rooms_full = "room refused: the relay is at its room limit"
    address_rooms = "room refused: too many live rooms opened from one address"
    room_rate = "room refused: rooms opened too quickly from one address"
    room_full = "entry refused: the room is full"
    room_address_conns = "entry refused: too many connections from one address in the room"
    too_slow = "receiver disconnected: its backlog is over its cap"
    address_backlog = "receiver disconnected: its address's backlog is over its cap"


class RelayStats:
    """Refusal counts of one relay."""

    __slots__ = ("refused",)

    def __init__(self) -> None:
        self.refused: Counter[Refused] = Counter()

    def refuse(self, kind: Refused) -> None:
        """Count (and maybe log) one refusal of ``kind``."""
        count = self.refused[kind] + 1
        self.refused[kind] = count
        level = logging.INFO if count & (count - 1) == 0 else logging.DEBUG
        log.log(level, "%s (%d so far)", kind.value, count)
