"""The relay over real WebSockets: admission, ordering, routing, fan-out, presence."""

from __future__ import annotations

import asyncio

import aiohttp
from relay_helpers import Client, close_all, meeting, new_room, relay, run

from clave.relay import RelayConfig
from clave.relay.connection import CloseCode
from clave.wire import (
    AppFrom,
    AppMessage,
    CommitAccepted,
    Create,
    Error,
    ErrorCode,
    Handshake,
    HandshakeFrom,
    Join,
    JoinRequest,
    JoinRequestFrom,
    KeyframeRequest,
    KeyframeWanted,
    Leave,
    PeerJoined,
    PeerLeft,
    StreamKind,
    Subscribe,
    WelcomeFor,
    WelcomeTo,
    encode,
)


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


def test_create_join_and_presence() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token = new_room()
            a, b = await Client.connect(port), await Client.connect(port)
            joined_a = await a.create(room, token)
            assert joined_a.epoch == 0 and joined_a.peers == []
            joined_b = await b.join(room, token)
            assert joined_b.peers == [a.conn] and joined_b.conn != a.conn
            assert await a.expect(PeerJoined) == PeerJoined(conn=b.conn)
            await b.send(Leave())
            assert await a.expect(PeerLeft) == PeerLeft(conn=b.conn, reason="left")
            closed = await b.closed()
            assert closed.code == CloseCode.normal and closed.errors == []
            c = await Client.connect(port)
            await c.join(room, token)
            await a.expect(PeerJoined)
            await c.close()  # disconnect without Leave
            assert await a.expect(PeerLeft) == PeerLeft(conn=c.conn, reason="disconnected")
            await close_all([a, b, c])

    run(scenario())


def test_rooms_vanish_when_empty_and_creating_an_existing_room_fails() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token = new_room()
            a = await Client.connect(port)
            await a.create(room, token)
            b = await Client.connect(port)
            await b.send(Create(room=room, token_hash=bytes(32)))
            error = await b.expect(Error)
            assert error.code is ErrorCode.room_exists
            await a.close()
            await asyncio.sleep(0.1)
            # the room is gone: the old token no longer admits, and the id is free again
            await b.send(Join(room=room, token=token))
            assert (await b.expect(Error)).code is ErrorCode.bad_token
            await b.create(room, token)
            await b.close()

    run(scenario())


def test_wrong_token_and_unknown_room_get_identical_answers() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token = new_room()
            host = await Client.connect(port)
            await host.create(room, token)
            answers = []
            wrong_token = Join(room=room, token=bytes(32))
            unknown_room = Join(room=new_room()[0], token=token)
            for attempt in (wrong_token, unknown_room):
                c = await Client.connect(port)
                await c.send(attempt)
                msg = await c.ws.receive(3)
                answers.append(msg.data)
                await c.close()
            assert (
                answers[0]
                == answers[1]
                == encode(Error(ErrorCode.bad_token, "unknown room or bad token"))
            )
            await host.silent()  # nobody joined, nothing announced
            await host.close()

    run(scenario())


def test_anything_before_admission_is_refused_and_closed() -> None:
    async def scenario() -> None:
        async with relay() as port:
            for first in (
                encode(AppMessage(epoch=0, data=b"hi")),
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
            await c.send(Join(room=room, token=token))
            assert (await c.expect(Error)).code is ErrorCode.room_full
            await close_all([*clients, c])

    run(scenario())


def test_two_commits_for_one_epoch_first_wins_second_is_stale() -> None:
    async def scenario() -> None:
        async with relay() as port:
            _, _, (a, b, c) = await meeting(port, 3)
            await a.send(Handshake(epoch=0, commit=True, data=b"commit from a"))
            await b.send(Handshake(epoch=0, commit=True, data=b"commit from b"))
            assert await a.expect(CommitAccepted) == CommitAccepted(epoch=1)
            assert await b.expect(HandshakeFrom) == HandshakeFrom(
                sender=a.conn, epoch=0, commit=True, data=b"commit from a"
            )
            stale = await b.expect(Error)
            assert stale.code is ErrorCode.stale_epoch and stale.epoch == 1
            assert await c.expect(HandshakeFrom) == HandshakeFrom(
                sender=a.conn, epoch=0, commit=True, data=b"commit from a"
            )
            await c.silent()  # b's stale commit reached nobody
            # b retries at the new epoch; a late joiner learns epoch 2
            await b.send(Handshake(epoch=1, commit=True, data=b"retry"))
            assert await b.expect(CommitAccepted) == CommitAccepted(epoch=2)
            assert (await a.expect(HandshakeFrom)).data == b"retry"
            assert (await c.expect(HandshakeFrom)).data == b"retry"
            await a.send(Handshake(epoch=2, commit=False, data=b"proposal"))
            assert await b.expect(HandshakeFrom) == HandshakeFrom(
                sender=a.conn, epoch=2, commit=False, data=b"proposal"
            )
            await a.silent()
            await close_all([a, b, c])

    run(scenario())


def test_joined_reports_the_current_epoch() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, token, (a,) = await meeting(port, 1)
            for epoch in range(3):
                await a.send(Handshake(epoch=epoch, commit=True, data=b"c"))
                await a.expect(CommitAccepted)
            late = await Client.connect(port)
            joined = await late.join(room, token)
            assert joined.epoch == 3 and joined.peers == [a.conn]
            await close_all([a, late])

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
            await a.send(AppMessage(epoch=0, data=b"chat"))
            for member in (b, c):
                assert await member.expect(AppFrom) == AppFrom(sender=a.conn, epoch=0, data=b"chat")
            await b.send(KeyframeRequest(to=a.conn, kind=2))
            assert await a.expect(KeyframeWanted) == KeyframeWanted(by=b.conn, kind=2)
            await a.send(WelcomeTo(to=0xFFFFFF, data=b"nobody"))
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
            await asyncio.sleep(0.05)
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
            await mute.join(room, token)
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
