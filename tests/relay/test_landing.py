"""The invitation landing page: strict CSP, separate script, no external requests."""

from __future__ import annotations

import re

import aiohttp
from relay_helpers import new_room, relay, run

from clave.relay.landing import CSP

EXTERNAL = re.compile(r"(https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}|url\(|@import", re.I)
NETWORK_APIS = (
    "fetch(",
    "XMLHttpRequest",
    "WebSocket",
    "sendBeacon",
    "EventSource",
    "new Image",
    "import(",
    "location.assign",
    "location.replace",
    "location.href =",
    "open(",
)


async def get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, dict(response.headers), await response.text()


def test_landing_page_is_served_with_a_strict_csp() -> None:
    async def scenario() -> None:
        async with relay() as port:
            room, _ = new_room()
            status, headers, html = await get(port, f"/m/{room}")
            assert status == 200
            assert headers["Content-Type"].startswith("text/html")
            csp = headers["Content-Security-Policy"]
            assert csp == CSP
            directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
            assert directives["default-src"] == "'none'"
            assert directives["script-src"] == "'self'"
            assert directives["style-src"] == "'self'"
            assert "unsafe" not in csp
            assert headers["Referrer-Policy"] == "no-referrer"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert "end-to-end encrypted" in html
            assert "clave join" in html

            # one external script file, no inline script, style or handlers
            scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
            assert scripts == [""]
            assert re.search(r'<script src="/static/landing.js"', html)
            assert "<style" not in html and " style=" not in html
            assert not re.search(r"\son[a-z]+=", html)

            texts = {"html": html}
            for name, kind in (("landing.js", "javascript"), ("landing.css", "css")):
                status, headers, body = await get(port, f"/static/{name}")
                assert status == 200 and kind in headers["Content-Type"]
                assert headers["Content-Security-Policy"] == CSP
                texts[name] = body
            for name, text in texts.items():
                assert not EXTERNAL.search(text), name
            js = texts["landing.js"]
            assert "location.hash" in js
            for api in NETWORK_APIS:
                assert api not in js, api
            assert "innerHTML" not in js  # the link is shown with textContent

    run(scenario())


def test_landing_only_for_room_ids_and_known_files() -> None:
    async def scenario() -> None:
        async with relay() as port:
            for path in (
                "/m/short",
                "/m/" + "a" * 23,
                "/m/" + "!" * 22,
                "/static/../config.py",
                "/static/landing.html",
                "/static/nope.js",
            ):
                status, _, _ = await get(port, path)
                assert status == 404, path

    run(scenario())
