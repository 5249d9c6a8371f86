"""Relay cluster benchmark: relay nodes joined through a real NATS server.

    .venv/bin/python bench/cluster.py [--quick] [--plot docs/img/cluster-throughput.png]

Starts ``nats-server`` (JetStream on) on a random port of 127.0.0.1, and relay nodes as
separate processes (``python -m clave.cli serve --port 0 --nats URL``: an event loop
each). All participants are raw WebSocket clients of the relay protocol in this process
(uvloop): each enters its room (``Enter`` with the room's token, the same on every node)
and waits for ``Joined``. Media frames are audio envelopes whose payload starts with
the send time (CLOCK_MONOTONIC, ns). Nothing is pinned to a core.

1. **Latency**: two nodes, one room: a sender on node A (200 B frames at 100/s), a
   receiver on A and one on B. One-way delay (send to receive) p50/p95 per receiver,
   and what the cross-node path adds: client -> A's room -> A's outbox for B -> NATS
   subject ``clave.node.<slot>`` -> B -> the receiver's queue.
2. **Throughput**: 1, 2 and 3 nodes, the same load per node (default 16 meetings of 6
   per node, everyone sending 120 B audio at 50/s to everyone else): participants
   spread round-robin across the nodes ("split"), and for comparison at 2 and 3 nodes
   each meeting whole on one node ("whole"). Over a fixed window: frames delivered per
   second in all and per node (receivers counted on the node they are connected to),
   delivered / owed, each process's CPU, and node CPU per delivered frame. All
   processes share this machine's cores, so what is delivered shows only that they kept
   up; capacity is projected as "delivered frames per node CPU second x nodes": what n
   nodes on n dedicated cores would carry at the cost per frame measured here.
3. **Meeting size**: meetings of 4, 6, 12 and 24 at about the same deliveries per node
   (``SWEEP_DELIVERIES``), each on 1 node, split over 2 and whole on 2: how the 1 -> 2
   nodes projection for split meetings depends on how many receivers a frame that
   crosses nodes has there.

``BENCH_CLUSTER_PROFILE=DIR`` runs the nodes under cProfile (``DIR/<run>-node<k>.prof``).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import datetime
import json
import math
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from _relay_scale import cpu_seconds, ws_client_frame
from clave.wire import Enter, Joined, StreamKind, decode_relay, encode, encode_media
from clave.wire import room_id_for_token as room_id

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
LISTENING = re.compile(r"relay listening on http://127\.0\.0\.1:(\d+)")
MEDIA = 0x4D
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROBE_BYTES, PROBE_RATE = 200, 100.0
AUDIO_BYTES, AUDIO_RATE = 120, 50.0
GOAL_ADDED_P50_MS = 2.0
GOAL_SCALE = 1.7
NODE_COUNTS = (1, 2, 3)
SWEEP_SIZES = (4, 6, 12, 24)
SWEEP_DELIVERIES = 24_000
"""Deliveries per second owed per node in the meeting-size sweep (about)."""


# --------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Nats:
    """``nats-server -js`` on a free port of 127.0.0.1, its store and log in ``workdir``,
    with its monitoring endpoint (message counts) on another."""

    def __init__(self, workdir: Path) -> None:
        self.port, self.http_port = _free_port(), _free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.log = (workdir / "nats.log").open("wb")
        cmd = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.http_port)]
        cmd += ["-js", "-sd", str(workdir)]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock,
            ):
                if sock.recv(4) == b"INFO":
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not start (log: {workdir / 'nats.log'})")

    def messages_in(self) -> int:
        """Messages the server has received from its clients so far (``/varz``)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/varz", timeout=5) as r:
            count: int = json.load(r)["in_msgs"]
            return count

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@dataclass
class Node:
    """One relay node process (``clave serve --nats``) and its port."""

    proc: subprocess.Popen[str]
    log: IO[str]
    port: int = 0


def start_nodes(n: int, nats_url: str, workdir: Path, run: str) -> list[Node]:
    """Launch ``n`` nodes at once; return them once each prints its listening line."""
    nodes = []
    profile = os.environ.get("BENCH_CLUSTER_PROFILE")  # a directory: cProfile the nodes
    for k in range(n):
        cmd = [sys.executable]
        if profile:
            cmd += ["-m", "cProfile", "-o", f"{profile}/{run}-node{k}.prof"]
        cmd += ["-m", "clave.cli", "serve", "--port", "0", "--nats", nats_url]
        log = (workdir / f"{run}-node{k}.log").open("w")
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True
        )
        nodes.append(Node(proc, log))
    try:
        for node in nodes:
            assert node.proc.stdout is not None
            match = LISTENING.search(node.proc.stdout.readline())
            if match is None:
                raise RuntimeError(f"relay node did not start (log: {node.log.name})")
            node.port = int(match.group(1))
    except BaseException:
        stop_nodes(nodes)
        raise
    return nodes


def stop_nodes(nodes: list[Node]) -> None:
    for node in nodes:
        node.proc.terminate()
    for node in nodes:
        try:
            node.proc.wait(10)
        except subprocess.TimeoutExpired:
            tail = Path(node.log.name).read_text()[-2000:]
            print(f"  a node did not stop in 10 s, killed; its log ends:\n{tail}", file=sys.stderr)
            node.proc.kill()
            node.proc.wait()
        node.log.close()


def machine_busy() -> float:
    """CPU seconds all cores have been busy (not idle or waiting for I/O), /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK


# --------------------------------------------------------------- clients


class Window:
    """The measured window [start, end) in monotonic ns, shared by a run's clients."""

    def __init__(self) -> None:
        self.start = self.end = 2**62


class Client(asyncio.Protocol):
    """A raw WebSocket participant: sends audio on a fixed schedule, times what it gets."""

    def __init__(self, port: int, window: Window, size: int, rate: float) -> None:
        loop = asyncio.get_running_loop()
        self.port = port
        self.window = window
        self.filler = os.urandom(size - 8)
        self.period = 1 / rate
        self.transport: asyncio.Transport | None = None
        self.upgraded: asyncio.Future[None] = loop.create_future()
        self.joined: asyncio.Future[Joined] = loop.create_future()
        self.slot = -1
        """This connection's node slot (its id's top byte): tells same-node senders."""
        self.buf = bytearray()
        self.handshake_done = False
        self.sending = False
        self.sent = 0
        """Frames sent with a send time in the window."""
        self.got = 0
        """Frames received with a send time in the window."""
        self.received = 0
        """Frames received during the window (by receive time)."""
        self.lat_same: array.array[int] = array.array("q")
        self.lat_cross: array.array[int] = array.array("q")
        """Delays (ns) of frames sent in the window, from same-node and other-node senders."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.sending = False
        for fut in (self.upgraded, self.joined):
            if not fut.done():
                fut.set_exception(ConnectionError("relay closed the connection"))

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
        start, end = self.window.start, self.window.end
        size = len(buf)
        pos = received = 0
        while size - pos >= 2:
            length, head = buf[pos + 1] & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            body = pos + head
            stop = body + length
            if stop > size:
                break
            opcode = buf[pos] & 0x0F
            if opcode == 2 and length > 15 and buf[body + 1] == MEDIA:
                received += 1
                sent = int.from_bytes(buf[body + 7 : body + 15], "big")
                if start <= sent < end:
                    self.got += 1
                    same = buf[body + 3] == self.slot  # sender id's top byte: its node
                    (self.lat_same if same else self.lat_cross).append(now - sent)
            elif opcode == 2 and not self.joined.done():
                msg = decode_relay(bytes(buf[body + 2 : stop]))
                if isinstance(msg, Joined):
                    self.slot = msg.conn >> 24
                    self.joined.set_result(msg)
            elif opcode == 9:  # ping: answer with a pong carrying the same data
                pong = bytes(buf[body:stop])
                assert self.transport is not None
                self.transport.write(bytes((0x8A, 0x80 | len(pong))) + b"\0\0\0\0" + pong)
            pos = stop
        del buf[:pos]
        if start <= now < end:
            self.received += received

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.sending = True
        due = loop.time() + random.random() * self.period  # senders are not in step
        loop.call_at(due, self._tick, loop, due)

    def _tick(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if not self.sending:
            return
        due += self.period  # a fixed schedule: a late timer does not lower the rate
        loop.call_at(due, self._tick, loop, due)
        now = time.monotonic_ns()
        self.send(encode_media(StreamKind.audio, False, now.to_bytes(8, "big") + self.filler))
        if self.window.start <= now < self.window.end:
            self.sent += 1

    def close(self) -> None:
        self.sending = False
        if self.transport is not None:
            self.transport.close()


async def join(
    port: int, index: int, token: bytes, window: Window, size: int, rate: float
) -> Client:
    """Connect from loopback address number ``index`` (the relay's per-address caps stay
    at their defaults), enter the room of ``token`` and wait for ``Joined``."""
    loop = asyncio.get_running_loop()
    source = (f"127.0.{1 + index // 250}.{1 + index % 250}", 0)
    _, client = await loop.create_connection(
        lambda: Client(port, window, size, rate), "127.0.0.1", port, local_addr=source
    )
    await asyncio.wait_for(client.upgraded, 10)
    client.send(encode(Enter(room=room_id(token), token=token)))
    await asyncio.wait_for(client.joined, 30)
    return client


def percentile(values: list[int], q: float) -> float:
    """The ``q`` quantile of sorted ns values, in ms (nan if none)."""
    return values[min(len(values) - 1, int(len(values) * q))] / 1e6 if values else float("nan")


# --------------------------------------------------------------- 1. latency


async def latency_run(ports: list[int], seconds: float, warmup: float) -> dict[str, Any]:
    """A sender and a receiver on node A, a receiver on node B; their delays."""
    loop = asyncio.get_running_loop()
    window, token = Window(), os.urandom(32)
    sender, same, cross = [
        await join(port, i, token, window, PROBE_BYTES, PROBE_RATE)
        for i, port in enumerate((ports[0], ports[0], ports[1]))
    ]
    sender.start(loop)
    await asyncio.sleep(warmup)
    window.start = time.monotonic_ns()
    window.end = window.start + int(seconds * 1e9)
    await asyncio.sleep(seconds + 0.5)  # and let the last frames arrive
    for client in (sender, same, cross):
        client.close()
    out: dict[str, Any] = {"sent": sender.sent}
    for name, client, lat in (("same", same, same.lat_same), ("cross", cross, cross.lat_cross)):
        values = sorted(lat)
        out[name] = {
            "got": client.got,
            "p50": percentile(values, 0.5),
            "p95": percentile(values, 0.95),
            "p99": percentile(values, 0.99),
        }
    out["added_p50"] = out["cross"]["p50"] - out["same"]["p50"]
    out["added_p95"] = out["cross"]["p95"] - out["same"]["p95"]
    return out


# --------------------------------------------------------------- 2. throughput


@dataclass
class Load:
    rooms_per_node: int
    size: int
    seconds: float
    warmup: float


@dataclass
class Procs:
    """What a throughput run watches: the nodes' pids and the NATS server."""

    nodes: list[int]
    nats: Nats


async def throughput_run(ports: list[int], procs: Procs, load: Load, split: bool) -> dict[str, Any]:
    """``load.rooms_per_node`` x nodes meetings of ``load.size``: participants round-robin
    on the nodes (``split``), or each room whole on one node (rooms round-robin)."""
    loop = asyncio.get_running_loop()
    n = len(ports)
    window = Window()
    rooms: list[list[tuple[int, Client]]] = []
    for r in range(load.rooms_per_node * n):
        token = os.urandom(32)
        members = []
        for i in range(load.size):
            j = r * load.size + i
            k = j % n if split else r % n
            client = await join(ports[k], j, token, window, AUDIO_BYTES, AUDIO_RATE)
            members.append((k, client))
        rooms.append(members)
    everyone = [c for members in rooms for _, c in members]
    for client in everyone:
        client.start(loop)
    await asyncio.sleep(load.warmup)

    def cpu() -> list[float]:
        nodes = [cpu_seconds(p) for p in procs.nodes]
        rest = [cpu_seconds(procs.nats.proc.pid), time.process_time(), machine_busy()]
        return [*nodes, *rest, procs.nats.messages_in()]

    window.start = time.monotonic_ns()
    window.end = window.start + int(load.seconds * 1e9)
    before = cpu()
    await asyncio.sleep(load.seconds)
    after = cpu()
    elapsed = (time.monotonic_ns() - window.start) / 1e9
    await asyncio.sleep(1.0)  # let frames sent near the end of the window arrive
    for client in everyone:
        client.close()
    used = [(b - a) / elapsed for a, b in zip(before, after, strict=True)]
    node_cpu, nats_cpu, gen_cpu, busy, msgs = used[:n], *used[n:]
    per_node = [0.0] * n
    owed = got = 0
    for members in rooms:
        sent = sum(c.sent for _, c in members)
        for k, c in members:
            per_node[k] += c.received / elapsed
            owed += sent - c.sent
            got += c.got
    same = sorted(x for c in everyone for x in c.lat_same)
    cross = sorted(x for c in everyone for x in c.lat_cross)
    total = sum(per_node)
    return {
        "nodes": n,
        "placement": "split" if split else "whole",
        "fps": total,
        "per_node": per_node,
        "ratio": got / owed if owed else 0.0,
        "node_cpu": node_cpu,
        "nats_cpu": nats_cpu,
        "nats_msgs": msgs,
        "gen_cpu": gen_cpu,
        "others_cpu": max(0.0, busy - sum(node_cpu) - nats_cpu - gen_cpu),
        "us_per_frame": sum(node_cpu) / total * 1e6 if total else float("nan"),
        "projected": n * total / sum(node_cpu) if sum(node_cpu) else float("nan"),
        "same_p50": percentile(same, 0.5),
        "same_p99": percentile(same, 0.99),
        "cross_p50": percentile(cross, 0.5),
        "cross_p99": percentile(cross, 0.99),
    }


def run_placements(
    nats: Nats, workdir: Path, load: Load, placements: list[tuple[int, bool]], tag: str
) -> list[dict[str, Any]]:
    """One throughput run per (nodes, split) placement, each on fresh nodes."""
    import uvloop

    rows = []
    for n, split in placements:
        placement = "split" if split else "whole"
        nodes = start_nodes(n, nats.url, workdir, f"{tag}{placement}{n}")
        try:
            procs = Procs([x.proc.pid for x in nodes], nats)
            ports = [x.port for x in nodes]
            rows.append(uvloop.run(throughput_run(ports, procs, load, split)))
        finally:
            stop_nodes(nodes)
        print(f"  {tag}{placement} meetings on {n} node(s) done", file=sys.stderr, flush=True)
    return rows


def sweep_rows(nats: Nats, workdir: Path, seconds: float, warmup: float) -> list[dict[str, Any]]:
    """For each meeting size: 1 node, 2 nodes split, 2 nodes whole, at about
    ``SWEEP_DELIVERIES`` deliveries per node; the 1 -> 2 split projections."""
    out = []
    for size in SWEEP_SIZES:
        rooms = max(1, round(SWEEP_DELIVERIES / (size * (size - 1) * AUDIO_RATE)))
        load = Load(rooms, size, seconds, warmup)
        one, split, whole = run_placements(
            nats, workdir, load, [(1, True), (2, True), (2, False)], f"size{size}-"
        )
        out.append(
            {
                "size": size,
                "rooms": rooms,
                "owed": rooms * size * (size - 1) * AUDIO_RATE,
                "one": one,
                "split": split,
                "whole": whole,
                "scale": split["projected"] / one["projected"],
                "scale_whole": 2 * split["projected"] / whole["projected"],
            }
        )
    return out


def sweep_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| meeting size | meetings per node | deliveries/s owed per node | node µs/frame: 1 node "
        "| 2 nodes, whole | 2 nodes, split | NATS msgs/s (split) | frames per NATS msg "
        "| **1 -> 2 nodes, split** | 1 -> 2, split, against whole x 2 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        split = r["split"]
        crossing = split["fps"] / (r["size"] - 1)  # each frame sent crosses to the other node
        lines.append(
            f"| {r['size']} | {r['rooms']} | {r['owed']:,.0f} | {r['one']['us_per_frame']:.1f} "
            f"| {r['whole']['us_per_frame']:.1f} | {split['us_per_frame']:.1f} "
            f"| {split['nats_msgs']:,.0f} "
            f"| {crossing / split['nats_msgs'] if split['nats_msgs'] else 0:.1f} "
            f"| **{r['scale']:.2f}x** | {r['scale_whole']:.2f}x |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------- report


def latency_table(r: dict[str, Any]) -> str:
    lines = [
        "| receiver | frames received / sent | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in (("same", "same node (A)"), ("cross", "other node (B, via NATS)")):
        x = r[name]
        lines.append(
            f"| {label} | {x['got']} / {r['sent']} | {x['p50']:.2f} | {x['p95']:.2f} "
            f"| {x['p99']:.2f} |"
        )
    lines.append(
        f"| **added by the cluster** (B - A) | | **{r['added_p50']:+.2f}** "
        f"| **{r['added_p95']:+.2f}** | |"
    )
    return "\n".join(lines)


def throughput_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| nodes | meetings | delivered frames/s | per node | delivered / owed "
        "| node CPU (each) | node µs/frame | NATS msgs/s | NATS CPU | clients CPU | others "
        "| p50 / p99 ms same node | p50 / p99 ms cross node | projected frames/s, n cores |",
        "|---:|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cross = (
            f"{r['cross_p50']:.1f} / {r['cross_p99']:.1f}"
            if not math.isnan(r["cross_p50"])
            else "-"
        )
        lines.append(
            f"| {r['nodes']} | {r['placement'] if r['nodes'] > 1 else 'one node'} "
            f"| {r['fps']:,.0f} | {' + '.join(f'{x:,.0f}' for x in r['per_node'])} "
            f"| {r['ratio'] * 100:.2f} % "
            f"| {' + '.join(f'{x * 100:.0f} %' for x in r['node_cpu'])} "
            f"| {r['us_per_frame']:.1f} | {r['nats_msgs']:,.0f} | {r['nats_cpu'] * 100:.0f} % "
            f"| {r['gen_cpu'] * 100:.0f} % | {r['others_cpu'] * 100:.0f} % "
            f"| {r['same_p50']:.1f} / {r['same_p99']:.1f} | {cross} "
            f"| {r['projected']:,.0f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path, size: int) -> None:
    """Node CPU per delivered frame, and the capacity it projects, by node count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    one = rows[0]
    n = list(NODE_COUNTS)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for placement, style, label in (
        ("split", "o-", "meetings split across nodes"),
        ("whole", "s--", "each meeting on one node"),
    ):
        chosen = [one] + [r for r in rows[1:] if r["placement"] == placement]
        left.plot(n, [r["us_per_frame"] for r in chosen], style, label=label)
        right.plot(n, [r["projected"] for r in chosen], style, label=label)
    right.plot(n, [one["projected"] * k for k in n], ":", color="grey", label="linear")
    goal = one["projected"] * GOAL_SCALE
    right.plot([2], [goal], "x", color="red", ms=9, label=f"goal: {GOAL_SCALE:g}x at 2")
    left.set_title("measured: the same load per node", fontsize=10)
    left.set_ylabel("node CPU µs per delivered frame")
    right.set_title("projected: n nodes on n dedicated cores", fontsize=10)
    right.set_ylabel("delivered frames/s (n x frames per node CPU s)")
    for ax in (left, right):
        ax.set_xlabel("relay nodes")
        ax.set_xticks(n)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"Relay cluster on NATS: meetings of {size}, each sending "
        f"{AUDIO_BYTES} B audio at {AUDIO_RATE:g}/s"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_sweep(rows: list[dict[str, Any]], path: Path) -> None:
    """The projected 1 -> 2 nodes scaling of split meetings, by meeting size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["size"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(sizes, [r["scale"] for r in rows], "o-", label="split, against 1 node")
    ax.plot(sizes, [r["scale_whole"] for r in rows], "s--", label="split, against 2 x whole")
    ax.axhline(GOAL_SCALE, color="red", ls=":", label=f"goal {GOAL_SCALE:g}x")
    ax.axhline(2.0, color="grey", ls=":", label="linear")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(x) for x in sizes])
    ax.set_xlabel("participants per meeting (half on each node)")
    ax.set_ylabel("projected capacity, 2 nodes / 1 node")
    ax.set_ylim(0, 2.2)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(
        f"Meetings split over 2 relay nodes, ~{SWEEP_DELIVERIES:,} deliveries/s per node",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    import uvloop

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows (a trial run)")
    parser.add_argument("--seconds", type=float, help="measured window per run (default 15)")
    parser.add_argument(
        "--rooms-per-node", type=int, default=16, help="meetings per node (default 16)"
    )
    parser.add_argument("--size", type=int, default=6, help="participants per meeting")
    parser.add_argument(
        "--plot",
        type=Path,
        help="write the throughput plot (PNG) here, and the meeting-size plot beside it",
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the meeting-size sweep")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 15.0)
    warmup = 1.0 if args.quick else 2.0
    load = Load(args.rooms_per_node, args.size, seconds, warmup)
    print(
        f"relay cluster benchmark, {datetime.date.today()}: {os.cpu_count()} CPUs shared by "
        f"nats-server, the relay nodes and the clients (nothing pinned); {seconds:g} s windows"
        f"\n",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="clave-cluster-bench-") as tmp:
        workdir = Path(tmp)
        nats = Nats(workdir)
        try:
            nodes = start_nodes(2, nats.url, workdir, "latency")
            try:
                lat = uvloop.run(latency_run([x.port for x in nodes], seconds, warmup))
            finally:
                stop_nodes(nodes)
            print(f"  latency done ({PROBE_BYTES} B at {PROBE_RATE:g}/s)", file=sys.stderr)
            runs = [(n, True) for n in NODE_COUNTS] + [(n, False) for n in NODE_COUNTS[1:]]
            rows = run_placements(nats, workdir, load, runs, "")
            sizes = [] if args.no_sweep else sweep_rows(nats, workdir, seconds, warmup)
        finally:
            nats.stop()
    print(f"1. one-way delay, one sender on node A ({PROBE_BYTES} B at {PROBE_RATE:g}/s)\n")
    print(latency_table(lat))
    met = lat["added_p50"] <= GOAL_ADDED_P50_MS
    print(
        f"\ngoal (cross-node adds <= {GOAL_ADDED_P50_MS:g} ms at p50): "
        f"{'MET' if met else 'NOT MET'} ({lat['added_p50']:+.2f} ms)\n"
    )
    owed = load.rooms_per_node * load.size * (load.size - 1) * AUDIO_RATE
    print(
        f"2. {load.rooms_per_node} rooms per node x {load.size} participants, each sending "
        f"{AUDIO_BYTES} B audio at {AUDIO_RATE:g}/s to the others ({owed:,.0f} deliveries/s "
        "owed per node); split: participants round-robin on the nodes, whole: rooms "
        "round-robin\n"
    )
    print(throughput_table(rows))
    one = rows[0]
    for r in rows[1:]:
        print(
            f"\n1 -> {r['nodes']} nodes, meetings {r['placement']}: aggregate delivered "
            f"frames/s {r['fps'] / one['fps']:.2f}x measured (the offered load grows with the "
            f"nodes), capacity {r['projected'] / one['projected']:.2f}x projected "
            "(n x delivered frames per node CPU second)",
            end="",
        )
    for n in NODE_COUNTS[1:]:
        apart, together = (
            next(r for r in rows if r["nodes"] == n and r["placement"] == p)
            for p in ("split", "whole")
        )
        extra = (sum(apart["node_cpu"]) - sum(together["node_cpu"])) / apart["nats_msgs"] * 1e6
        print(
            f"\n{n} nodes: splitting the meetings costs the nodes {extra:.0f} µs of CPU per "
            f"NATS message ({apart['nats_msgs']:,.0f} messages/s carry the cross-node frames)",
            end="",
        )
    two = next(r for r in rows if r["nodes"] == 2 and r["placement"] == "split")
    projected = two["projected"] / one["projected"]
    print(
        f"\n\ngoal (>= {GOAL_SCALE:g}x aggregate from 1 to 2 nodes, meetings split): "
        f"{'MET' if projected >= GOAL_SCALE else 'NOT MET'} by projection ({projected:.2f}x); "
        f"not measurable here: nodes, nats-server and clients share {os.cpu_count()} cores"
    )
    if sizes:
        print(
            f"\n\n3. meeting size: about {SWEEP_DELIVERIES:,} deliveries/s owed per node, "
            "1 node against 2 nodes (meetings split, and whole)\n"
        )
        print(sweep_table(sizes))
        met = [r["size"] for r in sizes if r["scale"] >= GOAL_SCALE]
        print(
            f"\ngoal (>= {GOAL_SCALE:g}x from 1 to 2 nodes, split): projected met for meeting "
            f"sizes {met or 'none'} of {list(SWEEP_SIZES)}"
        )
    if args.plot is not None:
        plot(rows, args.plot, load.size)
        print(f"\nplot: {args.plot}")
        if sizes:
            sweep_path = args.plot.with_name("cluster-meeting-size.png")
            plot_sweep(sizes, sweep_path)
            print(f"plot: {sweep_path}")


if __name__ == "__main__":
    main()
