"""Media frames of one participant: SFrame keys per MLS epoch (RFC 9605 section 5.2).

Every epoch installs new keys from the MLS exporter; a frame decrypts only
under the keys of a live epoch (the previous one for a short grace period).
The SFrame metadata is ``media_aad(kind, keyframe)`` (RFC 9605 section
4.4.3), so the relay can read but not alter the envelope's flags.
"""

from __future__ import annotations

from collections.abc import Callable

from ..mls.group import Group
from ..sframe.errors import SFrameError, UnknownKeyError
from ..sframe.header import decode_header
from ..sframe.mls import MLSKeyManager, index_bits
from ..wire.errors import WireError
from ..wire.media import StreamKind, decode_media, encode_media, media_aad
from .events import Event, FrameRejected, MediaFrameDecrypted, RosterEntry

Clock = Callable[[], float]


class MediaPlane:
    """SFrame protect/unprotect under the current (and grace-period previous) epoch."""

    def __init__(self, suite: int, epoch_bits: int, clock: Clock, grace: float) -> None:
        self._suite = suite
        self._bits = epoch_bits
        self._clock = clock
        self._grace = grace
        self._keys = MLSKeyManager(suite, epoch_bits, clock, grace)
        self._audit: MLSKeyManager | None = None
        self._joined_at = 0.0

    @property
    def epoch(self) -> int | None:
        return self._keys.epoch

    def start(self) -> None:
        self._joined_at = self._clock()

    def set_epoch(self, group: Group) -> None:
        self._keys.set_epoch(
            group.epoch, group.export_secret, group.own_leaf_index, group.leaf_count
        )

    def forget(self) -> None:
        """Drop every key (the meeting is over for us)."""
        self._keys = MLSKeyManager(self._suite, self._bits, self._clock, 0.0)

    def protect(self, kind: StreamKind, keyframe: bool, payload: bytes) -> bytes:
        sframe = self._keys.protect(media_aad(kind, keyframe), payload)
        return encode_media(kind, keyframe, sframe)

    def receive(
        self,
        frame: bytes,
        rosters: dict[int, dict[int, RosterEntry]],
        group: Group,
        members: dict[int, RosterEntry],
    ) -> Event | None:
        """One media wire frame: a decrypted-frame event, a rejection, or None (ignored)."""
        try:
            media = decode_media(frame)
        except WireError as exc:
            return FrameRejected(f"malformed media frame: {exc}", None)
        try:
            result = self._keys.unprotect(media.sframe, media_aad(media.kind, media.keyframe))
        except SFrameError as exc:
            if isinstance(exc, UnknownKeyError) and self._before_joining(media.sframe):
                return None
            leaf = self._kid_leaf(media.sframe, group, members)
            return FrameRejected(f"media frame rejected: {exc}", leaf)
        entry = rosters.get(result.epoch, {}).get(result.leaf_index)
        if entry is None:
            return FrameRejected(
                f"media frame from leaf {result.leaf_index}, not a member in epoch {result.epoch}",
                None,
            )
        return MediaFrameDecrypted(
            entry.leaf, entry.name, media.kind, media.keyframe, result.plaintext
        )

    # ------------------------------------------------------------------ audits

    def keep_for_audit(self) -> None:
        """Keep this epoch's keys after leaving, to show later frames do not decrypt."""
        self._audit = self._keys

    def audit_decrypts(self, frame: bytes) -> bool:
        keys = self._audit
        if keys is None:
            raise ValueError("no keys kept for an audit")
        try:
            m = decode_media(frame)
            keys.unprotect(m.sframe, media_aad(m.kind, m.keyframe))
        except (WireError, SFrameError):
            return False
        return True

    @property
    def auditing(self) -> bool:
        return self._audit is not None

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _kid(sframe: bytes) -> int | None:
        try:
            return decode_header(sframe)[0]
        except SFrameError:
            return None

    def _kid_leaf(self, sframe: bytes, group: Group, members: dict[int, RosterEntry]) -> int | None:
        """The sender leaf a KID names, if it is of the current epoch and a member."""
        kid = self._kid(sframe)
        if kid is None:
            return None
        if kid & ((1 << self._bits) - 1) != group.epoch % (1 << self._bits):
            return None
        leaf = (kid >> self._bits) & ((1 << index_bits(group.leaf_count)) - 1)
        return leaf if leaf in members else None

    def _before_joining(self, sframe: bytes) -> bool:
        """A frame of an epoch we never had, shortly after joining: expected, not an attack."""
        if self._clock() - self._joined_at >= self._grace:
            return False
        kid = self._kid(sframe)
        if kid is None:
            return False
        mask = (1 << self._bits) - 1
        return (kid & mask) not in {e & mask for e in self._keys.live_epochs()}
