"""Relay benchmark: N participants in one room, everyone sends video and audio to everyone.

    .venv/bin/python bench/relay.py [--sizes 5,10,20,25] [--seconds 10]
    .venv/bin/python bench/relay.py --scenario large [--seconds 15]

The default scenario, ``mesh``, is described below. ``--scenario last-n``,
``audio-1000`` or ``large`` (both) run the large-meeting scenarios of
``bench/_relay_scale.py`` instead: the relay and a bare aiohttp fan-out, one after
the other under the same load, on one core each.

For each N a fresh relay runs in its own process (``python -m clave.relay``,
uvloop, pinned to CPU 0) and a load generator in another (one uvloop process,
pinned to CPU 1, a raw WebSocket client per participant: it masks with a zero
key and parses frames by hand so that it stays cheap). Each participant sends
10 KB video frames at 30 fps (a keyframe every 2 s, or when asked) and 120 B
audio frames at 50 fps: valid media envelopes whose "SFrame" payload is random
bytes after an 8-byte send timestamp (CLOCK_MONOTONIC, shared by both
processes). Reported per N, over the measured window after a warm-up:

* delivered frames/s and MB/s (by receive time),
* delivery ratio: frames sent in the window that arrived / (sent x (N - 1)),
* relay CPU (user + system from /proc) per delivered frame and in % of a core,
* p50 / p99 latency from send to receive (relay queueing + both kernels),
* the load generator's own CPU, to show it was not the bottleneck.

Goal: 25 participants in real time on one core: >= 99 % delivered, p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import functools
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from clave.wire import (
    Enter,
    Joined,
    KeyframeWanted,
    StreamKind,
    decode_relay,
    encode,
    encode_media,
    room_id_for_token,
)

VIDEO_BYTES = 10_000
AUDIO_BYTES = 120
VIDEO_FPS = 30
AUDIO_FPS = 50
KEYFRAME_EVERY = 2 * VIDEO_FPS
GOAL_N = 25
GOAL_RATIO = 0.99
GOAL_P99_MS = 50.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
MEDIA = 0x4D


def ws_client_frame(payload: bytes) -> bytes:
    """A masked binary frame with an all-zero masking key (valid; the XOR is the identity)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x82, 0x80 | n))
    elif n < 65536:
        head = bytes((0x82, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x82, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --------------------------------------------------------------- load generator


@dataclass
class Stats:
    window: tuple[int, int] = (0, 0)
    """[start, end) in monotonic ns; frames are counted against it."""
    received_in_window: int = 0
    bytes_in_window: int = 0
    delivered_sent_in_window: int = 0
    sent_in_window: int = 0
    latencies: array.array[int] = field(default_factory=lambda: array.array("q"))
    keyframe_requests: int = 0


class Participant(asyncio.Protocol):
    """One raw WebSocket client: sends media on timers, parses what it receives."""

    def __init__(self, index: int, host: str, port: int, stats: Stats) -> None:
        self.index = index
        self.host = host
        self.port = port
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self.joined: asyncio.Future[Joined] = asyncio.get_running_loop().create_future()
        self.buf = bytearray()
        self.handshake_done = False
        self.block = os.urandom(VIDEO_BYTES - 8)
        self.want_keyframe = True
        self.video_count = 0
        self.sending = False

    # -- connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tr = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        key = base64.b64encode(os.urandom(16)).decode()
        tr.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.sending = False
        for fut in (self.upgraded, self.joined):
            if not fut.done():
                fut.set_exception(ConnectionError("relay closed the connection"))

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(ws_client_frame(payload))

    # -- receiving

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.handshake_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(bytes(buf[:end]).decode(errors="replace"))
            del buf[: end + 4]
            self.handshake_done = True
            self.upgraded.set_result(None)
        self._parse(time.monotonic_ns())

    def _parse(self, now: int) -> None:
        buf = self.buf
        size = len(buf)
        pos = 0
        stats = self.stats
        start, end = stats.window
        in_window = start <= now < end
        lat = stats.latencies
        received = nbytes = on_time = 0
        while size - pos >= 2:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            body = pos + head
            stop = body + length
            if stop > size:
                break
            opcode = buf[pos] & 0x0F
            if opcode == 2:
                if buf[body + 1] == MEDIA:
                    received += 1
                    nbytes += length
                    sent = int.from_bytes(buf[body + 7 : body + 15], "big")
                    if start <= sent < end:
                        on_time += 1
                        lat.append(now - sent)
                else:
                    self._control(bytes(buf[body + 2 : stop]))
            elif opcode == 9:  # ping: answer with a pong carrying the same data
                payload = bytes(buf[body:stop])
                assert self.transport is not None
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
            elif opcode == 8:
                self.sending = False
            pos = stop
        del buf[:pos]
        stats.delivered_sent_in_window += on_time
        if in_window:
            stats.received_in_window += received
            stats.bytes_in_window += nbytes

    def _control(self, body: bytes) -> None:
        msg = decode_relay(body)
        if isinstance(msg, Joined):
            self.joined.set_result(msg)
        elif isinstance(msg, KeyframeWanted):
            self.stats.keyframe_requests += 1
            self.want_keyframe = True

    # -- sending

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.sending = True
        loop.call_later(random.random() / VIDEO_FPS, self._video, loop)
        loop.call_later(random.random() / AUDIO_FPS, self._audio, loop)

    def _count_sent(self, now: int) -> None:
        start, end = self.stats.window
        if start <= now < end:
            self.stats.sent_in_window += 1

    def _video(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.sending:
            return
        loop.call_later(1 / VIDEO_FPS, self._video, loop)
        self.video_count += 1
        keyframe = self.want_keyframe or self.video_count % KEYFRAME_EVERY == 0
        self.want_keyframe = False
        now = time.monotonic_ns()
        self.send(encode_media(StreamKind.video, keyframe, now.to_bytes(8, "big") + self.block))
        self._count_sent(now)

    def _audio(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.sending:
            return
        loop.call_later(1 / AUDIO_FPS, self._audio, loop)
        now = time.monotonic_ns()
        sframe = now.to_bytes(8, "big") + self.block[: AUDIO_BYTES - 8]
        self.send(encode_media(StreamKind.audio, False, sframe))
        self._count_sent(now)


async def load(n: int, port: int, relay_pid: int, seconds: float, warmup: float) -> dict[str, Any]:
    """Run the meeting; return the measurements of the window."""
    loop = asyncio.get_running_loop()
    stats = Stats(window=(2**62, 2**62))
    token = os.urandom(32)
    room = room_id_for_token(token)
    people: list[Participant] = []
    for i in range(n):
        # Each participant from its own loopback address (Linux: all of 127/8 is loopback),
        # as real participants are: the relay's per-address caps stay at their defaults.
        source = (f"127.0.{1 + i // 250}.{1 + i % 250}", 0)
        _, p = await loop.create_connection(
            functools.partial(Participant, i, "127.0.0.1", port, stats),
            "127.0.0.1",
            port,
            local_addr=source,
        )
        await p.upgraded
        p.send(encode(Enter(room=room, token=token)))
        await asyncio.wait_for(p.joined, 10)
        people.append(p)
    for p in people:
        p.start(loop)
    await asyncio.sleep(warmup)
    t0 = time.monotonic_ns()
    stats.window = (t0, t0 + int(seconds * 1e9))
    relay0, self0 = cpu_seconds(relay_pid), time.process_time()
    await asyncio.sleep(seconds)
    relay1, self1 = cpu_seconds(relay_pid), time.process_time()
    t1 = time.monotonic_ns()
    for p in people:
        p.sending = False
    await asyncio.sleep(1.0)  # let frames sent near the end of the window arrive
    for p in people:
        if p.transport is not None:
            p.transport.close()
    elapsed = (t1 - t0) / 1e9
    lat = sorted(stats.latencies)
    expected = stats.sent_in_window * (n - 1)
    delivered = stats.received_in_window
    return {
        "n": n,
        "fps": delivered / elapsed,
        "mbps": stats.bytes_in_window / elapsed / 1e6,
        "ratio": stats.delivered_sent_in_window / expected if expected else 0.0,
        "cpu_us": (relay1 - relay0) / delivered * 1e6 if delivered else float("nan"),
        "relay_cpu": (relay1 - relay0) / elapsed,
        "gen_cpu": (self1 - self0) / elapsed,
        "p50_ms": lat[len(lat) // 2] / 1e6 if lat else float("nan"),
        "p99_ms": lat[int(len(lat) * 0.99)] / 1e6 if lat else float("nan"),
        "keyframe_requests": stats.keyframe_requests,
    }


def worker_main(args: argparse.Namespace) -> None:
    import uvloop

    result = uvloop.run(load(args.worker, args.port, args.relay_pid, args.seconds, args.warmup))
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------- orchestration


def _pin(cpu: int) -> Any:
    def pin() -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})

    return pin


def run_one(n: int, seconds: float, warmup: float) -> dict[str, Any]:
    relay = subprocess.Popen(
        [sys.executable, "-m", "clave.relay", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_pin(0),
    )
    try:
        assert relay.stdout is not None
        line = relay.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"relay did not start: {line!r}")
        port = int(line.split()[-1])
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                str(n),
                "--port",
                str(port),
                "--relay-pid",
                str(relay.pid),
                "--seconds",
                str(seconds),
                "--warmup",
                str(warmup),
            ],
            capture_output=True,
            text=True,
            preexec_fn=_pin(1),
            timeout=seconds + warmup + 60,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
    finally:
        relay.terminate()
        relay.wait(5)


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| N | delivered frames/s | MB/s | delivered | relay µs/frame | relay CPU "
        "| p50 ms | p99 ms | generator CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['n']} | {r['fps']:,.0f} | {r['mbps']:.1f} | {r['ratio'] * 100:.2f} % "
            f"| {r['cpu_us']:.1f} | {r['relay_cpu'] * 100:.0f} % | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['gen_cpu'] * 100:.0f} % |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5,10,20,25", help="participant counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per size")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--scenario",
        default="mesh",
        help="mesh (everyone to everyone at --sizes), large (last-n and audio-1000), or "
        "comma-separated: last-n, audio-N (N members, 3 speakers), audio-NxK (K speakers)",
    )
    parser.add_argument("--plot", type=Path, help="large scenarios: a PNG of µs/frame by N")
    parser.add_argument("--rounds", type=int, default=1, help="large scenarios: runs per server")
    parser.add_argument("--json", type=Path, help="also write the large scenarios' rows here")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--relay-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return
    if args.scenario != "mesh":
        large(args)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(
        f"relay benchmark: {VIDEO_BYTES // 1000} KB video at {VIDEO_FPS} fps + "
        f"{AUDIO_BYTES} B audio at {AUDIO_FPS} fps per participant, "
        f"{args.seconds:g} s windows, {os.cpu_count()} CPUs (relay on CPU 0, load on CPU 1)\n",
        flush=True,
    )
    results = []
    for n in sizes:
        results.append(run_one(n, args.seconds, args.warmup))
        print(f"  N={n} done", file=sys.stderr, flush=True)
    print(table(results))
    goal = [r for r in results if r["n"] == GOAL_N]
    if goal:
        r = goal[0]
        met = r["ratio"] >= GOAL_RATIO and r["p99_ms"] < GOAL_P99_MS and r["relay_cpu"] < 1.0
        print(
            f"\ngoal (N={GOAL_N} in real time on one core: >= {GOAL_RATIO:.0%} delivered, "
            f"p99 < {GOAL_P99_MS:g} ms): {'MET' if met else 'NOT MET'}"
        )


def large(args: argparse.Namespace) -> None:
    """The large-meeting scenarios, each against the relay and the bare baseline."""
    import _relay_scale as scale

    names = ["last-n", "audio-1000"] if args.scenario == "large" else args.scenario.split(",")
    for name in names:
        scale.scenario_named(name)  # fail early on a bad name
    print(
        f"relay at scale: {', '.join(names)}; {args.seconds:g} s windows, "
        f"{os.cpu_count()} CPUs (server on CPU 0, load on CPU 1)\n",
        flush=True,
    )
    rows = scale.run_scenarios(names, args.seconds, args.warmup, args.rounds)
    print(scale.table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.plot is not None:
        scale.plot(rows, args.plot)
    for row in rows:
        relay = row["relay"]
        full = relay["min_ratio"] >= GOAL_RATIO and relay["p99_ms"] < GOAL_P99_MS
        print(
            f"\n{row['scenario']}: {row['streams']:,} consumer streams "
            f"{'' if full else 'NOT '}delivered in real time (worst receiver "
            f"{relay['min_ratio']:.1%}, p99 {relay['p99_ms']:.0f} ms); "
            f"{row['relay_streams_per_core']:,.0f} streams per "
            f"relay core (goal >= {scale.GOAL_STREAMS:,}: "
            f"{'MET' if row['relay_streams_per_core'] >= scale.GOAL_STREAMS else 'NOT MET'}); "
            f"relay CPU per frame {row['cpu_ratio']:.2f}x bare (goal <= {scale.GOAL_RATIO:g}x: "
            f"{'MET' if row['cpu_ratio'] <= scale.GOAL_RATIO else 'NOT MET'})"
        )


if __name__ == "__main__":
    main()
