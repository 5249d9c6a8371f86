"""The glass's string catalogues (issue 15, item 7): src/clave/ui/i18n/{en,de}.js.

Without a browser: every key the page uses (``t('…')``/``tParts('…')``, a key literal
in a table, ``data-i18n``/``data-i18n-attr`` in index.html) is in the English catalogue;
German has no key English lacks and the same ``{placeholders}`` for each; German
covers every English key (a key may be left to the English fallback only by listing
it in ``GERMAN_PENDING``). With node, i18n.js itself: the language choice, the
per-key fallback to English, the key itself (recorded) when even English lacks it, and
parameters inserted as text.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

UI = Path(__file__).resolve().parents[2] / "src" / "clave" / "ui"
CATALOGUES = UI / "i18n"
GERMAN_PENDING: frozenset[str] = frozenset()
"""English keys German may leave to the fallback (none today)."""

_ENTRY = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*:\s*("(?:[^"\\]|\\.)*"),?\s*$')
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_CALL = re.compile(r"\bt(?:Parts)?\(\s*'([^'\\]+)'")
_TEMPLATE_CALL = re.compile(r"\bt(?:Parts)?\(\s*`([a-z][\w.]*)\.\$\{")
_LITERAL = re.compile(r"'([a-z][A-Za-z]*(?:\.[A-Za-z_]+)+)'")


def catalogue(code: str) -> dict[str, str]:
    """``i18n/<code>.js`` read as data: one ``"key": "text",`` a line inside
    ``Object.freeze({ … })``, nothing else in the object, no key twice."""
    text = (CATALOGUES / f"{code}.js").read_text(encoding="utf-8")
    start = text.index("export default Object.freeze({\n") + len("export default Object.freeze({\n")
    end = text.index("\n});", start)
    entries: dict[str, str] = {}
    for line in text[start:end].splitlines():
        match = _ENTRY.match(line)
        assert match, f"{code}.js: not a catalogue entry: {line!r}"
        key, value = json.loads(match[1]), json.loads(match[2])
        assert key not in entries, f"{code}.js: {key} twice"
        assert value.strip(), f"{code}.js: {key} is empty"
        entries[key] = value
    return entries


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def page_scripts() -> list[Path]:
    return sorted(p for p in UI.rglob("*.js") if p.parent != CATALOGUES)


class _StaticKeys(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("data-i18n"):
            self.keys.add(str(found["data-i18n"]))
        for pair in (found.get("data-i18n-attr") or "").split(";"):
            if ":" in pair:
                self.keys.add(pair.split(":", 1)[1].strip())


def static_keys() -> set[str]:
    parser = _StaticKeys()
    parser.feed((UI / "index.html").read_text(encoding="utf-8"))
    return parser.keys


def used_keys() -> tuple[set[str], set[str]]:
    """(keys the scripts name, prefixes of keys they build: ``t(`role.${…}`)``)."""
    en = catalogue("en")
    groups = {key.split(".", 1)[0] for key in en}
    keys: set[str] = set()
    prefixes: set[str] = set()
    for path in page_scripts():
        source = path.read_text(encoding="utf-8")
        keys.update(_CALL.findall(source))
        prefixes.update(_TEMPLATE_CALL.findall(source))
        # Keys kept in tables or chosen by a condition: t(on ? 'a.b' : 'a.c').
        keys.update(k for k in _LITERAL.findall(source)
                    if k.split(".", 1)[0] in groups and not k.endswith((".js", ".css")))
    return keys, prefixes


def test_every_key_the_page_uses_is_in_english() -> None:
    en = catalogue("en")
    keys, prefixes = used_keys()
    html = static_keys()
    assert len(html) > 80, html  # the whole static page is in the catalogue
    assert len(keys) > 200, keys
    assert sorted((keys | html) - set(en)) == []
    for prefix in prefixes:
        assert any(k.startswith(prefix + ".") for k in en), prefix


def test_no_english_key_is_unused() -> None:
    """Every English string is reachable from the page (no dead catalogue entries)."""
    en = catalogue("en")
    keys, prefixes = used_keys()
    used = keys | static_keys()
    dead = [k for k in en if k not in used and not any(k.startswith(p + ".") for p in prefixes)]
    assert dead == []


def test_german_matches_english() -> None:
    en, de = catalogue("en"), catalogue("de")
    assert sorted(set(de) - set(en)) == [], "German keys English lacks"
    wrong = {k: (en[k], de[k]) for k in de if placeholders(en[k]) != placeholders(de[k])}
    assert wrong == {}, "placeholders differ"
    untranslated = sorted(set(en) - set(de) - GERMAN_PENDING)
    covered = len(set(en) & set(de))
    print(f"German covers {covered} of {len(en)} English keys")
    assert untranslated == [], f"German lacks {len(untranslated)}: {untranslated[:20]}"
    # Real German, not English copied over: only names and short technical labels agree.
    same = sorted(k for k in de if de[k] == en[k])
    assert len(same) <= 8, same


# ---------------------------------------------------------------- i18n.js under node


def run_i18n(tmp_path: Path, script: str, *, drop_german: str | None = None,
             url: str = "", stored: str | None = None, browser: str = "en-US") -> Any:
    """``script`` with ``I`` = i18n.js (copied with its catalogues and stats.js into
    ``tmp_path``, German without ``drop_german``), in a page at ``?…url``."""
    exe = shutil.which("node")
    if exe is None:
        pytest.skip("node is not installed")
    root = tmp_path / "ui"
    (root / "i18n").mkdir(parents=True)
    (root / "ui").mkdir()
    for name in ("i18n.js", "stats.js", "i18n/en.js", "i18n/de.js", "ui/remembered.js",
                 "protocol.js"):  # fmt: skip
        shutil.copyfile(UI / name, root / name)
    if drop_german:
        de = root / "i18n" / "de.js"
        lines = de.read_text(encoding="utf-8").splitlines(keepends=True)
        entry = json.dumps(drop_german) + ":"
        kept = [line for line in lines if not line.lstrip().startswith(entry)]
        assert len(kept) == len(lines) - 1
        de.write_text("".join(kept), encoding="utf-8")
    setup = f"""
      const store = new Map({json.dumps([["clave.lang", stored]] if stored else [])});
      globalThis.window = globalThis;
      globalThis.location = {{ search: {json.dumps(url)} }};
      globalThis.localStorage = {{
        getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v),
      }};
      Object.defineProperty(globalThis, 'navigator', {{
        value: {{ language: {json.dumps(browser)} }}, configurable: true,
      }});
      globalThis.console.warn = () => {{}};
      const I = await import({json.dumps((root / 'i18n.js').as_uri())});
    """
    done = subprocess.run(
        [exe, "--input-type=module", "-e", setup + script],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


OUT = "process.stdout.write(JSON.stringify(result));"


def test_language_choice(tmp_path: Path) -> None:
    script = "const result = I.language();" + OUT
    assert run_i18n(tmp_path / "a", script) == "en"
    assert run_i18n(tmp_path / "b", script, url="?lang=de") == "de"
    assert run_i18n(tmp_path / "c", script, stored="de") == "de"
    assert run_i18n(tmp_path / "d", script, browser="de-AT") == "de"
    assert run_i18n(tmp_path / "e", script, url="?lang=en", stored="de") == "en"
    assert run_i18n(tmp_path / "f", script, url="?lang=xx", browser="fr-FR") == "en"


def test_german_with_fallback_to_english(tmp_path: Path) -> None:
    en, de = catalogue("en"), catalogue("de")
    result = run_i18n(tmp_path, """
      const result = {
        join: I.t('prejoin.join'),
        dropped: I.t('ended.rejoin'),
        filled: I.t('moderation.ask', { name: '<b>Eve</b> {name}' }),
        parts: I.tParts('remove.title', { name: 'Bob' }).length,
        missing: I.t('no.such.key'),
        recorded: window.claveStats.i18nMissing,
      };
    """ + OUT, url="?lang=de", drop_german="ended.rejoin")
    assert result["join"] == de["prejoin.join"] != en["prejoin.join"]
    assert result["dropped"] == en["ended.rejoin"]  # the fallback: English for this key
    assert result["filled"] == de["moderation.ask"].replace("{name}", "<b>Eve</b> {name}")
    assert result["parts"] >= 2
    assert result["missing"] == "no.such.key"
    assert result["recorded"] == ["no.such.key"]


def test_english_is_complete(tmp_path: Path) -> None:
    keys = sorted(catalogue("en"))
    result = run_i18n(tmp_path, f"""
      for (const k of {json.dumps(keys)}) I.t(k);
      const result = window.claveStats.i18nMissing;
    """ + OUT)
    assert result == []
