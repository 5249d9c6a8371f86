"""Token buckets for per-connection rate limits (clock passed in, so tests need no sleeping)."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last = now

    def take(self, amount: float, now: float) -> bool:
        """Spend ``amount`` tokens if available; False (and nothing spent) if not."""
        tokens = self._tokens + (now - self._last) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        self._last = now
        if tokens < amount:
            self._tokens = tokens
            return False
        self._tokens = tokens - amount
        return True


class RateLimit:
    """A message-count bucket and a byte bucket, checked together."""

    __slots__ = ("_bytes", "_msgs")

    def __init__(
        self, msg_rate: float, msg_burst: float, byte_rate: float, byte_burst: float, now: float
    ) -> None:
        self._msgs = TokenBucket(msg_rate, msg_burst, now)
        self._bytes = TokenBucket(byte_rate, byte_burst, now)

    def allow(self, size: int, now: float) -> bool:
        """Account one message of ``size`` bytes; False if either limit is exceeded."""
        return self._msgs.take(1.0, now) and self._bytes.take(size, now)
