"""Last-N decided by the receiver's engine (engine/stage.py) in a real meeting: an
embedded relay, four headless participants of which one speaks, and a scripted glass.

With room for one video (``StageDirector.n = 1``), the engine subscribes to the video
of the member it hears speaking, the relay forwards only that one, and the glass is
told who is on stage and who speaks; the subscription is sent when the choice changes,
not once per audio frame.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from engine_helpers import AUDIO, VIDEO, Glass, Json, run, until
from test_glass_meeting import engine, world

from clave.engine.headless import HeadlessParticipant


async def next_stage(glass: Glass, check: Callable[[Json], bool]) -> Json:
    """The first ``stage`` message from now on that passes ``check``."""
    seen = len(glass.of_type("stage"))

    def found() -> Json | None:
        return next((m for m in glass.of_type("stage")[seen:] if check(m)), None)

    return await glass.wait_for(found)


def test_the_engine_puts_the_speaker_on_stage() -> None:
    async def scenario() -> None:
        async with world() as w:
            host = HeadlessParticipant(
                w.link, "Hedy", host=True, owner_key=w.owner_key, audio=False
            )
            quiet = HeadlessParticipant(w.link, "Quinn", audio=False)
            speaker = HeadlessParticipant(w.link, "Sam")  # Opus all the time: speaking
            others = (quiet, speaker)
            await host.start()
            try:
                assert await host.wait_joined(10)
                for member in others:
                    await member.start()
                    assert await member.wait_joined(15)
                async with engine(w.link) as (server, glass):
                    bridge = server.bridge
                    bridge.stage.n = 1
                    await glass.send({"type": "join", "name": "Grace Glass"})
                    state = await glass.wait_state(
                        lambda s: s["phase"] == "in_meeting" and len(s["roster"]) == 4
                    )
                    leaf = {e["name"]: e["leaf"] for e in state["roster"]}
                    sam = leaf["Sam"]

                    def on_stage(m: Json) -> bool:
                        return m["video"] == [sam] and sam in m["speaking"]

                    staged = await glass.wait_message("stage", on_stage, timeout=15)
                    assert staged["active"] == sam and staged["layers"] == {str(sam): 2}
                    assert bridge.stage.subscribed is not None
                    assert dict(bridge.stage.subscribed.video) == {sam: 2}

                    # Once the relay has forwarded 10 of Sam's video frames since (it had
                    # the subscription by then), it forwards nobody else's video.
                    def sams_video(since: int) -> int:
                        return sum(
                            1 for f in glass.frames[since:] if f.kind == VIDEO and f.sender == sam
                        )

                    mark = len(glass.frames)
                    await until(lambda: sams_video(mark) >= 10, 20, "Sam's video")
                    mark = len(glass.frames)
                    await until(lambda: sams_video(mark) >= 30, 20, "more of Sam's video")
                    assert {f.sender for f in glass.frames[mark:] if f.kind == VIDEO} == {sam}
                    await until(
                        lambda: (
                            sum(1 for f in glass.frames if f.kind == AUDIO and f.sender == sam)
                            >= 50
                        ),
                        20,
                        "50 audio frames of Sam's",
                    )
                    # One subscription per change of choice, not one per frame.
                    assert bridge.stage.subscriptions <= 4, bridge.stage.subscriptions
                    assert [m["video"] for m in glass.of_type("stage")].count([sam]) >= 1

                    # A pin beats speaking: Quinn's video instead, Sam still speaking.
                    await glass.send({"type": "pin", "leaf": leaf["Quinn"]})
                    pinned = await next_stage(glass, lambda m: m["video"] == [leaf["Quinn"]])
                    assert pinned["pinned"] == [leaf["Quinn"]] and sam in pinned["speaking"]
                    await glass.send({"type": "unpin", "leaf": leaf["Quinn"]})
                    back = await next_stage(glass, lambda m: m["pinned"] == [])
                    assert back["video"] == [sam]

                    # Room for three: speaker view receives the focus (Sam) at the top
                    # layer and the filmstrip at layer 0; the grid one layer apart.
                    def layers(top: int, rest: int) -> Callable[[Json], bool]:
                        def check(m: Json) -> bool:
                            want = {str(x): top if x == sam else rest for x in m["video"]}
                            return len(m["video"]) == 3 and m["layers"] == want

                        return check

                    bridge.stage.n = 3
                    await glass.send({"type": "view", "mode": "speaker"})
                    view = await next_stage(glass, layers(2, 0))
                    assert view["active"] == sam and bridge.stage.speaker_view
                    await glass.send({"type": "view", "mode": "grid"})
                    await next_stage(glass, layers(2, 1))
            finally:
                for member in (*others, host):
                    with contextlib.suppress(Exception):
                        await member.stop()

    run(scenario(), timeout=60)


def test_chunk_flags_carry_a_layer_and_nothing_else() -> None:
    """Glass -> engine flags: bit 0 keyframe, bits 1-2 the layer (0-2; audio 0 only);
    anything else is malformed. (No session: a well-formed chunk is dropped, not sent.)"""
    from clave.engine.glass_channel import GLASS_CHUNK_HEADER, flags_layer, media_flags
    from clave.engine.glass_media import BridgeCounters, ChunkSender

    counters = BridgeCounters()
    errors: list[str] = []
    sender = ChunkSender(counters, lambda: None, errors.append)

    def chunk(kind: int, flags: int) -> bytes:
        return GLASS_CHUNK_HEADER.pack(kind, flags, 1) + b"x"

    async def feed() -> None:
        for kind, flags in ((VIDEO, media_flags(True, 2)), (VIDEO, 0b100), (2, 0b010)):
            await sender.handle(chunk(kind, flags), None)
        for kind, flags in ((VIDEO, 0b110), (VIDEO, 0b1000), (AUDIO, media_flags(False, 1))):
            await sender.handle(chunk(kind, flags), None)

    run(feed())
    assert (counters.chunks_dropped, counters.chunks_malformed) == (3, 3)
    assert [flags_layer(media_flags(k, layer)) for k in (False, True) for layer in (0, 2)] == [
        0, 2, 0, 2,
    ]  # fmt: skip
    assert flags_layer(0b110) is None and len(errors) == 1
