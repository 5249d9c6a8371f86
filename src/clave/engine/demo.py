"""``clave demo``: a real end-to-end encrypted meeting on an embedded relay.

A host and two guests (headless, real VP8 video and Opus audio) meet through
a relay on 127.0.0.1. Every byte between them and the relay passes through a
recording proxy; at the end the recording is searched for the media frames
the senders encoded, the chat texts, the display names and the SFrame keys in
use (each epoch's base key and every sender's AEAD key and salt, each proven in
use by opening recorded frames of its key id).

The demo cannot pass vacuously: every participant must decode at least
:data:`MIN_PER_PAIR` frames from every other one, the search must have scanned
traffic, frames and every key id in it, and the same search must find plaintext,
a name and keys planted in a copy of the recording (a positive control).
"""

from __future__ import annotations

import asyncio
import copy
import os
import time
from collections.abc import Callable, Sequence

from ..devtools.ws_recorder import RecordingProxy
from ..meeting.link import new_link
from ..meeting.roles import generate_owner_key
from ..relay.server import start_relay
from .audit import STRIDE, WINDOW, KeyInventory, LeakReport, collect_sframe_keys, find_leaks
from .headless import HeadlessParticipant, ParticipantReport

NAMES = ("Ada (host)", "Grace", "Linus")
MIN_PER_PAIR = {"video": 30, "audio": 50}
"""Frames every participant must decode from every other one."""
MEDIA_DEADLINE_S = 60.0
"""How long the demo waits for those frames past ``--seconds`` before it fails."""


def _table(reports: list[ParticipantReport]) -> list[str]:
    lines = []
    for r in reports:
        lines.append(f"  {r.name}")
        lines.append(f"    security code: {r.security_code}")
        for sender, kinds in sorted(r.decoded.items()):
            lines.append(
                f"    decoded from {sender:<12} video {kinds.get('video', 0):>4} frames"
                f"   audio {kinds.get('audio', 0):>4} frames"
            )
    return lines


def _short_pairs(decoded: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    """``receiver<-sender kind have/want`` for every pair below MIN_PER_PAIR;
    ``decoded`` is ``{receiver: {sender: {kind: frames}}}``."""
    short = []
    for receiver, got in decoded.items():
        for sender in decoded:
            if sender == receiver:
                continue
            for kind, want in MIN_PER_PAIR.items():
                have = got.get(sender, {}).get(kind, 0)
                if have < want:
                    short.append(f"{receiver}<-{sender} {kind} {have}/{want}")
    return short


async def _wait_for_media(people: Sequence[HeadlessParticipant], deadline: float) -> bool:
    while _short_pairs({p.name: p.counter.summary() for p in people}):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def _positive_control(
    recorded: list[bytes], frames: list[bytes], texts: list[str], keys: list[bytes]
) -> list[str]:
    """Plant a piece of a frame, a text and keys in a copy of the recording: the same
    search must find each one. Returns what it missed (nothing, when it works)."""
    if not recorded:
        return ["nothing was recorded to plant into"]
    victim = len(recorded) // 2
    missed = []

    def planted(extra: bytes) -> list[bytes]:
        m = recorded[victim]
        return [*recorded[:victim], m[:9] + extra + m[9:], *recorded[victim + 1 :]]

    piece = WINDOW + STRIDE - 1  # so many consecutive bytes always hold a whole window
    long_frames = [f for f in frames if len(f) >= piece]
    if long_frames:
        frame = max(long_frames, key=len)
        start = min(len(frame) // 3, len(frame) - piece)
        report = find_leaks(planted(frame[start : start + piece]), frames=frames)
        if report.frame_windows_found < 1:
            missed.append("a planted piece of an encoded frame")
    else:
        missed.append("a frame long enough to plant")
    if texts and find_leaks(planted(texts[-1].encode()), frames=[], texts=texts).texts_found != (
        texts[-1],
    ):
        missed.append("a planted chat text")
    for key in keys:
        if find_leaks(planted(key), frames=[], keys=keys).keys_found != 1:
            missed.append(f"a planted key of {len(key)} bytes")
    return missed


def _scanned(leaks: LeakReport, inventory: KeyInventory, n_texts: int) -> list[str]:
    """What the search failed to cover (nothing, when it scanned everything it must)."""
    gaps = []
    if leaks.bytes_scanned <= 0:
        gaps.append("no bytes scanned")
    if leaks.frames_checked <= 0 or leaks.windows_checked <= 0:
        gaps.append("no encoded frames searched for")
    if leaks.texts_checked != n_texts:
        gaps.append(f"{leaks.texts_checked} of {n_texts} texts searched for")
    if not inventory.complete:
        gaps.append(
            f"{len(inventory.kids_unverified)} of {len(inventory.kids_recorded)} key ids "
            f"without a collected key ({inventory.media_frames} media frames)"
        )
    if leaks.keys_checked < len(inventory.secrets):
        gaps.append("not every key in use searched for")
    return gaps


async def run_demo(seconds: float = 10.0, out: Callable[[str], None] = print) -> bool:
    """Run the demo; True when media flowed, codes matched and the relay saw no plaintext."""
    runner, relay_port = await start_relay("127.0.0.1", 0)
    proxy = RecordingProxy("127.0.0.1", relay_port)
    proxy_port = await proxy.start()
    people: list[HeadlessParticipant] = []
    try:
        owner_private, owner_public = generate_owner_key(os.urandom)
        link = new_link(f"http://127.0.0.1:{proxy_port}", os.urandom, owner_public)
        out(f"relay: 127.0.0.1:{relay_port} (embedded); participants reach it through a")
        out(f"       recording proxy on 127.0.0.1:{proxy_port} that keeps every byte")
        out(f"link:  {link.url}")
        host = HeadlessParticipant(
            link, NAMES[0], host=True, owner_key=owner_private, keep_chunks=20_000, audit=True
        )
        people.append(host)
        await host.start()
        if not await host.wait_joined(10):
            out("the host could not create the meeting")
            return False
        for name in NAMES[1:]:
            guest = HeadlessParticipant(link, name, keep_chunks=20_000, audit=True)
            people.append(guest)
            await guest.start()
        joined = await asyncio.gather(*(p.wait_joined(15) for p in people[1:]))
        if not all(joined):
            out("a guest was not admitted in time")
            return False
        out(f"{len(people)} participants in the meeting; exchanging video and audio for "
            f"{seconds:.0f} s, and until each decoded {MIN_PER_PAIR['video']} video and "
            f"{MIN_PER_PAIR['audio']} audio frames from each other one")
        await asyncio.sleep(seconds / 2)
        chats = [f"hello from {p.name}, only members can read this" for p in people]
        for p, text in zip(people, chats, strict=True):
            await p.chat(text)
        await asyncio.sleep(seconds / 2)
        await _wait_for_media(people, time.monotonic() + MEDIA_DEADLINE_S)
        # Snapshot now: leaving changes the epoch (and the code) for those who stay.
        for p in people:
            p.report.decoded = p.counter.summary()
        reports = [copy.deepcopy(p.report) for p in people]
        codes = {r.security_code for r in reports}
    finally:
        for p in people:
            await p.stop()
        await proxy.stop()
        await runner.cleanup()

    out("")
    out("what each participant decoded, and the security code each one sees:")
    for line in _table(reports):
        out(line)
    short = _short_pairs({r.name: r.decoded for r in reports})
    chats_ok = all(
        len(r.chats) == len(people) - 1 for r in reports
    )
    same_code = len(codes) == 1
    recorded = [*proxy.client_to_relay, *proxy.relay_to_client]
    frames = [c for p in people for c in p.sent_chunks]
    texts = [*chats, *(p.name for p in people)]
    inventory = collect_sframe_keys(
        {p.name: p.audit_epoch_keys for p in people}, recorded
    )
    leaks = find_leaks(recorded, frames=frames, texts=texts, keys=inventory.secrets)
    # The access token is sent in Enter (the relay checks it); nothing else of the
    # invitation, and never the owner's private key, may reach the relay.
    invitation = [link.secret, link.keys.join_key, owner_private]
    secrets = find_leaks(recorded, frames=[], keys=invitation)
    gaps = _scanned(leaks, inventory, len(texts))
    planted_keys = [*inventory.base_keys[-1:], *_one_sender(inventory), *invitation]
    missed = _positive_control(recorded, frames, texts, planted_keys)
    senders = inventory.sender_keys
    out("")
    out("checking what the relay saw for plaintext:")
    out(f"  {leaks.bytes_scanned:,} bytes in {len(proxy.client_to_relay):,} client and "
        f"{len(proxy.relay_to_client):,} relay messages (unmasked WebSocket payloads)")
    out(f"  encoded media frames: {leaks.frames_checked:,} frames, {leaks.windows_checked:,} "
        f"32-byte windows -> {leaks.frame_windows_found} found")
    out(f"  chat texts and display names: {leaks.texts_checked} -> "
        f"{len(leaks.texts_found)} found")
    kids = len(inventory.kids_recorded)
    out(f"  SFrame key ids in the recorded media: {kids} in {inventory.media_frames:,} "
        f"frames -> {kids - len(inventory.kids_unverified)} opened with the collected keys")
    out(f"  SFrame keys in use (base keys of every epoch, each sender's AEAD key and salt): "
        f"{leaks.keys_checked} -> {leaks.keys_found} found")
    out(f"    ({len(inventory.base_keys)} base keys, {len(senders)} sender keys and "
        f"{len(senders)} salts)")
    out(f"  link secret, join key and owner's private key: {secrets.keys_checked} -> "
        f"{secrets.keys_found} found")
    out(f"  positive control, planted in a copy of the recording: a piece of a frame, a "
        f"text and {len(planted_keys)} keys -> {'all found' if not missed else 'MISSED'}")
    for line in gaps:
        out(f"  not searched: {line}")
    for line in missed:
        out(f"  positive control missed {line}")
    for line in short[:10]:
        out(f"  too few frames: {line}")
    checks = {
        f"everyone decoded at least {MIN_PER_PAIR['video']} video and {MIN_PER_PAIR['audio']} "
        "audio frames from everyone else": not short,
        "every chat message reached every other member": chats_ok,
        "all participants show the same security code": same_code,
        "the search covered the traffic, every frame and every key id in use": not gaps,
        "the search finds plaintext and keys planted in the recording": not missed,
        "the relay saw no plaintext, names or keys": leaks.clean
        and secrets.clean
        and not proxy.compressed,
    }
    out("")
    for label, ok in checks.items():
        out(f"  [{'ok' if ok else 'FAIL'}] {label}")
    passed = all(checks.values())
    out("demo " + ("passed" if passed else "FAILED"))
    return passed


def _one_sender(inventory: KeyInventory) -> list[bytes]:
    """One sender's AEAD key and salt, to plant (none if nothing was collected)."""
    senders = inventory.sender_keys
    return [senders[-1].key, senders[-1].salt] if senders else []
