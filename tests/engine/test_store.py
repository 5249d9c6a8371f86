"""The engine's private files: identity key and people book (modes, links, atomic saves)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from clave.engine.store import ConfigStore, StoreError, config_dir
from clave.meeting.people import PeopleBook

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")

GRACE = b"\x01" * 32


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_config_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLAVE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert config_dir() == tmp_path / "home" / ".config" / "clave"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    assert config_dir() == tmp_path / "home" / ".config" / "clave"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "clave"
    monkeypatch.setenv("CLAVE_CONFIG_DIR", str(tmp_path / "explicit"))
    assert config_dir() == tmp_path / "explicit"
    assert ConfigStore().path == tmp_path / "explicit"


def test_identity_created_private_and_stable(tmp_path: Path) -> None:
    where = tmp_path / "a" / "clave"
    calls: list[int] = []

    def rng(n: int) -> bytes:
        calls.append(n)
        return b"\x07" * n

    first = ConfigStore(where).load_or_create_identity(rng)
    assert _mode(where) == 0o700
    key_file = where / "identity.key"
    assert _mode(key_file) == 0o600 and key_file.read_bytes() == b"\x07" * 32
    second = ConfigStore(where).load_or_create_identity(rng)
    assert second == first and second.private_bytes == b"\x07" * 32
    assert calls == [32]  # the second store read the key instead of making one
    assert sorted(os.listdir(where)) == ["identity.key"]


def test_default_rng_makes_distinct_identities(tmp_path: Path) -> None:
    a = ConfigStore(tmp_path / "a").load_or_create_identity()
    b = ConfigStore(tmp_path / "b").load_or_create_identity()
    assert a != b


def test_symlinked_key_refused(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "c")
    target = tmp_path / "elsewhere.key"
    target.write_bytes(b"\x07" * 32)
    os.chmod(target, 0o600)
    (store.path / "identity.key").symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link"):
        store.load_or_create_identity()
    (store.path / "identity.key").unlink()
    (store.path / "identity.key").symlink_to(tmp_path / "missing.key")  # dangling
    with pytest.raises(StoreError, match="symbolic link"):
        store.load_or_create_identity()
    assert not (tmp_path / "missing.key").exists()


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o640, 0o620, 0o606])
def test_key_open_to_others_refused(tmp_path: Path, mode: int) -> None:
    store = ConfigStore(tmp_path)
    store.load_or_create_identity()
    os.chmod(store.path / "identity.key", mode)
    with pytest.raises(StoreError, match="chmod 600"):
        store.load_or_create_identity()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_key_of_another_user_refused(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    store.load_or_create_identity()
    os.chown(store.path / "identity.key", 12345, -1)
    with pytest.raises(StoreError, match="another user"):
        store.load_or_create_identity()


@pytest.mark.parametrize("content", [b"", b"\x07" * 31, b"\x07" * 33])
def test_key_of_wrong_length_refused(tmp_path: Path, content: bytes) -> None:
    store = ConfigStore(tmp_path)
    fd = os.open(store.path / "identity.key", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(StoreError, match="not a Clave identity key"):
        store.load_or_create_identity()


def test_key_that_is_not_a_regular_file_refused(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    (store.path / "identity.key").mkdir(mode=0o700)
    with pytest.raises(StoreError, match="not a regular file"):
        store.load_or_create_identity()
    os.rmdir(store.path / "identity.key")
    os.mkfifo(store.path / "identity.key", 0o600)  # must not block on open
    with pytest.raises(StoreError, match="not a regular file"):
        store.load_or_create_identity()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_writable_directory_refused(tmp_path: Path, mode: int) -> None:
    where = tmp_path / "open"
    where.mkdir()
    os.chmod(where, mode)
    with pytest.raises(StoreError, match="chmod 700"):
        ConfigStore(where)


def test_readable_directory_tightened(tmp_path: Path) -> None:
    where = tmp_path / "readable"
    where.mkdir()
    os.chmod(where, 0o755)
    ConfigStore(where)
    assert _mode(where) == 0o700


def test_people_missing_is_empty_and_round_trips(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    assert len(store.load_people()) == 0
    assert not (tmp_path / "people.json").exists()  # loading writes nothing
    book = PeopleBook()
    book.remember(GRACE, "Grace", 1_700_000_000)
    book.set_verified(GRACE, True)
    store.save_people(book)
    assert _mode(tmp_path / "people.json") == 0o600
    again = ConfigStore(tmp_path).load_people()
    assert again.to_bytes() == book.to_bytes() and again.is_verified(GRACE)
    assert sorted(os.listdir(tmp_path)) == ["people.json"]


def test_corrupt_people_refused(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    fd = os.open(tmp_path / "people.json", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'{"version": 1, "people": [{"key": "nope"}]}')
    os.close(fd)
    with pytest.raises(StoreError, match="corrupt"):
        store.load_people()


def test_people_file_checks(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "c")
    store.save_people(PeopleBook())
    os.chmod(store.path / "people.json", 0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        store.load_people()
    (store.path / "people.json").unlink()
    (store.path / "people.json").symlink_to(tmp_path / "x.json")
    with pytest.raises(StoreError, match="symbolic link"):
        store.load_people()


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A save that fails before the rename leaves the old book and no temporary file."""
    store = ConfigStore(tmp_path)
    old = PeopleBook()
    old.remember(GRACE, "Grace", 1)
    store.save_people(old)
    new = PeopleBook()
    new.remember(GRACE, "Grace Hopper", 2)
    renames: list[tuple[str, str]] = []

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renames.append((os.fspath(src), os.fspath(dst)))
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StoreError, match="cannot save"):
        store.save_people(new)
    assert len(renames) == 1
    assert Path(renames[0][1]) == tmp_path / "people.json"
    assert Path(renames[0][0]).parent == tmp_path  # temp file in the same directory
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["people.json"]
    assert store.load_people().to_bytes() == old.to_bytes()
    store.save_people(new)
    assert store.load_people().to_bytes() == new.to_bytes()


def test_save_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "c")
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (store.path / "people.json").symlink_to(victim)
    store.save_people(PeopleBook())
    assert victim.read_bytes() == b"keep"
    assert not (store.path / "people.json").is_symlink()
