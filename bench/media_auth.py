"""What per-sender media authentication costs: latency, receiver CPU, bytes.

A meeting of N members runs on the in-memory delivery service
(``clave.devtools.memory_relay``) with an injected clock, twice: with signed
manifests (``MeetingConfig.authenticate_media``, the default) and without.
Every member but one sends Opus-sized audio (80 bytes every 20 ms) and
VP8-sized video (about 1.2 KB at 30 frames/s, a 12 KB keyframe every 2 s) for
``--seconds`` of simulated time, with random phases; the remaining member is
the receiver under test. Reported, per sender count:

* **added latency** (p50 / p95, ms of simulated time): from a frame's arrival
  to its release to the application; without authentication it is 0. The
  wall-clock cost of checking (below) comes on top;
* **receiver CPU per received frame** (µs, wall clock of the receiving core,
  manifests and timers included) and its ratio to the run without; and the
  same ratio for the engine's whole receive path, which also decodes every
  frame (real VP8 640x360 and Opus 20 ms frames, timed in the same run);
* **bytes per second per sender** added by manifests, and their share of the
  sender's media bytes.

Rows are given per manifest interval: the interval bounds the added latency,
and the number of signatures each receiver checks per second falls as it grows.
``python bench/media_auth.py [--senders 3,10,25] [--seconds 4] [--intervals 0.018,0.04]
[--plot FILE.png]`` (the plot sweeps the interval at 10 senders; needs the ``bench``
extra, matplotlib).
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

try:
    import clave.meeting  # noqa: F401
except ImportError:  # not installed: run from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from clave import wire
from clave.devtools.memory_relay import MemoryRelay
from clave.meeting import (
    Identity,
    LobbyRequest,
    MediaFrameDecrypted,
    Meeting,
    MeetingConfig,
    generate_owner_key,
    new_link,
)
from clave.wire.media import StreamKind

NOW = 1_800_000_000


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    frames: int = 0
    manifest_bytes: dict[int, int] = field(default_factory=dict)
    media_bytes: dict[int, int] = field(default_factory=dict)


People = list[tuple[int, Meeting]]


def build(n: int, config: MeetingConfig, rng: random.Random) -> tuple[MemoryRelay, Clock, People]:
    relay, clock = MemoryRelay(), Clock()

    def rand(k: int) -> bytes:
        return rng.randbytes(k)

    owner_private, owner_public = generate_owner_key(rand)
    link = new_link("https://relay.example", rand, owner_public)
    host = Meeting.create(link, "m0", owner_key=owner_private, rng=rand, clock=clock,
                          now=lambda: NOW, config=config, identity=Identity.generate(rand),
                          auto_admit=True)  # fmt: skip
    people = [(relay.connect(), host)]
    for i in range(1, n):
        guest = Meeting.join(link, f"m{i}", rng=rand, clock=clock, now=lambda: NOW,
                             config=config, identity=Identity.generate(rand))  # fmt: skip
        people.append((relay.connect(), guest))
        pump(relay, people)
    pump(relay, people)
    assert all(m.encrypted for _, m in people), "everyone admitted"
    return relay, clock, people


def pump(relay: MemoryRelay, people: list[tuple[int, Meeting]]) -> None:
    moved = True
    while moved:
        moved = False
        for conn, m in people:
            for frame in m.frames_to_send():
                relay.handle(conn, frame)
                moved = True
            box = relay.inbox.get(conn)
            while box:
                m.receive(box.popleft())
                while (ev := m.next_event()) is not None:
                    if isinstance(ev, LobbyRequest):
                        pass
                moved = True


def decode_costs() -> tuple[float, float]:
    """Seconds to decode one VP8 frame (640x360, the headless camera) and one Opus
    frame, on this machine, now."""
    from clave.media import (
        OpusDecoder,
        OpusEncoder,
        TestPatternSource,
        ToneSource,
        VideoDecoder,
        VideoEncoder,
    )

    source, encoder = TestPatternSource(640, 360, 30, label="bench"), VideoEncoder(
        "vp8", 640, 360, 30, 500_000
    )
    video = [c.data for i in range(90) for c in encoder.encode(source.next_frame(i))]
    tone, opus = ToneSource(440.0), OpusEncoder()
    audio = [c.data for i in range(150) for c in opus.encode(tone.next_frame(i))]
    vdec, adec = VideoDecoder("vp8"), OpusDecoder()
    t0 = time.perf_counter()
    for data in video:
        vdec.decode(data)
    t1 = time.perf_counter()
    for data in audio:
        adec.decode(data)
    t2 = time.perf_counter()
    return (t1 - t0) / len(video), (t2 - t1) / len(audio)


def simulate(n: int, seconds: float, authenticate: bool, seed: int, interval: float) -> Run:
    rng = random.Random(seed)
    config = MeetingConfig(
        authenticate_media=authenticate, refresh_interval=0, manifest_interval=interval
    )
    relay, clock, people = build(n, config, rng)
    (rx_conn, rx), senders = people[0], people[1:]
    run = Run()
    start = clock.t
    # (time, seq, sender index, kind)
    schedule: list[tuple[float, int, int, StreamKind]] = []
    seq = 0
    for i in range(len(senders)):
        for kind, period in ((StreamKind.audio, 0.020), (StreamKind.video, 1 / 30)):
            t = start + rng.uniform(0, period)
            while t < start + seconds:
                schedule.append((t, seq, i, kind))
                seq += 1
                t += period
    heapq.heapify(schedule)
    arrived: dict[bytes, float] = {}
    video_count = [0] * len(senders)

    def deliver_to_receiver() -> None:
        box = relay.inbox[rx_conn]
        while box:
            frame = box.popleft()
            is_media = frame[1] == wire.MEDIA
            if is_media:
                arrived[frame[7:]] = clock.t
                run.frames += 1
            t0 = time.thread_time()
            rx.receive(frame)
            run.cpu += time.thread_time() - t0
            drain_receiver()

    def drain_receiver() -> None:
        while (ev := rx.next_event()) is not None:
            if isinstance(ev, MediaFrameDecrypted):
                run.latencies.append(0.0)  # replaced below when we know the frame

    def fire(meeting: Meeting, measure: Callable[[float], None] | None = None) -> None:
        when = meeting.get_timer()
        if when is not None and when <= clock.t:
            t0 = time.thread_time()
            meeting.handle_timer(clock.t)
            if measure is not None:
                measure(time.thread_time() - t0)

    released: list[float] = []

    def on_release(ev: MediaFrameDecrypted) -> None:
        released.append(clock.t)

    rx_events: list[tuple[float, bytes]] = []
    original = rx.next_event

    def tapped() -> object:
        ev = original()
        if isinstance(ev, MediaFrameDecrypted):
            rx_events.append((clock.t, ev.payload))
        return ev

    rx.next_event = tapped  # type: ignore[method-assign]
    sent_at: dict[bytes, float] = {}
    def next_timer() -> float:
        times = [m.get_timer() for _, m in senders] + [rx.get_timer()]
        return min((t for t in times if t is not None), default=float("inf"))

    def add_cpu(dt: float) -> None:
        run.cpu += dt

    def run_timers() -> None:
        for j, (c2, s2) in enumerate(senders):
            fire(s2)
            for out in s2.frames_to_send():
                run.manifest_bytes[j] = run.manifest_bytes.get(j, 0) + len(out)
                relay.handle(c2, out)
            relay.inbox[c2].clear()  # the others' inboxes are not under test
        deliver_to_receiver()
        fire(rx, add_cpu)
        drain_receiver()

    while schedule:
        timer = next_timer()
        if timer < schedule[0][0]:  # a manifest (or an expiry) is due before the next frame
            clock.t = timer
            run_timers()
            continue
        t, _, i, kind = heapq.heappop(schedule)
        clock.t = t
        conn, sender = senders[i]
        if kind == StreamKind.video:
            video_count[i] += 1
            size = 12_000 if video_count[i] % 60 == 1 else 1_200
        else:
            size = 80
        payload = rng.randbytes(size)
        sent_at[payload] = t
        frame = sender.protect_media(kind, kind == StreamKind.video and size > 10_000, payload)
        run.media_bytes[i] = run.media_bytes.get(i, 0) + len(frame)
        relay.handle(conn, frame)
        for out in sender.frames_to_send():
            run.manifest_bytes[i] = run.manifest_bytes.get(i, 0) + len(out)
            relay.handle(conn, out)
        run_timers()
    clock.t += 0.05  # the last manifests are due
    for conn, sender in senders:
        fire(sender)
        for out in sender.frames_to_send():
            relay.handle(conn, out)
    deliver_to_receiver()
    run.latencies = [(t - sent_at[p]) * 1000 for t, p in rx_events if p in sent_at]
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", default="3,10,25")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--intervals", default="0.018,0.04")
    parser.add_argument("--plot", help="also sweep the interval and draw it to this PNG")
    args = parser.parse_args()
    video_s, audio_s = decode_costs()
    # Per received frame on average: 30 video and 50 audio frames a second per sender.
    decode = (30 * video_s + 50 * audio_s) / 80
    print(f"decoding, this machine now: VP8 640x360 {video_s * 1e6:.0f} µs/frame, "
          f"Opus {audio_s * 1e6:.0f} µs/frame (average {decode * 1e6:.0f} µs per frame)")
    print("latency in simulated ms; CPU: the receiving core's wall clock per received frame")
    print(f"{'interval':>8} {'senders':>7} {'frames':>7} {'lat p50':>8} {'lat p95':>8} "
          f"{'core off':>9} {'core on':>8} {'ratio':>6} {'path ratio':>10} "
          f"{'B/s/sender':>11} {'of media':>9}")  # fmt: skip
    for interval in (float(x) for x in args.intervals.split(",")):
        for senders in (int(s) for s in args.senders.split(",")):
            off = simulate(senders + 1, args.seconds, False, senders, interval)
            on = simulate(senders + 1, args.seconds, True, senders, interval)
            assert len(on.latencies) == on.frames == off.frames, "every frame released"
            cpu_off = off.cpu / off.frames
            cpu_on = on.cpu / on.frames
            lat = sorted(on.latencies)
            p50 = statistics.median(lat)
            p95 = lat[int(0.95 * (len(lat) - 1))]
            per_sender = statistics.mean(on.manifest_bytes.values()) / args.seconds
            share = sum(on.manifest_bytes.values()) / sum(on.media_bytes.values())
            path = (cpu_on + decode) / (cpu_off + decode)
            print(f"{interval * 1000:>6.0f}ms {senders:>7} {on.frames:>7} {p50:>8.1f} "
                  f"{p95:>8.1f} {cpu_off * 1e6:>9.1f} {cpu_on * 1e6:>8.1f} "
                  f"{cpu_on / cpu_off:>6.2f} {path:>10.2f} {per_sender:>11.0f} "
                  f"{share:>8.1%}", flush=True)  # fmt: skip


    if args.plot:
        plot(args.plot, args.seconds, decode)


def plot(path: str, seconds: float, decode: float) -> None:
    """Latency p95 and receiver CPU against the manifest interval, at 10 senders."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    intervals = [0.010, 0.018, 0.025, 0.033, 0.040, 0.060, 0.080]
    p95s, core, path_ratio = [], [], []
    off = simulate(11, seconds, False, 10, 0.018)
    for interval in intervals:
        on = simulate(11, seconds, True, 10, interval)
        lat = sorted(on.latencies)
        p95s.append(lat[int(0.95 * (len(lat) - 1))])
        core.append((on.cpu / on.frames) / (off.cpu / off.frames))
        path_ratio.append((on.cpu / on.frames + decode) / (off.cpu / off.frames + decode))
    fig, left = plt.subplots(figsize=(7, 4))
    ms = [i * 1000 for i in intervals]
    left.plot(ms, p95s, "o-", color="tab:blue", label="added latency p95 (ms)")
    left.axhline(20, color="tab:blue", linestyle=":", linewidth=1)
    left.set_xlabel("manifest interval (ms)")
    left.set_ylabel("added latency p95 (ms)", color="tab:blue")
    right = left.twinx()
    right.plot(ms, core, "s-", color="tab:red", label="receiver CPU / without (core)")
    right.plot(ms, path_ratio, "^-", color="tab:orange", label="... with decoding")
    right.axhline(2, color="tab:red", linestyle=":", linewidth=1)
    right.set_ylabel("receiver CPU per frame, ratio", color="tab:red")
    lines = left.get_lines()[:1] + right.get_lines()[:2]
    left.legend(lines, [str(x.get_label()) for x in lines], loc="upper center")
    left.set_title("Media authentication at 10 senders: latency against CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
