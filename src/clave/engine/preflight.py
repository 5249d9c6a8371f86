"""Is a Clave relay there? Checked before ``clave meet`` / ``clave join`` show anything.

A relay that is down, a typo in its address, ``https://`` to a plain-http port or
a web server that is not a Clave relay should be said in one line before the
pre-join screen, not discovered as a traceback, a silent hang or "meeting ended"
for a meeting never joined. Two requests, each bounded by a short timeout:

1. ``GET /healthz`` on the relay's base URL must answer 200 with the body ``ok``
   (what :mod:`clave.relay.server` answers);
2. a WebSocket upgrade of the relay URL (``/ws``) must succeed; it is closed at
   once, before any room is entered. A proxy in front of the relay that forwards
   plain requests but not WebSocket upgrades fails here.

Nothing secret is sent: neither request carries the invitation, a token or a room id.
Both requests check the relay's certificate as the :class:`~clave.engine.tls.RelayTrust`
says (CAs and host name, or a pinned fingerprint); a TLS failure is one of the lines
of :data:`clave.engine.tls.MESSAGES`.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import aiohttp

from .tls import SYSTEM_TRUST, AiohttpSsl, RelayTrust, tls_failure

TIMEOUT = 5.0
"""Seconds each request may take."""
HEALTH_PATH = "/healthz"
HEALTH_BODY = "ok"
_MAX_BODY = 64


class RelayUnusable(Exception):
    """The relay cannot be used; the message is one line for the user."""


async def check_relay(
    base_url: str,
    ws_url: str,
    *,
    timeout: float = TIMEOUT,
    trust: RelayTrust | None = None,
) -> None:
    """Raise :class:`RelayUnusable` unless a Clave relay answers at ``base_url``
    (``https://HOST[:PORT]``) and accepts a WebSocket at ``ws_url``, with a certificate
    ``trust`` accepts (default: the system's CAs)."""
    limit = aiohttp.ClientTimeout(total=timeout)
    ssl = (trust or SYSTEM_TRUST).aiohttp_ssl()
    async with aiohttp.ClientSession(timeout=limit) as http:
        await _check_health(http, base_url, timeout, ssl)
        await _check_websocket(http, base_url, ws_url, timeout, ssl)


async def _check_health(
    http: aiohttp.ClientSession,
    base_url: str,
    timeout: float,
    ssl: AiohttpSsl,
) -> None:
    where = base_url.rstrip("/")
    try:
        url = f"{where}{HEALTH_PATH}"
        async with http.get(url, allow_redirects=False, ssl=ssl) as response:
            status = response.status
            body = (await response.content.read(_MAX_BODY)).decode("utf-8", "replace")
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise RelayUnusable(_unreachable(where, exc, timeout)) from None
    if status != 200 or body.strip() != HEALTH_BODY:
        answer = f"HTTP {status}" if status != 200 else "something else"
        raise RelayUnusable(
            f"{where} answers, but it is not a Clave relay (GET {HEALTH_PATH} gave {answer}, "
            f'not "{HEALTH_BODY}"): check the address'
        )


async def _check_websocket(
    http: aiohttp.ClientSession,
    base_url: str,
    ws_url: str,
    timeout: float,
    ssl: AiohttpSsl,
) -> None:
    where = base_url.rstrip("/")
    try:
        ws = await http.ws_connect(ws_url, compress=0, autoping=False, ssl=ssl)
    except aiohttp.WSServerHandshakeError as exc:
        raise RelayUnusable(
            f"{where} is a Clave relay, but its WebSocket at {urlsplit(ws_url).path} refused "
            f"the upgrade (HTTP {exc.status}): a proxy in front of it must pass WebSocket "
            "upgrades"
        ) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise RelayUnusable(_unreachable(where, exc, timeout)) from None
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, asyncio.CancelledError):
        await ws.close()


def _unreachable(where: str, exc: BaseException, timeout: float) -> str:
    """One line for a request that got no HTTP answer at all."""
    host = urlsplit(where).netloc
    secure = where.startswith("https:")
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return f"no answer from the relay at {where} within {timeout:g} s"
    tls = tls_failure(where, exc)
    if tls is not None:
        return tls
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot find the relay's host {urlsplit(where).hostname!r} (name not found)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return f"nothing is listening at {host} (connection refused): is the relay running?"
        return f"cannot connect to the relay at {where}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError) or (
        isinstance(exc, aiohttp.ClientResponseError) and exc.status == 400
    ):
        hint = "" if secure else " (is it an https port? then the relay's address starts with https://)"
        return f"{where} does not answer like a Clave relay{hint}"
    return f"cannot reach the relay at {where}: {type(exc).__name__}"


__all__ = ["TIMEOUT", "RelayUnusable", "check_relay"]
