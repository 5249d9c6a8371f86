"""The meeting page's choices kept for the next meeting (``remember``, ``hello``).

The engine serves its page on a new local port for every meeting, and a browser keeps
``localStorage`` per address, so what the page remembers by itself is gone next time.
The engine keeps it instead, in ``glass.json`` of its configuration directory (mode
0600, :class:`~clave.engine.store.ConfigStore`): the name last typed, the camera,
microphone and speaker by label (a device's id differs from one address to the next,
its label does not), the pre-join switches, the language and the layout. Nothing
secret, nothing of a meeting; never logged. Without a usable directory the choices
are kept for this engine's life only.
"""

from __future__ import annotations

import logging

import msgspec

from .glass_messages import Remembered
from .store import ConfigStore, StoreError

log = logging.getLogger("clave.engine.glass_prefs")

PREFS_FILE = "glass.json"
MAX_PREFS_BYTES = 4096
"""Larger than any valid file (eight short fields): a bigger one is not ours."""
_DECODER = msgspec.json.Decoder(Remembered)


class RememberedChoices:
    """The kept choices, and where they are saved (None: nowhere)."""

    def __init__(self, store: ConfigStore | None = None) -> None:
        self._store = store
        self.current = Remembered()
        if store is None:
            return
        try:
            data = store.read(PREFS_FILE, "meeting page choices", MAX_PREFS_BYTES + 1)
        except StoreError as exc:
            log.warning("page choices not read: %s", exc)
            self._store = None  # an unsafe file is neither read nor overwritten
            return
        if data is None:
            return
        try:
            if len(data) > MAX_PREFS_BYTES:
                raise msgspec.ValidationError("too large")
            self.current = _DECODER.decode(data)
        except msgspec.DecodeError:
            log.warning("%s is not valid; it is replaced on the next choice", PREFS_FILE)

    @classmethod
    def open(cls) -> RememberedChoices:
        """The choices in the user's configuration directory (kept in memory only if
        that directory cannot be used)."""
        try:
            return cls(ConfigStore())
        except StoreError as exc:
            log.warning("page choices kept for this run only: %s", exc)
            return cls(None)

    def kept(self) -> Remembered | None:
        """What ``hello`` carries: the kept choices, None if there are none."""
        return None if self.current == Remembered() else self.current

    def update(self, changes: Remembered) -> None:
        """Merge ``changes`` (a null field keeps what was kept) and save if anything
        changed; a failure to save is logged once and the choices stay in memory."""
        fields = Remembered.__struct_fields__
        kept = {f: v for f in fields if (v := getattr(changes, f)) is not None}
        merged = msgspec.structs.replace(self.current, **kept)
        if merged == self.current:
            return
        self.current = merged
        if self._store is None:
            return
        try:
            self._store.replace(PREFS_FILE, msgspec.json.encode(merged))
        except StoreError as exc:
            log.warning("page choices not saved: %s", exc)
            self._store = None


__all__ = ["MAX_PREFS_BYTES", "PREFS_FILE", "RememberedChoices"]
