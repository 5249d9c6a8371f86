"""A real meeting of five processes: a relay, a host and three guests, each its own ``clave``.

Timeline (each step waits for an event: the previous one's "joined as" line, or the
commit that removed g2)::

    relay   clave serve --port 0
    host    clave meet --headless            epoch 0   (prints the invitation)
    g2      clave join --chat ... --linger   epoch 1   (leaves after LEAVER_S; a bare connection
                                                       it left in the room tries its last
                                                       SFrame base key on later frames)
    g1      clave join --chat ...            epoch 2
            g2 says Bye, the host removes it epoch 3
    g3      clave join --chat ...            epoch 4   (late joiner, leaves after LATE_S)
            host and g1 stop on SIGTERM (Ctrl-C)

The guests get the invitation on standard input, never on their command line
(which every local user can read). A raw relay client holding the access token
sits in the room throughout without asking to join: it sees when commits are
ordered (so the test knows when g2 is gone) and reads nothing of the meeting.
Everything else asserted comes from the JSON reports the processes write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import WSMsgType
from clave_process import Proc
from e2e_helpers import RawClient, run, wait_until

from clave.meeting.link import MeetingLink, parse_link
from clave.wire import (
    MEDIA,
    AppFrom,
    CommitFrom,
    JoinRequestFrom,
    Leave,
    RelayMessage,
    Subscribe,
    WelcomeFor,
    decode_relay,
)

pytestmark = pytest.mark.slow

LEAVER_S = 5.0
"""How long g2 stays after joining before it says Bye (its --duration)."""
LINGER_S = 4.0
"""How long g2 keeps its relay connection after its removal, trying to decrypt."""
LATE_S = 5.0
"""How long the late joiner g3 stays."""
BACKSTOP_S = 60.0
"""--duration of the host and g1, which are stopped with SIGTERM long before."""

CHAT_G2 = "g2 to the host, before g1 was admitted"
CHAT_G1 = "g1 to host and g2, before g3 was admitted"
CHAT_G3 = "g3 to host and g1, after g2 left"

MIN_VIDEO = 30
MIN_AUDIO = 50

Report = dict[str, Any]
MEMBERS = ("host", "g1", "g2", "g3")


@dataclass
class Outcome:
    """The four JSON reports, the invitation, everything the relay process printed, the
    guests' command lines and what the observer in the room received."""

    reports: dict[str, Report]
    link: MeetingLink
    invitation: str
    relay_output: str
    command_lines: dict[str, bytes]
    observed: list[bytes]


@dataclass
class Observer:
    """A raw relay client in the meeting's room (it holds the access token, as any link
    holder does) that never asks to join: it only records what the relay sends it."""

    client: RawClient
    messages: list[bytes] = field(default_factory=list)
    control: list[RelayMessage] = field(default_factory=list)

    @classmethod
    async def enter(cls, port: int, link: MeetingLink) -> Observer:
        client = await RawClient.connect(port)
        await client.enter_link(link)
        await client.send(Subscribe(audio=False, video=False, screen=False))
        return cls(client)

    async def read(self) -> None:
        while True:
            msg = await self.client.ws.receive()
            if msg.type is not WSMsgType.BINARY:
                return
            self.messages.append(msg.data)
            if msg.data[1] != MEDIA:
                self.control.append(decode_relay(memoryview(msg.data)[2:]))

    @property
    def commits(self) -> int:
        return sum(isinstance(m, CommitFrom) for m in self.control)


async def _meeting(tmp: Path) -> Outcome:
    procs: list[Proc] = []
    observer: Observer | None = None
    reader: asyncio.Task[None] | None = None

    async def start(name: str, *args: str, stdin: str | None = None) -> Proc:
        p = await Proc.spawn(name, tmp, *args, stdin=stdin)
        procs.append(p)
        return p

    def member(name: str, *extra: str) -> list[str]:
        return ["--headless", "--name", name, "--report", f"{name}.json", *extra]

    try:
        relay = await start("relay", "serve", "--port", "0")
        url = await relay.expect("relay listening on ")
        port = urlsplit(url).port
        assert port is not None

        host = await start(
            "host", "meet", "--relay", url, *member("host"), "--duration", str(BACKSTOP_S)
        )
        invitation = await host.expect("invitation: ")
        link = parse_link(invitation)
        await host.expect("joined as ")
        observer = await Observer.enter(port, link)
        reader = asyncio.create_task(observer.read())

        g2 = await start(
            "g2",
            "join",
            *member("g2"),
            "--duration",
            str(LEAVER_S),
            "--linger",
            str(LINGER_S),
            "--chat",
            CHAT_G2,
            stdin=invitation,
        )
        await g2.expect("joined as ")

        g1 = await start(
            "g1",
            "join",
            *member("g1"),
            "--duration",
            str(BACKSTOP_S),
            "--chat",
            CHAT_G1,
            stdin=invitation,
        )
        await g1.expect("joined as ")
        await wait_until(lambda: observer.commits >= 2, 10, explain=observer.control)
        assert observer.commits == 2  # +g2, +g1, and nothing else

        # g2 says Bye LEAVER_S after joining; the host's commit that removes it is the
        # room's third. g3 comes only once that commit is ordered (g2 still lingers).
        await wait_until(lambda: observer.commits >= 3, LEAVER_S + 20, explain=observer.control)
        g3 = await start(
            "g3",
            "join",
            *member("g3"),
            "--duration",
            str(LATE_S),
            "--chat",
            CHAT_G3,
            stdin=invitation,
        )
        await g3.expect("joined as ")
        command_lines = {p.name: p.command_line() for p in (host, g1, g2, g3)}

        await g3.finish(LATE_S + 15)
        await g2.finish(LINGER_S + 15)
        # The host removes g3 (the fifth commit) before anyone is stopped.
        await wait_until(lambda: observer.commits >= 5, 20, explain=observer.control)
        await observer.client.send(Leave())
        await asyncio.wait_for(reader, 10)
        host.terminate()
        g1.terminate()
        await host.finish(15)
        await g1.finish(15)
        relay.terminate()
        await relay.finish(15)
    finally:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        if observer is not None:
            await observer.client.close()
        for p in procs:
            await p.kill()
    reports = {name: json.loads((tmp / f"{name}.json").read_text()) for name in MEMBERS}
    relay_output = "\n".join(relay.lines) + relay.stderr.read_text(errors="replace")
    assert observer is not None
    return Outcome(reports, link, invitation, relay_output, command_lines, list(observer.messages))


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run(_meeting(tmp_path_factory.mktemp("multiprocess")), timeout=90)


@pytest.fixture(scope="module")
def reports(outcome: Outcome) -> dict[str, Report]:
    return outcome.reports


def test_relay_process_never_saw_the_secret(outcome: Outcome) -> None:
    secret_text = outcome.invitation.partition("#")[2].partition(".")[0]
    assert len(secret_text) == 43
    assert outcome.relay_output.startswith("relay listening on http://127.0.0.1:")
    keys = outcome.link.keys
    for needle in (
        secret_text,
        outcome.invitation.partition("#")[2],
        outcome.link.secret.hex(),
        keys.join_key.hex(),
        keys.access_token.hex(),  # the relay holds the token, but never logs it
        keys.room_id,  # nor the room id (rooms are numbered in logs)
    ):
        assert needle not in outcome.relay_output


def test_the_invitation_is_on_no_command_line(outcome: Outcome) -> None:
    """The guests read it from standard input; the host made it and printed it."""
    if not any(outcome.command_lines.values()):
        pytest.skip("no /proc/PID/cmdline here")
    secret = outcome.invitation.partition("#")[2].partition(".")[0].encode()
    for name, cmdline in outcome.command_lines.items():
        assert cmdline, name
        assert secret not in cmdline and b"clave://" not in cmdline, (name, cmdline)
    assert b"join" in outcome.command_lines["g1"]  # the command lines are the real ones


def test_a_link_holder_who_never_asks_to_join_reads_nothing(outcome: Outcome) -> None:
    """The observer held the access token throughout: ciphertext and relay bookkeeping."""
    control = [decode_relay(memoryview(m)[2:]) for m in outcome.observed if m[1] != MEDIA]
    assert sum(isinstance(m, CommitFrom) for m in control) >= 5  # +g2 +g1 -g2 +g3 -g3
    assert sum(isinstance(m, JoinRequestFrom) for m in control) == 3  # g2, g1, g3
    assert sum(isinstance(m, AppFrom) for m in control) >= 3  # the chats among them
    assert not any(isinstance(m, WelcomeFor) for m in control)  # nobody admitted it
    assert not any(m[1] == MEDIA for m in outcome.observed)  # it subscribed to none
    stream = b"\x00".join(outcome.observed)
    for text in (CHAT_G1, CHAT_G2, CHAT_G3):
        assert text.encode() not in stream


def _codes(report: Report) -> dict[int, str]:
    codes: dict[int, str] = {}
    for epoch, code in report["security_codes"]:
        assert epoch not in codes, f"{report['name']} entered epoch {epoch} twice"
        codes[epoch] = code
    return codes


OVERLAPS = [("host", "g1"), ("host", "g2"), ("g1", "g2"), ("host", "g3"), ("g1", "g3")]


@pytest.mark.parametrize(("a", "b"), OVERLAPS)
def test_everyone_decodes_everyone_they_met(reports: dict[str, Report], a: str, b: str) -> None:
    for receiver, sender in ((a, b), (b, a)):
        got = reports[receiver]["decoded"].get(sender, {})
        assert got.get("video", 0) >= MIN_VIDEO, f"{receiver} from {sender}: {got}"
        assert got.get("audio", 0) >= MIN_AUDIO, f"{receiver} from {sender}: {got}"


def test_media_is_clean(reports: dict[str, Report]) -> None:
    for name, r in reports.items():
        assert r["joined"], name
        assert r["frames_rejected"] == 0, (name, r["rejections"])
        assert r["media_errors"] == [], (name, r["media_errors"])
        assert r["alerts"] == [], (name, r["alerts"])
        assert r["declined"] == "", name
        assert r["ordering_stalls"] == 0, name
        assert r["frames_sent"]["video"] >= MIN_VIDEO and r["frames_sent"]["audio"] >= MIN_AUDIO
        # Every decoded camera frame was timed end to end (counted, not judged).
        decoded_video = sum(kinds.get("video", 0) for kinds in r["decoded"].values())
        assert len(r["latencies_ms"]) >= MIN_VIDEO, name
        assert len(r["latencies_ms"]) <= decoded_video, name
    # g2 and g3 were never members at the same time: neither could decode the other.
    assert "g3" not in reports["g2"]["decoded"]
    assert "g2" not in reports["g3"]["decoded"]


def test_departed_member_is_removed_and_its_keys_decrypt_nothing_later(
    reports: dict[str, Report],
) -> None:
    g2 = reports["g2"]
    assert not g2["removed"], g2["ended_reason"]  # it left with a goodbye, then ...
    # ... the host removed it (below), while a bare connection it put in the room first,
    # as any ex-member holding the invitation could, collected the media.
    # g2 tried every frame of a later epoch with the key and salt its last SFrame base key
    # gives for that frame's own (new) KID: the cryptography, not an unknown-KID refusal.
    assert g2["attempts_after_removal"] > 100, "the audit tried too few frames to mean anything"
    assert g2["decrypted_after_removal"] == 0
    assert g2["frames_after_removal"] == (
        g2["attempts_after_removal"] + g2["old_epoch_frames_after_removal"]
    )
    # Frames of g2's own last epoch still in flight do open the same way: the attempt works.
    assert g2["old_epoch_frames_opened"] == g2["old_epoch_frames_after_removal"]
    assert "g2" in reports["host"]["members_left"]
    assert "g2" in reports["g1"]["members_left"]
    assert sorted(g2["roster"]) == ["g1", "g2", "host"]  # its last epoch
    # The others moved on: epochs after g2's last one, without g2 in them.
    assert max(_codes(reports["host"])) > max(_codes(g2))
    assert sorted(reports["g3"]["roster"]) == ["g1", "g3", "host"]  # g3 left before the others


def test_chat_reaches_exactly_the_current_members(reports: dict[str, Report]) -> None:
    def chats(name: str) -> set[tuple[str, str]]:
        return {(sender, text) for sender, text in reports[name]["chats"]}

    assert chats("host") == {("g2", CHAT_G2), ("g1", CHAT_G1), ("g3", CHAT_G3)}
    assert chats("g2") == {("g1", CHAT_G1)}  # not g3's: sent after g2 left
    assert chats("g1") == {("g3", CHAT_G3)}  # not g2's: sent before g1 was admitted
    assert chats("g3") == set()  # neither g2's nor g1's: sent before g3 was admitted
    for name in reports:
        assert len(reports[name]["chats"]) == len(chats(name)), f"{name} got a chat twice"


def test_security_codes_agree_per_epoch_and_change_on_every_join_and_leave(
    reports: dict[str, Report],
) -> None:
    per_member = {name: _codes(r) for name, r in reports.items()}
    union: dict[int, str] = {}
    seen_by: dict[int, list[str]] = {}
    for name, codes in per_member.items():
        for epoch, code in codes.items():
            assert union.setdefault(epoch, code) == code, (
                f"epoch {epoch}: {name} shows {code}, another member {union[epoch]}"
            )
            seen_by.setdefault(epoch, []).append(name)

    # One epoch per membership change: create, +g2, +g1, -g2, +g3, -g3 (then the
    # teardown: the owner's handover, ...).
    host = per_member["host"]
    assert list(host)[:6] == [0, 1, 2, 3, 4, 5]
    assert list(host) == list(range(len(host))), "the host missed an epoch"
    assert list(per_member["g2"]) == [1, 2]
    assert list(per_member["g1"])[:4] == [2, 3, 4, 5]
    assert list(per_member["g3"]) == [4]
    assert sorted(seen_by[2]) == ["g1", "g2", "host"]
    assert sorted(seen_by[4]) == ["g1", "g3", "host"]
    assert sorted(seen_by[5]) == ["g1", "host"]
    # Epochs 0-4 have five different memberships: five different codes, so every join
    # and every leave changed the code ...
    first = [union[e] for e in range(5)]
    assert len(set(first)) == 5, first
    assert union[5] != union[4]
    # ... and the code is the membership's, not the keys': host and g1 alone again
    # after g3 left (epoch 5) is epoch 3's membership, and shows epoch 3's code.
    assert union[5] == union[3]
