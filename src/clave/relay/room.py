"""A room: membership, commit ordering, routing and fan-out to queues (see :mod:`.rooms`
for admission).

Everything here is synchronous and I/O-free: a :class:`Peer` is a connection
id, its subscription, its commit budget and its
:class:`~clave.relay.queues.OutQueue`; delivering means queueing. The asyncio
side (:mod:`clave.relay.connection`) drains queues and closes sockets.

* **Admission** (:meth:`.rooms.Rooms.enter`): a room's id is derived from its access
  token (:func:`clave.wire.room_id_for_token`), and a room keeps only the
  token's SHA-256. A room id alone therefore names nothing one could enter,
  create or squat, and every refusal of a token is the same ``BAD_TOKEN``, so
  the relay is no oracle for whether a room exists.
* **Ordering** (:meth:`Room.commit`, :meth:`Room.reopen`): by epoch credential,
  see :mod:`clave.relay.ordering`.
* **Commit budget**: Commit, Reopen and Rotate spend one token of the sender's
  bucket, always, and one of the room's bucket only when they act on the
  room's ordering (an ordered commit, an actual reopen, a rotation by a
  credential holder). Refusals never spend the room's budget, so link holders
  who are not members cannot exhaust it and starve the host's commits.
* **Rotation** (:meth:`Room.rotate`): a host replaces the invitation after a
  removal, so the ex-member's old link no longer enters the meeting's room.
* **Capacity** (:meth:`.rooms.Rooms.enter`, with the client's
  :class:`~clave.relay.addresses.Account`): rooms per relay and, per address, live
  rooms created and the creation rate (room flood); connections per room and, per
  address, connections in one room (lobby flood).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol

from clave.wire import (
    MAX_LAYER,
    AppFrom,
    AppMessage,
    Commit,
    CommitAccepted,
    CommitFrom,
    Error,
    ErrorCode,
    Joined,
    JoinRequest,
    JoinRequestFrom,
    KeyframeRequest,
    KeyframeWanted,
    LayerCap,
    Manifest,
    ManifestFrom,
    PeerJoined,
    PeerLeft,
    RelayMessage,
    Reopen,
    ReplyFrom,
    ReplyTo,
    Rotate,
    Rotated,
    Subscribe,
    WelcomeFor,
    WelcomeTo,
    credential_hash,
    encode,
    room_id_for_token,
)

from .addresses import Account
from .config import RelayConfig
from .layers import ReceiverLayers, SenderLayers
from .limits import TokenBucket
from .ordering import ByteBudget, EpochSlots, Verdict
from .queues import OutQueue

BAD_TOKEN = Error(ErrorCode.bad_token, "bad token")
"""The one answer for a token that does not fit the room id or the room: it tells nothing."""
BAD_CREDENTIAL = Error(ErrorCode.bad_credential, "unknown epoch credential")
COMMIT_RATE = Error(ErrorCode.rate_limited, "commit rate limit")
ROOM_EXISTS = Error(ErrorCode.room_exists, "another room has that token")
ROTATED = Error(ErrorCode.rotated, "the meeting's invitation was replaced")
RELAY_ROOMS_FULL = Error(ErrorCode.room_full, "this relay has no room for another meeting")
ROOM_FULL = Error(ErrorCode.room_full, "room is full")
ROOM_CROWDED = Error(
    ErrorCode.rate_limited, "too many connections from your network address in this meeting"
)
_REFUSALS = {
    Verdict.stale: Error(ErrorCode.stale_epoch, "another commit was ordered for that epoch"),
    Verdict.unknown: BAD_CREDENTIAL,
    Verdict.owner_limit: Error(ErrorCode.rate_limited, "too many open epochs"),
    Verdict.full: Error(ErrorCode.rate_limited, "too many epochs in this room"),
}

class RoomLinkHooks(Protocol):
    """What a room spanning relay nodes tells its link (:mod:`.cluster.room_link`)."""

    def local_changed(self, peer: Peer, left: str | None = None) -> None:
        """A connection of this node joined, changed its subscription or ``left`` (why)."""


Rename = Callable[["Room", str, bytes], bool]
"""Move a room to a new id and token hash; False if another room holds that id."""


class Peer:
    """One admitted connection as the room sees it."""

    __slots__ = (
        "account",
        "commits",
        "conn",
        "layers",
        "node",
        "on_drop",
        "queue",
        "room",
        "senders",
        "sends",
        "subscription",
        "wants",
    )

    def __init__(
        self,
        conn: int,
        queue: OutQueue,
        commits: TokenBucket,
        on_drop: Callable[[], None] | None = None,
        account: Account | None = None,
    ) -> None:
        self.conn = conn
        self.account = account
        """The client address this connection counts against (None: uncounted)."""
        self.queue = queue
        self.commits = commits
        """This connection's budget of Commit, Reopen and Rotate messages."""
        self.on_drop = on_drop
        """Called after a rotation removed this peer (its connection must close)."""
        self.wants = (True, True, True)
        """Subscribed media kinds, indexed by StreamKind (audio, video, screen)."""
        self.senders: tuple[frozenset[int] | None, ...] = (None, None, None)
        """Per kind, the only senders (connection ids) forwarded; None: everybody."""
        self.layers = ReceiverLayers()
        """Which simulcast layer of each sender this peer gets."""
        self.sends = SenderLayers()
        """Which simulcast layers this peer sends."""
        self.subscription: Subscribe | None = None
        """Its last Subscribe (a cluster node tells the others: :mod:`.cluster.roster`)."""
        self.node = 0
        """0: a connection of this relay; else the cluster node slot it is connected to."""
        self.room: Room | None = None

    def send(self, msg: RelayMessage) -> None:
        """Queue a control message for this peer (never dropped)."""
        self.queue.push_control(encode(msg))


def _only(conns: list[int] | None) -> frozenset[int] | None:
    return None if conns is None else frozenset(conns)


def _rename_in_place(room: Room, new_id: str, token_hash: bytes) -> bool:
    room.id, room.token_hash = new_id, token_hash
    return True


class Room:
    """One meeting's relay channel: members, epoch slots, commit budget and fan-out lists."""

    __slots__ = (
        "_chosen",
        "_commits",
        "_congestion",
        "_fanout",
        "_members",
        "_per_address",
        "_rename",
        "creator",
        "id",
        "link",
        "peers",
        "serial",
        "slots",
        "token_hash",
    )

    def __init__(
        self,
        room_id: str,
        token_hash: bytes,
        serial: int,
        config: RelayConfig,
        now: float,
        rename: Rename = _rename_in_place,
        log_budget: ByteBudget | None = None,
    ) -> None:
        self.id = room_id
        self.token_hash = token_hash
        self.serial = serial
        """A small number for logs (room ids stay out of logs)."""
        self.slots = EpochSlots(
            config.max_epoch_slots, config.max_open_epochs, config.commit_log_bytes, log_budget
        )
        self.peers: dict[int, Peer] = {}
        self._commits = TokenBucket(config.room_commit_rate, config.room_commit_burst, now)
        self._rename = rename
        self._members: tuple[Peer, ...] = ()
        self._fanout: tuple[tuple[Peer, ...], ...] = ((), (), ())
        """Per kind, the peers that receive it from everybody."""
        self._chosen: tuple[dict[int, tuple[Peer, ...]], ...] = ({}, {}, {})
        """Per kind, sender conn -> the peers that receive it only from senders they named:
        a frame costs its actual receivers, not a walk over the room (last-N)."""
        self._per_address: dict[str, int] = {}
        """Connections in this room by client address key (lobby flood)."""
        self.creator: Account | None = None
        """The address charged with this room until it empties (room flood)."""
        self.link: RoomLinkHooks | None = None
        """Set while the room spans relay nodes (:mod:`.cluster.room_link`)."""
        self._congestion = (
            config.media_downgrade_at,
            config.layer_hold,
            config.layer_restore_after,
            config.keyframe_retry,
        )

    def __len__(self) -> int:
        return len(self.peers)

    def conns_from(self, account: Account) -> int:
        """How many connections of ``account``'s address are in this room."""
        return self._per_address.get(account.key, 0)

    def _rebuild(self) -> None:
        # Immutable snapshots: iterating while a peer joins or leaves is safe.
        self._members = members = tuple(self.peers.values())
        fanout: list[tuple[Peer, ...]] = []
        chosen: list[dict[int, tuple[Peer, ...]]] = []
        for kind in range(3):
            everybody: list[Peer] = []
            named: dict[int, list[Peer]] = {}
            for p in members:
                only = p.senders[kind]
                if not p.wants[kind]:
                    continue
                if only is None:
                    everybody.append(p)
                else:
                    for conn in only:
                        named.setdefault(conn, []).append(p)
            fanout.append(tuple(everybody))
            chosen.append({conn: tuple(peers) for conn, peers in named.items()})
        self._fanout, self._chosen = tuple(fanout), tuple(chosen)

    def _broadcast(self, sender: Peer, msg: RelayMessage) -> None:
        data = encode(msg)
        for peer in self._members:
            if peer is not sender:
                peer.queue.push_control(data)

    def broadcast(self, sender: Peer, msg: RelayMessage) -> None:
        """``msg`` to everybody but ``sender`` (on every node of a cluster)."""
        self._broadcast(sender, msg)

    def _announce(self, peer: Peer, msg: RelayMessage, left: str | None = None) -> None:
        """PeerJoined or PeerLeft of ``peer``: in a cluster each node tells its own
        connections (when it learns of the change from the roster)."""
        if self.link is None:
            self._broadcast(peer, msg)
            return
        data = encode(msg)
        for other in self._members:
            if other is not peer and not other.node:
                other.queue.push_control(data)
        if not peer.node:
            self.link.local_changed(peer, left)

    def _to_one(self, peer: Peer, to: int, msg: RelayMessage) -> None:
        target = self.peers.get(to)
        if target is None:
            peer.send(Error(ErrorCode.unknown_peer, f"no connection {to} in this room"))
        else:
            target.send(msg)

    # ------------------------------------------------------------ membership

    def add(self, peer: Peer, cred_hash: bytes | None = None) -> None:
        """Admit ``peer``: it gets ``Joined``, everybody else ``PeerJoined``.

        ``cred_hash`` (a member's current epoch credential) is registered as an open
        slot while the room has ordered no commit yet (a fresh or re-established room;
        see :mod:`.ordering`). A member coming back with the hash of an epoch whose
        slot is consumed is first sent, as ``CommitFrom``, the commits ordered since
        (the ones it missed while its connection was down).
        """
        others = [p.conn for p in self._members]
        self.peers[peer.conn] = peer
        peer.room = self
        if peer.account is not None:
            key = peer.account.key
            self._per_address[key] = self._per_address.get(key, 0) + 1
        self._rebuild()
        if cred_hash is not None and not peer.node:
            for sender, data in self.slots.chain(bytes(cred_hash)):
                peer.send(CommitFrom(sender=sender, data=data))
            if self.link is None:  # in a cluster, seeded through the room's log first
                self.slots.seed(bytes(cred_hash), peer.conn)
        if not peer.node:
            peer.send(Joined(conn=peer.conn, peers=others))
        self._announce(peer, PeerJoined(conn=peer.conn))

    def remove(self, peer: Peer, reason: str) -> None:
        """Remove ``peer`` (idempotent); everybody else gets ``PeerLeft(reason)``."""
        if self.peers.pop(peer.conn, None) is None:
            return
        peer.room = None
        if peer.account is not None:
            key = peer.account.key
            left = self._per_address[key] - 1
            if left:
                self._per_address[key] = left
            else:
                del self._per_address[key]
        self._rebuild()
        self._announce(peer, PeerLeft(conn=peer.conn, reason=reason), reason)
        for other in self._members:
            other.queue.forget(peer.conn)
            other.layers.forget(peer.conn)

    def subscribe(self, peer: Peer, msg: Subscribe, now: float) -> None:
        """Media kinds, for video and screen the senders, and video layers ``peer``
        receives. A sender dropped from the subscription starts again at a keyframe
        when it is subscribed again."""
        before = peer.senders
        peer.subscription = msg
        peer.wants = (msg.audio, msg.video, msg.screen)
        peer.senders = (None, _only(msg.video_from), _only(msg.screen_from))
        peer.layers.want(msg.layer, msg.layers)
        for kind in (1, 2):
            now_only = peer.senders[kind]
            if now_only is None:
                continue
            old = before[kind]
            gone = (old if old is not None else self.peers.keys()) - now_only
            for conn in gone:
                peer.layers.forget(conn)
        self._rebuild()
        if self.link is not None and not peer.node:
            self.link.local_changed(peer)

    # ------------------------------------------------------------ ordering

    @property
    def congestion_settings(self) -> tuple[int, float, float, float]:
        """(downgrade_at, hold, restore_after, keyframe_retry) of the congestion cap."""
        return self._congestion

    def over_budget(self, peer: Peer, now: float) -> bool:
        return self._over_budget(peer, now)

    def room_budget(self, peer: Peer, now: float) -> bool:
        return self._room_budget(peer, now)

    def _over_budget(self, peer: Peer, now: float) -> bool:
        """Spend one of the sender's commit tokens; True (and refused) if it has none."""
        if peer.commits.take(1.0, now):
            return False
        peer.send(COMMIT_RATE)
        return True

    def _room_budget(self, peer: Peer, now: float) -> bool:
        """Spend one of the room's commit tokens; False (and refused) if it has none."""
        if self._commits.take(1.0, now):
            return True
        peer.send(COMMIT_RATE)
        return False

    def commit(self, peer: Peer, msg: Commit, now: float) -> None:
        """Order a commit if its credential's slot is open; refuse it otherwise.

        Accepted: ``CommitAccepted`` to the sender and ``CommitFrom`` to everybody
        else. Refused (stale, unknown credential, bounds, budget): one ``Error`` to
        the sender, nothing forwarded, the connection stays.
        """
        if self._over_budget(peer, now):
            return
        cred, slots, present = credential_hash(msg.cred), self.slots, self.peers
        verdict = slots.check(cred, msg.next, peer.conn, present)
        if verdict is not Verdict.accepted:
            peer.send(_REFUSALS[verdict])
            return
        if not self._room_budget(peer, now):
            return
        slots.commit(cred, bytes(msg.next), peer.conn, present, bytes(msg.data))
        peer.send(CommitAccepted())
        self._broadcast(peer, CommitFrom(sender=peer.conn, data=msg.data))

    def reopen(self, peer: Peer, msg: Reopen, now: float) -> None:
        """Open a consumed slot again (the commit ordered for it was refused); no answer."""
        if self._over_budget(peer, now):
            return
        cred = credential_hash(msg.cred)
        if cred in self.slots and not self.slots.is_open(cred) and self._room_budget(peer, now):
            self.slots.reopen(cred)

    def rotate(self, peer: Peer, msg: Rotate, now: float) -> None:
        """Move the room to the id of a new token and drop the connections in ``msg.drop``.

        Needs the credential of an open slot, i.e. of the meeting's current epoch: a
        removed member knows only consumed ones, so it cannot move the room (and
        with it the joiners) away from the members. The old token is then
        answered ``Error(rotated)`` (see :mod:`.rooms`). Dropped peers get
        ``Error(rotated)`` and leave (``PeerLeft`` reason "removed"); if the room
        moved, everybody else but the sender gets ``Rotated``.
        """
        if self._over_budget(peer, now):
            return
        if not self.slots.is_open(credential_hash(msg.cred)):
            peer.send(BAD_CREDENTIAL)
            return
        if not self._room_budget(peer, now):
            return
        new_id = room_id_for_token(msg.token)
        moved = new_id != self.id
        if moved and not self._rename(self, new_id, hashlib.sha256(msg.token).digest()):
            peer.send(ROOM_EXISTS)
            return
        for conn in dict.fromkeys(msg.drop):
            target = self.peers.get(conn)
            if target is None or target is peer:
                continue
            target.send(ROTATED)
            self.remove(target, "removed")
            if target.on_drop is not None:
                target.on_drop()
        if moved:
            self._broadcast(peer, Rotated(by=peer.conn))

    # ------------------------------------------------------------ routing

    def welcome(self, peer: Peer, msg: WelcomeTo, now: float) -> None:
        """One Welcome to each connection it names (encoded once)."""
        data = encode(WelcomeFor(sender=peer.conn, data=msg.data))
        for to in dict.fromkeys((msg.to, *msg.also)):
            target = self.peers.get(to)
            if target is None:
                peer.send(Error(ErrorCode.unknown_peer, f"no connection {to} in this room"))
            else:
                target.queue.push_control(data)

    def reply(self, peer: Peer, msg: ReplyTo, now: float) -> None:
        self._to_one(peer, msg.to, ReplyFrom(sender=peer.conn, data=msg.data))

    def keyframe_request(self, peer: Peer, msg: KeyframeRequest, now: float) -> None:
        self._to_one(peer, msg.to, KeyframeWanted(by=peer.conn, kind=msg.kind, layer=msg.layer))

    def join_request(self, peer: Peer, msg: JoinRequest, now: float) -> None:
        self._broadcast(peer, JoinRequestFrom(sender=peer.conn, data=msg.data))

    def app(self, peer: Peer, msg: AppMessage, now: float) -> None:
        self._broadcast(peer, AppFrom(sender=peer.conn, data=msg.data))

    def manifest(self, peer: Peer, msg: Manifest, now: float) -> None:
        """A sender's signed media manifest: to everyone else, on the control path."""
        self._broadcast(peer, ManifestFrom(sender=peer.conn, data=msg.data))

    # ------------------------------------------------------------ media

    def media(
        self, sender: Peer, data: bytes, kind: int, keyframe: bool, now: float, layer: int = 0
    ) -> None:
        """Queue a (sender-stamped) media message for every other subscribed member: for
        video and screen, only to those who get this layer (:mod:`.layers`)."""
        conn = sender.conn
        if kind == 0:
            for peer in self._fanout[0]:
                if peer is not sender:
                    peer.queue.push_media(data, conn, 0, False, now)
            return
        mask = sender.sends.saw(kind, layer, now)
        downgrade_at, hold, restore, retry = self._congestion
        for peers in (self._fanout[kind], self._chosen[kind].get(conn, ())):
            for peer in peers:
                if peer is sender:
                    continue
                choice = peer.layers
                forward, ask = choice.admit(conn, kind, layer, keyframe, mask, now, retry)
                if ask:
                    sender.send(KeyframeWanted(by=peer.conn, kind=kind, layer=layer))
                if not forward:
                    continue
                queue = peer.queue
                if queue.push_media(data, conn, kind, keyframe, now):
                    sender.send(KeyframeWanted(by=peer.conn, kind=kind, layer=layer))
                if queue.media_bytes > downgrade_at or choice.cap < MAX_LAYER:
                    cap = choice.congestion(queue.media_bytes, downgrade_at, now, hold, restore)
                    if cap is not None:
                        peer.send(LayerCap(layer=cap))


HANDLERS: dict[type[Any], Callable[[Room, Peer, Any, float], None]] = {
    Subscribe: Room.subscribe,
    Commit: Room.commit,
    Reopen: Room.reopen,
    Rotate: Room.rotate,
    WelcomeTo: Room.welcome,
    ReplyTo: Room.reply,
    JoinRequest: Room.join_request,
    AppMessage: Room.app,
    Manifest: Room.manifest,
    KeyframeRequest: Room.keyframe_request,
}
"""The room's handler of each control message an admitted connection may send."""
