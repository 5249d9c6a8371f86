"""Runtime of the declared wire structures: base classes and the source emitter.

:class:`Encodable` / :class:`Struct` are the bases of every structure declared
with :func:`~clave.mls.structs._layout.layout`; :class:`Gen` is what the wire
types of :mod:`._types` use to emit the source of the generated functions.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, NamedTuple, TypeVar

from ..codec import (
    SHORT_VARINTS,
    Reader,
    Writer,
    encode_varint,
    read_varint,
    truncated,
    truncated_vector,
    varint_prefix,
)
from ..errors import DecodeError

_C = TypeVar("_C", bound="Encodable")

Decoder = Callable[..., tuple[Any, int]]
"""``decode(data, pos, end, *params) -> (value, next pos)``."""

Encoder = Callable[..., bytes]
"""``encode(value, *params) -> bytes``."""


class Codec(NamedTuple):
    """The generated functions of a layout."""

    encode: Encoder
    decode: Decoder
    encode_tbs: Encoder | None
    source: str


class Encodable:
    """Base of every declared structure: ``encode(w)`` / ``to_bytes()``.

    Structures whose decoding needs an outer value (a decode parameter) derive
    from this class only and define their own ``decode`` / ``from_bytes``.
    """

    __slots__ = ()
    __wire__: ClassVar[Codec]
    __wire_params__: ClassVar[tuple[str, ...]] = ()
    __wire_encode_params__: ClassVar[tuple[str, ...]] = ()
    _wire_encode: ClassVar[Encoder]
    _wire_decode: ClassVar[Decoder]

    def encode(self, w: Writer) -> None:
        w.raw(self._wire_encode(self))

    def to_bytes(self) -> bytes:
        return self._wire_encode(self)


class Struct(Encodable):
    """A self-delimiting structure: ``decode(r)`` / ``from_bytes(data)`` as well."""

    __slots__ = ()

    @classmethod
    def decode(cls: type[_C], r: Reader) -> _C:
        """Decode one value from a :class:`~clave.mls.codec.Reader`."""
        value: _C = r.decode_with(cls._wire_decode)
        return value

    @classmethod
    def from_bytes(cls: type[_C], data: bytes) -> _C:
        """Decode exactly one value; trailing bytes raise DecodeError."""
        value: _C = decode_exactly(cls._wire_decode, data, cls.__name__)
        return value


def decode_exactly(decode: Decoder, data: bytes, what: str, *args: object) -> Any:
    """Run ``decode`` over all of ``data``; trailing bytes raise DecodeError."""
    if type(data) is not bytes:
        data = bytes(data)
    end = len(data)
    value, pos = decode(data, 0, end, *args)
    if pos != end:
        raise DecodeError(f"{end - pos} trailing bytes after {what}")
    return value


def _prefixed(body: bytes) -> bytes:
    return varint_prefix(len(body)) + body


def _pack_uints(fmt: str, items: Sequence[int]) -> bytes:
    try:
        return _prefixed(struct.pack(f">{len(items)}{fmt}", *items))
    except struct.error as exc:
        raise ValueError(f"integer vector item out of range: {exc}") from None


_NAMESPACE: dict[str, Any] = {
    "_DecodeError": DecodeError,
    "_ValueError": ValueError,
    "_OverflowError": OverflowError,
    "_struct_error": struct.error,
    "_VL": SHORT_VARINTS,
    "_ev": encode_varint,
    "_varint": read_varint,
    "_short": truncated,
    "_short_vector": truncated_vector,
    "_unpack_from": struct.unpack_from,
    "_pack_uints": _pack_uints,
    "_pfx": _prefixed,
    "_tuple": tuple,
    "_type": type,
    "_len": len,
}


def namespace(owner: str) -> dict[str, Any]:
    return dict(_NAMESPACE, __name__=f"<layout {owner}>")


class Gen:
    """Emits the source of one generated function.

    ``names`` maps field and parameter names to the expressions holding their
    values (locals while decoding, ``o.<name>`` or locals while encoding);
    ``field`` is the field being emitted, for error messages.
    """

    def __init__(self, owner: str, ns: dict[str, Any], params: Sequence[str] = ()) -> None:
        self.owner = owner
        self.ns = ns
        self.params = list(params)
        self.names: dict[str, str] = {}
        self.field = owner
        self.lines: list[str] = []
        self._depth = 1
        self._count = 0

    def tmp(self, hint: str) -> str:
        self._count += 1
        return f"{hint}{self._count}"

    def const(self, value: object, hint: str) -> str:
        """A name bound to ``value`` in the generated code's namespace."""
        name = f"_{hint}{len(self.ns)}"
        self.ns[name] = value
        return name

    def line(self, text: str) -> None:
        self.lines.append("    " * self._depth + text)

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.line(header)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def branch(self, i: int, condition: str) -> AbstractContextManager[None]:
        return self.block(f"{'if' if i == 0 else 'elif'} {condition}:")

    def raise_(self, error: str, message: str, *args: str) -> None:
        """``raise error(message % args)`` with ``message`` bound as a constant."""
        text = self.const(message, "msg")
        formatted = f"{text} % ({', '.join(args)},)" if args else text
        self.line(f"raise {error}({formatted})")

    def qualify(self, name: str) -> str:
        return name if "." in name else f"{self.owner}.{name}"

    def path(self, path: str) -> str:
        """Expression of a dotted path whose root is an earlier field or a parameter."""
        root, *rest = path.split(".")
        if root not in self.names:
            raise TypeError(f"{self.owner}: {path!r} does not name an earlier field or parameter")
        return ".".join([self.names[root], *rest])

    def vlen(self, value: str) -> str:
        """Expression: the varint length prefix of the bytes in ``value``."""
        n = self.tmp("n")
        return f"(_VL[{n}] if ({n} := _len({value})) < 16384 else _ev({n}))"

    def prefixed(self, end: str, error: str = "_short") -> tuple[str, str]:
        """Statements: read a varint length ``n`` at ``p`` (1-byte form inline) and check
        that ``n`` bytes follow before ``end`` (else ``raise error(n, p, end)``).

        Returns the names holding ``n`` and the end of the region, ``p + n``.
        """
        n, q = self.tmp("n"), self.tmp("q")
        with self.block(f"if p < {end} and d[p] < 64:"):
            self.line(f"{n} = d[p]")
            self.line("p += 1")
        with self.block("else:"):
            self.line(f"{n}, p = _varint(d, p, {end})")
        self.line(f"{q} = p + {n}")
        with self.block(f"if {q} > {end}:"):
            self.line(f"raise {error}({n}, p, {end})")
        return n, q

    def source(self, header: str, wrap_overflow: bool = False) -> str:
        if not wrap_overflow:
            return header + "\n" + "\n".join(self.lines)
        body = "\n".join("    " + line for line in self.lines)
        return (
            f"{header}\n    try:\n{body}\n    except _struct_error as exc:\n"
            "        raise _OverflowError(str(exc)) from None"
        )


def join(pieces: Sequence[str]) -> str:
    if not pieces:
        return 'b""'
    if len(pieces) == 1:
        return pieces[0]
    return f'b"".join(({", ".join(pieces)}))'
