"""A meeting of real ``clave`` processes behind a fault proxy, for fault tests and bench/faults.py.

::

    relay   clave serve --port 0 [--heartbeat S]         (killed and restarted on demand)
    proxy   FaultProxy in the test's event loop: one entrance per member
    host    clave meet --headless --relay http://127.0.0.1:<host's entrance>
    g1, g2  clave join --headless, the invitation on standard input with the port of
            their own entrance (the room id and secret do not depend on the address)

While the meeting runs, :meth:`FaultMeeting.statuses` sends each member SIGUSR1, which
makes it print its report so far (``status: {JSON}``, see
``clave.engine.headless.STATUS_SIGNAL``). Progress is measured in those counts; waits
have deadlines only so that a broken meeting fails instead of hanging. Every process
runs in its own process group and is killed, group and all, by :meth:`FaultMeeting.close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clave.devtools.fault_proxy import FaultProxy
from clave.engine.headless import STATUS_PREFIX

Status = dict[str, Any]

BACKSTOP_S = 900.0
"""``--duration`` of every member: they are stopped with SIGTERM long before."""


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


def guest_invitation(invitation: str, host_port: int, port: int) -> str:
    """The same invitation naming another port of 127.0.0.1 (a guest's own entrance)."""
    old = f"clave://127.0.0.1:{host_port}/"
    assert invitation.startswith(old), invitation
    return f"clave://127.0.0.1:{port}/" + invitation[len(old) :]


class FaultMeeting:
    """A relay process, a fault proxy and a meeting of headless ``clave`` processes."""

    def __init__(
        self,
        tmp: Path,
        names: Sequence[str] = ("host", "g1", "g2"),
        *,
        resume_window: float | None = None,
        heartbeat: float | None = None,
    ) -> None:
        self.tmp = tmp
        self.names = list(names)
        self.resume_window = resume_window
        self.heartbeat = heartbeat
        self.relay: Proc | None = None
        self.relay_port = 0
        self.relay_starts = 0
        self.proxy: FaultProxy | None = None
        self.members: dict[str, Proc] = {}
        self.invitation = ""
        self._dead: list[Proc] = []

    # ------------------------------------------------------------------ set-up

    async def start_relay(self) -> None:
        """``clave serve`` on the relay port (a free one the first time)."""
        self.relay_starts += 1
        args = ["serve", "--port", str(self.relay_port)]
        if self.heartbeat is not None:
            args += ["--heartbeat", str(self.heartbeat)]
        self.relay = await Proc.spawn(f"relay{self.relay_starts}", self.tmp, *args)
        port = urlsplit(await self.relay.expect("relay listening on ")).port
        assert port is not None and (self.relay_port in (0, port))
        self.relay_port = port

    def _member_args(self, name: str) -> list[str]:
        args = ["--headless", "--name", name, "--report", f"{name}.json"]
        args += ["--duration", str(BACKSTOP_S)]
        if self.resume_window is not None:
            args += ["--resume-window", str(self.resume_window)]
        return args

    async def start(self) -> None:
        """Relay, proxy, the host (first name), then each guest once the one before is in."""
        await self.start_relay()
        self.proxy = FaultProxy("127.0.0.1", self.relay_port)
        for name in self.names:
            await self.proxy.open(name)
        host_name, *guests = self.names
        host_port = self.proxy.ports[host_name]
        host = self.members[host_name] = await Proc.spawn(
            host_name,
            self.tmp,
            "meet",
            "--relay",
            f"http://127.0.0.1:{host_port}",
            *self._member_args(host_name),
        )
        self.invitation = await host.expect("invitation: ")
        await host.expect("joined as ")
        for name in guests:
            invitation = guest_invitation(self.invitation, host_port, self.proxy.ports[name])
            guest = self.members[name] = await Proc.spawn(
                name, self.tmp, "join", *self._member_args(name), stdin=invitation
            )
            await guest.expect("joined as ")

    # ------------------------------------------------------------------ faults

    async def kill_relay(self) -> None:
        """SIGKILL the relay: its state (rooms, commit log) is gone."""
        assert self.relay is not None
        await self.relay.kill()
        self._dead.append(self.relay)
        self.relay = None

    async def restart_relay(self) -> None:
        await self.kill_relay()
        await self.start_relay()

    # ------------------------------------------------------------------ observing

    async def statuses(self, names: Iterable[str] | None = None) -> dict[str, Status]:
        """Every (named) member's report so far."""
        chosen = list(self.members) if names is None else list(names)
        got = await asyncio.gather(*(self.members[n].status() for n in chosen))
        return dict(zip(chosen, got, strict=True))

    async def wait_for(
        self,
        condition: Callable[[dict[str, Status]], bool],
        timeout: float,
        names: Iterable[str] | None = None,
        step: float = 0.5,
    ) -> dict[str, Status]:
        """Ask for statuses until ``condition`` holds for them; AssertionError after
        ``timeout`` seconds (a deadline against hanging, not a requirement)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        chosen = None if names is None else list(names)
        while True:
            now = await self.statuses(chosen)
            if condition(now):
                return now
            if loop.time() > deadline:
                raise AssertionError(f"not met within {timeout} s; statuses:\n{brief(now)}")
            await asyncio.sleep(step)

    # ------------------------------------------------------------------ tear-down

    async def stop(self, timeout: float = 30.0) -> dict[str, Status]:
        """SIGTERM every member (they leave), then the relay; their final JSON reports."""
        for proc in self.members.values():
            proc.signal(signal.SIGTERM)
        for proc in self.members.values():
            await proc.finish(timeout)
        if self.relay is not None:
            self.relay.signal(signal.SIGTERM)
            await self.relay.finish(timeout)
        return {n: json.loads((self.tmp / f"{n}.json").read_text()) for n in self.members}

    async def close(self) -> None:
        """Kill whatever still runs (paused or not) and stop the proxy."""
        for proc in [*self.members.values(), *self._dead]:
            await proc.kill()
        if self.relay is not None:
            await self.relay.kill()
        if self.proxy is not None:
            await self.proxy.close()


# ---------------------------------------------------------------------- report arithmetic


def decoded(status: Status, sender: str, kind: str = "video") -> int:
    return int(status["decoded"].get(sender, {}).get(kind, 0))


def increases(
    before: dict[str, Status], after: dict[str, Status], kind: str = "video"
) -> dict[tuple[str, str], int]:
    """Frames of ``kind`` each receiver decoded from each other member between the two."""
    return {
        (rx, tx): decoded(after[rx], tx, kind) - decoded(before[rx], tx, kind)
        for rx in after
        for tx in after
        if rx != tx
    }


def brief(statuses: dict[str, Status]) -> str:
    """The parts of statuses that explain a failure."""
    keys = (
        "link_state", "connections_lost", "reconnects", "security_code", "roster",
        "members_left", "members_away", "members_back", "stranded", "rejoins", "removed",
        "ended_reason", "closed_reason", "decoded", "alerts", "media_errors",
    )  # fmt: skip
    return "\n".join(
        f"  {name}: " + json.dumps({k: s.get(k) for k in keys}) for name, s in statuses.items()
    )
