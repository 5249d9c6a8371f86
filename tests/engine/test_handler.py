"""``clave setup``: the clave:// scheme handler, in the user's own directories only.

The desktop entry and ``xdg-mime`` are checked for real (Debian package xdg-utils,
installed by scripts/test.sh), and so is the whole path a click takes: ``xdg-open
clave://…`` runs the handler, which starts an engine whose command line holds no secret.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from clave.engine import handler

CLAVE = [sys.executable, "-m", "clave"]
TIMEOUT = 30.0
DE_VARIABLES = (
    "XDG_CURRENT_DESKTOP", "XDG_SESSION_DESKTOP", "DESKTOP_SESSION", "KDE_FULL_SESSION",
    "KDE_SESSION_VERSION", "GNOME_DESKTOP_SESSION_ID", "MATE_DESKTOP_SESSION_ID",
    "DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "DBUS_SESSION_BUS_ADDRESS",
)


def need_xdg_mime() -> str:
    found = shutil.which("xdg-mime")
    if found is None:
        pytest.fail(
            "xdg-mime is missing: scripts/test.sh installs it (Debian package xdg-utils); "
            "run `apt-get install xdg-utils`"
        )
    return found


def user_env(tmp_path: Path) -> dict[str, str]:
    """HOME and the XDG directories inside tmp_path; no desktop environment."""
    env = {k: v for k, v in os.environ.items() if k not in DE_VARIABLES}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    for name in ("home", "runtime"):
        (tmp_path / name).mkdir(exist_ok=True, mode=0o700)
    return env


def clave(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLAVE, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def query_default(env: dict[str, str]) -> str:
    done = subprocess.run(
        [need_xdg_mime(), "query", "default", "x-scheme-handler/clave"],
        env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )
    return done.stdout.strip()


def entry_of(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:] if line)


def expected_exec() -> str:
    return f"{os.path.abspath(sys.executable)} -P -m clave open %u"


# ---------------------------------------------------------------------------- clave setup


def test_setup_registers_the_scheme_handler_idempotently(tmp_path: Path) -> None:
    need_xdg_mime()
    env = user_env(tmp_path)
    config = tmp_path / "config"
    config.mkdir()
    other = "[Default Applications]\ntext/html=firefox.desktop\n"
    (config / "mimeapps.list").write_text(other)

    desktop = tmp_path / "data" / "applications" / "clave-invitation.desktop"
    for round_ in range(2):
        done = clave(env, "setup")
        assert done.returncode == 0, done.stderr
        assert f"Exec={expected_exec()}" in done.stdout
        assert ("already up to date" in done.stdout) == (round_ == 1)
        entry = entry_of(desktop)
        assert entry == {
            "Type": "Application",
            "Name": "Clave",
            "Comment": entry["Comment"],
            "Exec": expected_exec(),
            "MimeType": "x-scheme-handler/clave;",
            "NoDisplay": "true",
            "Terminal": "false",
        }
        assert query_default(env) == "clave-invitation.desktop"
        mimeapps = (config / "mimeapps.list").read_text()
        assert mimeapps.count("x-scheme-handler/clave=") == 1
        assert "text/html=firefox.desktop" in mimeapps
    assert [p.name for p in (tmp_path / "data" / "applications").iterdir()] == [desktop.name]

    status = clave(env, "setup", "--status")
    assert status.returncode == 0, status.stderr
    assert "default x-scheme-handler/clave handler: clave-invitation.desktop" in status.stdout

    for _ in range(2):
        done = clave(env, "setup", "--undo")
        assert done.returncode == 0, done.stderr
        assert not desktop.exists()
        assert query_default(env) != "clave-invitation.desktop"
        mimeapps = (config / "mimeapps.list").read_text()
        assert "x-scheme-handler/clave" not in mimeapps
        assert "text/html=firefox.desktop" in mimeapps
    status = clave(env, "setup", "--status")
    assert status.returncode == 1 and "not set up" in status.stdout


def test_default_directories_are_under_home(tmp_path: Path) -> None:
    need_xdg_mime()
    env = user_env(tmp_path)
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        del env[name]
    done = clave(env, "setup")
    assert done.returncode == 0, done.stderr
    home = tmp_path / "home"
    desktop = home / ".local/share/applications/clave-invitation.desktop"
    assert entry_of(desktop)["Exec"] == expected_exec()
    assert "x-scheme-handler/clave=clave-invitation.desktop" in (
        home / ".config/mimeapps.list"
    ).read_text()
    assert clave(env, "setup", "--undo").returncode == 0
    assert not desktop.exists()


# ---------------------------------------------------------------------------- a click


def cmdlines() -> list[tuple[int, bytes]]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found.append((int(entry), f.read()))
            except OSError:
                continue
    return found


def engine_pid(marker: str) -> int | None:
    needle = f"CLAVE_TEST_MARKER={marker}".encode()
    for pid, cmdline in cmdlines():
        if b"--link-fd" in cmdline:
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        return pid
            except OSError:
                continue
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_xdg_open_of_an_invitation_starts_an_engine_with_a_clean_command_line(
    tmp_path: Path, live_relay: str
) -> None:
    """What a browser does with a clicked clave:// link on a desktop xdg-open does not
    recognise: ``xdg-open URL`` runs the handler and waits for it. ``clave open``
    returns at once, so not even xdg-open keeps the invitation in its arguments."""
    from clave.meeting.link import b64url_encode, new_link

    need_xdg_mime()
    if shutil.which("xdg-open") is None:
        pytest.fail("xdg-open is missing: scripts/test.sh installs xdg-utils")
    env = user_env(tmp_path)
    assert clave(env, "setup").returncode == 0
    recorded = tmp_path / "browser-argv.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{recorded}"\n')
    browser.chmod(0o700)
    marker = uuid.uuid4().hex
    env.update(DISPLAY=":99", BROWSER=str(browser), CLAVE_TEST_MARKER=marker)

    link = new_link(live_relay, os.urandom, os.urandom(32))  # answers, but no meeting is joined
    forms = [b64url_encode(link.secret).encode(), link.secret.hex().encode()]
    opener = subprocess.Popen(
        ["xdg-open", link.url], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    engine: int | None = None
    try:
        assert opener.wait(timeout=TIMEOUT) == 0, opener.stderr
        for _ in range(int(TIMEOUT / 0.05)):
            engine = engine_pid(marker)
            if engine is not None and recorded.exists():
                break
            time.sleep(0.05)
        assert engine is not None, "no engine was started by the handler"
        with open(f"/proc/{engine}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")[:-1]
        assert argv[-4:-1] == [b"clave", b"join", b"--link-fd"]
        leaks = [pid for pid, cmdline in cmdlines() if any(f in cmdline for f in forms)]
        assert leaks == []
        opened = recorded.read_text().split()
        assert len(opened) == 1 and re.fullmatch(r"file:///\S+/clave/meeting-\w+\.html", opened[0])
    finally:
        if engine is not None:
            os.kill(engine, signal.SIGTERM)
        if opener.poll() is None:
            opener.kill()
        out, err = opener.communicate(timeout=TIMEOUT)
    assert all(f.decode() not in out + err for f in forms)


# ---------------------------------------------------------------------------- the pieces


def test_exec_line_quotes_per_the_desktop_entry_specification() -> None:
    assert handler.exec_line(["/usr/bin/python3", "-P", "-m", "clave"]) == (
        "/usr/bin/python3 -P -m clave open %u"
    )
    assert handler.exec_line(["/opt/my apps/py$thon\"3", "-m", "100%"]) == (
        '"/opt/my apps/py\\$thon\\"3" -m 100%% open %u'
    )
    entry = handler.desktop_entry(["/a\\b/python"])
    assert 'Exec="/a\\\\\\\\b/python" open %u' in entry  # quoted, then string-escaped
    with pytest.raises(ValueError):
        handler.install(["relative/python"])
    with pytest.raises(ValueError):
        handler.install(["/usr/bin/python3\nExec=/bin/evil"])


def test_windows_command_and_manual_steps() -> None:
    command = handler.windows_command([r"C:\Program Files\Clave\clave.exe"])
    assert command == r'"C:\Program Files\Clave\clave.exe" open "%1"'
    steps = handler.windows_steps(command)
    assert r"HKEY_CURRENT_USER\Software\Classes\clave" in steps
    assert "URL Protocol" in steps and command in steps


def test_macos_changes_nothing_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    reg = handler.install(["/usr/bin/python3", "-m", "clave"])
    assert reg.platform == "macos" and not reg.registered
    assert "CFBundleURLTypes" in reg.report() and "clave join" in reg.report()
    assert list(tmp_path.iterdir()) == []
    assert not handler.uninstall().registered
