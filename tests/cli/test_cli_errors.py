"""Every expected failure of ``clave`` is one line and an exit status (issue 11, req 5).

Each test provokes one failure against real processes (a real relay, a real host
engine, the ``clave`` command as a child process) and asserts the exact line on
standard error, the exit status and that no traceback was printed. The relay
checks (unreachable, not a relay, https to http) are in
``tests/engine/test_cli_preflight.py``; TLS failures in ``tests/relay/test_tls.py``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bounded_run import run as bounded_run
from clave.cli import COMMANDS, main
from clave.cli.errors import EXIT_BUG, EXIT_LOCAL, EXIT_NOT_ADMITTED, EXIT_USAGE
from clave.cli.headless import DECLINED, ROOM_FULL
from clave.cli.reach import LOCAL_ONLY, PRIVATE_ONLY, reach_warning
from clave.engine.headless import HeadlessParticipant
from clave.meeting.link import new_link
from clave.meeting.meeting import Meeting
from clave.meeting.roles import generate_owner_key
from clave.relay.config import RelayConfig
from clave.relay.server import start_relay

CLI = [sys.executable, "-m", "clave.cli"]
TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")


async def clave(*args: str, stdin: str | None = None, cwd: Path) -> tuple[int, str, str]:
    """Run ``clave ARGS`` to its end: exit status, stdout, stderr."""
    env = {**os.environ, "CI": "true", "XDG_RUNTIME_DIR": str(cwd), "PYTHONUNBUFFERED": "1"}
    env.pop("DISPLAY", None)
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
    data = None if stdin is None else stdin.encode() + b"\n"
    out, err = await asyncio.wait_for(proc.communicate(data), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def one_line(err: str) -> str:
    """The single line a failure printed (no traceback)."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def run(scenario: Coroutine[Any, Any, None]) -> None:
    bounded_run(scenario, TIMEOUT * 2)


# ------------------------------------------------------------------ admission


Act = Callable[[HeadlessParticipant, Path], Awaitable[None]]


async def hosted_meeting(config: RelayConfig | None, act: Act, tmp: Path) -> None:
    """A relay and a host engine (admitting nobody by itself) in this event loop."""
    runner, port = await start_relay("127.0.0.1", 0, config)
    owner_private, owner_public = generate_owner_key(os.urandom)
    link = new_link(f"http://127.0.0.1:{port}", os.urandom, owner_public)
    host = HeadlessParticipant(
        link, "Hedy", host=True, owner_key=owner_private, auto_admit=False,
        video=False, audio=False,
    )  # fmt: skip
    try:
        await host.start()
        assert await host.wait_joined(15)
        await act(host, tmp)
    finally:
        await host.stop()
        await runner.cleanup()


def meeting_of(host: HeadlessParticipant) -> Meeting:
    assert host.session is not None
    return host.session.meeting


async def answer_first_knock(host: HeadlessParticipant, answer: Callable[[Meeting], None]) -> None:
    """Wait for a join request in the host's lobby, then answer it."""
    while not meeting_of(host).lobby:
        await asyncio.sleep(0.05)
    assert host.session is not None
    await host.session.act(lambda m: answer(m))


def test_a_declined_join_says_so(tmp_path: Path) -> None:
    async def act(host: HeadlessParticipant, tmp: Path) -> None:
        def deny(m: Meeting) -> None:
            assert m.deny(m.lobby[0].request_id)

        joining = asyncio.create_task(
            clave("join", "--headless", "--name", "Gus", stdin=host.link.url, cwd=tmp)
        )
        await answer_first_knock(host, deny)
        status, out, err = await joining
        assert status == EXIT_NOT_ADMITTED
        assert one_line(err) == f"clave: {DECLINED['declined']}"
        assert "joined as" not in out

    run(hosted_meeting(None, act, tmp_path))


def test_a_locked_meeting_says_so(tmp_path: Path) -> None:
    async def act(host: HeadlessParticipant, tmp: Path) -> None:
        joining = asyncio.create_task(
            clave("join", "--headless", "--name", "Gus", stdin=host.link.url, cwd=tmp)
        )
        await answer_first_knock(host, lambda m: m.set_locked(True))
        status, _, err = await joining
        assert status == EXIT_NOT_ADMITTED
        assert one_line(err) == f"clave: {DECLINED['locked']}"

    run(hosted_meeting(None, act, tmp_path))


def test_a_full_meeting_says_so(tmp_path: Path) -> None:
    async def act(host: HeadlessParticipant, tmp: Path) -> None:
        status, _, err = await clave(
            "join", "--headless", "--name", "Gus", stdin=host.link.url, cwd=tmp
        )
        assert status == EXIT_NOT_ADMITTED
        assert one_line(err) == f"clave: {ROOM_FULL}"

    run(hosted_meeting(RelayConfig(max_conns_per_room=1), act, tmp_path))


# ------------------------------------------------------------------ local problems


def test_a_meeting_page_port_in_use_says_so(tmp_path: Path) -> None:
    async def scenario() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            status, out, err = await clave(
                "meet", "--no-browser", "--port", str(port), cwd=tmp_path
            )
        assert status == EXIT_LOCAL
        lines = [line for line in err.strip().splitlines() if not line.startswith("warning:")]
        assert lines == [
            f"clave: cannot serve the meeting page on 127.0.0.1:{port}: Address already in use"
        ], err
        assert "Traceback" not in err and "open: " not in out

    run(scenario())


def test_a_relay_port_in_use_says_so(tmp_path: Path) -> None:
    async def scenario() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            status, out, err = await clave("serve", "--port", str(port), cwd=tmp_path)
        assert status == EXIT_LOCAL
        assert one_line(err) == f"clave: cannot listen on 127.0.0.1:{port}: Address already in use"
        assert "relay listening" not in out

    run(scenario())


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "https://relay.example/m/abc",
            "clave: this is a web address, not an invitation: a Clave invitation starts "
            "with clave:// (the web page of a meeting holds no secret)",
        ),
        (
            "clave://relay.example/m/abc",
            "clave: link must have exactly one '#' followed by the meeting secret",
        ),
        (
            "clave://relay example/m/abc#x.y",
            "clave: link: contains spaces, control or non-ASCII characters",
        ),
    ],
)
def test_a_bad_invitation_says_so(tmp_path: Path, text: str, line: str) -> None:
    async def scenario() -> None:
        status, out, err = await clave("join", "--headless", stdin=text, cwd=tmp_path)
        assert status == EXIT_USAGE
        assert one_line(err) == line
        assert "joined as" not in out

    run(scenario())


def test_headless_only_options_in_the_browser_say_so(tmp_path: Path) -> None:
    async def scenario() -> None:
        status, _, err = await clave("meet", "--no-browser", "--no-video", cwd=tmp_path)
        assert status == EXIT_USAGE
        assert one_line(err) == "clave: --no-video: only with --headless"
        status, _, err = await clave("meet", "--no-browser", "--fps", "10", cwd=tmp_path)
        assert status == EXIT_USAGE
        assert one_line(err) == "clave: --fps: only with --headless"

    run(scenario())


@pytest.mark.parametrize("value", ["0", "61", "ten"])
def test_a_frame_rate_out_of_range_says_so(tmp_path: Path, value: str) -> None:
    async def scenario() -> None:
        status, _, err = await clave("join", "--headless", "--fps", value, cwd=tmp_path)
        assert status == EXIT_USAGE
        assert f"--fps: must be a whole number from 1 to 60, not '{value}'" in err

    run(scenario())


# ------------------------------------------------------------------ reachability


def test_meet_warns_when_nobody_else_can_reach_the_relay(tmp_path: Path) -> None:
    async def scenario() -> None:
        status, out, err = await clave(
            "meet", "--headless", "--no-video", "--no-audio", "--duration", "0", cwd=tmp_path
        )
        assert status == 0, err
        assert LOCAL_ONLY.format(host="127.0.0.1") in err.splitlines()
        assert "invitation: clave://127.0.0.1:" in out

    run(scenario())


def test_reach_warning_by_address() -> None:
    assert reach_warning("127.0.0.1") == LOCAL_ONLY.format(host="127.0.0.1")
    assert reach_warning("[::1]") == LOCAL_ONLY.format(host="[::1]")
    assert reach_warning("localhost") == LOCAL_ONLY.format(host="localhost")
    assert reach_warning("192.168.1.20") == PRIVATE_ONLY.format(host="192.168.1.20")
    assert reach_warning("10.0.0.7") == PRIVATE_ONLY.format(host="10.0.0.7")
    assert reach_warning("relay.example.org") is None
    assert reach_warning("8.8.8.8") is None


# ------------------------------------------------------------------ bugs


def test_an_unexpected_error_is_one_line_unless_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setitem(COMMANDS, "selfcheck", broken)
    assert main(["selfcheck"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert one_line(err) == (
        "clave: unexpected error (RuntimeError: boom); run again with --debug for details"
    )
    assert main(["--debug", "selfcheck"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err
