"""Attacks on ordering and admission, each run against the real relay over WebSockets.

Every test here fails if its defence is taken out of the relay: credential-gated
commit ordering, room ids derived from tokens, reopening, commit budgets,
rotation. Tests count messages; none waits for time to pass as an assertion.
"""

from __future__ import annotations

import os

import pytest
from relay_helpers import Client, close_all, meeting, new_room, relay, run

from clave.relay import RelayConfig
from clave.relay.connection import CloseCode
from clave.wire import (
    AppFrom,
    AppMessage,
    Commit,
    CommitAccepted,
    CommitFrom,
    Enter,
    Error,
    ErrorCode,
    Leave,
    PeerJoined,
    PeerLeft,
    RelayMessage,
    Reopen,
    Rotate,
    Rotated,
    credential_hash,
    encode,
    room_id_for_token,
)

CRED = [os.urandom(32) for _ in range(20)]
"""Epoch credentials of successive epochs (what members' engines derive)."""
SEED = credential_hash(CRED[0])
UNLIMITED = RelayConfig(commit_burst=10_000, room_commit_burst=10_000)
"""Commit budgets out of the way, so only the credential check stands."""
BAD_TOKEN = encode(Error(ErrorCode.bad_token, "bad token"))


def commit(epoch: int, data: bytes = b"honest commit") -> Commit:
    return Commit(cred=CRED[epoch], next=credential_hash(CRED[epoch + 1]), data=data)


def junk() -> Commit:
    return Commit(cred=os.urandom(32), next=os.urandom(32), data=b"junk " + os.urandom(8))


async def until(client: Client, last: RelayMessage) -> list[RelayMessage]:
    """Control messages up to and including ``last``."""
    seen: list[RelayMessage] = []
    while True:
        msg = await client.control()
        seen.append(msg)
        if msg == last:
            return seen


async def errors(client: Client, n: int) -> list[ErrorCode]:
    """The codes of the next ``n`` errors; only presence may come between them."""
    codes: list[ErrorCode] = []
    while len(codes) < n:
        msg = await client.control()
        if not isinstance(msg, PeerJoined):
            assert isinstance(msg, Error), msg
            codes.append(msg.code)
    return codes


# ------------------------------------------------------------ junk commits


@pytest.mark.parametrize("config", [RelayConfig(), UNLIMITED], ids=["default", "unlimited"])
def test_link_holder_junk_commits_are_never_ordered(config: RelayConfig) -> None:
    """A link holder who is not a member floods junk commits; none is ordered."""

    async def scenario() -> None:
        async with relay(config) as port:
            _, _, (host, member, evil) = await meeting(port, 3, cred_hash=SEED)
            for _ in range(200):
                await evil.send(junk())
            codes = await errors(evil, 200)
            assert set(codes) <= {ErrorCode.bad_credential, ErrorCode.rate_limited}
            assert ErrorCode.bad_credential in codes
            # still connected; nothing of the flood reached the others
            await evil.send(AppMessage(data=b"done"))
            done = AppFrom(sender=evil.conn, data=b"done")
            for other in (host, member):
                assert await until(other, done) == [done]
            # the host's honest commit is ordered as if nothing happened
            await host.send(commit(0))
            assert await host.expect(CommitAccepted) == CommitAccepted()
            honest = CommitFrom(sender=host.conn, data=b"honest commit")
            assert await member.expect(CommitFrom) == honest
            assert await evil.expect(CommitFrom) == honest
            await close_all([host, member, evil])

    run(scenario(), timeout=30)


def test_many_link_holders_cannot_spend_the_room_budget() -> None:
    """40 connections of link holders, each within its own budget, 200 junk commits in all."""
    config = RelayConfig(room_commit_burst=30, room_commit_rate=0.001)

    async def scenario() -> None:
        async with relay(config) as port:
            room, token, (host, member) = await meeting(port, 2, cred_hash=SEED)
            # 40 link holders: 8 per address at most in one room, so from 5 addresses
            sources = [f"127.0.1.{i % 5 + 1}" for i in range(40)]
            outsiders = [await Client.connect(port, source=s) for s in sources]
            for o in outsiders:
                await o.enter(room, token)
            for o in outsiders:
                for _ in range(5):
                    await o.send(junk())
            for o in outsiders:
                assert await errors(o, 5) == [ErrorCode.bad_credential] * 5
            await host.send(commit(0))
            assert (await until(host, CommitAccepted()))[:-1] == [
                PeerJoined(conn=o.conn) for o in outsiders
            ]
            await close_all([host, member, *outsiders])

    run(scenario(), timeout=30)


def test_members_reopen_an_epoch_a_junk_commit_took() -> None:
    """A member (it knows the epoch credential) commits junk; the others reopen the epoch."""

    async def scenario() -> None:
        async with relay(UNLIMITED) as port:
            _, _, (host, other, evil) = await meeting(port, 3, cred_hash=SEED)
            await evil.send(commit(0, b"junk from a member"))
            assert await evil.expect(CommitAccepted) == CommitAccepted()
            assert (await host.expect(CommitFrom)).sender == evil.conn
            assert (await other.expect(CommitFrom)).sender == evil.conn
            await host.send(commit(0))
            assert (await host.expect(Error)).code is ErrorCode.stale_epoch
            # the other member's engine refused the junk commit: it reopens its epoch
            await other.send(Reopen(cred=CRED[0]))
            await other.send(AppMessage(data=b"reopened"))  # a round trip after the Reopen
            assert await host.expect(AppFrom) == AppFrom(sender=other.conn, data=b"reopened")
            await host.send(commit(0))
            assert await host.expect(CommitAccepted) == CommitAccepted()
            honest = CommitFrom(sender=host.conn, data=b"honest commit")
            assert await other.expect(CommitFrom) == honest
            reopened = AppFrom(sender=other.conn, data=b"reopened")
            assert await until(evil, honest) == [reopened, honest]
            await close_all([host, other, evil])

    run(scenario())


# ------------------------------------------------------------ commit budgets


def test_commit_rate_limit_per_connection_is_not_fatal() -> None:
    config = RelayConfig(commit_burst=3, commit_rate=0.001)

    async def scenario() -> None:
        async with relay(config) as port:
            _, _, (a, b) = await meeting(port, 2, cred_hash=SEED)
            for epoch in range(10):
                await a.send(commit(epoch))
            answers = [await a.control() for _ in range(10)]
            assert answers[:3] == [CommitAccepted()] * 3
            assert answers[3:] == [Error(ErrorCode.rate_limited, "commit rate limit")] * 7
            assert [(await b.expect(CommitFrom)).sender for _ in range(3)] == [a.conn] * 3
            await a.send(AppMessage(data=b"still here"))
            assert await b.expect(AppFrom) == AppFrom(sender=a.conn, data=b"still here")
            await close_all([a, b])

    run(scenario())


def test_commit_rate_limit_per_room_is_not_fatal() -> None:
    config = RelayConfig(commit_burst=100, room_commit_burst=3, room_commit_rate=0.001)

    async def scenario() -> None:
        async with relay(config) as port:
            _, _, (a, b, c) = await meeting(port, 3, cred_hash=SEED)
            for epoch in (0, 1):
                await a.send(commit(epoch))
                assert await a.expect(CommitAccepted) == CommitAccepted()
            await b.send(commit(2))
            assert await b.expect(CommitFrom) == CommitFrom(sender=a.conn, data=b"honest commit")
            assert await b.expect(CommitFrom) == CommitFrom(sender=a.conn, data=b"honest commit")
            assert await b.expect(CommitAccepted) == CommitAccepted()  # the room's third
            limited = Error(ErrorCode.rate_limited, "commit rate limit")
            await b.send(commit(3))
            assert await b.expect(Error) == limited
            for _ in range(3):
                await c.expect(CommitFrom)
            await c.send(commit(3))
            assert await c.expect(Error) == limited
            await c.send(commit(0))  # a refusal: it costs the room nothing
            assert (await c.expect(Error)).code is ErrorCode.stale_epoch
            await c.send(AppMessage(data=b"still here"))
            here = AppFrom(sender=c.conn, data=b"still here")
            assert await until(a, here) == [CommitFrom(sender=b.conn, data=b"honest commit"), here]
            await close_all([a, b, c])

    run(scenario())


# ------------------------------------------------------------ admission


def test_room_id_alone_gets_the_same_refusal_as_a_room_that_does_not_exist() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token, (host,) = await meeting(port, 1, cred_hash=SEED)
            answers = []
            for attempt in (
                Enter(room=room, token=os.urandom(32)),  # the meeting's id, a wrong token
                Enter(room=new_room()[0], token=os.urandom(32)),  # no such room
                Enter(room=room, token=os.urandom(32), cred_hash=os.urandom(32)),
            ):
                c = await Client.connect(port)
                answers.append(await c.answer(attempt))
                await c.close()
            assert answers == [BAD_TOKEN] * 3
            # nobody was admitted: the host's next message is the next real arrival
            late = await Client.connect(port)
            await late.enter(room, token)
            assert await host.control() == PeerJoined(conn=late.conn)
            await close_all([host, late])

    run(scenario())


def test_a_room_id_cannot_be_squatted_before_or_after_the_meeting() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token = new_room()
            squatter = await Client.connect(port)
            # before: a chosen id with the squatter's own token (and a planted credential)
            assert (
                await squatter.answer(
                    Enter(room=room, token=os.urandom(32), cred_hash=credential_hash(b"x"))
                )
                == BAD_TOKEN
            )
            await squatter.close()
            host = await Client.connect(port)
            assert (await host.enter(room, token, SEED)).peers == []
            await host.send(commit(0))
            assert await host.expect(CommitAccepted) == CommitAccepted()  # SEED was open
            await host.send(Leave())
            await host.closed()  # the relay processed the Leave: the room is gone
            # after everyone left: still only the token holder can open that id
            outsider = await Client.connect(port)
            assert await outsider.answer(Enter(room=room, token=os.urandom(32))) == BAD_TOKEN
            again = await Client.connect(port)
            assert (await again.enter(room, token)).peers == []
            await close_all([outsider, again])

    run(scenario())


# ------------------------------------------------------------ rotation


def test_rotate_moves_the_meeting_away_from_the_old_link() -> None:
    async def scenario() -> None:
        async with relay(UNLIMITED) as port:
            room, token, (host, member, ex) = await meeting(port, 3, cred_hash=SEED)
            await host.send(commit(0, b"remove ex"))
            await host.expect(CommitAccepted)
            await member.expect(CommitFrom)
            new_token = os.urandom(32)
            await host.send(Rotate(cred=CRED[1], token=new_token, drop=[ex.conn]))
            # the dropped connection: one Error(rotated), then closed
            closed = await ex.closed()
            assert [e.code for e in closed.errors] == [ErrorCode.rotated]
            assert closed.code == CloseCode.rotated
            removed = PeerLeft(conn=ex.conn, reason="removed")
            assert await member.control() == removed
            assert await member.control() == Rotated(by=host.conn)
            assert await host.control() == removed
            # the meeting goes on under the new id
            await host.send(AppMessage(data=b"meeting"))
            assert await member.expect(AppFrom) == AppFrom(sender=host.conn, data=b"meeting")
            # the old link is told the invitation was replaced, and enters nothing (not
            # even an empty room of its own, where an ex-member who missed its removal
            # would believe itself the last one in the meeting)
            ex2, stranger = await Client.connect(port), await Client.connect(port)
            await ex2.send(Enter(room=room, token=token))
            closed = await ex2.closed()
            assert [e.code for e in closed.errors] == [ErrorCode.rotated]
            # the old id with a wrong token is refused as any bad token is
            assert await stranger.answer(Enter(room=room, token=os.urandom(32))) == BAD_TOKEN
            await host.send(AppMessage(data=b"meeting again"))
            assert await member.expect(AppFrom) == AppFrom(sender=host.conn, data=b"meeting again")
            # the new link enters the meeting
            newcomer = await Client.connect(port)
            joined = await newcomer.enter(room_id_for_token(new_token), new_token)
            assert sorted(joined.peers) == sorted([host.conn, member.conn])
            await close_all([host, member, ex, ex2, stranger, newcomer])

    run(scenario())


def test_rotate_needs_a_credential_of_the_room() -> None:
    async def scenario() -> None:
        async with relay(UNLIMITED) as port:
            room, token, (host, outsider) = await meeting(port, 2, cred_hash=SEED)
            hijack = os.urandom(32)
            await outsider.send(Rotate(cred=os.urandom(32), token=hijack, drop=[host.conn]))
            assert (await outsider.expect(Error)).code is ErrorCode.bad_credential
            # nothing moved, nobody was dropped
            await host.send(AppMessage(data=b"here"))
            assert await outsider.expect(AppFrom) == AppFrom(sender=host.conn, data=b"here")
            c, d = await Client.connect(port), await Client.connect(port)
            assert sorted((await c.enter(room, token)).peers) == sorted([host.conn, outsider.conn])
            assert (await d.enter(room_id_for_token(hijack), hijack)).peers == []
            await close_all([host, outsider, c, d])

    run(scenario())


def test_rotation_is_commit_budgeted() -> None:
    config = RelayConfig(commit_burst=1, commit_rate=0.001)

    async def scenario() -> None:
        async with relay(config) as port:
            _, _, (host, other) = await meeting(port, 2, cred_hash=SEED)
            await host.send(Rotate(cred=CRED[0], token=os.urandom(32)))
            await host.send(Rotate(cred=CRED[0], token=os.urandom(32)))
            assert await other.expect(Rotated) == Rotated(by=host.conn)
            assert await host.expect(Error) == Error(ErrorCode.rate_limited, "commit rate limit")
            await host.send(AppMessage(data=b"x"))
            assert await other.expect(AppFrom) == AppFrom(sender=host.conn, data=b"x")
            await close_all([host, other])

    run(scenario())
