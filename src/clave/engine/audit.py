"""Check recorded relay traffic for plaintext: media, chat, names, keys.

Used by ``clave demo`` and the end-to-end tests. A sender's encoded media
frames are cut into 32-byte windows (every 16 bytes, so any copy of 47 or
more consecutive bytes of a frame contains a whole window); the recorded
traffic is scanned at every offset. Chat texts, display names and keys are
searched for whole.

The keys searched for are the ones actually in use (:func:`collect_sframe_keys`):
each epoch's SFrame base key as each participant held it, and for every sender
KID found in the recorded media frames the AEAD key and salt derived from it
(RFC 9605 section 4.4.2). Each derived key is proven to be in use by
authenticating recorded frames of its KID; a KID that no collected key opens is
reported, so a search for wrong keys cannot pass unnoticed.

:func:`base_key_opens` is the removed-member check: whether the key and salt a
base key gives for a frame's own KID authenticate that frame. A departed
member's last base key must open no frame sent under a later epoch's KIDs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidTag

from ..sframe.errors import SFrameError
from ..sframe.header import decode_header
from ..sframe.suites import AES_128_GCM_SHA256_128, CipherSuite, derive_key_salt, get_suite
from ..wire.errors import WireError
from ..wire.frames import MEDIA
from ..wire.media import decode_media, media_aad

WINDOW = 32
STRIDE = 16


@dataclass(frozen=True)
class LeakReport:
    bytes_scanned: int
    frames_checked: int
    windows_checked: int
    frame_windows_found: int
    texts_checked: int
    texts_found: tuple[str, ...]
    keys_checked: int
    keys_found: int

    @property
    def clean(self) -> bool:
        return not (self.frame_windows_found or self.texts_found or self.keys_found)


def _windows(frames: Iterable[bytes]) -> set[bytes]:
    out: set[bytes] = set()
    for f in frames:
        for i in range(0, len(f) - WINDOW + 1, STRIDE):
            out.add(f[i : i + WINDOW])
    return out


def _count_windows(stream: bytes, windows: set[bytes]) -> int:
    """How many offsets of ``stream`` start one of ``windows`` (numpy prefilter, exact check)."""
    if len(stream) < WINDOW or not windows:
        return 0
    buf = np.frombuffer(stream, dtype=np.uint8)
    n = len(stream) - WINDOW + 1
    # 8-byte big-endian prefix at every offset, then exact comparison on candidates.
    prefix = np.zeros(n, dtype=np.uint64)
    for k in range(8):
        prefix = (prefix << np.uint64(8)) | buf[k : k + n].astype(np.uint64)
    anchors = np.array(sorted({int.from_bytes(w[:8], "big") for w in windows}), dtype=np.uint64)
    candidates = np.nonzero(np.isin(prefix, anchors))[0]
    return sum(1 for i in candidates.tolist() if stream[i : i + WINDOW] in windows)


def find_leaks(
    recorded: Sequence[bytes],
    *,
    frames: Sequence[bytes],
    texts: Iterable[str] = (),
    keys: Iterable[bytes] = (),
) -> LeakReport:
    """Search every recorded message (each direction, unmasked) for the given plaintexts."""
    stream = b"\x00".join(recorded)
    windows = _windows(frames)
    text_list = [t for t in texts if t]
    key_list = [k for k in keys if k]
    return LeakReport(
        bytes_scanned=len(stream),
        frames_checked=len(frames),
        windows_checked=len(windows),
        frame_windows_found=_count_windows(stream, windows),
        texts_checked=len(text_list),
        texts_found=tuple(t for t in text_list if t.encode() in stream),
        keys_checked=len(key_list),
        keys_found=sum(1 for k in key_list if k in stream),
    )


# ---------------------------------------------------------------- SFrame keys in use


@dataclass(frozen=True)
class RecordedFrame:
    """One SFrame ciphertext from the recording, with what its AEAD authenticates."""

    kid: int
    ctr: int
    header_len: int
    sframe: bytes
    metadata: bytes


def media_frames(recorded: Iterable[bytes]) -> list[RecordedFrame]:
    """Every well-formed media message of a recording (channel ``M``), parsed."""
    out: list[RecordedFrame] = []
    for message in recorded:
        if len(message) < 2 or message[1] != MEDIA:
            continue
        try:
            media = decode_media(message)
            kid, ctr, hlen = decode_header(media.sframe)
        except (WireError, SFrameError):
            continue
        out.append(
            RecordedFrame(kid, ctr, hlen, media.sframe, media_aad(media.kind, media.keyframe))
        )
    return out


def _opens(suite: CipherSuite, key: bytes, salt: bytes, frame: RecordedFrame) -> bool:
    """Whether ``key``/``salt`` authenticate ``frame`` (RFC 9605 section 4.4.4)."""
    nonce = (int.from_bytes(salt, "big") ^ frame.ctr).to_bytes(suite.nn, "big")
    aad = frame.sframe[: frame.header_len] + frame.metadata
    try:
        suite.aead(key).decrypt(nonce, frame.sframe[frame.header_len :], aad)
    except (InvalidTag, SFrameError, ValueError):
        return False
    return True


def base_key_opens(
    frame: bytes, base_key: bytes, *, suite: CipherSuite | int = AES_128_GCM_SHA256_128
) -> bool:
    """Whether the SFrame key and salt that ``base_key`` gives for this media frame's own
    KID (``derive_key_salt(KID, base_key)``) authenticate it. False for anything that is
    not a well-formed media frame."""
    parsed = media_frames([frame])
    if not parsed:
        return False
    cs = get_suite(suite)
    key, salt = derive_key_salt(cs, parsed[0].kid, base_key)
    return _opens(cs, key, salt, parsed[0])


@dataclass(frozen=True)
class SenderKey:
    """The AEAD key and salt of one sender KID (RFC 9605 section 4.4.2)."""

    kid: int
    key: bytes
    salt: bytes
    frames: int
    """Recorded frames under this KID."""
    opened: int
    """How many of the frames tried this key authenticated (at least one, or it is not
    listed)."""


@dataclass(frozen=True)
class EpochKeys:
    """One participant's SFrame keys of one epoch: the base key and each sender's key."""

    participant: str
    epoch: int
    base_key: bytes
    senders: tuple[SenderKey, ...]


@dataclass(frozen=True)
class KeyInventory:
    """The SFrame keys in use during a recording, per participant and epoch."""

    epochs: tuple[EpochKeys, ...]
    media_frames: int
    """Media frames in the recording."""
    kids_recorded: frozenset[int]
    """Every KID of those frames."""
    kids_unverified: frozenset[int]
    """KIDs of recorded frames that no collected key authenticates: keys in use that the
    collection missed (must be empty)."""

    @property
    def base_keys(self) -> list[bytes]:
        return list(dict.fromkeys(e.base_key for e in self.epochs))

    @property
    def sender_keys(self) -> list[SenderKey]:
        """Distinct (KID, key) pairs: every member of an epoch derives the same ones."""
        seen: dict[tuple[int, bytes], SenderKey] = {}
        for e in self.epochs:
            for s in e.senders:
                seen.setdefault((s.kid, s.key), s)
        return list(seen.values())

    @property
    def secrets(self) -> list[bytes]:
        """Everything to search the recording for: base keys, AEAD keys and salts."""
        senders = self.sender_keys
        return [*self.base_keys, *(s.key for s in senders), *(s.salt for s in senders)]

    @property
    def complete(self) -> bool:
        """Frames were recorded and every one of their KIDs has a key that opens it."""
        return self.media_frames > 0 and not self.kids_unverified


def collect_sframe_keys(
    base_keys: Mapping[str, Iterable[tuple[int, bytes]]],
    recorded: Iterable[bytes],
    *,
    suite: CipherSuite | int = AES_128_GCM_SHA256_128,
    epoch_bits: int = 4,
    tries: int = 3,
) -> KeyInventory:
    """The SFrame keys in use: per participant, its ``(epoch, base_key)`` pairs, and for
    each KID of the recorded media frames whose epoch bits match, the derived AEAD key
    and salt, kept only if they authenticate one of up to ``tries`` recorded frames of
    that KID (so a base key that is not the one in use yields no sender keys, and its
    KIDs stay unverified)."""
    cs = get_suite(suite)
    mask = (1 << epoch_bits) - 1
    by_kid: dict[int, list[RecordedFrame]] = {}
    frames = media_frames(recorded)
    for f in frames:
        by_kid.setdefault(f.kid, []).append(f)
    opened_kids: set[int] = set()
    epochs: list[EpochKeys] = []
    derived: dict[tuple[bytes, int], SenderKey | None] = {}
    for participant, pairs in base_keys.items():
        for epoch, base_key in pairs:
            senders: list[SenderKey] = []
            for kid in sorted(k for k in by_kid if k & mask == epoch & mask):
                if (base_key, kid) not in derived:
                    key, salt = derive_key_salt(cs, kid, base_key)
                    tried = by_kid[kid][:tries]
                    opened = sum(_opens(cs, key, salt, f) for f in tried)
                    derived[(base_key, kid)] = (
                        SenderKey(kid, key, salt, len(by_kid[kid]), opened) if opened else None
                    )
                sender = derived[(base_key, kid)]
                if sender is not None:
                    senders.append(sender)
                    opened_kids.add(kid)
            epochs.append(EpochKeys(participant, epoch, base_key, tuple(senders)))
    return KeyInventory(
        tuple(epochs),
        len(frames),
        frozenset(by_kid),
        frozenset(by_kid) - opened_kids,
    )
