"""Token buckets and relay settings."""

from __future__ import annotations

import pytest

from clave.relay import RelayConfig
from clave.relay.limits import RateLimit, TokenBucket


def test_bucket_starts_full_and_refills_at_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert all(bucket.take(1, 0.0) for _ in range(5))
    assert not bucket.take(1, 0.0)
    assert not bucket.take(1, 0.05)  # half a token
    assert bucket.take(1, 0.1)
    assert bucket.take(4, 100.0)  # capped at the burst, not 1000 tokens
    assert not bucket.take(2, 100.0)


def test_refused_take_spends_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=10, now=0.0)
    assert not bucket.take(11, 0.0)
    assert bucket.take(10, 0.0)


def test_rate_limit_checks_messages_and_bytes() -> None:
    limit = RateLimit(msg_rate=100, msg_burst=3, byte_rate=1000, byte_burst=1000, now=0.0)
    assert limit.allow(10, 0.0) and limit.allow(10, 0.0) and limit.allow(10, 0.0)
    assert not limit.allow(10, 0.0)  # fourth message
    limit = RateLimit(msg_rate=100, msg_burst=100, byte_rate=1000, byte_burst=1000, now=0.0)
    assert limit.allow(900, 0.0)
    assert not limit.allow(200, 0.0)  # bytes
    assert limit.allow(200, 0.2)


@pytest.mark.parametrize("bad", [(0, 1), (1, 0), (-1, 5)])
def test_bucket_rejects_nonpositive_settings(bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError):
        TokenBucket(bad[0], bad[1], 0.0)


def test_default_config_admits_a_1080p_sender() -> None:
    cfg = RelayConfig()
    # 1080p60 camera (~8 Mbit/s) + 1080p screen (~4 Mbit/s) + audio, and 200 KB keyframes
    assert cfg.byte_rate * 8 >= 12_000_000 * 2
    assert cfg.msg_rate >= 60 + 60 + 50 + 10
    assert cfg.byte_burst >= 1024 * 1024


def test_default_commit_budgets_and_epoch_bounds() -> None:
    cfg = RelayConfig()
    assert (cfg.commit_rate, cfg.commit_burst) == (1.0, 5.0)
    assert (cfg.room_commit_rate, cfg.room_commit_burst) == (10.0, 30.0)
    # every connection of a full room may hold its open slots at once
    assert cfg.max_open_epochs == 4 and cfg.max_epoch_slots == 4_608
    assert cfg.max_open_epochs * cfg.max_conns_per_room < cfg.max_epoch_slots


@pytest.mark.parametrize(
    "kwargs",
    [
        {"media_high_water": 10, "media_hard_limit": 5},
        {"control_cap": 1000},
        {"heartbeat": 0},
        {"byte_burst": 10},
        {"max_rooms": 0},
        {"commit_rate": 0},
        {"room_commit_rate": -1},
        {"commit_burst": 0.5},
        {"room_commit_burst": 0},
        {"max_open_epochs": 0},
        {"max_epoch_slots": 1},
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RelayConfig(**kwargs)  # type: ignore[arg-type]
