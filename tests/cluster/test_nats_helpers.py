"""The cluster tests' NATS helpers work: a real nats-server takes clients, keeps its
JetStream streams across a restart, and the traffic recorder sees what it carries."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats_helpers import NatsServer, TrafficRecorder

from bounded_run import run

WAIT = 10.0
"""Deadline, in seconds, for any single wait (only against hanging)."""


async def _connect(url: str) -> Client:
    return await nats.connect(url, connect_timeout=5, allow_reconnect=False)


def test_pub_sub(nats_server: NatsServer) -> None:
    async def scenario() -> list[str]:
        nc = await _connect(nats_server.url)
        try:
            got: list[str] = []
            done = asyncio.Event()

            async def on_msg(msg: Msg) -> None:
                got.append(f"{msg.subject}={msg.data.decode()}")
                if msg.subject == "greet.end":
                    done.set()

            await nc.subscribe("greet.*", cb=on_msg)
            for i in range(3):
                await nc.publish(f"greet.{i}", f"hello {i}".encode())
            await nc.publish("other.x", b"not for greet.*")
            # Published last by the same client, so it arrives after all the others.
            await nc.publish("greet.end", b"bye")
            await asyncio.wait_for(done.wait(), WAIT)
            return got
        finally:
            await nc.close()

    got = run(scenario(), 60)
    assert got == ["greet.0=hello 0", "greet.1=hello 1", "greet.2=hello 2", "greet.end=bye"]


async def _stream_messages(url: str, payload_seq: int = 3) -> tuple[int, bytes]:
    """The number of messages in stream T, and the payload of message ``payload_seq``."""
    nc = await _connect(url)
    try:
        js = nc.jetstream(timeout=WAIT)
        info = await js.stream_info("T")
        msg = await js.get_msg("T", seq=payload_seq)
        return info.state.messages, msg.data or b""
    finally:
        await nc.close()


def test_jetstream_persists_across_restart(nats_server: NatsServer) -> None:
    async def create() -> None:
        nc = await _connect(nats_server.url)
        try:
            js = nc.jetstream(timeout=WAIT)
            await js.add_stream(name="T", subjects=["t.>"])
            for i in range(3):
                ack = await js.publish(f"t.{i}", f"event {i}".encode())
                assert ack.stream == "T"
                assert ack.seq == i + 1
        finally:
            await nc.close()

    run(create(), 60)
    assert run(_stream_messages(nats_server.url), 60) == (3, b"event 2")

    port = nats_server.port
    nats_server.restart()
    assert nats_server.port == port
    assert nats_server.running
    assert run(_stream_messages(nats_server.url), 60) == (3, b"event 2")
    assert any((nats_server.store_dir / "jetstream").iterdir())


def test_kill_then_restart(nats_server: NatsServer) -> None:
    nats_server.kill()
    assert not nats_server.running
    assert nats_server.returncode == -9
    nats_server.restart()
    assert nats_server.running

    async def echo() -> bytes:
        nc = await _connect(nats_server.url)
        try:
            sub = await nc.subscribe("after.crash")
            await nc.publish("after.crash", b"back")
            msg = await sub.next_msg(timeout=WAIT)
            return msg.data
        finally:
            await nc.close()

    assert run(echo(), 60) == b"back"


def test_recorder_sees_what_the_server_carries(nats_server: NatsServer) -> None:
    assert nats_server.port is not None
    upstream = nats_server.port

    async def scenario() -> bytes:
        recorder = await TrafficRecorder.start(upstream)
        try:
            assert recorder.port not in (0, upstream)
            nc = await _connect(f"nats://127.0.0.1:{recorder.port}")
            try:
                sub = await nc.subscribe("s")
                await nc.publish("s", b"secret-payload-123")
                msg = await sub.next_msg(timeout=WAIT)
                assert msg.data == b"secret-payload-123"
                await nc.flush(timeout=int(WAIT))
            finally:
                await nc.close()
        finally:
            await recorder.close()
        return bytes(recorder.data)

    data = run(scenario(), 60)
    assert data.startswith(b"INFO ")
    # Once from the client (PUB), once from the server (MSG): both directions recorded.
    assert data.count(b"secret-payload-123") == 2
    assert b"never-published-456" not in data


def test_missing_binary_fails_instead_of_skipping(tmp_path: Path) -> None:
    server = NatsServer(tmp_path, executable=str(tmp_path / "no-such-nats-server"))
    with pytest.raises(AssertionError, match="nats-server not found"):
        server.start()
