"""Relay nodes as real processes (``clave serve --nats``) and a front door in front of
them, for the cluster tests that kill a node.

:class:`RelayNode` runs one node; :meth:`RelayNode.kill` is SIGKILL (a crash: nothing
is said goodbye to, its slot expires). :class:`FrontDoor` is what a deployment's load
balancer or DNS name is: each engine gets an entrance that prefers one node and, when
that node does not answer, takes the next, so an engine whose node died reconnects to
another through its own reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from e2e_helpers import RecordingParticipant

LISTENING = re.compile(r"relay listening on http://127\.0\.0\.1:(\d+)")


class RelayNode:
    """``clave serve --port 0 --nats URL`` in a process of its own."""

    def __init__(self, nats_url: str, workdir: Path, name: str) -> None:
        self.name = name
        self.log_path = workdir / f"relay-{name}.log"
        self._log = self.log_path.open("w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clave.cli", "serve", "--port", "0", "--nats", nats_url],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.port = self._wait_port()

    def _wait_port(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_path.read_text())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"relay {self.name} did not start:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: the node dies without a word to anybody."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text()


class FrontDoor:
    """Entrances that forward a TCP connection to the first node that accepts it."""

    def __init__(self) -> None:
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.routed: dict[str, list[int]] = {}
        """Entrance label -> the node port each of its connections went to, in order."""

    async def open(self, label: str, ports: list[int]) -> int:
        """An entrance trying ``ports`` in order; its own port."""
        self.routed[label] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for port in ports:
                try:
                    up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    continue
                self.routed[label].append(port)
                await asyncio.gather(self._pump(reader, up_w), self._pump(up_r, writer))
                return
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)


async def join_each(
    people: list[RecordingParticipant],
    link: Any,
    owner_key: Any,
    ports: dict[str, int],
    host: str = "Ada",
) -> list[RecordingParticipant]:
    """Start one participant per name on the relay port given (``host`` hosts with
    ``owner_key``), each admitted before the next starts, appending each to ``people``
    as it starts (so a caller stops those that started even when one is refused)."""
    for name, port in ports.items():
        hosting = name == host
        p = RecordingParticipant(
            link,
            name,
            host=hosting,
            owner_key=owner_key if hosting else None,
            relay_url=f"ws://127.0.0.1:{port}/ws",
        )
        people.append(p)
        await p.start()
        assert await p.wait_joined(20), f"{name} (relay port {port}) was not admitted"
    return people
