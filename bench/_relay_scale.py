"""Large-meeting scenarios of ``bench/relay.py``: the relay next to a bare aiohttp fan-out.

* ``last-n``: one room of 100. Every camera is on (180p: 1 KB deltas at 30 fps, a 6 KB
  keyframe every 2 s); the 10 most recent speakers are on stage and each participant
  subscribes (``Subscribe(video_from=...)``) to 9 of them, not itself. 3 speakers send
  audio (60 B at 50 packets/s), everyone else is muted (DTX: nothing sent), and all
  audio goes to everyone.
* ``audio-N`` (``audio-1000`` in ``--scenario large``): one room of N, audio only: 3
  speakers (``audio-NxK``: K), everyone else silent, everyone receives the speakers.

The server (the relay, ``python -m clave.relay``, or the baseline
``bench/_relay_bare.py``) runs alone on CPU 0; one load generator process on CPU 1
holds every participant (a raw WebSocket client each, from its own loopback address)
and counts, per receiver, the frames it gets whose send time is in the measured
window, against what its subscriptions make it owed.

A **consumer stream** is one sender's stream delivered to one receiver. Streams per
core: the streams delivered divided by the share of a core the server used for them
(delivered frames per CPU second over the frame rate of a stream). "others on CPU 0"
is what other processes took of the server's core during the window (/proc/stat):
the machine may be shared, so with ``--rounds`` the least disturbed round counts.

``BENCH_RELAY_PROFILE=DIR`` runs the relay under cProfile and leaves
``DIR/relay-SCENARIO.prof``.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import functools
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from clave.wire import (
    Enter,
    Joined,
    KeyframeWanted,
    StreamKind,
    Subscribe,
    decode_relay,
    encode,
    encode_media,
    room_id_for_token,
)

VIDEO_DELTA = 1_000
VIDEO_KEY = 6_000
VIDEO_FPS = 30
KEYFRAME_EVERY = 2 * VIDEO_FPS
AUDIO_BYTES = 60
AUDIO_FPS = 50
MEDIA = 0x4D
GOAL_STREAMS = 2000
GOAL_RATIO = 1.5
CLK_TCK = os.sysconf("SC_CLK_TCK")
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Scenario:
    name: str
    members: int
    cameras: int
    """Participants 0 .. cameras-1 send video."""
    stage: int
    """Participants 0 .. stage-1 are the video others subscribe to."""
    watch: int
    """Videos each participant subscribes to (of the stage, never its own)."""
    speakers: int
    """Participants 0 .. speakers-1 send audio."""

    def watched(self, r: int) -> list[int]:
        """The stage members participant ``r`` subscribes to."""
        others = [s for s in range(self.stage) if s != r]
        if not others:
            return []
        k = r % len(others)
        return (others[k:] + others[:k])[: self.watch]

    def streams(self) -> int:
        """Consumer streams owed: per receiver, the videos it watches and the speakers."""
        return sum(
            len(self.watched(r)) + sum(1 for s in range(self.speakers) if s != r)
            for r in range(self.members)
        )


LAST_N = Scenario("last-n", members=100, cameras=100, stage=10, watch=9, speakers=3)


def scenario_named(name: str) -> Scenario:
    """``last-n``, or ``audio-N`` (N members, 3 speakers) or ``audio-NxK`` (K speakers)."""
    if name == LAST_N.name:
        return LAST_N
    kind, _, size = name.partition("-")
    members, _, speakers = size.partition("x")
    if kind != "audio" or not members.isdigit() or not (speakers or "3").isdigit():
        raise ValueError(f"no scenario {name!r}: last-n, audio-N or audio-NxK")
    return Scenario(name, int(members), cameras=0, stage=0, watch=0, speakers=int(speakers or 3))


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


def core_busy(cpu: int) -> float:
    """Seconds CPU ``cpu`` has been busy (not idle, not waiting for I/O), from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            ticks = [int(x) for x in line.split()[1:]]
            return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --------------------------------------------------------------- load generator


class Window:
    """The measured window [start, end) in monotonic ns, shared by all clients."""

    def __init__(self) -> None:
        self.start = self.end = 2**62
        self.latencies: array.array[int] = array.array("q")
        self.received = 0
        """Media frames received during the window (by receive time)."""
        self.keyframe_requests = 0


class Client(asyncio.Protocol):
    """One participant: a raw WebSocket client that sends on timers and counts what it gets."""

    def __init__(
        self, index: int, port: int, bare: bool, scenario: Scenario, window: Window
    ) -> None:
        loop = asyncio.get_running_loop()
        self.index = index
        self.port = port
        self.bare = bare
        self.window = window
        self.camera = index < scenario.cameras
        self.speaker = index < scenario.speakers
        self.transport: asyncio.Transport | None = None
        self.upgraded: asyncio.Future[None] = loop.create_future()
        self.ready: asyncio.Future[int] = loop.create_future()
        """The connection id (relay) or the index (bare) once admitted."""
        self.buf = bytearray()
        self.handshake_done = False
        self.block = os.urandom(VIDEO_KEY)
        self.want_keyframe = True
        self.video_count = 0
        self.sending = False
        self.sent_video = 0
        self.sent_audio = 0
        """Frames sent whose send time is in the window."""
        self.got = 0
        """Frames received whose send time is in the window."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tr = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        tr.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.sending = False
        for fut in (self.upgraded, self.ready):
            if not fut.done():
                fut.set_exception(ConnectionError("server closed the connection"))

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(ws_client_frame(payload))

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
        now = time.monotonic_ns()
        window = self.window
        start, end = window.start, window.end
        lat = window.latencies
        size = len(buf)
        pos = received = got = 0
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
            if opcode == 2 and length > 15 and buf[body + 1] == MEDIA:
                received += 1
                sent = int.from_bytes(buf[body + 7 : body + 15], "big")
                if start <= sent < end:
                    got += 1
                    lat.append(now - sent)
            elif opcode == 2:
                self._control(bytes(buf[body:stop]))
            elif opcode == 9:  # ping: answer with a pong carrying the same data
                payload = bytes(buf[body:stop])
                assert self.transport is not None
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
            elif opcode == 8:
                self.sending = False
            pos = stop
        del buf[:pos]
        self.got += got
        if start <= now < end:
            window.received += received

    def _control(self, data: bytes) -> None:
        if self.bare:
            if data == b"ok":
                self.ready.set_result(self.index)
            return
        if self.ready.done() and not self.camera:
            return  # presence and the like: nothing this participant acts on
        msg = decode_relay(data[2:])
        if isinstance(msg, Joined):
            self.ready.set_result(msg.conn)
        elif isinstance(msg, KeyframeWanted):
            self.window.keyframe_requests += 1
            self.want_keyframe = True

    # -- sending

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.sending = True
        now = loop.time()  # random phases: senders are not in step
        if self.camera:
            due = now + random.random() / VIDEO_FPS
            loop.call_at(due, self._video, loop, due)
        if self.speaker:
            due = now + random.random() / AUDIO_FPS
            loop.call_at(due, self._audio, loop, due)

    def _video(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if not self.sending:
            return
        # On a fixed schedule: a late timer does not lower the rate (the next one is sooner).
        due += 1 / VIDEO_FPS
        loop.call_at(due, self._video, loop, due)
        self.video_count += 1
        keyframe = self.want_keyframe or self.video_count % KEYFRAME_EVERY == 0
        self.want_keyframe = False
        now = time.monotonic_ns()
        size = VIDEO_KEY if keyframe else VIDEO_DELTA
        self.send(
            encode_media(StreamKind.video, keyframe, now.to_bytes(8, "big") + self.block[:size])
        )
        if self.window.start <= now < self.window.end:
            self.sent_video += 1

    def _audio(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if not self.sending:
            return
        due += 1 / AUDIO_FPS
        loop.call_at(due, self._audio, loop, due)
        now = time.monotonic_ns()
        self.send(
            encode_media(StreamKind.audio, False, now.to_bytes(8, "big") + self.block[:AUDIO_BYTES])
        )
        if self.window.start <= now < self.window.end:
            self.sent_audio += 1


async def _admit(client: Client, bare: bool, room: str, token: bytes, watch: list[int]) -> int:
    await client.upgraded
    if bare:
        client.send(json.dumps({"id": client.index, "watch": watch}).encode())
    else:
        client.send(encode(Enter(room=room, token=token)))
    return await asyncio.wait_for(client.ready, 30)


async def load(
    scenario: Scenario, bare: bool, port: int, server_pid: int, seconds: float, warmup: float
) -> dict[str, Any]:
    """Run one scenario against one server; the measurements of its window."""
    loop = asyncio.get_running_loop()
    window = Window()
    token = os.urandom(32)
    room = room_id_for_token(token)
    clients: list[Client] = []
    ids: list[int] = []
    t_join = time.monotonic()
    batch = 50
    for first in range(0, scenario.members, batch):
        made = []
        for i in range(first, min(first + batch, scenario.members)):
            source = (f"127.0.{1 + i // 250}.{1 + i % 250}", 0)
            _, c = await loop.create_connection(
                functools.partial(Client, i, port, bare, scenario, window),
                "127.0.0.1",
                port,
                local_addr=source,
            )
            made.append(c)
        # The bare server learns subscriptions by number at once; the relay by connection
        # id, once everybody is in (below).
        watches = [scenario.watched(c.index) if bare else [] for c in made]
        ids += await asyncio.gather(
            *(_admit(c, bare, room, token, w) for c, w in zip(made, watches, strict=True))
        )
        clients += made
    if not bare and scenario.watch:
        for c in clients:
            c.send(encode(Subscribe(video_from=[ids[s] for s in scenario.watched(c.index)])))
    join_s = time.monotonic() - t_join
    for c in clients:
        c.start(loop)
    await asyncio.sleep(warmup)
    t0 = time.monotonic_ns()
    window.start, window.end = t0, t0 + int(seconds * 1e9)
    server0, self0, core0 = cpu_seconds(server_pid), time.process_time(), core_busy(0)
    await asyncio.sleep(seconds)
    server1, self1, core1 = cpu_seconds(server_pid), time.process_time(), core_busy(0)
    t1 = time.monotonic_ns()
    received = window.received
    for c in clients:
        c.sending = False
    await asyncio.sleep(1.5)  # let frames sent near the end of the window arrive
    for c in clients:
        if c.transport is not None:
            c.transport.close()
    elapsed = (t1 - t0) / 1e9
    ratios = []
    owed_total = got_total = 0
    for c in clients:
        owed = sum(clients[s].sent_video for s in scenario.watched(c.index))
        owed += sum(clients[s].sent_audio for s in range(scenario.speakers) if s != c.index)
        owed_total += owed
        got_total += c.got
        if owed:
            ratios.append(c.got / owed)
    lat = sorted(window.latencies)
    cpu = server1 - server0
    return {
        "scenario": scenario.name,
        "server": "bare" if bare else "relay",
        "members": scenario.members,
        "streams": scenario.streams(),
        "join_s": join_s,
        "fps": received / elapsed,
        "owed": owed_total,
        "got": got_total,
        "ratio": got_total / owed_total if owed_total else 0.0,
        "min_ratio": min(ratios) if ratios else 0.0,
        "cpu": cpu / elapsed,
        "cpu_us": cpu / received * 1e6 if received else float("nan"),
        "gen_cpu": (self1 - self0) / elapsed,
        "others_cpu0": max(0.0, (core1 - core0) - cpu) / elapsed,
        "p50_ms": lat[len(lat) // 2] / 1e6 if lat else float("nan"),
        "p99_ms": lat[int(len(lat) * 0.99)] / 1e6 if lat else float("nan"),
        "keyframe_requests": window.keyframe_requests,
    }


# --------------------------------------------------------------- orchestration


def _pin(cpu: int) -> Any:
    def pin() -> None:
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})

    return pin


def run_one(scenario: Scenario, bare: bool, seconds: float, warmup: float) -> dict[str, Any]:
    """Start the server on CPU 0 and the load generator on CPU 1; return the measurements."""
    if bare:
        cmd = [sys.executable, str(HERE / "_relay_bare.py")]
    else:
        profile = os.environ.get("BENCH_RELAY_PROFILE")  # a directory: cProfile the relay
        cmd = [sys.executable]
        if profile:
            cmd += ["-m", "cProfile", "-o", f"{profile}/relay-{scenario.name}.prof"]
        cmd += ["-m", "clave.relay", "--port", "0"]
        cmd += ["--set", f"max_conns_per_room={max(100, scenario.members)}"]
    server = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=_pin(0)
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"server did not start: {line!r}")
        port = int(line.split()[-1])
        args = ["--scenario", scenario.name, "--port", str(port), "--server-pid", str(server.pid)]
        args += ["--seconds", str(seconds), "--warmup", str(warmup)] + (["--bare"] if bare else [])
        out = subprocess.run(
            [sys.executable, __file__, *args],
            capture_output=True,
            text=True,
            preexec_fn=_pin(1),
            timeout=seconds + warmup + 120,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
    finally:
        server.terminate()
        server.wait(120)


def frame_rate(scenario: Scenario) -> float:
    """Frames per second of an average consumer stream of ``scenario``."""
    video = sum(len(scenario.watched(r)) for r in range(scenario.members))
    audio = scenario.streams() - video
    return (video * VIDEO_FPS + audio * AUDIO_FPS) / scenario.streams()


def summary(relay: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    """One scenario's row: streams per core and the relay's CPU per frame against bare."""
    rate = frame_rate(scenario_named(relay["scenario"]))
    return {
        "scenario": relay["scenario"],
        "members": relay["members"],
        "streams": relay["streams"],
        "relay": relay,
        "bare": bare,
        "relay_streams_per_core": 1e6 / relay["cpu_us"] / rate,
        "bare_streams_per_core": 1e6 / bare["cpu_us"] / rate,
        "cpu_ratio": relay["cpu_us"] / bare["cpu_us"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | server | consumer streams | delivered (min receiver) | frames/s "
        "| server CPU | µs/frame | streams per core | p50 / p99 ms | generator CPU "
        "| others on CPU 0 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for server in ("relay", "bare"):
            r = row[server]
            lines.append(
                f"| {row['scenario']} ({row['members']}) | {server} | {row['streams']:,} "
                f"| {r['ratio'] * 100:.2f} % ({r['min_ratio'] * 100:.1f} %) | {r['fps']:,.0f} "
                f"| {r['cpu'] * 100:.0f} % | {r['cpu_us']:.2f} "
                f"| {row[server + '_streams_per_core']:,.0f} "
                f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} | {r['gen_cpu'] * 100:.0f} % "
                f"| {r['others_cpu0'] * 100:.0f} % |"
            )
    lines.append("")
    lines.append("| scenario | relay µs/frame ÷ bare µs/frame |")
    lines.append("|---|---:|")
    for row in rows:
        lines.append(f"| {row['scenario']} | {row['cpu_ratio']:.2f} |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """µs of server CPU per delivered frame against members, relay and bare (audio rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    audio = sorted(
        (r for r in rows if r["scenario"].startswith("audio-")), key=lambda r: r["members"]
    )
    if not audio:
        return
    n = [r["members"] for r in audio]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for server, style in (("relay", "o-"), ("bare", "s--")):
        left.plot(n, [r[server]["cpu_us"] for r in audio], style, label=server)
    left.set_xlabel("members (3 speaking)")
    left.set_ylabel("server CPU µs per delivered frame")
    left.set_ylim(bottom=0)
    left.legend()
    right.plot(n, [r["relay_streams_per_core"] for r in audio], "o-", label="relay")
    right.plot(n, [r["bare_streams_per_core"] for r in audio], "s--", label="bare")
    right.axhline(GOAL_STREAMS, color="grey", linestyle=":", label="goal")
    right.set_xlabel("members (3 speaking)")
    right.set_ylabel("consumer streams per core")
    right.set_ylim(bottom=0)
    right.legend()
    fig.suptitle("Audio-only meeting on one core: the relay against a bare aiohttp fan-out")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def run_scenarios(
    names: list[str], seconds: float, warmup: float, rounds: int = 1
) -> list[dict[str, Any]]:
    """Each scenario against the relay and the bare baseline, ``rounds`` times each in
    alternating order; per server, the round in which other processes took the least of
    CPU 0 counts (on a shared machine, the least disturbed round)."""
    rows = []
    for name in names:
        chosen = scenario_named(name)
        print(f"  {name}: {asdict(chosen)}", file=sys.stderr, flush=True)
        runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        for k in range(rounds):
            for bare in (False, True) if k % 2 == 0 else (True, False):
                result = run_one(chosen, bare, seconds, warmup)
                runs[bare].append(result)
                print(f"    {json.dumps(result)}", file=sys.stderr, flush=True)
        relay, bare_best = (min(runs[b], key=lambda r: r["others_cpu0"]) for b in (False, True))
        row = summary(relay, bare_best)
        row["runs"] = runs[False] + runs[True]
        rows.append(row)
    return rows


def worker_main() -> None:
    import uvloop

    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", type=scenario_named, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup", type=float, required=True)
    parser.add_argument("--bare", action="store_true")
    a = parser.parse_args()
    result = uvloop.run(load(a.scenario, a.bare, a.port, a.server_pid, a.seconds, a.warmup))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    worker_main()
