"""What NATS carries for a relay cluster holds no plaintext, names or keys (issue 14, req. 5).

Three real engines meet on three relay nodes (one each), and every node reaches the
NATS server through a recording proxy, so the recording is everything the NATS server
carried for the cluster: deliveries between nodes (media and control), rosters, the
rooms' commit logs and token hashes. It is searched, as the single-relay blindness
test searches the relay's traffic, for the senders' encoded media frames (32-byte
windows), the chats, the display names, every SFrame base key each participant used,
the link secret, the join key, the owner's private key, the identity keys, and the
access token (which reaches a relay node in ``Enter`` but never goes further: nodes
share only its hash).

Guards against a vacuous pass: the recording is large, every node delivered media
and control from the others, and the room's id and a roster key are in it. Positive
control: the same search finds a name planted in the recording.
"""

from __future__ import annotations

import hashlib
import os

from e2e_helpers import BASE_URL, invitation, stop_all, wait_for_frames, wait_until
from nats_helpers import NatsServer, TrafficRecorder

from bounded_run import run
from clave.engine.audit import find_leaks
from clave.engine.headless import HeadlessParticipant
from clave.meeting.identity import Identity
from clave.relay.server import STATE_KEY, start_relay

FRAMES = {"video": 60, "audio": 100}


def test_nats_carries_no_media_chat_names_or_keys(nats_server: NatsServer) -> None:
    async def scenario() -> None:
        assert nats_server.port is not None
        recorder = await TrafficRecorder.start(nats_server.port)
        url = f"nats://127.0.0.1:{recorder.port}"
        relays = [await start_relay("127.0.0.1", 0, nats=[url]) for _ in range(3)]
        tag = os.urandom(4).hex()
        names = [f"Ada Lovelace {tag}", f"Grace Hopper {tag}", f"Linus Torvalds {tag}"]
        chats = [f"{n} says: the numbers are confidential ({tag})" for n in names]
        link, owner_key = invitation(BASE_URL.format(port=relays[0][1]))
        identities = [Identity.generate(os.urandom) for _ in names]
        people = [
            HeadlessParticipant(
                link,
                name,
                host=i == 0,
                owner_key=owner_key if i == 0 else None,
                identity=identities[i],
                relay_url=f"ws://127.0.0.1:{relays[i][1]}/ws",
                keep_chunks=50_000,
                audit=True,
            )
            for i, name in enumerate(names)
        ]
        try:
            for p in people:
                await p.start()
                assert await p.wait_joined(20), f"{p.name} was not admitted"
            await wait_for_frames(people, FRAMES, timeout=60)
            for p, text in zip(people, chats, strict=True):
                await p.chat(text)
            await wait_until(lambda: all(len(p.report.chats) == 2 for p in people), 20)
            await wait_for_frames(people, FRAMES, timeout=60)
            nodes = [runner.app[STATE_KEY].cluster for runner, _ in relays]
            handles = {h for node in nodes if node for h in node.rooms}
        finally:
            await stop_all(people)
            for runner, _ in relays:
                await runner.cleanup()
            await recorder.close()

        recording = bytes(recorder.data)
        # not vacuous: the cluster's traffic went through the recorder
        assert len(recording) > 1_000_000, len(recording)
        for node in nodes:
            assert node is not None
            audio, video, _, control = node.delivered
            assert audio > 50 and video > 30 and control > 0, node.delivered
        assert link.room_id.encode() in recording  # the token check names the room
        assert len(handles) == 1  # one room, by one handle on every node
        assert f"{handles.pop()}.1".encode() in recording  # node 1's roster key
        keys = link.keys
        chunks = [c for p in people for c in p.sent_chunks]
        base_keys = [k for p in people for _, k in p.audit_epoch_keys]
        secrets = [
            link.secret,
            keys.join_key,
            owner_key,
            keys.access_token,
            *(i.private_bytes for i in identities),
        ]
        assert len(chunks) > 500 and len(base_keys) >= 3
        report = find_leaks([recording], frames=chunks, texts=[*chats, *names],
                            keys=[*base_keys, *secrets])  # fmt: skip
        assert report.frames_checked == len(chunks) and report.windows_checked > 10_000
        assert report.texts_checked == 6
        assert report.keys_checked == len(base_keys) + len(secrets)
        assert report.clean, report
        # the token's hash is what the nodes share (the room's CAS entry)
        assert hashlib.sha256(keys.access_token).digest() in recording
        # positive control: the same search finds what is planted
        planted = recording[:5000] + names[1].encode() + recording[5000:]
        found = find_leaks([planted], frames=[], texts=names)
        assert found.texts_found == (names[1],)

    run(scenario(), 150)
