"""``python -m clave.relay [--host H] [--port P]``: run a relay (prints its port when ready)."""

from __future__ import annotations

import argparse
import logging

from .config import RelayConfig
from .server import serve_forever


def main() -> None:
    defaults = RelayConfig()
    parser = argparse.ArgumentParser(prog="python -m clave.relay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    parser.add_argument("--heartbeat", type=float, default=defaults.heartbeat)
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)

    def ready(port: int) -> None:
        print(f"listening on {port}", flush=True)

    serve_forever(args.host, args.port, RelayConfig(heartbeat=args.heartbeat), ready)


if __name__ == "__main__":
    main()
