"""Hostile clients are cut off with an error and a close code; nobody else notices.

Every case runs beside two live meetings: the offender's own room (whose other
members must keep exchanging media and control) and an unrelated room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from relay_helpers import Client, close_all, meeting, relay, run

from clave.relay import RelayConfig
from clave.relay.config import MAX_MESSAGE_BYTES
from clave.relay.connection import CloseCode
from clave.wire import (
    MAX_MEDIA_BYTES,
    AppFrom,
    AppMessage,
    Enter,
    ErrorCode,
    LayerCap,
    MediaFrame,
    PeerLeft,
    StreamKind,
    encode,
)

Attack = Callable[[Client], Awaitable[None]]

CONFIG = RelayConfig(msg_rate=200, msg_burst=100)


async def media_from(receiver: Client, sender: int) -> MediaFrame:
    """The next media frame from ``sender`` (the offender's may still be queued before it)."""
    while True:
        frame = await receiver.media()
        if frame.sender == sender:
            return frame


async def send_each(client: Client, frames: list[bytes]) -> None:
    for frame in frames:
        await client.send_raw(frame)


async def flood(client: Client) -> None:
    for i in range(1_000):
        try:
            await client.send_media(StreamKind.audio, False, i.to_bytes(4, "big"))
        except ConnectionError:
            return


async def text_frame(client: Client) -> None:
    await client.ws.send_str("hello")


ATTACKS: dict[str, tuple[Attack, ErrorCode, int]] = {
    "garbage control": (
        lambda c: send_each(c, [b"\x01\x43\xff\xfe\xfd"]),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    "unknown control tag": (
        lambda c: send_each(c, [b"\x01\x43\x81\xa1t\xa4nope"]),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    "bad media flags": (
        lambda c: send_each(c, [b"\x01\x4d\x7f\x00\x00\x00\x00payload"]),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    "empty media": (
        lambda c: send_each(c, [b"\x01\x4d\x01\x00\x00\x00\x00"]),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    "wrong version": (
        lambda c: send_each(c, [b"\x02\x4d\x01\x00\x00\x00\x00payload"]),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    "unknown channel": (
        lambda c: send_each(c, [b"\x01\x58hello"]),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    "one byte": (lambda c: send_each(c, [b"\x01"]), ErrorCode.bad_message, CloseCode.bad_message),
    "text frame": (text_frame, ErrorCode.bad_message, CloseCode.bad_message),
    "second admission": (
        lambda c: send_each(c, [encode(Enter(room="z" * 22, token=bytes(32)))]),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    "media over its limit": (
        lambda c: send_each(c, [b"\x01\x4d\x01\x00\x00\x00\x00" + bytes(MAX_MEDIA_BYTES)]),
        ErrorCode.too_large,
        CloseCode.too_large,
    ),
    "message over the websocket limit": (
        lambda c: send_each(c, [b"\x01\x43" + bytes(MAX_MESSAGE_BYTES)]),
        ErrorCode.too_large,
        CloseCode.too_large,
    ),
    "flood": (flood, ErrorCode.rate_limited, CloseCode.rate_limited),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_offender_cut_off_others_undisturbed(name: str) -> None:
    attack, error, close_code = ATTACKS[name]

    async def scenario() -> None:
        async with relay(CONFIG) as port:
            _, _, (x, y) = await meeting(port, 2)  # an unrelated meeting
            _, _, (a, b, evil) = await meeting(port, 3)

            await attack(evil)
            closed = await evil.closed()
            assert [e.code for e in closed.errors] == [error]
            assert closed.code == close_code

            for member in (a, b):
                left = await member.expect(PeerLeft)
                assert left.conn == evil.conn and left.reason == "error"
            # the offender's room carries on ...
            await a.send(AppMessage(data=b"still here"))
            assert await b.expect(AppFrom) == AppFrom(sender=a.conn, data=b"still here")
            await b.send_media(StreamKind.video, True, b"frame")
            assert (await media_from(a, b.conn)).sframe == b"frame"
            # ... and so does the other meeting, which saw nothing
            await x.send_media(StreamKind.audio, False, b"other room")
            assert (await y.media()).sframe == b"other room"
            await x.silent(0.05)
            await close_all([x, y, a, b, evil])

    run(scenario())


def test_rate_limit_counts_bytes_too() -> None:
    config = RelayConfig(byte_rate=100_000, byte_burst=1024 * 1024 + 100)

    async def scenario() -> None:
        async with relay(config) as port:
            _, _, (a, evil) = await meeting(port, 2)
            chunk = bytes(200_000)
            for _ in range(10):
                try:
                    await evil.send_media(StreamKind.video, True, chunk)
                except ConnectionError:
                    break
            closed = await evil.closed()
            assert [e.code for e in closed.errors] == [ErrorCode.rate_limited]
            assert closed.code == CloseCode.rate_limited
            # a's queue filled with the big frames: the relay lowered its layer cap
            assert (await a.expect(PeerLeft, skip=(LayerCap,))).conn == evil.conn
            await close_all([a, evil])

    run(scenario())


def test_bad_tokens_do_not_disturb_the_meeting() -> None:
    async def scenario() -> None:
        async with relay(CONFIG) as port:
            room, _, (a, b) = await meeting(port, 2)
            guessers = [await Client.connect(port) for _ in range(5)]
            await asyncio.gather(*(g.send(Enter(room=room, token=bytes(32))) for g in guessers))
            for g in guessers:
                assert (await g.control()).code is ErrorCode.bad_token  # type: ignore[union-attr]
            await a.silent(0.1)
            await a.send_media(StreamKind.audio, False, b"fine")
            assert (await b.media()).sframe == b"fine"
            await close_all([a, b, *guessers])

    run(scenario())
