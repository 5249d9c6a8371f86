"""Commit order across relay nodes on a real NATS JetStream server (issue 14, req. 2).

Three nodes (three NATS connections, each with its own replica of the room's slots)
race commits for the same epochs. Exactly one commit wins each epoch, every commit
gets exactly one answer, all replicas end up equal, and a node that starts following
the room later rebuilds the same slots from the log (so a member coming back to it is
replayed the commits it missed).
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from nats_helpers import NatsServer

from bounded_run import run
from clave.relay.cluster import jetstream_order
from clave.relay.cluster.jetstream_order import RoomOrder, connect_jetstream
from clave.relay.cluster.order_log import (
    LogError,
    Order,
    OrderReplica,
    Seed,
    decode_entry,
    encode_entry,
)
from clave.relay.ordering import Verdict

ROOM = "R" * 22


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def replica() -> OrderReplica:
    return OrderReplica(max_slots=512, max_open_per_owner=4, max_log_bytes=1 << 20)


def snapshot(order: RoomOrder) -> list[tuple[int, bytes]]:
    """The commits a member in the first epoch would be replayed, and the open slots."""
    return order.replica.slots.chain(h("epoch 0"))


def test_racing_commits_get_one_winner_per_epoch_and_one_answer_each(
    nats_server: NatsServer,
) -> None:
    async def scenario() -> None:
        conns = [await connect_jetstream([nats_server.url]) for _ in range(3)]
        orders = [RoomOrder(js, ROOM, replica()) for _, js in conns]
        try:
            for order in orders:
                await order.start()
            # the room's first member registers epoch 0 on node 0; the others see it
            assert await orders[0].seed(h("epoch 0"), owner=1)
            assert not await orders[1].seed(h("epoch 0"), owner=2)  # known already
            answers: dict[int, list[tuple[int, Verdict]]] = {}
            for epoch in range(12):
                cred = h(f"epoch {epoch}")
                # each node's member proposes its own commit for this epoch at once
                verdicts = await asyncio.gather(
                    *(
                        o.commit(10 + i, cred, h(f"epoch {epoch + 1}"), f"{epoch}/{i}".encode())
                        for i, o in enumerate(orders)
                    )
                )
                answers[epoch] = [(i, v) for i, v in enumerate(verdicts)]
            for epoch, got in answers.items():
                winners = [i for i, v in got if v is Verdict.accepted]
                assert len(winners) == 1, (epoch, got)  # exactly one per epoch
                assert all(v in (Verdict.accepted, Verdict.stale) for _, v in got), got
            # every replica holds the same chain of ordered commits
            await asyncio.gather(*(o._reach(orders[0].replica.seq) for o in orders))
            chains = [snapshot(o) for o in orders]
            assert len(chains[0]) == 12 and chains[0] == chains[1] == chains[2]
            for epoch, (owner, data) in enumerate(chains[0]):
                winner = next(i for i, v in answers[epoch] if v is Verdict.accepted)
                assert (owner, data) == (10 + winner, f"{epoch}/{winner}".encode())
            # a stale credential and an unknown one are refused, nothing appended
            at = orders[1].replica.seq
            assert await orders[1].commit(99, h("epoch 3"), h("x"), b"late") is Verdict.stale
            assert await orders[2].commit(99, h("never"), h("y"), b"junk") is Verdict.unknown
            assert orders[1].replica.seq == at
            # reopening a consumed slot lets one honest commit be ordered for it again
            assert await orders[2].reopen(h("epoch 12")) is False  # still open
            # a node that follows the room only now rebuilds the same slots from the log
            late_nc, late_js = await connect_jetstream([nats_server.url])
            conns.append((late_nc, late_js))
            late = RoomOrder(late_js, ROOM, replica())
            orders.append(late)
            await late.start()
            await late._reach(at)
            assert snapshot(late) == chains[0]
            assert late.replica.slots.is_open(h("epoch 12"))
        finally:
            for order in orders:
                await order.stop()
            for nc, _ in conns:
                await nc.close()

    run(scenario(), 60)


def test_a_malformed_entry_is_counted_and_does_not_stall_the_room(
    nats_server: NatsServer,
) -> None:
    async def scenario() -> None:
        nc, js = await connect_jetstream([nats_server.url])
        order = RoomOrder(js, ROOM, replica())
        try:
            await order.start()
            await js.publish(jetstream_order.subject_of(ROOM), b"\xc1 not msgpack")
            await order._reach(1)
            assert order.bad_entries == 1
            assert await order.seed(h("epoch 0"), owner=1)
            assert await order.commit(1, h("epoch 0"), h("epoch 1"), b"c") is Verdict.accepted
        finally:
            await order.stop()
            await nc.close()

    run(scenario(), 30)


def test_entries_are_checked_before_they_change_anything() -> None:
    with pytest.raises(LogError, match="not a SHA-256"):
        decode_entry(encode_entry(Seed(owner=1, key=b"short")))
    with pytest.raises(LogError, match="malformed"):
        decode_entry(b"\x93\x01")
    with pytest.raises(LogError, match="over"):
        decode_entry(b"\x00" * (600 * 1024))
    entry = Order(owner=3, cred=h("a"), next=h("b"), data=b"commit")
    assert decode_entry(encode_entry(entry)) == entry
    # applying: a redelivered position changes nothing; a bad entry still counts
    r = replica()
    assert r.apply(1, encode_entry(Seed(owner=1, key=h("epoch 0")))) is not None
    assert r.apply(1, encode_entry(Seed(owner=2, key=h("other")))) is None
    with pytest.raises(LogError):
        r.apply(2, b"junk")
    assert r.seq == 2 and h("other") not in r.slots
