"""Grow one meeting of light members to N = 10 … 1000 and rekey it after a leave.

    .venv/bin/python bench/meeting_scale.py [--sizes 10,100,250,500,1000] [--batch 10]
        [--relay ws|memory] [--one-way-ms 50] [--json out.json] [--plots docs] [--quick]

Light members are :class:`clave.meeting.Meeting` state machines (MLS and control, no
media), all in this process, each on its own WebSocket to a real relay
(``python -m clave.relay``, the other core; ``--relay memory``: the relay's own rooms
in this process, :mod:`clave.devtools.memory_relay`). The owner hosts with auto-admit;
guests knock ``--batch`` at a time and the host admits them (as many per commit as
its engine puts in one). Per size N, over the admissions made growing past the
previous size:

* **admission**: from a guest's connect to its Welcome processed (p50/p95, wall
  time on this machine: every member's processing is serialized on one core, so
  this is an upper bound of what people on their own machines would wait);
* **host CPU** per admission (process time of the host's own calls), relay CPU per
  admission (the relay process's /proc accounting), adds per commit, Welcome and
  commit bytes, this process's RSS growth per member;
* **agreement**: every member's epoch and security code, printed; the run fails
  if any member disagrees or reported an error.

Then **rekey after a leave** at each N: a member leaves (Bye, Leave); the others
are *held* (frames queued with their arrival time). Measured: the host's call that
creates the Remove commit, each member's arrival offset after the commit was sent
(the relay's fan-out of N-2 copies; on loopback, read by this one process, so an
upper bound), and each member's processing of the commit once released.
**Modelled** time for member i on its own machine = commit create + one-way network
host→relay + fan-out offset of member i + one-way network relay→member +
processing of member i, with ``--one-way-ms`` as the p95 one-way delay of each
hop; the p95 over members is compared with the 1 s goal (issue 13).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
try:
    import clave.meeting  # noqa: F401
except ImportError:  # not installed: run from a source checkout
    sys.path.insert(0, str(ROOT.parent / "src"))

from _scale_net import Fabric, Member, MemoryFabric, WsFabric  # noqa: E402
from clave.meeting import (  # noqa: E402
    Identity,
    Meeting,
    MeetingConfig,
    committer,
    generate_owner_key,
    new_link,
    policy,
)

GOAL_S = 1.0
OTHERS = {"Zoom": 10.0, "Signal": 3.0, "DAVE": 2.0}


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def rss() -> int:
    """This process's resident set size in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class SizeResult:
    n: int
    admissions: int = 0
    adm_p50: float = 0.0
    adm_p95: float = 0.0
    host_cpu_per_adm: float = 0.0
    relay_cpu_per_adm: float = 0.0
    adds_per_commit: float = 0.0
    welcome_bytes: int = 0
    commit_bytes: int = 0
    mem_per_member: float = 0.0
    grow_s: float = 0.0
    epoch: int = 0
    code: str = ""
    agree: bool = False
    rekey: dict[str, float] = field(default_factory=dict)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes: list[int] = args.sizes
        top = max(self.sizes)
        self.fabric: Fabric = WsFabric(top) if args.relay == "ws" else MemoryFabric(top)
        self.config = MeetingConfig(refresh_interval=0.0, max_lobby=max(64, 2 * args.batch))
        owner_private, owner_public = generate_owner_key(os.urandom)
        self.owner_private = owner_private
        self.link = new_link("https://clave.example", os.urandom, owner_public)
        self.members: list[Member] = []
        self.results: list[SizeResult] = []
        self.stopped = ""
        self._joined = 0
        self.t_start = time.time()

    def _make(self, name: str, *, host: bool = False) -> Meeting:
        common: dict[str, Any] = dict(
            rng=os.urandom, clock=time.monotonic, now=lambda: int(time.time()),
            config=self.config, identity=Identity.generate(os.urandom),
        )  # fmt: skip
        if host:
            return Meeting.create(
                self.link, name, owner_key=self.owner_private, auto_admit=True, **common
            )
        return Meeting.join(self.link, name, **common)

    @property
    def host(self) -> Member:
        return self.members[0]

    def _settled(self) -> bool:
        h = self.host.meeting
        return (
            not h.commit_in_flight
            and not h.lobby
            and all(m.joined is not None and m.meeting.epoch == h.epoch for m in self.members)
        )

    async def run(self) -> None:
        await self.fabric.start()
        try:
            await self._run()
        finally:
            await self.fabric.close()

    async def _run(self) -> None:
        self.members.append(await self.fabric.add(lambda: self._make("Host", host=True),
                                                  watch=True))  # fmt: skip
        if not await self.fabric.wait(lambda: self.host.joined is not None, 30):
            raise RuntimeError("the host never entered its meeting")
        gc.collect()
        rss0 = rss()
        for target in self.sizes:
            res = SizeResult(target)
            if not await self._grow(target, res):
                break
            gc.collect()
            res.mem_per_member = (rss() - rss0) / len(self.members)
            if not await self._agree(res):
                break
            self._print_size(res)
            await self._rekey(res)
            self.results.append(res)
            if self.args.json:
                self.args.json.write_text(json.dumps(self.info(), indent=1))
            if self.stopped:
                break

    async def _grow(self, target: int, res: SizeResult) -> bool:
        """Admit guests, ``--batch`` at a time, until ``target`` are in."""
        host = self.host
        times: list[float] = []
        cpu0, relay0, c0, t0 = host.cpu, self.fabric.relay_cpu(), len(host.commits), time.time()
        welcomes0 = len(host.welcomes)
        while len(self.members) < target:
            if self.args.deadline and time.time() - self.t_start > self.args.deadline:
                self.stopped = (
                    f"deadline of {self.args.deadline:.0f} s reached at N={len(self.members)}"
                )
                print(self.stopped, flush=True)
                return False
            names = []
            for _ in range(min(self.args.batch, target - len(self.members))):
                self._joined += 1
                names.append(f"Member {self._joined}")
            batch = await asyncio.gather(  # the knocks of a batch land together
                *(self.fabric.add(lambda n=name: self._make(n)) for name in names)  # type: ignore[misc]
            )
            self.members += batch
            if not await self.fabric.wait(self._settled, self.args.batch_timeout):
                self.stopped = (
                    f"a batch growing to {len(self.members)} was not in within "
                    f"{self.args.batch_timeout:.0f} s"
                )
                print(self.stopped, "|", self._diagnose(), flush=True)
                return False
            times += [m.joined - m.started for m in batch if m.joined is not None]
            if self.args.progress:
                print(f"  {len(self.members)} in, batch p95 {pct(times[-len(batch):], 95):.2f} s",
                      flush=True)  # fmt: skip
        res.grow_s = time.time() - t0
        res.admissions = len(times)
        adds = max(1, len(host.commits) - c0)
        if times:
            res.adm_p50, res.adm_p95 = pct(times, 50), pct(times, 95)
            res.host_cpu_per_adm = (host.cpu - cpu0) / len(times)
            res.relay_cpu_per_adm = (self.fabric.relay_cpu() - relay0) / len(times)
            res.adds_per_commit = len(times) / adds
        res.welcome_bytes = max(host.welcomes[welcomes0:], default=0)
        res.commit_bytes = max((c[2] for c in host.commits[c0:]), default=0)
        return True

    async def _agree(self, res: SizeResult) -> bool:
        """Every member on the host's epoch with the same security code, and no errors."""

        def views() -> set[tuple[int | None, str | None]]:
            return {(m.meeting.epoch, m.meeting.security_code) for m in self.members}

        await self.fabric.wait(lambda: len(views()) == 1, 60)
        seen = views()
        errors = [e for m in self.members for e in m.errors]
        res.agree = len(seen) == 1 and not errors and len(self.members) == res.n
        epoch, code = next(iter(seen))
        res.epoch, res.code = epoch or 0, code or ""
        if not res.agree:
            self.stopped = f"at N={res.n}: {len(seen)} views, errors {errors[:3]}"
            print("DISAGREEMENT", self.stopped, flush=True)
        return res.agree

    async def _rekey(self, res: SizeResult) -> None:
        """A member leaves; time the Remove commit's creation, fan-out and processing."""
        host = self.host
        leaver = self.members[len(self.members) // 2]
        others = [m for m in self.members if m is not host and m is not leaver]
        for m in others:
            m.held, m.last_commit_seen, m.process_commit = True, None, None
        # The relay allows a connection 1 commit/s (burst 5): let the host's bucket refill
        # after the admissions, so what is timed is the commit, not a rate-limit retry.
        await asyncio.sleep(self.args.rekey_pause)
        c0 = len(host.commits)
        start = time.perf_counter()
        leaver.meeting.leave()
        await self.fabric.flush(leaver, leaver.call(lambda: None))
        seen = await self.fabric.wait(
            lambda: len(host.commits) > c0 and all(m.last_commit_seen for m in others),
            self.args.batch_timeout,
        )
        if not seen:
            self.stopped = f"at N={res.n} the rekey commit did not reach everyone"
            for m in others:
                m.held = False
            return
        first_seen = min(m.last_commit_seen or 0.0 for m in others)
        tries = [c for c in host.commits[c0:] if c[0] <= first_seen] or host.commits[c0:]
        sent, create, nbytes = tries[-1]  # the one ordered (earlier ones were refused)
        if isinstance(self.fabric, MemoryFabric):
            fan = self.fabric.fanout[-1]
            offsets = [fan * (i + 1) / len(others) for i in range(len(others))]
        else:
            offsets = sorted(m.last_commit_seen - sent for m in others)  # type: ignore[operator]
        for m in others:
            await self.fabric.flush(m, m.release())
        procs = [m.process_commit for m in others if m.process_commit is not None]
        await self.fabric.drop(leaver)
        self.members.remove(leaver)
        await self.fabric.wait(self._settled, self.args.batch_timeout)
        one_way = self.args.one_way_ms / 1000
        model = [create + 2 * one_way + o + p for o, p in zip(offsets, procs, strict=False)]
        res.rekey = {
            "create": create,
            "commit_bytes": nbytes,
            "fanout": max(offsets),
            "fanout_rate": len(offsets) / max(offsets),
            "proc_p50": pct(procs, 50),
            "proc_p95": pct(procs, 95),
            "model_p50": pct(model, 50),
            "model_p95": pct(model, 95),
            "here": time.perf_counter() - start,
            "tries": len(tries),
        }
        r = res.rekey
        print(
            f"  rekey at N={res.n}: create {r['create'] * 1e3:.1f} ms, commit {nbytes} B, "
            f"fan-out {r['fanout'] * 1e3:.1f} ms ({r['fanout_rate']:.0f} copies/s), member "
            f"processing p50 {r['proc_p50'] * 1e3:.1f} / p95 {r['proc_p95'] * 1e3:.1f} ms; "
            f"modelled p95 {r['model_p95'] * 1e3:.0f} ms (goal {GOAL_S * 1e3:.0f} ms); "
            f"all {len(others)} processed on this machine in {r['here']:.1f} s",
            flush=True,
        )

    def _diagnose(self) -> str:
        """Where a stalled batch is: phases, epochs and the host's state."""
        h = self.host.meeting
        phases: dict[str, int] = {}
        for m in self.members:
            key = f"{m.meeting.phase.value}@{m.meeting.epoch}"
            phases[key] = phases.get(key, 0) + 1
        errors = [e for m in self.members for e in m.errors][:3]
        return (
            f"members {phases}; host epoch {h.epoch}, lobby {len(h.lobby)}, commit in "
            f"flight {h.commit_in_flight}, stalled {h.ordering_stalled!r}; errors {errors}"
        )

    def info(self) -> dict[str, Any]:
        a = self.args
        return {"relay": a.relay, "batch": a.batch, "one_way_ms": a.one_way_ms,
                "stopped": self.stopped, "seconds": time.time() - self.t_start,
                "results": [asdict(r) for r in self.results]}  # fmt: skip

    def _print_size(self, r: SizeResult) -> None:
        print(
            f"N={r.n}: {r.admissions} admissions in {r.grow_s:.1f} s, p50 {r.adm_p50:.2f} s, "
            f"p95 {r.adm_p95:.2f} s; host CPU {r.host_cpu_per_adm * 1e3:.1f} ms/admission, "
            f"relay CPU {r.relay_cpu_per_adm * 1e3:.2f} ms/admission, "
            f"{r.adds_per_commit:.1f} adds/commit, Welcome {r.welcome_bytes} B, "
            f"commit {r.commit_bytes} B, {r.mem_per_member / 1024:.0f} KiB/member; "
            f"all {r.n} agree: epoch {r.epoch}, code {r.code}",
            flush=True,
        )


def table(results: list[dict[str, Any]], one_way_ms: float) -> str:
    """The Markdown tables of docs/BENCHMARKS.md."""
    rows = [
        "| N | admissions | admission p50 / p95 (s) | host CPU / admission (ms) "
        "| relay CPU / admission (ms) | adds / commit | Welcome (B) | add commit (B) "
        "| memory / member (KiB) | epoch, security code (all N agree) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['n']} | {r['admissions']} | {r['adm_p50']:.2f} / {r['adm_p95']:.2f} "
            f"| {r['host_cpu_per_adm'] * 1e3:.1f} | {r['relay_cpu_per_adm'] * 1e3:.2f} "
            f"| {r['adds_per_commit']:.1f} | {r['welcome_bytes']} | {r['commit_bytes']} "
            f"| {r['mem_per_member'] / 1024:.0f} | {r['epoch']}, `{r['code']}` |"
        )
    rows += [
        "",
        "| N | commit create (ms) | remove commit (B) | relay fan-out (ms) | copies/s "
        f"| member processing p50 / p95 (ms) | modelled p50 / p95 (ms, {one_way_ms:.0f} ms "
        "per hop) | goal p95 < 1000 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        k = r["rekey"]
        if not k:
            continue
        rows.append(
            f"| {r['n']} | {k['create'] * 1e3:.1f} | {k['commit_bytes']:.0f} "
            f"| {k['fanout'] * 1e3:.1f} | {k['fanout_rate']:.0f} "
            f"| {k['proc_p50'] * 1e3:.1f} / {k['proc_p95'] * 1e3:.1f} "
            f"| {k['model_p50'] * 1e3:.0f} / {k['model_p95'] * 1e3:.0f} "
            f"| {'met' if k['model_p95'] < GOAL_S else 'missed'} |"
        )
    return "\n".join(rows)


def plot(results: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n"] for r in results]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ns, [r["adm_p50"] for r in results], "o-", label="admission p50")
    ax.plot(ns, [r["adm_p95"] for r in results], "s-", label="admission p95")
    ax.set(xlabel="meeting size N", ylabel="seconds (all members on one core)",
           title="Time to admit a member while growing past N")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "meeting-scale-admission.png", dpi=110)
    plt.close(fig)

    done = [r for r in results if r["rekey"]]
    ns = [r["n"] for r in done]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ns, [r["rekey"]["model_p95"] for r in done], "o-", label="modelled p95")
    for key, label in (("create", "commit create"), ("fanout", "relay fan-out (all copies)"),
                       ("proc_p95", "member processing p95")):  # fmt: skip
        ax.plot(ns, [r["rekey"][key] for r in done], ".--", label=label)
    ax.axhline(GOAL_S, color="red", lw=1, label="goal: p95 < 1 s")
    ax.set(xlabel="meeting size N", ylabel="seconds",
           title="Rekey after a leave: members on their own machines")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "meeting-scale-rekey.png", dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,250,500,1000")
    parser.add_argument("--quick", action="store_true", help="sizes 10,50")
    parser.add_argument("--batch", type=int, default=10, help="guests knocking at once")
    parser.add_argument("--relay", choices=("ws", "memory"), default="ws")
    parser.add_argument("--one-way-ms", type=float, default=50.0,
                        help="assumed p95 one-way network delay of each hop (model)")  # fmt: skip
    parser.add_argument("--batch-timeout", type=float, default=1800.0)
    parser.add_argument("--rekey-pause", type=float, default=6.0,
                        help="idle seconds before each leave (relay commit bucket)")  # fmt: skip
    parser.add_argument("--deadline", type=float, default=0.0,
                        help="stop growing after this many seconds (0: never)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plots", type=Path, help="write the PNG plots into this directory")
    parser.add_argument("--from-json", type=Path, help="only print tables / plots of a run")
    parser.add_argument("--progress", action="store_true", help="print every batch")
    parser.add_argument(
        "--takeover-after", type=float, default=3600.0,
        help="seconds of a host's silence before a successor takes over (the protocol's "
        "10 s: every member here shares one core, so a member reads a host's Alive only "
        "after seconds in its socket buffer and would take a busy process for a crash)",
    )  # fmt: skip
    args = parser.parse_args()
    # One process plays every member: the takeover rule's clock must not count the time
    # a message waits for this process (it would on one core per member).
    policy.TAKEOVER_AFTER = committer.TAKEOVER_AFTER = args.takeover_after
    args.sizes = [10, 50] if args.quick else sorted(int(s) for s in args.sizes.split(","))
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        results, info = data["results"], data
    else:
        bench = Bench(args)
        asyncio.run(bench.run())
        info = bench.info()
        results = info["results"]
        if args.json:
            args.json.write_text(json.dumps(info, indent=1))
    print()
    print(table(results, info["one_way_ms"]))
    if info["stopped"]:
        print(f"\nstopped: {info['stopped']}")
    if args.plots and results:
        plot(results, args.plots)
    ok = bool(results) and all(r["agree"] for r in results) and not info["stopped"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
