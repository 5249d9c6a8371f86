"""Helpers for the browser tests and bench/latency.py: clave processes and headless Chromium.

Everything runs as in real use: ``clave serve`` (the relay), ``clave meet`` /
``clave join`` in browser mode (each an engine serving its glass on
127.0.0.1) and ``clave join --headless`` (a Python participant), each in its
own process; every glass is a real Chromium (Playwright, Debian's
``/usr/bin/chromium``) with a fake camera and microphone, in its own browser
process and profile. The Playwright sync API is used.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import BrowserContext, Page, Playwright

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream=fps=30",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # getDisplayMedia without a picker: take the (fake) entire screen.
    "--auto-select-desktop-capture-source=Entire screen",
]
VIEWPORT = {"width": 1280, "height": 720}

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CLI = [sys.executable, "-m", "clave.cli"]

OPEN_LINE = re.compile(r"^open: (http://127\.0\.0\.1:(\d+)/\?t=[A-Za-z0-9_-]+)$")
RELAY_LINE = re.compile(r"^relay listening on (http://127\.0\.0\.1:\d+)$")


def browser_available() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def wait_for(
    check: Callable[[], T | None],
    timeout: float,
    what: str | Callable[[], str],
    step: float = 0.2,
) -> T:
    """Poll ``check`` until it returns something truthy; AssertionError after ``timeout`` s
    naming ``what`` (a callable is asked at that moment, to describe the state then)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            why = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {why}")
        time.sleep(step)


# ---------------------------------------------------------------- processes


class Proc:
    """A clave subprocess whose output (stdout and stderr merged) is read by a thread."""

    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        src = str(ROOT / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        self.popen = subprocess.Popen(
            [*CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"out-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, pattern: re.Pattern[str] | str, timeout: float = 20.0) -> re.Match[str]:
        """The first output line matching ``pattern`` (a regex, or a prefix string)."""
        if isinstance(pattern, str):
            pattern = re.compile(re.escape(pattern) + ".*")
        regex = pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    m = regex.match(line)
                    if m is not None:
                        return m
                if self.popen.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(
                        f"{self.name} exited ({self.popen.returncode}): {self.output}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name}: no line matching {regex.pattern!r} in {timeout} s: "
                        f"{self.output}"
                    )
                self._cond.wait(min(left, 0.5))

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines[-30:])

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the clave commands leave the meeting cleanly on it), then SIGKILL."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait(5)
        self._reader.join(2)
        return self.popen.returncode


@dataclass
class Engine:
    """A clave engine in browser mode: its page URL and the meeting link."""

    proc: Proc
    url: str
    port: int
    link: str

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Processes:
    """Every process started, stopped in reverse order by :meth:`stop_all`."""

    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Proc:
        proc = Proc(name, list(args))
        self.procs.append(proc)
        return proc

    def relay(self) -> str:
        """``clave serve --port 0``: the relay's base URL."""
        proc = self.start("relay", "serve", "--port", "0")
        return proc.wait_line(RELAY_LINE).group(1)

    def engine(self, name: str, *args: str) -> Engine:
        """``clave meet|join ... --no-browser``: wait for its ``open:`` and ``link:`` lines."""
        proc = self.start(name, *args, "--no-browser")
        m = proc.wait_line(OPEN_LINE)
        link = proc.wait_line("link: ").group(0).split(" ", 1)[1]
        return Engine(proc, m.group(1), int(m.group(2)), link)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()


# ---------------------------------------------------------------- browsers


@dataclass(eq=False)
class Glass:
    """One participant's Chromium (its own browser process and profile) and its page."""

    name: str
    context: BrowserContext
    page: Page
    profile: Path
    console: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        """A JSON copy of ``window.claveStats``."""
        result: dict[str, Any] = self.page.evaluate(
            "() => JSON.parse(JSON.stringify(window.claveStats || {}))"
        )
        return result

    def decoded(self) -> dict[str, int]:
        result: dict[str, int] = self.page.evaluate(
            "() => ({...((window.claveStats || {}).decoded || {})})"
        )
        return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.context.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def launch_glass(pw: Playwright, name: str, profile_root: Path) -> Glass:
    """A fresh headless Chromium with fake devices, in a new profile directory."""
    profile = profile_root / f"profile-{name}"
    profile.mkdir(parents=True, exist_ok=False)
    context = pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport=VIEWPORT,  # type: ignore[arg-type]
    )
    try:
        page = context.pages[0] if context.pages else context.new_page()
    except BaseException:
        context.close()
        raise
    glass = Glass(name, context, page, profile)
    page.on("console", lambda msg: glass.console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: glass.console.append(f"pageerror: {exc}"))
    return glass


def join_meeting(glass: Glass, url: str, name: str) -> None:
    """Open the engine's page, type the name and press Join (the lobby may follow)."""
    page = glass.page
    page.goto(url)
    page.locator("#name").fill(name)
    page.locator("#join").click(timeout=15_000)


def wait_in_meeting(glass: Glass, timeout: float = 20.0) -> None:
    """Until the glass shows the meeting and its padlock says encrypted."""
    glass.page.wait_for_function(
        "() => window.claveStats && window.claveStats.phase === 'in_meeting'"
        " && window.claveStats.padlock === 'encrypted'",
        timeout=timeout * 1000,
    )


def admit(host: Glass, who: str, timeout: float = 20.0) -> None:
    """The host admits ``who`` from the lobby, through the page ([data-admit] button)."""
    item = host.page.locator("#lobby li", has_text=who)
    button = item.locator("button[data-admit]")
    button.wait_for(state="visible", timeout=timeout * 1000)
    button.click()
    item.wait_for(state="detached", timeout=timeout * 1000)


def leaves_of(glass: Glass) -> dict[str, int]:
    """``{name: leaf}`` of the members this glass knows."""
    names: dict[str, str] = glass.page.evaluate("() => ({...window.claveStats.names})")
    return {name: int(leaf) for leaf, name in names.items()}


def normalise_code(text: str | None) -> str:
    return " ".join((text or "").split())


@contextlib.contextmanager
def temp_root(prefix: str) -> Iterator[Path]:
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
