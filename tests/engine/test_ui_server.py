"""The local UI server: one-time token and session cookie, Host, Origin, headers,
packaged files only, one glass."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from engine_helpers import Glass, cookie_header, raw_request, run

from clave.engine.bridge import GlassBridge
from clave.engine.glass_messages import Stats
from clave.engine.ui_server import MIME_TYPES, UIServer, index_files, package_ui_files
from clave.meeting.link import new_link

SECRET = "TOP-SECRET-OUTSIDE-THE-UI-DIRECTORY"
INDEX = b"<!doctype html><title>glass</title><script type=module src=app.js></script>"


def make_ui(tmp: Path) -> Path:
    """A ui directory beside a secret file it must never serve."""
    (tmp / "secret.txt").write_text(SECRET)
    (tmp / "pyproject.toml").write_text(SECRET)
    ui = tmp / "ui"
    (ui / "sub").mkdir(parents=True)
    (ui / "empty").mkdir()
    (ui / "index.html").write_bytes(INDEX)
    (ui / "app.js").write_text("export const x = 1;\n")
    (ui / "app.css").write_text("body { color: black; }\n")
    (ui / "sub" / "mod.js").write_text("export const y = 2;\n")
    (ui / ".hidden.js").write_text(SECRET)
    (ui / "server.py").write_text(SECRET)
    (ui / "notes.md").write_text(SECRET)
    (ui / "data.bin").write_bytes(SECRET.encode())
    (ui / "noext").write_text(SECRET)
    (ui / "__pycache__").mkdir()
    (ui / "__pycache__" / "x.js").write_text(SECRET)
    with contextlib.suppress(OSError):
        os.symlink(tmp / "secret.txt", ui / "link.txt")
    return ui


def bridge() -> GlassBridge:
    # never contacted in these tests; any 32 bytes stand for the owner's key
    link = new_link("http://127.0.0.1:9", os.urandom, os.urandom(32))
    return GlassBridge(link, host=True, default_name="Ada")


@contextlib.asynccontextmanager
async def serving(ui: Path | None) -> AsyncIterator[UIServer]:
    server = UIServer(bridge(), files=ui)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def expected_headers(port: int) -> dict[str, str]:
    return {
        "content-security-policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data: blob:; media-src 'self' blob:; "
            f"connect-src 'self' ws://127.0.0.1:{port}; worker-src 'self'; font-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
        "cross-origin-opener-policy": "same-origin",
    }


def test_binds_loopback_on_a_random_port_with_a_random_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        ui = make_ui(tmp_path)
        async with serving(ui) as a, serving(ui) as b:
            assert a.port != b.port and a.port > 0
            assert a.token != b.token and len(a.token) >= 40
            assert a.url == f"http://127.0.0.1:{a.port}/?t={a.token}"
            assert a._runner is not None
            assert all(addr[0] == "127.0.0.1" for addr in a._runner.addresses)

    run(scenario())


BRIDGE = re.compile(rb'<meta http-equiv="refresh" content="0; url=([^"]*)">')
SET_COOKIE = re.compile(r"^clave_t_(\d+)=([A-Za-z0-9_-]{40,}); HttpOnly; SameSite=Strict; Path=/$")


def test_page_needs_the_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            port = server.port
            for target in ("/", "/?t=", "/?t=wrong", f"/?t={server.token[:-1]}", "/?x=1"):
                r = await raw_request(port, target)
                assert r.status == 403, target
                assert INDEX not in r.body and "set-cookie" not in r.headers
            # A token in a HEAD or POST request is not exchanged (and not spent).
            r = await raw_request(port, f"/?t={server.token}", method="HEAD")
            assert r.status == 403 and "set-cookie" not in r.headers
            origin = {"Origin": server.origin}
            r = await raw_request(port, f"/?t={server.token}", origin, method="POST")
            assert r.status == 403 and "set-cookie" not in r.headers
            assert server.session is None

            # The first GET /?t=TOKEN trades the token for a fresh session cookie and
            # moves on to / (no script: a meta refresh, same-origin for the browser).
            r = await raw_request(port, f"/?t={server.token}")
            assert r.status == 200
            assert r.headers["content-type"] == "text/html; charset=utf-8"
            assert INDEX not in r.body and b"<script" not in r.body
            bridge = BRIDGE.search(r.body)
            assert bridge is not None and bridge.group(1) == b"/"
            cookie = SET_COOKIE.match(r.headers["set-cookie"])
            assert cookie is not None and int(cookie.group(1)) == port
            session = cookie.group(2)
            assert session == server.session and session != server.token
            assert server.token not in r.headers["set-cookie"]

            # The token is spent: without the cookie it is refused, however often it comes.
            for _ in range(2):
                r = await raw_request(port, f"/?t={server.token}")
                assert r.status == 403 and "set-cookie" not in r.headers
                assert b"already used" in r.body
            # The cookie serves the page at / (a reload), with or without the old query.
            for target in ("/", f"/?t={server.token}"):
                r = await raw_request(port, target, cookie_header(server, session))
                assert r.status == 200 and r.body == INDEX, target
                assert "set-cookie" not in r.headers
            # The token is no cookie value, and a wrong cookie serves nothing.
            for value in (server.token, "x" * len(session), session[:-1]):
                r = await raw_request(port, "/", cookie_header(server, value))
                assert r.status == 403, value
            # index.html is not reachable by name (the page is at /).
            r = await raw_request(port, "/index.html", cookie_header(server, session))
            assert r.status == 404

    run(scenario())


def test_the_exchange_keeps_other_query_parameters(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            r = await raw_request(server.port, f"/?codec=vp9&t={server.token}")
            assert r.status == 200
            bridge = BRIDGE.search(r.body)
            assert bridge is not None and bridge.group(1) == b"/?codec=vp9"

    run(scenario())


def test_an_in_process_session_spends_the_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            assert not server.token_used
            session = server.open_session()
            assert server.open_session() == session and server.token_used
            assert (await raw_request(server.port, f"/?t={server.token}")).status == 403
            r = await raw_request(server.port, "/", cookie_header(server))
            assert r.status == 200 and r.body == INDEX

    run(scenario())


def test_files_need_the_cookie(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            port = server.port
            assert (await raw_request(port, "/app.js")).status == 403
            assert (await raw_request(port, f"/app.js?t={server.token}")).status == 403
            wrong = cookie_header(server, "x" * len(server.token))
            assert (await raw_request(port, "/app.js", wrong)).status == 403
            other_port = {"Cookie": f"clave_t_{port + 1}={server.open_session()}"}
            assert (await raw_request(port, "/app.js", other_port)).status == 403
            r = await raw_request(port, "/app.js", cookie_header(server))
            assert r.status == 200 and r.body == b"export const x = 1;\n"
            assert r.headers["content-type"] == "text/javascript; charset=utf-8"
            r = await raw_request(port, "/sub/mod.js", cookie_header(server))
            assert r.status == 200 and r.headers["content-type"].startswith("text/javascript")
            r = await raw_request(port, "/app.css", cookie_header(server))
            assert r.status == 200 and r.headers["content-type"] == "text/css; charset=utf-8"

    run(scenario())


def test_security_headers_on_every_response(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            port = server.port
            responses = [
                await raw_request(port, f"/?t={server.token}"),
                await raw_request(port, "/app.js", cookie_header(server)),
                await raw_request(port, "/app.css", cookie_header(server)),
                await raw_request(port, "/app.js"),  # 403
                await raw_request(port, "/nothing.js", cookie_header(server)),  # 404
                await raw_request(port, "/", host="evil.example"),  # 403
            ]
            for r in responses:
                for name, value in expected_headers(port).items():
                    assert r.headers.get(name) == value, (r.status, name)

    run(scenario())


def test_wrong_host_is_refused(tmp_path: Path) -> None:
    """DNS rebinding: a page at evil.example resolving to 127.0.0.1 sends its own Host."""

    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            port = server.port
            target = f"/?t={server.token}"
            for host in (
                "evil.example", f"evil.example:{port}", f"localhost:{port}",
                f"127.0.0.1:{port + 1}", "127.0.0.1", f"[::1]:{port}", f"127.0.0.1:{port}.evil",
            ):
                r = await raw_request(port, target, host=host)
                assert r.status == 403, host
                assert "set-cookie" not in r.headers
            r = await raw_request(port, target, host=None, version="HTTP/1.0")
            assert r.status == 403
            r = await raw_request(port, "/app.js", cookie_header(server), host="evil.example")
            assert r.status == 403

    run(scenario())


TRAVERSALS = [
    "/../secret.txt",
    "/../pyproject.toml",
    "/sub/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub/..%2f..%2fsecret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/%252e%252e/secret.txt",
    "//secret.txt",
    "/.%2e/secret.txt",
    "/sub/./../app.js",
    "/./app.js",
    "/sub//mod.js",
    "/%61pp.js",
    "/app.js%00.png",
    "/link.txt",
    "/..",
    "/sub/..",
]


def test_no_path_traversal(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            for target in TRAVERSALS:
                r = await raw_request(server.port, target, cookie_header(server))
                assert r.status in (400, 403, 404), (target, r.status)
                assert SECRET.encode() not in r.body, target

    run(scenario())


def test_only_packaged_files_with_allowed_extensions(tmp_path: Path) -> None:
    ui = make_ui(tmp_path)
    assert set(index_files(ui)) == {"/index.html", "/app.js", "/app.css", "/sub/mod.js"}

    async def scenario() -> None:
        async with serving(ui) as server:
            for target in (
                "/.hidden.js", "/server.py", "/notes.md", "/data.bin", "/noext",
                "/__pycache__/x.js", "/sub", "/sub/", "/empty", "/empty/", "/secret.txt",
                "/favicon.ico",
            ):
                r = await raw_request(server.port, target, cookie_header(server))
                assert r.status == 404, target
                assert SECRET.encode() not in r.body, target

    run(scenario())


def test_non_get_needs_origin(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            port, cookie = server.port, cookie_header(server)
            for method in ("POST", "PUT", "DELETE", "OPTIONS"):
                r = await raw_request(port, "/app.js", cookie, method=method)
                assert r.status == 403, method
                foreign = {**cookie, "Origin": "http://evil.example"}
                r = await raw_request(port, "/app.js", foreign, method=method)
                assert r.status == 403, method
                ours = {**cookie, "Origin": server.origin}
                r = await raw_request(port, "/app.js", ours, method=method)
                assert r.status == 405, method

    run(scenario())


def test_cross_site_reads_are_refused(tmp_path: Path) -> None:
    """Another port of 127.0.0.1 is "same-site": its pages would send the cookie."""

    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            port = server.port
            # Not a top-level navigation: refused before the token is even looked at.
            for headers in (
                {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
                {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "iframe"},
                {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"},
            ):
                r = await raw_request(port, f"/?t={server.token}", headers)
                assert r.status == 403 and b"cross-site" in r.body, headers
            assert server.session is None
            # The launcher is a file: page, so the exchange is a cross-site navigation
            # (what Chromium sends); the token authorises it.
            launcher = {
                "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Dest": "document",
            }
            r = await raw_request(port, f"/?t={server.token}", launcher)
            assert r.status == 200 and "set-cookie" in r.headers
            cookie = cookie_header(server)
            # A foreign page's navigation never gets the page through the cookie ...
            for site in ("cross-site", "same-site"):
                foreign = {**cookie, **launcher, "Sec-Fetch-Site": site}
                for target in ("/", f"/?t={server.token}"):
                    r = await raw_request(port, target, foreign)
                    assert r.status == 403 and INDEX not in r.body, (site, target)
            # ... nor any file.
            for headers in (
                {"Origin": f"http://127.0.0.1:{port + 1}"},
                {"Origin": "null"},
                {"Sec-Fetch-Site": "same-site"},
                {"Sec-Fetch-Site": "cross-site"},
            ):
                r = await raw_request(port, "/app.js", {**cookie, **headers})
                assert r.status == 403, headers
            ok = {**cookie, "Origin": server.origin, "Sec-Fetch-Site": "same-origin"}
            assert (await raw_request(port, "/app.js", ok)).status == 200
            # The page's own hop to / is same-origin; a reload or typed address is "none".
            for site in ("same-origin", "none"):
                r = await raw_request(port, "/", {**cookie, "Sec-Fetch-Site": site})
                assert r.status == 200 and r.body == INDEX, site

    run(scenario())


async def ws_status(server: UIServer, origin: str | None, cookie: bool = True) -> int:
    headers = cookie_header(server) if cookie else {}
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(f"{server.origin}/ws", origin=origin, headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


def test_websocket_checks_origin_and_cookie(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            port = server.port
            for origin in (
                None, "http://evil.example", f"http://127.0.0.1:{port + 1}",
                f"http://localhost:{port}", f"https://127.0.0.1:{port}", "null",
            ):
                assert await ws_status(server, origin) == 403, origin
            assert await ws_status(server, server.origin, cookie=False) == 403
            assert await ws_status(server, server.origin) == 101

    run(scenario())


def test_websocket_hello_and_one_glass_at_a_time(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            glass = await Glass.connect(server)
            try:
                hello = await glass.wait_message("hello")
                link = server.bridge.link
                assert hello == {
                    "type": "hello",
                    "role": "host",
                    "link": link.url,
                    "info_url": link.info_url,
                    "default_name": "Ada",
                    "fingerprint": None,  # no long-term identity given to this bridge
                    "media": None,  # the glass has not said how its camera and mic are
                    "remembered": None,  # nothing kept from an earlier meeting
                }
                assert "#" not in hello["info_url"] and hello["link"].startswith("clave://")
                state = await glass.wait_message("state")
                assert state["phase"] == "prejoin" and state["roster"] == []
                assert state["lobby"] == [] and state["pending_removals"] == []
                assert state["ordering"] is None
                assert state["link"] is None  # given out in the meeting only
                assert state["security_code"] is None and state["self_leaf"] is None
                assert state["connection"] is None and state["rejoining"] is None
                assert state["rejoin"] is None  # offered only once a meeting ended
                padlock = await glass.wait_message("padlock")
                assert padlock["state"] == "not_encrypted"
                assert [m["type"] for m in glass.messages[:3]] == ["hello", "state", "padlock"]
                # A second window is refused while the first is connected ...
                assert await ws_status(server, server.origin) == 409
            finally:
                await glass.close()
            # ... and accepted once it is gone.
            for _ in range(50):
                if not server.bridge.glass_connected:
                    break
                await glass_pause()
            again = await Glass.connect(server)
            try:
                await again.wait_message("hello")
            finally:
                await again.close()

    run(scenario())


def test_hello_gives_the_engines_own_fingerprint(tmp_path: Path) -> None:
    """With a long-term identity, ``hello`` carries its fingerprint (what others see in
    their roster for this engine), so the glass can show it before joining."""
    from clave.meeting.identity import Identity

    async def scenario() -> None:
        identity = Identity.generate(os.urandom)
        link = new_link("http://127.0.0.1:9", os.urandom, os.urandom(32))  # never contacted
        server = UIServer(GlassBridge(link, host=False, identity=identity), files=make_ui(tmp_path))
        await server.start()
        try:
            glass = await Glass.connect(server)
            try:
                hello = await glass.wait_message("hello")
                assert hello["role"] == "guest" and hello["default_name"] == ""
                assert hello["fingerprint"] == identity.fingerprint
                assert re.fullmatch(r"[0-9a-f]{4}( [0-9a-f]{4}){7}", hello["fingerprint"])
            finally:
                await glass.close()
        finally:
            await server.stop()

    run(scenario())


async def glass_pause() -> None:
    await asyncio.sleep(0.02)


def test_prejoin_chunks_are_dropped_and_bad_messages_answered(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(make_ui(tmp_path)) as server:
            glass = await Glass.connect(server)
            try:
                await glass.wait_message("padlock")
                for i in range(5):
                    await glass.send_chunk(1, i == 0, b"\x10\x02\x00" * 50, 1_700_000_000_000_000)
                await glass.send(
                    {"type": "chat", "text": "before joining"}
                )  # handled after the chunks (one reader, in order)
                await glass.wait_message("error", lambda m: "not in the meeting" in m["message"])
                bridge = server.bridge
                assert bridge.counters.chunks_received == 5
                assert bridge.counters.chunks_dropped == 5 and bridge.counters.chunks_sent == 0
                assert bridge.session is None  # nothing was ever connected to a relay
                padlocks = glass.of_type("padlock")
                assert padlocks and all(p["state"] == "not_encrypted" for p in padlocks)
                await glass.ws.send_bytes(b"\x07\x00" + bytes(20))  # unknown kind
                await glass.ws.send_bytes(b"\x01\x00\x00")  # too short
                await glass.ws.send_str("not json")
                await glass.send({"type": "nonsense"})
                await glass.send({"type": "admit", "id": "x"})
                await glass.send({"type": "join", "name": ""})
                await glass.send({"type": "stats", "interval_ms": 2000, "lag_skips": 1})
                await glass.wait_message("error", lambda m: "display name" in m["message"])
                assert bridge.counters.chunks_malformed == 2
                assert bridge.last_stats == Stats(interval_ms=2000, lag_skips=1)
                assert len(glass.of_type("error")) >= 5
            finally:
                await glass.close()

    run(scenario())


def test_the_packaged_ui_is_served() -> None:
    files = index_files(package_ui_files())
    # The glass is part of the product: a build without its page must fail, not skip.
    assert "/index.html" in files, f"the packaged UI has no index.html: {sorted(files)}"
    assert {"/app.js", "/app.css"} <= set(files), sorted(files)
    assert all(path[path.rfind(".") :] in MIME_TYPES for path in files)

    async def scenario() -> None:
        async with serving(None) as server:
            r = await raw_request(server.port, f"/?t={server.token}")
            assert r.status == 200 and BRIDGE.search(r.body)
            r = await raw_request(server.port, "/", cookie_header(server))
            assert r.status == 200
            assert r.body.lstrip().lower().startswith(b"<!doctype html")
            for path in files:
                if path != "/index.html":
                    r = await raw_request(server.port, path, cookie_header(server))
                    assert r.status == 200, path

    run(scenario())
