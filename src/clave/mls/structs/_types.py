"""Wire types of the declared layouts (RFC 9420 section 2.1), as source emitters.

Each type emits the Python source that decodes it from ``(d, p, end)`` and
encodes it to bytes; :mod:`._layout` assembles that per declared structure.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import IntEnum
from typing import Any

from ..codec import truncated
from ..errors import DecodeError
from ._base import Decoder, Encodable, Encoder, Gen, join, namespace


def _enum_error(
    name: str, enum: type[IntEnum], unsupported: bool, reason: str
) -> Callable[[int], DecodeError]:
    def error(raw: int) -> DecodeError:
        if unsupported:
            return DecodeError(f"unsupported {name} {raw:#06x}")
        try:
            member = enum(raw)
        except ValueError:
            return DecodeError(f"invalid {name}: unknown value {raw}")
        return DecodeError(f"invalid {name}: {member.name} {reason}")

    return error


def _run_truncated(sizes: Sequence[int]) -> Callable[[int, int], DecodeError]:
    """The error of a run of fixed-size fields: it names the first field cut short."""

    def error(pos: int, end: int) -> DecodeError:
        for size in sizes:
            if pos + size > end:
                break
            pos += size
        return truncated(size, pos, end)

    return error


def dec_run(g: Gen, run: Sequence[tuple[str, str, WireType]], end: str) -> None:
    """Decode consecutive fixed-size fields ``(field, target, type)`` with one bounds check."""
    size = sum(t.size for _, _, t in run)
    q = g.tmp("q")
    g.line(f"{q} = p + {size}")
    with g.block(f"if {q} > {end}:"):
        if len(run) == 1:
            g.line(f"raise _short({size}, p, {end})")
        else:
            error = g.const(_run_truncated([t.size for _, _, t in run]), "err")
            g.line(f"raise {error}(p, {end})")
    raws = [g.tmp("raw") for _ in run]
    if len(run) == 1 and run[0][2].fmt == "B":
        g.line(f"{raws[0]} = d[p]")
    else:
        fmt = g.const(struct.Struct(">" + "".join(t.fmt for _, _, t in run)), "S")
        g.line(f"{', '.join(raws)}, = {fmt}.unpack_from(d, p)")
    g.line(f"p = {q}")
    outer = g.field
    for raw, (field, target, t) in zip(raws, run, strict=True):
        g.field = field
        t.convert(g, raw, target)
    g.field = outer


class WireType:
    """A TLS presentation-language type; subclasses emit its encode/decode source.

    Fixed-size types (``size`` > 0, ``struct`` format ``fmt``) are decoded and
    encoded in runs: one bounds check and one ``struct`` call for consecutive
    fixed-size fields.
    """

    size: int = 0
    fmt: str = ""
    rejects: bool = False
    """Fixed-size types: decoding can reject the value, so it ends a run (errors are
    raised in wire order, as when reading field by field)."""

    def py_types(self) -> tuple[type, ...]:
        """Python classes of the values (for :class:`Variant` dispatch)."""
        return ()

    def is_optional(self) -> bool:
        """True if ``None`` is a valid value."""
        return False

    def dec(self, g: Gen, target: str, end: str) -> None:
        """Statements reading a value at ``p`` (not past ``end``) into ``target``."""
        if not self.size:
            raise NotImplementedError
        dec_run(g, [(g.field, target, self)], end)

    def convert(self, g: Gen, raw: str, target: str) -> None:
        """Fixed-size types: statements turning the unpacked ``raw`` into ``target``."""
        g.line(f"{target} = {raw}")

    def check(self, g: Gen, value: str) -> None:
        """Fixed-size types: statements validating ``value`` before it is packed."""

    def enc(self, g: Gen, value: str) -> list[str]:
        """Byte-string expressions of ``value``; statements may be emitted first."""
        return [self.expr(g, value)]

    def expr(self, g: Gen, value: str) -> str:
        """A single byte-string expression of ``value`` (no statements)."""
        if self.size:
            self.check(g, value)
            return f"{g.const(struct.Struct('>' + self.fmt), 'S')}.pack({value})"
        encode, _decode = compile_type(self, g.owner)
        return f"{g.const(encode, 'enc')}({value})"


class Uint(WireType):
    """``uint8`` .. ``uint64``, big-endian."""

    def __init__(self, size: int, fmt: str) -> None:
        self.size = size
        self.fmt = fmt

    def py_types(self) -> tuple[type, ...]:
        return (int,)


U8 = Uint(1, "B")
U16 = Uint(2, "H")
U32 = Uint(4, "I")
U64 = Uint(8, "Q")


class ClosedEnum(Uint):
    """An integer that must be a member of ``enum`` (of ``only``, when given).

    Unknown values raise ``invalid <field>: unknown value N`` or, with
    ``unsupported=True`` (an open IANA registry of which only some values can
    be parsed), ``unsupported <field> 0xNNNN``; members left out of ``only``
    raise ``invalid <field>: <member> <reason>``. ``name`` overrides the field
    name in messages (dotted: used as is).
    """

    def __init__(
        self,
        enum: type[IntEnum],
        width: Uint = U8,
        *,
        only: Iterable[IntEnum] | None = None,
        reason: str = "",
        unsupported: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(width.size, width.fmt)
        self.rejects = True
        self.enum = enum
        self.members = {int(m): m for m in (enum if only is None else only)}
        self.reason = reason
        self.unsupported = unsupported
        self.name = name

    def convert(self, g: Gen, raw: str, target: str) -> None:
        field = g.qualify(self.name or g.field)
        error = g.const(_enum_error(field, self.enum, self.unsupported, self.reason), "err")
        g.line(f"{target} = {g.const(self.members, 'M')}.get({raw})")
        with g.block(f"if {target} is None:"):
            g.line(f"raise {error}({raw})")


class OpenEnum(Uint):
    """An integer of an open registry: known values become ``enum`` members."""

    def __init__(self, enum: type[IntEnum], width: Uint = U16) -> None:
        super().__init__(width.size, width.fmt)
        self.members = {int(m): m for m in enum}

    def convert(self, g: Gen, raw: str, target: str) -> None:
        g.line(f"{target} = {g.const(self.members, 'M')}.get({raw}, {raw})")


class Fixed(WireType):
    """``opaque data[n]``: exactly ``n`` bytes, no length prefix."""

    def __init__(self, n: int) -> None:
        self.size = n
        self.fmt = f"{n}s"

    def py_types(self) -> tuple[type, ...]:
        return (bytes,)

    def check(self, g: Gen, value: str) -> None:
        with g.block(f"if _len({value}) != {self.size}:"):
            g.raise_("_ValueError", f"{g.field} must be {self.size} bytes")

    def expr(self, g: Gen, value: str) -> str:
        self.check(g, value)
        return value


class Opaque(WireType):
    """``opaque data<V>``: varint length, then the bytes."""

    def py_types(self) -> tuple[type, ...]:
        return (bytes,)

    def dec(self, g: Gen, target: str, end: str) -> None:
        _n, q = g.prefixed(end)
        g.line(f"{target} = d[p:{q}]")
        g.line(f"p = {q}")

    def enc(self, g: Gen, value: str) -> list[str]:
        return [g.vlen(value), value]

    def expr(self, g: Gen, value: str) -> str:
        return f"{g.vlen(value)} + {value}"


OPAQUE = Opaque()


class Uints(WireType):
    """``uintN items<V>`` as a tuple of ints, unpacked with one ``struct`` call."""

    def __init__(self, width: Uint) -> None:
        self.width = width

    def dec(self, g: Gen, target: str, end: str) -> None:
        n, q = g.prefixed(end)
        k, rest = g.tmp("k"), g.tmp("r")
        g.line(f"{k}, {rest} = divmod({n}, {self.width.size})")
        with g.block(f"if {rest}:"):
            message = f"{g.qualify(g.field)} length is not a multiple of {self.width.size}"
            g.raise_("_DecodeError", message)
        g.line(f'{target} = _unpack_from(">%d{self.width.fmt}" % {k}, d, p)')
        g.line(f"p = {q}")

    def expr(self, g: Gen, value: str) -> str:
        return f'_pack_uints("{self.width.fmt}", {value})'


class Vector(WireType):
    """``T items<V>`` as a tuple: varint byte length, then items filling it exactly."""

    def __init__(self, item: WireLike) -> None:
        self.item = wire_type(item)

    def dec(self, g: Gen, target: str, end: str) -> None:
        _n, q = g.prefixed(end, "_short_vector")
        items, x = g.tmp("items"), g.tmp("x")
        g.line(f"{items} = []")
        with g.block(f"while p < {q}:"):
            self.item.dec(g, x, q)
            g.line(f"{items}.append({x})")
        g.line(f"{target} = _tuple({items})")

    def _body(self, g: Gen, value: str) -> str:
        if isinstance(self.item, StructType) and not self.item.args:
            return f'b"".join(map({self.item.encoder(g)}, {value}))'
        it = g.tmp("it")
        return f'b"".join([{self.item.expr(g, it)} for {it} in {value}])'

    def enc(self, g: Gen, value: str) -> list[str]:
        body = g.tmp("body")
        g.line(f"{body} = {self._body(g, value)}")
        return [g.vlen(body), body]

    def expr(self, g: Gen, value: str) -> str:
        return f"_pfx({self._body(g, value)})"


class Optional(WireType):
    """``optional<T>``: presence octet 0 or 1, then the value when present."""

    def __init__(self, item: WireLike) -> None:
        self.item = wire_type(item)

    def is_optional(self) -> bool:
        return True

    def dec(self, g: Gen, target: str, end: str) -> None:
        flag = g.tmp("flag")
        with g.block(f"if p >= {end}:"):
            g.line(f"raise _short(1, p, {end})")
        g.line(f"{flag} = d[p]")
        g.line("p += 1")
        with g.block(f"if {flag} == 0:"):
            g.line(f"{target} = None")
        with g.block(f"elif {flag} == 1:"):
            self.item.dec(g, target, end)
        with g.block("else:"):
            g.raise_("_DecodeError", "invalid optional presence octet %s", flag)

    def expr(self, g: Gen, value: str) -> str:
        return f'(b"\\x00" if {value} is None else b"\\x01" + {self.item.expr(g, value)})'


class StructType(WireType):
    """A nested declared structure; ``args`` give its decode parameters as paths."""

    def __init__(self, cls: type[Encodable], args: Mapping[str, str] | None = None) -> None:
        if "__wire__" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} has no declared layout (yet)")
        self.cls = cls
        self.args = dict(args or {})
        if set(self.args) != set(cls.__wire_params__):
            raise TypeError(f"{cls.__name__} takes the parameters {cls.__wire_params__}")

    def py_types(self) -> tuple[type, ...]:
        return (self.cls,)

    def encoder(self, g: Gen) -> str:
        return g.const(self.cls.__wire__.encode, "enc")

    def dec(self, g: Gen, target: str, end: str) -> None:
        decode = g.const(self.cls.__wire__.decode, "dec")
        args = "".join(f", {g.path(self.args[p])}" for p in self.cls.__wire_params__)
        g.line(f"{target}, p = {decode}(d, p, {end}{args})")

    def expr(self, g: Gen, value: str) -> str:
        args = "".join(f", {g.path(self.args[p])}" for p in self.cls.__wire_encode_params__)
        return f"{self.encoder(g)}({value}{args})"


def Nested(cls: type[Encodable], **args: str) -> StructType:
    """A nested structure with decode parameters, e.g. ``Nested(A, content_type="c.type")``."""
    return StructType(cls, args)


class Variant(WireType):
    """A value of one of several types; its Python type selects the arm.

    ``tag`` is written before the value (``tag_name`` names it in messages,
    relative to the structure unless dotted). With ``by`` (a path, typically a
    decode parameter) there is no tag on the wire and decoding takes the arm
    from that value.
    """

    def __init__(
        self,
        tag_name: str,
        tag: ClosedEnum | None,
        arms: Mapping[Any, WireLike],
        *,
        by: str | None = None,
    ) -> None:
        if (tag is None) == (by is None):
            raise TypeError("a Variant takes exactly one of a tag type and `by`")
        self.tag_name = tag_name
        self.tag = tag
        self.by = by
        self.arms = {key: wire_type(t) for key, t in arms.items()}
        self.dispatch: dict[type, IntEnum] = {}
        for key, t in self.arms.items():
            for py in t.py_types():
                if py in self.dispatch:
                    raise TypeError(f"{py.__name__} selects two arms of {tag_name}")
                self.dispatch[py] = key
        if len(set(self.dispatch.values())) != len(self.arms):
            raise TypeError(f"an arm of {tag_name} has no Python type to dispatch on")

    def py_types(self) -> tuple[type, ...]:
        return tuple(self.dispatch)

    def _arm_of(self, what: str) -> Callable[[object], IntEnum]:
        """Fallback dispatch for subclasses of the arms' types."""
        dispatch = self.dispatch

        def arm_of(value: object) -> IntEnum:
            for py, key in dispatch.items():
                if isinstance(value, py):
                    return key
            raise ValueError(f"cannot encode a {type(value).__name__} as {what}")

        return arm_of

    def dec(self, g: Gen, target: str, end: str) -> None:
        if self.tag is not None:
            tag = g.tmp("tag")
            dec_run(g, [(self.tag_name, tag, self.tag)], end)
        else:
            assert self.by is not None
            tag = g.path(self.by)
        for i, (key, t) in enumerate(self.arms.items()):
            with g.branch(i, f"{tag} == {g.const(key, 'tag')}"):
                t.dec(g, target, end)
        with g.block("else:"):
            g.raise_("_DecodeError", f"invalid {g.qualify(self.tag_name)}: unknown value %s", tag)

    def enc(self, g: Gen, value: str) -> list[str]:
        arm, out = g.tmp("arm"), g.tmp("s")
        g.line(f"{arm} = {g.const(self.dispatch, 'D')}.get(_type({value}))")
        with g.block(f"if {arm} is None:"):
            g.line(f"{arm} = {g.const(self._arm_of(g.qualify(self.tag_name)), 'f')}({value})")
        for i, (key, t) in enumerate(self.arms.items()):
            with g.branch(i, f"{arm} == {g.const(key, 'tag')}"):
                pieces = t.enc(g, value)
                if self.tag is not None:
                    pieces = [g.const(struct.pack(">" + self.tag.fmt, key), "b"), *pieces]
                g.line(f"{out} = {join(pieces)}")
        return [out]


class When(WireType):
    """A field present iff the value at ``path`` is one of ``values``; None when absent.

    Encoding checks that presence matches (``<field> must be present exactly
    <doc>``), except when ``path`` is a decode parameter that the caller did not
    pass: then the field is written iff it is not None.
    """

    def __init__(self, path: str, values: Iterable[int], item: WireLike, doc: str) -> None:
        self.path = path
        self.values = frozenset(values)
        self.item = wire_type(item)
        self.doc = doc

    def is_optional(self) -> bool:
        return True

    def dec(self, g: Gen, target: str, end: str) -> None:
        with g.block(f"if {g.path(self.path)} in {g.const(self.values, 'V')}:"):
            self.item.dec(g, target, end)
        with g.block("else:"):
            g.line(f"{target} = None")

    def enc(self, g: Gen, value: str) -> list[str]:
        source = g.path(self.path)
        present = f"({source} in {g.const(self.values, 'V')})"
        guard = f"{source} is not None and " if self.path in g.params else ""
        with g.block(f"if {guard}({value} is not None) != {present}:"):
            g.raise_("_ValueError", f"{g.field} must be present exactly {self.doc}")
        out = g.tmp("s")
        g.line(f'{out} = b"" if {value} is None else {self.item.expr(g, value)}')
        return [out]


class Checked(WireType):
    """``item`` with invariants: ``decode(value)`` / ``encode(value)`` raise on violation."""

    def __init__(
        self,
        item: WireLike,
        *,
        decode: Callable[[Any], None] | None = None,
        encode: Callable[[Any], None] | None = None,
    ) -> None:
        self.item = wire_type(item)
        self.on_decode = decode
        self.on_encode = encode

    def py_types(self) -> tuple[type, ...]:
        return self.item.py_types()

    def dec(self, g: Gen, target: str, end: str) -> None:
        self.item.dec(g, target, end)
        if self.on_decode is not None:
            g.line(f"{g.const(self.on_decode, 'chk')}({target})")

    def enc(self, g: Gen, value: str) -> list[str]:
        if self.on_encode is not None:
            g.line(f"{g.const(self.on_encode, 'chk')}({value})")
        return self.item.enc(g, value)


class ZeroPadding(WireType):
    """The rest of the input as zero octets; the value is their count (last field only)."""

    def dec(self, g: Gen, target: str, end: str) -> None:
        pad = g.tmp("pad")
        g.line(f"{pad} = d[p:{end}]")
        with g.block(f"if {pad}.count(0) != _len({pad}):"):
            g.raise_("_DecodeError", f"{g.owner} padding contains non-zero bytes")
        g.line(f"{target} = _len({pad})")
        g.line(f"p = {end}")

    def enc(self, g: Gen, value: str) -> list[str]:
        with g.block(f"if {value} < 0:"):
            g.raise_("_ValueError", f"{g.field} length must be non-negative")
        return [f"bytes({value})"]


WireLike = WireType | type[Encodable]
Field = tuple[str, WireLike]


def wire_type(t: WireLike) -> WireType:
    """``t`` itself, or a declared structure class as a :class:`WireType`."""
    if isinstance(t, WireType):
        return t
    if isinstance(t, type) and issubclass(t, Encodable):
        return StructType(t)
    raise TypeError(f"not a wire type: {t!r}")


class Select:
    """``select (tag) { case value: fields }``: the fields carried for each tag value.

    ``tag`` is an earlier field (possibly derived) or a decode parameter. A
    field missing from the selected arm decodes to its dataclass default and,
    with ``strict`` (the default), must be unset (None, empty) when encoding;
    fields of the arm that cannot be None must be set.
    """

    def __init__(
        self, tag: str, arms: Mapping[Any, Sequence[Field]], *, strict: bool = True
    ) -> None:
        self.tag = tag
        self.arms = {key: [(n, wire_type(t)) for n, t in items] for key, items in arms.items()}
        self.strict = strict
        self.names = list(dict.fromkeys(n for items in self.arms.values() for n, _ in items))


Item = Field | Select


def compile_type(t: WireLike, owner: str) -> tuple[Encoder, Decoder]:
    """Standalone ``encode(value) -> bytes`` and ``decode(data, pos, end) -> (value, pos)``
    for one wire type; ``owner`` names it in error messages."""
    wt = wire_type(t)
    ns = namespace(owner)
    enc = Gen(owner, ns)
    enc.line(f"return {join(wt.enc(enc, 'x'))}")
    dec = Gen(owner, ns)
    wt.dec(dec, "x", "e")
    dec.line("return x, p")
    source = enc.source("def encode(x):", wrap_overflow=True) + "\n\n\n"
    source += dec.source("def decode(d, p, e):") + "\n"
    exec(compile(source, f"<layout {owner}>", "exec"), ns)
    return ns["encode"], ns["decode"]
