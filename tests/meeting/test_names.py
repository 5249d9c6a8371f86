"""Display-name normal form, refused characters and look-alike (UTS #39) detection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clave.meeting.errors import IdentityError
from clave.meeting.names import (
    MAX_NAME_CHARS,
    _prototypes,
    check_display_name,
    confusable,
    confusion_keys,
    normalize_display_name,
    skeleton,
)

# -- normal form ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Grace", "Grace"),
        ("Grace\u00a0", "Grace"),  # no-break space
        ("  Grace \u2003  Hopper\u3000", "Grace Hopper"),  # em space, ideographic space
        ("Ｇｒａｃｅ", "Grace"),  # fullwidth
        ("Zoe\u0308", "Zoë"),  # composed
        ("ﬁona", "fiona"),  # ligature
        ("x" * MAX_NAME_CHARS, "x" * MAX_NAME_CHARS),
    ],
)
def test_normalize(raw: str, normal: str) -> None:
    assert normalize_display_name(raw) == normal
    assert check_display_name(normal) == normal


@pytest.mark.parametrize(
    ("name", "code_point"),
    [
        ("Gr\u200bace", "U+200B"),  # zero-width space
        ("\u202eecarG", "U+202E"),  # right-to-left override
        ("Grace\u2066", "U+2066"),  # left-to-right isolate
        ("Gr\u200dace", "U+200D"),  # zero-width joiner
        ("Gra\u00adce", "U+00AD"),  # soft hyphen
        ("Grace\u200f", "U+200F"),  # right-to-left mark
        ("Grace\u061c", "U+061C"),  # Arabic letter mark
        ("\ufeffGrace", "U+FEFF"),  # byte order mark
        ("Gr\u2060ace", "U+2060"),  # word joiner
        ("Grace\u034f", "U+034F"),  # combining grapheme joiner
        ("Grace\ufe0f", "U+FE0F"),  # variation selector
        ("Grace \u3164", "U+1160"),  # Hangul filler (NFKC -> U+1160)
        ("Grace \u115f", "U+115F"),
        ("Grace \u2800", "U+2800"),  # braille blank
        ("a\tb", "U+0009"),
        ("a\nb", "U+000A"),
        ("a\u2028b", "U+2028"),
        ("a\u1680b", "U+1680"),  # Ogham space mark: a space NFKC keeps
        ("a\ue000", "U+E000"),  # private use
        ("a\u0378", "U+0378"),  # unassigned
        ("a\ud800", "U+D800"),  # lone surrogate
    ],
)
def test_invisible_and_direction_characters_refused(name: str, code_point: str) -> None:
    with pytest.raises(IdentityError, match=code_point.replace("+", r"\+")):
        normalize_display_name(name)


@pytest.mark.parametrize("name", ["", " ", "\u00a0\u3000", "x" * (MAX_NAME_CHARS + 1), "\u0301"])
def test_blank_long_and_mark_only_names_refused(name: str) -> None:
    with pytest.raises(IdentityError):
        normalize_display_name(name)


def test_leading_combining_mark_refused() -> None:
    with pytest.raises(IdentityError, match="combining mark"):
        normalize_display_name("\u0301\u0301Grace")


@pytest.mark.parametrize("name", ["Grace ", " Grace", "Grace  Hopper", "Ｇrace", "Zoe\u0308"])
def test_check_refuses_names_not_in_normal_form(name: str) -> None:
    with pytest.raises(IdentityError, match="not in normal form"):
        check_display_name(name)


def test_non_str_refused() -> None:
    with pytest.raises(IdentityError, match="str"):
        normalize_display_name(b"Grace")  # type: ignore[arg-type]


# Characters that NFKC, trimming and space-collapsing interact on: spaces, combining
# marks, compatibility forms that decompose to space + mark, Hangul jamo, ligatures.
_TRICKY = st.sampled_from(
    list(" \u00a0\u3000\u2003a e\u0301\u0308\u00b4\u02dc\ufb01Ｇ\u1100\u1161\u11a8\u0627\u0653x")
)


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=80), st.text(_TRICKY, max_size=80)))
def test_normalize_idempotent_and_checkable(raw: str) -> None:
    try:
        name = normalize_display_name(raw)
    except IdentityError:
        return
    assert normalize_display_name(name) == name
    assert check_display_name(name) == name
    assert 1 <= len(name) <= MAX_NAME_CHARS
    assert confusable(name, name)


# -- look-alikes --------------------------------------------------------------


def test_confusables_data_covers_cyrillic_and_greek() -> None:
    protos = _prototypes()
    # Cyrillic а е о р с х and Greek ο α... mapped to Latin by Unicode's confusables.txt
    for look_alike, latin in [("а", "a"), ("е", "e"), ("о", "o"), ("р", "p"), ("с", "c")]:
        assert protos[look_alike] == latin
    assert protos["ο"] == "o"  # Greek omicron
    assert protos["Ο"] == "O"  # Greek capital omicron
    assert len(protos) > 6000


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Grace", "Grace"),  # identical names are confusable too
        ("Grаce", "Grace"),  # Cyrillic а
        ("Bοb", "Bob"),  # Greek omicron
        ("GRACE", "grace"),  # case-insensitive
        ("АННА", "AHHA"),  # all-Cyrillic capitals; the data maps Н to H (not н to h)
        ("Ivan", "lvan"),  # capital I vs small L (lost by casefolding alone)
        ("0lga", "Olga"),  # digit zero
        ("𝐆𝐫𝐚𝐜𝐞", "Grace"),  # mathematical bold
    ],
)
def test_confusable(a: str, b: str) -> None:
    assert confusable(a, b)
    assert confusable(b, a)


def test_rn_and_m_as_the_data_says() -> None:
    # confusables.txt maps m to the sequence rn; only assert what the data claims.
    assert _prototypes().get("m") == "rn"
    assert confusable("Kim", "Kirn")


@pytest.mark.parametrize(
    ("a", "b"), [("Grace", "Grease"), ("Bob", "Rob"), ("Zoë", "Zoe"), ("Anna", "Hanna")]
)
def test_not_confusable(a: str, b: str) -> None:
    assert not confusable(a, b)


def test_skeleton_is_casefolded_uts39() -> None:
    assert skeleton("Grаce") == skeleton("grace") == "grace"
    assert skeleton("Bοb") == "bob"
    assert "c:grace" in confusion_keys("GRACE")
