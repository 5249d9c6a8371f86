"""A real meeting of five processes: a relay, a host and three guests, each its own ``clave``.

Timeline (each step waits for the previous one's "joined as" line)::

    relay   clave serve --port 0
    host    clave meet --headless            epoch 0
    g2      clave join --chat ... --linger   epoch 1   (leaves after LEAVER_S, then audits)
    g1      clave join --chat ...            epoch 2
            g2 says Bye, the host removes it epoch 3
    g3      clave join --chat ...            epoch 4   (late joiner, leaves after LATE_S)
            host and g1 stop on SIGTERM (Ctrl-C)

Everything asserted comes from the JSON reports the processes write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import run

pytestmark = pytest.mark.slow

LEAVER_S = 5.0
"""How long g2 stays after joining before it says Bye."""
LINGER_S = 4.0
"""How long g2 keeps its relay connection after its removal, trying to decrypt."""
LATE_S = 5.0
"""How long the late joiner g3 stays."""
BACKSTOP_S = 60.0
"""--duration of the host and g1, which are stopped with SIGTERM long before."""

CHAT_G2 = "g2 to the host, before g1 was admitted"
CHAT_G1 = "g1 to host and g2, before g3 was admitted"
CHAT_G3 = "g3 to host and g1, after g2 left"

MIN_VIDEO = 30
MIN_AUDIO = 50

Report = dict[str, Any]
MEMBERS = ("host", "g1", "g2", "g3")


@dataclass
class Proc:
    """One ``clave`` child process; stdout is read line by line, stderr goes to a file."""

    name: str
    proc: asyncio.subprocess.Process
    stderr: Path
    lines: list[str] = field(default_factory=list)

    @classmethod
    async def spawn(cls, name: str, cwd: Path, *args: str) -> Proc:
        stderr = cwd / f"{name}.stderr"
        with stderr.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "clave.cli",
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                stdin=asyncio.subprocess.DEVNULL,
                cwd=cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return cls(name, proc, stderr)

    def _explain(self) -> str:
        err = self.stderr.read_text(errors="replace")[-2000:] if self.stderr.exists() else ""
        return f"{self.name} (exit {self.proc.returncode}) stdout {self.lines!r} stderr:\n{err}"

    async def expect(self, prefix: str, timeout: float = 20.0) -> str:
        """Read stdout until a line starting with ``prefix``; return the rest of that line."""
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), deadline - loop.time())
            except TimeoutError:
                raise AssertionError(
                    f"no {prefix!r} within {timeout} s: {self._explain()}"
                ) from None
            if not raw:
                await self.proc.wait()
                raise AssertionError(f"exited before printing {prefix!r}: {self._explain()}")
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if line.startswith(prefix):
                return line[len(prefix) :]

    async def finish(self, timeout: float) -> None:
        """Wait for a clean exit (status 0), reading the rest of stdout."""
        assert self.proc.stdout is not None
        try:
            rest = await asyncio.wait_for(self.proc.stdout.read(), timeout)
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            raise AssertionError(f"did not exit within {timeout} s: {self._explain()}") from None
        self.lines.extend(rest.decode(errors="replace").splitlines())
        assert self.proc.returncode == 0, self._explain()

    def terminate(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 5)


@dataclass
class Outcome:
    """The four JSON reports, the link secret and everything the relay process printed."""

    reports: dict[str, Report]
    secret: str
    relay_output: str


async def _meeting(tmp: Path) -> Outcome:
    procs: list[Proc] = []
    loop = asyncio.get_running_loop()

    async def start(name: str, *args: str) -> Proc:
        p = await Proc.spawn(name, tmp, *args)
        procs.append(p)
        return p

    def member(name: str, *extra: str) -> list[str]:
        return ["--headless", "--name", name, "--report", f"{name}.json", *extra]

    try:
        relay = await start("relay", "serve", "--port", "0")
        url = await relay.expect("relay listening on ")

        host = await start(
            "host", "meet", "--relay", url, *member("host"), "--duration", str(BACKSTOP_S)
        )
        link = await host.expect("link: ")
        assert "#" in link
        await host.expect("joined as ")

        g2 = await start(
            "g2",
            "join",
            link,
            *member("g2"),
            "--duration",
            str(LEAVER_S),
            "--linger",
            str(LINGER_S),
            "--chat",
            CHAT_G2,
        )
        await g2.expect("joined as ")
        g2_joined = loop.time()

        g1 = await start(
            "g1", "join", link, *member("g1"), "--duration", str(BACKSTOP_S), "--chat", CHAT_G1
        )
        await g1.expect("joined as ")

        # g2 says Bye LEAVER_S after joining; the host removes it within milliseconds.
        await asyncio.sleep(max(0.0, g2_joined + LEAVER_S + 1.5 - loop.time()))
        g3 = await start(
            "g3", "join", link, *member("g3"), "--duration", str(LATE_S), "--chat", CHAT_G3
        )
        await g3.expect("joined as ")

        await g3.finish(LATE_S + 15)
        await g2.finish(LINGER_S + 15)
        host.terminate()
        g1.terminate()
        await host.finish(15)
        await g1.finish(15)
        relay.terminate()
        await relay.finish(15)
    finally:
        for p in procs:
            await p.kill()
    reports = {name: json.loads((tmp / f"{name}.json").read_text()) for name in MEMBERS}
    relay_output = "\n".join(relay.lines) + relay.stderr.read_text(errors="replace")
    return Outcome(reports, link.partition("#")[2], relay_output)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run(_meeting(tmp_path_factory.mktemp("multiprocess")), timeout=90)


@pytest.fixture(scope="module")
def reports(outcome: Outcome) -> dict[str, Report]:
    return outcome.reports


def test_relay_process_never_saw_the_secret(outcome: Outcome) -> None:
    assert len(outcome.secret) == 43
    assert outcome.relay_output.startswith("relay listening on http://127.0.0.1:")
    assert outcome.secret not in outcome.relay_output


def _codes(report: Report) -> dict[int, str]:
    codes: dict[int, str] = {}
    for epoch, code in report["security_codes"]:
        assert epoch not in codes, f"{report['name']} entered epoch {epoch} twice"
        codes[epoch] = code
    return codes


OVERLAPS = [("host", "g1"), ("host", "g2"), ("g1", "g2"), ("host", "g3"), ("g1", "g3")]


@pytest.mark.parametrize(("a", "b"), OVERLAPS)
def test_everyone_decodes_everyone_they_met(reports: dict[str, Report], a: str, b: str) -> None:
    for receiver, sender in ((a, b), (b, a)):
        got = reports[receiver]["decoded"].get(sender, {})
        assert got.get("video", 0) >= MIN_VIDEO, f"{receiver} from {sender}: {got}"
        assert got.get("audio", 0) >= MIN_AUDIO, f"{receiver} from {sender}: {got}"


def test_media_is_clean_and_fast(reports: dict[str, Report]) -> None:
    for name, r in reports.items():
        assert r["joined"], name
        assert r["frames_rejected"] == 0, (name, r["rejections"])
        assert r["media_errors"] == [], (name, r["media_errors"])
        assert r["frames_sent"]["video"] >= MIN_VIDEO and r["frames_sent"]["audio"] >= MIN_AUDIO
        assert r["latencies_ms"], name
        assert statistics.median(r["latencies_ms"]) < 500, name
    # g2 and g3 were never members at the same time: neither could decode the other.
    assert "g3" not in reports["g2"]["decoded"]
    assert "g2" not in reports["g3"]["decoded"]


def test_departed_member_is_removed_and_its_keys_decrypt_nothing_later(
    reports: dict[str, Report],
) -> None:
    g2 = reports["g2"]
    assert g2["removed"], g2["ended_reason"]
    assert g2["frames_after_removal"] > 100, "the audit saw too little traffic to mean anything"
    assert g2["decrypted_after_removal"] == 0
    assert "g2" in reports["host"]["members_left"]
    assert "g2" in reports["g1"]["members_left"]
    assert sorted(g2["roster"]) == ["g1", "g2", "host"]  # its last epoch
    # The others moved on: epochs after g2's last one, without g2 in them.
    assert max(_codes(reports["host"])) > max(_codes(g2))
    assert sorted(reports["g3"]["roster"]) == ["g1", "g3", "host"]  # g3 left before the others


def test_chat_reaches_exactly_the_current_members(reports: dict[str, Report]) -> None:
    def chats(name: str) -> set[tuple[str, str]]:
        return {(sender, text) for sender, text in reports[name]["chats"]}

    assert chats("host") == {("g2", CHAT_G2), ("g1", CHAT_G1), ("g3", CHAT_G3)}
    assert chats("g2") == {("g1", CHAT_G1)}  # not g3's: sent after g2 left
    assert chats("g1") == {("g3", CHAT_G3)}  # not g2's: sent before g1 was admitted
    assert chats("g3") == set()  # neither g2's nor g1's: sent before g3 was admitted
    for name in reports:
        assert len(reports[name]["chats"]) == len(chats(name)), f"{name} got a chat twice"


def test_security_codes_agree_per_epoch_and_change_on_every_join_and_leave(
    reports: dict[str, Report],
) -> None:
    per_member = {name: _codes(r) for name, r in reports.items()}
    union: dict[int, str] = {}
    seen_by: dict[int, list[str]] = {}
    for name, codes in per_member.items():
        for epoch, code in codes.items():
            assert union.setdefault(epoch, code) == code, (
                f"epoch {epoch}: {name} shows {code}, another member {union[epoch]}"
            )
            seen_by.setdefault(epoch, []).append(name)
    assert len(set(union.values())) == len(union), "a security code repeated across epochs"
    epochs = sorted(union)
    for e in epochs[1:]:
        assert union[e] != union[e - 1]

    # One epoch per membership change: create, +g2, +g1, -g2, +g3 (then the teardown).
    host = per_member["host"]
    assert list(host)[:5] == [0, 1, 2, 3, 4]
    assert list(host) == list(range(len(host))), "the host missed an epoch"
    assert list(per_member["g2"]) == [1, 2]
    assert list(per_member["g1"])[:3] == [2, 3, 4]
    assert min(per_member["g3"]) == 4
    assert sorted(seen_by[2]) == ["g1", "g2", "host"]
    assert sorted(seen_by[4]) == ["g1", "g3", "host"]
