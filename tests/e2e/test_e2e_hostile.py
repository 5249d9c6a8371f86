"""Hostile clients beside two live meetings: each is cut off, the meetings never notice.

Room A and room B each hold a real two-person meeting (headless engines, VP8
video and Opus audio). Raw WebSocket clients then misbehave: garbage and text
before joining, malformed and oversized messages, a bad WebSocket frame, and a
flooder over the rate limit, inside room A and room B (they hold the rooms'
access tokens, the worst case) and in no room. Every one of them gets an
``Error`` and a close code. Token holders that are not members also try to
order a commit and to move the room away (dropping the members) without an
epoch credential: each is refused with ``bad_credential`` and stays connected
until it leaves. The members keep decoding (counted in frames: every window
below lasts until each member decoded a given number of frames from each
other, and nearly every frame sent in it was delivered), stay in their epoch
and see no error and no rejected frame.
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
    invitation,
    nonmedia_problems,
    now_us,
    relay,
    run,
    stop_all,
    wait_for_delivery,
    wait_for_frames,
    ws_frame,
)

from clave.meeting.link import MeetingLink
from clave.relay.config import MAX_MESSAGE_BYTES
from clave.relay.connection import CloseCode
from clave.wire import (
    MAX_MEDIA_BYTES,
    AppMessage,
    Commit,
    Enter,
    Error,
    ErrorCode,
    Leave,
    Rotate,
    StreamKind,
    Subscribe,
    encode,
    encode_media,
)

pytestmark = pytest.mark.slow

WINDOW = {"video": 60, "audio": 100}
"""Frames each member decodes from each other member in each of the before / during /
after windows (about two seconds' worth)."""
ENOUGH = {kind: n // 2 for kind, n in WINDOW.items()}
"""Frames each sender must have sent in a window for its delivery share to mean anything."""
DELIVERED = 0.9
"""Share of the frames sent in a window that every receiver must have decrypted."""


@dataclass(frozen=True)
class Attack:
    name: str
    room: str | None
    """The room the client enters first with its real access token ("A" or "B"), or none."""
    act: Callable[[RawClient], Awaitable[None]]
    error: ErrorCode
    close: CloseCode
    """How the relay ends the connection (``normal``: it refused the message, kept the
    connection, and the client then left)."""


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
    """Brute force: Enter after Enter with random tokens (each refused) until cut off."""
    for _ in range(5_000):
        try:
            await client.send(Enter(room=client.target_room, token=os.urandom(32)))
        except (ConnectionError, RuntimeError):
            return


def refused(msg: Callable[[RawClient], object]) -> Callable[[RawClient], Awaitable[None]]:
    """Send ``msg(client)``, wait for the relay's Error (the connection stays), then leave."""

    async def act(client: RawClient) -> None:
        await client.send(msg(client))
        client.refusals.append(await client.first(Error))
        await client.send(Leave())

    return act


def fake_rotate(client: RawClient) -> Rotate:
    """Move the room to a token of our own and drop every member: no epoch credential."""
    return Rotate(cred=os.urandom(32), token=os.urandom(32), drop=list(client.peers))


def fake_commit(client: RawClient) -> Commit:
    return Commit(cred=os.urandom(32), next=os.urandom(32), data=b"\x00\x01" * 32)


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
        "malformed enter",
        None,
        send(b"\x01\x43\x82\xa1t\xa5enter\xa4room\xc0"),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    Attack(
        "retired Join message",
        None,
        send(b"\x01\x43\x81\xa1t\xa4join"),
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
        "second enter",
        "B",
        send(encode(Enter(room="A" * 22, token=bytes(32)))),
        ErrorCode.bad_message,
        CloseCode.bad_message,
    ),
    Attack(
        "rotation without a credential",
        "A",
        refused(fake_rotate),
        ErrorCode.bad_credential,
        CloseCode.normal,
    ),
    Attack(
        "commit without a credential",
        "B",
        refused(fake_commit),
        ErrorCode.bad_credential,
        CloseCode.normal,
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
        send(encode(AppMessage(data=b"x"))),
        ErrorCode.not_joined,
        CloseCode.not_joined,
    ),
]


async def _attack(port: int, links: dict[str, MeetingLink], attack: Attack) -> Closed:
    client = await RawClient.connect(port)
    client.target_room = links["A"].room_id
    try:
        if attack.room is not None:
            joined = await client.enter_link(links[attack.room])
            client.peers = list(joined.peers)
        await attack.act(client)
        closed = await client.closed(timeout=10)
    finally:
        await client.close()
    closed.errors[:0] = client.refusals
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
            await sock.send(ws_frame(encode(Enter(room=link.room_id, token=_token(link)))))
            await sock.send(frame)
            results.append(await sock.closed(timeout=10))
        finally:
            sock.close()
    return results


def _token(link: MeetingLink) -> bytes:
    return link.keys.access_token


def test_hostile_clients_are_cut_off_and_meetings_continue() -> None:
    async def scenario() -> None:
        async with relay() as port:
            invitations = {r: invitation(BASE_URL.format(port=port)) for r in ("A", "B")}
            links = {r: link for r, (link, _) in invitations.items()}
            people = [
                RecordingParticipant(links["A"], "Ada", host=True, owner_key=invitations["A"][1]),
                RecordingParticipant(links["A"], "Grace"),
                RecordingParticipant(links["B"], "Linus", host=True, owner_key=invitations["B"][1]),
                RecordingParticipant(links["B"], "Barbara"),
            ]
            try:
                for p in people:
                    await p.start()
                    assert await p.wait_joined(15), p.name
                await wait_for_frames(people)  # first keyframes, decoders settled
                codes = [p.report.security_code for p in people]
                epochs = [p.session.meeting.epoch for p in people if p.session]

                t0 = now_us()
                await wait_for_frames(people, WINDOW)
                t1 = now_us()
                results, frame_results, _ = await asyncio.gather(
                    asyncio.gather(*(_attack(port, links, a) for a in ATTACKS)),
                    _bad_websocket_frame(port, links["A"]),
                    wait_for_frames(people, WINDOW),
                )
                t2 = now_us()
                await wait_for_frames(people, WINDOW)
                t3 = now_us()

                for attack, closed in zip(ATTACKS, results, strict=True):
                    assert (closed.error_codes, closed.code) == ([attack.error], attack.close), (
                        attack.name,
                        closed,
                    )
                for closed in frame_results:
                    assert closed.error_codes == [ErrorCode.bad_message], closed
                    assert closed.code == CloseCode.bad_message, closed

                # Before, during and after the attacks: (nearly) every frame each member
                # sent reached each other member of its meeting, and was decrypted.
                for since, until in ((t0, t1), (t1, t2), (t2, t3)):
                    await wait_for_delivery(people, since, until, share=DELIVERED, minimum=ENOUGH)
                assert [p.report.security_code for p in people] == codes
                assert [p.session.meeting.epoch for p in people if p.session] == epochs
                for p in people:
                    assert nonmedia_problems(p) == [], (p.name, nonmedia_problems(p))
                    assert p.report.frames_rejected == 0
                    assert p.report.alerts == [] and p.report.ordering_stalls == 0, p.name
                    assert len(p.report.roster) == 2
            finally:
                await stop_all(people)

    run(scenario(), timeout=120)
