"""``python -m clave.relay [--host H] [--port P] [--set NAME=VALUE ...]``: run a relay.

Prints ``listening on PORT`` when ready. ``--set`` takes any
:class:`~clave.relay.config.RelayConfig` field (``--set max_conns_per_address=16``);
``--trusted-proxy`` (repeatable) adds to ``trusted_proxies``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any

from .config import RelayConfig
from .server import serve_forever


def settings(pairs: list[str], proxies: list[str], base: RelayConfig) -> RelayConfig:
    """``base`` with ``NAME=VALUE`` pairs applied, each parsed as its field's type."""
    defaults = {f.name: getattr(base, f.name) for f in dataclasses.fields(RelayConfig)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in defaults:
            raise ValueError(f"not a relay setting: {pair!r}")
        default = defaults[name]
        if isinstance(default, tuple):
            changes[name] = tuple(item for item in text.split(",") if item)
        elif isinstance(default, float):
            changes[name] = float(text)
        else:  # int, or int | None
            changes[name] = None if text.lower() == "none" else int(text)
    if proxies:
        listed = changes.get("trusted_proxies", base.trusted_proxies)
        changes["trusted_proxies"] = (*listed, *proxies)
    return dataclasses.replace(base, **changes)


def main() -> None:
    defaults = RelayConfig()
    parser = argparse.ArgumentParser(prog="python -m clave.relay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    parser.add_argument("--heartbeat", type=float, default=defaults.heartbeat)
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a RelayConfig setting"
    )
    parser.add_argument(
        "--trusted-proxy", action="append", default=[], metavar="ADDRESS[/BITS]",
        help="a reverse proxy whose X-Forwarded-For is believed",
    )  # fmt: skip
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    try:
        config = settings(args.set, args.trusted_proxy, RelayConfig(heartbeat=args.heartbeat))
    except ValueError as exc:
        parser.error(str(exc))

    def ready(port: int) -> None:
        print(f"listening on {port}", flush=True)

    serve_forever(args.host, args.port, config, ready)


if __name__ == "__main__":
    main()
