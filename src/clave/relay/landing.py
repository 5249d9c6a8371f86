"""The landing page of an invitation link, ``GET /m/<room>``, and its static files.

The page tells a visitor the meeting is end-to-end encrypted and shows the
``clave join`` command for the link. Its script reads the link's fragment
locally; the strict CSP forbids inline script and every external request.
"""

from __future__ import annotations

import re
from importlib import resources

from aiohttp import web

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_ROOM = re.compile(r"[A-Za-z0-9_-]{22}")
_STATIC = {
    "landing.js": "text/javascript",
    "landing.css": "text/css",
}


def _load(name: str) -> bytes:
    return resources.files("clave.relay").joinpath("static", name).read_bytes()


def _response(body: bytes, content_type: str, cache: str) -> web.Response:
    response = web.Response(body=body, content_type=content_type, charset="utf-8")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = cache
    return response


def setup(app: web.Application) -> None:
    """Add ``/m/{room}`` and ``/static/<file>`` to ``app``."""
    page = _load("landing.html")
    files = {name: (_load(name), kind) for name, kind in _STATIC.items()}

    async def landing(request: web.Request) -> web.Response:
        if not _ROOM.fullmatch(request.match_info["room"]):
            raise web.HTTPNotFound()
        return _response(page, "text/html", "no-store")

    async def static(request: web.Request) -> web.Response:
        entry = files.get(request.match_info["name"])
        if entry is None:
            raise web.HTTPNotFound()
        return _response(entry[0], entry[1], "public, max-age=3600")

    app.router.add_get("/m/{room}", landing)
    app.router.add_get("/static/{name}", static)
