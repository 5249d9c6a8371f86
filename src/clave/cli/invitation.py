"""``clave join``'s invitation, ``clave open`` and ``clave setup``.

An invitation (``clave://HOST/m/ROOM#SECRET.OWNER``) holds the meeting secret, so it
never goes on a command line, where every local user can read it
(``/proc/PID/cmdline``): ``clave join`` reads it from standard input or a prompt, and
``clave open`` (what the ``clave:`` handler installed by ``clave setup`` runs) hands
it at once to a fresh process through a pipe.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .errors import EXIT_USAGE, CliError

MAX_INVITATION_CHARS = 4096
"""Read at most this much of an invitation (a real one has fewer than 400 characters)."""
PROMPT = "Paste the invitation (clave://…): "
ARGV_REFUSED = (
    "refusing an invitation on the command line: every local user can read a "
    "program's arguments (ps, /proc/PID/cmdline). Instead run `clave join` and paste it "
    "at the prompt, or `clave join < FILE`, or click the clave:// link once `clave setup` ran"
)
NO_INVITATION = (
    "no invitation given (paste the clave:// link at the prompt, or `clave join < FILE`)"
)


def add_parsers(sub: Any) -> None:
    """``open`` and ``setup``."""
    opener = sub.add_parser(
        "open",
        help="open a clave:// invitation (what the handler installed by `clave setup` runs)",
    )
    opener.add_argument("url", help="clave://HOST/m/<room>#<secret>.<owner>")
    setup = sub.add_parser(
        "setup",
        help="register this clave as the handler of clave:// invitation links",
        description="Register this clave as the handler of clave:// links, for your user "
        "only (Linux: a desktop entry and xdg-mime; Windows: HKCU registry keys; macOS: "
        "explains why it cannot yet).",
    )
    what = setup.add_mutually_exclusive_group()
    what.add_argument("--undo", action="store_true", help="remove the registration")
    what.add_argument("--status", action="store_true", help="show the registration")


def add_join_arguments(p: argparse.ArgumentParser) -> None:
    """Accepted only to refuse an invitation on the command line (see ARGV_REFUSED)."""
    p.add_argument("link", nargs="?", default=None, help=argparse.SUPPRESS)
    p.add_argument("--link-fd", type=int, default=None, help=argparse.SUPPRESS)


def _read_fd(fd: int) -> str:
    """All of ``fd`` (at most MAX_INVITATION_CHARS), then close it."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= MAX_INVITATION_CHARS and (chunk := os.read(fd, 4096)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def read_invitation(args: argparse.Namespace) -> str:
    """The invitation text for ``clave join``: from ``--link-fd``, standard input (not a
    terminal) or a no-echo prompt."""
    if args.link is not None:
        raise CliError(ARGV_REFUSED, EXIT_USAGE)
    if args.link_fd is not None:
        try:
            text = _read_fd(args.link_fd)
        except OSError as exc:
            raise CliError(
                f"cannot read the invitation from fd {args.link_fd}: {exc.strerror}", EXIT_USAGE
            ) from None
    elif sys.stdin is not None and not sys.stdin.isatty():
        text = sys.stdin.readline(MAX_INVITATION_CHARS)
    else:
        import getpass

        try:
            text = getpass.getpass(PROMPT)
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            text = ""
    text = text.strip()
    if not text:
        raise CliError(NO_INVITATION, EXIT_USAGE)
    return text


def run_open(args: argparse.Namespace) -> int:
    """``clave open URL``: hand the invitation to a fresh ``clave join`` through an
    inherited pipe, so no long-lived command line holds the secret.

    A forked child replaces itself (``os.execv``) with ``clave join --link-fd N``
    and runs the meeting; this process returns at once. Returning matters as much
    as the exec: the program that ran the handler (``xdg-open`` on a desktop it does
    not recognise) waits for it, with the invitation in its own arguments."""
    url = args.url.strip()
    if not url.lower().startswith("clave:") or len(url) > MAX_INVITATION_CHARS:
        raise CliError("open: expected a clave:// invitation", EXIT_USAGE)
    if sys.platform == "win32":  # no fork or exec there; other users cannot read our argv
        return main_join_text(url)
    read_end = pipe_with(url)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() != 0:
        os.close(read_end)
        return 0
    try:  # the child becomes the engine: exec keeps its pid and drops the old argv
        os.set_inheritable(read_end, True)
        os.execv(sys.executable, [*clave_command(), "join", "--link-fd", str(read_end)])
    finally:
        os._exit(127)  # only if the exec failed


def main_join_text(text: str) -> int:
    """``clave join`` (browser mode) with the invitation ``text`` already in hand."""
    from . import main

    return main(["join", "--link-fd", str(pipe_with(text))])


def pipe_with(text: str) -> int:
    """The read end of a pipe holding ``text`` (which fits in a pipe's buffer)."""
    read_end, write_end = os.pipe()
    try:
        view = memoryview(text.encode("utf-8")[:MAX_INVITATION_CHARS])
        while view:
            view = view[os.write(write_end, view) :]
    finally:
        os.close(write_end)
    return read_end


def clave_command() -> list[str]:
    """The absolute command that runs this clave. ``-P``: the working directory (say,
    a downloads folder holding a ``clave`` directory) is not put on ``sys.path``."""
    return [os.path.abspath(sys.executable), "-P", "-m", "clave"]


def run_setup(args: argparse.Namespace) -> int:
    from ..engine import handler

    try:
        if args.undo:
            reg = handler.uninstall()
            ok = not reg.registered
        elif args.status:
            reg = handler.status(clave_command())
            ok = reg.registered
        else:
            reg = handler.install(clave_command())
            ok = reg.registered
    except (OSError, ValueError) as exc:
        raise CliError(f"setup: {exc}", 1) from None
    print(reg.report(), flush=True)
    return 0 if ok else 1
