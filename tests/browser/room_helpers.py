"""One meeting for the hands and moderation browser tests: the relay (``clave serve``),
Alice hosting from her browser (``clave meet``), Bob in his browser (``clave join``) and
Carol, a real engine in the test process (:mod:`thread_member`), both admitted from
Alice's lobby by clicking."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from browser_helpers import Glass, Processes, admit, host_and_guest, leaves_of, wait_for
from playwright.sync_api import sync_playwright
from thread_member import ThreadMember


@dataclass
class Room:
    alice: Glass
    bob: Glass
    carol: ThreadMember
    leaves: dict[str, int]
    """``{name: leaf}`` as Alice's page knows them."""


@contextlib.contextmanager
def meeting_of_three(tmp_path: Path) -> Iterator[Room]:
    procs = Processes()
    glasses: list[Glass] = []
    carol: ThreadMember | None = None
    try:
        with sync_playwright() as pw:
            alice_engine, alice, bob = host_and_guest(pw, procs, tmp_path, glasses)
            invitation = alice_engine.invitation
            assert invitation is not None
            carol = ThreadMember("Carol", invitation)
            admit(alice, "Carol")
            assert carol.wait_joined(), "Carol was not admitted"
            for glass in (alice, bob):
                wait_for(lambda g=glass: len(leaves_of(g)) == 3, 20, f"{glass.name} sees 3")
            yield Room(alice, bob, carol, leaves_of(alice))
    finally:
        if carol is not None:
            carol.stop()
        for glass in glasses:
            glass.close()
        procs.stop_all()
