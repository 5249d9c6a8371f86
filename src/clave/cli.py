"""The ``clave`` command: serve | meet | join | open | setup | demo | selfcheck.

An invitation (``clave://HOST/m/ROOM#SECRET.OWNER``) holds the meeting secret, so it
never goes on a command line, where every local user can read it
(``/proc/PID/cmdline``): ``clave join`` reads it from standard input or a prompt, and
``clave open`` (what the ``clave:`` handler installed by ``clave setup`` runs) hands
it at once to a fresh process through a pipe. The browser is given a 0600 launcher
file, never the meeting page's token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from collections.abc import Callable

    from .meeting.config import MeetingConfig
    from .meeting.identity import Identity
    from .meeting.link import MeetingLink
    from .meeting.people import PeopleBook

MAX_INVITATION_CHARS = 4096
"""Read at most this much of an invitation (a real one has fewer than 400 characters)."""
TAB_GRACE = 10.0
"""Default of ``--tab-grace`` (the bridge's own default)."""
RELAY_UNUSABLE = 3
"""Exit status of ``meet`` / ``join`` when the relay is down or is not a Clave relay."""
PROMPT = "Paste the invitation (clave://…): "
ARGV_REFUSED = (
    "clave: refusing an invitation on the command line: every local user can read a "
    "program's arguments (ps, /proc/PID/cmdline). Instead run `clave join` and paste it "
    "at the prompt, or `clave join < FILE`, or click the clave:// link once `clave setup` ran"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clave",
        description=(
            "End-to-end encrypted video meetings: MLS (RFC 9420) group keys, "
            "SFrame (RFC 9605) media encryption, a relay that only sees ciphertext."
        ),
    )
    parser.add_argument("--version", action="version", version=f"clave {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run a relay (it never sees keys or plaintext)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8443, help="port (default 8443; 0: any)")
    serve.add_argument(
        "--heartbeat",
        type=float,
        default=None,
        help="seconds between pings; a client silent for 1.5 of them is gone (default 5)",
    )

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
            # Accepted only to refuse it with an explanation (see ARGV_REFUSED).
            p.add_argument("link", nargs="?", default=None, help=argparse.SUPPRESS)
            p.add_argument("--link-fd", type=int, default=None, help=argparse.SUPPRESS)
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
        p.add_argument("--no-video", action="store_true")
        p.add_argument("--no-audio", action="store_true")
        p.add_argument("--chat", action="append", default=[], help="send this chat message")
        p.add_argument("--report", help="write a JSON report (no secrets) to this file")
        p.add_argument(
            "--linger",
            type=float,
            default=0.0,
            help="after --duration, say goodbye but stay connected this many seconds and "
            "count frames that still decrypt after removal (an audit; must be none)",
        )

    opener = sub.add_parser(
        "open",
        help="open a clave:// invitation (what the handler installed by `clave setup` runs)",
    )
    opener.add_argument("url", help="clave://HOST/m/<room>#<secret>.<owner>")

    setup = sub.add_parser(
        "setup",
        help="register this clave as the handler of clave:// invitation links",
        description="Register this clave as the handler of clave:// links, for your user "
        "only (Linux: a desktop entry and xdg-mime; Windows: HKCU registry keys; macOS: "
        "explains why it cannot yet).",
    )
    what = setup.add_mutually_exclusive_group()
    what.add_argument("--undo", action="store_true", help="remove the registration")
    what.add_argument("--status", action="store_true", help="show the registration")

    demo = sub.add_parser(
        "demo", help="an end-to-end encrypted meeting of three on an embedded relay"
    )
    demo.add_argument("--seconds", type=float, default=10.0)
    sub.add_parser("selfcheck", help="MLS-keyed SFrame checks, no network")
    return parser


def _read_fd(fd: int) -> str:
    """All of ``fd`` (at most MAX_INVITATION_CHARS), then close it."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= MAX_INVITATION_CHARS and (chunk := os.read(fd, 4096)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def _read_invitation(args: argparse.Namespace) -> str | None:
    """The invitation text for ``clave join``: from ``--link-fd``, standard input (not a
    terminal) or a no-echo prompt. None after printing why there is none."""
    if args.link is not None:
        print(ARGV_REFUSED, file=sys.stderr)
        return None
    if args.link_fd is not None:
        try:
            text = _read_fd(args.link_fd)
        except OSError as exc:
            print(f"clave: cannot read the invitation from fd {args.link_fd}: {exc}",
                  file=sys.stderr)
            return None
    elif sys.stdin is not None and not sys.stdin.isatty():
        text = sys.stdin.readline(MAX_INVITATION_CHARS)
    else:
        import getpass

        try:
            text = getpass.getpass(PROMPT)
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            text = ""
    text = text.strip()
    if not text:
        print(
            "clave: no invitation given (paste the clave:// link at the prompt, or "
            "`clave join < FILE`)",
            file=sys.stderr,
        )
        return None
    return text


def _open_invitation(url: str) -> int:
    """``clave open URL``: hand the invitation to a fresh ``clave join`` through an
    inherited pipe, so no long-lived command line holds the secret.

    A forked child replaces itself (``os.execv``) with ``clave join --link-fd N``
    and runs the meeting; this process returns at once. Returning matters as much
    as the exec: the program that ran the handler (``xdg-open`` on a desktop it does
    not recognise) waits for it, with the invitation in its own arguments."""
    url = url.strip()
    if not url.lower().startswith("clave:") or len(url) > MAX_INVITATION_CHARS:
        print("clave: open: expected a clave:// invitation", file=sys.stderr)
        return 2
    if sys.platform == "win32":  # no fork or exec there; other users cannot read our argv
        return main_join_text(url)
    read_end = _pipe_with(url)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() != 0:
        os.close(read_end)
        return 0
    try:  # the child becomes the engine: exec keeps its pid and drops the old argv
        os.set_inheritable(read_end, True)
        os.execv(sys.executable, [*_clave_command(), "join", "--link-fd", str(read_end)])
    finally:
        os._exit(127)  # only if the exec failed


def main_join_text(text: str) -> int:
    """``clave join`` (browser mode) with the invitation ``text`` already in hand."""
    return main(["join", "--link-fd", str(_pipe_with(text))])


def _pipe_with(text: str) -> int:
    """The read end of a pipe holding ``text`` (which fits in a pipe's buffer)."""
    read_end, write_end = os.pipe()
    try:
        view = memoryview(text.encode("utf-8")[:MAX_INVITATION_CHARS])
        while view:
            view = view[os.write(write_end, view) :]
    finally:
        os.close(write_end)
    return read_end


def _clave_command() -> list[str]:
    """The absolute command that runs this clave. ``-P``: the working directory (say,
    a downloads folder holding a ``clave`` directory) is not put on ``sys.path``."""
    return [os.path.abspath(sys.executable), "-P", "-m", "clave"]


def _setup(args: argparse.Namespace) -> int:
    from .engine import handler

    try:
        if args.undo:
            reg = handler.uninstall()
            ok = not reg.registered
        elif args.status:
            reg = handler.status(_clave_command())
            ok = reg.registered
        else:
            reg = handler.install(_clave_command())
            ok = reg.registered
    except (OSError, ValueError) as exc:
        print(f"clave: setup: {exc}", file=sys.stderr)
        return 1
    print(reg.report(), flush=True)
    return 0 if ok else 1


def _print_invitation(link: MeetingLink, host: bool) -> None:
    """What ``meet`` shares and what ``join`` is joining (never the secret for join)."""
    if host:
        print(f"invitation: {link.url}", flush=True)
        print(f"web page for invitees (no secret): {link.info_url}", flush=True)
        print(
            "send the invitation only to the people you invite: it holds the meeting's "
            "secret; the web page only explains how to install Clave and open it",
            flush=True,
        )
    else:
        print(f"meeting: room {link.room_id} on relay {link.netloc}", flush=True)


async def _meeting_link(
    args: argparse.Namespace,
) -> tuple[MeetingLink, bool, bytes | None, Any] | None:
    """The link to use (a new one for ``meet``, on an embedded relay unless --relay),
    whether we host, the owner's private key when we do, and the embedded relay's
    runner (or None). None after printing why the link is unusable."""
    from .meeting.errors import LinkError
    from .meeting.link import new_link, parse_link

    if args.command != "meet":
        try:
            return parse_link(args.invitation), False, None, None
        except LinkError as exc:
            print(f"clave: {exc}", file=sys.stderr)
            return None
    from .meeting.roles import generate_owner_key

    runner = None
    base = args.relay
    if base is None:
        from .relay.server import start_relay

        runner, port = await start_relay("127.0.0.1", 0)
        base = f"http://127.0.0.1:{port}"
    owner_private, owner_public = generate_owner_key(os.urandom)
    try:
        return new_link(base, os.urandom, owner_public), True, owner_private, runner
    except LinkError as exc:
        print(f"clave: {exc}", file=sys.stderr)
        if runner is not None:
            await runner.cleanup()
        return None


async def _relay_usable(link: MeetingLink, runner: object | None) -> bool:
    """Before anything is shown: is a Clave relay answering at the link's address?
    False after printing one line saying what is wrong (an embedded relay is not asked)."""
    if runner is not None:
        return True
    from .engine.preflight import RelayUnusable, check_relay

    try:
        await check_relay(link.base_url, link.relay_url)
    except RelayUnusable as exc:
        print(f"clave: {exc}", file=sys.stderr, flush=True)
        return False
    return True


def _on_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


def _open_store() -> tuple[Identity, PeopleBook, Callable[[PeopleBook], None]] | None:
    """This user's identity key, people book and a saver of the book (None after
    printing why the configuration directory cannot be used)."""
    from .engine.store import ConfigStore, StoreError

    try:
        store = ConfigStore()
        identity = store.load_or_create_identity()
        people = store.load_people()
    except StoreError as exc:
        print(f"clave: {exc}", file=sys.stderr)
        return None

    def save(book: PeopleBook) -> None:
        try:
            store.save_people(book)
        except StoreError as exc:
            print(f"clave: {exc}", file=sys.stderr)

    return identity, people, save


def _meeting_config(args: argparse.Namespace) -> MeetingConfig:
    from .meeting.config import MeetingConfig

    return MeetingConfig(resume_window=args.resume_window)


async def _participate(args: argparse.Namespace) -> int:
    from .engine.headless import HeadlessParticipant

    stored = _open_store()
    if stored is None:
        return 2
    identity, people, save_people = stored
    opened = await _meeting_link(args)
    if opened is None:
        return 2
    link, host, owner_key, runner = opened
    if not await _relay_usable(link, runner):
        return RELAY_UNUSABLE
    me = HeadlessParticipant(
        link,
        args.name,
        host=owner_key is not None,
        owner_key=owner_key,
        auto_admit=not getattr(args, "no_auto_admit", False),
        video=not args.no_video,
        audio=not args.no_audio,
        identity=identity,
        people=people,
        config=_meeting_config(args),
    )

    stop = asyncio.Event()
    _on_stop_signals(stop)
    try:
        await me.start()
        _print_invitation(link, host)
        if not await me.wait_joined(30):
            print("clave: not admitted within 30 s", file=sys.stderr)
            return 1
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
        if runner is not None:
            await runner.cleanup()
    for sender, kinds in sorted(report.decoded.items()):
        print(f"decoded from {sender}: video {kinds.get('video', 0)} audio {kinds.get('audio', 0)}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump(asdict(report), f)
    return 0


def _open_browser(url: str) -> None:
    """Open ``url`` (the launcher's ``file://`` address, never the token URL) in the
    system browser without ever blocking or failing the engine."""
    import threading
    import webbrowser

    graphical = (
        sys.platform in ("darwin", "win32")
        or bool(os.environ.get("DISPLAY"))
        or bool(os.environ.get("WAYLAND_DISPLAY"))
    )
    if not graphical:  # a console browser would take over this terminal
        print("no display found: open the address above in your browser", flush=True)
        return

    def run() -> None:
        try:
            opened = webbrowser.open(url)
        except Exception:
            opened = False
        if not opened:
            print("could not start a browser: open the address above yourself", flush=True)

    threading.Thread(target=run, name="clave-browser", daemon=True).start()


async def _browse(args: argparse.Namespace) -> int:
    """``clave meet`` / ``clave join`` without --headless: the meeting in the browser."""
    from .engine.bridge import GlassBridge
    from .engine.ui_server import UIServer

    stored = _open_store()
    if stored is None:
        return 2
    identity, people, save_people = stored
    opened = await _meeting_link(args)
    if opened is None:
        return 2
    link, host, owner_key, runner = opened
    if not await _relay_usable(link, runner):
        return RELAY_UNUSABLE

    def ended(reason: str, joined: bool) -> None:
        what = "meeting ended" if joined else "not in the meeting"
        print(f"{what}: {reason} (the page offers to rejoin; Ctrl-C stops)", flush=True)

    bridge = GlassBridge(
        link,
        host=owner_key is not None,
        owner_key=owner_key,
        default_name=args.name or "",
        identity=identity,
        people=people,
        on_people_changed=save_people,
        config=_meeting_config(args),
        tab_grace=args.tab_grace,
        on_ended=ended,
    )

    server = UIServer(bridge, port=args.port, launcher=True)
    stop = asyncio.Event()
    _on_stop_signals(stop)
    try:
        try:
            await server.start()
        except OSError as exc:
            print(f"clave: cannot serve the meeting page: {exc}", file=sys.stderr)
            return 1
        launcher = server.launcher_url
        assert launcher is not None
        print(f"open: {launcher}", flush=True)
        _print_invitation(link, host)
        if not args.no_browser:
            _open_browser(launcher)
        # The page stays served after the meeting ends (it offers to rejoin): the engine
        # stops on a signal, after --duration, or once the tab has been closed for the
        # grace with the meeting over (a tab closed mid-meeting makes the engine leave).
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(bridge.abandoned.wait())]
        await asyncio.wait(waiters, timeout=args.duration, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        if bridge.abandoned.is_set() and not stop.is_set():
            print("the meeting's page was closed: stopping", flush=True)
    finally:
        await bridge.close()
        save_people(people)
        await server.stop()
        if runner is not None:
            await runner.cleanup()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "open":  # first: the secret leaves our command line right away
        return _open_invitation(args.url)
    if args.command == "setup":
        return _setup(args)
    if args.command == "serve":
        from .relay.server import serve_forever

        def ready(port: int) -> None:
            print(f"relay listening on http://{args.host}:{port}", flush=True)

        config = None
        if args.heartbeat is not None:
            from .relay.config import RelayConfig

            config = RelayConfig(heartbeat=args.heartbeat)
        serve_forever(args.host, args.port, config, on_ready=ready)
        return 0
    if args.command in ("meet", "join"):
        if args.command == "join":
            args.invitation = _read_invitation(args)
            if args.invitation is None:
                return 2
        if args.headless:
            if args.name is None:
                args.name = "host" if args.command == "meet" else "guest"
            return asyncio.run(_participate(args))
        used = [
            flag
            for flag, value in (
                ("--no-video", args.no_video),
                ("--no-audio", args.no_audio),
                ("--chat", args.chat),
                ("--report", args.report),
                ("--linger", args.linger),
            )
            if value
        ]
        if used:
            parser.error(f"{', '.join(used)}: only with --headless")
        return asyncio.run(_browse(args))
    if args.command == "demo":
        from .engine.demo import run_demo

        return 0 if asyncio.run(run_demo(args.seconds)) else 1
    if args.command == "selfcheck":
        from .selfcheck import run

        return 0 if run() else 1
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
