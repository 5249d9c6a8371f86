"""A real nats-server for the cluster tests, and a proxy that records what it carries.

:class:`NatsServer` runs Debian's ``nats-server`` on a random port of 127.0.0.1 with
JetStream stored under its own working directory; it fails (never skips) when the
binary is missing. :class:`TrafficRecorder` sits between clients and that server and
keeps every byte they exchange, so a test can check what the server saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
"""The nats-server binary the tests run."""

START_TIMEOUT = 10.0
"""Seconds a starting server has to accept connections."""

STOP_GRACE = 5.0
"""Seconds a server has to exit after SIGTERM before it is killed."""


def _free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _PortTaken(Exception):
    """The server exited because its port was in use."""


class NatsServer:
    """One nats-server process with JetStream, everything it writes kept in ``workdir``.

    The port is chosen at the first :meth:`start` and kept by :meth:`restart`, as is the
    JetStream store (``workdir/js``), so streams outlive a restart or a :meth:`kill`.
    """

    def __init__(
        self, workdir: Path, *, executable: str = NATS_SERVER, config: str | None = None
    ) -> None:
        self.workdir = workdir
        self.executable = executable
        self.config = config
        """Extra server configuration (NATS config syntax: ``tls``, ``authorization``)."""
        self.store_dir = workdir / "js"
        self.log_path = workdir / "nats-server.log"
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL, ``nats://127.0.0.1:<port>``."""
        if self.port is None:
            raise RuntimeError("the NATS server was never started")
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Launch the server and wait until it accepts clients (AssertionError if not)."""
        if self.running:
            raise RuntimeError("the NATS server is already running")
        if not Path(self.executable).is_file():
            raise AssertionError(
                f"nats-server not found at {self.executable!r}: the cluster tests need it "
                "(Debian/Ubuntu: apt-get install nats-server)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.store_dir.mkdir(exist_ok=True)
        fresh = self.port is None
        for attempt in range(3 if fresh else 1):
            if fresh:
                self.port = _free_port()
            self._launch()
            try:
                self._wait_ready()
                return
            except _PortTaken:
                self._reap()
                if attempt == 2 or not fresh:
                    raise AssertionError(
                        f"nats-server: port {self.port} in use\n{self.log_tail()}"
                    ) from None

    def _launch(self) -> None:
        assert self.port is not None
        self._log = self.log_path.open("ab")
        extra: list[str] = []
        if self.config is not None:
            conf = self.workdir / "nats-server.conf"
            conf.write_text(self.config)
            extra = ["-c", str(conf)]
        self._proc = subprocess.Popen(
            [
                self.executable,
                *extra,
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store_dir),
            ],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _wait_ready(self) -> None:
        """Poll until the port answers with NATS's INFO line, for at most START_TIMEOUT."""
        assert self._proc is not None and self.port is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                if "address already in use" in self.log_tail():
                    raise _PortTaken
                self._reap()
                raise AssertionError(
                    f"nats-server exited with code {code} while starting\n{self.log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"INFO"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(
            f"nats-server did not accept connections on port {self.port} within "
            f"{START_TIMEOUT} s\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM, SIGKILL after STOP_GRACE seconds, and wait (a no-op if not running)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and wait for it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self._reap()

    def restart(self) -> None:
        """Stop, then start again on the same port with the same JetStream store."""
        self.stop()
        self.start()

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def returncode(self) -> int | None:
        """The exit status of the last process, None while it runs or before a start."""
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, size: int = 4000) -> str:
        """The last ``size`` bytes of the server's log."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "(no log)"
        return data[-size:].decode(errors="replace")

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class TrafficRecorder:
    """A TCP proxy on 127.0.0.1 to ``upstream_port``, keeping both directions in ``data``.

    Clients connect to ``port`` instead of the server and work as usual; ``data`` holds,
    in arrival order, every byte either side sent.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.data = bytearray()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[object]] = set()

    @classmethod
    async def start(cls, upstream_port: int) -> TrafficRecorder:
        """Listen on a free port of 127.0.0.1 and return the running recorder."""
        recorder = cls(upstream_port)
        recorder._server = await asyncio.start_server(recorder._handle, "127.0.0.1", 0)
        recorder.port = recorder._server.sockets[0].getsockname()[1]
        return recorder

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            self._writers.discard(writer)
            writer.close()
            return
        self._writers.add(up_writer)
        pumps = {
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        }
        try:
            # When either side goes away, close both: the other pump then sees EOF.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            if task is not None:
                self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                self.data += chunk
                writer.write(chunk)
                await writer.drain()

    async def close(self) -> None:
        """Stop listening and close every proxied connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
