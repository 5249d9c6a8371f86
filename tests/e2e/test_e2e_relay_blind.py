"""The relay is blind: every byte it receives and sends carries no plaintext and no key.

Three headless participants meet through a real relay; a recording TCP proxy
(:class:`~clave.devtools.ws_recorder.RecordingProxy`, outside the relay) sits
between them and it and keeps every byte in both directions. The recording is
then searched for the encoded media frames the senders produced (as 32-byte
windows), the chat texts, the display names, the SFrame keys in use (each
participant's base key of each epoch and, for every sender KID in the recorded
frames, the AEAD key and salt derived from it, each proven in use by opening
recorded frames of that KID), the link secret, the join key, the owner's
private key and every participant's long-term identity key. The access token is
derived from the secret too, but it is the one value the relay must see (in
``Enter``): it serves as a positive control that a key sent in the clear is
found, and it is found nowhere else.
Further positive controls show that the search finds planted plaintext.

The meeting is measured in events, not seconds: it lasts until every member
decoded a given number of frames from every other one, before and after the
chats.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from e2e_helpers import BASE_URL, invitation, relay, run, stop_all, wait_for_frames, wait_until

from clave.devtools.ws_recorder import RecordingProxy
from clave.engine.audit import WINDOW, KeyInventory, collect_sframe_keys, find_leaks
from clave.engine.headless import HeadlessParticipant
from clave.meeting.identity import Identity
from clave.meeting.link import b64url_encode
from clave.wire import CONTROL, MEDIA, Enter, decode_client

pytestmark = pytest.mark.slow

HALF = {"video": 75, "audio": 125}
"""Frames every member decodes from every other one before the chats, and again after."""


@dataclass
class Recording:
    to_relay: list[bytes]
    from_relay: list[bytes]
    raw_to_relay: bytes
    raw_from_relay: bytes
    heads: list[bytes]
    parse_failures: list[str]
    compressed: bool
    chunks: list[bytes]
    frames_sent: int
    names: list[str]
    chats: list[str]
    epoch_keys: dict[str, list[tuple[int, bytes]]]
    """Each participant's ``(epoch, SFrame base key)`` pairs."""
    inventory: KeyInventory
    secret: bytes
    secret_text: str
    join_key: bytes
    owner_key: bytes
    identity_keys: list[bytes]
    access_token: bytes
    owner_text: str
    chats_received: dict[str, list[tuple[str, str]]]
    alerts: list[str]

    @property
    def secrets(self) -> list[bytes]:
        """What must never reach the relay besides the per-epoch keys."""
        return [self.secret, self.join_key, self.owner_key, *self.identity_keys]

    @property
    def messages(self) -> list[bytes]:
        return [*self.to_relay, *self.from_relay]

    @property
    def keys(self) -> list[bytes]:
        """The SFrame keys in use: base keys, then every sender's AEAD key and salt."""
        return self.inventory.secrets


async def _meeting() -> Recording:
    tag = os.urandom(4).hex()
    names = [f"Ada Lovelace {tag}", f"Grace Hopper {tag}", f"Linus Torvalds {tag}"]
    chats = [f"{n} says: the quarterly numbers are confidential ({tag})" for n in names]
    async with relay() as relay_port:
        proxy = RecordingProxy("127.0.0.1", relay_port)
        proxy_port = await proxy.start()
        link, owner_key = invitation(BASE_URL.format(port=proxy_port))
        identities = [Identity.generate(os.urandom) for _ in names]
        people = [
            HeadlessParticipant(
                link,
                name,
                host=(i == 0),
                owner_key=owner_key if i == 0 else None,
                identity=identities[i],
                keep_chunks=50_000,
                audit=True,
            )
            for i, name in enumerate(names)
        ]
        try:
            for p in people:
                await p.start()
                assert await p.wait_joined(15), f"{p.name} was not admitted"
            await wait_for_frames(people, HALF)
            for p, text in zip(people, chats, strict=True):
                await p.chat(text)
            await wait_until(lambda: all(len(p.report.chats) == 2 for p in people), 15)
            await wait_for_frames(people, HALF)
            for p in people:
                assert p.report.media_errors == [], p.report.media_errors
        finally:
            await stop_all(people)
            await proxy.stop()
    keys = link.keys
    epoch_keys = {p.name: list(p.audit_epoch_keys) for p in people}
    inventory = collect_sframe_keys(
        epoch_keys, [*proxy.client_to_relay, *proxy.relay_to_client]
    )
    return Recording(
        to_relay=list(proxy.client_to_relay),
        from_relay=list(proxy.relay_to_client),
        raw_to_relay=proxy.raw_client_to_relay,
        raw_from_relay=proxy.raw_relay_to_client,
        heads=[c.client_to_relay.parser.head or b"" for c in proxy.connections],
        parse_failures=[
            d.parser.failed
            for c in proxy.connections
            for d in (c.client_to_relay, c.relay_to_client)
            if d.parser.failed is not None
        ],
        compressed=proxy.compressed,
        chunks=[c for p in people for c in p.sent_chunks],
        frames_sent=sum(sum(p.report.frames_sent.values()) for p in people),
        names=names,
        chats=chats,
        epoch_keys=epoch_keys,
        inventory=inventory,
        secret=link.secret,
        secret_text=b64url_encode(link.secret),
        join_key=keys.join_key,
        owner_key=owner_key,
        identity_keys=[i.private_bytes for i in identities],
        access_token=keys.access_token,
        owner_text=b64url_encode(link.owner),
        chats_received={p.name: list(p.report.chats) for p in people},
        alerts=[a for p in people for a in p.report.alerts],
    )


@pytest.fixture(scope="module")
def recording() -> Recording:
    return run(_meeting(), timeout=120)


def test_the_recording_is_real_and_complete(recording: Recording) -> None:
    """Guard against a vacuous pass: lots of traffic, fully parsed, nothing compressed."""
    assert not recording.compressed
    assert recording.parse_failures == []
    assert len(recording.heads) == 3
    assert all(h.startswith(b"GET /ws HTTP/1.1\r\n") for h in recording.heads), recording.heads
    assert sum(len(m) for m in recording.messages) > 1_000_000
    assert len(recording.messages) > 2_000
    media_to_relay = sum(1 for m in recording.to_relay if m[1] == MEDIA)
    assert media_to_relay >= 0.99 * recording.frames_sent
    # Every sent frame was kept, and (nearly) every one is long enough to be searched.
    assert len(recording.chunks) == recording.frames_sent
    assert sum(len(c) >= WINDOW for c in recording.chunks) >= 0.99 * len(recording.chunks)
    # Each member's epochs: 3, 2 and 1 (then the departures), one base key per epoch.
    epochs = [len(recording.epoch_keys[n]) for n in recording.names]
    assert all(n >= k for n, k in zip(epochs, (3, 2, 1), strict=True)), epochs
    assert all(len(k) == 16 for pairs in recording.epoch_keys.values() for _, k in pairs)
    assert len(set(recording.secrets)) == 3 + 3  # secret, join key, owner key, identities
    assert all(len(k) == 32 for k in recording.secrets)
    # The members did read what the relay could not.
    for name, got in recording.chats_received.items():
        assert len(got) == 2, (name, got)
    assert recording.alerts == []


def test_the_keys_searched_for_are_the_keys_in_use(recording: Recording) -> None:
    """Positive control for the key search: every SFrame key id in the recorded media
    has a collected key and salt that authenticate its frames (so a search for wrong
    keys, e.g. recomputed with another label, fails here), for every sender."""
    inv = recording.inventory
    assert inv.media_frames >= 0.99 * recording.frames_sent
    assert inv.kids_unverified == frozenset(), sorted(inv.kids_unverified)
    assert inv.complete
    senders = inv.sender_keys
    assert {s.kid for s in senders} == inv.kids_recorded
    assert all(s.opened >= 1 and s.frames >= s.opened for s in senders)
    assert sum(s.frames for s in senders) == inv.media_frames
    # The last epoch before anyone left had all three members sending audio and video,
    # each stream under its own KID context: six KIDs under one base key, each with
    # its own AEAD key and salt.
    final = max((e for e in inv.epochs if len(e.senders) == 6), key=lambda e: e.epoch)
    assert len({s.key for s in final.senders}) == len({s.salt for s in final.senders}) == 6
    holders = {e.participant for e in inv.epochs if e.base_key == final.base_key}
    assert holders == set(recording.names)  # every member held that epoch's base key
    assert len(inv.base_keys) >= 3
    assert all(len(s.key) == 16 and len(s.salt) == 12 for s in senders)


def test_relay_saw_no_media_chat_names_or_keys(recording: Recording) -> None:
    report = find_leaks(
        recording.messages,
        frames=recording.chunks,
        texts=[*recording.chats, *recording.names],
        keys=[*recording.keys, *recording.secrets],
    )
    assert report.frames_checked == len(recording.chunks)
    assert report.windows_checked > 20_000
    assert report.texts_checked == 6
    assert report.keys_checked == len(recording.keys) + len(recording.secrets)
    assert report.clean, report


def test_link_secret_never_crosses_the_wire(recording: Recording) -> None:
    """Not even in the HTTP upgrade request: the fragment stays in the participant."""
    raw = recording.raw_to_relay + recording.raw_from_relay
    assert b"GET /ws HTTP/1.1" in raw
    needles = [
        recording.secret_text.encode(),
        recording.owner_text.encode(),
        *recording.secrets,
        *(k.hex().encode() for k in recording.secrets),
    ]
    for needle in needles:
        assert needle not in raw
        assert not any(needle in m for m in recording.messages)
    for name in recording.names:  # nor the names, in any header
        assert name.encode() not in raw


def test_access_token_goes_only_into_enter(recording: Recording) -> None:
    """The token is what the relay checks: each participant sends it once, in ``Enter``,
    and the relay sends it to nobody. Finding it is also a positive control for the
    key search over the same recording."""
    token = recording.access_token
    carriers = [m for m in recording.to_relay if token in m]
    assert len(carriers) == 3, len(carriers)
    for m in carriers:
        assert m[1] == CONTROL
        msg = decode_client(m[2:])
        assert isinstance(msg, Enter) and msg.token == token, msg
    assert not any(token in m for m in recording.from_relay)
    report = find_leaks(recording.messages, frames=[], keys=[token, *recording.secrets])
    assert (report.keys_checked, report.keys_found) == (1 + len(recording.secrets), 1)


def test_positive_control_the_leak_check_finds_planted_plaintext(recording: Recording) -> None:
    """The same check on the same recording fails once plaintext is planted in one message."""
    messages = recording.messages
    video = max(recording.chunks, key=len)  # a keyframe
    audio = min((c for c in recording.chunks if len(c) >= 47), key=len)
    victim = len(messages) // 2

    def planted(extra: bytes) -> list[bytes]:
        m = messages[victim]
        return [*messages[:victim], m[:9] + extra + m[9:], *messages[victim + 1 :]]

    for chunk in (video, audio):
        # 47 consecutive bytes of a frame always contain a whole 32-byte window.
        start = min(len(chunk) // 3, len(chunk) - 47)
        piece = chunk[start : start + 47]
        report = find_leaks(planted(piece), frames=recording.chunks)
        assert report.frame_windows_found >= 1 and not report.clean, len(chunk)

    report = find_leaks(planted(recording.names[1].encode()), frames=[], texts=recording.names)
    assert report.texts_found == (recording.names[1],)

    report = find_leaks(planted(recording.chats[2].encode()), frames=[], texts=recording.chats)
    assert report.texts_found == (recording.chats[2],)

    senders = recording.inventory.sender_keys
    for key in (recording.inventory.base_keys[-1], senders[0].key, senders[-1].salt):
        report = find_leaks(planted(key), frames=[], keys=recording.keys)
        assert report.keys_found == 1 and not report.clean

    for secret in recording.secrets:
        report = find_leaks(planted(secret), frames=[], keys=recording.secrets)
        assert report.keys_found == 1 and not report.clean
