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
import json
import signal
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from clave_process import Proc, Status

from clave.devtools.fault_proxy import FaultProxy

BACKSTOP_S = 900.0
"""``--duration`` of every member: they are stopped with SIGTERM long before."""


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
                # What the members' processes said (stderr: the engine's warnings and any
                # traceback), so an intermittent failure can be read after the run.
                said = "\n".join(
                    self.members[n].explain() for n in chosen or self.names if n in self.members
                )
                raise AssertionError(
                    f"not met within {timeout} s; statuses:\n{brief(now)}\n{said}"
                )
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
