"""``clave serve``: run a relay (it never sees keys or plaintext)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run a relay (it never sees keys or plaintext)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8443, help="port (default 8443; 0: any)")
    serve.add_argument(
        "--heartbeat",
        type=float,
        default=None,
        help="seconds between pings; a client silent for 1.5 of them is gone (default 5)",
    )


def run(args: argparse.Namespace) -> int:
    from ..relay.server import serve_forever

    def ready(port: int) -> None:
        print(f"relay listening on http://{args.host}:{port}", flush=True)

    config = None
    if args.heartbeat is not None:
        from ..relay.config import RelayConfig

        config = RelayConfig(heartbeat=args.heartbeat)
    serve_forever(args.host, args.port, config, on_ready=ready)
    return 0
