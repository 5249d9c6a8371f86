"""Register the local engine as the handler of ``clave:`` invitations (``clave setup``).

An invitation (``clave://HOST/m/ROOM#SECRET.OWNER``) must be opened by the local
engine, never by a web page: a page comes from a server, and a hostile relay
could serve one that reads the secret. Registering a scheme handler makes a click
on the invitation run ``clave open <invitation>`` (:mod:`clave.cli`), which hands
the invitation to a fresh engine through a pipe, off its command line.

* Linux and other freedesktop systems: a desktop entry
  ``$XDG_DATA_HOME/applications/clave-invitation.desktop`` (default
  ``~/.local/share/applications``) declaring ``x-scheme-handler/clave``, made the
  default with ``xdg-mime`` when it is installed (``update-desktop-database`` is
  run on that directory when present). Only the user's own files are touched.
* Windows: ``HKEY_CURRENT_USER\\Software\\Classes\\clave`` (per user, no
  administrator needed), written with :mod:`winreg`.
* macOS: a URL scheme belongs to an application bundle (``CFBundleURLTypes`` in its
  ``Info.plist``), which Clave does not build yet: :func:`install` says so and
  changes nothing; paste the invitation into ``clave join`` instead.

Every function is idempotent and returns a :class:`Registration` saying what it did.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SCHEME = "clave"
MIME_TYPE = f"x-scheme-handler/{SCHEME}"
DESKTOP_ID = "clave-invitation.desktop"
WINDOWS_KEY = rf"Software\Classes\{SCHEME}"
_MIMEAPPS_SECTIONS = ("[Default Applications]", "[Added Associations]")

MACOS_STEPS = (
    "macOS: a URL scheme such as clave:// can only be registered by an application "
    "bundle (CFBundleURLTypes in its Info.plist, made known to Launch Services), and "
    "Clave does not ship one yet, so nothing was changed. Open an invitation by running "
    "`clave join` and pasting it at the prompt (or `clave join < FILE`)."
)


def windows_steps(command: str) -> str:
    return (
        "Windows: per user, no administrator needed, create these registry entries:\n"
        rf"  HKEY_CURRENT_USER\{WINDOWS_KEY}  (default) = URL:Clave invitation" "\n"
        rf'  HKEY_CURRENT_USER\{WINDOWS_KEY}  URL Protocol = ""' "\n"
        rf"  HKEY_CURRENT_USER\{WINDOWS_KEY}\shell\open\command  (default) = {command}"
    )


@dataclass
class Registration:
    """What :func:`install`, :func:`uninstall` or :func:`status` found or did."""

    platform: str
    registered: bool
    """After the call: is the scheme handler in place (as far as we can tell)?"""
    desktop_file: Path | None = None
    default_handler: str | None = None
    """What ``xdg-mime query default x-scheme-handler/clave`` answers (None: unknown)."""
    actions: list[str] = field(default_factory=list)
    """One line per thing done or found, for the user."""

    def report(self) -> str:
        return "\n".join(self.actions)


# ---------------------------------------------------------------------------- helpers


def _platform() -> str:
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "freedesktop"


def _xdg_dir(variable: str, default: str) -> Path:
    value = os.environ.get(variable, "")
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / default


def applications_dir() -> Path:
    """``$XDG_DATA_HOME/applications`` (default ``~/.local/share/applications``)."""
    return _xdg_dir("XDG_DATA_HOME", ".local/share") / "applications"


def desktop_path() -> Path:
    return applications_dir() / DESKTOP_ID


def mimeapps_path() -> Path:
    """``$XDG_CONFIG_HOME/mimeapps.list`` (where ``xdg-mime default`` writes)."""
    return _xdg_dir("XDG_CONFIG_HOME", ".config") / "mimeapps.list"


_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def _exec_arg(arg: str) -> str:
    """One argument of a desktop entry's ``Exec`` key, quoted per the Desktop Entry
    Specification (and ``%`` doubled, as field codes require)."""
    arg = arg.replace("%", "%%")
    if arg and not (set(arg) & _EXEC_RESERVED):
        return arg
    inner = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{inner}"'


def _escape_value(text: str) -> str:
    """A desktop entry string value: backslashes escaped (they are escapes there too)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def exec_line(clave_command: Sequence[str]) -> str:
    """``Exec=`` value: the absolute clave command, then ``open %u``."""
    return " ".join(_exec_arg(a) for a in clave_command) + " open %u"


def desktop_entry(clave_command: Sequence[str]) -> str:
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=Clave\n"
        "Comment=Open end-to-end encrypted Clave meeting invitations (clave://)\n"
        f"Exec={_escape_value(exec_line(clave_command))}\n"
        f"MimeType={MIME_TYPE};\n"
        "NoDisplay=true\n"
        "Terminal=false\n"
    )


def windows_command(clave_command: Sequence[str]) -> str:
    """The ``shell\\open\\command`` value: ``"…\\clave.exe" open "%1"``."""
    return subprocess.list2cmdline(list(clave_command)) + ' open "%1"'


def _check_command(clave_command: Sequence[str]) -> list[str]:
    command = [str(a) for a in clave_command]
    if not command or not os.path.isabs(command[0]):
        raise ValueError("the clave command must start with an absolute path")
    if any("\n" in a or "\r" in a or "\0" in a for a in command):
        raise ValueError("the clave command must not contain line breaks or NUL")
    return command


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return done.returncode, (done.stdout + done.stderr).strip()


def query_default() -> str | None:
    """``xdg-mime query default x-scheme-handler/clave``, or None without xdg-mime."""
    xdg_mime = shutil.which("xdg-mime")
    if xdg_mime is None:
        return None
    code, out = _run([xdg_mime, "query", "default", MIME_TYPE])
    return out.strip() if code == 0 else ""


def _update_database(reg: Registration) -> None:
    tool = shutil.which("update-desktop-database")
    if tool is None:
        return
    code, out = _run([tool, str(applications_dir())])
    if code == 0:
        reg.actions.append(f"ran update-desktop-database {applications_dir()}")
    else:
        reg.actions.append(f"update-desktop-database failed (ignored): {out}")


def _write_atomically(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; True if written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _forget_default(reg: Registration) -> None:
    """Remove ``x-scheme-handler/clave=clave-invitation.desktop`` from mimeapps.list
    (``xdg-mime`` has no command for that); other entries are kept as they are."""
    path = mimeapps_path()
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return
    out: list[str] = []
    section = ""
    changed = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        key, eq, value = stripped.partition("=")
        if section in _MIMEAPPS_SECTIONS and eq and key.strip() == MIME_TYPE:
            kept = [v for v in value.split(";") if v.strip() and v.strip() != DESKTOP_ID]
            if len(kept) != len([v for v in value.split(";") if v.strip()]):
                changed = True
                if kept:
                    out.append(f"{MIME_TYPE}={';'.join(kept)};\n")
                continue
        out.append(line)
    if changed:
        _write_atomically(path, "".join(out))
        reg.actions.append(f"removed the {MIME_TYPE} default from {path}")


# ---------------------------------------------------------------------------- freedesktop


def _install_freedesktop(command: list[str]) -> Registration:
    path = desktop_path()
    reg = Registration("freedesktop", False, desktop_file=path)
    if _write_atomically(path, desktop_entry(command)):
        reg.actions.append(f"wrote {path}")
    else:
        reg.actions.append(f"{path} is already up to date")
    reg.actions.append(f"  Exec={exec_line(command)}")
    _update_database(reg)
    xdg_mime = shutil.which("xdg-mime")
    if xdg_mime is None:
        reg.actions.append(
            "xdg-mime not found (Debian/Ubuntu: apt install xdg-utils): the desktop entry "
            f"declares {MIME_TYPE}, but it was not made the default handler"
        )
        reg.registered = True  # desktops that read mimeinfo/desktop entries will find it
        return reg
    code, out = _run([xdg_mime, "default", DESKTOP_ID, MIME_TYPE])
    if code != 0:
        reg.actions.append(f"xdg-mime default failed: {out or code}")
    else:
        reg.actions.append(f"ran xdg-mime default {DESKTOP_ID} {MIME_TYPE}")
    reg.default_handler = query_default()
    reg.registered = reg.default_handler == DESKTOP_ID
    reg.actions.append(
        f"clave:// links now open with {DESKTOP_ID}"
        if reg.registered
        else f"xdg-mime reports the clave:// handler as {reg.default_handler!r}"
    )
    return reg


def _uninstall_freedesktop() -> Registration:
    path = desktop_path()
    reg = Registration("freedesktop", False, desktop_file=path)
    try:
        path.unlink()
        reg.actions.append(f"removed {path}")
    except FileNotFoundError:
        reg.actions.append(f"{path} was not there")
    _forget_default(reg)
    _update_database(reg)
    reg.default_handler = query_default()
    reg.registered = reg.default_handler == DESKTOP_ID
    return reg


def _status_freedesktop(command: list[str] | None) -> Registration:
    path = desktop_path()
    reg = Registration("freedesktop", False, desktop_file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        reg.actions.append(f"not set up: {path} does not exist (run `clave setup`)")
        return reg
    exec_value = next(
        (line[5:] for line in text.splitlines() if line.startswith("Exec=")), "?"
    )
    reg.actions.append(f"{path} exists: Exec={exec_value}")
    if command is not None and text != desktop_entry(command):
        reg.actions.append("  it runs another clave than this one: `clave setup` updates it")
    reg.default_handler = query_default()
    if reg.default_handler is None:
        reg.actions.append("xdg-mime not found: cannot tell which handler is the default")
        reg.registered = True
    else:
        reg.registered = reg.default_handler == DESKTOP_ID
        reg.actions.append(
            f"default {MIME_TYPE} handler: {reg.default_handler or '(none)'}"
        )
    return reg


# ---------------------------------------------------------------------------- Windows


def _install_windows(command: list[str]) -> Registration:
    value = windows_command(command)
    reg = Registration("windows", False)
    if sys.platform != "win32":  # keeps mypy and other platforms away from winreg
        reg.actions.append(windows_steps(value))
        return reg
    import winreg

    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, WINDOWS_KEY) as key:
        winreg.SetValueEx(key, "", 0, winreg.REG_SZ, "URL:Clave invitation")
        winreg.SetValueEx(key, "URL Protocol", 0, winreg.REG_SZ, "")
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, WINDOWS_KEY + r"\shell\open\command") as key:
        winreg.SetValueEx(key, "", 0, winreg.REG_SZ, value)
    reg.registered = True
    reg.actions.append(rf"wrote HKEY_CURRENT_USER\{WINDOWS_KEY}: {value}")
    return reg


def _uninstall_windows() -> Registration:
    reg = Registration("windows", False)
    if sys.platform != "win32":
        reg.actions.append(rf"Windows: delete HKEY_CURRENT_USER\{WINDOWS_KEY} and its subkeys")
        return reg
    import winreg

    removed = False
    for sub in (r"\shell\open\command", r"\shell\open", r"\shell", ""):
        try:
            winreg.DeleteKey(winreg.HKEY_CURRENT_USER, WINDOWS_KEY + sub)
            removed = True
        except FileNotFoundError:
            pass
    reg.actions.append(
        rf"removed HKEY_CURRENT_USER\{WINDOWS_KEY}" if removed else "it was not registered"
    )
    return reg


def _status_windows() -> Registration:
    reg = Registration("windows", False)
    if sys.platform != "win32":
        return reg
    import winreg

    try:
        value = winreg.QueryValue(winreg.HKEY_CURRENT_USER, WINDOWS_KEY + r"\shell\open\command")
    except FileNotFoundError:
        reg.actions.append("not set up (run `clave setup`)")
        return reg
    reg.registered = True
    reg.actions.append(f"clave:// opens with: {value}")
    return reg


# ---------------------------------------------------------------------------- API


def install(clave_command: Sequence[str]) -> Registration:
    """Make ``clave_command open <invitation>`` the handler of ``clave:`` links.

    ``clave_command``: the absolute command that runs this Clave, e.g.
    ``[sys.executable, "-m", "clave"]``."""
    command = _check_command(clave_command)
    platform = _platform()
    if platform == "macos":
        return Registration("macos", False, actions=[MACOS_STEPS])
    if platform == "windows":
        return _install_windows(command)
    return _install_freedesktop(command)


def uninstall() -> Registration:
    """Undo :func:`install` (only what it made)."""
    platform = _platform()
    if platform == "macos":
        return Registration("macos", False, actions=["macOS: nothing was registered"])
    if platform == "windows":
        return _uninstall_windows()
    return _uninstall_freedesktop()


def status(clave_command: Sequence[str] | None = None) -> Registration:
    """Is the handler registered? With ``clave_command``, also whether the registration
    runs that command."""
    platform = _platform()
    if platform == "macos":
        return Registration("macos", False, actions=[MACOS_STEPS])
    if platform == "windows":
        return _status_windows()
    return _status_freedesktop(_check_command(clave_command) if clave_command else None)
