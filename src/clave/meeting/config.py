"""Local choices of one participant's meeting engine (none affect interoperability)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sframe.suites import AES_128_GCM_SHA256_128
from .buffer import BufferLimits


@dataclass(frozen=True, slots=True)
class MeetingConfig:
    """Local choices that do not affect interoperability."""

    epoch_bits: int = 4
    """``E`` of the SFrame KID (RFC 9605 section 5.2)."""
    grace_period: float = 2.0
    """Seconds for which the previous epoch's media and application messages still decrypt."""
    sframe_suite: int = AES_128_GCM_SHA256_128.id
    max_lobby: int = 1000
    """Pending join requests kept at most (more are answered "full"): hundreds may wait
    to enter a large meeting (about 1 KiB each)."""
    admit_batch: int = 50
    """Newcomers one commit adds at most (the rest go in the next one)."""
    welcome_budget: int = 2 * 1024 * 1024
    """Bytes of Welcomes one commit may make us send at most (one Welcome per newcomer,
    each carrying the ratchet tree, about 290 bytes per member): fewer newcomers per
    commit in a large meeting, so a host stays within the relay's byte rate."""
    buffer: BufferLimits = field(default_factory=BufferLimits)
    """Messages kept for a later epoch (or until the Welcome) at most: count and bytes,
    in total and per sending connection."""
    key_package_lifetime: int = 24 * 3600
    clock_skew: int = 3600
    """Our KeyPackage is valid from this many seconds before ``now()``."""
    order_timeout: float = 5.0
    """Seconds without the relay ordering our change before we warn."""
    refresh_interval: float = 600.0
    """Mean seconds between our periodic key refreshes (0: never), jittered by ±20 %."""
    handover_timeout: float = 3.0
    """A leaving host waits this long for its handover commit to be ordered."""
    authenticate_media: bool = True
    """Sign manifests of our frames and play others' only once their manifests verify
    (:mod:`.media_auth`). Off only to measure what it costs (bench/)."""
    resume_window: float = 15.0
    """Seconds a member whose relay connection vanished (no Bye) keeps its place, waiting
    for it to come back on a new connection; then a host removes it (docs/SECURITY.md)."""
    catchup_timeout: float = 5.0
    """After reconnecting: seconds to wait for the meeting's current epoch (the relay's
    log, a member re-offering its last commit) before asking to be admitted again."""
    manifest_interval: float = 0.018
    """Seconds between two manifests of ours at most: what a frame may wait at a receiver
    (below the 20 ms of one audio frame, so audio usually waits for nothing)."""
