"""Media frames of one participant: SFrame keys per MLS epoch (RFC 9605 section 5.2)
and per-sender authentication (:mod:`.media_auth`).

Every epoch installs new keys from the MLS exporter; a frame decrypts only
under the keys of a live epoch (the previous one for a short grace period,
except for senders the commit removed). The SFrame metadata is
``media_aad(kind, keyframe, layer)`` (RFC 9605 section 4.4.3), so the relay can
read but not alter the envelope's flags. Each stream (audio, every simulcast layer
of video, screen) is sent under its own KID context (:func:`clave.wire.context_of`)
and a frame whose KID context is not its flags' stream is refused. A decrypted
frame is played only once a manifest signed by its sender covers it; only then
does its counter enter the replay window.

Manifests of streams we do not receive (a video we did not subscribe to) are not
verified (:attr:`MediaPlane.interest`): in a large meeting most of the signatures
on the control channel concern videos the relay does not send us. They are kept
(a few, briefly) and verified after all if a frame they cover arrives anyway (a
subscription that changed while frames were on their way).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..mls.group import Group
from ..sframe.errors import SFrameError, UnknownKeyError
from ..sframe.header import decode_header
from ..sframe.mls import MLSKeyManager, index_bits
from ..wire.errors import WireError
from ..wire.media import MAX_CONTEXT, StreamKind, context_of, decode_media, encode_media, media_aad
from .events import Event, FrameRejected, MediaFrameDecrypted, RosterEntry
from .media_auth import (
    Held,
    Limits,
    ManifestError,
    ManifestSigner,
    ManifestWriter,
    Waiting,
    frame_hash,
    open_manifest,
    verify_manifest,
)

Clock = Callable[[], float]
Interest = Callable[[int, int], bool]
"""``interest(leaf, context)``: do we receive that stream of that member?"""
MAX_CONTEXT_ID = MAX_CONTEXT
"""Highest KID context id we derive receive keys for (audio 0, video layers 1-3,
screen 4-6), so a member cannot make us cache a context per context id."""


SKIPPED_KEPT = 512
"""Unverified manifests kept for frames that may still arrive (oldest dropped first)."""


def _everything(leaf: int, context: int) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class _EpochSenders:
    """Who may sign manifests in an epoch: leaf -> signature key, and the KID layout."""

    keys: dict[int, bytes]
    index_mask: int


@dataclass(slots=True)
class MediaCounters:
    """What media authentication did (numbers only, for tests and benchmarks)."""

    manifests_sent: int = 0
    manifests_verified: int = 0
    manifests_refused: int = 0
    manifests_skipped: int = 0
    """Not verified: they covered only streams we do not receive."""
    frames_authenticated: int = 0
    frames_unauthenticated: int = 0
    """Dropped: no manifest covered them in time, or a manifest listed another hash."""
    frames_revoked: int = 0
    """Old-epoch frames of a sender the last commit removed."""


class MediaPlane:
    """SFrame protect/unprotect, manifests out, authenticated frames in."""

    def __init__(
        self,
        suite: int,
        epoch_bits: int,
        clock: Clock,
        grace: float,
        *,
        authenticate: bool = True,
        interval: float = 0.018,
        limits: Limits | None = None,
    ) -> None:
        self._suite = suite
        self._bits = epoch_bits
        self._clock = clock
        self._grace = grace
        self._keys = self._manager(grace)
        self._authenticate = authenticate
        self._writer = ManifestWriter(interval)
        self._waiting: Waiting[MediaFrameDecrypted] = Waiting(limits or Limits())
        self._group_id = b""
        self._signer: ManifestSigner | None = None
        self._senders: dict[int, _EpochSenders] = {}
        self._revoked: set[tuple[int, int]] = set()
        self._outbox: list[bytes] = []
        self._joined_at = 0.0
        self._skipped: deque[tuple[float, frozenset[int], bytes]] = deque(maxlen=SKIPPED_KEPT)
        """Manifests not verified (no stream of ours): when, their KIDs, the manifest."""
        self._kids_seen: set[int] = set()
        """KIDs of the frames we received in live epochs (their manifests always count)."""
        self.interest: Interest = _everything
        self.counters = MediaCounters()

    def _manager(self, grace: float) -> MLSKeyManager:
        return MLSKeyManager(
            self._suite, self._bits, self._clock, grace, max_context_id=MAX_CONTEXT_ID
        )

    @property
    def epoch(self) -> int | None:
        return self._keys.epoch

    def start(self) -> None:
        self._joined_at = self._clock()

    def set_epoch(self, group: Group, signing_key: bytes) -> None:
        """Install the keys of ``group``'s current epoch; manifests of the last one go out."""
        self._flush(force=True)
        self._keys.set_epoch(
            group.epoch, group.export_secret, group.own_leaf_index, group.leaf_count
        )
        self._group_id = group.group_id
        if self._signer is None:
            self._signer = ManifestSigner(signing_key)
        mask = (1 << index_bits(group.leaf_count)) - 1
        keys = {m.leaf_index: m.signature_key for m in group.roster()}
        self._senders[group.epoch] = _EpochSenders(keys, mask)
        live = set(self._keys.live_epochs())
        for e in [e for e in self._senders if e not in live]:
            del self._senders[e]
        self._revoked = {r for r in self._revoked if r[0] in live}
        mask = (1 << self._bits) - 1
        low = {e & mask for e in live}
        self._kids_seen = {k for k in self._kids_seen if k & mask in low}

    def revoke(self, epoch: int, leaves: set[int]) -> None:
        """The commit that left ``epoch`` removed ``leaves``: from now on their frames of
        that epoch are refused, even within its grace period."""
        senders = self._senders.get(epoch)
        if senders is None or not leaves:
            return
        self._revoked |= {(epoch, leaf) for leaf in leaves}
        dropped = self._waiting.drop_sender(
            epoch, lambda kid: ((kid >> self._bits) & senders.index_mask) in leaves
        )
        self.counters.frames_revoked += len(dropped)

    def forget(self) -> None:
        """Drop every key (the meeting is over for us)."""
        self._keys = self._manager(0.0)
        self._waiting = Waiting(self._waiting.limits)
        self._skipped.clear()

    # ------------------------------------------------------------------ sending

    def protect(self, kind: StreamKind, keyframe: bool, payload: bytes, layer: int = 0) -> bytes:
        """One frame of stream (``kind``, ``layer``) under its own KID context."""
        sframe = self._keys.protect(
            media_aad(kind, keyframe, layer), payload, context_id=context_of(kind, layer)
        )
        if self._authenticate:
            kid, ctr, _ = decode_header(sframe)
            digest = frame_hash(sframe)
            epoch = self._keys.epoch or 0
            if not self._writer.add(epoch, kid, ctr, digest):
                self._flush(force=True)
                self._writer.add(epoch, kid, ctr, digest)
            self._flush()
        return encode_media(kind, keyframe, sframe, layer=layer)

    def _flush(self, force: bool = False) -> None:
        now = self._clock()
        writer = self._writer
        if writer.pending and (force or writer.due(now)):
            body = writer.take(now)
            assert self._signer is not None
            self._outbox.append(self._signer.sign(self._group_id, body))
            self.counters.manifests_sent += 1

    def flush_now(self) -> None:
        self._flush(force=True)

    def take_manifests(self) -> list[bytes]:
        """Signed manifests to send (``wire.Manifest``), in order."""
        self._flush()
        out, self._outbox = self._outbox, []
        return out

    # ------------------------------------------------------------------ receiving

    def receive(
        self,
        frame: bytes,
        rosters: dict[int, dict[int, RosterEntry]],
        group: Group,
        members: dict[int, RosterEntry],
    ) -> list[Event]:
        """One media wire frame: played, held for its manifest, or refused."""
        try:
            media = decode_media(frame)
        except WireError as exc:
            return [FrameRejected(f"malformed media frame: {exc}", None)]
        aad = media_aad(media.kind, media.keyframe, media.layer)
        try:
            result = self._keys.unprotect(media.sframe, aad, commit=not self._authenticate)
        except SFrameError as exc:
            if isinstance(exc, UnknownKeyError) and self._before_joining(media.sframe):
                return []
            leaf = self._kid_leaf(media.sframe, group, members)
            return [FrameRejected(f"media frame rejected: {exc}", leaf)]
        if (result.epoch, result.leaf_index) in self._revoked:
            self.counters.frames_revoked += 1
            return [
                FrameRejected(
                    f"media frame of epoch {result.epoch} from leaf {result.leaf_index}, "
                    "which was removed",
                    None,
                )
            ]
        if result.context_id != context_of(media.kind, media.layer):
            return [
                FrameRejected(
                    f"media frame of {media.kind.name} layer {media.layer} under KID context "
                    f"{result.context_id}, not its stream's",
                    result.leaf_index,
                )
            ]
        self._kids_seen.add(result.kid)
        entry = rosters.get(result.epoch, {}).get(result.leaf_index)
        if entry is None:
            return [
                FrameRejected(
                    f"media frame from leaf {result.leaf_index}, not a member in epoch "
                    f"{result.epoch}",
                    None,
                )
            ]
        event = MediaFrameDecrypted(
            entry.leaf, entry.name, media.kind, media.keyframe, result.plaintext, media.layer
        )
        if not self._authenticate:
            return [event]
        key = (result.epoch, result.kid, result.ctr)
        digest = frame_hash(media.sframe)
        expected = self._waiting.expected(key)
        if expected == digest:
            return self._release(key, event)
        if expected is not None:
            self.counters.frames_unauthenticated += 1
            why = "its sender signed another frame"
            return [self._unauthenticated(entry.leaf, entry.name, why)]
        dropped = self._waiting.hold(key, Held(digest, event, len(result.plaintext), self._clock()))
        self.counters.frames_unauthenticated += len(dropped)
        out: list[Event] = [
            self._unauthenticated(d.item.sender, d.item.name, "too many frames waiting")
            for d in dropped
        ]
        return out + self._verify_skipped(result.kid)

    def _verify_skipped(self, kid: int) -> list[Event]:
        """A frame of ``kid`` waits for its manifest: verify the ones skipped for it."""
        if not self._skipped:
            return []
        horizon = self._clock() - self._waiting.limits.hold_timeout
        while self._skipped and self._skipped[0][0] < horizon:
            self._skipped.popleft()
        mine = [entry for entry in self._skipped if kid in entry[1]]
        out: list[Event] = []
        for entry in mine:
            self._skipped.remove(entry)
            out += self.receive_manifest(entry[2], verify=True)
        return out

    def receive_manifest(self, data: bytes, verify: bool = False) -> list[Event]:
        """A sender's signed manifest: play the frames it covers, expect the others.
        Unless ``verify``, one that covers only streams we do not receive is kept
        unverified (see :meth:`_verify_skipped`)."""
        try:
            body, encoded, sig = open_manifest(data)
        except ManifestError as exc:
            self.counters.manifests_refused += 1
            return [FrameRejected(str(exc), None)]
        senders = self._senders.get(body.epoch)
        if senders is None:
            return []  # an epoch we do not (or no longer) have: its frames cannot play either
        leaves = {(run.kid >> self._bits) & senders.index_mask for run in body.runs}
        epochs = {run.kid & ((1 << self._bits) - 1) for run in body.runs}
        if len(leaves) != 1 or epochs != {body.epoch % (1 << self._bits)}:
            self.counters.manifests_refused += 1
            return [FrameRejected("media manifest mixing senders or epochs", None)]
        leaf = leaves.pop()
        key = senders.keys.get(leaf)
        if key is None or (body.epoch, leaf) in self._revoked:
            self.counters.manifests_refused += 1
            return [FrameRejected(f"media manifest from leaf {leaf}, not a member", None)]
        shift = self._bits + senders.index_mask.bit_length()
        if not verify and not any(self._wanted(run.kid, leaf, shift) for run in body.runs):
            self.counters.manifests_skipped += 1
            kids = frozenset(run.kid for run in body.runs)
            self._skipped.append((self._clock(), kids, data))
            return []
        try:
            verify_manifest(self._group_id, encoded, sig, key)
        except ManifestError as exc:
            self.counters.manifests_refused += 1
            return [FrameRejected(f"media manifest claiming leaf {leaf}: {exc}", None)]
        self.counters.manifests_verified += 1
        now = self._clock()
        out: list[Event] = []
        for kid, ctr, digest in body.entries():
            at = (body.epoch, kid, ctr)
            candidates = self._waiting.take(at)
            match = next((c for c in candidates if c.digest == digest), None)
            for c in candidates:
                if c is not match:
                    self.counters.frames_unauthenticated += 1
                    out.append(self._unauthenticated(c.item.sender, c.item.name, "forged"))
            if match is not None:
                out += self._release(at, match.item)
            else:
                self._waiting.expect(at, digest, now)
        return out

    def _wanted(self, kid: int, leaf: int, shift: int) -> bool:
        """Whether a manifest run of ``kid`` concerns us: a stream we receive, or one
        whose frames reached us anyway (they wait for it)."""
        return kid in self._kids_seen or self.interest(leaf, kid >> shift)

    def expire(self) -> list[Event]:
        """Frames no manifest covered in time: dropped and reported, never played."""
        expired = self._waiting.expire(self._clock())
        self.counters.frames_unauthenticated += len(expired)
        return [
            self._unauthenticated(h.item.sender, h.item.name, "no signed manifest in time")
            for _, h in expired
        ]

    def deadline(self) -> float | None:
        """When :meth:`take_manifests` or :meth:`expire` next has something to do."""
        times = [t for t in (self._writer.deadline(), self._waiting.deadline()) if t is not None]
        return min(times) if times else None

    def _release(self, key: tuple[int, int, int], event: MediaFrameDecrypted) -> list[Event]:
        self._waiting.settle(key)
        try:
            self._keys.accept(key[1], key[2])
        except SFrameError as exc:
            return [FrameRejected(f"media frame rejected: {exc}", event.sender)]
        self.counters.frames_authenticated += 1
        return [event]

    @staticmethod
    def _unauthenticated(leaf: int, name: str, why: str) -> FrameRejected:
        return FrameRejected(
            f"media claiming to be from {name} was not authenticated ({why}): dropped", leaf
        )

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
