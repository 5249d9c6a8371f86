"""The per-receiver queue: control never dropped, media dropped by policy."""

from __future__ import annotations

from clave.relay.queues import OutQueue

AUDIO, VIDEO, SCREEN = 0, 1, 2
KB = 1000


def drain(q: OutQueue) -> list[bytes]:
    out = []
    while (data := q.pop()) is not None:
        out.append(data)
    return out


def frame(tag: str, size: int = KB) -> bytes:
    return tag.encode().ljust(size, b".")


def test_control_first_then_media_in_arrival_order() -> None:
    q = OutQueue(high_water=100 * KB, hard_limit=200 * KB, control_cap=10**6)
    q.push_media(frame("v1"), 7, VIDEO, True, 0.0)
    q.push_media(frame("a1"), 7, AUDIO, False, 0.0)
    q.push_control(b"c1")
    q.push_media(frame("v2"), 7, VIDEO, False, 0.0)
    q.push_control(b"c2")
    assert [d[:2] for d in drain(q)] == [b"c1", b"c2", b"v1", b"a1", b"v2"]
    assert q.media_bytes == 0 and q.control_bytes == 0 and len(q) == 0


def test_on_ready_is_called_on_push() -> None:
    calls = []
    q = OutQueue(10 * KB, 20 * KB, 10**6, on_ready=lambda: calls.append(1))
    q.push_control(b"x")
    q.push_media(frame("a"), 1, AUDIO, False, 0.0)
    assert len(calls) == 2


def test_deltas_dropped_above_high_water_then_skipped_until_keyframe() -> None:
    q = OutQueue(high_water=3 * KB, hard_limit=10 * KB, control_cap=10**6, keyframe_retry=1.0)
    asks = [q.push_media(frame(f"d{i}"), 7, VIDEO, False, 0.0) for i in range(4)]
    assert asks == [False] * 4  # 3 KB queued is at the mark, not above: the 4th passes
    assert q.push_media(frame("d4"), 7, VIDEO, False, 0.0) is True  # dropped: ask for a keyframe
    assert q.dropped == 1
    drain(q)  # the receiver catches up ...
    # ... but the decoder has a gap: deltas of sender 7 are skipped, without asking again
    assert q.push_media(frame("d5"), 7, VIDEO, False, 0.1) is False
    assert q.push_media(frame("d6"), 7, VIDEO, False, 0.2) is False
    assert drain(q) == []
    # other senders and kinds are unaffected
    assert q.push_media(frame("s0"), 7, SCREEN, False, 0.2) is False
    assert q.push_media(frame("o0"), 8, VIDEO, False, 0.2) is False
    assert [d[:2] for d in drain(q)] == [b"s0", b"o0"]
    # the keyframe ends the recovery
    assert q.push_media(frame("k7"), 7, VIDEO, True, 0.3) is False
    assert q.push_media(frame("d8"), 7, VIDEO, False, 0.3) is False
    assert [d[:2] for d in drain(q)] == [b"k7", b"d8"]


def test_keyframe_request_repeated_only_after_retry_interval() -> None:
    q = OutQueue(high_water=1 * KB, hard_limit=10 * KB, control_cap=10**6, keyframe_retry=1.0)
    q.push_media(frame("d0", 2 * KB), 7, VIDEO, False, 0.0)
    assert q.push_media(frame("d1"), 7, VIDEO, False, 0.0) is True
    assert q.push_media(frame("d2"), 7, VIDEO, False, 0.5) is False
    assert q.push_media(frame("d3"), 7, VIDEO, False, 1.0) is True  # keyframe never came
    assert q.push_media(frame("d4"), 7, VIDEO, False, 1.5) is False


def test_keyframes_and_audio_pass_the_high_water_mark() -> None:
    q = OutQueue(high_water=2 * KB, hard_limit=10 * KB, control_cap=10**6)
    for i in range(4):
        q.push_media(frame(f"d{i}"), 7, VIDEO, False, 0.0)
    assert q.push_media(frame("kf"), 8, VIDEO, True, 0.0) is False
    assert q.push_media(frame("au"), 8, AUDIO, False, 0.0) is False
    assert [d[:2] for d in drain(q)] == [b"d0", b"d1", b"d2", b"kf", b"au"]


def test_audio_dropped_oldest_first_above_hard_limit() -> None:
    q = OutQueue(high_water=1 * KB, hard_limit=4 * KB, control_cap=10**6)
    for i in range(4):
        q.push_media(frame(f"a{i}"), 7, AUDIO, False, 0.0)
    q.push_media(frame("a4"), 7, AUDIO, False, 0.0)
    q.push_media(frame("k5"), 8, VIDEO, True, 0.0)
    assert q.media_bytes <= 4 * KB
    assert [d[:2] for d in drain(q)] == [b"a2", b"a3", b"a4", b"k5"]
    assert q.dropped == 2


def test_keyframe_that_cannot_fit_is_dropped_and_requested_again() -> None:
    q = OutQueue(high_water=1 * KB, hard_limit=2 * KB, control_cap=10**6)
    q.push_media(frame("k0", 3 * KB), 7, VIDEO, True, 0.0)  # an empty queue takes any frame
    assert q.push_media(frame("k1"), 7, VIDEO, True, 0.0) is True
    assert q.push_media(frame("d2"), 7, VIDEO, False, 0.0) is False  # gap: skipped
    assert [d[:2] for d in drain(q)] == [b"k0"]


def test_control_is_never_dropped_but_overflow_is_flagged() -> None:
    overflows = []
    q = OutQueue(
        high_water=1 * KB,
        hard_limit=2 * KB,
        control_cap=10 * KB,
        on_overflow=lambda: overflows.append(1),
    )
    for i in range(10):
        assert q.push_control(frame(f"c{i}")) is True
        q.push_media(frame(f"d{i}"), 7, VIDEO, False, 0.0)
    assert not q.overflowed
    assert q.push_control(b"one byte too many") is False
    assert q.overflowed and overflows == [1]
    assert q.push_control(b"more") is False
    assert overflows == [1]
    # after overflow the receiver is being disconnected: its backlog is let go at once
    # (not on the next event loop turn) and nothing more is queued
    assert (q.control_bytes, q.media_bytes, len(q)) == (0, 0, 0)
    assert q.push_media(frame("k"), 7, VIDEO, True, 0.0) is False
    assert drain(q) == []


def test_forget_clears_skip_state_of_a_departed_sender() -> None:
    q = OutQueue(high_water=1 * KB, hard_limit=10 * KB, control_cap=10**6)
    q.push_media(frame("d0", 2 * KB), 7, VIDEO, False, 0.0)
    assert q.push_media(frame("d1"), 7, VIDEO, False, 0.0) is True
    drain(q)
    q.forget(7)
    assert q.push_media(frame("d2"), 7, VIDEO, False, 0.0) is False
    assert drain(q) == [frame("d2")]
