"""A scripted glass in a real meeting: embedded relay, headless participant, real VP8/Opus.

The glass speaks the local protocol (docs/PROTOCOL.md, "Local UI channel")
over the engine's WebSocket exactly as the browser does: JSON control in
text frames, encoded chunks in binary frames.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from engine_helpers import AUDIO, VIDEO, Glass, GlassMedia, Json, run, until

from clave.devtools.ws_recorder import RecordingProxy
from clave.engine.audit import find_leaks
from clave.engine.bridge import GlassBridge
from clave.engine.headless import HeadlessParticipant
from clave.engine.ui_server import UIServer
from clave.media import OpusDecoder, VideoDecoder
from clave.meeting.app_messages import MediaState
from clave.meeting.link import MeetingLink, new_link
from clave.meeting.roles import generate_owner_key
from clave.relay.server import start_relay

MEDIA_CHANNEL = 0x4D


@dataclass
class World:
    link: MeetingLink
    proxy: RecordingProxy
    owner_key: bytes
    """The owner's private key: whoever hosts the meeting the link names needs it."""


@contextlib.asynccontextmanager
async def world() -> AsyncIterator[World]:
    """An embedded relay behind a recording proxy, and a link to a meeting on it."""
    runner, relay_port = await start_relay("127.0.0.1", 0)
    proxy = RecordingProxy("127.0.0.1", relay_port)
    proxy_port = await proxy.start()
    owner_private, owner_public = generate_owner_key(os.urandom)
    try:
        link = new_link(f"http://127.0.0.1:{proxy_port}", os.urandom, owner_public)
        yield World(link, proxy, owner_private)
    finally:
        await proxy.stop()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def engine(
    link: MeetingLink, *, owner_key: bytes | None = None
) -> AsyncIterator[tuple[UIServer, Glass]]:
    """A bridge + UI server (the packaged files) and a scripted glass connected to it;
    with ``owner_key`` it hosts the meeting, else it joins it."""
    bridge = GlassBridge(
        link, host=owner_key is not None, owner_key=owner_key, default_name="you"
    )
    server = UIServer(bridge)
    await server.start()
    glass = await Glass.connect(server)
    try:
        await glass.wait_message("padlock")
        yield server, glass
    finally:
        await glass.close()
        await server.bridge.close()
        await server.stop()


def glass_media_messages(proxy: RecordingProxy, index: int) -> int:
    """Media messages the ``index``-th relay connection sent."""
    if len(proxy.connections) <= index:
        return 0
    return sum(
        1 for m in proxy.connections[index].client_to_relay.messages
        if len(m) > 1 and m[1] == MEDIA_CHANNEL
    )


def encrypted_only_in_meeting(messages: list[Json]) -> bool:
    """Every "encrypted" padlock came while the latest state said in_meeting."""
    phase = None
    for m in messages:
        if m["type"] == "state":
            phase = m["phase"]
        elif m["type"] == "padlock" and m["state"] == "encrypted" and phase != "in_meeting":
            return False
    return True


def test_glass_guest_meets_a_headless_host() -> None:
    async def scenario() -> None:
        async with world() as w:
            host = HeadlessParticipant(
                w.link, "Hedy (host)", host=True, owner_key=w.owner_key, auto_admit=False
            )
            await host.start()
            try:
                assert await host.wait_joined(10)
                async with engine(w.link) as (server, glass):
                    await guest_scenario(w, host, server, glass)
            finally:
                await host.stop()

    run(scenario(), timeout=35)


async def guest_scenario(
    w: World, host: HeadlessParticipant, server: UIServer, glass: Glass
) -> None:
    bridge = server.bridge
    hello = glass.of_type("hello")[0]
    assert hello["role"] == "guest" and hello["link"] == w.link.url
    assert hello["info_url"] == w.link.info_url and "#" not in hello["info_url"]
    media = GlassMedia(glass, "glass")
    assert host.session is not None
    hmeeting = host.session.meeting

    # Before joining: no relay connection at all; chunks are dropped.
    await media.send(5)
    await until(lambda: bridge.counters.chunks_received >= 8, what="pre-join chunks")
    assert bridge.counters.chunks_dropped == bridge.counters.chunks_received
    assert len(w.proxy.connections) == 1  # the host's only

    await glass.send({"type": "join", "name": "Grace Glass"})
    await glass.wait_state(lambda s: s["phase"] == "lobby")
    await until(lambda: hmeeting.lobby, what="the host's lobby")
    request = hmeeting.lobby[0]
    assert request.display_name == "Grace Glass"

    # In the lobby: still nothing leaves the engine.
    before = bridge.counters.chunks_received
    await media.send(5)
    await until(lambda: bridge.counters.chunks_received >= before + 8, what="lobby chunks")
    dropped = bridge.counters.chunks_dropped
    assert dropped == bridge.counters.chunks_received and bridge.counters.chunks_sent == 0
    assert glass_media_messages(w.proxy, 1) == 0
    assert all(p["state"] == "not_encrypted" for p in glass.of_type("padlock"))

    await host.session.act(lambda m: m.admit(request.request_id))
    state = await glass.wait_state(lambda s: s["phase"] == "in_meeting")
    await glass.wait_message("padlock", lambda p: p["state"] == "encrypted")
    me = state["self_leaf"]
    assert state["is_host"] is False and state["lobby"] == []
    names = {e["leaf"]: e["name"] for e in state["roster"]}
    assert names == {hmeeting.own_leaf: "Hedy (host)", me: "Grace Glass"}
    assert [e["is_self"] for e in state["roster"] if e["leaf"] == me] == [True]
    roles = {e["leaf"]: e["role"] for e in state["roster"]}
    assert roles[hmeeting.own_leaf] == "owner" and roles[me] in ("member", "successor")
    assert state["pending_removals"] == [] and state["ordering"] is None
    assert state["link"] == w.link.url
    await glass.wait_state(lambda s: s["security_code"] == hmeeting.security_code)
    assert state["security_code"] is not None

    # Media both ways for about 2 s.
    sent_before = bridge.counters.chunks_sent
    await media.send(100)
    await until(
        lambda: all(host.counter.summary().get("Grace Glass", {}).get(k, 0) >= 20
                    for k in ("video", "audio")),
        what="the headless host decoding the glass's video and audio",
    )
    assert bridge.counters.chunks_sent - sent_before >= 140
    assert bridge.counters.chunks_dropped == dropped  # nothing dropped while encrypted

    host_leaf = hmeeting.own_leaf
    frames = [f for f in glass.frames if f.sender == host_leaf]
    video = [f for f in frames if f.kind == VIDEO]
    audio = [f for f in frames if f.kind == AUDIO]
    assert video and audio
    assert video[0].keyframe  # the host sent a keyframe for the newcomer
    decoder = VideoDecoder("vp8")
    assert sum(decoder.decode(f.data) for f in video) >= len(video) - 1
    opus = OpusDecoder()
    assert sum(opus.decode(f.data) for f in audio) >= len(audio) - 1
    for f in frames:
        assert abs(f.received - f.capture_us / 1e6) < 5.0  # the sender's capture clock

    # Chat both ways.
    await glass.send({"type": "chat", "text": "hello from the glass"})
    echo = await glass.wait_message("chat")
    assert (echo["sender"], echo["name"], echo["text"]) == (me, "Grace Glass",
                                                            "hello from the glass")
    await until(lambda: ("Grace Glass", "hello from the glass") in host.report.chats)
    await host.chat("hello from the headless host")
    chat = await glass.wait_message("chat", lambda m: m["sender"] != me)
    assert chat["text"] == "hello from the headless host"
    assert chat["name"] == "Hedy (host)" and chat["sender"] == host_leaf
    assert isinstance(chat["ts"], int) and abs(chat["ts"] / 1000 - time.time()) < 10

    # Mute and camera switches both ways: announced over MLS, not inferred from silence.
    def host_entry(s: Json) -> Json:
        return next(e for e in s["roster"] if e["leaf"] == host_leaf)

    shown = await glass.wait_state(lambda s: host_entry(s)["mic"] is not None)
    assert (host_entry(shown)["mic"], host_entry(shown)["cam"]) == (True, True)
    await glass.send({"type": "media_state", "mic": False, "cam": True, "screen": False})
    await until(
        lambda: hmeeting.media_states.get(me) == MediaState(mic=False, cam=True),
        what="the headless host seeing the glass's microphone off",
    )

    assert encrypted_only_in_meeting(glass.messages)
    assert not glass.of_type("frame_failed")

    # The relay saw none of it in the clear: not the chunks (before or after joining),
    # not the chat, not the names.
    leaks = find_leaks(
        [*w.proxy.client_to_relay, *w.proxy.relay_to_client],
        frames=media.sent,
        texts=["hello from the glass", "hello from the headless host", "Grace Glass"],
    )
    assert leaks.clean and not w.proxy.compressed, leaks
    assert leaks.frames_checked == len(media.sent) and leaks.windows_checked > 1000

    # Leaving: ended, not encrypted, and chunks are dropped again.
    await glass.send({"type": "leave"})
    ended = await glass.wait_message("ended")
    assert ended["reason"] == "you left the meeting"
    await glass.wait_message("padlock", lambda p: p["state"] == "not_encrypted")
    await glass.wait_state(lambda s: s["phase"] == "ended")
    assert bridge.ended.is_set()
    await until(lambda: "Grace Glass" in host.report.members_left, what="the host seeing us go")
    sent = bridge.counters.chunks_sent
    await media.send(3)
    await until(lambda: bridge.counters.chunks_received - bridge.counters.chunks_malformed
                >= bridge.counters.chunks_sent + bridge.counters.chunks_dropped)
    assert bridge.counters.chunks_sent == sent


def test_glass_host_admits_denies_locks_and_removes() -> None:
    async def scenario() -> None:
        async with world() as w, engine(w.link, owner_key=w.owner_key) as (server, glass):
            hello = glass.of_type("hello")[0]
            assert hello["role"] == "host" and hello["link"] == w.link.url
            assert hello["info_url"] == w.link.info_url
            await glass.send({"type": "join", "name": "Ada Glass"})
            state = await glass.wait_state(lambda s: s["phase"] == "in_meeting")
            assert state["is_host"] is True and len(state["roster"]) == 1
            assert state["roster"][0]["role"] == "owner"
            assert state["policy"] == {"locked": False, "auto_admit": False}
            await glass.wait_message("padlock", lambda p: p["state"] == "encrypted")

            linus = HeadlessParticipant(w.link, "Linus", video=False, audio=False)
            eve = HeadlessParticipant(w.link, "Eve", video=False, audio=False)
            try:
                await linus.start()
                s = await glass.wait_state(lambda s: [e["name"] for e in s["lobby"]] == ["Linus"])
                assert linus.session is not None
                entry = s["lobby"][0]
                assert entry["fingerprint"] == linus.session.meeting.fingerprint
                assert entry["familiarity"] and entry["confusable_with"] is None
                await glass.send({"type": "admit", "id": entry["id"]})
                assert await linus.wait_joined(10)
                s = await glass.wait_state(lambda s: len(s["roster"]) == 2 and not s["lobby"])
                code = linus.session.meeting.security_code
                await glass.wait_state(lambda s: s["security_code"] == code)
                await glass.wait_message("padlock", lambda p: p["state"] == "encrypted")

                await eve.start()
                s = await glass.wait_state(lambda s: [e["name"] for e in s["lobby"]] == ["Eve"])
                await glass.send({"type": "deny", "id": str(s["lobby"][0]["id"])})  # as JS may
                await glass.wait_state(lambda s: s["lobby"] == [])
                assert not eve.in_meeting.is_set()

                # Our own commit in flight: "rekeying", while media stays protected under
                # the current epoch; "encrypted" again once the new epoch's keys are in.
                assert server.bridge.session is not None
                meeting = server.bridge.session.meeting
                epoch = meeting.epoch
                assert epoch is not None
                meeting.refresh_keys()  # queued, not yet sent
                assert server.bridge.padlock().state == "rekeying" and meeting.encrypted
                await glass.wait_message("padlock", lambda p: p["state"] == "rekeying")
                await server.bridge.session.flush()
                await glass.wait_state(lambda s: s["epoch"] == epoch + 1)
                await glass.wait_message(
                    "padlock", lambda p: p["state"] == "encrypted" and str(epoch + 1) in p["detail"]
                )

                await glass.send({"type": "lock", "locked": True})
                await glass.wait_state(lambda s: s["policy"]["locked"] is True)
                await glass.send({"type": "auto_admit", "on": True})
                await glass.wait_state(lambda s: s["policy"]["auto_admit"] is True)

                # Removing Linus and replacing the invitation he holds: the meeting's
                # link changes (the glass is told), the old one no longer names it.
                linus_leaf = linus.session.meeting.own_leaf
                await glass.send(
                    {"type": "remove", "leaf": linus_leaf, "replace_invitation": True}
                )
                s = await glass.wait_state(
                    lambda s: len(s["roster"]) == 1 and s["link"] != w.link.url
                )
                assert s["link"].startswith(f"clave://{w.link.netloc}/m/")
                await until(lambda: linus.report.removed, what="Linus removed")
                await glass.send({"type": "remove", "leaf": linus_leaf, "replace_invitation": 1})
                await glass.wait_message("error", lambda m: "replace_invitation" in m["message"])
                await glass.send({"type": "remove", "leaf": 99})
                await glass.wait_message("error", lambda m: "not a member" in m["message"])
                assert encrypted_only_in_meeting(glass.messages)
            finally:
                await eve.stop()
                await linus.stop()

    run(scenario(), timeout=30)


def test_glass_guest_is_told_and_people_are_remembered() -> None:
    """A guest glass: a declined request ends with the host's outcome; a member's glass
    refuses an action aimed at a leaf that now belongs to someone else; the people met
    are handed to the store."""

    async def scenario() -> None:
        from clave.meeting.identity import Identity, parse_credential
        from clave.meeting.people import PeopleBook

        async with world() as w:
            ada = HeadlessParticipant(
                w.link, "Ada", host=True, owner_key=w.owner_key, auto_admit=False,
                video=False, audio=False,
            )  # fmt: skip
            await ada.start()
            assert await ada.wait_joined(10) and ada.session is not None
            saved: list[int] = []
            people = PeopleBook()
            bridge = GlassBridge(
                w.link, host=False, default_name="Grace", identity=Identity.generate(os.urandom),
                people=people, on_people_changed=lambda book: saved.append(len(book)),
            )  # fmt: skip
            server = UIServer(bridge)
            await server.start()
            glass = await Glass.connect(server)
            try:
                hello = await glass.wait_message("hello")
                assert hello["fingerprint"] == bridge.identity.fingerprint  # type: ignore[union-attr]
                await glass.send({"type": "join", "name": "Grace"})
                await glass.wait_state(lambda s: s["phase"] == "lobby")
                await until(lambda: bool(ada.session.meeting.lobby), what="Grace knocks")
                rid = ada.session.meeting.lobby[0].request_id
                await ada.session.act(lambda m: m.admit(rid))
                s = await glass.wait_state(lambda s: s["phase"] == "in_meeting")
                assert {r["name"]: r["familiarity"] for r in s["roster"]} == {
                    "Ada": "new", "Grace": "you"
                }  # fmt: skip
                await until(lambda: bool(saved) and saved[-1] == 1, what="Ada remembered")
                ada_leaf = next(r["leaf"] for r in s["roster"] if r["name"] == "Ada")
                await glass.send({"type": "verify", "leaf": ada_leaf, "verified": True,
                                  "fingerprint": "0000 0000"})  # fmt: skip
                await glass.wait_message("error", lambda m: "no longer" in m["message"])
                ada_fp = next(r["fingerprint"] for r in s["roster"] if r["name"] == "Ada")
                await glass.send({"type": "verify", "leaf": ada_leaf, "verified": True,
                                  "fingerprint": ada_fp})  # fmt: skip
                await glass.wait_state(
                    lambda s: any(r["verified"] for r in s["roster"] if r["name"] == "Ada")
                )
                ada_member = ada.session.meeting._mls_members[ada_leaf]
                assert people.is_verified(parse_credential(ada_member.credential).identity_key)
            finally:
                await glass.close()
                await bridge.close()
                await server.stop()
            # A second guest is declined: its glass ends with the host's outcome.
            bridge2 = GlassBridge(w.link, host=False, default_name="Eve")
            server2 = UIServer(bridge2)
            await server2.start()
            glass2 = await Glass.connect(server2)
            try:
                await glass2.send({"type": "join", "name": "Eve"})
                await until(lambda: bool(ada.session.meeting.lobby), what="Eve knocks")
                rid = ada.session.meeting.lobby[0].request_id
                await ada.session.act(lambda m: m.deny(rid))
                ended = await glass2.wait_message("ended")
                assert ended["outcome"] == "declined"
                assert ended["reason"] == "The host declined your request to join."
            finally:
                await glass2.close()
                await bridge2.close()
                await server2.stop()
                await ada.stop()

    run(scenario(), timeout=40)
