"""One ``clave`` child process for end-to-end tests: its own process group, stdout read
line by line as it comes (``status: {JSON}`` lines, see
``clave.engine.headless.STATUS_SIGNAL``, parsed apart), stderr in a file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clave.engine.headless import STATUS_PREFIX

Status = dict[str, Any]


@dataclass
class Proc:
    """One ``clave`` child process in its own process group; stdout is read line by line
    as it comes (status lines are parsed), stderr goes to a file."""

    name: str
    proc: asyncio.subprocess.Process
    stderr: Path
    lines: list[str] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    paused: bool = False
    _cursor: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def spawn(cls, name: str, cwd: Path, *args: str, stdin: str | None = None) -> Proc:
        """Start ``clave ARGS``; ``stdin`` (an invitation) is written to its standard input."""
        stderr = cwd / f"{name}.stderr"
        with stderr.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "clave.cli",
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                cwd=cwd,
                env={
                    **os.environ,
                    "PYTHONUNBUFFERED": "1",
                    "CI": "true",
                    "CLAVE_CONFIG_DIR": str(cwd / f"{name}-config"),
                },
                start_new_session=True,
                limit=1 << 20,
            )
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin.encode() + b"\n")
            await proc.stdin.drain()
            proc.stdin.close()
        self = cls(name, proc, stderr)
        self._reader = asyncio.create_task(self._read(), name=f"stdout-{name}")
        return self

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith(STATUS_PREFIX):
                self.statuses.append(json.loads(line[len(STATUS_PREFIX) :]))
            else:
                self.lines.append(line)
            self._changed.set()
        self._changed.set()

    def explain(self) -> str:
        err = self.stderr.read_text(errors="replace")[-3000:] if self.stderr.exists() else ""
        return f"{self.name} (exit {self.proc.returncode}) stdout {self.lines!r} stderr:\n{err}"

    async def _wait_change(self, deadline: float) -> None:
        self._changed.clear()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))

    async def expect(self, prefix: str, timeout: float = 30.0) -> str:
        """Wait for a line (after the last one expected) that starts with ``prefix``;
        return the rest of it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while self._cursor < len(self.lines):
                line = self.lines[self._cursor]
                self._cursor += 1
                if line.startswith(prefix):
                    return line[len(prefix) :]
            if self._reader is not None and self._reader.done():
                await self.proc.wait()
                raise AssertionError(f"exited before printing {prefix!r}: {self.explain()}")
            if loop.time() > deadline:
                raise AssertionError(f"no {prefix!r} within {timeout} s: {self.explain()}")
            await self._wait_change(deadline)

    async def status(self, timeout: float = 15.0) -> Status:
        """The member's report so far (it must be running and in the meeting: before
        that, SIGUSR1 would end it)."""
        assert not self.paused, f"{self.name} is paused"
        seen = len(self.statuses)
        self.signal(signal.SIGUSR1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.statuses) == seen:
            if self.proc.returncode is not None or loop.time() > deadline:
                raise AssertionError(f"no status from {self.name}: {self.explain()}")
            await self._wait_change(deadline)
        return self.statuses[-1]

    def command_line(self) -> bytes:
        """What every local user can read of this process (Linux), or b"" elsewhere."""
        try:
            return Path(f"/proc/{self.proc.pid}/cmdline").read_bytes()
        except OSError:
            return b""

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def signal(self, sig: int) -> None:
        if self.proc.returncode is None:
            os.kill(self.proc.pid, sig)

    def pause(self) -> None:
        """SIGSTOP the whole process group (nothing runs, sockets stay open)."""
        os.killpg(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)
        self.paused = False

    async def finish(self, timeout: float) -> None:
        """Wait for a clean exit (status 0) and the end of its output."""
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
            if self._reader is not None:
                await asyncio.wait_for(self._reader, 5)
        except TimeoutError:
            raise AssertionError(f"did not exit within {timeout} s: {self.explain()}") from None
        assert self.proc.returncode == 0, self.explain()

    async def kill(self) -> None:
        """SIGKILL the process group (paused or not) and reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
