"""Control-plane cost of an epoch change in a meeting of N (issue 13, requirement 6).

One meeting of N light members (MLS and control only) on the relay's own rooms in
this process (:class:`clave.devtools.memory_relay.MemoryRelay`). It then measures,
per event, the messages the relay delivered and the time each member spent on
them, twice in the same run: with the protocol as it is (a member whose connection
did not change sends nothing on an epoch change; a newcomer learns who is where
from its host's directory) and with the previous protocol emulated (every member
sends a Hello after every epoch change). Events: a key refresh, one admission, ten
admissions.

    python bench/control_plane.py [--n 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from clave import wire
from clave.devtools.memory_relay import MEMORY_CONFIG, MemoryRelay
from clave.meeting import Identity, Meeting, MeetingConfig, generate_owner_key, new_link
from clave.meeting.app_messages import MAX_MISSING, Hello
from clave.meeting.core import MeetingCore

NOW = 1_800_000_000


class Net:
    """Meetings on an in-process relay; frames pumped until nothing moves."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        config = dataclasses.replace(MEMORY_CONFIG, max_conns_per_room=2000, max_epoch_slots=8192)
        self.relay = MemoryRelay(config=config)
        self.t = 1000.0
        self.members: dict[int, Meeting] = {}
        self.spent: defaultdict[str, float] = defaultdict(float)
        owner_private, owner_public = generate_owner_key(self.rng)
        self.link = new_link("https://clave.example", self.rng, owner_public)
        self.host = self._add(
            Meeting.create(
                self.link, "Host", owner_key=owner_private, auto_admit=True, **self._env()
            )
        )
        self.pump()

    def rng(self, n: int) -> bytes:
        return self.random.randbytes(n)

    def _env(self) -> dict[str, Any]:
        return dict(
            rng=self.rng, clock=lambda: self.t, now=lambda: NOW,
            config=MeetingConfig(), identity=Identity.generate(self.rng),
        )  # fmt: skip

    def _add(self, meeting: Meeting) -> Meeting:
        """A new member (pumped with the next :meth:`pump`)."""
        self.members[self.relay.connect()] = meeting
        return meeting

    def guest(self, name: str) -> Meeting:
        return self._add(Meeting.join(self.link, name, **self._env()))

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for conn, m in self.members.items():
                for frame in m.frames_to_send():
                    self.relay.handle(conn, frame)
                    moved = True
            for conn, m in self.members.items():
                box = self.relay.inbox.get(conn)
                while box:
                    frame = box.popleft()
                    kind = _kind(frame)
                    start = time.perf_counter()
                    m.receive(frame)
                    self.spent[kind] += time.perf_counter() - start
                    while m.next_event() is not None:
                        pass
                    moved = True

    def in_meeting(self) -> int:
        return sum(1 for m in self.members.values() if m.phase == "in_meeting")


def _kind(frame: bytes) -> str:
    channel, body = wire.split_frame(frame)
    return "media" if channel != wire.CONTROL else type(wire.decode_relay(body)).__name__


def legacy(self: MeetingCore, summary: Any) -> None:
    """The previous protocol: a Hello from every member after every epoch change
    (``missing``: the members away), no directory."""
    conn = self._presence.conn
    if conn is not None:
        missing = self._presence.missing()[:MAX_MISSING]
        self._send_app(Hello(conn, self._name, missing, self._own_media))


def measure(net: Net, label: str, act: Callable[[], None]) -> dict[str, float]:
    net.spent.clear()
    mark = len(net.relay.log)
    act()
    net.pump()
    counts: defaultdict[str, int] = defaultdict(int)
    for frame in net.relay.log[mark:]:
        counts[_kind(frame)] += 1
    n = net.in_meeting()
    row = {
        "n": n,
        "commits": counts["CommitFrom"],
        "apps": counts["AppFrom"],
        "app_ms": net.spent["AppFrom"] / n * 1000,
        "commit_ms": net.spent["CommitFrom"] / n * 1000,
    }
    print(
        f"  {label:16s} N={n:4d}  delivered {row['commits']:5d} commits {row['apps']:7d} app"
        f" msgs | per member {row['app_ms']:8.2f} ms on app msgs {row['commit_ms']:7.2f} ms"
        " on commits",
        flush=True,
    )
    return row


def ten(net: Net, names: Iterator[int]) -> None:
    for _ in range(10):
        net.guest(f"Late {next(names)}")


def run(n: int) -> None:
    net = Net(seed=7)
    start = time.perf_counter()
    while len(net.members) < n:
        for _ in range(min(50, n - len(net.members))):
            net.guest(f"Member {len(net.members):04d}")
        net.pump()
    assert net.in_meeting() == n, net.in_meeting()
    print(f"a meeting of {n} built in {time.perf_counter() - start:.1f} s")
    someone = list(net.members.values())[5]
    rows: dict[str, dict[str, dict[str, float]]] = {}
    original = MeetingCore._announce_epoch
    late = iter(range(10_000))
    for protocol in ("previous", "now"):
        print(protocol)
        MeetingCore._announce_epoch = legacy if protocol == "previous" else original  # type: ignore[method-assign]
        rows[protocol] = {
            "key refresh": measure(net, "key refresh", someone.refresh_keys),
            "one admission": measure(net, "one admission", lambda: net.guest(f"Late {next(late)}")),
            "ten admissions": measure(net, "ten admissions", lambda: ten(net, late)),
        }
    MeetingCore._announce_epoch = original  # type: ignore[method-assign]
    print("previous / now, same run:")
    for event in rows["now"]:
        old, new = rows["previous"][event], rows["now"][event]
        print(
            f"  {event:16s} app msgs delivered {old['apps']:7.0f} / {new['apps']:5.0f}"
            f"   per-member ms on app msgs {old['app_ms']:7.2f} / {new['app_ms']:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200)
    run(parser.parse_args().n)


if __name__ == "__main__":
    main()
