"""The declarative layouts of clave.mls.structs (RFC 9420 section 2.1).

Toy layouts exercise every wire type against the primitive Writer/Reader of
clave.mls.codec: the generated codec must produce the same bytes, accept the
same inputs and fail with the same DecodeError messages as reading field by
field. The real structures are checked for being declared (no hand-written
codecs left) and for the strictness that every decoder shares.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clave.mls import structs
from clave.mls.codec import Reader, Writer, decode_all
from clave.mls.errors import DecodeError
from clave.mls.structs._layout import (
    OPAQUE,
    U8,
    U16,
    U32,
    U64,
    Checked,
    ClosedEnum,
    Encodable,
    Fixed,
    Nested,
    OpenEnum,
    Optional,
    Select,
    Struct,
    Uints,
    Variant,
    Vector,
    When,
    ZeroPadding,
    compile_type,
    decode_exactly,
    layout,
)


class Color(IntEnum):
    red = 1
    green = 2
    blue = 3


@layout(
    ("a", U8),
    ("b", U16),
    ("c", U32),
    ("d", U64),
    ("color", ClosedEnum(Color)),
    ("shade", OpenEnum(Color, U16)),
    ("blob", OPAQUE),
    ("tag", Fixed(2)),
    ("nums", Uints(U16)),
    ("items", Vector(OPAQUE)),
    ("maybe", Optional(OPAQUE)),
)
@dataclass(frozen=True, slots=True)
class Toy(Struct):
    a: int
    b: int
    c: int
    d: int
    color: Color
    shade: int
    blob: bytes
    tag: bytes
    nums: tuple[int, ...]
    items: tuple[bytes, ...]
    maybe: bytes | None


def toy_encode_by_hand(t: Toy) -> bytes:
    w = Writer().u8(t.a).u16(t.b).u32(t.c).u64(t.d).u8(t.color).u16(t.shade)
    w.opaque(t.blob).raw(t.tag)
    w.opaque(b"".join(n.to_bytes(2, "big") for n in t.nums))
    w.vector(t.items, Writer.opaque).optional(t.maybe, Writer.opaque)
    return w.finish()


def toy_decode_by_hand(r: Reader) -> Toy:
    """Field-by-field reference decoder on the Reader primitives."""
    a, b, c, d = r.u8(), r.u16(), r.u32(), r.u64()
    raw = r.u8()
    try:
        color = Color(raw)
    except ValueError:
        raise DecodeError(f"invalid Toy.color: unknown value {raw}") from None
    shade = r.u16()
    shade = Color(shade) if shade in Color._value2member_map_ else shade
    blob = r.opaque()
    tag = r.raw(2)
    data = r.opaque()
    if len(data) % 2:
        raise DecodeError("Toy.nums length is not a multiple of 2")
    nums = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    items = tuple(r.vector(Reader.opaque))
    maybe = r.optional(Reader.opaque)
    return Toy(a, b, c, d, color, shade, blob, tag, nums, items, maybe)


blobs = st.binary(max_size=80)
toys = st.builds(
    Toy,
    st.integers(0, 0xFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, (1 << 64) - 1),
    st.sampled_from(Color),
    st.integers(0, 0xFFFF),
    blobs,
    st.binary(min_size=2, max_size=2),
    st.lists(st.integers(0, 0xFFFF), max_size=5).map(tuple),
    st.lists(blobs, max_size=4).map(tuple),
    st.none() | blobs,
)


def outcome(decode: Callable[[bytes], Any], data: bytes) -> tuple[str, Any]:
    try:
        return "ok", decode(data)
    except DecodeError as exc:
        return "error", str(exc)


@given(toys)
def test_generated_codec_matches_primitives(toy: Toy) -> None:
    encoded = toy.to_bytes()
    assert encoded == toy_encode_by_hand(toy)
    assert Toy.from_bytes(encoded) == toy
    assert decode_all(encoded, toy_decode_by_hand, "Toy") == toy
    w = Writer().u8(7)
    toy.encode(w)
    r = Reader(w.finish())
    assert r.u8() == 7 and Toy.decode(r) == toy and r.remaining == 0


@settings(max_examples=300)
@given(toys, st.data())
def test_mutated_input_fails_like_field_by_field_reading(toy: Toy, data: st.DataObject) -> None:
    """Same value or the same DecodeError message as the Reader-based reference."""
    mutated = bytearray(toy.to_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(mutated)))
        kind = data.draw(st.sampled_from(["set", "delete", "insert", "cut"]))
        if kind == "set" and pos < len(mutated):
            mutated[pos] = data.draw(st.integers(0, 255))
        elif kind == "delete":
            del mutated[pos : pos + data.draw(st.integers(1, 4))]
        elif kind == "insert":
            mutated[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        else:
            del mutated[pos:]
    blob = bytes(mutated)
    expected = outcome(lambda b: decode_all(b, toy_decode_by_hand, "Toy"), blob)
    assert outcome(Toy.from_bytes, blob) == expected


def test_truncation_errors_name_the_short_field() -> None:
    toy = Toy(1, 2, 3, 4, Color.red, 5, b"xyz", b"ab", (1, 2), (b"i",), b"m")
    encoded = toy.to_bytes()
    for cut in range(len(encoded)):
        expected = outcome(lambda b: decode_all(b, toy_decode_by_hand, "Toy"), encoded[:cut])
        assert expected[0] == "error"
        assert outcome(Toy.from_bytes, encoded[:cut]) == expected
    with pytest.raises(DecodeError, match="need 4 bytes at offset 3, have 2"):
        Toy.from_bytes(encoded[:5])
    with pytest.raises(DecodeError, match="1 trailing bytes after Toy"):
        Toy.from_bytes(encoded + b"\0")


def test_strict_varints_enums_and_octets() -> None:
    toy = Toy(0, 0, 0, 0, Color.blue, 0xFAFA, b"abc", b"zz", (), (), None)
    encoded = toy.to_bytes()
    head = encoded[:18]  # the fixed-size fields
    assert Toy.from_bytes(encoded).shade == 0xFAFA
    assert Toy.from_bytes(encoded.replace(b"\xfa\xfa", b"\x00\x02")).shade is Color.green
    with pytest.raises(DecodeError, match="not minimally encoded"):
        Toy.from_bytes(head + b"\x40\x03abc" + encoded[22:])
    with pytest.raises(DecodeError, match="reserved two-bit prefix"):
        Toy.from_bytes(head + b"\xc0" + encoded[19:])
    with pytest.raises(DecodeError, match=r"invalid Toy\.color: unknown value 4"):
        Toy.from_bytes(encoded[:15] + b"\x04" + encoded[16:])
    with pytest.raises(DecodeError, match="invalid optional presence octet 2"):
        Toy.from_bytes(encoded[:-1] + b"\x02")
    with pytest.raises(DecodeError, match=r"Toy\.nums length is not a multiple of 2"):
        Toy.from_bytes(encoded[:-3] + b"\x01\x00\x00\x00")
    with pytest.raises(DecodeError, match="truncated vector"):
        Toy.from_bytes(encoded[:-2] + b"\x05\x00")


def test_enum_is_checked_before_the_next_field_is_read() -> None:
    # as when reading field by field: the bad value wins over the missing bytes
    with pytest.raises(DecodeError, match=r"Toy\.color"):
        Toy.from_bytes(bytes(15) + b"\x09")


def test_encode_errors() -> None:
    ok = Toy(0, 0, 0, 0, Color.red, 0, b"", b"ab", (), (), None)
    with pytest.raises(OverflowError):
        dataclasses.replace(ok, b=1 << 16).to_bytes()
    with pytest.raises(OverflowError):
        dataclasses.replace(ok, a=-1).to_bytes()
    with pytest.raises(ValueError, match="tag must be 2 bytes"):
        dataclasses.replace(ok, tag=b"abc").to_bytes()
    with pytest.raises(ValueError, match="integer vector item out of range"):
        dataclasses.replace(ok, nums=(1 << 16,)).to_bytes()


# -- selects, derived fields, parameters, variants --------------------------------------


class Kind(IntEnum):
    empty = 1
    number = 2
    text = 3


@layout(
    ("kind", ClosedEnum(Kind)),
    Select(
        "kind",
        {
            Kind.empty: [],
            Kind.number: [("number", U32)],
            Kind.text: [("text", OPAQUE), ("number", U32)],
        },
    ),
)
@dataclass(frozen=True, slots=True)
class Tagged(Struct):
    kind: Kind
    number: int | None = None
    text: bytes = b""


@layout(
    ("kind", ClosedEnum(Kind)),
    Select("kind", {Kind.empty: [], Kind.number: [("number", U32)]}, strict=False),
)
@dataclass(frozen=True, slots=True)
class Lenient(Struct):
    kind: Kind
    number: int = 0


def test_select() -> None:
    for value, wire in [
        (Tagged(Kind.empty), b"\x01"),
        (Tagged(Kind.number, 7), b"\x02\x00\x00\x00\x07"),
        (Tagged(Kind.text, 7, b"hi"), b"\x03\x02hi\x00\x00\x00\x07"),
    ]:
        assert value.to_bytes() == wire
        assert Tagged.from_bytes(wire) == value
    with pytest.raises(ValueError, match="Tagged with kind number needs number"):
        Tagged(Kind.number).to_bytes()
    with pytest.raises(ValueError, match="Tagged with kind empty carries no number"):
        Tagged(Kind.empty, 1).to_bytes()
    with pytest.raises(ValueError, match="Tagged with kind number carries no text"):
        Tagged(Kind.number, 1, b"x").to_bytes()
    with pytest.raises(ValueError, match=r"cannot encode Tagged\.kind 9"):
        Tagged(9).to_bytes()  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match=r"invalid Tagged\.kind: unknown value 4"):
        Tagged.from_bytes(b"\x04")
    # strict=False: fields of other arms are ignored, not rejected
    assert Lenient(Kind.empty, 5).to_bytes() == b"\x01"
    assert Lenient.from_bytes(b"\x01") == Lenient(Kind.empty)


class Shape(IntEnum):
    dot = 1
    box = 2


@layout(("x", U8))
@dataclass(frozen=True, slots=True)
class Dot(Struct):
    x: int


@layout(("w", U8), ("h", U8))
@dataclass(frozen=True, slots=True)
class Box(Struct):
    w: int
    h: int


SHAPES = {Shape.dot: Dot, Shape.box: Box}


@layout(
    ("version", ClosedEnum(Color)),
    ("shape", Variant("shape_type", ClosedEnum(Shape), SHAPES)),
    ("count", U8),
    ("label", When("count", {3}, OPAQUE, "when count is 3")),
)
@dataclass(frozen=True, slots=True)
class Drawing(Struct):
    shape: Dot | Box
    count: int = 0
    label: bytes | None = None

    @property
    def version(self) -> Color:  # derived: on the wire, not a field
        return Color.green


@layout(
    ("bits", Uints(U8)),
    ("note", When("flag", {Color.red}, OPAQUE, "for red")),
    params=("flag",),
)
@dataclass(frozen=True, slots=True)
class Flagged(Encodable):
    bits: tuple[int, ...]
    note: bytes | None = None


@layout(
    ("flag", ClosedEnum(Color)),
    ("inner", Nested(Flagged, flag="flag")),
    ("shape", Variant("shape_type", None, SHAPES, by="flag_shape")),
    ("pad", ZeroPadding()),
    params=("flag_shape",),
)
@dataclass(frozen=True, slots=True)
class Outer(Encodable):
    flag: Color
    inner: Flagged
    shape: Dot | Box
    pad: int = 0


def test_variant_derived_field_and_when() -> None:
    d = Drawing(Box(1, 2))
    assert d.to_bytes() == b"\x02\x02\x01\x02\x00"
    assert Drawing.from_bytes(d.to_bytes()) == d
    labelled = Drawing(Dot(5), 3, b"L")
    assert labelled.to_bytes() == b"\x02\x01\x05\x03\x01L"
    assert Drawing.from_bytes(labelled.to_bytes()) == labelled
    with pytest.raises(ValueError, match="label must be present exactly when count is 3"):
        Drawing(Dot(4), 4, b"L").to_bytes()
    with pytest.raises(ValueError, match="label must be present exactly when count is 3"):
        Drawing(Dot(4), 3).to_bytes()
    with pytest.raises(ValueError, match=r"cannot encode a str as Drawing\.shape_type"):
        Drawing("dot").to_bytes()  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match=r"invalid Drawing\.version: unknown value 7"):
        Drawing.from_bytes(b"\x07\x01\x00\x00")
    with pytest.raises(DecodeError, match=r"invalid Drawing\.shape_type: unknown value 3"):
        Drawing.from_bytes(b"\x02\x03\x00")


def test_parameters_nested_arguments_and_padding() -> None:
    outer = Outer(Color.red, Flagged((1, 2), b"n"), Box(5, 6), 3)
    wire = outer.to_bytes()
    assert wire == b"\x01\x02\x01\x02\x01n\x05\x06\x00\x00\x00"
    assert decode_exactly(Outer.__wire__.decode, wire, "Outer", Shape.box) == outer
    with pytest.raises(DecodeError, match="Outer padding contains non-zero bytes"):
        decode_exactly(Outer.__wire__.decode, wire[:-1] + b"\x01", "Outer", Shape.box)
    # the nested parameter comes from the outer field: presence is checked
    with pytest.raises(ValueError, match="note must be present exactly for red"):
        Outer(Color.green, Flagged((), b"n"), Dot(1)).to_bytes()
    with pytest.raises(ValueError, match="pad length must be non-negative"):
        Outer(Color.red, Flagged((), b"n"), Dot(1), -1).to_bytes()
    # standalone, the parameter is unknown when encoding: presence follows the value
    assert Flagged((), b"n").to_bytes() == b"\x00\x01n"
    assert Flagged(()).to_bytes() == b"\x00"
    decode = Flagged.__wire__.decode
    assert decode_exactly(decode, b"\x00\x01n", "Flagged", Color.red) == Flagged((), b"n")
    assert decode_exactly(decode, b"\x00", "Flagged", Color.blue) == Flagged(())


def test_checked_and_compile_type() -> None:
    def no_sevens(items: tuple[int, ...]) -> None:
        if 7 in items:
            raise DecodeError("no sevens")

    encode, decode = compile_type(Checked(Uints(U16), decode=no_sevens), "Numbers")
    assert encode((1, 7)) == b"\x04\x00\x01\x00\x07"
    assert decode(b"\x02\x00\x01", 0, 3) == ((1,), 3)
    with pytest.raises(DecodeError, match="no sevens"):
        decode(b"\x02\x00\x07", 0, 3)
    encode, decode = compile_type(Vector(Optional(Dot)), "Dots")
    assert encode((Dot(1), None)) == b"\x03\x01\x01\x00"
    assert decode(b"\x03\x01\x01\x00", 0, 4) == ((Dot(1), None), 4)


def test_declaration_mistakes_are_caught_at_import() -> None:
    @dataclass(frozen=True, slots=True)
    class Pair(Struct):
        a: int
        b: int = 0

    with pytest.raises(TypeError, match=r"fields \['b'\] are not in the layout"):
        layout(("a", U8))(Pair)
    with pytest.raises(TypeError, match="'c' is not an attribute"):
        layout(("a", U8), ("b", U8), ("c", U8))(Pair)
    with pytest.raises(TypeError, match="does not name an earlier field"):
        layout(("a", U8), ("b", When("c", {1}, U8, "never")))(Pair)
    with pytest.raises(TypeError, match=r"Pair\.a is in a Select but has no default"):
        layout(("b", U8), Select("b", {Color.red: [("a", U8)]}))(Pair)
    with pytest.raises(TypeError, match="ends with the signature field"):
        layout(("a", U8), ("b", U8), signed=True)(Pair)
    with pytest.raises(TypeError, match="selects two arms"):
        Variant("t", ClosedEnum(Shape), {Shape.dot: Dot, Shape.box: Dot})
    with pytest.raises(TypeError, match="not a wire type"):
        Vector(int)  # type: ignore[arg-type]


# -- the real structures -------------------------------------------------------------------


def declared_classes() -> list[type[Encodable]]:
    return [
        obj
        for name in structs.__all__
        if inspect.isclass(obj := getattr(structs, name)) and issubclass(obj, Encodable)
    ]


def test_every_structure_is_declared_once() -> None:
    classes = declared_classes()
    assert len(classes) >= 45
    for cls in classes:
        assert "__wire__" in cls.__dict__, cls
        compile(cls.__wire__.source, cls.__name__, "exec")
        # no hand-written codec next to the declaration
        assert "encode" not in cls.__dict__ and "to_bytes" not in cls.__dict__, cls
        if cls.__wire_params__:
            assert not issubclass(cls, Struct), cls
        else:
            assert issubclass(cls, Struct), cls
            assert "decode" not in cls.__dict__ and "from_bytes" not in cls.__dict__, cls


SAMPLES: list[Struct] = [
    structs.Credential.x509([b"c1", b"c2"]),
    structs.Capabilities((1,), (1, 2), (), (5,), (1,)),
    structs.Extension(0xFAFA, b"data"),
    structs.ParentNode(b"pk", b"ph", (1, 3)),
    structs.PreSharedKeyID.resumption(structs.ResumptionPSKUsage.branch, b"g", 9, b"n"),
    structs.Sender.member(3),
    structs.SenderData(1, 2, b"abcd"),
    structs.GroupContext(structs.ProtocolVersion.mls10, 1, b"g", 2, b"t", b"c", ()),
    structs.Commit((structs.ProposalOrRef.by_reference(b"ref"),), None),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_real_structures_are_strict(value: Struct) -> None:
    cls = type(value)
    encoded = value.to_bytes()
    assert cls.from_bytes(encoded) == value
    for cut in range(len(encoded)):
        with pytest.raises(DecodeError):
            cls.from_bytes(encoded[:cut])
    with pytest.raises(DecodeError, match=f"1 trailing bytes after {cls.__name__}"):
        cls.from_bytes(encoded + b"\0")
    # bytes-like input is accepted like bytes
    assert cls.from_bytes(bytearray(encoded)) == value  # type: ignore[arg-type]
