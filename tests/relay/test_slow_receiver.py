"""A receiver that stops reading harms only itself.

The slow client has a tiny TCP receive buffer and does not read; the relay's
socket send buffer is small too, so its backlog builds up in the relay's
queue quickly and the drop policy is what is being tested.
"""

from __future__ import annotations

import asyncio
import itertools

from relay_helpers import Client, close_all, meeting, relay, run

from clave.relay import RelayConfig
from clave.wire import (
    MAX_CONTROL_BYTES,
    AppFrom,
    AppMessage,
    KeyframeWanted,
    MediaFrame,
    PeerLeft,
    RelayMessage,
    StreamKind,
)

FRAMES = 400
FRAME_BYTES = 10_000
KEYFRAME_EVERY = 100
CHATS = 20
CONFIG = RelayConfig(
    media_high_water=256 * 1024,
    media_hard_limit=1024 * 1024,
    socket_send_buffer=16 * 1024,
    keyframe_retry=10.0,
)


def video(seq: int) -> tuple[bool, bytes]:
    return seq % KEYFRAME_EVERY == 0, seq.to_bytes(4, "big") + bytes(FRAME_BYTES - 4)


async def collect(
    client: Client, quiet: float = 0.5, out: list[RelayMessage | MediaFrame] | None = None
) -> list[RelayMessage | MediaFrame]:
    """Everything ``client`` receives until nothing comes for ``quiet`` seconds (also
    appended to ``out`` as it comes)."""
    out = [] if out is None else out
    while True:
        try:
            out.append(await client.recv(quiet))
        except TimeoutError:
            return out


def seqs(messages: list[RelayMessage | MediaFrame]) -> list[tuple[int, bool]]:
    return [
        (int.from_bytes(m.sframe[:4], "big"), m.keyframe)
        for m in messages
        if isinstance(m, MediaFrame) and m.kind is StreamKind.video
    ]


def test_slow_receiver_does_not_slow_the_others() -> None:
    async def scenario() -> None:
        async with relay(CONFIG) as port:
            room, token, (sender, chatter, fast) = await meeting(port, 3)
            slow = await Client.connect(port, rcvbuf=4096)
            await slow.enter(room, token)
            for member in (sender, chatter, fast):
                await member.control()  # PeerJoined

            heard: dict[Client, list[RelayMessage | MediaFrame]] = {
                c: [] for c in (sender, chatter, fast)
            }
            listeners = {c: asyncio.create_task(collect(c, 1.0, heard[c])) for c in heard}

            def reached(c: Client, mark: bytes) -> bool:
                """``c`` has the frame marked ``mark`` (among its last few messages)."""
                tail = heard[c][-3:]
                return any(isinstance(m, MediaFrame) and m.sframe[:4] == mark for m in tail)

            for seq in range(FRAMES):
                keyframe, payload = video(seq)
                await sender.send_media(StreamKind.video, keyframe, payload)
                if seq % (FRAMES // CHATS) == 0:
                    await chatter.send(AppMessage(data=seq.to_bytes(4, "big")))
                # The readers have this frame before the next is sent: only the slow
                # receiver's backlog grows, however loaded the machine is (a sender
                # held back by it would never get here: the scenario's timeout fails).
                mark = seq.to_bytes(4, "big")
                while not (reached(chatter, mark) and reached(fast, mark)):
                    await asyncio.sleep(0.001)
            got = {c: await task for c, task in listeners.items()}

            # the fast receivers got everything, in order, while the slow one lagged
            for c in (chatter, fast):
                assert [s for s, _ in seqs(got[c])] == list(range(FRAMES))
            assert len([m for m in got[fast] if isinstance(m, AppFrom)]) == CHATS
            # (a sender held back by the slow receiver would never finish: the scenario's
            # overall timeout, not a clock reading, fails the test then)
            # the sender was asked for a keyframe on behalf of the slow receiver
            wanted = [m for m in got[sender] if isinstance(m, KeyframeWanted)]
            assert KeyframeWanted(by=slow.conn, kind=StreamKind.video, layer=0) in wanted
            assert all(w.by == slow.conn for w in wanted)

            # the slow receiver, reading again, got every control message ...
            late = await collect(slow)
            chats = [m for m in late if isinstance(m, AppFrom)]
            assert [int.from_bytes(m.data, "big") for m in chats] == list(
                range(0, FRAMES, FRAMES // CHATS)
            )
            # ... but not every frame, and never a delta right after a gap
            received = seqs(late)
            assert 0 < len(received) < FRAMES
            for (before, _), (after, keyframe) in itertools.pairwise(received):
                assert after > before
                assert after == before + 1 or keyframe, (before, after)
            await close_all([sender, chatter, fast, slow])

    run(scenario(), timeout=30)


def test_control_backlog_over_cap_disconnects_only_that_receiver() -> None:
    config = RelayConfig(control_cap=MAX_CONTROL_BYTES, socket_send_buffer=16 * 1024)

    async def scenario() -> None:
        async with relay(config) as port:
            room, token, (talker, listener) = await meeting(port, 2)
            slow = await Client.connect(port, rcvbuf=4096)
            await slow.enter(room, token)
            await talker.control()
            await listener.control()
            blob = bytes(60_000)
            messages: list[RelayMessage | MediaFrame] = []
            for i in range(40):
                await talker.send(AppMessage(data=i.to_bytes(4, "big") + blob))
                # The listener reads its copy before the next is sent, so only the
                # slow receiver's backlog grows, however loaded the machine is.
                while True:
                    messages.append(await listener.recv())
                    last = messages[-1]
                    if isinstance(last, AppFrom) and last.data[:4] == i.to_bytes(4, "big"):
                        break
            left = await talker.expect(PeerLeft)
            assert left == PeerLeft(conn=slow.conn, reason="too slow")
            messages += await collect(listener)
            chats = [m for m in messages if isinstance(m, AppFrom)]
            assert [int.from_bytes(m.data[:4], "big") for m in chats] == list(range(40))
            assert left in messages
            await talker.send_media(StreamKind.audio, False, b"still fine")
            assert (await listener.media()).sframe == b"still fine"
            await close_all([talker, listener, slow])

    run(scenario())
