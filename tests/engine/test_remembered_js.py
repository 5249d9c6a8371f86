"""ui/ui/remembered.js under node: what the page tells the engine to keep, and when."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import clave

REMEMBERED_JS = Path(clave.__file__).parent / "ui" / "ui" / "remembered.js"


def run(script: str) -> Any:
    exe = shutil.which("node")
    if exe is None:
        pytest.skip("node is not installed")
    source = f"import * as R from '{REMEMBERED_JS.as_uri()}';\n{script}"
    done = subprocess.run(
        [exe, "--input-type=module", "-e", source],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


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
