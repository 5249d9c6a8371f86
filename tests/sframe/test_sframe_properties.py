"""Property tests (hypothesis) of SFrame headers and protect/unprotect (RFC 9605)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clave.sframe import (
    MAX_VALUE,
    SUITES,
    AuthenticationError,
    CipherSuite,
    HeaderError,
    InvalidInputError,
    MLSKeyManager,
    Receiver,
    Sender,
    SFrameError,
    UnknownKeyError,
    decode_header,
    encode_header,
)

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALL_SUITES = sorted(SUITES.values(), key=lambda s: s.id)
suites = st.sampled_from(ALL_SUITES)
u64 = st.integers(min_value=0, max_value=MAX_VALUE)
# Values around every byte-length boundary are the interesting ones.
boundary_u64 = st.one_of(
    u64,
    st.integers(min_value=0, max_value=9),
    st.builds(
        lambda n, d: max(0, min(MAX_VALUE, (1 << (8 * n)) + d)),
        st.integers(min_value=1, max_value=8),
        st.integers(min_value=-2, max_value=1),
    ),
)
payloads = st.binary(max_size=300)
metadatas = st.binary(max_size=40)


def _byte_len(v: int) -> int:
    return (v.bit_length() + 7) // 8


# -- header (section 4.3) ------------------------------------------------------


@SETTINGS
@given(kid=boundary_u64, ctr=boundary_u64, tail=st.binary(max_size=8))
def test_header_round_trip_and_length(kid: int, ctr: int, tail: bytes) -> None:
    encoded = encode_header(kid, ctr)
    expected_len = 1 + (0 if kid < 8 else _byte_len(kid)) + (0 if ctr < 8 else _byte_len(ctr))
    assert len(encoded) == expected_len
    assert decode_header(encoded + tail) == (kid, ctr, len(encoded))
    # Every strict prefix that still has a config byte is truncated.
    for cut in range(1, len(encoded)):
        with pytest.raises(HeaderError):
            decode_header(encoded[:cut])


def test_header_rejects_empty_non_minimal_and_out_of_range() -> None:
    with pytest.raises(HeaderError):
        decode_header(b"")
    with pytest.raises(HeaderError, match="non-minimal KID"):
        decode_header(bytes([0x80, 0x05]))  # KID 5 must live in the config byte
    with pytest.raises(HeaderError, match="non-minimal KID"):
        decode_header(bytes([0x90, 0x00, 0xFF]))  # leading zero byte
    with pytest.raises(HeaderError, match="non-minimal CTR"):
        decode_header(bytes([0x08, 0x07]))
    with pytest.raises(HeaderError, match="non-minimal CTR"):
        decode_header(bytes([0x09, 0x00, 0x08]))
    for bad in (-1, MAX_VALUE + 1, 2**80):
        with pytest.raises(HeaderError):
            encode_header(bad, 0)
        with pytest.raises(HeaderError):
            encode_header(0, bad)


@FUZZ
@given(data=st.binary(max_size=20))
def test_header_decoder_total(data: bytes) -> None:
    """Random bytes either decode (and re-encode to the same prefix) or raise HeaderError."""
    try:
        kid, ctr, length = decode_header(data)
    except HeaderError:
        return
    assert encode_header(kid, ctr) == data[:length]


# -- protect / unprotect -----------------------------------------------------------


def _pair(suite: CipherSuite, kid: int, base_key: bytes) -> tuple[Sender, Receiver]:
    sender = Sender(suite)
    sender.add_key(kid, base_key)
    receiver = Receiver(suite)
    receiver.add_key(kid, base_key)
    return sender, receiver


@SETTINGS
@given(
    suite=suites,
    kid=boundary_u64,
    start=boundary_u64,
    base_key=st.binary(min_size=1, max_size=64),
    frames=st.lists(st.tuples(metadatas, payloads), min_size=1, max_size=4),
)
def test_round_trip_every_suite(
    suite: CipherSuite,
    kid: int,
    start: int,
    base_key: bytes,
    frames: list[tuple[bytes, bytes]],
) -> None:
    assume(start + len(frames) - 1 <= MAX_VALUE)
    sender = Sender(suite)
    sender.add_key(kid, base_key, initial_counter=start)
    receiver = Receiver(suite)
    receiver.add_key(kid, base_key)
    for i, (metadata, plaintext) in enumerate(frames):
        ct = sender.protect(kid, metadata, plaintext)
        header = encode_header(kid, start + i)
        assert ct.startswith(header)
        assert len(ct) == len(header) + len(plaintext) + suite.nt
        out = receiver.unprotect(ct, metadata)
        assert out == (kid, start + i, plaintext)


@SETTINGS
@given(
    suite=suites,
    kid=u64,
    metadata=metadatas,
    plaintext=payloads,
    data=st.data(),
)
def test_any_single_bit_flip_is_rejected(
    suite: CipherSuite, kid: int, metadata: bytes, plaintext: bytes, data: st.DataObject
) -> None:
    base_key = b"\x01" * 16
    sender, receiver = _pair(suite, kid, base_key)
    sender.protect(kid, b"", b"")  # move the counter so CTR is not always 0
    ct = sender.protect(kid, metadata, plaintext)
    total_bits = 8 * (len(ct) + len(metadata))
    bit = data.draw(st.integers(min_value=0, max_value=total_bits - 1), label="bit")
    if bit < 8 * len(ct):
        forged = bytearray(ct)
        forged[bit // 8] ^= 1 << (bit % 8)
        forged_ct, forged_md = bytes(forged), metadata
    else:
        bit -= 8 * len(ct)
        md = bytearray(metadata)
        md[bit // 8] ^= 1 << (bit % 8)
        forged_ct, forged_md = ct, bytes(md)
    with pytest.raises(SFrameError) as info:
        receiver.unprotect(forged_ct, forged_md)
    assert isinstance(info.value, HeaderError | UnknownKeyError | AuthenticationError)
    # The forgery did not disturb the replay window: the genuine frame decrypts.
    assert receiver.unprotect(ct, metadata)[2] == plaintext


@FUZZ
@given(
    suite=suites,
    prefix=st.sampled_from([b"", b"\x00", b"\x17", b"\x88", b"\x90\x2a", b"\xff"]),
    blob=st.binary(max_size=64),
    metadata=st.binary(max_size=8),
)
def test_random_bytes_raise_only_sframe_errors(
    suite: CipherSuite, prefix: bytes, blob: bytes, metadata: bytes
) -> None:
    receiver = Receiver(suite)
    for kid in (0, 1, 7, 8, 0x2A, 0x1234, MAX_VALUE):
        receiver.add_key(kid, b"k" * 16)
    with contextlib.suppress(SFrameError):
        receiver.unprotect(prefix + blob, metadata)


@pytest.mark.parametrize(
    "data, metadata",
    [
        ("not bytes", b""),
        (None, b""),
        (12345, b""),
        ([1, 2, 3], b""),
        (b"\x00" + b"\x00" * 20, "str metadata"),
        (b"\x00" + b"\x00" * 20, None),
        (b"\x00" + b"\x00" * 20, 7),
    ],
)
def test_wrong_types_raise_sframe_errors(data: object, metadata: object) -> None:
    receiver = Receiver(4)
    receiver.add_key(0, b"k" * 16)
    with pytest.raises(SFrameError) as info:
        receiver.unprotect(data, metadata)  # type: ignore[arg-type]
    assert isinstance(info.value, InvalidInputError | AuthenticationError)


@FUZZ
@given(blob=st.binary(max_size=64), epoch_bits=st.integers(min_value=0, max_value=8))
def test_random_bytes_mls_manager_only_sframe_errors(blob: bytes, epoch_bits: int) -> None:
    manager = MLSKeyManager(4, epoch_bits, clock=lambda: 0.0)
    manager.set_epoch(3, lambda label, ctx, n: bytes(n), 1, 4)
    with contextlib.suppress(SFrameError):
        manager.unprotect(blob, b"")


def test_non_bytes_like_inputs_are_accepted() -> None:
    sender, receiver = _pair(SUITES[4], 300, b"k" * 16)
    ct = sender.protect(300, bytearray(b"md"), memoryview(b"payload"))
    assert receiver.unprotect(memoryview(bytearray(ct)), bytearray(b"md"))[2] == b"payload"
