"""The recording proxy sees the real (unmasked) payloads in both directions."""

from __future__ import annotations

import os

from relay_helpers import Client, close_all, new_room, relay, run

from clave.devtools.ws_recorder import (
    OP_BINARY,
    OP_CONTINUATION,
    OP_TEXT,
    MessageAssembler,
    RecordingProxy,
    StreamParser,
    unmask,
)
from clave.wire import StreamKind, decode_media, encode_media


def masked_frame(payload: bytes, opcode: int = OP_BINARY, fin: bool = True) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + key + unmask(payload, key)


def test_parser_unmasks_and_reassembles_fragments_fed_byte_by_byte() -> None:
    stream = (
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
        + masked_frame(b"small")
        + masked_frame(b"A" * 300)
        + masked_frame(b"B" * 70_000)
        + masked_frame(b"part one, ", OP_TEXT, fin=False)
        + masked_frame(b"part two", OP_CONTINUATION, fin=True)
    )
    parser, assembler, messages = StreamParser(), MessageAssembler(), []
    for i in range(len(stream)):
        for frame in parser.feed(stream[i : i + 1]):
            assert frame.masked
            if (message := assembler.add(frame)) is not None:
                messages.append(message)
    assert parser.head is not None and parser.head.startswith(b"GET /ws")
    assert messages == [
        (OP_BINARY, b"small"),
        (OP_BINARY, b"A" * 300),
        (OP_BINARY, b"B" * 70_000),
        (OP_TEXT, b"part one, part two"),
    ]


def test_known_payload_through_the_proxy_is_recorded_unmasked() -> None:
    secret = b"KNOWN-PAYLOAD-" + os.urandom(32).hex().encode()

    async def scenario() -> RecordingProxy:
        async with relay() as relay_port:
            proxy = RecordingProxy("127.0.0.1", relay_port)
            port = await proxy.start()
            try:
                a, b = await Client.connect(port), await Client.connect(port)
                room, token = new_room()
                await a.enter(room, token)
                await b.enter(room, token)
                await a.send_media(StreamKind.video, True, secret)
                assert (await b.media()).sframe == secret
                await close_all([a, b])
            finally:
                await proxy.stop()
            return proxy

    proxy = run(scenario())
    sent = encode_media(StreamKind.video, True, secret)
    assert sent in proxy.client_to_relay
    forwarded = [m for m in proxy.relay_to_client if m[1:2] == b"\x4d"]
    assert [decode_media(m).sframe for m in forwarded] == [secret]
    # on the wire the client's copy is masked, the relay's is not
    assert secret not in proxy.raw_client_to_relay
    assert secret in proxy.raw_relay_to_client
    assert len(proxy.connections) == 2
    assert not proxy.compressed
    assert all(c.client_to_relay.parser.failed is None for c in proxy.connections)
