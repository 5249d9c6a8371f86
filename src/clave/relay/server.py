"""The relay's aiohttp application and the ways to run it.

* :func:`create_app` builds the application: ``GET /ws`` (the WebSocket),
  ``GET /healthz``, ``GET /m/<room>`` (landing page) and its static files.
* :func:`start_relay` runs it inside an existing event loop (tests, an
  embedded relay); port 0 picks a free port.
* :func:`serve_forever` (alias :func:`run`) runs it on uvloop until SIGINT
  or SIGTERM; ``clave serve`` calls it.

Each of them takes an optional server-side :class:`ssl.SSLContext`
(:func:`clave.relay.tls.server_context`) to serve https and wss directly;
without one, put a TLS-terminating proxy in front of it (docs/OPERATORS.md).
No access log is written and nothing is stored on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from . import landing, logs
from .config import RelayConfig
from .connection import CloseCode, Connection, TickWriter
from .state import RelayState

log = logging.getLogger("clave.relay")

STATE_KEY = web.AppKey("clave.relay.state", RelayState)


def create_app(
    config: RelayConfig | None = None,
    nats: list[str] | None = None,
    nats_options: dict[str, Any] | None = None,
) -> web.Application:
    """The relay as an aiohttp application (state in ``app[STATE_KEY]``); with ``nats``
    (server URLs), a node of a relay cluster, joined when the application starts."""
    logs.install()
    state = RelayState(config or RelayConfig())
    app = web.Application(client_max_size=4096)  # no route takes a request body
    app[STATE_KEY] = state
    ticks = TickWriter()  # one write-out callback per loop tick for all connections

    async def websocket(request: web.Request) -> web.StreamResponse:
        if "Sec-WebSocket-Protocol" in request.headers:
            # aiohttp would log the client's address for a protocol it does not know.
            raise web.HTTPBadRequest(text="WebSocket subprotocols are not used")
        return await Connection(state, request, ticks).serve()

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"Cache-Control": "no-store"})

    async def on_shutdown(app: web.Application) -> None:
        connections = list(state.connections)
        if connections:
            log.info("closing %d connections", len(connections))
            await asyncio.gather(*(c.stop(CloseCode.going_away) for c in connections))

    app.router.add_get("/ws", websocket)
    app.router.add_get("/healthz", healthz)
    landing.setup(app)
    app.on_shutdown.append(on_shutdown)
    if nats:
        from .cluster.node import ClusterNode

        async def join_cluster(app: web.Application) -> None:
            node = ClusterNode(nats, state.config, **(nats_options or {}))
            node.on_reset = lambda: on_shutdown(app)  # as a restarted relay would
            await node.start()
            state.cluster = node

        async def leave_cluster(app: web.Application) -> None:
            if state.cluster is not None:
                await state.cluster.close()

        app.on_startup.append(join_cluster)
        app.on_cleanup.append(leave_cluster)
    return app


async def start_relay(
    host: str,
    port: int,
    config: RelayConfig | None = None,
    ssl_context: ssl.SSLContext | None = None,
    nats: list[str] | None = None,
    nats_options: dict[str, Any] | None = None,
) -> tuple[web.AppRunner, int]:
    """Start serving on ``host:port`` (0: any free port), over TLS with ``ssl_context``,
    as a cluster node with ``nats``; return the runner and the bound port.

    Stop with ``await runner.cleanup()``.
    """
    runner = web.AppRunner(
        create_app(config, nats, nats_options),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=5.0,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    return runner, int(bound)


async def serve(
    host: str,
    port: int,
    config: RelayConfig | None = None,
    on_ready: Callable[[int], None] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    nats: list[str] | None = None,
    nats_options: dict[str, Any] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM; ``on_ready(bound_port)`` once listening."""
    runner, bound = await start_relay(host, port, config, ssl_context, nats, nats_options)
    log.info("relay listening on port %d (%s)", bound, "TLS" if ssl_context else "no TLS")
    if on_ready is not None:
        on_ready(bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # e.g. Windows: the standard loop works, a bit slower
        asyncio.run(main)
    else:
        uvloop.run(main)


def serve_forever(
    host: str,
    port: int,
    config: RelayConfig | None = None,
    on_ready: Callable[[int], None] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    nats: list[str] | None = None,
    nats_options: dict[str, Any] | None = None,
) -> None:
    """Run the relay on uvloop until SIGINT or SIGTERM (over TLS with ``ssl_context``; a
    cluster node with ``nats``, whose client takes ``nats_options``)."""
    _run(serve(host, port, config, on_ready, ssl_context, nats, nats_options))


run = serve_forever
