"""``clave demo``: a real end-to-end encrypted meeting on an embedded relay.

A host and two guests (headless, real VP8 video and Opus audio) meet through
a relay on 127.0.0.1. Every byte between them and the relay passes through a
recording proxy; at the end the recording is searched for the media frames
the senders encoded, the chat texts, the display names and the keys.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Callable

from ..devtools.ws_recorder import RecordingProxy
from ..meeting.link import new_link
from ..meeting.roles import generate_owner_key
from ..relay.server import start_relay
from .audit import find_leaks
from .headless import HeadlessParticipant, ParticipantReport

NAMES = ("Ada (host)", "Grace", "Linus")


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
            f"{seconds:.0f} s")
        await asyncio.sleep(seconds / 2)
        chats = [f"hello from {p.name}, only members can read this" for p in people]
        for p, text in zip(people, chats, strict=True):
            await p.chat(text)
        await asyncio.sleep(seconds / 2)
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
    media_ok = all(
        r.decoded.get(other.name, {}).get(kind, 0) > 0
        for r in reports
        for other in reports
        if other is not r
        for kind in ("video", "audio")
    )
    chats_ok = all(
        len(r.chats) == len(people) - 1 for r in reports
    )
    same_code = len(codes) == 1
    recorded = [*proxy.client_to_relay, *proxy.relay_to_client]
    leaks = find_leaks(
        recorded,
        frames=[c for p in people for c in p.sent_chunks],
        texts=[*chats, *(p.name for p in people)],
        keys=[k for p in people for k in p.audit_keys],
    )
    # The access token is sent in Enter (the relay checks it); nothing else of the
    # invitation, and never the owner's private key, may reach the relay.
    secrets = find_leaks(
        recorded, frames=[], keys=[link.secret, link.keys.join_key, owner_private]
    )
    out("")
    out("checking what the relay saw for plaintext:")
    out(f"  {leaks.bytes_scanned:,} bytes in {len(proxy.client_to_relay):,} client and "
        f"{len(proxy.relay_to_client):,} relay messages (unmasked WebSocket payloads)")
    out(f"  encoded media frames: {leaks.frames_checked:,} frames, {leaks.windows_checked:,} "
        f"32-byte windows -> {leaks.frame_windows_found} found")
    out(f"  chat texts and display names: {leaks.texts_checked} -> "
        f"{len(leaks.texts_found)} found")
    out(f"  SFrame base keys exported from MLS (each member, each epoch): {leaks.keys_checked} -> "
        f"{leaks.keys_found} found")
    out(f"  link secret, join key and owner's private key: {secrets.keys_checked} -> "
        f"{secrets.keys_found} found")
    checks = {
        "everyone decoded everyone's video and audio": media_ok,
        "every chat message reached every other member": chats_ok,
        "all participants show the same security code": same_code,
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
