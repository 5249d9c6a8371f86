"""ui/ui/remembered.js under node: what the page tells the engine to keep, and when."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine_helpers import run_node_module

import clave

REMEMBERED_JS = Path(clave.__file__).parent / "ui" / "ui" / "remembered.js"


def run(script: str) -> Any:
    return run_node_module(REMEMBERED_JS, "R", script)


def test_choices_wait_for_the_engine_and_nothing_is_lost_or_sent_twice() -> None:
    result = run(
        """
        const sent = [];
        let up = false;
        R.remember({ lang: 'de' });                          // before hello: kept for later
        R.connectRemembered({ lang: 'en', view: 'grid' },
                            (m) => { if (up) sent.push(m); return up; });
        up = true;
        R.remember({ view: 'grid' });                        // already kept: nothing new,
        up = false;                                          // but the waiting one goes
        R.remember({ name: 'Ada' });                         // link down: waits
        up = true;
        R.remember({ camera: 'x'.repeat(201), mic: 'Desk mic', mic_on: false });
        R.remember({ mic: 'Desk mic' });                     // nothing new
        process.stdout.write(JSON.stringify({ sent, kept: R.remembered() }));
        """
    )
    assert result["sent"] == [
        {"type": "remember", "choices": {"lang": "de"}},
        {"type": "remember", "choices": {"name": "Ada", "mic": "Desk mic", "mic_on": False}},
    ]
    assert result["kept"] == {
        "lang": "de", "view": "grid", "name": "Ada", "mic": "Desk mic", "mic_on": False,
    }  # fmt: skip
