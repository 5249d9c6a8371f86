"""``clave meet --headless`` / ``clave join --headless``: a participant without a browser
(test-pattern VP8 and an Opus tone), reporting what it decoded."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from .errors import EXIT_NOT_ADMITTED, CliError
from .meeting import meeting_config, on_stop_signals, open_meeting, open_store, print_invitation

if TYPE_CHECKING:
    from ..engine.headless import ParticipantReport

JOIN_WAIT = 30.0
"""Seconds a headless participant waits to be admitted."""
DECLINED = {
    "declined": "not admitted: the host declined your request to join",
    "locked": "not admitted: the meeting is locked (the host is not admitting anyone now)",
    "full": "not admitted: the meeting's lobby is full (try again later)",
}
"""What ``join`` says for each answer a host can give (:class:`clave.meeting.lobby.Outcome`)."""
ROOM_FULL = "not admitted: the meeting is full (its relay takes no more participants)"
NOBODY_ANSWERED = (
    "not admitted: nobody answered within {seconds:g} s (is a host in the meeting? "
    "they admit you from the lobby)"
)


def not_admitted(report: ParticipantReport) -> str:
    """The one line ``join`` ends with when it was not admitted."""
    if report.declined:
        return DECLINED.get(report.declined, f"not admitted: {report.ended_reason}")
    if report.refused == "room_full":
        return ROOM_FULL
    if report.refused:
        return f"not admitted: the relay refused ({report.ended_reason})"
    if report.ended_reason:
        return f"not admitted: {report.ended_reason}"
    return NOBODY_ANSWERED.format(seconds=JOIN_WAIT)


async def participate(args: argparse.Namespace) -> int:
    from ..engine.headless import HeadlessParticipant
    from ..engine.headless_media import VIDEO_FPS

    identity, people, save_people = open_store()
    opened = await open_meeting(args)
    link = opened.link
    me = HeadlessParticipant(
        link,
        args.name,
        host=opened.host,
        owner_key=opened.owner_key,
        auto_admit=not getattr(args, "no_auto_admit", False),
        video=not args.no_video,
        audio=not args.no_audio,
        simulcast=args.simulcast or 1,
        speaking=not args.silent,
        fps=args.fps or VIDEO_FPS,
        identity=identity,
        people=people,
        config=meeting_config(args),
        relay_trust=opened.trust,
    )

    stop = asyncio.Event()
    on_stop_signals(stop)
    try:
        await me.start()
        print_invitation(link, opened.host)
        if not await me.wait_joined(JOIN_WAIT):
            raise CliError(not_admitted(me.report), EXIT_NOT_ADMITTED)
        print(f"joined as {args.name}; security code {me.report.security_code}", flush=True)
        for text in args.chat:
            await me.chat(text)
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(me.ended.wait())]
        await asyncio.wait(waiters, timeout=args.duration, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        if args.linger > 0 and not me.ended.is_set():
            await me.depart_and_observe(args.linger)
    finally:
        report = await me.stop()
        save_people(people)
        await opened.close()
    for sender, kinds in sorted(report.decoded.items()):
        print(f"decoded from {sender}: video {kinds.get('video', 0)} audio {kinds.get('audio', 0)}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump(asdict(report), f)
    return 0
