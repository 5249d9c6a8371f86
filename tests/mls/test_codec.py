"""TLS codec with MLS varints (RFC 9420 section 2.1): unit and property tests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clave.mls.codec import (
    MAX_VARINT,
    Reader,
    Writer,
    decode_all,
    encode_opaque_list,
    encode_varint,
)
from clave.mls.errors import DecodeError


@pytest.mark.parametrize(
    ("n", "enc"),
    [
        (0, "00"),
        (63, "3f"),
        (64, "4040"),
        (16383, "7fff"),
        (16384, "80004000"),
        (MAX_VARINT, "bfffffff"),
    ],
)
def test_varint_boundaries(n: int, enc: str) -> None:
    assert encode_varint(n) == bytes.fromhex(enc)
    assert Reader(bytes.fromhex(enc)).varint() == n


@pytest.mark.parametrize("n", [-1, MAX_VARINT + 1, 1 << 40])
def test_varint_out_of_range_encode(n: int) -> None:
    with pytest.raises(ValueError):
        encode_varint(n)


@pytest.mark.parametrize(
    "enc",
    [
        "4000",  # 0 in two bytes
        "403f",  # 63 in two bytes
        "80000000",  # 0 in four bytes
        "80003fff",  # 16383 in four bytes
        "c0",  # reserved 0b11 prefix
        "c000000000000000",
        "ff",
    ],
)
def test_varint_rejects_non_minimal_and_reserved(enc: str) -> None:
    with pytest.raises(DecodeError):
        Reader(bytes.fromhex(enc)).varint()


@pytest.mark.parametrize("enc", ["", "40", "80", "8000", "800000"])
def test_varint_truncated(enc: str) -> None:
    with pytest.raises(DecodeError):
        Reader(bytes.fromhex(enc)).varint()


@given(st.integers(0, MAX_VARINT))
def test_varint_round_trip(n: int) -> None:
    enc = encode_varint(n)
    assert len(enc) == (1 if n < 64 else 2 if n < 1 << 14 else 4)
    r = Reader(enc)
    assert r.varint() == n
    assert r.remaining == 0


@given(st.integers(0, MAX_VARINT), st.sampled_from([2, 4]))
def test_varint_non_minimal_forms_rejected(n: int, width: int) -> None:
    minimal = len(encode_varint(n))
    if width <= minimal:
        return
    prefix = {2: 0x4000, 4: 0x80000000}[width]
    with pytest.raises(DecodeError):
        Reader((n | prefix).to_bytes(width, "big")).varint()


Record = tuple[int, int, int, int, bytes, list[bytes], bytes | None, bool]


def _encode_record(w: Writer, rec: Record) -> None:
    a, b, c, d, blob, items, opt, flag = rec
    w.u8(a).u16(b).u32(c).u64(d).opaque(blob).vector(items, Writer.opaque)
    w.optional(opt, Writer.opaque).boolean(flag)


def _decode_record(r: Reader) -> Record:
    return (
        r.u8(),
        r.u16(),
        r.u32(),
        r.u64(),
        r.opaque(),
        r.vector(Reader.opaque),
        r.optional(Reader.opaque),
        r.boolean(),
    )


records = st.tuples(
    st.integers(0, 0xFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, (1 << 64) - 1),
    st.binary(max_size=300),
    st.lists(st.binary(max_size=70), max_size=8),
    st.none() | st.binary(max_size=20),
    st.booleans(),
)


@given(records)
def test_record_round_trip(rec: Any) -> None:
    w = Writer()
    _encode_record(w, rec)
    data = w.finish()
    assert decode_all(data, _decode_record, "record") == rec


@given(records, st.data())
def test_truncation_raises_decode_error_only(rec: Any, data: st.DataObject) -> None:
    w = Writer()
    _encode_record(w, rec)
    enc = w.finish()
    cut = data.draw(st.integers(0, len(enc) - 1))
    with pytest.raises(DecodeError):
        decode_all(enc[:cut], _decode_record, "record")


@given(records, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_rejected(rec: Any, extra: bytes) -> None:
    w = Writer()
    _encode_record(w, rec)
    with pytest.raises(DecodeError):
        decode_all(w.finish() + extra, _decode_record, "record")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(blob: bytes) -> None:
    # Any exception other than DecodeError propagates and fails the test.
    with contextlib.suppress(DecodeError):
        decode_all(blob, _decode_record, "record")


def test_vector_must_be_consumed_exactly() -> None:
    # vector<V> of opaque items whose byte length cuts an item in half
    inner = Writer().opaque(b"abc").finish()  # 04 'abc'
    bad = encode_varint(len(inner) - 1) + inner[:-1]
    with pytest.raises(DecodeError):
        Reader(bad).vector(Reader.opaque)
    # a length prefix longer than the data
    with pytest.raises(DecodeError):
        Reader(encode_varint(10) + b"abc").opaque()
    with pytest.raises(DecodeError):
        Reader(encode_varint(10) + b"abc").sub()


@pytest.mark.parametrize(
    ("method", "data"),
    [
        (Reader.optional, b"\x02"),
        (Reader.boolean, b"\x02"),
    ],
)
def test_bad_presence_and_boolean_octets(method: Callable[..., Any], data: bytes) -> None:
    r = Reader(data)
    with pytest.raises(DecodeError):
        if method is Reader.optional:
            r.optional(Reader.opaque)
        else:
            r.boolean()


def test_sub_reader_is_bounded() -> None:
    r = Reader(encode_varint(2) + b"ab" + b"cd")
    sub = r.sub()
    assert sub.raw(2) == b"ab"
    with pytest.raises(DecodeError):
        sub.u8()
    assert r.raw(2) == b"cd"
    r.done()


def test_encode_opaque_list() -> None:
    assert encode_opaque_list([b"a", b""]) == bytes([3, 1]) + b"a" + bytes([0])
    assert Reader(encode_opaque_list([b"a", b""])).vector(Reader.opaque) == [b"a", b""]


def test_writer_rejects_out_of_range_integers() -> None:
    with pytest.raises(OverflowError):
        Writer().u8(256)
    with pytest.raises(OverflowError):
        Writer().u16(-1)
