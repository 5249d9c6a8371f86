"""First run: register the ``clave:`` invitation handler once, where the desktop allows it.

``clave meet`` and ``clave join`` call :func:`register_handler_once`. The first time
they run for a configuration directory (:func:`clave.engine.store.config_dir`) on a
desktop that lets a user register a URL scheme handler (Linux and other freedesktop
systems with ``DISPLAY`` or ``WAYLAND_DISPLAY`` set and ``xdg-mime`` installed;
Windows), it does what ``clave setup`` does (:func:`clave.engine.handler.install`)
after leaving the marker file :data:`MARKER_FILE` in that directory, so it is tried
only once: a later ``clave setup --undo`` stays undone. Nothing is done or written
when ``CI`` is set, without a display, or on macOS (only an application bundle can
register a scheme there; ``clave setup`` explains).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import handler
from .store import ConfigStore, StoreError

__all__ = ["MARKER_FILE", "desktop_allows", "register_handler_once"]

MARKER_FILE = "handler-registered"
"""In the configuration directory: the first run has registered the handler (or tried)."""
_MARKER_TEXT = (
    "The first `clave meet`/`clave join` registered the clave:// handler here; "
    "`clave setup --undo` removes it, `clave setup` registers it again.\n"
)
_NOT_CI = ("", "0", "false", "no")


def desktop_allows(environ: Mapping[str, str], platform: str, xdg_mime: str | None) -> bool:
    """Whether a first run may register the handler: a desktop is there and lets a user
    do it, and this is not CI. ``platform`` is a ``sys.platform`` value, ``xdg_mime``
    the path of ``xdg-mime`` (None: not installed)."""
    if environ.get("CI", "").strip().lower() not in _NOT_CI:
        return False
    if platform == "win32":
        return True
    if platform == "darwin":
        return False
    display = environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")
    return bool(display) and xdg_mime is not None


def _claim(marker: Path) -> bool:
    """Create the marker (0600, never over an existing file or link); False if it exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(marker, flags, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(_MARKER_TEXT)
    return True


def _one_line(text: str) -> str:
    return " ".join(text.split())


def register_handler_once(clave_command: Sequence[str]) -> str | None:
    """Register ``clave_command open <invitation>`` as the ``clave:`` handler the first
    time Clave runs for this configuration directory on a desktop that allows it.

    Returns a one-line note to print, or None when nothing was tried (already done, CI,
    no desktop, macOS, or an unusable configuration directory, which the engine reports
    itself). Never raises."""
    try:
        if not desktop_allows(os.environ, sys.platform, shutil.which("xdg-mime")):
            return None
        try:
            marker = ConfigStore().path / MARKER_FILE
        except StoreError:
            return None
        if os.path.lexists(marker) or not _claim(marker):
            return None
        reg = handler.install(clave_command)
    except Exception as exc:
        return _one_line(
            f"clave:// invitation links were not registered ({type(exc).__name__}: {exc}); "
            "`clave setup` registers them"
        )
    if reg.registered:
        return "clave:// invitation links now open with this Clave (`clave setup --undo` undoes it)"
    why = reg.actions[-1] if reg.actions else "unknown reason"
    return _one_line(
        f"clave:// invitation links were not registered ({why}); `clave setup` tries again"
    )
