"""The relay's web page (``/`` and ``/m/<room>``): static, no script at all, never near
a secret; it explains the clave:// invitation, installing Clave and opening it."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Coroutine
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web

from bounded_run import run as bounded_run
from clave.relay import landing
from clave.relay.landing import CSP, SECURITY_HEADERS

ROOM = "ffOKPyH7kiTSDb16Q-DsLw"
EXTERNAL = re.compile(r"(https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}|url\(|@import", re.I)
INSTRUCTIONS = (
    "end-to-end encrypted",
    "cannot see, hear or read the meeting",
    "clave://",
    "Your own Clave opens it",
    "This page never asks for it",
    "holds no secret",
    "Python 3.11 or newer",
    "pipx",
    "not published on PyPI",
    "Ask the person who invited you for the Clave wheel file",
    "build it from the source with <code>python -m build</code>",
    "clave setup",
    "clave join",
    "paste the invitation at the prompt",
    "clave join &lt; invitation.txt",
)
WHEEL = "pipx install clave-&lt;version&gt;-py3-none-any.whl"
PLATFORMS = {
    # section id: (heading, what that section must say)
    "linux": ("Linux", ("sudo apt install python3 pipx", "pipx ensurepath", WHEEL,
                        "clave setup")),
    "macos": ("macOS", ("brew install python pipx", "pipx ensurepath", WHEEL,
                        "<code>clave join</code> and paste it")),
    "windows": ("Windows", ("py -m pip install --user pipx", "py -m pipx ensurepath", WHEEL,
                            "clave setup")),
}


async def get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}", allow_redirects=False) as response,
    ):
        return response.status, dict(response.headers), await response.text()


@contextlib.asynccontextmanager
async def landing_only() -> AsyncIterator[int]:
    """Just the landing routes on a free port (independent of the rest of the relay)."""
    app = web.Application()
    landing.setup(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def run(scenario: Coroutine[Any, Any, None]) -> None:
    bounded_run(scenario, 20)


def check_headers(headers: dict[str, str]) -> None:
    assert headers["Content-Security-Policy"] == CSP
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name


def test_csp_allows_no_script_and_nothing_external() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["script-src"] == "'none'"
    assert directives["default-src"] == "'none'"
    assert directives["style-src"] == "'self'"
    assert directives["form-action"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CSP and "http" not in CSP


def test_the_page_is_static_scriptless_and_explains_the_invitation() -> None:
    async def scenario() -> None:
        async with landing_only() as port:
            bodies = []
            for path in ("/", f"/m/{ROOM}"):
                status, headers, html = await get(port, path)
                assert status == 200, path
                assert headers["Content-Type"].startswith("text/html")
                assert headers["Cache-Control"] == "no-store"
                check_headers(headers)
                bodies.append(html)
            assert bodies[0] == bodies[1]  # the same static page for every room
            html = bodies[0]
            # No script of any kind, no handlers, no forms, no inline style.
            assert "<script" not in html.lower()
            assert not re.search(r"\son[a-z]+\s*=", html, re.I)
            assert "javascript:" not in html.lower()
            for tag in ("<form", "<input", "<textarea", "<iframe", "<object", "<embed",
                        "<style", " style="):
                assert tag not in html.lower(), tag
            # Nothing that reads the fragment, and no external resources.
            for word in ("location", "hash", "fragment="):
                assert word not in html, word
            assert not EXTERNAL.search(html)
            assert re.findall(r'<link [^>]*href="([^"]+)"', html) == ["/static/landing.css"]
            text = re.sub(r"\s+", " ", html)
            for words in INSTRUCTIONS:
                assert words in text, words
            assert "pip install ." not in text  # no more "from a checkout of its source"
            assert ROOM not in html

    run(scenario())


def platform_section(html: str, section_id: str) -> str:
    """The text of ``<section class="platform" id=...>`` (whitespace collapsed)."""
    match = re.search(
        rf'<section class="platform" id="{section_id}">(.*?)</section>', html, re.S
    )
    assert match is not None, section_id
    return re.sub(r"\s+", " ", match.group(1))


def test_the_page_says_how_to_install_on_linux_macos_and_windows() -> None:
    async def scenario() -> None:
        async with landing_only() as port:
            _, _, html = await get(port, f"/m/{ROOM}")
            for section_id, (heading, musts) in PLATFORMS.items():
                section = platform_section(html, section_id)
                assert f"<h3>{heading}</h3>" in section, heading
                for words in musts:
                    assert words in section, (heading, words)
            # macOS has no clave:// handler yet: the page does not promise one there.
            assert "clave setup" not in platform_section(html, "macos")
            assert "does not work yet" in platform_section(html, "macos")

    run(scenario())


def test_the_stylesheet_supports_dark_mode_and_loads_nothing() -> None:
    async def scenario() -> None:
        async with landing_only() as port:
            status, headers, css = await get(port, "/static/landing.css")
            assert status == 200 and headers["Content-Type"].startswith("text/css")
            check_headers(headers)
            assert "@media (prefers-color-scheme: dark)" in css
            assert not EXTERNAL.search(css)

    run(scenario())


def test_no_script_file_exists_or_is_served() -> None:
    static = resources.files("clave.relay").joinpath("static")
    names = sorted(entry.name for entry in static.iterdir())
    assert names == ["landing.css", "landing.html"]

    async def scenario() -> None:
        async with landing_only() as port:
            for path in (
                "/static/landing.js",
                "/static/landing.html",
                "/static/../landing.py",
                "/static/nope.css",
                "/m/short",
                "/m/" + "a" * 23,
                "/m/" + "!" * 22,
                f"/m/{ROOM}/x",
            ):
                status, _, _ = await get(port, path)
                assert status == 404, path

    run(scenario())


def test_the_relay_serves_the_page() -> None:
    """The real relay application mounts the same routes."""
    from clave.relay.server import start_relay

    async def scenario() -> None:
        runner, port = await start_relay("127.0.0.1", 0)
        try:
            for path in ("/", f"/m/{ROOM}"):
                status, headers, html = await get(port, path)
                assert status == 200 and "<script" not in html, path
                check_headers(headers)
            status, _, _ = await get(port, "/static/landing.js")
            assert status == 404
        finally:
            await runner.cleanup()

    run(scenario())
