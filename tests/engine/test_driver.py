"""The participant driver shared by the headless participant and the glass bridge:
keyframe requests are throttled per sender and stream (counted in the requests the
meeting core queues for the relay, on a real meeting over the relay's own rules)."""

from __future__ import annotations

import random

from clave import wire
from clave.devtools.memory_relay import MemoryRelay
from clave.engine.driver import KEYFRAME_ASK_INTERVAL, KeyframeAsker
from clave.meeting.identity import Identity
from clave.meeting.link import new_link
from clave.meeting.meeting import Meeting, Phase
from clave.meeting.roles import generate_owner_key
from clave.wire import StreamKind

NOW = 1_790_000_000


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def two_members() -> tuple[Meeting, Meeting, dict[Meeting, int], MemoryRelay]:
    """A host and an admitted guest, both in the meeting."""
    rng = random.Random(7).randbytes
    relay, clock = MemoryRelay(), Clock()
    owner_private, owner_public = generate_owner_key(rng)
    link = new_link("https://clave.example", rng, owner_public)
    common = {"rng": rng, "clock": clock, "now": lambda: NOW}
    host = Meeting.create(
        link, "Ada", owner_key=owner_private, identity=Identity.generate(rng),
        auto_admit=True, **common,
    )  # fmt: skip
    guest = Meeting.join(link, "Bob", identity=Identity.generate(rng), **common)
    conns = {host: relay.connect(), guest: relay.connect()}
    for _ in range(50):
        moved = False
        for m, conn in conns.items():
            for frame in m.frames_to_send():
                relay.handle(conn, frame)
                moved = True
            box = relay.inbox[conn]
            while box:
                m.receive(box.popleft())
                moved = True
            while m.next_event() is not None:
                pass
        if not moved:
            break
    assert host.phase is Phase.in_meeting and guest.phase is Phase.in_meeting
    return host, guest, conns, relay


def requests_queued(meeting: Meeting) -> int:
    sent = [wire.decode_client(wire.split_frame(f)[1]) for f in meeting.frames_to_send()]
    return sum(isinstance(m, wire.KeyframeRequest) for m in sent)


def test_keyframe_requests_are_throttled_per_sender_and_stream() -> None:
    host, guest, _, _ = two_members()
    clock = Clock()
    asker = KeyframeAsker(clock)
    ada = host.own_leaf
    assert [asker.ask(guest, ada, StreamKind.video) for _ in range(5)] == [True] + [False] * 4
    assert asker.ask(guest, ada, StreamKind.screen)  # another stream: its own budget
    assert requests_queued(guest) == 2
    clock.t += KEYFRAME_ASK_INTERVAL
    assert asker.ask(guest, ada, StreamKind.video)
    assert not asker.ask(guest, ada, StreamKind.video)
    asker.allow_now(ada, StreamKind.video)  # a new decoder: ask at once
    assert asker.ask(guest, ada, StreamKind.video)
    asker.clear()
    assert asker.ask(guest, ada, StreamKind.screen)
    assert requests_queued(guest) == 3
