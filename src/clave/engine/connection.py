"""The WebSocket connection from an engine to the relay (its certificate checked as a
:class:`~clave.engine.tls.RelayTrust` says)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from ..wire import MAX_CONTROL_BYTES
from .tls import SYSTEM_TRUST, RelayTrust, tls_failure


class RelayConnectionError(Exception):
    """The relay could not be reached or closed the connection."""


class RelayConnection:
    """One binary WebSocket to the relay (no compression, so nothing is hidden from audits)."""

    def __init__(
        self,
        url: str,
        *,
        heartbeat: float = 5.0,
        open_timeout: float = 10.0,
        trust: RelayTrust | None = None,
    ) -> None:
        self._url = url
        self._trust = trust or SYSTEM_TRUST
        self._heartbeat = heartbeat
        """Seconds between pings; a relay that does not answer within half of it is gone."""
        self._open_timeout = open_timeout
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await asyncio.wait_for(
                self._session.ws_connect(
                    self._url,
                    compress=0,
                    heartbeat=self._heartbeat,
                    max_msg_size=MAX_CONTROL_BYTES + 1024,
                    ssl=self._trust.aiohttp_ssl(),
                ),
                self._open_timeout,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self._session.close()
            message = tls_failure(self._url, exc) or f"cannot reach the relay at {self._url}: {exc}"
            raise RelayConnectionError(message) from exc

    @property
    def closed(self) -> bool:
        return self._ws is None or self._ws.closed

    async def send(self, frame: bytes) -> None:
        if self._ws is None or self._ws.closed:
            raise RelayConnectionError("the relay connection is closed")
        try:
            await self._ws.send_bytes(frame)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise RelayConnectionError(f"sending to the relay failed: {exc}") from exc

    async def frames(self) -> AsyncIterator[bytes]:
        """Binary messages from the relay until the connection closes."""
        assert self._ws is not None, "open() first"
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                yield msg.data
            elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                break

    @property
    def close_code(self) -> int | None:
        return None if self._ws is None else self._ws.close_code

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
