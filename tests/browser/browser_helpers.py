"""Helpers for the browser tests and bench/latency.py: clave processes and headless Chromium.

Everything runs as in real use: ``clave serve`` (the relay), ``clave meet`` /
``clave join`` in browser mode (each an engine serving its glass on
127.0.0.1) and ``clave join --headless`` (a Python participant), each in its
own process; every glass is a real Chromium (Playwright, Debian's
``/usr/bin/chromium``) with a fake camera and microphone, in its own browser
process and profile. The Playwright sync API is used.

The documented invitation flow is followed: ``clave meet`` prints ``open: file://…``
(the engine's 0600 launcher file), ``invitation: clave://…`` and the secret-free
``web page for invitees``; guests get the invitation on standard input
(``clave join``) or through ``clave open URL`` (what the ``clave:`` handler runs), never
as an argument of ``clave join``; browsers are given the launcher's ``file://``
address, whose one-time token the engine trades for a session cookie.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from playwright.sync_api import BrowserContext, Page, Playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from clave.engine.launcher import read_target

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
DOC_SCREENSHOTS = "CLAVE_DOC_SCREENSHOTS"
"""Environment variable: a directory that also gets the screenshots the documentation
shows (``CLAVE_DOC_SCREENSHOTS=docs/img``); unset, they go to ARTIFACTS only."""
CLI = [sys.executable, "-m", "clave.cli"]

OPEN_LINE = re.compile(r"^open: (file:///\S+\.html)$")
"""``clave meet|join`` in browser mode: the launcher file to give the browser."""
INVITATION_LINE = re.compile(r"^invitation: (clave://\S+)$")
WEB_PAGE_LINE = re.compile(r"^web page for invitees \(no secret\): (https?://\S+)$")
MEETING_LINE = re.compile(r"^meeting: room (\S+) on relay (\S+)$")
"""What a guest's engine prints once it has read the invitation (never the secret)."""
RELAY_LINE = re.compile(r"^relay listening on (http://127\.0\.0\.1:\d+)$")
TARGET = re.compile(r"http://127\.0\.0\.1:(\d+)/\?t=[A-Za-z0-9_-]+")
PAGE_URL = re.compile(r"^http://127\.0\.0\.1:\d+/$")
"""Where a glass lands after the launcher's hop: the token has left the address bar."""
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")


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
    """A clave subprocess whose output (stdout and stderr merged) is read by a thread.

    ``stdin``: text written to its standard input, then closed (an invitation for
    ``clave join``). ``group``: the command hands over to a child that outlives it
    (``clave open`` forks the engine and returns): :meth:`stop` then signals the whole
    process group, which is this process's own (it starts a new session)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        group: bool = False,
        config_dir: str | None = None,
    ) -> None:
        """``config_dir``: the engine's configuration directory (default: a new one)."""
        self.name = name
        self.group = group
        env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        # each person their own identity, unless one person's engines share one
        env["CLAVE_CONFIG_DIR"] = config_dir or own_config_dir(name)
        src = str(ROOT / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        self.popen = subprocess.Popen(
            [*CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
            start_new_session=True,
        )
        if stdin is not None:
            assert self.popen.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.popen.stdin.write(stdin)
            with contextlib.suppress(BrokenPipeError):
                self.popen.stdin.close()
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
                if not self._reader.is_alive() and self.popen.poll() is not None:
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
        if self.group:
            return self._stop_group(timeout)
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

    def _stop_group(self, timeout: float) -> int | None:
        """SIGTERM to this process's group (its pid is the group's id: it started a new
        session), then SIGKILL; done once every member closed the output pipe."""
        pgid = self.popen.pid
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            self._reader.join(wait)
            if not self._reader.is_alive():
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        return self.popen.returncode


@dataclass
class Engine:
    """A clave engine in browser mode, as its output describes it."""

    proc: Proc
    url: str
    """``file://…``: the launcher file, what the browser is given (``open:``)."""
    launcher: Path
    port: int
    """The meeting page's port (from the launcher file: the tests' own business)."""
    invitation: str | None = None
    """``clave://…#secret.owner``: what the host shares (``invitation:``); None for a guest."""
    info_url: str | None = None
    """The relay's secret-free page for invitees (``web page for invitees``)."""
    meeting: str | None = None
    """A guest's ``meeting: room … on relay …`` line: proof it read an invitation."""

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def own_config_dir(name: str) -> str:
    """A fresh configuration directory (identity key, people book) for one engine, under
    the suite's private one (tests/conftest.py)."""
    base = Path(os.environ.get("CLAVE_CONFIG_DIR") or tempfile.gettempdir())
    path = base / f"{name}-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o700, parents=True)
    return str(path)


def engine_from(proc: Proc, hosting: bool) -> Engine:
    """Read an engine's ``open:`` line, then its invitation lines (host) or its
    ``meeting:`` line (guest)."""
    url = proc.wait_line(OPEN_LINE).group(1)
    launcher = Path(unquote(urlsplit(url).path))
    target = TARGET.fullmatch(read_target(launcher))
    assert target is not None
    engine = Engine(proc, url, launcher, int(target.group(1)))
    if hosting:
        engine.invitation = proc.wait_line(INVITATION_LINE).group(1)
        engine.info_url = proc.wait_line(WEB_PAGE_LINE).group(1)
    else:
        engine.meeting = proc.wait_line(MEETING_LINE).group(0)
    return engine


def without_display() -> dict[str, str]:
    """The environment minus a display (and $BROWSER): an engine then prints its
    launcher and says to open it, as on a server, instead of starting a browser."""
    return {k: v for k, v in os.environ.items() if k not in NO_DISPLAY}


@dataclass
class Processes:
    """Every process started, stopped in reverse order by :meth:`stop_all`."""

    procs: list[Proc] = field(default_factory=list)

    def start(
        self,
        name: str,
        *args: str,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        group: bool = False,
        config_dir: str | None = None,
    ) -> Proc:
        proc = Proc(name, list(args), stdin=stdin, env=env, group=group, config_dir=config_dir)
        self.procs.append(proc)
        return proc

    def relay(self) -> str:
        """``clave serve --port 0``: the relay's base URL."""
        proc = self.start("relay", "serve", "--port", "0")
        return proc.wait_line(RELAY_LINE).group(1)

    def engine(
        self,
        name: str,
        *args: str,
        invitation: str | None = None,
        config_dir: str | None = None,
    ) -> Engine:
        """``clave meet ... --no-browser`` (no ``invitation``), or ``clave join ...
        --no-browser`` with the invitation on its standard input, as a user pastes it.
        Waits for the launcher and the invitation (host) or ``meeting:`` line (guest)."""
        if invitation is None:
            proc = self.start(name, *args, "--no-browser", config_dir=config_dir)
        else:
            proc = self.start(
                name, *args, "--no-browser", stdin=invitation + "\n", config_dir=config_dir
            )
        return engine_from(proc, hosting=invitation is None)

    def open_invitation(self, name: str, invitation: str) -> Engine:
        """``clave open URL``, what the ``clave:`` handler runs when a user clicks the
        invitation: it hands the invitation to a fresh engine through a pipe and returns;
        that engine (no display here) prints its launcher for the user's browser."""
        env = {**without_display(), "CLAVE_TEST_PROCESS": uuid.uuid4().hex}
        proc = self.start(name, "open", invitation, env=env, group=True)
        return engine_from(proc, hosting=False)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()


# ---------------------------------------------------------------- browsers


@dataclass
class Traffic:
    """Everything one browser (context) asked the network for, as Playwright reports it:
    each page's requests (page and dedicated workers), the context's requests, every
    WebSocket a page or its workers opened, and any service worker."""

    page_requests: list[str] = field(default_factory=list)
    context_requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    service_workers: list[str] = field(default_factory=list)

    def watch_context(self, context: BrowserContext) -> None:
        context.on("request", lambda r: self.context_requests.append(r.url))
        context.on("serviceworker", lambda w: self.service_workers.append(w.url))
        context.on("page", self.watch_page)
        for page in context.pages:
            self.watch_page(page)

    def watch_page(self, page: Page) -> None:
        page.on("request", lambda r: self.page_requests.append(r.url))
        page.on("websocket", lambda w: self.websockets.append(w.url))

    def foreign(self, origin: str, launcher: str) -> list[str]:
        """What went anywhere but the engine's own ``origin`` (``http://127.0.0.1:PORT``,
        and ``ws://`` on the same port) or the engine's ``launcher`` file; service workers
        count as foreign whatever their origin."""
        home = urlsplit(origin)
        assert (home.scheme, home.hostname) == ("http", "127.0.0.1") and home.port, origin

        def own(url: str, scheme: str) -> bool:
            u = urlsplit(url)
            return (u.scheme, u.hostname, u.port) == (scheme, "127.0.0.1", home.port)

        return [
            *(f"request {u}" for u in (*self.page_requests, *self.context_requests)
              if u != launcher and not own(u, "http")),
            *(f"websocket {u}" for u in self.websockets if not own(u, "ws")),
            *(f"service worker {u}" for u in self.service_workers),
        ]

    def assert_only(self, origin: str, launcher: str) -> None:
        """Every request and WebSocket went to the engine's origin (or its launcher file),
        and there were some: the page was loaded and its glass connected through them."""
        assert self.foreign(origin, launcher) == [], self.foreign(origin, launcher)
        assert f"{origin}/app.js" in self.page_requests, self.page_requests
        assert f"{origin}/app.js" in self.context_requests, self.context_requests
        assert self.websockets, "no WebSocket recorded: the glass's own should be"


@dataclass(eq=False)
class Glass:
    """One participant's Chromium (its own browser process and profile) and its page."""

    name: str
    context: BrowserContext
    page: Page
    profile: Path
    console: list[str] = field(default_factory=list)
    tab: bool = False
    """Another tab of a browser that another :class:`Glass` owns (:func:`new_tab`)."""
    traffic: Traffic = field(default_factory=Traffic)
    """Every request and WebSocket of this browser's pages (shared by its tabs)."""

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
        if self.tab:
            with contextlib.suppress(Exception):
                self.page.close()
            return
        with contextlib.suppress(Exception):
            self.context.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def _watch_console(glass: Glass) -> Glass:
    glass.page.on("console", lambda msg: glass.console.append(f"{msg.type}: {msg.text}"))
    glass.page.on("pageerror", lambda exc: glass.console.append(f"pageerror: {exc}"))
    return glass


def new_tab(owner: Glass, name: str) -> Glass:
    """A new tab in ``owner``'s browser (same profile, cookies and processes)."""
    return _watch_console(Glass(name, owner.context, owner.context.new_page(), owner.profile,
                                tab=True, traffic=owner.traffic))


def launch_glass(
    pw: Playwright, name: str, profile_root: Path, *, args: list[str] | None = None
) -> Glass:
    """A fresh headless Chromium with fake devices, in a new profile directory (``args``:
    Chromium's command line instead of :data:`CHROMIUM_ARGS`)."""
    profile = profile_root / f"profile-{name}"
    profile.mkdir(parents=True, exist_ok=False)
    context = pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS if args is None else args,
        viewport=VIEWPORT,  # type: ignore[arg-type]
    )
    traffic = Traffic()
    try:
        traffic.watch_context(context)
        page = context.pages[0] if context.pages else context.new_page()
    except BaseException:
        context.close()
        raise
    return _watch_console(Glass(name, context, page, profile, traffic=traffic))


def open_glass(page: Page, url: str) -> None:
    """Open an engine's launcher (``file://…``) in ``page``, as a user's browser would,
    and wait for its hop to the meeting page (``http://127.0.0.1:PORT/``)."""
    page.goto(url)
    page.wait_for_url(PAGE_URL, timeout=15_000)


def join_meeting(glass: Glass, url: str, name: str) -> None:
    """Open the engine's launcher ``url``, type the name and press Join (the lobby may
    follow)."""
    page = glass.page
    open_glass(page, url)
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


LATE_MANIFEST = "no signed manifest in time"
"""A frame failure that is the media authentication working under load: the frame's
signed manifest came later than the hold timeout, so it was dropped, never played."""
LATE_RATIO = 50
"""At most one such drop per this many frames decoded (:func:`assert_frame_failures`)."""


def assert_frame_failures(name: str, failures: list[dict[str, Any]], decoded: int) -> None:
    """Nothing failed to decrypt or to match its manifest; frames dropped because their
    manifest came late (a loaded 2-core machine) are rare next to the frames decoded."""
    wrong = [f for f in failures if LATE_MANIFEST not in f["reason"]]
    assert wrong == [], (name, wrong)
    assert len(failures) * LATE_RATIO <= decoded, (name, decoded, failures)


def host_and_guest(
    pw: Playwright, procs: Processes, root: Path, glasses: list[Glass]
) -> tuple[Engine, Glass, Glass]:
    """Alice hosts from her browser (``clave meet`` on a new relay), Bob joins from his
    (``clave join``) and Alice admits him by clicking; each glass is appended to
    ``glasses`` as it opens (the caller closes them). Alice's engine (its invitation)
    and both glasses."""
    relay = procs.relay()
    alice_engine = procs.engine("alice", "meet", "--relay", relay, "--name", "Alice")
    assert alice_engine.invitation is not None
    alice = launch_glass(pw, "alice", root)
    glasses.append(alice)
    join_meeting(alice, alice_engine.url, "Alice")
    wait_in_meeting(alice)
    bob_engine = procs.engine("bob", "join", "--name", "Bob", invitation=alice_engine.invitation)
    bob = launch_glass(pw, "bob", root)
    glasses.append(bob)
    join_meeting(bob, bob_engine.url, "Bob")
    admit(alice, "Bob")
    wait_in_meeting(bob)
    return alice_engine, alice, bob


def leaves_of(glass: Glass) -> dict[str, int]:
    """``{name: leaf}`` of the members this glass knows."""
    names: dict[str, str] = glass.page.evaluate("() => ({...window.claveStats.names})")
    return {name: int(leaf) for leaf, name in names.items()}


def normalise_code(text: str | None) -> str:
    return " ".join((text or "").split())


SCREENSHOT_ATTEMPTS = 3


def snap(page: Page, path: Path, *, full_page: bool = False) -> None:
    """A screenshot of ``page`` to ``path``, tried again if it times out: a page with live
    video, just resized, on a busy machine may not give headless Chromium a frame in
    time once (the picture waits, the test does not fail for it)."""
    for attempt in range(SCREENSHOT_ATTEMPTS):
        try:
            page.screenshot(path=str(path), full_page=full_page, animations="disabled")
            return
        except PlaywrightTimeoutError:
            if attempt == SCREENSHOT_ATTEMPTS - 1:
                raise


def screenshot(page: Page, name: str, *, full_page: bool = False, doc: bool = True) -> list[Path]:
    """``name``.png of ``page`` in ARTIFACTS and, if ``doc``, in $CLAVE_DOC_SCREENSHOTS when
    that is set (a directory, made if missing); the paths written."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    snap(page, path, full_page=full_page)
    paths = [path]
    doc_dir = os.environ.get(DOC_SCREENSHOTS)
    if doc and doc_dir:
        Path(doc_dir).mkdir(parents=True, exist_ok=True)
        paths.append(Path(shutil.copyfile(path, Path(doc_dir) / path.name)))
    return paths


@contextlib.contextmanager
def temp_root(prefix: str) -> Iterator[Path]:
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
