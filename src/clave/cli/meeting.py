"""``clave meet`` and ``clave join``: their options, the link, the relay check, the store.

``--headless`` runs :mod:`.headless`, otherwise the meeting is in the browser
(:mod:`.browse`); :func:`clave.cli.meet_or_join` chooses. Before anything is shown
the relay is asked whether it is a Clave relay (:mod:`clave.engine.preflight`);
every failure is one line (:mod:`.errors`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import EXIT_RELAY, EXIT_USAGE, CliError
from .invitation import add_join_arguments
from .reach import reach_warning

if TYPE_CHECKING:
    from aiohttp import web

    from ..engine.tls import RelayTrust
    from ..meeting.config import MeetingConfig
    from ..meeting.identity import Identity
    from ..meeting.link import MeetingLink
    from ..meeting.people import PeopleBook

TAB_GRACE = 10.0
"""Default of ``--tab-grace`` (the bridge's own default)."""



def _fps(text: str) -> int:
    """``--fps``: a whole number of frames per second, 1..60."""
    try:
        fps = int(text)
    except ValueError:
        fps = 0
    if not 1 <= fps <= 60:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 60, not {text!r}")
    return fps

def add_parsers(sub: Any) -> None:
    """``meet`` and ``join``, which share every option but the invitation's source."""
    for name, helptext in (
        ("meet", "create a meeting, print its invitation and open it in the browser"),
        (
            "join",
            "join a meeting: the clave:// invitation is read from standard input "
            "(clave join < FILE) or asked for at a prompt, never from the command line",
        ),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        if name == "join":
            add_join_arguments(p)
        else:
            p.add_argument(
                "--relay",
                help="relay base URL, e.g. https://relay.example (default: an embedded "
                "relay on 127.0.0.1)",
            )
            p.add_argument(
                "--no-auto-admit",
                action="store_true",
                help="--headless: do not admit join requests automatically (in the browser "
                "the host admits from the lobby)",
            )
        _add_common(p)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--headless",
        action="store_true",
        help="participate without a browser: test-pattern VP8 video and an Opus tone",
    )
    p.add_argument(
        "--no-browser",
        action="store_true",
        help="do not start a browser; open the printed file:// launcher yourself (it "
        "leads to the meeting page once; only you can read it)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=0,
        help="port of the local meeting page on 127.0.0.1 (default 0: a random free port)",
    )
    p.add_argument(
        "--name",
        default=None,
        help="display name (--headless: default host/guest; browser: suggested on the "
        "pre-join screen)",
    )
    p.add_argument("--duration", type=float, default=None, help="seconds, then leave")
    p.add_argument(
        "--tab-grace",
        type=float,
        default=TAB_GRACE,
        help="browser: seconds the meeting waits for its closed tab to come back (a "
        f"reload) before leaving (default {TAB_GRACE:g})",
    )
    p.add_argument(
        "--resume-window",
        type=float,
        default=15.0,
        help="seconds a member whose connection dropped keeps its place before a host "
        "removes it (default 15)",
    )
    p.add_argument(
        "--relay-fingerprint",
        metavar="SHA256",
        help="accept exactly the relay certificate with this SHA-256 fingerprint (a "
        "self-signed relay; `clave serve --self-signed` prints it) instead of checking "
        "it against the system's CAs",
    )
    p.add_argument("--no-video", action="store_true")
    p.add_argument("--no-audio", action="store_true")
    p.add_argument(
        "--simulcast",
        type=int,
        choices=(1, 2, 3),
        default=None,
        help="--headless: send the camera in this many layers (160x90, 320x180, 640x360)",
    )
    p.add_argument(
        "--fps",
        type=_fps,
        default=None,
        help="--headless: camera frames per second, 1..60 (default 30)",
    )
    p.add_argument(
        "--silent",
        action="store_true",
        help="--headless: the microphone hears silence (Opus DTX: no audio is sent)",
    )
    p.add_argument("--chat", action="append", default=[], help="send this chat message")
    p.add_argument("--report", help="write a JSON report (no secrets) to this file")
    p.add_argument(
        "--linger",
        type=float,
        default=0.0,
        help="after --duration, say goodbye but stay connected this many seconds and "
        "count frames that still decrypt after removal (an audit; must be none)",
    )


@dataclass
class Opened:
    """What a meeting command starts from."""

    link: MeetingLink
    owner_key: bytes | None
    """The owner's private key: we host (``meet``)."""
    runner: web.AppRunner | None
    """The embedded relay, if we started one."""
    trust: RelayTrust | None = None
    """How the relay's TLS certificate is checked (None: the system's CAs)."""

    @property
    def host(self) -> bool:
        return self.owner_key is not None

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def open_meeting(args: argparse.Namespace) -> Opened:
    """The link to use (a new one for ``meet``, on an embedded relay unless --relay),
    checked against its relay (an embedded one is not asked)."""
    from ..meeting.errors import LinkError
    from ..meeting.link import new_link, parse_link

    trust = relay_trust(args)

    if args.command != "meet":
        try:
            opened = Opened(parse_link(args.invitation), None, None)
        except LinkError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    else:
        from ..meeting.roles import generate_owner_key

        runner = None
        base = args.relay
        if base is None:
            from ..relay.server import start_relay

            runner, port = await start_relay("127.0.0.1", 0)
            base = f"http://127.0.0.1:{port}"
        owner_private, owner_public = generate_owner_key(os.urandom)
        try:
            opened = Opened(new_link(base, os.urandom, owner_public), owner_private, runner)
        except LinkError as exc:
            if runner is not None:
                await runner.cleanup()
            raise CliError(str(exc), EXIT_USAGE) from None
    opened.trust = trust
    if trust is not None and opened.link.loopback:
        await opened.close()
        raise CliError(
            f"--relay-fingerprint: the relay at {opened.link.base_url} is reached without "
            "TLS, so there is no certificate to pin",
            EXIT_USAGE,
        )
    if opened.runner is None:
        await _check_relay(opened)
    return opened


def relay_trust(args: argparse.Namespace) -> RelayTrust | None:
    """The trust ``--relay-fingerprint`` asks for (None: the system's CAs)."""
    text = getattr(args, "relay_fingerprint", None)
    if text is None:
        return None
    from ..engine.tls import RelayTrust

    try:
        return RelayTrust.pinned(text)
    except ValueError as exc:
        raise CliError(f"--relay-fingerprint: {exc}", EXIT_USAGE) from None


async def _check_relay(opened: Opened) -> None:
    from ..engine.preflight import RelayUnusable, check_relay

    try:
        await check_relay(opened.link.base_url, opened.link.relay_url, trust=opened.trust)
    except RelayUnusable as exc:
        raise CliError(str(exc), EXIT_RELAY) from None


def print_invitation(link: MeetingLink, host: bool) -> None:
    """What ``meet`` shares and what ``join`` is joining (never the secret for join)."""
    if host:
        warning = reach_warning(link.host)
        if warning is not None:
            print(warning, file=sys.stderr, flush=True)
        print(f"invitation: {link.url}", flush=True)
        print(f"web page for invitees (no secret): {link.info_url}", flush=True)
        print(
            "send the invitation only to the people you invite: it holds the meeting's "
            "secret; the web page only explains how to install Clave and open it",
            flush=True,
        )
    else:
        print(f"meeting: room {link.room_id} on relay {link.netloc}", flush=True)


def on_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


def open_store() -> tuple[Identity, PeopleBook, Callable[[PeopleBook], None]]:
    """This user's identity key, people book and a saver of the book."""
    from ..engine.store import ConfigStore, StoreError

    try:
        store = ConfigStore()
        identity = store.load_or_create_identity()
        people = store.load_people()
    except StoreError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None

    def save(book: PeopleBook) -> None:
        try:
            store.save_people(book)
        except StoreError as exc:
            print(f"clave: {exc}", file=sys.stderr)

    return identity, people, save


def meeting_config(args: argparse.Namespace) -> MeetingConfig:
    from ..meeting.config import MeetingConfig

    return MeetingConfig(resume_window=args.resume_window)
