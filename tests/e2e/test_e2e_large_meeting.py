"""Large-meeting media on a real relay with real engines (issue 13, requirements 1-4):
simulcast layers chosen per receiver, last-N decided by each receiver's engine from
the audio it decrypts, and Opus DTX so silent members send no audio at all.

Counted in frames decoded per sender and layer (the headless report), never in time:
waits have deadlines only so that a broken meeting fails instead of hanging.
"""

from __future__ import annotations

import pytest
from e2e_helpers import BASE_URL, invitation, relay, run, wait_until

from clave.engine.headless import HeadlessParticipant

pytestmark = pytest.mark.slow


def video_from(p: HeadlessParticipant, sender: str, layer: int | None = None) -> int:
    """Video frames ``p`` decoded from ``sender`` (of ``layer``, or of all layers)."""
    layers = p.report.media.video_layers.get(sender, {})
    return sum(layers.values()) if layer is None else layers.get(layer, 0)


async def more_video(p: HeadlessParticipant, sender: str, frames: int, layer: int | None) -> None:
    start = video_from(p, sender, layer)
    await wait_until(
        lambda: video_from(p, sender, layer) >= start + frames,
        30,
        explain=lambda: (p.name, sender, layer, p.report.media),
    )


def test_receivers_choose_layers_and_speakers_and_silence_costs_nothing() -> None:
    async def scenario() -> None:
        async with relay() as port:
            link, owner_key = invitation(BASE_URL.format(port=port))
            # Ada sends three layers, Bo one (an older or slower sender); the others
            # send no video, and only the one speaking sends audio.
            ada = HeadlessParticipant(link, "Ada", host=True, owner_key=owner_key,
                                      simulcast=3, speaking=False)  # fmt: skip
            bo = HeadlessParticipant(link, "Bo", speaking=True)
            wide = HeadlessParticipant(link, "Wide", video=False, speaking=False)
            grid = HeadlessParticipant(link, "Grid", video=False, speaking=False)
            quiet = HeadlessParticipant(link, "Quiet", video=False, speaking=False)
            wide.media.director.n = 1  # a speaker view: one video, the latest speaker's
            people = [ada, bo, wide, grid, quiet]
            try:
                for p in people:
                    await p.start()
                    assert await p.wait_joined(20)
                await wait_until(lambda: wide.report.media.stage == ["Bo"], 30,
                                 explain=lambda: wide.report.media)  # fmt: skip

                # Wide receives Bo only; Grid gets both, Bo (the speaker, in focus) on
                # the top layer he sends and Ada on the middle one (two tiles).
                await more_video(wide, "Bo", 30, None)
                ada_seen = video_from(wide, "Ada")
                await more_video(grid, "Ada", 30, 1)
                await more_video(wide, "Bo", 30, None)
                assert video_from(wide, "Ada") == ada_seen
                grid_ada = dict(grid.report.media.video_layers["Ada"])
                await more_video(grid, "Ada", 30, 1)
                assert video_from(grid, "Ada", 0) == grid_ada.get(0, 0)
                assert video_from(grid, "Ada", 2) == grid_ada.get(2, 0)

                # Ada starts speaking and Bo stops: Wide's engine moves its one video
                # to Ada, at her top layer, switched by the relay at a keyframe.
                bo.media.speaking, ada.media.speaking = False, True
                await wait_until(lambda: wide.report.media.stage == ["Ada"], 30,
                                 explain=lambda: wide.report.media)  # fmt: skip
                await more_video(wide, "Ada", 30, 2)
                await more_video(grid, "Ada", 30, 2)
                bo_seen = video_from(wide, "Bo")
                await more_video(wide, "Ada", 30, 2)
                assert video_from(wide, "Bo") == bo_seen

                # Silence costs nothing: the silent never sent an audio frame, so
                # nobody decoded audio from them, while the speakers were heard.
                for silent in (wide, grid, quiet):
                    assert silent.report.frames_sent["audio"] == 0
                    assert silent.report.media.audio_dtx_skipped > 0
                    for p in people:
                        assert p.counter.count(silent.name, "audio") == 0
                assert ada.report.media.layers_sent.keys() == {0, 1, 2}
                assert bo.report.media.layers_sent.keys() == {0}
                for p in (wide, grid, quiet):
                    assert p.counter.count("Bo", "audio") > 0
                    assert p.counter.count("Ada", "audio") > 0
                codes = {p.report.security_code for p in people}
                assert len(codes) == 1 and None not in codes
                assert all(p.report.alerts == [] for p in people)
            finally:
                for p in people:
                    await p.stop()

    run(scenario(), 240)
