"""``clave record --out FILE``: join a meeting as a visible recorder and write it to WebM.

The invitation is read as ``clave join`` reads it (standard input or a prompt, never
the command line). The recorder is admitted through the lobby like anyone; everyone
sees "Recording by NAME". Ctrl-C (SIGINT), SIGTERM, ``--duration`` or a host removing
it stop the recording; the file is finished (playable) in every case.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from .errors import EXIT_LOCAL, EXIT_NOT_ADMITTED, EXIT_USAGE, CliError
from .headless import JOIN_WAIT, not_admitted
from .invitation import add_join_arguments, read_invitation
from .meeting import meeting_config, on_stop_signals, open_meeting, open_store, print_invitation

if TYPE_CHECKING:
    from ..engine.recording import MeetingRecorder

DEFAULT_NAME = "Recorder"
STOPPED_IN_LOBBY = (
    "stopped before a host admitted the recorder: nothing of the meeting was recorded"
)


def add_parser(sub: Any) -> None:
    helptext = (
        "record a meeting to a WebM file (VP8/Opus): joins as a participant everyone "
        "sees recording; the invitation is read from standard input or a prompt"
    )
    p = sub.add_parser("record", help=helptext, description=helptext)
    add_join_arguments(p)
    p.add_argument("--out", required=True, help="the WebM file to write")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"display name (default {DEFAULT_NAME!r})")
    p.add_argument("--duration", type=float, default=None, help="seconds, then stop")
    p.add_argument("--resume-window", type=float, default=15.0, help=argparse.SUPPRESS)
    p.add_argument(
        "--relay-fingerprint",
        metavar="SHA256",
        help="accept exactly the relay certificate with this SHA-256 fingerprint",
    )


async def _admitted(me: MeetingRecorder, stop: asyncio.Event) -> bool:
    """Wait to be admitted (at most ``JOIN_WAIT`` s); False if not, or stopped first."""
    joined = asyncio.create_task(me.wait_joined(JOIN_WAIT))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait((joined, stopped), return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not joined.done():
        joined.cancel()
        return False
    return joined.result()


def run(args: argparse.Namespace) -> int:
    args.invitation = read_invitation(args)
    return asyncio.run(record(args))


async def record(args: argparse.Namespace) -> int:
    from ..engine.recording import MeetingRecorder, record_until
    from ..media.errors import MediaError

    identity, people, save_people = open_store()
    opened = await open_meeting(args)
    try:
        me = MeetingRecorder(
            opened.link,
            args.name,
            args.out,
            identity=identity,
            people=people,
            config=meeting_config(args),
            relay_trust=opened.trust,
        )
    except MediaError as exc:
        await opened.close()
        raise CliError(str(exc), EXIT_USAGE) from None
    stop = asyncio.Event()
    on_stop_signals(stop)
    try:
        await me.start()
        print_invitation(opened.link, False)
        if not await _admitted(me, stop):
            why = STOPPED_IN_LOBBY if stop.is_set() else not_admitted(me.report)
            raise CliError(why, EXIT_NOT_ADMITTED)
        print(f"recording as {args.name} to {me.recorder.path}", flush=True)
        me.on_shown = lambda what: print(f"showing {what}", flush=True)
        await record_until(me, stop, args.duration)
    finally:
        await me.stop()
        save_people(people)
        await opened.close()
    counts = me.counts
    if me.report.media_errors:
        raise CliError("; ".join(me.report.media_errors), EXIT_LOCAL)
    why = "removed from the meeting" if me.report.removed else "stopped"
    print(
        f"{why}: wrote {me.recorder.path} ({counts.video_frames} video frames, "
        f"{counts.audio_slots * 20} ms of audio)",
        flush=True,
    )
    shown = ", ".join(f"{what} {count}" for what, count in me.pictures())
    print(f"pictures: {shown}", flush=True)
    return 0
