"""First run: the clave:// handler is registered once per configuration directory, only
on a desktop that allows it, never under CI, and the call never raises.

Each test counts what happened: calls of :func:`handler.install`, files in the
configuration and applications directories, and what ``xdg-mime`` reports as the
default handler (real xdg-utils, installed by scripts/test.sh)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from clave.engine import handler
from clave.engine.first_run import MARKER_FILE, desktop_allows, register_handler_once

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="freedesktop handler (xdg-mime)"
)

CLAVE = [os.path.abspath(sys.executable), "-P", "-m", "clave"]
DE_VARIABLES = (
    "XDG_CURRENT_DESKTOP", "XDG_SESSION_DESKTOP", "DESKTOP_SESSION", "KDE_FULL_SESSION",
    "KDE_SESSION_VERSION", "GNOME_DESKTOP_SESSION_ID", "MATE_DESKTOP_SESSION_ID",
    "DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "DBUS_SESSION_BUS_ADDRESS", "CI",
)


class Desk:
    """A user's directories inside tmp_path, and a count of handler.install calls."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = tmp_path
        self.monkeypatch = monkeypatch
        self.config = tmp_path / "clave-config"
        self.applications = tmp_path / "data" / "applications"
        self.installs = 0
        for name in DE_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        (tmp_path / "home").mkdir(mode=0o700)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
        monkeypatch.setenv("CLAVE_CONFIG_DIR", str(self.config))
        real_install = handler.install

        def counting_install(command: Sequence[str]) -> handler.Registration:
            self.installs += 1
            return real_install(command)

        monkeypatch.setattr(handler, "install", counting_install)

    def files(self) -> list[str]:
        """Every file below tmp_path (relative paths)."""
        return sorted(
            str(p.relative_to(self.root)) for p in self.root.rglob("*") if not p.is_dir()
        )

    def default_handler(self) -> str:
        xdg_mime = shutil.which("xdg-mime")
        assert xdg_mime is not None
        done = subprocess.run(
            [xdg_mime, "query", "default", handler.MIME_TYPE],
            capture_output=True, text=True, timeout=60, check=False,
        )
        return done.stdout.strip()


@pytest.fixture
def desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Desk:
    if shutil.which("xdg-mime") is None:
        pytest.fail(
            "xdg-mime is missing: scripts/test.sh installs it (Debian package xdg-utils)"
        )
    return Desk(tmp_path, monkeypatch)


# ---------------------------------------------------------------------------- the decision


@pytest.mark.parametrize(
    ("environ", "platform", "xdg_mime", "allowed"),
    [
        ({"DISPLAY": ":0"}, "linux", "/usr/bin/xdg-mime", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", "/usr/bin/xdg-mime", True),
        ({"DISPLAY": ":0"}, "freebsd14", "/usr/local/bin/xdg-mime", True),
        ({"DISPLAY": ":0", "CI": "false"}, "linux", "/usr/bin/xdg-mime", True),
        ({}, "linux", "/usr/bin/xdg-mime", False),
        ({"DISPLAY": ""}, "linux", "/usr/bin/xdg-mime", False),
        ({"DISPLAY": ":0"}, "linux", None, False),
        ({"DISPLAY": ":0", "CI": "true"}, "linux", "/usr/bin/xdg-mime", False),
        ({"DISPLAY": ":0", "CI": "1"}, "linux", "/usr/bin/xdg-mime", False),
        ({}, "win32", None, True),
        ({"CI": "true"}, "win32", None, False),
        ({"DISPLAY": ":0"}, "darwin", "/usr/local/bin/xdg-mime", False),
    ],
)
def test_desktop_allows(
    environ: dict[str, str], platform: str, xdg_mime: str | None, allowed: bool
) -> None:
    assert desktop_allows(environ, platform, xdg_mime) is allowed


# ---------------------------------------------------------------------------- on a desktop


def test_first_run_registers_once_per_config_dir(desk: Desk) -> None:
    desk.monkeypatch.setenv("DISPLAY", ":99")
    note = register_handler_once(CLAVE)
    assert note is not None and "\n" not in note and "now open with this Clave" in note
    assert desk.installs == 1
    assert desk.default_handler() == handler.DESKTOP_ID
    assert [p.name for p in desk.applications.iterdir()] == [handler.DESKTOP_ID]
    marker = desk.config / MARKER_FILE
    assert stat.S_IMODE(os.lstat(marker).st_mode) == 0o600
    assert os.listdir(desk.config) == [MARKER_FILE]
    files = desk.files()

    for _ in range(3):
        assert register_handler_once(CLAVE) is None
    assert desk.installs == 1
    assert desk.files() == files

    desk.monkeypatch.setenv("CLAVE_CONFIG_DIR", str(desk.root / "another-config"))
    assert register_handler_once(CLAVE) is not None
    assert desk.installs == 2
    assert (desk.root / "another-config" / MARKER_FILE).is_file()
    assert desk.default_handler() == handler.DESKTOP_ID


def test_wayland_alone_is_a_desktop(desk: Desk) -> None:
    desk.monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert register_handler_once(CLAVE) is not None
    assert desk.installs == 1
    assert (desk.applications / handler.DESKTOP_ID).is_file()


def test_setup_undo_stays_undone(desk: Desk) -> None:
    desk.monkeypatch.setenv("DISPLAY", ":99")
    assert register_handler_once(CLAVE) is not None
    assert not handler.uninstall().registered  # what `clave setup --undo` does
    assert register_handler_once(CLAVE) is None
    assert desk.installs == 1
    assert not (desk.applications / handler.DESKTOP_ID).exists()
    assert desk.default_handler() != handler.DESKTOP_ID


# ---------------------------------------------------------------------------- nothing done


@pytest.mark.parametrize(
    "setting",
    [
        {"DISPLAY": ":99", "CI": "true"},
        {"WAYLAND_DISPLAY": "wayland-0", "CI": "true"},
        {},
        {"DISPLAY": ":99", "PATH": "EMPTY"},  # no xdg-mime
    ],
)
def test_no_desktop_or_ci_does_nothing(desk: Desk, setting: dict[str, str]) -> None:
    for name, value in setting.items():
        if value == "EMPTY":
            (desk.root / "empty-bin").mkdir()
            value = str(desk.root / "empty-bin")
        desk.monkeypatch.setenv(name, value)
    for _ in range(2):
        assert register_handler_once(CLAVE) is None
    assert desk.installs == 0
    assert desk.files() == []
    assert not desk.config.exists()


def test_unusable_config_dir_does_nothing(desk: Desk) -> None:
    desk.monkeypatch.setenv("DISPLAY", ":99")
    desk.config.write_text("not a directory")
    assert register_handler_once(CLAVE) is None
    assert desk.installs == 0
    assert desk.files() == ["clave-config"]


# ---------------------------------------------------------------------------- never raises


@pytest.mark.parametrize("error", [OSError("disk full"), ValueError("bad\ncommand")])
def test_a_failing_install_is_one_line_and_tried_once(
    desk: Desk, error: Exception
) -> None:
    desk.monkeypatch.setenv("DISPLAY", ":99")
    calls = 0

    def failing(command: Sequence[str]) -> handler.Registration:
        nonlocal calls
        calls += 1
        raise error

    desk.monkeypatch.setattr(handler, "install", failing)
    note = register_handler_once(CLAVE)
    assert note is not None and "\n" not in note
    assert "were not registered" in note and "`clave setup`" in note
    assert register_handler_once(CLAVE) is None
    assert calls == 1
    assert desk.files() == [f"clave-config/{MARKER_FILE}"]


def test_a_relative_command_is_reported_not_raised(desk: Desk) -> None:
    desk.monkeypatch.setenv("DISPLAY", ":99")
    note = register_handler_once(["clave"])  # handler.install refuses a relative path
    assert note is not None and "ValueError" in note
    assert desk.installs == 1
    assert not desk.applications.exists()


def test_a_registration_xdg_mime_did_not_confirm_says_so(desk: Desk) -> None:
    desk.monkeypatch.setenv("DISPLAY", ":99")

    def unconfirmed(command: Sequence[str]) -> handler.Registration:
        return handler.Registration(
            "freedesktop", False, actions=["xdg-mime reports the clave:// handler as ''"]
        )

    desk.monkeypatch.setattr(handler, "install", unconfirmed)
    note = register_handler_once(CLAVE)
    assert note is not None and "xdg-mime reports" in note and "tries again" in note

