"""``clave meet`` / ``clave join`` without ``--headless``: the meeting in the browser.

The browser is given a 0600 launcher file, never the meeting page's token. The page
stays served after the meeting ends (it offers to rejoin).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from .errors import EXIT_LOCAL, CliError
from .meeting import meeting_config, on_stop_signals, open_meeting, open_store, print_invitation


def open_browser(url: str) -> None:
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


async def browse(args: argparse.Namespace) -> int:
    from ..engine.bridge import GlassBridge
    from ..engine.glass_prefs import RememberedChoices
    from ..engine.ui_server import UIServer

    identity, people, save_people = open_store()
    opened = await open_meeting(args)
    link = opened.link

    def ended(reason: str, joined: bool) -> None:
        what = "meeting ended" if joined else "not in the meeting"
        print(f"{what}: {reason} (the page offers to rejoin; Ctrl-C stops)", flush=True)

    bridge = GlassBridge(
        link,
        host=opened.host,
        owner_key=opened.owner_key,
        default_name=args.name or "",
        identity=identity,
        people=people,
        on_people_changed=save_people,
        config=meeting_config(args),
        tab_grace=args.tab_grace,
        on_ended=ended,
        relay_trust=opened.trust,
        remembered=RememberedChoices.open(),
    )

    server = UIServer(bridge, port=args.port, launcher=True)
    stop = asyncio.Event()
    on_stop_signals(stop)
    try:
        try:
            await server.start()
        except OSError as exc:
            raise CliError(
                f"cannot serve the meeting page on 127.0.0.1:{args.port}: "
                f"{os.strerror(exc.errno) if exc.errno else exc}",
                EXIT_LOCAL,
            ) from None
        launcher = server.launcher_url
        assert launcher is not None
        print(f"open: {launcher}", flush=True)
        print_invitation(link, opened.host)
        if not args.no_browser:
            open_browser(launcher)
        # The engine stops on a signal, after --duration, or once the tab has been closed
        # for the grace with the meeting over (a tab closed mid-meeting makes it leave).
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
        await opened.close()
    return 0
