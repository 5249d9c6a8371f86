"""The relay's web page, ``GET /`` and ``GET /m/<room>``, and its stylesheet.

An invitation is a ``clave://`` link opened by the participant's own engine
(:mod:`clave.meeting.link`); the relay's address for a room
(``https://HOST/m/<room>``) carries no secret and only explains what Clave is,
how to install it and how to open the invitation. The page is static and the
same for every room: it runs no script at all (``script-src 'none'``), reads no
fragment, asks for nothing and makes no request beyond its own stylesheet. A
hostile relay could of course serve something else here; that is why the secret
never comes near a page a relay serves.
"""

from __future__ import annotations

import re
from importlib import resources

from aiohttp import web

CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'none'; "
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
    """Add ``/``, ``/m/{room}`` and ``/static/<file>`` to ``app``."""
    page = _load("landing.html")
    files = {name: (_load(name), kind) for name, kind in _STATIC.items()}

    async def home(request: web.Request) -> web.Response:
        return _response(page, "text/html", "no-store")

    async def landing(request: web.Request) -> web.Response:
        if not _ROOM.fullmatch(request.match_info["room"]):
            raise web.HTTPNotFound(headers=SECURITY_HEADERS)
        return _response(page, "text/html", "no-store")

    async def static(request: web.Request) -> web.Response:
        entry = files.get(request.match_info["name"])
        if entry is None:
            raise web.HTTPNotFound(headers=SECURITY_HEADERS)
        return _response(entry[0], entry[1], "public, max-age=3600")

    app.router.add_get("/", home)
    app.router.add_get("/m/{room}", landing)
    app.router.add_get("/static/{name}", static)
