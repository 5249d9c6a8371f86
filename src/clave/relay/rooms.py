"""All rooms of one relay: admission by access token, capacity, renaming, forgetting.

:meth:`Rooms.enter` is the relay's admission (see :mod:`.room` for what a room does
once entered): a room's id is derived from its access token and a room keeps only
the token's SHA-256, so a room id alone names nothing one could enter, create or
squat, and every refusal of a token is the same ``BAD_TOKEN``.

When a host replaces the invitation (:meth:`.room.Room.rotate`), the room's old id and
token hash are remembered (the newest ``replaced_kept``): the old token is then answered
``Error(rotated)``, so an ex-member who lost its connection before it read its removal
is told the invitation was replaced, instead of opening an empty room of its own and
believing itself the last one in the meeting. Only the old token's holder learns it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Iterator

from clave.wire import Error, room_id_for_token

from .addresses import Account, Accounts
from .config import RelayConfig
from .ordering import ByteBudget
from .room import BAD_TOKEN, RELAY_ROOMS_FULL, ROOM_CROWDED, ROOM_FULL, ROTATED, Room
from .stats import Refused, RelayStats


class Rooms:
    """All rooms of one relay, in memory only, by id."""

    def __init__(
        self,
        config: RelayConfig,
        accounts: Accounts | None = None,
        stats: RelayStats | None = None,
    ) -> None:
        self.config = config
        self.accounts = accounts
        """Charged with rooms created by an address (None: no per-address limits)."""
        self.stats = stats or (accounts.stats if accounts is not None else RelayStats())
        self._rooms: dict[str, Room] = {}
        self._serial = 0
        self._decoy = hashlib.sha256(secrets.token_bytes(32)).digest()
        self._replaced: OrderedDict[str, bytes] = OrderedDict()
        """Old room id -> old token hash, of rooms moved by a replaced invitation."""
        self.log_budget = ByteBudget(config.commit_log_total)
        """The commit logs of all rooms draw from it (see :mod:`.ordering`)."""

    def __len__(self) -> int:
        return len(self._rooms)

    def __iter__(self) -> Iterator[Room]:
        return iter(tuple(self._rooms.values()))

    def get(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def enter(
        self, room_id: str, token: bytes, now: float, account: Account | None = None
    ) -> Room | Error:
        """The room of ``token`` (created if nobody is in it), or the refusal.

        ``room_id`` must be the token's id, else ``BAD_TOKEN``: a room id alone names
        nothing one could enter, create or squat. An existing room also needs
        SHA-256(token) to equal its hash (constant-time, same refusal). Capacity comes
        after the token (a bad token is refused alike everywhere): ``room_full`` for the
        relay's and the room's caps, ``rate_limited`` for ``account``'s quotas.
        """
        token_hash = hashlib.sha256(token).digest()
        id_ok = hmac.compare_digest(room_id.encode(), room_id_for_token(token).encode())
        room = self._rooms.get(room_id) if id_ok else None
        replaced = self._replaced.get(room_id) if id_ok and room is None else None
        expected = room.token_hash if room is not None else replaced or self._decoy
        hash_ok = hmac.compare_digest(token_hash, expected)
        if not id_ok or ((room is not None or replaced is not None) and not hash_ok):
            self.stats.refuse(Refused.bad_token)
            return BAD_TOKEN
        if replaced is not None:
            self.stats.refuse(Refused.replaced)
            return ROTATED
        if room is None:
            if len(self._rooms) >= self.config.max_rooms:
                self.stats.refuse(Refused.rooms_full)
                return RELAY_ROOMS_FULL
            if account is not None and self.accounts is not None:
                refused = self.accounts.create_room(account, now)
                if refused is not None:
                    return refused
            self._serial += 1
            room = Room(
                room_id, token_hash, self._serial, self.config, now, self._rename, self.log_budget
            )
            if self.accounts is not None:
                room.creator = account
            self._rooms[room_id] = room
        elif len(room) >= self.config.max_conns_per_room:
            self.stats.refuse(Refused.room_full)
            return ROOM_FULL
        elif account is not None and (
            room.conns_from(account) >= self.config.max_room_conns_per_address
        ):
            self.stats.refuse(Refused.room_address_conns)
            return ROOM_CROWDED
        return room

    def rename(self, room: Room, new_id: str, token_hash: bytes) -> bool:
        """Move ``room`` to ``new_id`` (a rotation); False if another room has that id."""
        return self._rename(room, new_id, token_hash)

    def _rename(self, room: Room, new_id: str, token_hash: bytes) -> bool:
        if new_id in self._rooms:
            return False
        if self._rooms.get(room.id) is room:
            del self._rooms[room.id]
            self._remember_replaced(room.id, room.token_hash)
        self._replaced.pop(new_id, None)
        room.id, room.token_hash = new_id, token_hash
        self._rooms[new_id] = room
        return True

    def _remember_replaced(self, room_id: str, token_hash: bytes) -> None:
        self._replaced[room_id] = token_hash
        self._replaced.move_to_end(room_id)
        while len(self._replaced) > self.config.replaced_kept:
            self._replaced.popitem(last=False)

    def discard_if_empty(self, room: Room, now: float = 0.0) -> bool:
        """Forget ``room`` if nobody is left in it (its creator's quota is freed); True if so."""
        if room.peers or self._rooms.get(room.id) is not room:
            return False
        del self._rooms[room.id]
        room.slots.forget_all()
        creator, room.creator = room.creator, None
        if creator is not None and self.accounts is not None:
            self.accounts.room_closed(creator, now)
        return True
