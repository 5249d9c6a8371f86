"""Display names: normal form, refused characters and look-alike detection.

A display name travels inside the MLS credential (RFC 9420 section 5.3), so
every engine must agree on one spelling of it. Names are NFKC-normalised,
trimmed, and runs of spaces collapsed; invisible, direction-changing, control,
unassigned and blank-looking characters are refused, so that "Gr\\u200bace"
or "\\u202eecarG" can never pass for "Grace".

Two names are *confusable* when their UTS #39 skeletons (Unicode Technical
Standard 39, section 4) are equal. The prototypes come from the Unicode
``confusables.txt`` data shipped by the ``confusable-homoglyphs`` package; that
package stores each source/prototype pair in both directions, so the
prototype map is rebuilt from it once, on first use (see :func:`_prototypes`).
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from functools import cache
from pathlib import Path

import msgspec

from .errors import IdentityError

__all__ = [
    "MAX_NAME_CHARS",
    "check_display_name",
    "confusable",
    "confusion_keys",
    "normalize_display_name",
    "skeleton",
]

MAX_NAME_CHARS = 64

_REFUSED_CATEGORIES = {
    "Cc": "control",
    "Cf": "invisible or direction-changing",
    "Cs": "surrogate",
    "Co": "private-use",
    "Cn": "unassigned",
    "Zl": "line-separator",
    "Zp": "paragraph-separator",
    "Zs": "non-standard space",
}

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt) outside the
# C* categories: combining grapheme joiner, Khmer inherent vowels, Mongolian
# and standard variation selectors, Hangul fillers; plus U+2800 BRAILLE
# PATTERN BLANK, which renders as nothing.
_INVISIBLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
)

_SPACES = re.compile(" {2,}")


def _refusal(ch: str) -> str | None:
    """Why ``ch`` may not appear in a display name, or None if it may."""
    cp = ord(ch)
    if any(lo <= cp <= hi for lo, hi in _INVISIBLE_RANGES):
        return "invisible or direction-changing"
    if ch == " ":
        return None
    return _REFUSED_CATEGORIES.get(unicodedata.category(ch))


def normalize_display_name(name: str) -> str:
    """The normal form of ``name``: NFKC, trimmed, single spaces (IdentityError if refused).

    Refused: control, format (bidi controls, zero-width characters, soft
    hyphen...), surrogate, private-use, unassigned and separator characters,
    spaces other than U+0020 that survive NFKC, default-ignorable and
    blank-looking letters, a leading combining mark, a blank name, and more
    than :data:`MAX_NAME_CHARS` characters.
    """
    if not isinstance(name, str):
        raise IdentityError(f"display name must be a str, not {type(name).__name__}")
    text = unicodedata.normalize("NFKC", name).strip()
    for ch in text:
        why = _refusal(ch)
        if why is not None:
            raise IdentityError(f"display name contains the {why} character U+{ord(ch):04X}")
    text = _SPACES.sub(" ", text)
    if not text:
        raise IdentityError("display name is blank")
    if unicodedata.category(text[0]).startswith("M"):
        raise IdentityError(f"display name starts with the combining mark U+{ord(text[0]):04X}")
    if len(text) > MAX_NAME_CHARS:
        raise IdentityError(f"display name must have 1 to {MAX_NAME_CHARS} characters")
    if unicodedata.normalize("NFKC", text) != text:  # defensive: never seen
        raise IdentityError("display name has no stable normal form")
    return text


def check_display_name(name: str) -> str:
    """Return ``name`` if it is already in normal form (names from the network)."""
    if normalize_display_name(name) != name:
        raise IdentityError("display name is not in normal form")
    return name


# --------------------------------------------------------------------------
# UTS #39 skeletons
# --------------------------------------------------------------------------


class _Glyph(msgspec.Struct):
    c: str


def _data_file() -> Path:
    spec = importlib.util.find_spec("confusable_homoglyphs")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the confusable-homoglyphs package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "confusables.json"


@cache
def _prototypes() -> dict[str, str]:
    """Source character -> NFD prototype string, from ``confusables.txt`` (UTS #39 section 4).

    The package's JSON lists, for each character, its prototype *and* every
    character whose prototype it is (its comment text, with U+200E marks
    around right-to-left characters, which are dropped here). In the Unicode
    data a source is a single code point and prototypes are never sources, so
    a character with exactly one neighbour is a source, except in a pair of
    characters that are each other's only neighbour: there the direction is
    lost, and both are mapped to the smaller code point. That choice is
    applied consistently (prototype strings are mapped again below), so it
    changes skeleton *text* but never which strings have equal skeletons.
    """
    raw = msgspec.json.decode(_data_file().read_bytes(), type=dict[str, list[_Glyph]])
    links: dict[str, set[str]] = {}
    for key, glyphs in raw.items():
        k = key.replace("\u200e", "")
        links.setdefault(k, set()).update(g.c.replace("\u200e", "") for g in glyphs)
    mapping: dict[str, str] = {}
    for src, targets in links.items():
        if len(src) != 1 or len(targets) != 1:
            continue
        (target,) = targets
        if not target:
            continue
        if len(target) == 1 and links.get(target) == {src}:
            if target < src:
                mapping[src] = target
        else:
            mapping[src] = target
    for _ in range(4):
        changed = False
        for src, target in mapping.items():
            mapped = "".join(mapping.get(ch, ch) for ch in target)
            if mapped != target:
                mapping[src], changed = mapped, True
        if not changed:
            break
    if len(mapping) < 5000 or mapping.get("\u0430") != "a":  # Cyrillic a -> Latin a
        raise ImportError("confusable-homoglyphs data is incomplete or not understood")
    return {src: unicodedata.normalize("NFD", target) for src, target in mapping.items()}


def _uts39(text: str) -> str:
    """``NFD(map(NFD(text)))`` with the prototype map (UTS #39 section 4)."""
    protos = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(protos.get(ch, ch) for ch in decomposed))


def skeleton(name: str) -> str:
    """The UTS #39 skeleton of the NFKC-normalised, casefolded ``name``."""
    return _uts39(unicodedata.normalize("NFKC", name).casefold())


def confusion_keys(name: str) -> frozenset[str]:
    """Keys such that two names are confusable iff their key sets intersect.

    One key is :func:`skeleton` (case-insensitive). Casefolding first loses
    look-alikes that exist only in one case (capital I and small l), so the
    second key takes the skeleton before casefolding as well.
    """
    nfkc = unicodedata.normalize("NFKC", name)
    return frozenset(("c:" + skeleton(nfkc), "v:" + _uts39(_uts39(nfkc).casefold())))


def confusable(a: str, b: str) -> bool:
    """True if ``a`` and ``b`` may be taken for each other (identical names included)."""
    return not confusion_keys(a).isdisjoint(confusion_keys(b))
