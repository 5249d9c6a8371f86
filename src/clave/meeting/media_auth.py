"""Per-sender media authentication: signed manifests of frame hashes.

SFrame authenticates the group, not the sender (RFC 9605 section 7.2): every
member holds every sender's keys, so a member could make frames that others
attribute to someone else, or push a huge counter into someone's replay
window. Clave adds sender authentication on top:

* each sender records ``SHA-256(sframe)[:16]`` of every frame it protects and,
  at most every ``interval`` (18 ms), sends a **manifest**: per KID it used (one
  per stream: audio, each simulcast layer, screen), the hashes of the frames with
  consecutive counters since the last one, signed once with its MLS leaf
  signature key (RFC 9420 section 5.1.2, SignWithLabel)::

      run      = array [kid, first_ctr, hashes (16 bytes each)]
      body     = array [epoch, runs (1..7, one per KID, 64 hashes in all at most)]
      manifest = array [body (msgpack), SignWithLabel(leaf key,
                        "clave media manifest", opaque group_id<V> || body)]

  on the relay's control channel (``Manifest`` / ``ManifestFrom``), which is
  never dropped and may overtake the media it covers;
* a receiver decrypts a frame (the group AEAD) but **holds** it, with its
  counter not yet in the replay window, until a manifest signed by the leaf
  the KID names lists the frame's hash at its counter; then it records the
  counter and plays the frame. A held frame that no manifest covers within
  ``hold_timeout`` is dropped and reported, never played. Manifests that
  arrive first leave their entries waiting (bounded) for the frames.

So a member (even with the relay's help) can neither make frames that others
attribute to another member nor move another member's replay window; what it
sends under another KID is dropped as unauthenticated. Every structure here
has a bound in count and bytes per sender and in total.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Generic, TypeVar

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..mls.ciphersuite import sign_content
from ..mls.codec import Writer
from ..mls.errors import MLSError
from .errors import MeetingError
from .roles import suite

MANIFEST_LABEL = "clave media manifest"
HASH_BYTES = 16
MAX_ENTRIES = 64
"""Frame hashes one manifest carries at most (all runs together)."""
MAX_RUNS = 7
"""KIDs one manifest covers at most: a sender's streams (clave.wire.MAX_CONTEXT + 1)."""
U64 = Annotated[int, msgspec.Meta(ge=0)]
"""MessagePack unsigned integers (at most 64 bits on the wire)."""
Hashes = Annotated[bytes, msgspec.Meta(min_length=HASH_BYTES, max_length=HASH_BYTES * MAX_ENTRIES)]

T = TypeVar("T")


class ManifestError(MeetingError):
    """A media manifest is malformed or its signature does not verify."""


class Run(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """The frames of one KID (one stream) a manifest covers: consecutive counters."""

    kid: U64
    first: U64
    hashes: Hashes

    def entries(self) -> Iterable[tuple[int, bytes]]:
        """``(ctr, hash)`` for each frame of the run."""
        for i in range(len(self.hashes) // HASH_BYTES):
            yield self.first + i, self.hashes[i * HASH_BYTES : (i + 1) * HASH_BYTES]


class ManifestBody(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    epoch: U64
    runs: Annotated[list[Run], msgspec.Meta(min_length=1, max_length=MAX_RUNS)]

    def entries(self) -> Iterable[tuple[int, int, bytes]]:
        """``(kid, ctr, hash)`` for each frame the manifest covers."""
        for run in self.runs:
            for ctr, digest in run.entries():
                yield run.kid, ctr, digest


class _Signed(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    body: Annotated[bytes, msgspec.Meta(max_length=HASH_BYTES * MAX_ENTRIES + 32 * MAX_RUNS)]
    sig: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]


_encoder = msgspec.msgpack.Encoder()
_signed = msgspec.msgpack.Decoder(_Signed)
_body = msgspec.msgpack.Decoder(ManifestBody)


def frame_hash(sframe: bytes) -> bytes:
    """What a manifest lists for a frame: the first 16 bytes of SHA-256 of the SFrame
    (header, ciphertext and tag)."""
    return hashlib.sha256(sframe).digest()[:HASH_BYTES]


def _content(group_id: bytes, body: bytes) -> bytes:
    w = Writer()
    w.opaque(group_id)
    w.raw(body)
    return w.finish()


class ManifestSigner:
    """Signs manifests with a member's leaf key, keeping the key object between signatures
    (SignWithLabel, RFC 9420 section 5.1.2; cipher suite 1 signs with Ed25519)."""

    __slots__ = ("_key",)

    def __init__(self, signature_private: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(signature_private)

    def sign(self, group_id: bytes, body: ManifestBody) -> bytes:
        encoded = _encoder.encode(body)
        sig = self._key.sign(sign_content(MANIFEST_LABEL, _content(group_id, encoded)))
        return _encoder.encode(_Signed(encoded, sig))


def sign_manifest(group_id: bytes, body: ManifestBody, signature_private: bytes) -> bytes:
    return ManifestSigner(signature_private).sign(group_id, body)


def open_manifest(data: bytes) -> tuple[ManifestBody, bytes, bytes]:
    """Decode (not verify): the body, its encoding and the signature."""
    try:
        signed = _signed.decode(data)
        body = _body.decode(signed.body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"malformed media manifest: {exc}") from None
    if any(len(run.hashes) % HASH_BYTES for run in body.runs):
        raise ManifestError("malformed media manifest: a truncated frame hash")
    if sum(len(run.hashes) for run in body.runs) > HASH_BYTES * MAX_ENTRIES:
        raise ManifestError(f"malformed media manifest: more than {MAX_ENTRIES} frames")
    if len({run.kid for run in body.runs}) != len(body.runs):
        raise ManifestError("malformed media manifest: a KID listed twice")
    return body, signed.body, signed.sig


def verify_manifest(group_id: bytes, encoded: bytes, sig: bytes, signature_key: bytes) -> None:
    try:
        suite().verify_with_label(signature_key, MANIFEST_LABEL, _content(group_id, encoded), sig)
    except MLSError:
        raise ManifestError("a media manifest's signature does not verify") from None


@dataclass(slots=True)
class ManifestWriter:
    """The sender's side: frames protected since the last manifest, one run per KID,
    flushed at most every ``interval`` seconds (immediately when the last flush is
    that old, or when it holds ``MAX_ENTRIES`` hashes)."""

    interval: float
    _epoch: int = -1
    _runs: dict[int, tuple[int, list[bytes]]] = field(default_factory=dict)
    """kid -> (first counter, hashes)."""
    _count: int = 0
    _last_flush: float = float("-inf")

    def add(self, epoch: int, kid: int, ctr: int, digest: bytes) -> bool:
        """Record one protected frame; False if it does not continue the batch (another
        epoch, a gap in its KID's counters, a full manifest): the caller flushes first
        and adds it again."""
        if not self._runs:
            self._epoch = epoch
        elif epoch != self._epoch or self._count >= MAX_ENTRIES:
            return False
        run = self._runs.get(kid)
        if run is None:
            if len(self._runs) >= MAX_RUNS:
                return False
            self._runs[kid] = (ctr, [digest])
        elif ctr != run[0] + len(run[1]):
            return False
        else:
            run[1].append(digest)
        self._count += 1
        return True

    @property
    def pending(self) -> bool:
        return bool(self._runs)

    def due(self, now: float) -> bool:
        # The same expression as deadline(): a timer set to it always finds us due.
        return bool(self._runs) and (
            now >= self._last_flush + self.interval or self._count >= MAX_ENTRIES
        )

    def deadline(self) -> float | None:
        return self._last_flush + self.interval if self._runs else None

    def take(self, now: float) -> ManifestBody:
        runs = [Run(kid, first, b"".join(hashes)) for kid, (first, hashes) in self._runs.items()]
        self._runs = {}
        self._count = 0
        self._last_flush = now
        return ManifestBody(self._epoch, runs)


@dataclass(slots=True)
class Held(Generic[T]):
    """A decrypted frame waiting for its sender's manifest."""

    digest: bytes
    item: T
    size: int
    since: float


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of the receiver's waiting room, per sender and in total."""

    hold_timeout: float = 0.5
    """Seconds a frame waits for its manifest before it is dropped as unauthenticated."""
    frames_per_sender: int = 64
    bytes_per_sender: int = 2 * 1024 * 1024
    total_bytes: int = 32 * 1024 * 1024
    expected_per_sender: int = 4 * MAX_ENTRIES
    """Manifest entries waiting for their frames, per sender."""


Key = tuple[int, int, int]
"""(epoch, kid, ctr)"""


class Waiting(Generic[T]):
    """Held frames and manifest entries waiting for each other, by (epoch, kid, ctr).

    A key may hold several candidates (a forger's frame and the real one); the
    manifest picks the one whose hash it lists. Every insertion is bounded; what
    falls out is returned so the caller can report it.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._held: OrderedDict[Key, list[Held[T]]] = OrderedDict()
        self._expected: OrderedDict[Key, tuple[bytes, float]] = OrderedDict()
        self._sender_frames: dict[tuple[int, int], int] = {}
        self._sender_bytes: dict[tuple[int, int], int] = {}
        self._sender_expected: dict[tuple[int, int], int] = {}
        self.total_bytes = 0

    def __len__(self) -> int:
        return sum(len(v) for v in self._held.values())

    def expected(self, key: Key) -> bytes | None:
        found = self._expected.get(key)
        return None if found is None else found[0]

    def hold(self, key: Key, held: Held[T]) -> list[Held[T]]:
        """Keep ``held``; returns frames dropped to respect the bounds (oldest first)."""
        sender = key[:2]
        self._held.setdefault(key, []).append(held)
        self._count(sender, 1, held.size)
        dropped: list[Held[T]] = []
        lim = self.limits
        while (
            self._sender_frames.get(sender, 0) > lim.frames_per_sender
            or self._sender_bytes.get(sender, 0) > lim.bytes_per_sender
        ):
            dropped += self._drop_oldest(lambda k: k[:2] == sender)
        while self.total_bytes > lim.total_bytes:
            dropped += self._drop_oldest(lambda k: True)
        return dropped

    def expect(self, key: Key, digest: bytes, now: float) -> None:
        sender = key[:2]
        if key not in self._expected:
            self._sender_expected[sender] = self._sender_expected.get(sender, 0) + 1
        self._expected[key] = (digest, now)
        while self._sender_expected.get(sender, 0) > self.limits.expected_per_sender:
            old = next(k for k in self._expected if k[:2] == sender)
            self._forget_expected(old)

    def take(self, key: Key) -> list[Held[T]]:
        """Every candidate held at ``key`` (removed)."""
        found = self._held.pop(key, [])
        for h in found:
            self._count(key[:2], -1, -h.size)
        return found

    def settle(self, key: Key) -> None:
        """The frame at ``key`` was played: forget its manifest entry."""
        if key in self._expected:
            self._forget_expected(key)

    def expire(self, now: float) -> list[tuple[Key, Held[T]]]:
        """Frames held longer than the timeout (removed); stale entries are dropped."""
        timeout = self.limits.hold_timeout
        out: list[tuple[Key, Held[T]]] = []
        for key in [k for k, hs in self._held.items() if any(now - h.since >= timeout for h in hs)]:
            keep = [h for h in self._held[key] if now - h.since < timeout]
            for h in self.take(key):
                if h not in keep:
                    out.append((key, h))
            for h in keep:
                self._held.setdefault(key, []).append(h)
                self._count(key[:2], 1, h.size)
        for key in [k for k, (_, t) in self._expected.items() if now - t >= timeout]:
            self._forget_expected(key)
        return out

    def deadline(self) -> float | None:
        times = [h.since for hs in self._held.values() for h in hs]
        times += [t for _, t in self._expected.values()]
        return min(times) + self.limits.hold_timeout if times else None

    def drop_sender(self, epoch: int, leaf_of: object) -> list[tuple[Key, Held[T]]]:
        """Everything of the given ``(epoch, kid)`` senders; ``leaf_of(kid) -> bool``."""
        assert callable(leaf_of)
        out: list[tuple[Key, Held[T]]] = []
        for key in [k for k in self._held if k[0] == epoch and leaf_of(k[1])]:
            out += [(key, h) for h in self.take(key)]
        for key in [k for k in self._expected if k[0] == epoch and leaf_of(k[1])]:
            self._forget_expected(key)
        return out

    def _drop_oldest(self, match: object) -> list[Held[T]]:
        assert callable(match)
        key = next((k for k in self._held if match(k)), None)
        if key is None:  # pragma: no cover - counts and contents agree
            return []
        candidates = self._held[key]
        victim = candidates.pop(0)
        if not candidates:
            del self._held[key]
        self._count(key[:2], -1, -victim.size)
        return [victim]

    def _forget_expected(self, key: Key) -> None:
        del self._expected[key]
        sender = key[:2]
        self._sender_expected[sender] -= 1
        if not self._sender_expected[sender]:
            del self._sender_expected[sender]

    def _count(self, sender: tuple[int, int], frames: int, size: int) -> None:
        self._sender_frames[sender] = self._sender_frames.get(sender, 0) + frames
        self._sender_bytes[sender] = self._sender_bytes.get(sender, 0) + size
        self.total_bytes += size
        if not self._sender_frames[sender]:
            del self._sender_frames[sender]
            del self._sender_bytes[sender]
