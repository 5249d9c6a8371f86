"""Hostile clients beside two live meetings: each is cut off, the meetings never notice.

Room A and room B each hold a real two-person meeting (headless engines, VP8
video and Opus audio). Raw WebSocket clients then misbehave: garbage and text
before joining, malformed and oversized messages, a bad WebSocket frame, and a
flooder over the rate limit, inside room A and room B (they hold the rooms'
access tokens, the worst case) and in no room. Every one of them gets an
``Error`` and a close code; the members keep decoding at their normal rate,
stay in their epoch and see no error and no rejected frame.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from e2e_helpers import (
    BASE_URL,
    Closed,
    RawClient,
    RawSocket,
    RecordingParticipant,
    nonmedia_problems,
    relay,
    run,
    stop_all,
    ws_frame,
)

from clave.meeting.keys import room_keys
from clave.meeting.link import MeetingLink, new_link
from clave.relay.config import MAX_MESSAGE_BYTES
from clave.relay.connection import CloseCode
from clave.wire import (
    MAX_MEDIA_BYTES,
    AppMessage,
    ErrorCode,
    Join,
    StreamKind,
    Subscribe,
    encode,
    encode_media,
)

pytestmark = pytest.mark.slow

WINDOW_S = 2.5
"""Length of the before / during / after measurement windows."""


@dataclass(frozen=True)
class Attack:
    name: str
    room: str | None
    """The room the client joins first with its real access token ("A" or "B"), or none."""
    act: Callable[[RawClient], Awaitable[None]]
    error: ErrorCode
    close: CloseCode


def send(*frames: bytes) -> Callable[[RawClient], Awaitable[None]]:
    async def act(client: RawClient) -> None:
        for frame in frames:
            await client.send_raw(frame)

    return act


async def text(client: RawClient) -> None:
    await client.ws.send_str("GET /admin HTTP/1.1")


async def flood(client: RawClient) -> None:
    """Harmless messages (never forwarded), far faster than the default 500/s, 1000 burst."""
    frame = encode(Subscribe())
    for _ in range(5_000):
        try:
            await client.send_raw(frame)
        except (ConnectionError, RuntimeError):
            return


async def guess_tokens(client: RawClient) -> None:
    """Brute force: Join after Join with random tokens (each refused) until cut off."""
    for _ in range(5_000):
        try:
            await client.send(Join(room=client.target_room, token=os.urandom(32)))
        except (ConnectionError, RuntimeError):
            return


ATTACKS = [
    Attack(
        "garbage before joining",
        None,
        send(os.urandom(200)),
        ErrorCode.not_joined,
        CloseCode.not_joined,
    ),
    Attack("text before joining", None, text, ErrorCode.bad_message, CloseCode.bad_message),
    Attack(
        "media before joining",
        None,
        send(encode_media(StreamKind.video, True, b"x" * 64)),
        ErrorCode.not_joined,
        CloseCode.not_joined,
    ),
    Attack(
        "malformed join",
        None,
        send(b"\x01\x43\x82\xa1t\xa4join\xa4room\xc0"),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    Attack(
        "malformed control",
        "A",
        send(b"\x01\x43\xff\xfe\xfd"),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    Attack(
        "unknown protocol version",
        "A",
        send(b"\x07\x43\x80"),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    Attack(
        "unknown channel", "B", send(b"\x01\x58hello"), ErrorCode.bad_message, CloseCode.bad_message
    ),
    Attack(
        "malformed media envelope",
        "A",
        send(b"\x01\x4d\x7f\x00\x00\x00\x00ciphertext"),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    Attack(
        "second join",
        "B",
        send(encode(Join(room="A" * 22, token=bytes(32)))),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    Attack("text in a room", "A", text, ErrorCode.bad_message, CloseCode.bad_message),
    Attack(
        "oversized media",
        "A",
        send(b"\x01\x4d\x81\x00\x00\x00\x00" + os.urandom(MAX_MEDIA_BYTES)),
        ErrorCode.too_large,
        CloseCode.too_large,
    ),
    Attack(
        "oversized message",
        "B",
        send(b"\x01\x4d" + bytes(MAX_MESSAGE_BYTES)),
        ErrorCode.too_large,
        CloseCode.too_large,
    ),
    Attack(
        "oversized before joining",
        None,
        send(bytes(MAX_MESSAGE_BYTES + 1)),
        ErrorCode.too_large,
        CloseCode.too_large,
    ),
    Attack("flood in a room", "A", flood, ErrorCode.rate_limited, CloseCode.rate_limited),
    Attack("flood in another room", "B", flood, ErrorCode.rate_limited, CloseCode.rate_limited),
    Attack(
        "token guessing flood", None, guess_tokens, ErrorCode.rate_limited, CloseCode.rate_limited
    ),
    Attack(
        "app message before joining",
        None,
        send(encode(AppMessage(epoch=0, data=b"x"))),
        ErrorCode.not_joined,
        CloseCode.not_joined,
    ),
]


async def _attack(port: int, links: dict[str, MeetingLink], attack: Attack) -> Closed:
    client = await RawClient.connect(port)
    client.target_room = links["A"].room_id
    try:
        if attack.room is not None:
            await client.join_link(links[attack.room])
        await attack.act(client)
        closed = await client.closed(timeout=10)
    finally:
        await client.close()
    if attack.name == "token guessing flood":
        # Each guess is refused (the refusals still queued when the connection is cut
        # are dropped), then the rate limit ends it.
        assert set(closed.error_codes[:-1]) <= {ErrorCode.bad_token}, closed.error_codes[:5]
        closed.errors = closed.errors[-1:]
    return closed


async def _bad_websocket_frame(port: int, link: MeetingLink) -> list[Closed]:
    """Frames aiohttp would never send: reserved bits set, an unmasked-length lie."""
    results: list[Closed] = []
    for frame in (
        ws_frame(b"\x01\x43\x80", rsv=0b100),  # RSV1 without a negotiated extension
        ws_frame(b"\x01\x43", opcode=0x3),  # a reserved opcode
        ws_frame(b"\x01\x43" * 100, opcode=0x9),  # a ping over 125 bytes
    ):
        sock = await RawSocket.connect(port)
        try:
            await sock.send(ws_frame(encode(Join(room=link.room_id, token=_token(link)))))
            await sock.send(frame)
            results.append(await sock.closed(timeout=10))
        finally:
            sock.close()
    return results


def _token(link: MeetingLink) -> bytes:
    return room_keys(link).access_token


Counts = dict[tuple[str, str, str], int]


def _counts(people: list[RecordingParticipant]) -> Counts:
    return {
        (p.name, q.name, kind): p.decoded(q.name, kind)
        for p in people
        for q in people
        if q is not p and q.link is p.link
        for kind in ("video", "audio")
    }


def _rates(before: Counts, after: Counts, seconds: float) -> dict[tuple[str, str, str], float]:
    return {k: (after[k] - before[k]) / seconds for k in before}


def test_hostile_clients_are_cut_off_and_meetings_continue() -> None:
    async def scenario() -> None:
        async with relay() as port:
            links = {r: new_link(BASE_URL.format(port=port), os.urandom) for r in ("A", "B")}
            people = [
                RecordingParticipant(links["A"], "Ada", host=True),
                RecordingParticipant(links["A"], "Grace"),
                RecordingParticipant(links["B"], "Linus", host=True),
                RecordingParticipant(links["B"], "Barbara"),
            ]
            try:
                for p in people:
                    await p.start()
                    assert await p.wait_joined(15), p.name
                await asyncio.sleep(1.0)  # first keyframes, decoders settled
                codes = [p.report.security_code for p in people]
                loop = asyncio.get_running_loop()

                t0, c0 = loop.time(), _counts(people)
                await asyncio.sleep(WINDOW_S)
                t1, c1 = loop.time(), _counts(people)

                results, frame_results, _ = await asyncio.gather(
                    asyncio.gather(*(_attack(port, links, a) for a in ATTACKS)),
                    _bad_websocket_frame(port, links["A"]),
                    asyncio.sleep(WINDOW_S),
                )
                t2, c2 = loop.time(), _counts(people)
                await asyncio.sleep(WINDOW_S)
                t3, c3 = loop.time(), _counts(people)

                for attack, closed in zip(ATTACKS, results, strict=True):
                    assert (closed.error_codes, closed.code) == ([attack.error], attack.close), (
                        attack.name,
                        closed,
                    )
                for closed in frame_results:
                    assert closed.error_codes == [ErrorCode.bad_message], closed
                    assert closed.code == CloseCode.bad_message, closed

                normal = _rates(c0, c1, t1 - t0)
                during = _rates(c1, c2, t2 - t1)
                after = _rates(c2, c3, t3 - t2)
                for key, rate in normal.items():
                    expected = 30 if key[2] == "video" else 50
                    assert rate >= 0.7 * expected, (key, normal)
                    assert during[key] >= 0.7 * rate, (key, rate, during[key])
                    assert after[key] >= 0.7 * rate, (key, rate, after[key])
                assert [p.report.security_code for p in people] == codes
                for p in people:
                    assert nonmedia_problems(p) == [], (p.name, nonmedia_problems(p))
                    assert p.report.frames_rejected == 0
                    assert len(p.report.roster) == 2
            finally:
                await stop_all(people)

    run(scenario(), timeout=60)
