"""The launcher file: the browser gets ``file://…`` (0600, in a 0700 directory), never the
meeting page's token; the token works once and the session cookie after that."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from engine_helpers import raw_request, run

from clave.engine.launcher import Launcher, LauncherError, launcher_html, read_target

TARGET = "http://127.0.0.1:43210/?t=" + "A" * 43
COOKIE = re.compile(r"^(clave_t_\d+)=([A-Za-z0-9_-]+); HttpOnly; SameSite=Strict; Path=/$")
ENGINE_TIMEOUT = 30.0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# ---------------------------------------------------------------------------- the file


def test_launcher_is_private_and_only_a_meta_refresh(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o755)
    launcher = Launcher.create(TARGET, runtime_dir=str(runtime))
    path = launcher.path
    assert path.parent == runtime / "clave"
    assert mode(path.parent) == 0o700 and mode(path) == 0o600
    assert path.parent.stat().st_uid == os.getuid() == path.stat().st_uid
    assert launcher.url == path.as_uri() and launcher.url.startswith("file:///")
    text = path.read_text()
    assert "<script" not in text.lower() and not re.search(r"\son[a-z]+=", text, re.I)
    assert text.count('http-equiv="refresh"') == 1
    assert text.count(TARGET) == 1
    assert read_target(path) == TARGET
    # A second launcher is another file; removing is idempotent and leaves the shared dir.
    other = Launcher.create(TARGET, runtime_dir=str(runtime))
    assert other.path != path
    launcher.remove()
    launcher.remove()
    assert not path.exists() and other.path.exists() and path.parent.is_dir()
    other.remove()


def test_without_a_runtime_dir_a_private_temporary_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    launcher = Launcher.create(TARGET)
    directory = launcher.path.parent
    assert directory.parent == tmp_path
    assert mode(directory) == 0o700 and mode(launcher.path) == 0o600
    launcher.remove()
    assert not directory.exists()


def test_an_existing_dir_is_tightened_and_a_symlink_refused(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    (runtime / "clave").mkdir(parents=True, mode=0o755)
    os.chmod(runtime / "clave", 0o755)
    Launcher.create(TARGET, runtime_dir=str(runtime)).remove()
    assert mode(runtime / "clave") == 0o700

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planted = tmp_path / "run2"
    planted.mkdir()
    (planted / "clave").symlink_to(elsewhere)
    with pytest.raises(LauncherError):
        Launcher.create(TARGET, runtime_dir=str(planted))
    assert list(elsewhere.iterdir()) == []


def test_only_a_local_token_address_is_written() -> None:
    for bad in (
        "http://evil.example/?t=" + "A" * 43,
        "javascript:alert(1)",
        'http://127.0.0.1:1/?t=AAAAAAAAAAAAAAAAAAAA"><script>',
        "http://127.0.0.1:1/",
    ):
        with pytest.raises(ValueError):
            launcher_html(bad)


def test_the_ui_server_writes_and_deletes_its_launcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clave.engine.bridge import GlassBridge
    from clave.engine.ui_server import UIServer
    from clave.meeting.link import new_link

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "index.html").write_text("<!doctype html><title>glass</title>")

    def bridge() -> GlassBridge:
        link = new_link("http://127.0.0.1:9", os.urandom, os.urandom(32))  # never contacted
        return GlassBridge(link, host=False)

    async def scenario() -> None:
        plain = UIServer(bridge(), files=ui)
        await plain.start()
        assert plain.launcher_path is None and plain.launcher_url is None
        await plain.stop()

        server = UIServer(bridge(), files=ui, launcher=True)
        url = await server.start()
        path = server.launcher_path
        assert path is not None and path.parent == tmp_path / "clave"
        assert server.launcher_url == path.as_uri()
        assert read_target(path) == url == server.url
        assert mode(path) == 0o600
        await server.stop()
        assert not path.exists() and server.launcher_path is None

    run(scenario())


# ---------------------------------------------------------------------------- the CLI

RECORDER = """#!/bin/sh
# A stand-in browser: records its arguments, one per line, then a separator.
for a in "$@"; do printf '%s\\n' "$a"; done >> "{out}"
printf -- '--end--\\n' >> "{out}"
"""


def recorder(tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "browser-argv.txt"
    script = tmp_path / "browser.sh"
    script.write_text(RECORDER.format(out=out))
    script.chmod(0o700)
    return script, out


def invitation(live_relay: str) -> tuple[str, bytes]:
    from clave.meeting.link import new_link

    link = new_link(live_relay, os.urandom, os.urandom(32))  # answers, but no meeting is joined
    return link.url, link.secret


def engine_env(tmp_path: Path, browser: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        BROWSER=str(browser),
        DISPLAY=":99",  # a display for webbrowser to believe in; the browser is a recorder
        XDG_RUNTIME_DIR=str(tmp_path / "runtime"),
        HOME=str(tmp_path / "home"),
    )
    env.pop("WAYLAND_DISPLAY", None)
    (tmp_path / "runtime").mkdir(mode=0o700)
    (tmp_path / "home").mkdir()
    return env


def all_cmdlines() -> Iterator[tuple[int, bytes]]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    yield int(entry), f.read()
            except OSError:
                continue  # gone, or not ours to read


async def read_until(stream: asyncio.StreamReader, prefix: str, seen: list[str]) -> str:
    while True:
        raw = await asyncio.wait_for(stream.readline(), ENGINE_TIMEOUT)
        if not raw:
            raise AssertionError(f"no {prefix!r} line; output so far: {seen}")
        line = raw.decode().rstrip("\n")
        seen.append(line)
        if line.startswith(prefix):
            return line


async def until_file(path: Path, marker: str) -> str:
    for _ in range(int(ENGINE_TIMEOUT / 0.05)):
        if path.exists() and marker in (text := path.read_text()):
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never got {marker!r}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_join_opens_the_browser_with_the_launcher_never_the_token(
    tmp_path: Path, live_relay: str
) -> None:
    browser, recorded = recorder(tmp_path)
    env = engine_env(tmp_path, browser)
    url, secret = invitation(live_relay)

    async def scenario() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clave", "join", "--name", "Grace",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        seen: list[str] = []
        try:
            proc.stdin.write(url.encode() + b"\n")
            await proc.stdin.drain()
            proc.stdin.close()
            line = await read_until(proc.stdout, "open: ", seen)
            launcher_url = line.split(" ", 1)[1]
            assert launcher_url.startswith("file:///")
            path = Path(unquote(urlsplit(launcher_url).path))
            assert path.parent == tmp_path / "runtime" / "clave"
            assert mode(path) == 0o600 and mode(path.parent) == 0o700

            # The browser was started with the launcher file, and nothing else.
            argv = (await until_file(recorded, "--end--")).splitlines()
            assert argv == [launcher_url, "--end--"]

            target = read_target(path)
            m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\?t=([A-Za-z0-9_-]+)", target)
            assert m is not None
            port, token = int(m.group(1)), m.group(2)
            assert token not in recorded.read_text()
            leaks = [
                pid for pid, cmdline in all_cmdlines()
                if token.encode() in cmdline or secret.hex().encode() in cmdline
                or url.split("#")[1].split(".")[0].encode() in cmdline
            ]
            assert leaks == []

            # The token works once; then only the session cookie it was traded for.
            first = await raw_request(port, f"/?t={token}")
            assert first.status == 200
            cookie = COOKIE.match(first.headers["set-cookie"])
            assert cookie is not None and cookie.group(1) == f"clave_t_{port}"
            assert cookie.group(2) != token
            second = await raw_request(port, f"/?t={token}")
            assert second.status == 403 and "set-cookie" not in second.headers
            page = await raw_request(port, "/", {"Cookie": f"{cookie.group(1)}={cookie.group(2)}"})
            assert page.status == 200 and b"<!doctype html" in page.body[:200].lower()
            again = await raw_request(port, "/", {"Cookie": f"{cookie.group(1)}={token}"})
            assert again.status == 403

            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), ENGINE_TIMEOUT)
            assert proc.returncode == 0, err.decode()
            stdout = "\n".join(seen) + out.decode()
            assert token not in stdout and token not in err.decode()
            assert url.split("#")[1] not in stdout  # a guest never prints the invitation
            assert not path.exists()  # deleted when the engine stopped
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    run(scenario(), timeout=ENGINE_TIMEOUT * 3)


def test_no_browser_prints_the_launcher_not_the_token(tmp_path: Path, live_relay: str) -> None:
    browser, recorded = recorder(tmp_path)
    env = engine_env(tmp_path, browser)
    url, _ = invitation(live_relay)

    async def scenario() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clave", "join", "--no-browser", "--duration", "2",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(url.encode()), ENGINE_TIMEOUT)
        assert proc.returncode == 0, err.decode()
        text = out.decode()
        opens = re.findall(r"^open: (\S+)$", text, re.M)
        assert len(opens) == 1 and opens[0].startswith("file:///")
        assert "?t=" not in text and not re.search(r"http://127\.0\.0\.1:\d+/", text)
        assert not recorded.exists()  # --no-browser: no browser started
        assert not Path(unquote(urlsplit(opens[0]).path)).exists()

    run(scenario(), timeout=ENGINE_TIMEOUT * 2)


# ---------------------------------------------------------------------------- a real browser

GLASS_JS = """
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.onmessage = () => { document.title = "connected"; };
ws.onerror = () => { document.title = "refused"; };
"""


def test_chromium_follows_the_launcher_and_keeps_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher is a file: page, so Chromium's navigation to the token is cross-site
    and carries no cookie: the exchange must allow that, and its same-origin hop to / is
    what makes the strict cookie flow (and reloads work)."""
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("/usr/bin/chromium is missing: scripts/test.sh installs it")
    from playwright.async_api import async_playwright

    from clave.engine.bridge import GlassBridge
    from clave.engine.ui_server import UIServer
    from clave.meeting.link import new_link

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "index.html").write_text(
        '<!doctype html><title>page</title><script src="/glass.js"></script>'
    )
    (ui / "glass.js").write_text(GLASS_JS)
    link = new_link("http://127.0.0.1:9", os.urandom, os.urandom(32))  # never contacted

    async def scenario() -> None:
        server = UIServer(GlassBridge(link, host=False), files=ui, launcher=True)
        await server.start()
        try:
            launcher = server.launcher_url
            assert launcher is not None
            async with async_playwright() as pw:
                context = await pw.chromium.launch_persistent_context(
                    str(tmp_path / "profile"), executable_path="/usr/bin/chromium",
                    headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
                )
                try:
                    # A new tab: closing a browser's last tab ends its session, and the
                    # session cookie with it (then only a restarted engine lets it in).
                    page = await context.new_page()
                    await page.goto(launcher)
                    await page.wait_for_function("() => document.title === 'connected'")
                    assert page.url == f"{server.origin}/"  # the token left the address bar
                    assert server.token_used
                    cookies = await context.cookies()
                    assert [c["name"] for c in cookies] == [server.cookie_name]
                    assert cookies[0]["value"] == server.session != server.token
                    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
                    await page.close()  # one glass at a time
                    for _ in range(100):
                        if not server.bridge.glass_connected:
                            break
                        await asyncio.sleep(0.05)

                    again = await context.new_page()
                    await again.goto(launcher)  # the spent token: refused
                    await again.wait_for_function("() => document.body.innerText.includes('once')")
                    assert await again.title() != "connected"
                    await again.goto(f"{server.origin}/")  # typed: the cookie serves the page
                    await again.wait_for_function("() => document.title === 'connected'")
                    await again.reload()
                    await again.wait_for_function("() => document.title === 'connected'")
                finally:
                    await context.close()
        finally:
            await server.stop()

    run(scenario(), timeout=60)
