"""The relay's logs hold no tokens, payloads, room ids or client addresses."""

from __future__ import annotations

import hashlib
import logging
import os

import aiohttp
from relay_helpers import Client, close_all, meeting, relay, run

from clave.relay import RelayConfig
from clave.relay.logs import RedactArguments
from clave.wire import (
    AppMessage,
    Commit,
    Enter,
    Reopen,
    Rotate,
    StreamKind,
    WelcomeTo,
    credential_hash,
    room_id_for_token,
)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {self.format(record)}")


def test_session_logs_only_counts_and_ids() -> None:
    capture = Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    secrets: list[bytes] = []

    async def scenario() -> None:
        async with relay(RelayConfig(msg_burst=50, msg_rate=50)) as port:
            cred, next_cred = os.urandom(32), os.urandom(32)
            room, token, (a, b) = await meeting(port, 2, cred_hash=credential_hash(cred))
            new_token = os.urandom(32)
            payload = b"PAYLOAD-MARKER-0123456789"
            secrets.extend(
                [room.encode(), token, hashlib.sha256(token).digest(), payload, new_token]
            )
            secrets.extend([cred, next_cred, credential_hash(cred), credential_hash(next_cred)])
            await a.send(Commit(cred=cred, next=credential_hash(next_cred), data=payload))
            await a.send(Reopen(cred=cred))
            await a.send(AppMessage(data=payload))
            await a.send(WelcomeTo(to=b.conn, data=payload))
            await a.send_media(StreamKind.video, True, payload)
            guesser = await Client.connect(port)
            await guesser.send(Enter(room=room, token=bytes(32)))
            await guesser.control()
            flooder = await Client.connect(port)
            await flooder.enter(room, token)
            for _ in range(100):
                try:
                    await flooder.send_media(StreamKind.audio, False, payload)
                except ConnectionError:
                    break
            await flooder.closed()
            bad = await Client.connect(port)
            await bad.send_raw(b"\x01\x43" + payload)
            await bad.closed()
            await a.send(Rotate(cred=next_cred, token=new_token, drop=[b.conn]))
            await b.closed()
            secrets.append(room_id_for_token(new_token).encode())
            async with aiohttp.ClientSession() as session:
                await (await session.get(f"http://127.0.0.1:{port}/m/{room}")).read()
                await (await session.get(f"http://127.0.0.1:{port}/healthz")).read()
            await close_all([a, b, guesser, flooder, bad])

    try:
        run(scenario())
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)

    text = "\n".join(capture.lines)
    assert "clave.relay" in text  # it did log something
    assert "127.0.0.1" not in text
    assert "GET /" not in text  # no access log
    for secret in secrets:
        for form in (secret.hex(), repr(secret), secret.decode("latin-1")):
            assert form not in text


def test_aiohttp_messages_lose_their_arguments() -> None:
    record = logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        "Error handling request from %s (%d%%)",
        ("203.0.113.7", 5),
        None,
    )
    assert RedactArguments().filter(record)
    assert record.getMessage() == "Error handling request from - (-%)"
