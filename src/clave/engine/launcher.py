"""The launcher file: how the browser reaches the meeting page without a token in argv.

The meeting page's address carries a one-time token (``http://127.0.0.1:PORT/?t=TOKEN``,
see :mod:`.ui_server`). Handing that address to the browser on its command line
would put the token in ``/proc/PID/cmdline``, readable by every local user, who
could then take over the meeting page. So the engine writes the address into a
small HTML file only its user can read and opens ``file://<that file>`` instead:

* the directory is ``$XDG_RUNTIME_DIR/clave`` (mode 0700, owned by the user), or a
  fresh 0700 temporary directory when ``XDG_RUNTIME_DIR`` is unset;
* the file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600, so an
  existing file or a planted symbolic link is never written through;
* its only content is a ``<meta http-equiv="refresh">`` to the page: no script;
* it is deleted when the engine stops (and the token in it works only once anyway).
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import secrets
import stat
import sys
import tempfile
from pathlib import Path

SUBDIR = "clave"
PREFIX = "meeting-"
SUFFIX = ".html"
_TARGET = re.compile(r"http://127\.0\.0\.1:[0-9]{1,5}/\?t=[A-Za-z0-9_-]{16,128}")
_REFRESH = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)">')


class LauncherError(OSError):
    """The launcher file could not be created safely."""


def launcher_html(target: str) -> str:
    """The file's content: a meta refresh to ``target`` and nothing that runs."""
    if not _TARGET.fullmatch(target):
        raise ValueError("a launcher only points at http://127.0.0.1:PORT/?t=TOKEN")
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f'<meta http-equiv="refresh" content="0; url={html.escape(target)}">\n'
        "<title>Clave</title></head><body></body></html>\n"
    )


def read_target(path: Path) -> str:
    """The page address inside a launcher file (for tests and tools)."""
    found = _REFRESH.search(path.read_text(encoding="utf-8"))
    if found is None or not _TARGET.fullmatch(html.unescape(found.group(1))):
        raise ValueError(f"{path} is not a Clave launcher file")
    return html.unescape(found.group(1))


def _private_dir(path: Path) -> None:
    """Make sure ``path`` is a real directory of ours that nobody else can enter."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise LauncherError(f"{path} is not a directory (a symbolic link?)")
    if sys.platform != "win32":
        if info.st_uid != os.getuid():
            raise LauncherError(f"{path} belongs to another user")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(path, 0o700)


class Launcher:
    """One launcher file. ``Launcher.create(target)``; ``remove()`` when done."""

    def __init__(self, path: Path, own_dir: Path | None) -> None:
        self.path = path
        self._own_dir = own_dir  # a temporary directory made for this file alone

    @property
    def url(self) -> str:
        """``file:///…/meeting-….html``: what the browser is given."""
        return self.path.as_uri()

    @classmethod
    def create(cls, target: str, runtime_dir: str | None = None) -> Launcher:
        """Write a launcher for ``target``. ``runtime_dir`` defaults to
        ``$XDG_RUNTIME_DIR``; without one, a private temporary directory is made."""
        body = launcher_html(target).encode("utf-8")
        base = runtime_dir if runtime_dir is not None else os.environ.get("XDG_RUNTIME_DIR")
        own_dir: Path | None = None
        if base and Path(base).is_absolute() and Path(base).is_dir():
            directory = Path(base) / SUBDIR
            _private_dir(directory)
        else:
            directory = own_dir = Path(tempfile.mkdtemp(prefix="clave-"))  # mode 0700
        path = directory / f"{PREFIX}{secrets.token_hex(8)}{SUFFIX}"
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_EXCL
            | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        )
        try:
            fd = os.open(path, flags, 0o600)
        except OSError:
            if own_dir is not None:
                with contextlib.suppress(OSError):
                    own_dir.rmdir()
            raise
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        os.close(fd)
        return cls(path, own_dir)

    def remove(self) -> None:
        """Delete the file (and the temporary directory made for it). Idempotent."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self._own_dir is not None:
            with contextlib.suppress(OSError):
                self._own_dir.rmdir()
