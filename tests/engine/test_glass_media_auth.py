"""Media authentication against a member, with a real relay, real engines and a glass.

Ada hosts and sends real VP8 and Opus. Bob is a member whose engine is tampered
with: from the epoch's SFrame base key he derives Ada's sending key (RFC 9605
section 4.4.2) and sends frames under Ada's key id, one of them with counter
2^40. Carol's glass must keep receiving Ada's real frames, must never receive
a forged one, and must be told, naming Ada, that media claiming to be hers
could not be verified. Everything is counted.
"""

from __future__ import annotations

import os

from engine_helpers import Glass, run, until

from clave.engine.bridge import GlassBridge
from clave.engine.headless import HeadlessParticipant
from clave.engine.ui_server import UIServer
from clave.meeting.link import new_link
from clave.meeting.roles import generate_owner_key
from clave.relay.server import start_relay
from clave.sframe.context import SendKeyContext
from clave.sframe.suites import get_suite
from clave.wire.media import StreamKind, encode_media, media_aad, pack_payload

MARK = b"FORGED-BY-BOB"


def forged(bob: HeadlessParticipant, ada: HeadlessParticipant, ctr: int) -> bytes:
    assert bob.session is not None and ada.session is not None
    bob_meeting, ada_meeting = bob.session.meeting, ada.session.meeting
    base = bob_meeting.export_secret("SFrame 1.0 Base Key", b"", 16)
    kid = bob_meeting._media._keys.kid_for(ada_meeting.own_leaf or 0)
    ctx = SendKeyContext(get_suite(bob_meeting._config.sframe_suite), kid, base, next_counter=ctr)
    payload = pack_payload(0, MARK + os.urandom(64))
    sframe = ctx.seal(media_aad(StreamKind.audio, False), payload)
    return encode_media(StreamKind.audio, False, sframe)


def test_a_member_cannot_play_as_another_in_a_glass() -> None:
    async def scenario() -> None:
        runner, port = await start_relay("127.0.0.1", 0)
        owner_private, owner_public = generate_owner_key(os.urandom)
        link = new_link(f"http://127.0.0.1:{port}", os.urandom, owner_public)
        ada = HeadlessParticipant(link, "Ada", host=True, owner_key=owner_private)
        bob = HeadlessParticipant(link, "Bob", video=False, audio=False)
        bridge = GlassBridge(link, host=False, default_name="Carol")
        server = UIServer(bridge)
        glass: Glass | None = None
        try:
            await ada.start()
            assert await ada.wait_joined(10)
            await bob.start()
            assert await bob.wait_joined(10)
            await server.start()
            glass = await Glass.connect(server)
            await glass.send({"type": "join", "name": "Carol"})
            state = await glass.wait_state(lambda s: len(s["roster"]) == 3, timeout=15)
            ada_leaf = next(r["leaf"] for r in state["roster"] if r["name"] == "Ada")

            def from_ada() -> int:
                assert glass is not None
                return sum(1 for f in glass.frames if f.sender == ada_leaf)

            await until(lambda: from_ada() >= 30, timeout=15, what="Ada's frames")
            # Bob forges under Ada's key id: a huge counter first, then 50 more.
            assert bob.session is not None
            for ctr in [2**40, *range(10**6, 10**6 + 50)]:
                await bob.session._conn.send(forged(bob, ada, ctr))
            before = from_ada()
            await until(lambda: from_ada() >= before + 100, timeout=20, what="Ada goes on")
            await until(
                lambda: any(
                    "not authenticated" in m["reason"] and m["sender"] == ada_leaf
                    for m in glass.of_type("frame_failed")  # type: ignore[union-attr]
                ),
                timeout=5,
                what="the glass is told",
            )
            assert not [f for f in glass.frames if MARK in f.data]
            failed = [m for m in glass.of_type("frame_failed") if m["sender"] == ada_leaf]
            assert failed and failed[0]["name"] == "Ada"
            counters = bridge.session.meeting._media.counters  # type: ignore[union-attr]
            assert counters.frames_unauthenticated >= 51
            assert counters.frames_authenticated >= before + 100
        finally:
            if glass is not None:
                await glass.close()
            await bridge.close()
            await server.stop()
            await bob.stop()
            await ada.stop()
            await runner.cleanup()

    run(scenario(), timeout=60)
