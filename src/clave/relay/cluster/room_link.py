"""A room that spans relay nodes: its roster, its commit order and its admission.

While a node has connections in a room, the room is *linked*:

* its connections, with their subscriptions, are this node's roster entry of the
  room (``CLAVE_ROSTER``, key ``<handle>.<slot>``), written once per loop tick after
  a change; the other nodes' entries are watched, and each of their connections is
  a peer of this room whose queue feeds that node's outbox (:mod:`.outbox`). Each
  node tells its own connections who joined or left (``PeerJoined``/``PeerLeft``,
  with the reason the other node gave), when it learns it;
* its commit order is the room's log (:mod:`.jetstream_order`): ``Commit`` and
  ``Reopen`` are answered once the log has decided, and an entering member's
  credential hash is registered through it;
* its token hash is the ``CLAVE_ROOMS`` entry of its id, created by the first node
  (compare-and-set), so every node refuses a wrong token alike. After a ``Rotate`` the
  old id's entry says the invitation was replaced, so every node answers the old token
  ``Error(rotated)``.

The room's *handle*, used in subjects and keys, is a random name given when the room
is first seen; it stays when a host replaces the invitation (``Rotate``), which moves
the room to a new id on every node (a ``Move`` in the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
from typing import Any, Protocol

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from clave.wire import (
    Commit,
    CommitAccepted,
    CommitFrom,
    Error,
    ErrorCode,
    Reopen,
    Rotate,
    Rotated,
    Subscribe,
    credential_hash,
    encode,
    room_id_for_token,
)

from ..config import RelayConfig
from ..limits import TokenBucket
from ..ordering import Verdict
from ..room import _REFUSALS, BAD_CREDENTIAL, ROOM_EXISTS, ROTATED, Peer, Room
from .jetstream_order import ClusterUnavailable, RoomOrder
from .order_log import Applied, Move, OrderReplica
from .outbox import NodeQueue, Outbox
from .roster import RosterError, decode_roster, diff, encode_roster


class LinkedNode(Protocol):
    """What a room link uses of its node (:class:`.node.ClusterNode`; a protocol, so that
    this module does not import that one)."""

    config: RelayConfig
    slot: int
    shift: int
    rooms: dict[str, RoomLink]
    roster_kv: Any
    rooms_kv: Any

    @property
    def js_context(self) -> JetStreamContext: ...

    def outbox(self, slot: int) -> Outbox: ...

    def rename(self, room: Room, new_id: str, token_hash: bytes) -> bool: ...

log = logging.getLogger("clave.relay.cluster")

UNAVAILABLE = Error(ErrorCode.internal, "the relay cluster could not order this now")
CLOSE_WAIT = 2.0
"""Seconds a closing link waits for its roster watch to end."""
WATCH_TIMEOUT = 5.0
"""Seconds to read a room's current rosters when the first connection here enters it."""


class RoomLink:
    """One room's place in the cluster, on this node (see the module docstring)."""

    def __init__(self, node: LinkedNode, room: Room, handle: str) -> None:
        self.node = node
        self.room = room
        self.handle = handle
        cfg = node.config
        self.order = RoomOrder(
            node.js_context,
            self.handle,
            OrderReplica(cfg.max_epoch_slots, cfg.max_open_epochs, cfg.commit_log_bytes),
            self._applied,
        )
        self.live = False
        """False while the log's past is replayed: old moves are not acted on again."""
        self._rosters: dict[int, dict[int, Subscribe | None]] = {}
        self._left: dict[int, str] = {}
        self._put_soon = False
        self._watcher: Any = None
        self._watching: asyncio.Task[None] | None = None
        self._puts: asyncio.Task[None] | None = None
        self.bad_rosters = 0
        self._closing = False

    async def open(self) -> None:
        """Follow the room's log and the other nodes' rosters (their current entries are
        applied before this returns, so a newcomer's ``Joined`` lists everybody)."""
        self.room.slots = self.order.replica.slots
        self.room.link = self
        self.node.rooms[self.handle] = self
        await self.order.start()
        await self.order.caught_up()
        self.live = True
        self._watcher = await self.node.roster_kv.watch(f"{self.handle}.*")
        while True:
            entry = await self._watcher.updates(timeout=WATCH_TIMEOUT)
            if entry is None:
                break  # the current entries are all in
            self._apply(entry)
        self._watching = asyncio.create_task(self._watch())

    def detach(self) -> None:
        """Unlink the room now: the other nodes' connections leave it (here only)."""
        self.node.rooms.pop(self.handle, None)
        room = self.room
        if room.link is self:
            for peer in [p for p in room.peers.values() if p.node]:
                room.remove(peer, "disconnected")
            room.link = None

    async def close(self) -> None:
        """Detach, then stop following the room's log and rosters and drop our roster.

        The watcher is stopped before its task is cancelled, and the task is waited
        for a bounded time: nats-py reads a watcher through ``asyncio.wait_for``, which
        on Python 3.11 can swallow a cancellation that meets an arriving entry."""
        self.detach()
        self._closing = True
        watching, self._watching = self._watching, None
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
        if watching is not None:
            watching.cancel()
            await asyncio.wait({watching}, timeout=CLOSE_WAIT)
        await self.order.stop()
        with contextlib.suppress(Exception):
            await self.node.roster_kv.delete(self._key)

    @property
    def _key(self) -> str:
        return f"{self.handle}.{self.node.slot}"

    # ------------------------------------------------------------ our roster

    def local_changed(self, peer: Peer, left: str | None = None) -> None:
        if left is not None:
            self._left[peer.conn] = left
        if not self._put_soon:
            self._put_soon = True
            asyncio.get_running_loop().call_soon(self._put)

    def _put(self) -> None:
        self._put_soon = False
        members = {p.conn: p.subscription for p in self.room.peers.values() if not p.node}
        value, self._left = encode_roster(members, self._left), {}
        previous = self._puts

        async def put() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous  # in order
            with contextlib.suppress(Exception):  # NATS away: the next change puts all
                await self.node.roster_kv.put(self._key, value)

        self._puts = asyncio.create_task(put())

    async def flushed(self) -> None:
        """Until this node's last roster change is written."""
        if self._puts is not None:
            await self._puts

    # ------------------------------------------------------------ their rosters

    async def _watch(self) -> None:
        while not self._closing:
            try:
                entry = await self._watcher.updates(timeout=3600)
            except asyncio.CancelledError:
                raise
            except Exception:  # a watcher timeout, NATS away: look again shortly
                await asyncio.sleep(0.1)
                continue
            if entry is not None and not self._closing:
                self._apply(entry)

    def _apply(self, entry: Any) -> None:
        try:
            slot = int(str(entry.key).rsplit(".", 1)[1])
        except ValueError:
            self.bad_rosters += 1
            return
        if slot == self.node.slot or slot <= 0:
            return
        value = b"" if entry.operation in ("DEL", "PURGE") else bytes(entry.value or b"")
        try:
            members, reasons = decode_roster(value, slot, self.node.shift)
        except RosterError as exc:
            self.bad_rosters += 1
            log.warning("roster of node %d refused: %s", slot, exc)
            return
        self.apply_roster(slot, members, reasons)

    def apply_roster(
        self, slot: int, members: dict[int, Subscribe | None], reasons: dict[int, str]
    ) -> None:
        """Node ``slot``'s connections in this room are now ``members``."""
        room = self.room
        changes = diff(self._rosters.get(slot, {}), members)
        self._rosters[slot] = members
        now = asyncio.get_running_loop().time()
        outbox = self.node.outbox(slot)
        for conn in changes.joined:
            if conn in room.peers:
                continue
            proxy = Peer(conn, NodeQueue(outbox, self.handle, conn), TokenBucket(1, 1, now))
            proxy.node = slot
            room.add(proxy)
        for conn, sub in changes.subscribed.items():
            peer = room.peers.get(conn)
            if peer is not None:
                room.subscribe(peer, sub, now)
        for conn in changes.left:
            peer = room.peers.get(conn)
            if peer is not None:
                room.remove(peer, reasons.get(conn, "disconnected"))

    def node_slots(self) -> set[int]:
        """The other nodes with connections in this room, as far as we know."""
        return {slot for slot, members in self._rosters.items() if members}

    def forget_node(self, slot: int) -> None:
        """Node ``slot`` is gone: its connections leave the room."""
        if slot in self._rosters:
            self.apply_roster(slot, {}, dict.fromkeys(self._rosters[slot], "disconnected"))

    # ------------------------------------------------------------ ordering

    async def seed(self, peer: Peer, cred_hash: bytes | None) -> bool:
        """Register an entering member's credential hash through the room's log."""
        if cred_hash is None:
            return True
        try:
            await self.order.seed(bytes(cred_hash), peer.conn)
        except ClusterUnavailable as exc:
            log.warning("room #%d: registration not ordered: %s", self.room.serial, exc)
            return False
        return True

    async def commit(self, peer: Peer, msg: Commit, now: float) -> None:
        """As :meth:`Room.commit`, with the verdict of the room's log."""
        room = self.room
        if room.over_budget(peer, now):
            return
        cred = credential_hash(msg.cred)
        verdict = self.order.replica.check_commit(cred, bytes(msg.next), peer.conn)
        if verdict is not Verdict.accepted:
            peer.send(_REFUSALS[verdict])
            return
        if not room.room_budget(peer, now):
            return
        try:
            verdict = await self.order.commit(peer.conn, cred, bytes(msg.next), bytes(msg.data))
        except ClusterUnavailable as exc:
            log.warning("room #%d: commit not ordered: %s", room.serial, exc)
            peer.send(UNAVAILABLE)
            return
        if verdict is not Verdict.accepted:
            peer.send(_REFUSALS[verdict])
            return
        peer.send(CommitAccepted())
        room.broadcast(peer, CommitFrom(sender=peer.conn, data=msg.data))

    async def rotate(self, peer: Peer, msg: Rotate, now: float) -> None:
        """As :meth:`Room.rotate`: the new id is claimed in ``CLAVE_ROOMS`` for this room's
        handle, then a Move is appended while the credential's slot is open; every node
        acts on it when its copy applies it (:meth:`_applied`)."""
        room = self.room
        if room.over_budget(peer, now):
            return
        cred = credential_hash(msg.cred)
        if not self.order.replica.slots.is_open(cred):
            peer.send(BAD_CREDENTIAL)
            return
        if not room.room_budget(peer, now):
            return
        new_id = room_id_for_token(msg.token)
        token_hash = hashlib.sha256(msg.token).digest()
        old_id, old_hash = room.id, room.token_hash
        kv = self.node.rooms_kv
        try:
            if new_id != old_id:
                try:
                    await kv.create(new_id, token_hash + self.handle.encode())
                except KeyWrongLastSequenceError:
                    peer.send(ROOM_EXISTS)
                    return
            moved = await self.order.move(peer.conn, cred, new_id, token_hash, list(msg.drop))
        except ClusterUnavailable:
            peer.send(UNAVAILABLE)
            return
        except Exception:  # NATS away
            peer.send(UNAVAILABLE)
            return
        if not moved:
            with contextlib.suppress(Exception):
                await kv.delete(new_id)
            peer.send(BAD_CREDENTIAL)
            return
        if new_id != old_id:
            # Rotated goes the way the host's Invite went just before it (deliveries,
            # in order), so that nobody hears of the move before the new invitation.
            data = encode(Rotated(by=peer.conn))
            dropped = set(msg.drop)
            for other in room.peers.values():
                if other is not peer and other.conn not in dropped:
                    other.queue.push_control(data)
            with contextlib.suppress(Exception):  # the old token is answered "replaced" now
                await kv.put(old_id, old_hash + REPLACED_MARK)

    def _applied(self, applied: Applied) -> None:
        """A Move this node's copy applied: rename the room here and drop our connections
        it names (``Rotated`` was sent by the mover's node, after the host's Invite)."""
        entry = applied.entry
        if type(entry) is not Move or not self.live:
            return
        room = self.room
        moved = entry.room != room.id
        if moved and not self.node.rename(room, entry.room, entry.token_hash):
            log.warning("room #%d: could not take its new id here", room.serial)
        for conn in dict.fromkeys(entry.drop):
            target = room.peers.get(conn)
            if target is None or target.node or conn == entry.owner:
                continue
            target.send(ROTATED)
            room.remove(target, "removed")
            if target.on_drop is not None:
                target.on_drop()

    async def reopen(self, peer: Peer, msg: Reopen, now: float) -> None:
        room = self.room
        if room.over_budget(peer, now):
            return
        cred = credential_hash(msg.cred)
        if self.order.replica.may_reopen(cred) and room.room_budget(peer, now):
            with contextlib.suppress(ClusterUnavailable):
                await self.order.reopen(cred)


REPLACED_MARK = b"\x00replaced"
"""The ``CLAVE_ROOMS`` entry of an old id after its invitation was replaced, after the
old token's hash (a handle is URL-safe base64, so it never starts with a NUL)."""
REPLACED = "\x00replaced"
"""What :func:`room_handle` returns for such an id and the old token's hash."""


async def room_handle(node: LinkedNode, room_id: str, token_hash: bytes) -> str | None:
    """The cluster handle of the room ``room_id`` if ``token_hash`` is its token's (the
    first node to see the room records both, with a new random handle); None if not."""
    kv = node.rooms_kv
    for _ in range(3):
        try:
            entry = await kv.get(room_id)
        except KeyNotFoundError:
            handle = secrets.token_urlsafe(16)
            try:
                await kv.create(room_id, token_hash + handle.encode())
            except KeyWrongLastSequenceError:
                continue  # another node created it meanwhile: compare with that
            return handle
        value = bytes(entry.value or b"")
        if not hmac.compare_digest(value[:32], token_hash):
            return None
        if value[32:] == REPLACED_MARK:
            return REPLACED
        return value[32:].decode("ascii", "replace") or None
    return None


__all__ = ["REPLACED", "UNAVAILABLE", "RoomLink", "room_handle"]
