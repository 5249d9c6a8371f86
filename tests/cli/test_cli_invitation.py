"""Invitations never sit on a command line: ``clave join`` reads them from stdin or a
prompt and refuses them as arguments; ``clave open`` (the ``clave:`` handler) moves the
invitation into a fresh engine through a pipe; ``clave meet`` prints the ``clave://``
invitation and the secret-free web page for invitees.

Each test scans ``/proc/*/cmdline`` of every process on the machine for the secret.
"""

from __future__ import annotations

import asyncio
import os
import pty
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from clave.meeting.link import MeetingLink, b64url_encode, new_link, parse_link

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

CLAVE = [sys.executable, "-m", "clave"]
TIMEOUT = 30.0
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing answers there


def fresh_link(base: str = UNREACHABLE) -> MeetingLink:
    return new_link(base, os.urandom, os.urandom(32))


def secret_forms(link: MeetingLink) -> list[bytes]:
    """Every spelling of the secret worth looking for."""
    b64 = b64url_encode(link.secret)
    return [
        b64.encode(),
        link.secret.hex().encode(),
        link.secret.hex().upper().encode(),
        link.url.split("#", 1)[1].encode(),
    ]


def cmdlines() -> Iterator[tuple[int, bytes]]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    yield int(entry), f.read()
            except OSError:
                continue  # the process is gone, or its cmdline is not readable


def leaking(link: MeetingLink) -> tuple[list[int], int]:
    """Pids whose command line holds the secret, and how many processes were scanned."""
    forms = secret_forms(link)
    scanned = 0
    leaks = []
    for pid, cmdline in cmdlines():
        scanned += 1
        if any(form in cmdline for form in forms):
            leaks.append(pid)
    return leaks, scanned


def cmdline_of(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def headless_env(**extra: str) -> dict[str, str]:
    """No display: the engine prints the launcher instead of starting a browser."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(extra)
    return env


class Output:
    """A process's stdout, line by line, read by a thread (so waiting never blocks)."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, prefix: str) -> str:
        """The next line starting with ``prefix``."""
        while True:
            try:
                line = self._queue.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line; output so far: {self.lines}") from None
            if line is None:
                self._queue.put(None)
                raise AssertionError(f"no {prefix!r} line before the end: {self.lines}")
            self.lines.append(line)
            if line.startswith(prefix):
                return line

    def rest(self) -> str:
        """Everything, once the stream has ended."""
        self._thread.join(TIMEOUT)
        while (line := self._queue.get_nowait()) is not None:
            self.lines.append(line)
        self._queue.put(None)
        return "\n".join(self.lines)


def stop(proc: subprocess.Popen[str], out: Output) -> tuple[str, str]:
    """SIGTERM (if still running); all of stdout and stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert proc.stderr is not None
    return out.rest(), proc.stderr.read()


# ---------------------------------------------------------------------------- clave join


def test_join_reads_the_invitation_from_stdin_and_no_command_line_holds_it(live_relay: str) -> None:
    link = fresh_link(live_relay)
    proc = subprocess.Popen(
        [*CLAVE, "join", "--no-browser", "--name", "Grace"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=headless_env(),
    )
    output = Output(proc.stdout)
    try:
        assert proc.stdin is not None
        proc.stdin.write(link.url + "\n")
        proc.stdin.close()
        # It read the invitation: it names the room and the relay (not the secret) ...
        line = output.until("meeting: ")
        assert line == f"meeting: room {link.room_id} on relay {link.netloc}"
        # ... and while it runs, no process on this machine has the secret in its argv.
        leaks, scanned = leaking(link)
        assert leaks == [] and scanned > 1
        assert cmdline_of(proc.pid)[-4:] == ["join", "--no-browser", "--name", "Grace"]
        assert proc.poll() is None
    finally:
        out, err = stop(proc, output)
    assert proc.returncode == 0, err
    assert all(form.decode() not in out + err for form in secret_forms(link))


def test_join_refuses_an_invitation_as_an_argument() -> None:
    link = fresh_link()
    for argument in (link.url, link.info_url, "anything"):
        done = subprocess.run(
            [*CLAVE, "join", argument, "--no-browser"],
            capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 2, argument
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        message = lines[0]
        assert message.startswith("clave: refusing an invitation on the command line")
        assert "every local user can read" in message
        assert "clave join < FILE" in message and "paste it at the prompt" in message
        assert "clave setup" in message
        assert done.stdout == ""
        assert all(form.decode() not in done.stderr for form in secret_forms(link))


def test_join_without_an_invitation_fails_clearly() -> None:
    for stdin in ("", "\n", "   \n"):
        done = subprocess.run(
            [*CLAVE, "join", "--no-browser"],
            input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
        )
        assert done.returncode == 2
        assert done.stderr.startswith("clave: no invitation given")
    done = subprocess.run(
        [*CLAVE, "join", "--no-browser"],
        input=fresh_link().info_url + "\n", capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 2 and "not an invitation" in done.stderr


def test_join_prompts_without_echo_on_a_terminal(live_relay: str) -> None:
    link = fresh_link(live_relay)
    pid, master = pty.fork()
    if pid == 0:  # the child: clave join on a terminal of its own
        try:
            os.execve(sys.executable, [*CLAVE, "join", "--no-browser"], headless_env())
        finally:
            os._exit(127)
    output = b""
    try:

        def read_until(marker: bytes) -> None:
            nonlocal output
            deadline = time.monotonic() + TIMEOUT
            while marker not in output:
                ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
                if not ready:
                    raise AssertionError(f"no {marker!r}; terminal shows {output!r}")
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed; it showed {output!r}")
                output += chunk

        read_until("Paste the invitation (clave://…): ".encode())
        os.write(master, link.url.encode() + b"\r")
        read_until(b"meeting: room " + link.room_id.encode())
        assert all(form not in output for form in secret_forms(link))  # not echoed
        leaks, _ = leaking(link)
        assert leaks == []
    finally:
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        os.close(master)
    assert os.waitstatus_to_exitcode(status) == 0


# ---------------------------------------------------------------------------- clave open


def find_engine(marker: str) -> int:
    """The pid of the engine started with ``CLAVE_TEST_MARKER=marker`` in its
    environment (readable for our own processes)."""
    needle = f"CLAVE_TEST_MARKER={marker}".encode()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for pid, cmdline in cmdlines():
            if b"--link-fd" not in cmdline:
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        return pid
            except OSError:
                continue
        time.sleep(0.05)
    raise AssertionError("the engine started by clave open was not found")


def test_open_hands_the_invitation_to_an_engine_without_it_in_argv(tmp_path: Path) -> None:
    from clave.relay.server import start_relay

    async def relay_then_open() -> None:
        runner, port = await start_relay("127.0.0.1", 0)
        try:
            await asyncio.to_thread(open_and_check, f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    def open_and_check(base: str) -> None:
        link = fresh_link(base)
        marker = uuid.uuid4().hex
        env = headless_env(CLAVE_TEST_MARKER=marker, XDG_RUNTIME_DIR=str(tmp_path))
        opener = subprocess.Popen(
            [*CLAVE, "open", link.url],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )
        engine: int | None = None
        output = Output(opener.stdout)
        try:
            # ``clave open`` returns at once (the program that ran it may be waiting) ...
            assert opener.wait(timeout=TIMEOUT) == 0
            engine = find_engine(marker)
            assert engine != opener.pid
            # ... the engine's command line is the pipe's number, not the invitation ...
            argv = cmdline_of(engine)
            assert argv[-5:] == ["-m", "clave", "join", "--link-fd", argv[-1]]
            assert argv[-1].isdigit() and "-P" in argv
            # ... and it read the invitation from the pipe: it names room and relay.
            line = output.until("meeting: ")
            assert line == f"meeting: room {link.room_id} on relay {link.netloc}"
            leaks, scanned = leaking(link)
            assert leaks == [] and scanned > 1
            opened = [s for s in output.lines if s.startswith("open: file:///")]
            assert len(opened) == 1
        finally:
            if engine is not None:
                os.kill(engine, signal.SIGTERM)
                for _ in range(int(TIMEOUT / 0.05)):
                    if not os.path.exists(f"/proc/{engine}") or _zombie_or_gone(engine):
                        break
                    time.sleep(0.05)
            out, err = stop(opener, output)
        assert "no display found" in out, (out, err)
        assert all(form.decode() not in out + err for form in secret_forms(link))
        assert list(tmp_path.glob("clave/*.html")) == []  # the engine removed its launcher

    asyncio.run(relay_then_open())


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_open_refuses_anything_but_a_clave_url() -> None:
    link = fresh_link()
    for argument in (link.info_url, "https://evil.example/m/x#secret", "file:///etc/passwd"):
        done = subprocess.run(
            [*CLAVE, "open", argument], capture_output=True, text=True, timeout=TIMEOUT
        )
        assert done.returncode == 2, argument
        assert done.stderr.strip() == "clave: open: expected a clave:// invitation"


def test_open_and_link_fd_are_hidden_from_help() -> None:
    top = subprocess.run([*CLAVE, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    assert top.returncode == 0 and "setup" in top.stdout and "open" in top.stdout
    join = subprocess.run(
        [*CLAVE, "join", "--help"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert join.returncode == 0
    assert "--link-fd" not in join.stdout and "standard input" in join.stdout


# ---------------------------------------------------------------------------- clave meet


def test_meet_prints_the_invitation_and_the_page_for_invitees(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CLAVE, "meet", "--no-browser", "--name", "Ada"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=headless_env(XDG_RUNTIME_DIR=str(tmp_path)),
    )
    output = Output(proc.stdout)
    try:
        opened = output.until("open: ").split(" ", 1)[1]
        assert opened.startswith("file:///")
        invitation = output.until("invitation: ").split(" ", 1)[1]
        link = parse_link(invitation)
        assert invitation.startswith("clave://127.0.0.1:")
        page = output.until("web page for invitees (no secret): ")
        info_url = page.rsplit(" ", 1)[1]
        assert info_url == link.info_url == f"{link.base_url}/m/{link.room_id}"
        assert all(form.decode() not in info_url for form in secret_forms(link))
        # The embedded relay serves that page; it holds no secret and no script.
        import urllib.request

        with urllib.request.urlopen(info_url, timeout=TIMEOUT) as response:
            body = response.read().decode()
        assert response.status == 200 and "<script" not in body
        assert all(form.decode() not in body for form in secret_forms(link))
        leaks, _ = leaking(link)
        assert leaks == []
    finally:
        out, err = stop(proc, output)
    assert proc.returncode == 0, err
    assert not re.search(r"\?t=|http://127\.0\.0\.1:\d+/\?", out)
