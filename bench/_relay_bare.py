"""The bare fan-out baseline of ``bench/relay.py --scenario``: aiohttp and nothing else.

    python bench/_relay_bare.py     # prints "listening on PORT", serves until SIGTERM

A client's first binary message is JSON ``{"id": I, "watch": [J, ...]}``: its number
and the senders whose video it wants; the server answers ``b"ok"``. From then on each
binary message is forwarded as it is, with ``await ws.send_bytes``, to the clients that
watch its sender (video: bit 0 of the flags byte, the one byte read) or to every other
client (anything else). No parsing, no queues, no limits, no policy: what a relay
costs at the least with aiohttp, to compare the relay's CPU per delivered frame with.
"""

from __future__ import annotations

import asyncio
import json
import signal

from aiohttp import WSMsgType, web


def make_app() -> web.Application:
    everyone: list[web.WebSocketResponse] = []
    watchers: dict[int, list[web.WebSocketResponse]] = {}
    """Sender number -> the clients that watch its video."""

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        hello = await ws.receive()
        if hello.type is not WSMsgType.BINARY:
            return ws
        info = json.loads(hello.data)
        me: int = info["id"]
        for sender in info["watch"]:
            watchers.setdefault(sender, []).append(ws)
        everyone.append(ws)
        mine = watchers.setdefault(me, [])
        await ws.send_bytes(b"ok")
        try:
            while True:
                msg = await ws.receive()
                if msg.type is not WSMsgType.BINARY:
                    break
                data = msg.data
                for peer in mine if data[2] & 1 else everyone:
                    if peer is not ws:
                        await peer.send_bytes(data)
        finally:
            everyone.remove(ws)
            for lst in watchers.values():
                if ws in lst:
                    lst.remove(ws)
        return ws

    app = web.Application()
    app.router.add_get("/ws", websocket)
    return app


async def serve() -> None:
    runner = web.AppRunner(make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"listening on {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    import uvloop

    uvloop.run(serve())
