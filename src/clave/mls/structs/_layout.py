"""Declarative TLS-presentation-language layouts (RFC 9420 section 2.1).

A wire structure is declared once, as data: :func:`layout` decorates a frozen
dataclass with its fields in wire order and their wire types, and from that
list it generates the encoder and decoder of the class, once, at import time.
The wire types are

* :data:`U8`, :data:`U16`, :data:`U32`, :data:`U64`: big-endian integers;
* :class:`ClosedEnum` / :class:`OpenEnum`: an integer mapped onto an ``IntEnum``
  (unknown values rejected / kept as plain ``int``);
* :data:`OPAQUE` (``opaque<V>``), :class:`Fixed` (``opaque[N]``),
  :class:`Uints` (``uintN<V>``), :class:`Vector` (``T<V>``, a tuple),
  :class:`Optional` (``optional<T>``);
* a structure class (or :class:`Nested` to pass it decode parameters);
* :class:`Variant`: a value whose Python type selects the arm, behind a tag;
* :class:`When`, :class:`Checked`, :class:`ZeroPadding`: presence that depends
  on another field or a parameter, extra invariants, trailing zero padding;

and :class:`Select` declares the fields carried for each value of a tag field
(``select (tag) { case ...: }``). A layout name that is not a dataclass field
is *derived*: encoded from the attribute (a property) and only checked when
decoding. Dotted paths (``"content.sender.sender_type"``) name values decoded
earlier, or decode parameters.

Generated decoders work on ``(data, pos, end)`` and return ``(value, pos)``;
they raise only :class:`~clave.mls.errors.DecodeError`, with the messages of
:mod:`clave.mls.codec`. Generated encoders return the bytes and raise
``ValueError`` for inconsistent objects (``OverflowError`` for an integer out
of range). ``Cls.__wire__.source`` holds the generated source for inspection.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, fields
from typing import Any, TypeVar

from ._base import Codec, Encodable, Encoder, Gen, Struct, decode_exactly, join, namespace
from ._types import (
    OPAQUE,
    U8,
    U16,
    U32,
    U64,
    Checked,
    ClosedEnum,
    Field,
    Fixed,
    Item,
    Nested,
    OpenEnum,
    Optional,
    Select,
    Uints,
    Variant,
    Vector,
    When,
    WireLike,
    WireType,
    ZeroPadding,
    compile_type,
    dec_run,
    wire_type,
)

__all__ = [
    "OPAQUE",
    "U8",
    "U16",
    "U32",
    "U64",
    "Checked",
    "ClosedEnum",
    "Encodable",
    "Field",
    "Fixed",
    "Nested",
    "OpenEnum",
    "Optional",
    "Select",
    "Struct",
    "Uints",
    "Variant",
    "Vector",
    "When",
    "WireLike",
    "WireType",
    "ZeroPadding",
    "compile_type",
    "decode_exactly",
    "layout",
    "tbs_encoder",
]

_C = TypeVar("_C", bound=Encodable)
_Items = Sequence[tuple[str, WireType] | Select]


def _item_names(item: tuple[str, WireType] | Select) -> list[str]:
    return item.names if isinstance(item, Select) else [item[0]]


class _Compiler:
    """Generates the decoder and encoders of one declared class."""

    def __init__(self, cls: type[Encodable], items: Sequence[Item], params: Sequence[str]) -> None:
        self.cls = cls
        self.owner = cls.__name__
        self.items: list[tuple[str, WireType] | Select] = [
            i if isinstance(i, Select) else (i[0], wire_type(i[1])) for i in items
        ]
        self.params = list(params)
        self.init = [f.name for f in fields(cls) if f.init]  # type: ignore[arg-type]
        self.defaults = {
            f.name: f.default
            for f in fields(cls)  # type: ignore[arg-type]
            if f.default is not MISSING
        }
        declared = [n for item in self.items for n in _item_names(item)]
        for name in declared:
            if name not in self.init and not hasattr(cls, name):
                raise TypeError(f"{self.owner}: layout field {name!r} is not an attribute")
        missing = set(self.init).difference(declared)
        if missing:
            raise TypeError(f"{self.owner}: fields {sorted(missing)} are not in the layout")
        for item in self.items:
            if isinstance(item, Select):
                for name in item.names:
                    if name not in self.defaults:
                        raise TypeError(f"{self.owner}.{name} is in a Select but has no default")
        # decode parameters that the encoder takes as arguments (the others are attributes)
        self.encode_params = [p for p in self.params if not hasattr(cls, p)]

    # -- decode ---------------------------------------------------------------------

    def _dec_items(self, g: Gen, items: _Items, end: str, targets: Mapping[str, str]) -> None:
        run: list[tuple[str, str, WireType]] = []
        for item in items:
            if isinstance(item, Select):
                if run:
                    dec_run(g, run, end)
                    run = []
                self._dec_select(g, item, end)
                continue
            name, t = item
            target = targets.get(name) or g.tmp("f")
            if t.size:
                run.append((name, target, t))
                if t.rejects:
                    dec_run(g, run, end)
                    run = []
            else:
                if run:
                    dec_run(g, run, end)
                    run = []
                g.field = name
                t.dec(g, target, end)
            g.names[name] = target
        if run:
            dec_run(g, run, end)

    def _dec_select(self, g: Gen, sel: Select, end: str) -> None:
        tag = g.path(sel.tag)
        targets = {name: g.tmp("f") for name in sel.names}
        for i, (key, items) in enumerate(sel.arms.items()):
            with g.branch(i, f"{tag} == {g.const(key, 'tag')}"):
                present = {n for n, _ in items}
                for name in sel.names:
                    if name not in present:
                        g.line(f"{targets[name]} = {g.const(self.defaults[name], 'dflt')}")
                self._dec_items(g, items, end, targets)
                if not sel.names:
                    g.line("pass")
        with g.block("else:"):
            g.raise_("_DecodeError", f"invalid {g.qualify(sel.tag)}: unknown value %s", tag)
        g.names.update(targets)

    def decoder(self, ns: dict[str, Any]) -> str:
        g = Gen(self.owner, ns, self.params)
        g.names.update((p, p) for p in self.params)
        self._dec_items(g, self.items, "e", {})
        args = ", ".join(g.names[name] for name in self.init)
        g.line(f"return {g.const(self.cls, 'cls')}({args}), p")
        return g.source(f"def decode({', '.join(['d', 'p', 'e', *self.params])}):")

    # -- encode ---------------------------------------------------------------------

    def _enc_items(self, g: Gen, items: _Items, required: Mapping[str, str]) -> list[str]:
        pieces: list[str] = []
        run: list[str] = []
        fmt = ""

        def flush() -> None:
            nonlocal fmt
            if run:
                packer = g.const(struct.Struct(">" + fmt), "S")
                pieces.append(f"{packer}.pack({', '.join(run)})")
                run.clear()
                fmt = ""

        for item in items:
            if isinstance(item, Select):
                flush()
                pieces.append(self._enc_select(g, item))
                continue
            name, t = item
            g.field = name
            value = g.tmp("v")
            g.line(f"{value} = {g.path(name)}")
            g.names[name] = value
            if name in required and not t.is_optional():
                with g.block(f"if {value} is None:"):
                    g.raise_("_ValueError", required[name])
            if t.size:
                t.check(g, value)
                run.append(value)
                fmt += t.fmt
            else:
                flush()
                pieces += t.enc(g, value)
        flush()
        return pieces

    def _enc_select(self, g: Gen, sel: Select) -> str:
        tag = g.path(sel.tag)
        out = g.tmp("s")
        for i, (key, items) in enumerate(sel.arms.items()):
            with g.branch(i, f"{tag} == {g.const(key, 'tag')}"):
                case = f"{self.owner} with {sel.tag} {key.name}"
                present = [n for n, _ in items]
                for name in sel.names:
                    if sel.strict and name not in present:
                        test = " is not None" if self.defaults[name] is None else ""
                        with g.block(f"if {g.path(name)}{test}:"):
                            g.raise_("_ValueError", f"{case} carries no {name}")
                saved = dict(g.names)
                required = {n: f"{case} needs {n}" for n in present}
                g.line(f"{out} = {join(self._enc_items(g, items, required))}")
                g.names = saved
        with g.block("else:"):
            g.raise_("_ValueError", f"cannot encode {self.owner}.{sel.tag} %s", tag)
        return out

    def encoder(self, ns: dict[str, Any], items: _Items, name: str) -> str:
        g = Gen(self.owner, ns, self.params)
        for item in self.items:
            g.names.update((n, f"o.{n}") for n in _item_names(item))
        g.names.update((p, p if p in self.encode_params else f"o.{p}") for p in self.params)
        g.line(f"return {join(self._enc_items(g, items, {}))}")
        head = ", ".join(["o", *(f"{p}=None" for p in self.encode_params)])
        return g.source(f"def {name}({head}):", wrap_overflow=True)


def layout(
    *items: Item, params: Sequence[str] = (), signed: bool = False
) -> Callable[[type[_C]], type[_C]]:
    """Declare the wire layout of a dataclass and generate its codec (``cls.__wire__``).

    ``items`` are ``(name, wire type)`` pairs and :class:`Select` groups, in
    wire order. ``params`` are decode parameters (outer values the layout
    depends on). ``signed=True`` also generates ``__wire__.encode_tbs``: the
    encoding of every field but the last one, the signature.
    """

    def apply(cls: type[_C]) -> type[_C]:
        compiler = _Compiler(cls, items, params)
        last = compiler.items[-1]
        if signed and (isinstance(last, Select) or last[0] != "signature"):
            raise TypeError(f"{cls.__name__}: a signed layout ends with the signature field")
        cls.__wire_params__ = tuple(params)
        cls.__wire_encode_params__ = tuple(compiler.encode_params)
        ns = namespace(cls.__name__)
        sources = [compiler.decoder(ns), compiler.encoder(ns, compiler.items, "encode")]
        if signed:
            sources.append(compiler.encoder(ns, compiler.items[:-1], "encode_tbs"))
        source = "\n\n\n".join(sources) + "\n"
        exec(compile(source, f"<layout {cls.__name__}>", "exec"), ns)
        codec = Codec(ns["encode"], ns["decode"], ns.get("encode_tbs"), source)
        cls.__wire__ = codec
        setattr(cls, "_wire_encode", staticmethod(codec.encode))  # noqa: B010
        setattr(cls, "_wire_decode", staticmethod(codec.decode))  # noqa: B010
        return cls

    return apply


def tbs_encoder(cls: type[Encodable]) -> Encoder:
    """The to-be-signed encoder of a class declared with ``signed=True``."""
    encode_tbs = cls.__wire__.encode_tbs
    if encode_tbs is None:
        raise TypeError(f"{cls.__name__} is not declared as signed")
    return encode_tbs
