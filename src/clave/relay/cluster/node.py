"""This relay as one node of a cluster on NATS (``clave serve --nats``): the asyncio side.

* **Node slot.** A node claims a free slot 1..255 in the ``CLAVE_NODES`` bucket (a
  compare-and-set create) and refreshes it every ``NODE_TTL / 3`` seconds; its
  connection ids are ``slot << 24 | n``, so they are unique across the cluster.
* **Deliveries** to another node's connections go to that node's subject
  ``clave.node.<slot>`` as batches (:mod:`.outbox`), published in order by one task.
  This node delivers the batches it receives to its own connections' queues, as if
  the sender were local: their loss policy, keyframe requests and congestion cap
  apply unchanged.
* **Rooms** are linked to the cluster while this node has connections in them
  (:mod:`.room_link`): their rosters, their commit order, their token hash.

Subjects and bucket keys carry room handles, node slots and connection ids only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyWrongLastSequenceError, NoKeysError

from clave.wire import (
    MAX_LAYER,
    Commit,
    Error,
    KeyframeWanted,
    LayerCap,
    Reopen,
    Rotate,
    decode_media,
    room_id_for_token,
)

from ..addresses import Account
from ..config import RelayConfig
from ..room import BAD_TOKEN, ROTATED, Peer, Room
from ..rooms import Rooms
from ..stats import Refused
from .jetstream_order import STREAM, connect_jetstream, ensure_stream
from .outbox import CONTROL, BatchError, Item, Outbox, decode_batch
from .room_link import REPLACED, UNAVAILABLE, RoomLink, room_handle

log = logging.getLogger("clave.relay.cluster")

SLOT_SHIFT = 24
"""Connection ids are ``slot << SLOT_SHIFT | n``."""
MAX_SLOT = 255
NODE_TTL = 6.0
"""Seconds after its last refresh a node's slot is free again (the node is gone)."""
FLUSH_DELAY = 0.001
"""Seconds deliveries to other nodes wait to travel together (one NATS message per node
and flush: at 50 frames/s per sender, a loop tick alone seldom holds two)."""
RESET_ATTEMPTS = 30
"""Tries to make the stream and buckets again after the NATS server lost them."""
NODES_BUCKET = "CLAVE_NODES"
ROSTER_BUCKET = "CLAVE_ROSTER"
ROOMS_BUCKET = "CLAVE_ROOMS"
NODE_SUBJECT = "clave.node."


class ClusterNode:
    """One relay's membership of the cluster (see the module docstring)."""

    shift = SLOT_SHIFT

    def __init__(self, servers: list[str], config: RelayConfig, **nats_options: Any) -> None:
        self.servers = servers
        self.config = config
        self._options = nats_options
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.slot = 0
        self.rooms: dict[str, RoomLink] = {}
        """Room handle -> the link of a room with connections on this node."""
        self._opening: dict[str, asyncio.Future[None]] = {}
        """Room handle -> the linking of its room in progress."""
        self.relay_rooms: Rooms | None = None
        """This relay's rooms (set by the first :meth:`enter`)."""
        self._outboxes: dict[int, Outbox] = {}
        self._ready: list[Outbox] = []
        self._sending: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.bad_batches = 0
        self.delivered = [0, 0, 0, 0]
        """Items delivered to this node's connections from other nodes, by kind
        (audio, video, screen, control)."""
        self.resets = 0
        """Times the NATS server lost the cluster's state and this node started afresh."""
        self.on_reset: Callable[[], Awaitable[None]] | None = None
        """Closes this relay's connections (their engines reconnect and register again)."""
        self._stream_created: Any = None
        self.nodes_kv: Any = None
        self.roster_kv: Any = None
        self.rooms_kv: Any = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if "tls" in self._options:
            logging.getLogger("asyncio").addFilter(_quiet_tls_eof)
        options = {
            "reconnected_cb": self._reconnected,
            "error_cb": self._nats_error,
            "reconnect_time_wait": 0.5,
        }
        self.nc, self.js = await connect_jetstream(self.servers, **options, **self._options)
        await self._make_buckets()
        self.slot = await self._claim_slot()
        await self.nc.subscribe(NODE_SUBJECT + str(self.slot), cb=self._on_batch)
        self._tasks = [
            asyncio.create_task(self._send_loop()),
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._watch_nodes()),
        ]
        log.info("relay node %d joined the cluster", self.slot)

    async def _make_buckets(self) -> None:
        js = self.js_context
        self._stream_created = (await js.stream_info(STREAM)).created
        self.nodes_kv = await js.create_key_value(
            KeyValueConfig(bucket=NODES_BUCKET, ttl=NODE_TTL, storage=StorageType.MEMORY)
        )
        self.roster_kv = await js.create_key_value(
            KeyValueConfig(bucket=ROSTER_BUCKET, storage=StorageType.MEMORY)
        )
        self.rooms_kv = await js.create_key_value(
            KeyValueConfig(bucket=ROOMS_BUCKET, storage=StorageType.MEMORY)
        )

    async def _nats_error(self, exc: Exception) -> None:
        """One line per NATS error once joined (the client keeps reconnecting by itself);
        before, the failure to join says it all (:class:`ClusterJoinError`)."""
        if self.nc is not None:
            log.warning("NATS: %s", exc.__class__.__name__)

    async def _reconnected(self) -> None:
        """NATS is back. If its server restarted, the cluster's state (memory only, like
        a relay's) is gone: start afresh as a restarted relay does (its connections are
        closed; their engines come back and register again). Else nothing was lost."""
        try:
            created = (await self.js_context.stream_info(STREAM)).created
        except Exception:
            created = None
        if created is not None and created == self._stream_created:
            return
        log.warning("the NATS server lost the cluster's state: relay node starts afresh")
        self.resets += 1
        for link in list(self.rooms.values()):
            await link.close()
        for attempt in range(RESET_ATTEMPTS):  # JetStream may need a moment after a restart
            try:
                await ensure_stream(self.js_context)
                await self._make_buckets()
                await self.nodes_kv.put(str(self.slot), b"")
                break
            except Exception as exc:
                log.warning("cluster state not made again yet (%r): retrying", exc)
                await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        if self.on_reset is not None:
            await self.on_reset()

    async def close(self) -> None:
        for link in list(self.rooms.values()):
            await link.close()
        self._sending.put_nowait(None)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.nodes_kv is not None:
            with contextlib.suppress(Exception):
                await self.nodes_kv.delete(str(self.slot))
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    async def _claim_slot(self) -> int:
        for slot in range(1, MAX_SLOT + 1):
            try:
                await self.nodes_kv.create(str(slot), b"")
            except KeyWrongLastSequenceError:
                continue
            return slot
        raise RuntimeError(f"all {MAX_SLOT} node slots of the cluster are taken")

    async def _watch_nodes(self) -> None:
        """Every ``NODE_TTL / 2`` s: connections of a node whose slot expired leave."""
        while True:
            await asyncio.sleep(NODE_TTL / 2)
            try:
                live = {int(k) for k in await self.nodes_kv.keys() if k.isdigit()}
            except NoKeysError:
                live = set()
            except Exception:  # NATS away: look again later
                continue
            for link in list(self.rooms.values()):
                for slot in link.node_slots() - live - {self.slot}:
                    log.info("relay node %d is gone: its connections leave", slot)
                    link.forget_node(slot)
                    with contextlib.suppress(Exception):
                        await self.roster_kv.delete(f"{link.handle}.{slot}")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(NODE_TTL / 3)
            with contextlib.suppress(Exception):  # NATS away: the client reconnects
                await self.nodes_kv.put(str(self.slot), b"")

    def conn_base(self) -> int:
        return self.slot << SLOT_SHIFT

    @property
    def js_context(self) -> JetStreamContext:
        assert self.js is not None, "start() first"
        return self.js

    # ------------------------------------------------------------ rooms

    async def enter(
        self, rooms: Rooms, room_id: str, token: bytes, now: float, account: Account | None
    ) -> Room | Error:
        """:meth:`Rooms.enter` for the cluster: the token must be the room's everywhere,
        and the room is linked (its rosters read) before the connection is added."""
        self.relay_rooms = rooms
        token_hash = hashlib.sha256(token).digest()
        id_ok = hmac.compare_digest(room_id.encode(), room_id_for_token(token).encode())
        handle = await room_handle(self, room_id, token_hash) if id_ok else None
        if handle is None:
            rooms.stats.refuse(Refused.bad_token)
            return BAD_TOKEN
        if handle == REPLACED:
            rooms.stats.refuse(Refused.replaced)
            return ROTATED
        link = self.rooms.get(handle)
        if link is not None and link.room.id != room_id:
            with contextlib.suppress(Exception):  # a Move not applied here yet?
                await link.order.caught_up()
            if link.room.id != room_id:
                return BAD_TOKEN  # moved on meanwhile
        outcome = rooms.enter(room_id, token, now, account)
        if isinstance(outcome, Error):
            return outcome
        opening = self._opening.get(handle)
        if opening is None and outcome.link is None:
            opening = asyncio.ensure_future(RoomLink(self, outcome, handle).open())
            self._opening[handle] = opening
            opening.add_done_callback(lambda _: self._opening.pop(handle, None))
        if opening is not None:
            try:
                await asyncio.shield(opening)
            except Exception as exc:
                log.warning("room #%d could not join the cluster: %r", outcome.serial, exc)
                return UNAVAILABLE
        return outcome

    def rename(self, room: Room, new_id: str, token_hash: bytes) -> bool:
        """Move a linked room to a new id here (a Move of its log)."""
        return self.relay_rooms is not None and self.relay_rooms.rename(room, new_id, token_hash)

    async def ordered(self, room: Room, peer: Peer, msg: Any, now: float) -> bool:
        """Handle ``msg`` if the cluster orders it (Commit, Reopen, Rotate); False if not."""
        link = _link_of(room)
        handler = _ORDERED.get(type(msg))
        if link is None or handler is None:
            return False
        await handler(link, peer, msg, now)
        return True

    async def seed(self, room: Room, peer: Peer, cred_hash: bytes | None) -> None:
        """Register an entering member's credential hash through the room's log."""
        link = _link_of(room)
        if link is not None:
            await link.seed(peer, cred_hash)

    def left(self, rooms: Rooms, room: Room, now: float) -> None:
        """A connection of this node left ``room``: unlink it once none is left here."""
        if any(not p.node for p in room.peers.values()):
            return
        link = _link_of(room)
        if link is None:
            return
        link.detach()
        rooms.discard_if_empty(room, now)
        task = asyncio.ensure_future(link.close())
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    @staticmethod
    def slot_of(conn: int) -> int:
        return conn >> SLOT_SHIFT

    # ------------------------------------------------------------ sending

    def outbox(self, slot: int) -> Outbox:
        box = self._outboxes.get(slot)
        if box is None:
            box = self._outboxes[slot] = Outbox(slot, self._on_ready)
        return box

    def _on_ready(self, box: Outbox) -> None:
        if not self._ready:  # one flush for all nodes, a moment later: fewer messages
            asyncio.get_running_loop().call_later(FLUSH_DELAY, self._flush)
        self._ready.append(box)

    def _flush(self) -> None:
        ready, self._ready = self._ready, []
        for box in ready:
            subject = NODE_SUBJECT + str(box.node)
            for payload in box.take():
                self._sending.put_nowait((subject, payload))

    async def _send_loop(self) -> None:
        assert self.nc is not None
        while (item := await self._sending.get()) is not None:
            with contextlib.suppress(Exception):  # NATS away: deliveries are lost, as
                await self.nc.publish(*item)  # on a dropped connection

    # ------------------------------------------------------------ receiving

    async def _on_batch(self, msg: Any) -> None:
        try:
            batch = decode_batch(bytes(msg.data))
        except BatchError as exc:
            self.bad_batches += 1
            log.warning("batch refused: %s", exc)
            return
        now = asyncio.get_running_loop().time()
        for part in batch.rooms:
            link = self.rooms.get(part.room)
            if link is not None:  # else the room's last connection here just left
                self._deliver(link.room, part.items, now)

    def _deliver(self, room: Room, items: list[Item], now: float) -> None:
        """Queue another node's items for this node's connections, as if sent here."""
        downgrade_at, hold, restore, _ = room.congestion_settings
        for item in items:
            for target in item.targets:
                peer = room.peers.get(target)
                if peer is None or peer.node:
                    continue
                queue = peer.queue
                self.delivered[item.kind] += 1
                if item.kind == CONTROL:
                    queue.push_control(item.data)
                    continue
                if queue.push_media(item.data, item.sender, item.kind, item.keyframe, now):
                    sender = room.peers.get(item.sender)
                    if sender is not None:
                        layer = decode_media(item.data).layer
                        sender.send(KeyframeWanted(by=target, kind=item.kind, layer=layer))
                choice = peer.layers
                if item.kind and (queue.media_bytes > downgrade_at or choice.cap < MAX_LAYER):
                    cap = choice.congestion(queue.media_bytes, downgrade_at, now, hold, restore)
                    if cap is not None:
                        peer.send(LayerCap(layer=cap))


def _quiet_tls_eof(record: logging.LogRecord) -> bool:
    """Drop asyncio's warning that nats-py's protocol returns True from ``eof_received``
    over TLS (harmless, and logged at every disconnection)."""
    return "eof_received() has no effect when using ssl" not in record.getMessage()


def _link_of(room: Room) -> RoomLink | None:
    """The cluster link of a room, if it has one (the room knows it only as hooks)."""
    link = room.link
    return link if isinstance(link, RoomLink) else None


_ORDERED: dict[type[Any], Callable[[RoomLink, Peer, Any, float], Awaitable[None]]] = {
    Commit: RoomLink.commit,
    Reopen: RoomLink.reopen,
    Rotate: RoomLink.rotate,
}
"""Control messages a linked room hands to the cluster's ordering."""

__all__ = ["NODE_TTL", "SLOT_SHIFT", "ClusterNode"]
