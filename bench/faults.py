"""How long a fault keeps people out of the meeting: from its end to decoded media again.

    .venv/bin/python bench/faults.py [--trials 10] [--kinds blip,cut_one,relay_restart,pause]
                                     [--json out.json] [--plot docs/img/faults-recovery.png]

A meeting of real processes, as in tests/e2e/test_e2e_faults.py: a relay
(``clave serve --heartbeat 1``), a host and two guests (``clave meet/join --headless``,
VP8 640x360 at 30 frames/s and Opus), each engine reaching the relay through its own
entrance of a fault proxy (``clave.devtools.fault_proxy``). The same meeting takes
``--trials`` faults of each kind, one at a time, each once the meeting is whole again
after the previous one (every member decoding every other's camera and microphone):

* ``blip``: every connection reset and new ones refused for 3 s (a network outage);
* ``cut_one``: g1's connection reset (a NAT rebinding, a Wi-Fi hand-over);
* ``relay_restart``: the relay process killed (SIGKILL) and started again on its
  port, with nothing of its state left;
* ``pause``: g2's process stopped (SIGSTOP) for 5 s (a laptop lid, a frozen
  process); the relay drops its silent connection after 1.5 s.

**The fault ends** when the network is back: the proxy accepts again (blip), the
reset is done (cut_one), the new relay process prints that it listens
(relay_restart), SIGCONT is sent (pause). **A stream is back** (receiver R, sender
S, one media kind) when R decodes the first frame of S that was *captured* after the
fault ended: frames a paused engine finds in its socket buffer when it continues
are not live media. Each engine lists, with wall-clock times, every pair of
consecutively decoded frames of a stream at least 0.1 s apart in decoding or in
capture time (``media_gaps`` in its report); a stream the fault interrupted for less
than that has no entry and counts as 0.1 s. Only the streams a fault interrupts are
counted: all of them for a blip or a relay restart, those to and from g1 (cut_one)
or g2 (pause) otherwise. **A trial's time** is its slowest stream: when everyone
sees and hears everyone again. Printed per kind: p50 / p95 / max over trials of that
time, and p50 / p95 of the single streams' times, video and audio apart, pooled over
trials (nearest-rank percentiles). Goals (docs/BENCHMARKS.md): p95 ≤ 3 s for a
blip, ≤ 5 s for a relay restart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "src", ROOT / "tests" / "e2e"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from fault_helpers import FaultMeeting, Status, increases  # noqa: E402

from clave.engine.headless import GAP_S  # noqa: E402

MEMBERS = ("host", "g1", "g2")
KINDS = ("blip", "cut_one", "relay_restart", "pause")
AFFECTED = {"blip": None, "cut_one": "g1", "relay_restart": None, "pause": "g2"}
"""Whose streams a fault interrupts: everyone's (None), or those to and from one member."""
GOALS = {"blip": 3.0, "relay_restart": 5.0}
BLIP_S = 3.0
PAUSE_S = 5.0
HEARTBEAT_S = 1.0
MIN_VIDEO = 30
MIN_AUDIO = 50
WHOLE_S = 60.0
"""Deadline for the meeting to be whole again after a fault (the trial fails after it)."""
SETTLE_S = 1.0
"""Quiet time between a trial and the next fault."""


@dataclass
class Trial:
    kind: str
    fault_start: float
    fault_end: float
    pairs: dict[str, float] = field(default_factory=dict)
    """``"R<-S video"`` -> seconds from the fault's end to R's first decode of it again."""
    unlisted: int = 0
    """Streams that paused less than ``GAP_S`` (counted as ``GAP_S``)."""

    @property
    def worst(self) -> float:
        return max(self.pairs.values(), default=math.nan)


async def _fault(meeting: FaultMeeting, kind: str) -> tuple[float, float]:
    """Inject one fault; return when it began and when it ended (Unix time)."""
    assert meeting.proxy is not None
    start = time.time()
    if kind == "blip":
        meeting.proxy.refuse()
        meeting.proxy.cut()
        await asyncio.sleep(BLIP_S)
        end = time.time()
        meeting.proxy.accept()
    elif kind == "cut_one":
        meeting.proxy.cut("g1")
        end = time.time()
    elif kind == "relay_restart":
        await meeting.kill_relay()
        await meeting.start_relay()  # returns once the new relay says it listens
        end = time.time()
    elif kind == "pause":
        g2 = meeting.members["g2"]
        g2.pause()
        try:
            await asyncio.sleep(PAUSE_S)
        finally:
            end = time.time()
            g2.resume()
    else:
        raise ValueError(kind)
    return start, end


def whole(baseline: dict[str, Status], since: float) -> Callable[[dict[str, Status]], bool]:
    def check(now: dict[str, Status]) -> bool:
        return (
            all(s["link_state"] == "connected" for s in now.values())
            and min(increases(baseline, now, "video").values()) >= MIN_VIDEO
            and min(increases(baseline, now, "audio").values()) >= MIN_AUDIO
            and all(
                now[rx]["newest_capture"].get(tx, 0.0) > since
                for rx in now
                for tx in now
                if rx != tx
            )
        )

    return check


def back_times(statuses: dict[str, Status], kind: str, end: float) -> tuple[dict[str, float], int]:
    """Per affected stream ``"R<-S kind"``: seconds from ``end`` to R's first decode of a
    frame of S captured after ``end``, found in R's ``media_gaps`` (the first gap that
    began by ``end`` and ends in a frame captured after it). A stream with no such gap
    paused less than ``GAP_S``: it counts as ``GAP_S``. Also returns how many did."""
    target = AFFECTED[kind]
    times: dict[str, float] = {}
    unlisted = 0
    for rx, status in statuses.items():
        for tx in statuses:
            if tx == rx or (target is not None and target not in (rx, tx)):
                continue
            for media in ("video", "audio"):
                back = [
                    decoded_after
                    for sender, k, _, decoded_after, captured_before, captured_after in status[
                        "media_gaps"
                    ]
                    if (sender, k) == (tx, media)
                    and captured_before < end + GAP_S
                    and captured_after > end
                ]
                times[f"{rx}<-{tx} {media}"] = max(0.0, min(back) - end) if back else GAP_S
                unlisted += not back
    return times, unlisted


async def bench(kinds: list[str], trials: int, tmp: Path) -> list[Trial]:
    meeting = FaultMeeting(tmp, MEMBERS, heartbeat=HEARTBEAT_S)
    results: list[Trial] = []
    try:
        await meeting.start()
        zero: dict[str, Status] = {n: {"decoded": {}} for n in MEMBERS}
        await meeting.wait_for(whole(zero, 0.0), WHOLE_S)
        for kind in kinds:
            for i in range(trials):
                await asyncio.sleep(SETTLE_S)
                baseline = await meeting.statuses()
                start, end = await _fault(meeting, kind)
                after = await meeting.wait_for(whole(baseline, end), WHOLE_S)
                pairs, short = back_times(after, kind, end)
                trial = Trial(kind, start, end, pairs, short)
                results.append(trial)
                print(f"{kind:>14} #{i + 1:<2} slowest stream {trial.worst:6.2f} s "
                      f"({len(trial.pairs)} streams, {short} paused less than {GAP_S} s)",
                      flush=True)  # fmt: skip
        await meeting.stop()
    finally:
        await meeting.close()
    return results


def pct(values: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank method (q = 0.95: the value 95 % stay under)."""
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def table(results: list[Trial], kinds: list[str]) -> list[dict[str, float | int | str]]:
    rows: list[dict[str, float | int | str]] = []
    for kind in kinds:
        mine = [t for t in results if t.kind == kind]
        worst = [t.worst for t in mine]
        video = [v for t in mine for k, v in t.pairs.items() if k.endswith(" video")]
        audio = [v for t in mine for k, v in t.pairs.items() if k.endswith(" audio")]
        rows.append({
            "kind": kind, "trials": len(mine),
            "worst_p50": statistics.median(worst) if worst else math.nan,
            "worst_p95": pct(worst, 0.95), "worst_max": max(worst, default=math.nan),
            "video_p50": statistics.median(video) if video else math.nan,
            "video_p95": pct(video, 0.95),
            "audio_p50": statistics.median(audio) if audio else math.nan,
            "audio_p95": pct(audio, 0.95),
            "streams": len(video + audio),
            "unlisted": sum(t.unlisted for t in mine),
            "fault_s": statistics.mean(t.fault_end - t.fault_start for t in mine) if mine else 0.0,
            "goal": GOALS.get(kind, math.nan),
        })  # fmt: skip
    return rows


def print_table(rows: list[dict[str, float | int | str]]) -> None:
    print("seconds from the fault's end to live media decoded again "
          "(worst: each trial's slowest stream)")
    print(f"{'fault':>14} {'lasted':>6} {'trials':>6} {'worst p50':>9} {'p95':>6} {'max':>6} "
          f"{'video p50':>9} {'p95':>6} {'audio p50':>9} {'p95':>6} {'< 0.1 s':>9} "
          f"{'goal p95':>8}")  # fmt: skip
    for r in rows:
        goal = "" if math.isnan(float(r["goal"])) else f"<= {float(r['goal']):.0f}"
        short = f"{r['unlisted']}/{r['streams']}"
        print(f"{r['kind']:>14} {r['fault_s']:>6.2f} {r['trials']:>6} {r['worst_p50']:>9.2f} "
              f"{r['worst_p95']:>6.2f} {r['worst_max']:>6.2f} {r['video_p50']:>9.2f} "
              f"{r['video_p95']:>6.2f} {r['audio_p50']:>9.2f} {r['audio_p95']:>6.2f} "
              f"{short:>9} {goal:>8}")  # fmt: skip


def plot(path: str, results: list[Trial], kinds: list[str]) -> None:
    """Each trial's slowest stream per fault kind, with the goals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, kind in enumerate(kinds):
        worst = sorted(t.worst for t in results if t.kind == kind)
        xs = [i + (j - (len(worst) - 1) / 2) * 0.03 for j in range(len(worst))]
        ax.scatter(xs, worst, s=18, color="tab:blue", zorder=3)
        ax.hlines(statistics.median(worst), i - 0.3, i + 0.3, colors="tab:blue", linestyles="-")
        ax.hlines(pct(worst, 0.95), i - 0.3, i + 0.3, colors="tab:blue", linestyles="--")
        if kind in GOALS:
            ax.hlines(GOALS[kind], i - 0.4, i + 0.4, colors="tab:red", linestyles=":")
    ax.set_xticks(range(len(kinds)), kinds)
    ax.set_ylabel("seconds from the fault's end to live media for all")
    ax.set_ylim(bottom=0)
    ax.set_title("Back in the meeting: each trial's slowest stream (line: p50, dashed: p95, "
                 "dotted red: goal)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


async def amain(args: argparse.Namespace) -> None:
    kinds = [k for k in args.kinds.split(",") if k]
    for kind in kinds:
        if kind not in KINDS:
            raise SystemExit(f"unknown fault kind {kind!r} (known: {', '.join(KINDS)})")
    with tempfile.TemporaryDirectory(prefix="clave-faults-") as tmp:
        results = await bench(kinds, args.trials, Path(tmp))
    rows = table(results, kinds)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "rows": rows,
            "trials": [{"kind": t.kind, "worst": t.worst, "pairs": t.pairs} for t in results],
        }, indent=1))  # fmt: skip
    if args.plot:
        plot(args.plot, results, kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--json", help="also write the trials and the table to this file")
    parser.add_argument("--plot", help="draw each trial's worst pair to this PNG (matplotlib)")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
