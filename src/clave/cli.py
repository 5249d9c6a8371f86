"""The ``clave`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="clave",
        description=(
            "End-to-end encrypted video meetings: MLS (RFC 9420) group keys, "
            "SFrame (RFC 9605) media encryption, a relay that only sees ciphertext."
        ),
    )
    parser.add_argument("--version", action="version", version=f"clave {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser(
        "demo",
        help="run an end-to-end check: an MLS group keys SFrame media between three members",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .selfcheck import run

        return 0 if run() else 1
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
