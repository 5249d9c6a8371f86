"""A glass rides through a relay restart (issue 10, requirements 1 and 3).

The relay is stopped (its state is lost) and started again on the same port while
a glass and a headless host are in a meeting, sending media. The glass is told
"reconnecting" (``state.connection`` and the padlock: media paused, nothing sent)
and then, without a reload or a new join, it is in the same meeting again: same
leaf and security code, padlock "encrypted", and frames from the host decoded
after the restart. Counted in messages and frames, never timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os

from engine_helpers import VIDEO, Glass, GlassMedia, Json, run, until

from clave.engine.bridge import GlassBridge
from clave.engine.headless import HeadlessParticipant
from clave.engine.ui_server import UIServer
from clave.meeting.link import new_link
from clave.meeting.roles import generate_owner_key
from clave.relay.server import start_relay


def reconnecting(glass: Glass) -> tuple[int, int]:
    """How many ``state`` and ``padlock`` messages said "reconnecting"."""
    states = sum(1 for m in glass.of_type("state") if m["connection"] == "reconnecting")
    padlocks = sum(1 for m in glass.of_type("padlock") if m["state"] == "reconnecting")
    return states, padlocks


def test_the_glass_shows_reconnecting_and_comes_back_after_a_relay_restart() -> None:
    async def scenario() -> None:
        runner, port = await start_relay("127.0.0.1", 0)
        owner_private, owner_public = generate_owner_key(os.urandom)
        link = new_link(f"http://127.0.0.1:{port}", os.urandom, owner_public)
        host = HeadlessParticipant(link, "Hedy", host=True, owner_key=owner_private, audio=False)
        bridge = GlassBridge(link, host=False, default_name="Grace")
        server = UIServer(bridge)
        glass: Glass | None = None
        sending: asyncio.Task[None] | None = None
        try:
            await host.start()
            assert await host.wait_joined(10) and host.session is not None
            await server.start()
            glass = await Glass.connect(server)
            media = GlassMedia(glass, "grace")
            await glass.send({"type": "join", "name": "Grace"})
            before: Json = await glass.wait_state(lambda s: s["phase"] == "in_meeting")
            await glass.wait_message("padlock", lambda p: p["state"] == "encrypted")
            sending = asyncio.create_task(media.send(100_000))
            hedy = host.session.meeting.own_leaf

            def from_host() -> int:
                assert glass is not None
                return sum(1 for f in glass.frames if f.sender == hedy and f.kind == VIDEO)

            def grace_decoded() -> int:
                return int(host.counter.summary().get("Grace", {}).get("video", 0))

            await until(lambda: from_host() >= 20 and grace_decoded() >= 10, timeout=20,
                        what="media both ways")  # fmt: skip
            assert reconnecting(glass) == (0, 0)

            # The relay goes away (state lost) ...
            await runner.cleanup()
            await glass.wait_state(lambda s: s["connection"] == "reconnecting", timeout=20)
            await glass.wait_message("padlock", lambda p: p["state"] == "reconnecting")
            detail = glass.last("padlock")
            assert detail is not None and "nothing is sent" in detail["detail"]
            assert glass.last("state")["phase"] == "in_meeting"  # type: ignore[index]
            at_outage = (from_host(), grace_decoded(), bridge.counters.chunks_sent)
            frames_before = len(glass.frames)

            # ... and comes back on the same port.
            runner, _ = await start_relay("127.0.0.1", port)
            after = await glass.wait_state(
                lambda s: s["connection"] == "connected" and s["reconnects"] >= 1, timeout=30
            )
            await glass.wait_message(
                "padlock", lambda p: p["state"] == "encrypted", timeout=30
            )
            await until(lambda: from_host() >= at_outage[0] + 20, timeout=30,
                        what="the host's video decoded again")  # fmt: skip
            await until(lambda: grace_decoded() >= at_outage[1] + 10, timeout=30,
                        what="the host decoding the glass again")  # fmt: skip
            assert bridge.counters.chunks_sent > at_outage[2]
            # After the gap the glass's decoder gets a keyframe first, never a delta
            # that refers to a frame it never saw.
            resumed = [
                f for f in glass.frames[frames_before:] if f.sender == hedy and f.kind == VIDEO
            ]
            assert resumed[0].keyframe, [f.keyframe for f in resumed[:5]]
            assert bridge.counters.reconnects_seen >= 1
            states, padlocks = reconnecting(glass)
            assert states >= 1 and padlocks >= 1
            # The same meeting: nobody re-admitted, nothing ended.
            assert after["self_leaf"] == before["self_leaf"]
            assert after["security_code"] == before["security_code"]
            assert after["rejoining"] is None and not glass.of_type("ended")
            assert bridge.counters.sessions == 1
        finally:
            if sending is not None:
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sending
            if glass is not None:
                await glass.close()
            await bridge.close()
            await server.stop()
            await host.stop()
            await runner.cleanup()

    run(scenario(), timeout=90)


def test_a_glass_removed_while_away_is_told_why_and_admitted_again() -> None:
    """The glass's connection stays down past the host's resume window, so the host
    removes it. Back online, its engine finds itself removed (stranded) and asks to
    be admitted afresh: the glass is shown why (``rejoining``), never "ended", and
    is in the meeting again with a new leaf, on the same session."""
    from clave.devtools.fault_proxy import FaultProxy
    from clave.meeting.config import MeetingConfig

    async def scenario() -> None:
        runner, port = await start_relay("127.0.0.1", 0)
        proxy = FaultProxy("127.0.0.1", port)
        entrance = await proxy.open("glass")
        owner_private, owner_public = generate_owner_key(os.urandom)
        link = new_link(f"http://127.0.0.1:{port}", os.urandom, owner_public)
        config = MeetingConfig(resume_window=1.0)
        host = HeadlessParticipant(link, "Hedy", host=True, owner_key=owner_private,
                                   video=False, audio=False, config=config)  # fmt: skip
        bridge = GlassBridge(link, host=False, config=config,
                             relay_url=f"ws://127.0.0.1:{entrance}/ws")  # fmt: skip
        server = UIServer(bridge)
        glass: Glass | None = None
        try:
            await host.start()
            assert await host.wait_joined(10) and host.session is not None
            hmeeting = host.session.meeting
            await server.start()
            glass = await Glass.connect(server)
            await glass.send({"type": "join", "name": "Grace"})
            before = await glass.wait_state(lambda s: s["phase"] == "in_meeting")
            await until(lambda: len(hmeeting.roster) == 2, what="Grace in the host's roster")

            proxy.refuse("glass")
            proxy.cut("glass")
            await glass.wait_state(lambda s: s["connection"] == "reconnecting")
            await until(lambda: len(hmeeting.roster) == 1, timeout=20,
                        what="the host removing Grace after the resume window")  # fmt: skip
            outage = len(glass.messages)
            proxy.accept("glass")

            def back(s: Json) -> bool:
                return (
                    glass is not None
                    and any(m is s for m in glass.messages[outage:])
                    and s["phase"] == "in_meeting"
                    and len(s["roster"]) == 2
                    and s["security_code"] != before["security_code"]  # admitted again
                )

            after = await glass.wait_state(back, timeout=30)
            since = glass.messages[outage:]
            phases = [m["phase"] for m in since if m["type"] == "state"]
            told = [m["rejoining"] for m in since if m["type"] == "state" and m["rejoining"]]
            assert told and "removed you" in told[0], json.dumps(since)[:2000]
            assert "ended" not in phases and not glass.of_type("ended")
            knocking = [m for m in since if m["type"] == "state" and m["phase"] == "lobby"]
            assert knocking and all(m["rejoining"] == told[0] for m in knocking), phases
            assert any(m["type"] == "padlock" and "rejoining" in m["detail"] for m in since)
            assert after["epoch"] > before["epoch"]
            assert after["rejoining"] is None  # shown until admitted
            assert bridge.counters.sessions == 1 and bridge.ended_reason is None
        finally:
            if glass is not None:
                await glass.close()
            await bridge.close()
            await server.stop()
            await host.stop()
            await proxy.close()
            await runner.cleanup()

    run(scenario(), timeout=90)
