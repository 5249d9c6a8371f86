"""TLS presentation language codec with MLS variable-size vectors (RFC 9420 section 2.1).

Fixed-width integers are big-endian. Variable-size vectors carry a length
prefix in the QUIC-style varint of RFC 9420 section 2.1.2 (1, 2 or 4 bytes,
minimal encoding required). ``optional<T>`` is a presence octet (0 or 1)
followed by ``T`` when present.

Besides :class:`Writer` / :class:`Reader`, the module has position-based
primitives (:func:`read_varint`, :func:`truncated`, :func:`varint_prefix`) for
decoders that work on ``(data, pos, end)`` directly, such as the ones that
:mod:`clave.mls.structs` generates from its declared layouts; the Reader uses
the same primitives, so both report malformed input identically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from .errors import DecodeError

T = TypeVar("T")

MAX_VARINT = (1 << 30) - 1


def encode_varint(n: int) -> bytes:
    """Encode a vector length as an MLS varint (RFC 9420 section 2.1.2)."""
    if n < 0:
        raise ValueError("varint must be non-negative")
    if n < 1 << 6:
        return n.to_bytes(1, "big")
    if n < 1 << 14:
        return (n | 0x4000).to_bytes(2, "big")
    if n < 1 << 30:
        return (n | 0x80000000).to_bytes(4, "big")
    raise ValueError(f"length {n} does not fit in an MLS varint")


SHORT_VARINTS: tuple[bytes, ...] = tuple(encode_varint(n) for n in range(1 << 14))
"""``SHORT_VARINTS[n]`` is the varint of every ``n < 2**14`` (the 1- and 2-byte forms)."""


def varint_prefix(n: int) -> bytes:
    """The varint length prefix of an ``n``-byte vector."""
    return SHORT_VARINTS[n] if 0 <= n < 1 << 14 else encode_varint(n)


def truncated(n: int, pos: int, end: int) -> DecodeError:
    """The error for a read of ``n`` bytes at ``pos`` past ``end``."""
    return DecodeError(f"truncated input: need {n} bytes at offset {pos}, have {end - pos}")


def truncated_vector(n: int, pos: int, end: int) -> DecodeError:
    """The error for a vector of ``n`` bytes at ``pos`` running past ``end``."""
    return DecodeError(f"truncated vector: length {n} at offset {pos}, have {end - pos}")


def read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode an MLS varint at ``pos``: ``(value, next position)``.

    Rejects the reserved prefix 0b11 and non-minimal forms (RFC 9420 section 2.1.2).
    """
    if pos >= end:
        raise truncated(1, pos, end)
    first = data[pos]
    prefix = first >> 6
    if prefix == 0:
        return first, pos + 1
    if prefix == 3:
        raise DecodeError("invalid varint: reserved two-bit prefix 0b11")
    stop = pos + (1 << prefix)
    if stop > end:
        raise truncated(1, end, end)
    value = int.from_bytes(data[pos:stop], "big") & 0x3FFFFFFF
    if prefix == 1:
        value &= 0x3FFF
        if value < 1 << 6:
            raise DecodeError(f"invalid varint: value {value} not minimally encoded")
    elif value < 1 << 14:
        raise DecodeError(f"invalid varint: value {value} not minimally encoded")
    return value, stop


class Writer:
    """Accumulates an encoding. Methods return ``self`` for chaining."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def raw(self, data: bytes) -> Writer:
        self._parts.append(bytes(data))
        return self

    def u8(self, v: int) -> Writer:
        self._parts.append(v.to_bytes(1, "big"))
        return self

    def u16(self, v: int) -> Writer:
        self._parts.append(v.to_bytes(2, "big"))
        return self

    def u32(self, v: int) -> Writer:
        self._parts.append(v.to_bytes(4, "big"))
        return self

    def u64(self, v: int) -> Writer:
        self._parts.append(v.to_bytes(8, "big"))
        return self

    def opaque(self, data: bytes) -> Writer:
        """``opaque data<V>``: varint length then the bytes."""
        self._parts.append(varint_prefix(len(data)))
        self._parts.append(bytes(data))
        return self

    def vector(self, items: Iterable[T], encode: Callable[[Writer, T], object]) -> Writer:
        """``T items<V>``: varint byte length then each item's encoding."""
        inner = Writer()
        for item in items:
            encode(inner, item)
        return self.opaque(inner.finish())

    def optional(self, item: T | None, encode: Callable[[Writer, T], object]) -> Writer:
        """``optional<T>``: presence octet then the value (RFC 9420 section 2.1.3)."""
        if item is None:
            return self.u8(0)
        self.u8(1)
        encode(self, item)
        return self

    def boolean(self, v: bool) -> Writer:
        return self.u8(1 if v else 0)

    def finish(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Consumes an encoding; every short read or malformed field raises DecodeError."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self._data = data if type(data) is bytes else bytes(data)
        self._pos = pos
        self._end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    @property
    def position(self) -> int:
        return self._pos

    def raw(self, n: int) -> bytes:
        stop = self._pos + n
        if n < 0 or stop > self._end:
            raise truncated(n, self._pos, self._end)
        out = self._data[self._pos : stop]
        self._pos = stop
        return out

    def _uint(self, n: int) -> int:
        return int.from_bytes(self.raw(n), "big")

    def u8(self) -> int:
        pos = self._pos
        if pos >= self._end:
            raise truncated(1, pos, self._end)
        self._pos = pos + 1
        return self._data[pos]

    def u16(self) -> int:
        return self._uint(2)

    def u32(self) -> int:
        return self._uint(4)

    def u64(self) -> int:
        return self._uint(8)

    def varint(self) -> int:
        """Decode an MLS varint, rejecting the reserved prefix and non-minimal forms."""
        value, self._pos = read_varint(self._data, self._pos, self._end)
        return value

    def decode_with(self, decode: Callable[..., tuple[T, int]], *args: object) -> T:
        """Run a position-based decoder ``decode(data, pos, end, *args) -> (value, pos)``."""
        value, self._pos = decode(self._data, self._pos, self._end, *args)
        return value

    def opaque(self) -> bytes:
        return self.raw(self.varint())

    def sub(self) -> Reader:
        """Read a varint-prefixed region and return a Reader over it."""
        n = self.varint()
        if self._pos + n > self._end:
            raise truncated_vector(n, self._pos, self._end)
        r = Reader.__new__(Reader)
        r._data = self._data
        r._pos = self._pos
        r._end = self._pos + n
        self._pos += n
        return r

    def vector(self, decode: Callable[[Reader], T]) -> list[T]:
        """``T items<V>``: decode items until the vector's bytes are used up exactly."""
        r = self.sub()
        out: list[T] = []
        while r.remaining:
            out.append(decode(r))
        return out

    def optional(self, decode: Callable[[Reader], T]) -> T | None:
        flag = self.u8()
        if flag == 0:
            return None
        if flag != 1:
            raise DecodeError(f"invalid optional presence octet {flag}")
        return decode(self)

    def boolean(self) -> bool:
        v = self.u8()
        if v > 1:
            raise DecodeError(f"invalid boolean octet {v}")
        return v == 1

    def done(self, what: str = "structure") -> None:
        if self.remaining:
            raise DecodeError(f"{self.remaining} trailing bytes after {what}")


def decode_all(data: bytes, decode: Callable[[Reader], T], what: str) -> T:
    """Decode exactly one value from ``data``; trailing bytes are an error."""
    r = Reader(data)
    value = decode(r)
    r.done(what)
    return value


def encode_with(encode: Callable[[Writer, T], object], value: T) -> bytes:
    w = Writer()
    encode(w, value)
    return w.finish()


def encode_opaque_list(items: Sequence[bytes]) -> bytes:
    return Writer().vector(items, Writer.opaque).finish()
