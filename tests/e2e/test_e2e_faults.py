"""Faults in a meeting of real processes: nobody is lost, and only the absent are removed.

A relay (``clave serve --heartbeat 1``) and a host and two guests (``clave meet/join
--headless``), each its own process, talk through a fault proxy
(``clave.devtools.fault_proxy``) that gives every member its own entrance. One meeting
takes these faults in turn, each only once the meeting is whole again after the last:

    cut_all        every connection reset at once
    cut_one        g1's connection reset
    blip           every connection reset, and new ones refused for BLIP_S seconds
    pause          g2's process stopped (SIGSTOP) for PAUSE_S seconds, then continued:
                   the relay drops its silent connection, the others count it away
    delay          DELAY_S seconds added to every chunk, each way
    relay_restart  the relay process killed (SIGKILL) and started again on its port

After each fault, every member must be connected to the relay, must have decoded at
least MIN_VIDEO camera frames and MIN_AUDIO audio frames from every other member
since the fault ended, the newest of them captured after it ended; all must show the
one security code they showed before, with the same roster, and nobody may have been
removed. A second meeting, with a resume window of RESUME_WINDOW_S seconds, has g2
paused until the others removed it: their codes change and agree. Continued, g2 learns
that it was removed (stranded), asks to be admitted afresh and is let in again; none
of the frames that reach it meanwhile, of later epochs, opens with its last epoch's
SFrame base key.

Everything is counted from the members' reports (``kill -USR1`` prints one, see
``clave.engine.headless.STATUS_SIGNAL``) and from the proxy's counters; the waits have
deadlines only so that a broken meeting fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from e2e_helpers import run
from fault_helpers import FaultMeeting, Status, brief, increases

from clave.devtools.fault_proxy import EntranceStats

pytestmark = pytest.mark.slow

MEMBERS = ("host", "g1", "g2")
MIN_VIDEO = 30
MIN_AUDIO = 50
RECOVERY_S = 60.0
"""Deadline for a meeting to be whole again after a fault (against hanging only)."""
BLIP_S = 3.0
PAUSE_S = 5.0
DELAY_S = 0.2
HEARTBEAT_S = 1.0
"""The relay's ping interval: a paused member's connection is dropped after 1.5 of them."""
RESUME_WINDOW_S = 4.0
"""The second meeting's resume window (the first keeps the default, 15 s)."""


@dataclass
class Outcome:
    """One fault: statuses before it, right after it ended, and once the meeting was
    whole again, with what the proxy counted meanwhile."""

    fault: str
    before: dict[str, Status] = field(default_factory=dict)
    baseline: dict[str, Status] = field(default_factory=dict)
    after: dict[str, Status] = field(default_factory=dict)
    fault_end: float = 0.0
    proxy: dict[str, EntranceStats] = field(default_factory=dict)
    error: str = ""


def whole_again(baseline: dict[str, Status], since: float) -> Callable[[dict[str, Status]], bool]:
    """Every member connected and decoding every other's video and audio: enough frames
    since ``baseline``, the newest captured after ``since`` (Unix time)."""

    def check(now: dict[str, Status]) -> bool:
        if any(s["link_state"] != "connected" for s in now.values()):
            return False
        if min(increases(baseline, now, "video").values()) < MIN_VIDEO:
            return False
        if min(increases(baseline, now, "audio").values()) < MIN_AUDIO:
            return False
        return all(
            now[rx]["newest_capture"].get(tx, 0.0) > since
            for rx in now
            for tx in now
            if rx != tx
        )

    return check


def _proxy_delta(
    meeting: FaultMeeting, before: dict[str, EntranceStats]
) -> dict[str, EntranceStats]:
    assert meeting.proxy is not None
    delta = {}
    for label, now in meeting.proxy.stats.items():
        was = before[label]
        delta[label] = EntranceStats(
            accepted=now.accepted - was.accepted,
            refused=now.refused - was.refused,
            upstream_failed=now.upstream_failed - was.upstream_failed,
            cut=now.cut - was.cut,
            closed=now.closed - was.closed,
            bytes_up=now.bytes_up - was.bytes_up,
            bytes_down=now.bytes_down - was.bytes_down,
        )
    return delta


# ---------------------------------------------------------------------- the faults


async def cut_all(m: FaultMeeting) -> None:
    assert m.proxy is not None
    m.proxy.cut()


async def cut_one(m: FaultMeeting) -> None:
    assert m.proxy is not None
    m.proxy.cut("g1")


async def blip(m: FaultMeeting) -> None:
    assert m.proxy is not None
    await m.proxy.blip(BLIP_S)


async def pause(m: FaultMeeting) -> None:
    g2 = m.members["g2"]
    g2.pause()
    try:
        await asyncio.sleep(PAUSE_S)
    finally:
        g2.resume()


async def delay(m: FaultMeeting) -> None:
    assert m.proxy is not None
    m.proxy.delay = DELAY_S  # stays on until the meeting is seen whole (then set to 0)


async def relay_restart(m: FaultMeeting) -> None:
    await m.restart_relay()


FAULTS: list[tuple[str, Callable[[FaultMeeting], Awaitable[None]]]] = [
    ("cut_all", cut_all),
    ("cut_one", cut_one),
    ("blip", blip),
    ("pause", pause),
    ("delay", delay),
    ("relay_restart", relay_restart),
]


async def _faults(tmp: Path) -> dict[str, Outcome]:
    meeting = FaultMeeting(tmp, MEMBERS, heartbeat=HEARTBEAT_S)
    outcomes: dict[str, Outcome] = {}
    try:
        await meeting.start()
        assert meeting.proxy is not None
        zero: dict[str, Status] = {n: {"decoded": {}} for n in MEMBERS}
        await meeting.wait_for(whole_again(zero, 0.0), RECOVERY_S)
        for name, fault in FAULTS:
            o = outcomes[name] = Outcome(name)
            try:
                o.before = await meeting.statuses()
                stats = {k: replace(v) for k, v in meeting.proxy.stats.items()}
                await fault(meeting)
                o.fault_end = time.time()
                o.baseline = await meeting.statuses()
                o.after = await meeting.wait_for(whole_again(o.baseline, o.fault_end), RECOVERY_S)
                o.proxy = _proxy_delta(meeting, stats)
                meeting.proxy.delay = 0.0
            except AssertionError as exc:
                o.error = str(exc)
                break
        else:
            await meeting.stop()  # every member exits cleanly (status 0)
    finally:
        await meeting.close()
    return outcomes


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    return run(_faults(tmp_path_factory.mktemp("faults")), timeout=400)


def _outcome(outcomes: dict[str, Outcome], fault: str) -> Outcome:
    o = outcomes.get(fault)
    if o is None:
        failed = next((x for x in outcomes.values() if x.error), None)
        pytest.fail(f"not run: the meeting was not whole after {failed.fault if failed else '?'}")
    assert not o.error, f"{fault}: {o.error}"
    return o


def _count(status: Status, key: str, name: str) -> int:
    return list(status[key]).count(name)


def _nobody_lost(o: Outcome) -> None:
    """One security code, the one from before; the same roster; nobody removed."""
    codes = {n: s["security_code"] for n, s in o.after.items()}
    assert len(set(codes.values())) == 1, f"{o.fault}: codes differ {codes}\n{brief(o.after)}"
    assert set(codes.values()) == {o.before["host"]["security_code"]}, o.fault
    for name, s in o.after.items():
        assert sorted(s["roster"]) == sorted(MEMBERS), (o.fault, name, s["roster"])
        assert s["members_left"] == [], (o.fault, name, s["members_left"])
        assert not s["removed"], (o.fault, name, s["ended_reason"])
        assert s["stranded"] == [] and s["rejoins"] == [], (o.fault, name, brief(o.after))
        assert s["alerts"] == [] and s["media_errors"] == [], (o.fault, name, brief(o.after))


def _reconnected(o: Outcome, name: str) -> int:
    return int(o.after[name]["reconnects"] - o.before[name]["reconnects"])


def test_cut_all_connections(outcomes: dict[str, Outcome]) -> None:
    o = _outcome(outcomes, "cut_all")
    _nobody_lost(o)
    assert {label: s.cut for label, s in o.proxy.items()} == dict.fromkeys(MEMBERS, 1)
    for name in MEMBERS:
        assert _reconnected(o, name) >= 1, (name, brief(o.after))


def test_cut_one_connection(outcomes: dict[str, Outcome]) -> None:
    o = _outcome(outcomes, "cut_one")
    _nobody_lost(o)
    assert {label: s.cut for label, s in o.proxy.items()} == {"host": 0, "g1": 1, "g2": 0}
    assert _reconnected(o, "g1") >= 1, brief(o.after)
    for name in ("host", "g2"):  # they counted g1 away, then back
        assert _count(o.after[name], "members_away", "g1") > _count(
            o.before[name], "members_away", "g1"
        ), (name, brief(o.after))
        assert _count(o.after[name], "members_back", "g1") > _count(
            o.before[name], "members_back", "g1"
        ), (name, brief(o.after))


def test_blip(outcomes: dict[str, Outcome]) -> None:
    o = _outcome(outcomes, "blip")
    _nobody_lost(o)
    assert {label: s.cut for label, s in o.proxy.items()} == dict.fromkeys(MEMBERS, 1)
    for name in MEMBERS:
        assert _reconnected(o, name) >= 1, (name, brief(o.after))


def test_pause_one_process(outcomes: dict[str, Outcome]) -> None:
    o = _outcome(outcomes, "pause")
    _nobody_lost(o)
    assert _reconnected(o, "g2") >= 1, brief(o.after)  # the relay dropped it meanwhile
    for name in ("host", "g1"):
        assert _count(o.after[name], "members_away", "g2") > _count(
            o.before[name], "members_away", "g2"
        ), (name, brief(o.after))
        assert _count(o.after[name], "members_back", "g2") > _count(
            o.before[name], "members_back", "g2"
        ), (name, brief(o.after))


def test_delay(outcomes: dict[str, Outcome]) -> None:
    o = _outcome(outcomes, "delay")
    _nobody_lost(o)
    for name in MEMBERS:  # a slow network is not a lost connection
        lost = o.after[name]["connections_lost"] - o.before[name]["connections_lost"]
        assert lost == 0, (name, brief(o.after))
    assert sum(s.cut + s.accepted for s in o.proxy.values()) == 0


def test_relay_killed_and_restarted(outcomes: dict[str, Outcome]) -> None:
    o = _outcome(outcomes, "relay_restart")
    _nobody_lost(o)
    for name in MEMBERS:
        assert _reconnected(o, name) >= 1, (name, brief(o.after))


# ---------------------------------------------------------------------- past the window


@dataclass
class PastWindow:
    before: dict[str, Status]
    removed: dict[str, Status]
    """host and g1 once they removed g2 and decoded each other again."""
    g2: Status
    """g2's report once it continued and tried what reached it with its old key."""
    readmitted: dict[str, Status]
    """Everyone once g2, admitted afresh through the lobby, is decoded and decodes."""


async def _past_window(tmp: Path) -> PastWindow:
    meeting = FaultMeeting(tmp, MEMBERS, resume_window=RESUME_WINDOW_S, heartbeat=HEARTBEAT_S)
    stayed = ("host", "g1")
    try:
        await meeting.start()
        zero: dict[str, Status] = {n: {"decoded": {}} for n in MEMBERS}
        before = await meeting.wait_for(whole_again(zero, 0.0), RECOVERY_S)
        g2 = meeting.members["g2"]
        g2.pause()
        # Paused until both others removed g2 and decode each other in the new epoch.
        gone = await meeting.wait_for(
            lambda s: all("g2" in s[n]["members_left"] for n in stayed), RECOVERY_S, stayed
        )
        removed = await meeting.wait_for(whole_again(gone, time.time()), RECOVERY_S, stayed)
        g2.resume()
        # g2 comes back, learns it was removed (stranded), asks to be admitted afresh
        # (the host admits everyone) and tries every frame with its old key meanwhile.
        report = await meeting.wait_for(
            lambda s: s["g2"]["attempts_after_removal"] >= MIN_VIDEO, RECOVERY_S, ["g2"]
        )
        now = await meeting.statuses()
        readmitted = await meeting.wait_for(whole_again(now, time.time()), RECOVERY_S)
        await meeting.stop()
    finally:
        await meeting.close()
    return PastWindow(before, removed, report["g2"], readmitted)


@pytest.fixture(scope="module")
def past_window(tmp_path_factory: pytest.TempPathFactory) -> PastWindow:
    return run(_past_window(tmp_path_factory.mktemp("past-window")), timeout=200)


def test_member_away_past_the_window_is_removed(past_window: PastWindow) -> None:
    before, removed = past_window.before, past_window.removed
    old = {s["security_code"] for s in before.values()}
    assert len(old) == 1
    new = {s["security_code"] for s in removed.values()}
    assert len(new) == 1, brief(removed)  # host and g1 agree ...
    assert new != old  # ... on a new code: the membership changed
    for name, s in removed.items():
        assert s["members_left"] == ["g2"], (name, brief(removed))
        assert sorted(s["roster"]) == ["g1", "host"], (name, s["roster"])


def test_removed_members_old_keys_open_nothing_new(past_window: PastWindow) -> None:
    g2 = past_window.g2
    assert len(g2["stranded"]) == 1, brief({"g2": g2})  # it learnt it was removed
    assert g2["attempts_after_removal"] >= MIN_VIDEO, brief({"g2": g2})
    assert g2["decrypted_after_removal"] == 0


def test_removed_member_is_admitted_afresh(past_window: PastWindow) -> None:
    """Stranded, g2 asked to be admitted again and the host let it in: a third code."""
    readmitted = past_window.readmitted
    codes = {s["security_code"] for s in readmitted.values()}
    assert len(codes) == 1, brief(readmitted)
    earlier = {s["security_code"] for s in past_window.before.values()}
    earlier |= {s["security_code"] for s in past_window.removed.values()}
    assert not codes & earlier, "a fresh admission is a new membership: a new code"
    assert readmitted["g2"]["rejoins"] == past_window.g2["stranded"]
    for name, s in readmitted.items():
        assert sorted(s["roster"]) == sorted(MEMBERS), (name, s["roster"])
