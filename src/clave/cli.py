"""The ``clave`` command: serve | meet | join | demo."""

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
    from .meeting.link import MeetingLink


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

    for name, helptext in (
        ("meet", "create a meeting, print its invitation link and open it in the browser"),
        ("join", "join a meeting from its invitation link in the browser"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "join":
            p.add_argument("link", help="https://HOST/m/<room>#<secret>")
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
            help="print the local address of the meeting page instead of opening a browser",
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

    demo = sub.add_parser(
        "demo", help="an end-to-end encrypted meeting of three on an embedded relay"
    )
    demo.add_argument("--seconds", type=float, default=10.0)
    sub.add_parser("selfcheck", help="MLS-keyed SFrame checks, no network")
    return parser


async def _meeting_link(args: argparse.Namespace) -> tuple[MeetingLink, bool, Any] | None:
    """The link to use (a new one for ``meet``, on an embedded relay unless --relay),
    whether we host, and the embedded relay's runner (or None). None after printing
    why the link is unusable."""
    from .meeting.errors import LinkError
    from .meeting.link import new_link, parse_link

    if args.command != "meet":
        try:
            return parse_link(args.link), False, None
        except LinkError as exc:
            print(f"clave: {exc}", file=sys.stderr)
            return None
    runner = None
    base = args.relay
    if base is None:
        from .relay.server import start_relay

        runner, port = await start_relay("127.0.0.1", 0)
        base = f"http://127.0.0.1:{port}"
    try:
        return new_link(base, os.urandom), True, runner
    except LinkError as exc:
        print(f"clave: {exc}", file=sys.stderr)
        if runner is not None:
            await runner.cleanup()
        return None


def _on_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


async def _participate(args: argparse.Namespace) -> int:
    from .engine.headless import HeadlessParticipant

    opened = await _meeting_link(args)
    if opened is None:
        return 2
    link, host, runner = opened
    me = HeadlessParticipant(
        link,
        args.name,
        host=host,
        auto_admit=not getattr(args, "no_auto_admit", False),
        video=not args.no_video,
        audio=not args.no_audio,
    )
    stop = asyncio.Event()
    _on_stop_signals(stop)
    try:
        await me.start()
        if host:
            print(f"link: {link.url}", flush=True)
            print("share the whole link; the part after # never reaches any server", flush=True)
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
        if runner is not None:
            await runner.cleanup()
    for sender, kinds in sorted(report.decoded.items()):
        print(f"decoded from {sender}: video {kinds.get('video', 0)} audio {kinds.get('audio', 0)}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump(asdict(report), f)
    return 0


def _open_browser(url: str) -> None:
    """Open ``url`` in the system browser without ever blocking or failing the engine."""
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

    opened = await _meeting_link(args)
    if opened is None:
        return 2
    link, host, runner = opened
    bridge = GlassBridge(link, host=host, default_name=args.name or "")
    server = UIServer(bridge, port=args.port)
    stop = asyncio.Event()
    _on_stop_signals(stop)
    try:
        try:
            url = await server.start()
        except OSError as exc:
            print(f"clave: cannot serve the meeting page: {exc}", file=sys.stderr)
            return 1
        print(f"open: {url}", flush=True)
        print(f"link: {link.url}", flush=True)
        if host:
            print("share the whole link; the part after # never reaches any server", flush=True)
        if not args.no_browser:
            _open_browser(url)
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(bridge.ended.wait())]
        await asyncio.wait(waiters, timeout=args.duration, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        if bridge.ended.is_set() and not stop.is_set():
            print(f"meeting ended: {bridge.ended_reason}", flush=True)
            await asyncio.sleep(1.0)  # let the page show why
    finally:
        await bridge.close()
        await server.stop()
        if runner is not None:
            await runner.cleanup()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        from .relay.server import serve_forever

        def ready(port: int) -> None:
            print(f"relay listening on http://{args.host}:{port}", flush=True)

        serve_forever(args.host, args.port, on_ready=ready)
        return 0
    if args.command in ("meet", "join"):
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
