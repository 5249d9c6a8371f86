"""The local UI server: the glass's files and its WebSocket, on 127.0.0.1 only.

The engine serves the user interface itself, from the files installed with
the package (``clave/ui``), so no server (the relay included) can ever ship
tampered client code. The rules ("Local UI channel" in docs/PROTOCOL.md):

* bound to 127.0.0.1 on a random port; the ``Host`` header must be exactly
  ``127.0.0.1:PORT`` (DNS-rebinding defence);
* a random one-time token: the first ``GET /?t=TOKEN`` exchanges it for a fresh
  random session value, set as an HttpOnly, SameSite=Strict cookie, and answers
  with a small page that moves on to ``/`` (a same-origin navigation, so the
  strict cookie is sent and reloads keep working); the token is dead from then
  on. ``/`` and every other request (files, ``/ws``) need the session cookie,
  compared in constant time; otherwise 403. The token never goes on a command
  line: the browser is given a 0600 launcher file instead (:mod:`.launcher`);
* ``Origin`` must be exactly ``http://127.0.0.1:PORT`` on the WebSocket
  upgrade and on every non-GET request, and when present on a GET; a
  ``Sec-Fetch-Site`` of ``cross-site`` or ``same-site`` is refused (another
  port of 127.0.0.1 is "same-site" for cookies), except on the token exchange
  itself: the launcher file (a ``file:`` page) makes it a cross-site
  navigation, and the unguessable token is what authorises it;
* a strict Content-Security-Policy and other hardening headers on every
  response, errors included;
* only files shipped in the package, by an index built at start (so no path
  from a request ever reaches the file system), with an allowlist of
  extensions and fixed MIME types; no directory listing;
* one glass at a time: a second WebSocket gets 409.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import secrets
from html import escape
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from ..tasks import cancel_and_wait
from ..wire import MAX_MEDIA_BYTES
from .bridge import GlassBridge, GlassBusy, GlassOutbox
from .launcher import Launcher

log = logging.getLogger("clave.engine.ui")

BIND_HOST = "127.0.0.1"
INDEX = "index.html"
COOKIE_PREFIX = "clave_t_"
"""The session cookie is ``clave_t_<PORT>``: cookies are not isolated by port, so two
engines on one machine (a host and a guest trying it out) must not overwrite each
other's cookie."""

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
"""The only extensions served, and their Content-Type."""

MAX_DEPTH = 6
MAX_WS_MESSAGE = MAX_MEDIA_BYTES + 64
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}"
_SAFE_PATH = re.compile(rf"/(?:{_SEGMENT}(?:/{_SEGMENT})*)?")
"""Raw request paths allowed at all: no ``%`` escapes, no ``..`` or hidden segments,
no ``//``, no backslashes."""


def package_ui_files() -> Traversable:
    """The ``ui`` directory installed with the package."""
    return resources.files("clave").joinpath("ui")


def index_files(root: Traversable) -> dict[str, Traversable]:
    """Every servable file under ``root``: ``{"/js/app.js": <file>, ...}``.

    Only names matching a safe pattern with an allowlisted extension, no hidden
    files or directories, no symbolic links, at most ``MAX_DEPTH`` levels deep.
    """
    out: dict[str, Traversable] = {}

    def walk(node: Traversable, prefix: str, depth: int) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            name = child.name
            if not re.fullmatch(_SEGMENT, name) or name == "__pycache__":
                continue
            if isinstance(child, Path) and child.is_symlink():
                continue  # it could point anywhere
            if child.is_dir():
                if depth < MAX_DEPTH:
                    walk(child, f"{prefix}{name}/", depth + 1)
            elif child.is_file() and _suffix(name) in MIME_TYPES:
                out[f"/{prefix}{name}"] = child

    if root.is_dir():
        walk(root, "", 1)
    return out


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode("utf-8", "replace"), b.encode())


class UIServer:
    """Serve the glass and its WebSocket for one :class:`GlassBridge`.

    ``await start()`` returns the page URL with the one-time token; ``await stop()``.
    With ``launcher=True``, ``start()`` also writes a launcher file pointing at that
    URL (:attr:`launcher_path`, :attr:`launcher_url`: give the browser that, never the
    URL itself) and ``stop()`` deletes it. ``files`` replaces the packaged ``ui``
    directory (tests).
    """

    def __init__(
        self,
        bridge: GlassBridge,
        *,
        port: int = 0,
        token: str | None = None,
        files: Traversable | None = None,
        launcher: bool = False,
    ) -> None:
        self.bridge = bridge
        self.token = token or secrets.token_urlsafe(32)
        """The one-time URL token (dead once exchanged for the session cookie)."""
        self.session: str | None = None
        """The session cookie's value, once the token was exchanged."""
        self._want_launcher = launcher
        self._launcher: Launcher | None = None
        self._want_port = port
        self._root = files if files is not None else package_ui_files()
        self._files: dict[str, Traversable] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._headers: dict[str, str] = {}
        self._ws_tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def origin(self) -> str:
        return f"http://{BIND_HOST}:{self._port}"

    @property
    def url(self) -> str:
        """The page to open: ``http://127.0.0.1:PORT/?t=TOKEN``."""
        return f"{self.origin}/?t={self.token}"

    @property
    def cookie_name(self) -> str:
        return f"{COOKIE_PREFIX}{self._port}"

    @property
    def token_used(self) -> bool:
        return self.session is not None

    @property
    def launcher_path(self) -> Path | None:
        """The 0600 launcher file (``launcher=True``, while serving), else None."""
        return self._launcher.path if self._launcher is not None else None

    @property
    def launcher_url(self) -> str | None:
        """``file://`` + :attr:`launcher_path`: the address to give the browser."""
        return self._launcher.url if self._launcher is not None else None

    def open_session(self) -> str:
        """Exchange the URL token for the session cookie value (what the first
        ``GET /?t=TOKEN`` does); the same value once exchanged. For in-process
        callers, e.g. tests that connect a glass without loading the page."""
        if self.session is None:
            self.session = secrets.token_urlsafe(32)
        return self.session

    @property
    def security_headers(self) -> dict[str, str]:
        return dict(self._headers)

    async def start(self) -> str:
        self._files = index_files(self._root)
        app = web.Application(client_max_size=64 * 1024)
        app.on_response_prepare.append(self._add_headers)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, BIND_HOST, self._want_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._headers = {
            "Content-Security-Policy": (
                "default-src 'none'; script-src 'self'; style-src 'self'; "
                "img-src 'self' data: blob:; media-src 'self' blob:; "
                f"connect-src 'self' ws://{BIND_HOST}:{self._port}; worker-src 'self'; "
                "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin",
        }
        if self._want_launcher:
            try:
                self._launcher = Launcher.create(self.url)
            except BaseException:
                await self.stop()
                raise
        return self.url

    async def stop(self) -> None:
        if self._launcher is not None:
            self._launcher.remove()
            self._launcher = None
        for task in list(self._ws_tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ requests

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(self._headers)

    def _refuse(self, request: web.Request, path: str) -> str | None:
        """Why ``request`` is refused (403), or None."""
        if request.headers.get("Host") != f"{BIND_HOST}:{self._port}":
            return "wrong Host"
        origin = request.headers.get("Origin")
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if (upgrade or request.method not in ("GET", "HEAD")) and origin is None:
            return "Origin required"
        if origin is not None and origin != self.origin:
            return "foreign Origin"
        if self._foreign(request) and not self._is_exchange(request, path):
            return "cross-site request"
        return None

    @staticmethod
    def _foreign(request: web.Request) -> bool:
        """Sent by a page of another origin (``Sec-Fetch-Site``)."""
        return request.headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site")

    def _is_exchange(self, request: web.Request, path: str) -> bool:
        """A top-level ``GET /?t=…`` navigation: the only request a foreign page (the
        ``file:`` launcher) may make, because the token itself authorises it."""
        return (
            request.method == "GET"
            and path == "/"
            and "t" in request.query
            and request.headers.get("Sec-Fetch-Mode", "navigate").lower() == "navigate"
            and request.headers.get("Sec-Fetch-Dest", "document").lower() == "document"
        )

    def _has_session(self, request: web.Request) -> bool:
        return self.session is not None and _same(
            request.cookies.get(self.cookie_name), self.session
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.partition("?")[0]
        why = self._refuse(request, path)
        if why is not None:
            return _text(403, f"forbidden: {why}")
        if not _SAFE_PATH.fullmatch(path):
            return _text(404, "not found")
        if path == "/" and (self._foreign(request) or not self._has_session(request)):
            return self._exchange(request)  # a foreign page never gets the page by cookie
        if not self._has_session(request):
            return _text(403, "forbidden: no valid session")
        if request.method not in ("GET", "HEAD"):
            return _text(405, "method not allowed")
        if path == "/ws":
            return await self._websocket(request)
        if path == "/":
            return self._file(f"/{INDEX}")
        if path == f"/{INDEX}":
            return _text(404, "not found")  # the page is at /
        return self._file(path)

    def _exchange(self, request: web.Request) -> web.Response:
        """``GET /?t=TOKEN`` without a session: trade the one-time token for the session
        cookie and move on to ``/`` (other query parameters kept)."""
        if (
            request.method != "GET"
            or self.session is not None
            or not _same(request.query.get("t"), self.token)
        ):
            if self.session is not None and "t" in request.query:
                return _text(
                    403,
                    "forbidden: this address works only once and was already used; reload "
                    f"the meeting's tab, or open {self.origin}/ in the same browser",
                )
            return _text(403, "forbidden: open the address printed by clave")
        session = self.open_session()
        rest = urlencode([(k, v) for k, v in request.query.items() if k != "t"])
        target = f"/?{rest}" if rest else "/"
        response = web.Response(body=_bridge_page(target))
        response.headers["Content-Type"] = MIME_TYPES[".html"]
        response.headers["Set-Cookie"] = (
            f"{self.cookie_name}={session}; HttpOnly; SameSite=Strict; Path=/"
        )
        return response

    def _file(self, path: str) -> web.Response:
        entry = self._files.get(path)
        if entry is None:
            return _text(404, "not found")
        try:
            body = entry.read_bytes()
        except OSError:
            return _text(404, "not found")
        response = web.Response(body=body)
        response.headers["Content-Type"] = MIME_TYPES[_suffix(path)]
        return response

    # ------------------------------------------------------------------ the glass's WebSocket

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_WS_MESSAGE, heartbeat=20.0)
        if not ws.can_prepare(request).ok:
            return _text(400, "WebSocket upgrade expected")
        try:
            outbox = self.bridge.attach()
        except GlassBusy as exc:
            return _text(409, f"conflict: {exc}; close it (or this tab) first")
        writer: asyncio.Task[None] | None = None
        task = asyncio.current_task()
        if task is not None:
            self._ws_tasks.add(task)
        try:
            await ws.prepare(request)
            writer = asyncio.create_task(_write(ws, outbox), name="clave-glass-writer")
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self.bridge.handle_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self.bridge.handle_binary(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.bridge.detach(outbox)
            if writer is not None:
                await cancel_and_wait(writer)
            if task is not None:
                self._ws_tasks.discard(task)
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()
        return ws


async def _write(ws: web.WebSocketResponse, outbox: GlassOutbox) -> None:
    try:
        while (item := await outbox.get()) is not None:
            if isinstance(item, str):
                await ws.send_str(item)
            else:
                await ws.send_bytes(item)
    except (ConnectionError, RuntimeError) as exc:
        log.info("glass connection closed while sending: %s", type(exc).__name__)
    finally:
        if not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()


def _bridge_page(target: str) -> bytes:
    """A same-origin hop to ``target``: no script (the CSP allows none inline)."""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="0; url={escape(target)}">\n'
        "<title>Clave</title></head><body></body></html>\n"
    ).encode()


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")
