"""The meeting page's choices kept across meetings (clave.engine.glass_prefs): merged,
saved privately, and bad or unsafe files never trusted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clave.engine import glass_messages as gm
from clave.engine.glass_channel import BadMessage, parse_control
from clave.engine.glass_prefs import MAX_PREFS_BYTES, PREFS_FILE, RememberedChoices
from clave.engine.store import ConfigStore


def store(tmp_path: Path) -> ConfigStore:
    return ConfigStore(tmp_path / "config")


def test_choices_are_merged_saved_privately_and_read_back(tmp_path: Path) -> None:
    kept = RememberedChoices(store(tmp_path))
    assert kept.current == gm.Remembered()
    kept.update(gm.Remembered(name="Ada", camera="Front camera", mic_on=False))
    kept.update(gm.Remembered(lang="de", mic_on=None))  # null: keep what was kept
    path = tmp_path / "config" / PREFS_FILE
    assert json.loads(path.read_text()) == {
        "name": "Ada", "camera": "Front camera", "mic": None, "speaker": None,
        "mic_on": False, "cam_on": None, "lang": "de", "view": None,
    }  # fmt: skip
    assert path.stat().st_mode & 0o777 == 0o600
    again = RememberedChoices(store(tmp_path))
    assert again.current == gm.Remembered(
        name="Ada", camera="Front camera", mic_on=False, lang="de"
    )


def test_an_unchanged_choice_writes_nothing(tmp_path: Path) -> None:
    kept = RememberedChoices(store(tmp_path))
    kept.update(gm.Remembered(view="speaker"))
    path = tmp_path / "config" / PREFS_FILE
    before = path.stat().st_mtime_ns
    os.utime(path, ns=(before - 10**9, before - 10**9))
    kept.update(gm.Remembered(view="speaker"))
    assert path.stat().st_mtime_ns == before - 10**9


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"lang": "deutsch"}',
        b'{"token": "x"}',
        b'{"name": 7}',
        b"x" * (MAX_PREFS_BYTES + 5),
    ],
)
def test_a_bad_file_is_ignored_and_replaced_on_the_next_choice(
    tmp_path: Path, content: bytes
) -> None:
    folder = tmp_path / "config"
    store(tmp_path)
    (folder / PREFS_FILE).write_bytes(content)
    os.chmod(folder / PREFS_FILE, 0o600)
    kept = RememberedChoices(store(tmp_path))
    assert kept.current == gm.Remembered()
    kept.update(gm.Remembered(name="Ada"))
    assert json.loads((folder / PREFS_FILE).read_text())["name"] == "Ada"


def test_an_unsafe_file_is_neither_trusted_nor_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    store(tmp_path)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"name": "Mallory"}')
    (folder / PREFS_FILE).symlink_to(elsewhere)
    kept = RememberedChoices(store(tmp_path))
    assert kept.current == gm.Remembered()  # not followed
    kept.update(gm.Remembered(name="Ada"))
    assert kept.current.name == "Ada"  # this run only
    assert elsewhere.read_text() == '{"name": "Mallory"}'
    assert (folder / PREFS_FILE).is_symlink()


def test_without_a_directory_the_choices_last_this_run() -> None:
    kept = RememberedChoices(None)
    kept.update(gm.Remembered(view="grid"))
    assert kept.current.view == "grid"


@pytest.mark.parametrize(
    "choices",
    [{"lang": "de-DE-evil"}, {"name": "x" * 65}, {"view": "gallery"}, {"camera": 5}, {"key": "v"}],
)
def test_the_glass_cannot_send_anything_else(choices: dict[str, object]) -> None:
    with pytest.raises(BadMessage):
        parse_control(json.dumps({"type": "remember", "choices": choices}))
