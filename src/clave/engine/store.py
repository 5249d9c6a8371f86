"""The engine's private files: long-term identity key and people book.

Everything lives in one directory (:func:`config_dir`, mode 0700):

* ``identity.key``: the raw 32-byte Ed25519 private key (mode 0600), made once;
* ``people.json``: the :class:`~clave.meeting.people.PeopleBook` (mode 0600),
  replaced atomically on every save;
* ``glass.json``: the choices the meeting page asked to keep for next time (its
  name, devices by label, language, layout; :mod:`clave.engine.glass_prefs`), mode
  0600, replaced atomically;
* ``handler-registered``: an empty marker (mode 0600) once the first run on a desktop
  registered the ``clave:`` handler (:mod:`clave.engine.first_run`).

Files that are symbolic links, belong to another user, or are open to group or
others are refused with a :class:`StoreError` that says how to fix them.
Nothing else is written, and neither keys nor names are ever logged. Owner and
mode checks are POSIX-only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from ..meeting.errors import IdentityError
from ..meeting.identity import KEY_BYTES, Identity
from ..meeting.people import MAX_BOOK_BYTES, PeopleBook

__all__ = ["ConfigStore", "StoreError", "config_dir"]

IDENTITY_FILE = "identity.key"
PEOPLE_FILE = "people.json"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted in place of a file must not hang us


class StoreError(Exception):
    """A configuration file or directory is unsafe, unreadable or corrupt."""


def config_dir() -> Path:
    """``$CLAVE_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/clave``, else ``~/.config/clave``."""
    explicit = os.environ.get("CLAVE_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec says to ignore relative paths
        return Path(xdg) / "clave"
    return Path.home() / ".config" / "clave"


def _uid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def _check_private(st: os.stat_result, path: Path, what: str) -> None:
    """Refuse a file that is not a regular file of ours closed to group and others."""
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(
            f"{path} is not a regular file; move it away so Clave can make a new {what}"
        )
    uid = _uid()
    if uid is not None and st.st_uid != uid:
        raise StoreError(
            f"{path} belongs to another user (uid {st.st_uid}); "
            f"move it away so Clave can make a new {what}"
        )
    mode = stat.S_IMODE(st.st_mode)
    if uid is not None and mode & 0o077:
        raise StoreError(
            f"{path} is open to group or others (mode {mode:04o}); if nobody else could "
            f"have read it, run: chmod 600 '{path}'; otherwise delete it to make a new {what}"
        )


class ConfigStore:
    """The engine's configuration directory (created with mode 0700 if missing)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else config_dir()
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.stat(self.path)
        except OSError as exc:
            raise StoreError(f"cannot create the Clave configuration directory: {exc}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise StoreError(f"{self.path} is not a directory")
        uid = _uid()
        if uid is None:
            return
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid != uid:
            raise StoreError(f"{self.path} belongs to another user (uid {st.st_uid})")
        if mode & 0o022:
            raise StoreError(
                f"{self.path} is writable by group or others (mode {mode:04o}), so anyone "
                f"could replace Clave's identity key; run: chmod 700 '{self.path}'"
            )
        if mode & 0o077:
            os.chmod(self.path, 0o700)  # ours, only readable by others: tighten

    # -- identity key ------------------------------------------------------

    def load_or_create_identity(self, rng: Callable[[int], bytes] = os.urandom) -> Identity:
        """The long-term identity in ``identity.key``, made from ``rng(32)`` if missing."""
        path = self.path / IDENTITY_FILE
        data = self._read_private(path, "identity key", KEY_BYTES + 1)
        if data is None:
            identity = Identity.generate(rng)
            tmp = self.path / f".{IDENTITY_FILE}.{secrets.token_hex(8)}.tmp"
            try:
                # Complete before it has its name: link() fails if another engine won.
                self._write_new(tmp, identity.private_bytes)
                os.link(tmp, path)
                return identity
            except FileExistsError:  # another engine made it meanwhile: use theirs
                data = self._read_private(path, "identity key", KEY_BYTES + 1)
            except OSError as exc:
                raise StoreError(f"cannot create {path}: {exc}") from None
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        if data is None or len(data) != KEY_BYTES:
            raise StoreError(
                f"{path} is not a Clave identity key (expected {KEY_BYTES} bytes); "
                f"move it away so Clave can make a new identity key"
            )
        return Identity.from_private_bytes(data)

    # -- people book -------------------------------------------------------

    def load_people(self) -> PeopleBook:
        """The saved people book (empty if none was saved)."""
        path = self.path / PEOPLE_FILE
        data = self._read_private(path, "people book", MAX_BOOK_BYTES + 1)
        if data is None:
            return PeopleBook()
        try:
            return PeopleBook.from_bytes(data)
        except IdentityError as exc:
            raise StoreError(
                f"{path} is corrupt ({exc}); move it away to start a new people book"
            ) from None

    def save_people(self, book: PeopleBook) -> None:
        """Replace ``people.json`` atomically (temporary 0600 file, fsync, rename)."""
        self.replace(PEOPLE_FILE, book.to_bytes())

    # -- small private files -------------------------------------------------

    def read(self, name: str, what: str, limit: int) -> bytes | None:
        """The contents of the private file ``name`` (None if missing), at most ``limit``
        bytes; unsafe files are refused with a :class:`StoreError`."""
        return self._read_private(self.path / name, what, limit)

    def replace(self, name: str, data: bytes) -> None:
        """Replace the file ``name`` atomically (temporary 0600 file, fsync, rename)."""
        path = self.path / name
        tmp = self.path / f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            self._write_new(tmp, data)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise StoreError(f"cannot save {path}: {exc}") from None
        self._sync_dir()

    # -- file helpers ------------------------------------------------------

    def _read_private(self, path: Path, what: str, limit: int) -> bytes | None:
        """Contents of a private file (None if missing); symlinks and open modes refused."""
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC | _BINARY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if path.is_symlink():
                raise StoreError(
                    f"{path} is a symbolic link; Clave refuses to follow it. "
                    f"Replace it with the file itself"
                ) from None
            raise StoreError(f"cannot read {path}: {exc}") from None
        try:
            _check_private(os.fstat(fd), path, what)
            data = b""
            while len(data) < limit and (chunk := os.read(fd, limit - len(data))):
                data += chunk
            return data
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc}") from None
        finally:
            os.close(fd)

    def _write_new(self, path: Path, data: bytes) -> None:
        """Create ``path`` (mode 0600, never over an existing file or link) with ``data``."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
        fd = os.open(path, flags, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self._sync_dir()

    def _sync_dir(self) -> None:
        """fsync the directory so a rename or creation survives a crash (POSIX)."""
        if os.name != "posix":
            return
        fd = os.open(self.path, os.O_RDONLY | _CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
