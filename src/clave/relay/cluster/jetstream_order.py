"""Commit order across relay nodes on NATS JetStream (the asyncio side of :mod:`.order_log`).

One memory-backed stream, ``CLAVE_ORDER``, holds every room's log on the subject
``clave.order.<room id>`` (room ids only: never tokens, credentials or names; the
log holds credential *hashes* and commits, which are ciphertext the relay forwards
anyway). A node that has members in a room follows that subject with an ordered
consumer and applies each entry to its :class:`~.order_log.OrderReplica`.

To append, a node checks the operation against its replica at position ``s`` and
publishes it with ``Nats-Expected-Last-Subject-Sequence: s``. JetStream refuses the
append if anything else was appended to the room's subject since (error 10071);
the node then waits until its replica has caught up and checks again. Hence one
winner per epoch, and one answer per commit (PROTOCOL.md, "Relay clusters").

Memory storage, like a single relay's rooms: nothing reaches a disk. When the NATS
server restarts the logs are gone; members register again as after a relay restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from nats import errors as nats_errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError, NotFoundError

from ..ordering import Verdict
from .order_log import (
    MAX_ENTRY_BYTES,
    Applied,
    Entry,
    LogError,
    Move,
    Order,
    OrderReplica,
    Reopen,
    Seed,
    encode_entry,
)

log = logging.getLogger("clave.relay.cluster")

STREAM = "CLAVE_ORDER"
SUBJECT_PREFIX = "clave.order."
MAX_ENTRIES_PER_ROOM = 100_000
"""Entries a room's log keeps; older ones are dropped (a replica built later then
lacks the oldest slots: their members must be admitted again, as after a restart)."""
WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code for a failed expected-last-subject-sequence check."""
CATCH_UP_TIMEOUT = 5.0
"""Seconds a node waits for its replica to reach a position before giving up."""
MAX_ATTEMPTS = 20
"""Appends tried for one operation before the node gives up (a storm of commits)."""


class ClusterUnavailable(Exception):
    """The operation could not be ordered: NATS is unreachable or the room too busy."""


def subject_of(room_id: str) -> str:
    return SUBJECT_PREFIX + room_id


async def ensure_stream(js: JetStreamContext) -> None:
    """Create the ordering stream if no node has yet (idempotent)."""
    config = StreamConfig(
        name=STREAM,
        subjects=[SUBJECT_PREFIX + "*"],
        storage=StorageType.MEMORY,
        max_msgs_per_subject=MAX_ENTRIES_PER_ROOM,
        max_msg_size=MAX_ENTRY_BYTES,
        discard=DiscardPolicy.OLD,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:  # created meanwhile by another node with the same settings
        await js.stream_info(STREAM)


class RoomOrder:
    """One room's replica on this node, kept current from the room's log."""

    def __init__(
        self,
        js: JetStreamContext,
        room_id: str,
        replica: OrderReplica,
        on_applied: Callable[[Applied], None] | None = None,
    ) -> None:
        self._js = js
        self.room_id = room_id
        self.subject = subject_of(room_id)
        self.replica = replica
        self._on_applied = on_applied
        self._advanced = asyncio.Condition()
        self._sub: Any = None
        self._lock = asyncio.Lock()
        """One proposal at a time from this node (the others wait their turn)."""
        self.bad_entries = 0

    async def start(self) -> None:
        """Follow the room's log from its first entry (ordered consumer)."""
        self._sub = await self._js.subscribe(self.subject, cb=self._on_msg, ordered_consumer=True)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_msg(self, msg: Any) -> None:
        seq = int(msg.metadata.sequence.stream)
        try:
            applied = self.replica.apply(seq, bytes(msg.data))
        except LogError as exc:
            self.bad_entries += 1
            log.warning("room log entry %d refused: %s", seq, exc)
            applied = None
        if applied is not None and self._on_applied is not None:
            self._on_applied(applied)
        async with self._advanced:
            self._advanced.notify_all()

    async def _reach(self, seq: int) -> None:
        """Wait until the replica has applied position ``seq``."""
        async with self._advanced:
            await asyncio.wait_for(
                self._advanced.wait_for(lambda: self.replica.seq >= seq), CATCH_UP_TIMEOUT
            )

    async def _newer_than(self, seq: int) -> None:
        """Wait until the replica moved past ``seq`` (after a refused append)."""
        await self._reach(seq + 1)

    async def _propose(self, make: Callable[[], Entry | None]) -> Entry | None:
        """Append ``make()`` (built from the replica as it is then) at the log's end;
        the entry appended, or None when ``make`` says there is nothing to append."""
        async with self._lock:
            for _ in range(MAX_ATTEMPTS):
                entry = make()
                if entry is None:
                    return None
                at = self.replica.seq
                headers = {"Nats-Expected-Last-Subject-Sequence": str(at)}
                try:
                    ack = await self._js.publish(self.subject, encode_entry(entry), headers=headers)
                except APIError as exc:
                    if exc.err_code != WRONG_LAST_SEQUENCE:
                        raise ClusterUnavailable(f"JetStream refused the entry: {exc}") from None
                    await self._catch_up(self._newer_than(at))
                    continue
                except Exception as exc:  # timeouts, a lost connection
                    raise ClusterUnavailable(f"NATS: {exc!r}") from None
                await self._catch_up(self._reach(int(ack.seq)))
                return entry
            raise ClusterUnavailable("too many concurrent commits in this room")

    @staticmethod
    async def _catch_up(waiting: Awaitable[None]) -> None:
        try:
            await waiting
        except TimeoutError:
            raise ClusterUnavailable("this node's copy of the room log fell behind") from None

    # ------------------------------------------------------------ operations

    async def commit(self, owner: int, cred: bytes, next_: bytes, data: bytes) -> Verdict:
        """Order a commit (hashes ``cred``, ``next_``): its one verdict for the cluster."""
        refused: list[Verdict] = []

        def make() -> Entry | None:
            verdict = self.replica.check_commit(cred, next_, owner)
            if verdict is not Verdict.accepted:
                refused.append(verdict)
                return None
            return Order(owner=owner, cred=cred, next=next_, data=data)

        entry = await self._propose(make)
        return Verdict.accepted if entry is not None else refused[-1]

    async def seed(self, key: bytes, owner: int) -> bool:
        """Register an entering member's hash (until the first ordered commit)."""
        entry = await self._propose(
            lambda: Seed(owner=owner, key=key) if self.replica.may_seed(key, owner) else None
        )
        return entry is not None

    async def move(
        self, owner: int, cred: bytes, room: str, token_hash: bytes, drop: list[int]
    ) -> bool:
        """Append a Move (a replaced invitation) if ``cred``'s slot is open; False if not."""
        entry = await self._propose(
            lambda: (
                Move(owner=owner, cred=cred, room=room, token_hash=token_hash, drop=drop)
                if self.replica.slots.is_open(cred)
                else None
            )
        )
        return entry is not None

    async def last_seq(self) -> int:
        """The log position of the room's last entry (0: none yet)."""
        try:
            msg = await self._js.get_last_msg(STREAM, self.subject)
        except NotFoundError:
            return 0
        return int(msg.seq or 0)

    async def caught_up(self) -> None:
        """Until the replica has applied every entry appended before this call."""
        await self._catch_up(self._reach(await self.last_seq()))

    async def reopen(self, key: bytes) -> bool:
        """Open a consumed slot again; False if there was nothing to reopen."""
        entry = await self._propose(
            lambda: Reopen(key=key) if self.replica.may_reopen(key) else None
        )
        return entry is not None


JOIN_ATTEMPTS = 3
"""Connection attempts per server when a node starts, before it gives up with a reason
(once joined, the client reconnects for as long as it takes)."""

JOIN_TIMEOUT = 20.0
"""Seconds a starting node tries to reach NATS at most."""

_REFUSED = (
    "the NATS server refused this node's credentials (authorization violation): check "
    "--nats-nkey or --nats-creds"
)
_JOIN_FAILURES: tuple[tuple[type[BaseException], str], ...] = (
    (nats_errors.AuthorizationError, _REFUSED),
    (
        ssl.SSLCertVerificationError,
        "the NATS server's TLS certificate is not trusted ({exc}): "
        "give the CA that signed it with --nats-ca",
    ),
    (ssl.SSLError, "TLS with the NATS server failed ({exc})"),
    (ConnectionRefusedError, "no NATS server answers there (connection refused)"),
    (OSError, "cannot reach the NATS server ({exc})"),
    (TimeoutError, "the NATS server did not answer in time"),
)


class ClusterJoinError(Exception):
    """A node could not join the cluster when it started; the message says why."""


def join_failure(exc: BaseException) -> str:
    """Why connecting to NATS failed, in an operator's words."""
    if "Authorization Violation" in str(exc):  # nats-py's plain Error for the server's -ERR
        return _REFUSED
    for kind, text in _JOIN_FAILURES:
        if isinstance(exc, kind):
            return text.format(exc=getattr(exc, "verify_message", None) or exc)
    return f"{exc.__class__.__name__}: {exc}"


def _telling(causes: list[BaseException]) -> BaseException | None:
    """The cause that says most: a refusal by the server or TLS over a dropped link."""
    refused = [e for e in causes if join_failure(e) == _REFUSED]
    tls = [e for e in causes if isinstance(e, ssl.SSLError)]
    return (refused or tls or causes[::-1] or [None])[0]


async def connect_jetstream(servers: list[str], **options: Any) -> tuple[NATS, JetStreamContext]:
    """A NATS connection that keeps reconnecting once made, its JetStream context, the
    stream made; :class:`ClusterJoinError` if the first connection cannot be made."""
    nc = NATS()
    seen: list[Exception] = []
    error_cb = options.pop("error_cb", None)
    untrusted = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        if not untrusted.is_set() and not connecting.done():  # only while joining
            seen.append(exc)
        if isinstance(exc, ssl.SSLCertVerificationError):
            untrusted.set()  # retrying cannot help (and nats-py may hang closing the link)
        if error_cb is not None:
            await error_cb(exc)

    connecting = asyncio.ensure_future(
        nc.connect(
            servers=servers, max_reconnect_attempts=JOIN_ATTEMPTS, error_cb=on_error, **options
        )
    )
    stop = asyncio.ensure_future(untrusted.wait())
    try:
        await asyncio.wait({connecting, stop}, timeout=JOIN_TIMEOUT, return_when="FIRST_COMPLETED")
    finally:
        stop.cancel()
    if not connecting.done() or connecting.exception() is not None:
        failure = connecting.exception() if connecting.done() else None
        connecting.cancel()
        await asyncio.wait({connecting}, timeout=2.0)
        causes = [
            e
            for e in (*seen, failure or TimeoutError())
            if not isinstance(e, nats_errors.NoServersError)
        ]
        raise ClusterJoinError(join_failure(_telling(causes) or causes[-1]))
    del seen[:]  # joined: later errors only go to the caller's callback (see on_error)
    nc.options["max_reconnect_attempts"] = -1  # joined: never give up again
    js = nc.jetstream()
    await ensure_stream(js)
    return nc, js


__all__ = [
    "STREAM",
    "ClusterJoinError",
    "ClusterUnavailable",
    "RoomOrder",
    "connect_jetstream",
    "ensure_stream",
    "subject_of",
]
