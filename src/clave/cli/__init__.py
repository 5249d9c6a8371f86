"""The ``clave`` command: serve | meet | join | record | open | setup | demo | selfcheck.

One module per command family (:mod:`.serve`, :mod:`.meeting` with :mod:`.headless`
and :mod:`.browse`, :mod:`.invitation`), dispatched through :data:`COMMANDS`. An
expected failure is one line ``clave: MESSAGE`` and an exit status
(:mod:`.errors`); a traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from collections.abc import Callable, Sequence

from .. import __version__
from ..engine.first_run import register_handler_once
from . import invitation, meeting, record, serve
from .browse import browse
from .errors import EXIT_BUG, EXIT_USAGE, CliError
from .headless import participate

HEADLESS_ONLY = (
    "no_video", "no_audio", "simulcast", "fps", "silent", "chat", "report", "linger"
)
"""Options that only a headless participant takes."""


def meet_or_join(args: argparse.Namespace) -> int:
    """``meet`` / ``join``: headless or in the browser."""
    if args.command == "join":
        args.invitation = invitation.read_invitation(args)
    if args.headless:
        if args.name is None:
            args.name = "host" if args.command == "meet" else "guest"
        return asyncio.run(participate(args))
    used = [
        "--" + flag.replace("_", "-") for flag in HEADLESS_ONLY if getattr(args, flag, None)
    ]
    if used:
        raise CliError(f"{', '.join(used)}: only with --headless", EXIT_USAGE)
    note = register_handler_once(invitation.clave_command())  # on a desktop, once
    if note is not None:
        print(note, flush=True)
    return asyncio.run(browse(args))


def _demo(args: argparse.Namespace) -> int:
    from ..engine.demo import run_demo

    return 0 if asyncio.run(run_demo(args.seconds)) else 1


def _selfcheck(args: argparse.Namespace) -> int:
    from ..selfcheck import run

    return 0 if run() else 1


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "open": invitation.run_open,
    "setup": invitation.run_setup,
    "serve": serve.run,
    "meet": meet_or_join,
    "join": meet_or_join,
    "record": record.run,
    "demo": _demo,
    "selfcheck": _selfcheck,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clave",
        description=(
            "End-to-end encrypted video meetings: MLS (RFC 9420) group keys, "
            "SFrame (RFC 9605) media encryption, a relay that only sees ciphertext."
        ),
    )
    p.add_argument("--version", action="version", version=f"clave {__version__}")
    p.add_argument(
        "--debug", action="store_true", help="show a traceback when something fails unexpectedly"
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parser(sub)
    meeting.add_parsers(sub)
    record.add_parser(sub)
    invitation.add_parsers(sub)
    demo = sub.add_parser(
        "demo", help="an end-to-end encrypted meeting of three on an embedded relay"
    )
    demo.add_argument("--seconds", type=float, default=10.0)
    sub.add_parser("selfcheck", help="MLS-keyed SFrame checks, no network")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    command = COMMANDS.get(args.command)
    if command is None:
        p.print_help()
        return 0
    try:
        return command(args)
    except CliError as exc:
        print(f"clave: {exc.message}", file=sys.stderr, flush=True)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        else:
            print(
                f"clave: unexpected error ({type(exc).__name__}: {exc}); "
                "run again with --debug for details",
                file=sys.stderr,
                flush=True,
            )
        return EXIT_BUG


__all__ = ["COMMANDS", "main", "parser"]
