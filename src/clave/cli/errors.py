"""How the ``clave`` command fails: one line on standard error and an exit status.

Every expected failure raises :class:`CliError`; :func:`clave.cli.main` prints its
message as ``clave: MESSAGE`` and exits with its status. Anything else is a bug:
one line too, and the traceback only with ``--debug``.
"""

from __future__ import annotations

EXIT_USAGE = 2
"""A bad or missing invitation, a bad option, an unusable configuration directory."""
EXIT_RELAY = 3
"""The relay is down, is not a Clave relay, speaks another scheme, or fails TLS."""
EXIT_NOT_ADMITTED = 4
"""The meeting declined us: refused, locked, full, or nobody answered."""
EXIT_LOCAL = 5
"""Something on this machine: a port already in use, a page that cannot be served."""
EXIT_BUG = 70
"""An unexpected error (a bug): reported in one line, the traceback with ``--debug``."""


class CliError(Exception):
    """An expected failure of a command: ``message`` (one line) and the exit ``status``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


__all__ = ["EXIT_BUG", "EXIT_LOCAL", "EXIT_NOT_ADMITTED", "EXIT_RELAY", "EXIT_USAGE", "CliError"]
