"""A hostile relay for the browser tests: the real relay, a landing page that spies.

The operator runs the real relay application (:func:`clave.relay.server.create_app`:
the same WebSocket service, rooms and ordering) but, since it controls the server,
replaces the page it serves at ``/`` and ``/m/<room>``: the real page's text with a
script from the relay's own origin, under a Content-Security-Policy of its choosing
(scripts from itself, connections back to itself). The script tries everything a page
can to learn what the visitor knows (``hostile_collect.js``) and sends it back three ways
(``fetch``, ``sendBeacon``, an image) and over a WebSocket to ``/ws``, again and
again for as long as the page is open.

The operator keeps everything: an aiohttp middleware records every HTTP request the
application sees (method, target, headers, body), and a recording TCP proxy in front
of the application (:class:`clave.devtools.ws_recorder.RecordingProxy`; the relay's
address *is* the proxy's) keeps every byte every client sent and every WebSocket
message in both directions, unmasked. The application and the proxy run on their own
event loop in a background thread, so the synchronous Playwright tests can drive
browsers meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from clave.devtools.ws_recorder import RecordingProxy
from clave.relay.server import create_app

T = TypeVar("T")

EXFIL_PATH = "/x"
SCRIPT_PATH = "/static/collect.js"
_ROOM_PAGE = re.compile(r"/m/[A-Za-z0-9_-]{22}")

COLLECT_JS = Path(__file__).with_name("hostile_collect.js").read_text(encoding="utf-8")
"""The hostile script (``@MARKER@`` and ``@EXFIL@`` are filled in when served)."""

HOSTILE_HEADERS = {
    # The operator's own choice: scripts and connections from itself, referrers in full.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:",
    "Referrer-Policy": "unsafe-url",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class HttpRecord:
    """One HTTP request the relay application received."""

    method: str
    target: str
    """The raw path and query."""
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def blob(self) -> bytes:
        """Everything about the request, as bytes to search."""
        head = "\n".join([f"{self.method} {self.target}", *(f"{k}: {v}" for k, v in self.headers)])
        return head.encode("utf-8", "surrogateescape") + b"\n\n" + self.body


def _landing_html() -> str:
    """The real relay's page, with the operator's script added."""
    page = resources.files("clave.relay").joinpath("static", "landing.html").read_text("utf-8")
    return page.replace("</head>", f'<script src="{SCRIPT_PATH}"></script>\n</head>', 1)


class HostileRelay:
    """The real relay behind a recording proxy, with a spying landing page.

    ``start()`` returns the relay's base URL (``http://127.0.0.1:PORT``, the proxy);
    ``stop()`` ends it. The records grow while it runs; read them once stopped for a
    complete picture."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.http: list[HttpRecord] = []
        self._page = _landing_html().encode()
        self._script = (
            COLLECT_JS.replace("@MARKER@", marker).replace("@EXFIL@", EXFIL_PATH).encode()
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile-relay")
        self._runner: web.AppRunner | None = None
        self.proxy: RecordingProxy | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ lifecycle

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> str:
        self._thread.start()
        self.base_url = self._call(self._start())
        return self.base_url

    async def _start(self) -> str:
        app = create_app()
        app.middlewares.append(self._middleware)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        proxy = self.proxy = RecordingProxy("127.0.0.1", int(runner.addresses[0][1]))
        return f"http://127.0.0.1:{await proxy.start()}"

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()

    async def _stop(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ the operator's server

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = b""
        if request.method not in ("GET", "HEAD") and request.can_read_body:
            body = await request.content.read()  # the whole body, whatever its size
        self.http.append(
            HttpRecord(request.method, request.raw_path, tuple(request.headers.items()), body)
        )
        path = request.path
        if path == "/" or _ROOM_PAGE.fullmatch(path):
            response = web.Response(body=self._page, content_type="text/html", charset="utf-8")
            response.headers.update(HOSTILE_HEADERS)
            response.headers["Set-Cookie"] = "operator=watching; Path=/; SameSite=Lax"
            return response
        if path == SCRIPT_PATH:
            response = web.Response(
                body=self._script, content_type="text/javascript", charset="utf-8"
            )
            response.headers.update(HOSTILE_HEADERS)
            return response
        if path.startswith(EXFIL_PATH + "/"):
            return web.Response(status=204, headers=HOSTILE_HEADERS)
        return await handler(request)  # the real relay: /ws, /healthz, its stylesheet

    # ------------------------------------------------------------------ what it kept

    def reports(self) -> list[tuple[str, dict[str, Any]]]:
        """Every report the script sent over HTTP: ``(channel, report)``; image requests
        carry a short report in their query."""
        out: list[tuple[str, dict[str, Any]]] = []
        for record in list(self.http):
            if not record.path.startswith(EXFIL_PATH + "/"):
                continue
            channel = record.path[len(EXFIL_PATH) + 1 :]
            query = parse_qs(urlsplit(record.target).query)
            if query.get("m") != [self.marker]:
                continue
            raw = record.body if record.body else query.get("d", ["{}"])[0].encode()
            try:
                report = json.loads(raw)
            except ValueError:
                continue
            report.setdefault("stage", query.get("stage", ["?"])[0])
            out.append((channel, report))
        return out

    def stages(self) -> set[str]:
        return {report["stage"] for _, report in self.reports()}

    def full_reports(self, stage: str | None = None) -> list[dict[str, Any]]:
        """The complete reports (fetch or beacon bodies), optionally of one stage."""
        return [
            r for channel, r in self.reports()
            if channel in ("fetch", "beacon") and (stage is None or r.get("stage") == stage)
        ]

    def ws_messages(self) -> tuple[list[bytes], list[bytes]]:
        """Every WebSocket message clients sent and the relay sent, unmasked."""
        assert self.proxy is not None
        return list(self.proxy.client_to_relay), list(self.proxy.relay_to_client)

    def haystacks(self, *, lowercase: bool = False) -> list[tuple[str, bytes]]:
        """Everything the operator holds, labelled: each HTTP request the application
        saw, each WebSocket message either way, and the raw bytes every client sent
        (ASCII letters in lower case with ``lowercase``)."""
        assert self.proxy is not None
        out = [(f"http {r.method} {r.target[:80]}", r.blob()) for r in list(self.http)]
        to_relay, from_relay = self.ws_messages()
        out += [(f"ws client->relay #{i}", m) for i, m in enumerate(to_relay)]
        out += [(f"ws relay->client #{i}", m) for i, m in enumerate(from_relay)]
        for i, conn in enumerate(list(self.proxy.connections)):
            out.append((f"raw bytes of connection {i}", bytes(conn.client_to_relay.raw)))
        if lowercase:
            out = [(where, hay.lower()) for where, hay in out]
        return out
