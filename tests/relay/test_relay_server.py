"""The relay over real WebSockets: admission, ordering, routing, fan-out, presence."""

from __future__ import annotations

import aiohttp
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
    Joined,
    JoinRequest,
    JoinRequestFrom,
    KeyframeRequest,
    KeyframeWanted,
    Leave,
    PeerJoined,
    PeerLeft,
    ReplyFrom,
    ReplyTo,
    StreamKind,
    Subscribe,
    WelcomeFor,
    WelcomeTo,
    credential_hash,
    encode,
)

CRED = [bytes([i]) * 32 for i in range(10)]
"""Epoch credentials of successive epochs."""


def commit(epoch: int, data: bytes) -> Commit:
    return Commit(cred=CRED[epoch], next=credential_hash(CRED[epoch + 1]), data=data)


def test_healthz() -> None:
    async def scenario() -> None:
        async with (
            relay() as port,
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
            assert await response.text() == "ok"

    run(scenario())


def test_enter_and_presence() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token = new_room()
            a, b = await Client.connect(port), await Client.connect(port)
            joined_a = await a.enter(room, token)
            assert joined_a.peers == []
            joined_b = await b.enter(room, token)
            assert joined_b.peers == [a.conn] and joined_b.conn != a.conn
            assert await a.expect(PeerJoined) == PeerJoined(conn=b.conn)
            await b.send(Leave())
            assert await a.expect(PeerLeft) == PeerLeft(conn=b.conn, reason="left")
            closed = await b.closed()
            assert closed.code == CloseCode.normal and closed.errors == []
            c = await Client.connect(port)
            await c.enter(room, token)
            await a.expect(PeerJoined)
            await c.close()  # disconnect without Leave
            assert await a.expect(PeerLeft) == PeerLeft(conn=c.conn, reason="disconnected")
            await close_all([a, b, c])

    run(scenario())


def test_rooms_vanish_when_empty_and_the_same_token_opens_a_fresh_one() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token = new_room()
            a = await Client.connect(port)
            await a.enter(room, token, credential_hash(CRED[0]))
            await a.send(commit(0, b"first meeting"))
            await a.expect(CommitAccepted)
            await a.send(Leave())
            await a.closed()  # the relay has processed the Leave: the room is gone
            b = await Client.connect(port)
            assert (await b.enter(room, token)).peers == []
            await b.send(commit(0, b"old credential"))  # the new room knows no slots
            assert (await b.expect(Error)).code is ErrorCode.bad_credential
            await close_all([a, b])

    run(scenario())


def test_second_enter_is_a_violation() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token, (a, b) = await meeting(port, 2)
            await b.send(Enter(room=room, token=token))
            closed = await b.closed()
            assert [e.code for e in closed.errors] == [ErrorCode.bad_message]
            assert closed.errors[0].message == "already in a room"
            assert closed.code == CloseCode.bad_message
            assert await a.expect(PeerLeft) == PeerLeft(conn=b.conn, reason="error")
            await close_all([a, b])

    run(scenario())


def test_anything_before_admission_is_refused_and_closed() -> None:
    async def scenario() -> None:
        async with relay() as port:
            for first in (
                encode(AppMessage(data=b"hi")),
                encode(commit(0, b"commit")),
                encode(Subscribe()),
                b"\x01\x4d\x01\x00\x00\x00\x00payload",  # media
            ):
                c = await Client.connect(port)
                await c.send_raw(first)
                closed = await c.closed()
                assert [e.code for e in closed.errors] == [ErrorCode.not_joined]
                assert closed.code == CloseCode.not_joined
                await c.close()

    run(scenario())


def test_admission_times_out() -> None:
    async def scenario() -> None:
        async with relay(RelayConfig(join_timeout=0.2)) as port:
            c = await Client.connect(port)
            closed = await c.closed()
            assert [e.code for e in closed.errors] == [ErrorCode.not_joined]
            assert closed.code == CloseCode.not_joined
            await c.close()

    run(scenario())


def test_room_full() -> None:
    async def scenario() -> None:
        async with relay(RelayConfig(max_conns_per_room=2)) as port:
            room, token, clients = await meeting(port, 2)
            c = await Client.connect(port)
            await c.send(Enter(room=room, token=token))
            assert (await c.expect(Error)).code is ErrorCode.room_full
            await close_all([*clients, c])

    run(scenario())


def test_two_commits_for_one_epoch_first_wins_second_is_stale() -> None:
    async def scenario() -> None:
        async with relay() as port:
            _, _, (a, b, c) = await meeting(port, 3, cred_hash=credential_hash(CRED[0]))
            await a.send(commit(0, b"commit from a"))
            await b.send(commit(0, b"commit from b"))
            assert await a.expect(CommitAccepted) == CommitAccepted()
            assert await b.expect(CommitFrom) == CommitFrom(sender=a.conn, data=b"commit from a")
            assert (await b.expect(Error)).code is ErrorCode.stale_epoch
            assert await c.expect(CommitFrom) == CommitFrom(sender=a.conn, data=b"commit from a")
            # b catches up and commits for the next epoch, whose slot a's commit opened
            await b.send(commit(1, b"retry"))
            assert await b.expect(CommitAccepted) == CommitAccepted()
            assert await a.expect(CommitFrom) == CommitFrom(sender=b.conn, data=b"retry")
            assert await c.expect(CommitFrom) == CommitFrom(sender=b.conn, data=b"retry")
            # c's stale commit reaches nobody: the next thing a and b get is c's chat
            await c.send(commit(0, b"late"))
            assert (await c.expect(Error)).code is ErrorCode.stale_epoch
            await c.send(AppMessage(data=b"after"))
            assert await a.expect(AppFrom) == AppFrom(sender=c.conn, data=b"after")
            assert await b.expect(AppFrom) == AppFrom(sender=c.conn, data=b"after")
            await close_all([a, b, c])

    run(scenario())


def test_a_joiner_before_the_host_and_the_host_seeds_the_ordering() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token = new_room()
            joiner, host = await Client.connect(port), await Client.connect(port)
            await joiner.enter(room, token)  # creates the room, without a credential
            await host.enter(room, token, credential_hash(CRED[0]))
            await joiner.expect(PeerJoined)
            await host.send(commit(0, b"add the joiner"))
            assert await host.expect(CommitAccepted) == CommitAccepted()
            assert await joiner.expect(CommitFrom) == CommitFrom(
                sender=host.conn, data=b"add the joiner"
            )
            # a later Enter's cred_hash is ignored: the room has ordered a commit
            late = await Client.connect(port)
            await late.enter(room, token, credential_hash(CRED[7]))
            await late.send(commit(7, b"planted"))
            assert (await late.expect(Error)).code is ErrorCode.bad_credential
            await close_all([joiner, host, late])

    run(scenario())


def test_a_member_reconnecting_is_replayed_the_commits_it_missed() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token, (a, b) = await meeting(port, 2, cred_hash=credential_hash(CRED[0]))
            await a.send(commit(0, b"epoch 0 -> 1"))
            await a.expect(CommitAccepted)
            await b.expect(CommitFrom)
            await b.close()  # b's connection drops at epoch 1
            assert (await a.expect(PeerLeft)).conn == b.conn
            await a.send(commit(1, b"epoch 1 -> 2"))
            await a.expect(CommitAccepted)
            back = await Client.connect(port)
            await back.send(Enter(room=room, token=token, cred_hash=credential_hash(CRED[1])))
            assert await back.expect(CommitFrom) == CommitFrom(sender=a.conn, data=b"epoch 1 -> 2")
            joined = await back.expect(Joined)
            assert joined.peers == [a.conn]
            # caught up: its commit for epoch 2 is ordered
            await back.send(commit(2, b"epoch 2 -> 3"))
            assert await back.expect(CommitAccepted) == CommitAccepted()
            await close_all([a, back])

    run(scenario())


def test_members_re_establish_a_room_after_a_relay_restart() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token = new_room()
            # the relay's memory is gone: the members come back at epoch 4, in any order
            a, b = await Client.connect(port), await Client.connect(port)
            await a.enter(room, token, credential_hash(CRED[4]))
            await b.enter(room, token, credential_hash(CRED[4]))
            await a.expect(PeerJoined)
            await b.send(commit(4, b"epoch 4 -> 5"))
            assert await b.expect(CommitAccepted) == CommitAccepted()
            assert await a.expect(CommitFrom) == CommitFrom(sender=b.conn, data=b"epoch 4 -> 5")
            await close_all([a, b])

    run(scenario())


def test_welcome_join_request_app_and_keyframe_routing() -> None:
    async def scenario() -> None:
        async with relay() as port:
            _, _, (a, b, c) = await meeting(port, 3)
            await c.send(JoinRequest(data=b"sealed request"))
            for member in (a, b):
                assert await member.expect(JoinRequestFrom) == JoinRequestFrom(
                    sender=c.conn, data=b"sealed request"
                )
            await a.send(WelcomeTo(to=c.conn, data=b"welcome for c"))
            assert await c.expect(WelcomeFor) == WelcomeFor(sender=a.conn, data=b"welcome for c")
            await b.send(ReplyTo(to=c.conn, data=b"sealed reply"))
            assert await c.expect(ReplyFrom) == ReplyFrom(sender=b.conn, data=b"sealed reply")
            await a.send(AppMessage(data=b"chat"))
            for member in (b, c):
                assert await member.expect(AppFrom) == AppFrom(sender=a.conn, data=b"chat")
            await b.send(KeyframeRequest(to=a.conn, kind=2))
            assert await a.expect(KeyframeWanted) == KeyframeWanted(by=b.conn, kind=2)
            await a.send(WelcomeTo(to=0xFFFFFF, data=b"nobody"))
            assert (await a.expect(Error)).code is ErrorCode.unknown_peer
            await a.send(ReplyTo(to=0xFFFFFF, data=b"nobody"))
            assert (await a.expect(Error)).code is ErrorCode.unknown_peer
            await b.silent()
            await c.silent()
            await close_all([a, b, c])

    run(scenario())


def test_media_fan_out_to_subscribed_others_with_sender_stamped() -> None:
    async def scenario() -> None:
        async with relay() as port:
            _, _, clients = await meeting(port, 4)
            d = clients[3]
            await d.send(Subscribe(audio=True, video=False, screen=True))
            # a round trip through the relay: the Subscribe has been applied
            await d.send(KeyframeRequest(to=d.conn, kind=0))
            await d.expect(KeyframeWanted)
            for i, sender in enumerate(clients):
                await sender.send_media(StreamKind.video, i == 0, f"video {i}".encode())
                await sender.send_media(StreamKind.audio, False, f"audio {i}".encode())
            for receiver in clients:
                count = 3 if receiver is d else 6
                frames = [await receiver.media() for _ in range(count)]
                got = {(f.sender, f.kind, f.sframe) for f in frames}
                expected = {
                    (s.conn, kind, f"{kind.name} {i}".encode())
                    for i, s in enumerate(clients)
                    if s is not receiver
                    for kind in (StreamKind.video, StreamKind.audio)
                    if receiver is not d or kind is StreamKind.audio
                }
                assert got == expected
                await receiver.silent(0.1)
            await close_all(clients)

    run(scenario())


def test_media_order_per_sender_is_kept() -> None:
    async def scenario() -> None:
        async with relay() as port:
            _, _, (a, b) = await meeting(port, 2)
            for i in range(200):
                await a.send_media(StreamKind.video, i % 50 == 0, i.to_bytes(4, "big") * 100)
            got = [int.from_bytes((await b.media()).sframe[:4], "big") for _ in range(200)]
            assert got == list(range(200))
            await close_all([a, b])

    run(scenario())


def test_presence_on_heartbeat_timeout() -> None:
    async def scenario() -> None:
        async with relay(RelayConfig(heartbeat=0.3)) as port:
            room, token, (a,) = await meeting(port, 1)
            mute = await Client.connect(port, autoping=False)  # never answers pings
            await mute.enter(room, token)
            await a.expect(PeerJoined)
            left = await a.expect(PeerLeft, timeout=3.0)
            assert left == PeerLeft(conn=mute.conn, reason="timeout")
            await a.silent(0.5)  # a itself answers pings and stays
            await close_all([a, mute])

    run(scenario())


def test_relay_shutdown_closes_connections_going_away() -> None:
    async def scenario() -> None:
        async with relay() as port:
            _, _, (a,) = await meeting(port, 1)
        closed = await a.closed()
        assert closed.code == CloseCode.going_away
        await a.close()

    run(scenario())


def test_subprotocols_and_compression_are_not_negotiated() -> None:
    async def scenario() -> None:
        async with relay() as port, aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/ws"
            try:
                await session.ws_connect(url, protocols=("chat",))
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 400
            else:
                raise AssertionError("a subprotocol was accepted")
            ws = await session.ws_connect(url, compress=15)  # offer permessage-deflate
            assert ws.compress == 0  # refused: payloads stay visible to a recording proxy
            await ws.close()

    run(scenario())
