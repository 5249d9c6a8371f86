"""Sender/receiver state: replay window, key rotation grace period, counters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clave.sframe import (
    AES_128_CTR_HMAC_SHA256_32,
    AES_128_GCM_SHA256_128,
    MAX_VALUE,
    ConfigurationError,
    CounterExhaustedError,
    CounterOutOfWindowError,
    HeaderError,
    InvalidInputError,
    Receiver,
    ReplayError,
    ReplayWindow,
    Sender,
    SFrameContext,
    SFrameError,
    UnknownKeyError,
    UnsupportedCipherSuiteError,
    decode_header,
    get_suite,
)

SUITE = AES_128_GCM_SHA256_128
KEY = bytes(range(16))


class FakeClock:
    """Injected clock for deterministic grace-period tests."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _frames(n: int, kid: int = 9, key: bytes = KEY) -> list[bytes]:
    sender = Sender(SUITE)
    sender.add_key(kid, key)
    return [sender.protect(kid, b"md", f"frame {i}".encode()) for i in range(n)]


def _receiver(kid: int = 9, window_size: int = 16) -> Receiver:
    receiver = Receiver(SUITE, window_size=window_size)
    receiver.add_key(kid, KEY)
    return receiver


# -- replay --------------------------------------------------------------------


def test_same_frame_twice_is_a_replay() -> None:
    (frame,) = _frames(1)
    receiver = _receiver()
    assert receiver.unprotect(frame, b"md")[2] == b"frame 0"
    with pytest.raises(ReplayError, match=r"kid=9, ctr=0"):
        receiver.unprotect(frame, b"md")


def test_counter_older_than_window_is_rejected() -> None:
    frames = _frames(40)
    receiver = _receiver(window_size=16)
    receiver.unprotect(frames[30], b"md")
    receiver.unprotect(frames[15], b"md")  # 30 - 15 = 15 < 16: inside the window
    with pytest.raises(CounterOutOfWindowError, match=r"ctr=14"):
        receiver.unprotect(frames[14], b"md")
    with pytest.raises(ReplayError):  # CounterOutOfWindowError is a ReplayError
        receiver.unprotect(frames[0], b"md")


def test_out_of_order_within_window_is_accepted() -> None:
    frames = _frames(20)
    receiver = _receiver(window_size=16)
    order = [3, 0, 1, 7, 5, 4, 6, 2, 8, 19, 18, 17, 16, 9, 10, 15, 11, 14, 12, 13]
    for i in order:
        assert receiver.unprotect(frames[i], b"md")[1] == i
    for i in order:
        with pytest.raises(ReplayError):
            receiver.unprotect(frames[i], b"md")


def test_forged_frame_does_not_advance_window() -> None:
    frames = _frames(3)
    receiver = _receiver()
    forged = bytearray(frames[2])
    forged[-1] ^= 1
    with pytest.raises(SFrameError):
        receiver.unprotect(bytes(forged), b"md")
    for frame in frames:
        receiver.unprotect(frame, b"md")


def test_windows_are_per_kid() -> None:
    a, b = _frames(1, kid=9)[0], _frames(1, kid=10)[0]
    receiver = _receiver(kid=9)
    receiver.add_key(10, KEY)
    assert receiver.unprotect(a, b"md")[0] == 9
    assert receiver.unprotect(b, b"md")[0] == 10  # same CTR 0, other KID


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=70),
    base=st.sampled_from([0, 1 << 32, MAX_VALUE - 200]),
    offsets=st.lists(st.integers(min_value=0, max_value=200), max_size=80),
)
def test_replay_window_matches_model(size: int, base: int, offsets: list[int]) -> None:
    """The O(1) ring window agrees with a set-based model of RFC 3711-style replay."""
    window = ReplayWindow(size)
    seen: set[int] = set()
    top = -1
    for ctr in (base + off for off in offsets):
        if ctr > top:
            expected: type[Exception] | None = None
        elif top - ctr >= size:
            expected = CounterOutOfWindowError
        elif ctr in seen:
            expected = ReplayError
        else:
            expected = None
        if expected is None:
            window.check(ctr)
            window.accept(ctr)
            seen.add(ctr)
            top = max(top, ctr)
            assert ctr in window
        else:
            with pytest.raises(expected):
                window.check(ctr)
            with pytest.raises(expected):
                window.accept(ctr)
        assert window.highest == (None if top < 0 else top)


def test_replay_window_rejects_bad_size() -> None:
    for bad in (0, -1, 1.5):
        with pytest.raises(ConfigurationError):
            ReplayWindow(bad)  # type: ignore[arg-type]


def test_large_counter_jumps() -> None:
    window = ReplayWindow(1024)
    window.accept(MAX_VALUE - 5)
    window.accept(MAX_VALUE)
    window.accept(MAX_VALUE - 1)
    with pytest.raises(ReplayError):
        window.accept(MAX_VALUE - 5)
    with pytest.raises(CounterOutOfWindowError):
        window.accept(0)


# -- key rotation and grace period ------------------------------------------------


def test_previous_keys_usable_during_grace_period_only() -> None:
    clock = FakeClock()
    old_frames = _frames(3, kid=1, key=b"old key")
    new_frames = _frames(1, kid=2, key=b"new key")
    receiver = Receiver(SUITE, clock=clock)  # default grace period: 2.0 s
    receiver.add_key(1, b"old key")
    receiver.unprotect(old_frames[0], b"md")

    receiver.rotate({2: b"new key"})
    assert receiver.unprotect(new_frames[0], b"md")[0] == 2
    clock.now += 1.999
    assert receiver.unprotect(old_frames[1], b"md")[2] == b"frame 1"
    clock.now += 0.002
    with pytest.raises(UnknownKeyError, match="kid=1"):
        receiver.unprotect(old_frames[2], b"md")
    assert 1 not in receiver
    assert 2 in receiver


def test_only_one_previous_generation_is_kept() -> None:
    clock = FakeClock()
    receiver = Receiver(SUITE, clock=clock, grace_period=5.0)
    receiver.add_key(1, b"gen1")
    receiver.rotate({2: b"gen2"})
    receiver.rotate({3: b"gen3"})
    assert 1 not in receiver and 2 in receiver and 3 in receiver
    with pytest.raises(UnknownKeyError):
        receiver.unprotect(_frames(1, kid=1, key=b"gen1")[0], b"md")


def test_zero_grace_period_drops_previous_keys_at_once() -> None:
    receiver = Receiver(SUITE, grace_period=0.0)
    receiver.add_key(1, KEY)
    receiver.rotate({2: KEY})
    assert 1 not in receiver


def test_rotate_with_grace_needs_a_clock() -> None:
    receiver = Receiver(SUITE)
    receiver.add_key(1, KEY)
    with pytest.raises(ConfigurationError):
        receiver.rotate()


def test_removed_key_is_unknown() -> None:
    (frame,) = _frames(1)
    receiver = _receiver()
    receiver.remove_key(9)
    with pytest.raises(UnknownKeyError, match="kid=9"):
        receiver.unprotect(frame, b"md")


# -- sender counters --------------------------------------------------------------


def test_counter_exhaustion_raises_before_reuse() -> None:
    sender = Sender(SUITE, max_counter=10)
    sender.add_key(5, KEY)
    ctrs = [decode_header(sender.protect(5, b"", b"x"))[1] for _ in range(11)]
    assert ctrs == list(range(11))
    for _ in range(3):  # stays exhausted, never wraps
        with pytest.raises(CounterExhaustedError, match="kid=5"):
            sender.protect(5, b"", b"x")
    assert sender.next_counter(5) == 11


def test_counter_exhaustion_at_2_64() -> None:
    sender = Sender(AES_128_CTR_HMAC_SHA256_32)
    sender.add_key(MAX_VALUE, KEY, initial_counter=MAX_VALUE - 1)
    receiver = Receiver(AES_128_CTR_HMAC_SHA256_32)
    receiver.add_key(MAX_VALUE, KEY)
    for expected in (MAX_VALUE - 1, MAX_VALUE):
        _, ctr, _ = receiver.unprotect(sender.protect(MAX_VALUE, b"", b"x"), b"")
        assert ctr == expected
    with pytest.raises(CounterExhaustedError):
        sender.protect(MAX_VALUE, b"", b"x")


def test_counter_exhaustion_with_small_max() -> None:
    sender = Sender(SUITE, max_counter=0)
    sender.add_key(0, KEY)
    sender.protect(0, b"", b"")
    with pytest.raises(CounterExhaustedError):
        sender.protect(0, b"", b"")


def test_counters_cross_header_length_boundaries() -> None:
    sender = Sender(SUITE)
    receiver = Receiver(SUITE)
    sender.add_key(3, KEY, initial_counter=250)
    receiver.add_key(3, KEY)
    for ctr in range(250, 262):
        assert receiver.unprotect(sender.protect(3, b"", b"p"), b"")[1] == ctr
    sender.add_key(4, KEY, initial_counter=5)
    receiver.add_key(4, KEY)
    for ctr in range(5, 10):
        assert receiver.unprotect(sender.protect(4, b"", b"p"), b"")[1] == ctr


# -- key management errors --------------------------------------------------------


def test_protect_rejects_non_bytes_plaintext() -> None:
    sender = Sender(SUITE)
    sender.add_key(1, KEY)
    with pytest.raises(InvalidInputError, match="kid=1, ctr=0"):
        sender.protect(1, b"", "text")  # type: ignore[arg-type]
    assert sender.next_counter(1) == 1  # the failed attempt still consumed its CTR


def test_sender_refuses_unknown_and_duplicate_kids() -> None:
    sender = Sender(SUITE)
    with pytest.raises(UnknownKeyError):
        sender.protect(1, b"", b"")
    sender.add_key(1, KEY)
    with pytest.raises(ConfigurationError):
        sender.add_key(1, KEY)  # would restart the counter: nonce reuse
    for bad in (-1, MAX_VALUE + 1):
        with pytest.raises(ConfigurationError):
            sender.add_key(bad, KEY)
    with pytest.raises(ConfigurationError):
        sender.add_key(2, b"")


def test_context_never_uses_a_key_both_ways() -> None:
    ctx = SFrameContext(SUITE)
    ctx.add_send_key(1, KEY)
    ctx.add_recv_key(2, KEY)
    with pytest.raises(ConfigurationError):
        ctx.add_recv_key(1, KEY)
    with pytest.raises(ConfigurationError):
        ctx.add_send_key(2, KEY)
    peer = SFrameContext(SUITE)
    peer.add_recv_key(1, KEY)
    assert peer.unprotect(ctx.protect(1, b"m", b"hi"), b"m")[2] == b"hi"
    with pytest.raises(UnknownKeyError):  # our own sending KID is not a receive key
        ctx.unprotect(ctx.protect(1, b"m", b"hi"), b"m")


def test_unknown_suite() -> None:
    for bad in (0, 9, 0xF000, "4"):
        with pytest.raises(UnsupportedCipherSuiteError):
            get_suite(bad)  # type: ignore[arg-type]


def test_header_error_for_truncated_frame() -> None:
    receiver = _receiver()
    with pytest.raises(HeaderError):
        receiver.unprotect(b"", b"")
    with pytest.raises(HeaderError):
        receiver.unprotect(b"\x99\x01", b"")
