"""The Local UI channel's messages (docs/PROTOCOL.md, "Local UI channel"): the glass's
``SCHEMA`` (ui/protocol.js, as Node exports it) and the engine's structs
(:mod:`clave.engine.glass_messages`) describe the same messages, both ways: the same
types, fields, field types, enumerations and bounds. Then the engine's one decoder of
glass messages: every message round-trips, and a refused one is said in one line.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest
from engine_helpers import run_node_module
from msgspec import inspect as mi

import clave
from clave.engine import glass_messages as gm
from clave.engine.glass_actions import HANDLERS
from clave.engine.glass_channel import MAX_TEXT_CHARS, BadMessage, GlassOutbox, parse_control
from clave.meeting.events import AlertKind

PROTOCOL_JS = Path(clave.__file__).parent / "ui" / "protocol.js"
COMPARED = (
    "type", "min", "max", "pattern", "values", "of", "key", "fields", "nullable", "optional",
    "decimal",
)  # fmt: skip
"""What both sides must agree on; the rest of a JS descriptor (fallbacks) is the page's."""
Descriptor = dict[str, Any]


def node(script: str, stdin: str = "") -> Any:
    """Run ``script`` (an ES module importing protocol.js as ``P``); its stdout as JSON."""
    return run_node_module(PROTOCOL_JS, "P", script, stdin)


@cache
def js_schema() -> dict[str, dict[str, dict[str, Descriptor]]]:
    result: dict[str, dict[str, dict[str, Descriptor]]] = node(
        "process.stdout.write(JSON.stringify(P.SCHEMA));"
    )
    return result


# ---------------------------------------------------------------- the engine's side


def describe(t: mi.Type) -> Descriptor:
    """A msgspec type as a JS descriptor (see the comment above SCHEMA in protocol.js)."""
    if isinstance(t, mi.UnionType):
        rest = [u for u in t.types if not isinstance(u, mi.NoneType)]
        nullable = len(rest) < len(t.types)
        if len(rest) == 2 and isinstance(rest[0], mi.IntType) and isinstance(rest[1], mi.StrType):
            assert rest[1] == mi.StrType(pattern=gm.DECIMAL_U32), rest[1]
            out = describe(rest[0]) | {"decimal": True}
        else:
            assert len(rest) == 1, f"a union the glass cannot describe: {t}"
            out = describe(rest[0])
        return out | {"nullable": True} if nullable else out
    if isinstance(t, mi.StrType):
        return _drop_none(type="str", min=t.min_length, max=t.max_length, pattern=t.pattern)
    if isinstance(t, mi.IntType):
        assert t.gt is None and t.lt is None and t.multiple_of is None, t
        return _drop_none(type="int", min=t.ge, max=t.le)
    if isinstance(t, mi.FloatType):
        assert t == mi.FloatType(), t
        return {"type": "float"}
    if isinstance(t, mi.BoolType):
        return {"type": "bool"}
    if isinstance(t, mi.LiteralType):
        return {"type": "enum", "values": sorted(t.values)}
    if isinstance(t, mi.EnumType):
        return {"type": "enum", "values": sorted(m.value for m in t.cls)}
    if isinstance(t, mi.ListType):
        assert t.min_length is None, t
        return _drop_none(type="list", of=describe(t.item_type), max=t.max_length)
    if isinstance(t, mi.DictType):
        assert t.min_length is None, t
        return _drop_none(
            type="dict", key=describe(t.key_type), of=describe(t.value_type), max=t.max_length
        )
    if isinstance(t, mi.StructType):
        return {"type": "object", "fields": struct_fields(t)}
    raise AssertionError(f"a type the glass cannot describe: {t}")


def _drop_none(**items: Any) -> Descriptor:
    return {k: v for k, v in items.items() if v is not None}


def struct_fields(info: mi.StructType) -> dict[str, Descriptor]:
    fields = {}
    for f in info.fields:
        assert f.name == f.encode_name, f"renamed on the wire: {f.name}"
        fields[f.name] = describe(f.type) | ({} if f.required else {"optional": True})
    return fields


def engine_side(union: Any) -> dict[str, dict[str, Descriptor]]:
    """Message type -> its fields' descriptors, for each struct of ``union``."""
    messages = {}
    for info in mi.multi_type_info(get_args(union)):
        assert isinstance(info, mi.StructType) and info.tag_field == "type", info
        assert isinstance(info.tag, str) and info.forbid_unknown_fields, info
        messages[info.tag] = struct_fields(info)
    return messages


def glass_side(messages: dict[str, dict[str, Descriptor]]) -> dict[str, dict[str, Descriptor]]:
    """The glass's SCHEMA half, reduced to what both sides must agree on."""
    return {tag: {name: compared(d) for name, d in f.items()} for tag, f in messages.items()}


def compared(d: Descriptor) -> Descriptor:
    out: Descriptor = {}
    for key in COMPARED:
        value = d.get(key)
        if value is None or value is False:
            continue
        if key in ("of", "key"):
            value = compared(value)
        elif key == "fields":
            value = {name: compared(f) for name, f in value.items()}
        elif key == "values":
            value = sorted(value)
        out[key] = value
    return out


def differences(glass: Any, engine: Any, where: str = "") -> list[str]:
    """Where two descriptions differ, one line each."""
    if isinstance(glass, dict) and isinstance(engine, dict):
        lines = []
        for key in sorted(set(glass) | set(engine)):
            if key not in engine:
                lines.append(f"{where}.{key}: only in ui/protocol.js ({glass[key]!r})")
            elif key not in glass:
                lines.append(f"{where}.{key}: only in glass_messages.py ({engine[key]!r})")
            else:
                lines += differences(glass[key], engine[key], f"{where}.{key}")
        return lines
    return [] if glass == engine else [f"{where}: protocol.js {glass!r}, engine {engine!r}"]


DIRECTIONS = [("toGlass", gm.EngineMessage), ("toEngine", gm.GlassMessage)]


@pytest.mark.parametrize(("direction", "union"), DIRECTIONS, ids=["to_glass", "to_engine"])
def test_the_glass_and_the_engine_describe_the_same_messages(direction: str, union: Any) -> None:
    glass = glass_side(js_schema()[direction])
    engine = engine_side(union)
    assert sorted(glass) == sorted(engine), "the message types differ"
    problems = differences(glass, engine, direction)
    assert not problems, "ui/protocol.js and glass_messages.py disagree:\n" + "\n".join(problems)


def test_the_schema_is_all_the_glass_exports_about_messages() -> None:
    """Nothing else is in SCHEMA, and every JS descriptor is one the comparison reads."""
    schema = js_schema()
    assert sorted(schema) == ["toEngine", "toGlass"]
    kinds = {"str", "int", "float", "bool", "enum", "list", "dict", "object"}

    def walk(d: Descriptor, where: str) -> None:
        assert d.get("type") in kinds, f"{where}: {d}"
        for key in ("of", "key"):
            if key in d:
                walk(d[key], f"{where}.{key}")
        for name, f in d.get("fields", {}).items():
            walk(f, f"{where}.{name}")

    for direction, messages in schema.items():
        for tag, fields in messages.items():
            for name, d in fields.items():
                walk(d, f"{direction}.{tag}.{name}")


# ---------------------------------------------------------------- the engine's decoder

SAMPLES: list[gm.ToEngine] = [
    gm.Join(name="Ada Lovelace"),
    gm.Chat(text="hello 👋"),
    gm.Admit(id=7),
    gm.AdmitAll(),
    gm.Deny(id="12"),
    gm.Lock(locked=True),
    gm.AutoAdmit(on=False),
    gm.Remove(leaf=3, replace_invitation=True, fingerprint="abcd ef01"),
    gm.SetHost(leaf=4, host=True),
    gm.Verify(leaf=0, verified=False, fingerprint=None),
    gm.Rotate(),
    gm.RequestKeyframe(leaf=gm.U32, kind="screen"),
    gm.Leave(),
    gm.MediaState(mic=True, cam=False, screen=True),
    gm.Pin(leaf=5),
    gm.Unpin(leaf="5"),
    gm.View(mode="speaker"),
    gm.Hand(up=True),
    gm.LowerHand(leaf=2),
    gm.React(emoji="\U0001f389"),
    gm.AskUnmute(leaf=3, fingerprint="abcd"),
    gm.Mute(leaf="3"),
    gm.Record(on=True),
    gm.Remember(
        choices=gm.Remembered(
            name="Ada", camera="Front camera", mic_on=False, lang="de", view="speaker"
        )
    ),
    gm.Stats(
        interval_ms=2003,
        decoded={"1:video": 60},
        latency_ms={"1:audio": [12.5, 14.0, -3.1]},
        decoded_total={"1:video": 600},
        sent_total={"audio": 100, "video": 60, "screen": 0},
        lag_skips=1,
        audio_dropped=2,
        audio={"1": {"bufferedMs": 40, "jitterMs": 2.5, "underruns": None}},
    ),
]


def test_every_glass_message_has_a_sample_and_a_handler() -> None:
    types = set(get_args(gm.GlassMessage))
    assert {type(m) for m in SAMPLES} == types
    assert set(HANDLERS) == types


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_glass_message_round_trips(message: gm.ToEngine) -> None:
    assert parse_control(msgspec.json.encode(message).decode()) == message


def test_what_the_glass_sends_is_decoded() -> None:
    """As the page and its media worker write them (optional fields left out)."""
    assert parse_control('{"type":"remove","leaf":"5"}') == gm.Remove(leaf="5")
    assert gm.as_int(gm.Remove(leaf="0000000005").leaf) == 5
    assert parse_control('{"leaf":2,"type":"request_keyframe","kind":"video"}') == (
        gm.RequestKeyframe(leaf=2, kind="video")
    )
    assert parse_control('{"type":"stats"}') == gm.Stats()
    assert parse_control('{"type":"join","name":""}') == gm.Join(name="")  # the core says why


REFUSALS = [
    ("not json", "control message is not JSON"),
    ('{"type": "chat", "text": "\\udc00"}', "control message is not JSON"),
    ("[1, 2]", 'control message must be an object with a string "type"'),
    ("{}", 'control message must be an object with a string "type"'),
    ('{"type": 5}', 'control message must be an object with a string "type"'),
    ('{"type": "nonsense"}', "unknown message type 'nonsense'"),
    ('{"type": "' + "x" * 60 + '"}', f"unknown message type {'x' * 40!r}"),
    ('{"type": "admit"}', '"id" is missing'),
    ('{"type": "admit", "id": "x"}', '"id" must be an integer'),
    ('{"type": "admit", "id": true}', '"id" must be an integer'),
    ('{"type": "admit", "id": 1.5}', '"id" must be an integer'),
    ('{"type": "admit", "id": -1}', '"id" must be at least 0'),
    ('{"type": "admit", "id": 4294967296}', '"id" must be at most 4294967295'),
    ('{"type": "admit", "id": "4294967296"}', '"id" must be an integer'),
    ('{"type": "admit", "id": 1, "by": "me"}', '"by" is not expected here'),
    ('{"type": "lock", "locked": "yes"}', '"locked" must be true or false'),
    ('{"type": "remove", "leaf": 3, "replace_invitation": 1}',
     '"replace_invitation" must be true or false'),
    ('{"type": "verify", "leaf": 3, "verified": true, "fingerprint": 7}',
     '"fingerprint" must be a string or null'),
    ('{"type": "media_state", "mic": false}', '"cam" is missing'),
    ('{"type": "request_keyframe", "leaf": 1, "kind": "audio"}',
     '"kind" must be "screen" or "video"'),
    ('{"type": "chat", "text": ""}', '"text" must not be empty'),
    ('{"type": "chat", "text": "' + "a" * 4001 + '"}', '"text" is too long (at most 4000)'),
    ('{"type": "join", "name": "' + "a" * 65 + '"}', '"name" is too long (at most 64)'),
    ('{"type": "join", "name": null}', '"name" must be a string'),
    ('{"type": "stats", "decoded": {"1:video": 1.5}}', '"decoded[...]" must be an integer'),
    ('{"type": "stats", "rtt_ms": 12.5}', '"rtt_ms" is not expected here'),
]  # fmt: skip


@pytest.mark.parametrize(("text", "said"), REFUSALS)
def test_a_refused_message_is_said_in_one_line(text: str, said: str) -> None:
    with pytest.raises(BadMessage) as refused:
        parse_control(text)
    assert str(refused.value) == said


def test_a_message_too_large_is_refused_before_decoding() -> None:
    text = '{"type": "chat", "text": "' + "a" * MAX_TEXT_CHARS + '"}'
    with pytest.raises(BadMessage, match=r"^control message too large$"):
        parse_control(text)


def test_the_glass_and_the_engine_accept_the_same_messages() -> None:
    """protocol.js's check of outgoing messages and the engine's decoder agree."""
    texts = [msgspec.json.encode(m).decode() for m in SAMPLES] + [t for t, _ in REFUSALS]
    texts = [t for t in texts if _is_json(t) and "\\udc" not in t]  # JSON for both
    checked = node(
        "let input = ''; for await (const chunk of process.stdin) input += chunk;"
        "const out = JSON.parse(input).map((t) => { let m;"
        " try { m = JSON.parse(t); } catch { return 'not JSON'; }"
        " return P.checkOutgoing(m); });"
        "process.stdout.write(JSON.stringify(out));",
        stdin=json.dumps(texts),
    )
    for text, problem in zip(texts, checked, strict=True):
        try:
            parse_control(text)
            engine_ok = True
        except BadMessage:
            engine_ok = False
        assert engine_ok == (problem is None), (text[:80], problem)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- engine -> glass


def test_the_engine_writes_what_the_glass_has_always_read() -> None:
    """The outbox's JSON: ``type`` first, None as null, ``away`` only when set."""
    outbox = GlassOutbox()
    entry = dict(name="Ada", fingerprint="ab", is_host=True, is_self=True, role="owner",
                 familiarity="you", verified=False, confusable_with=None, mic=None,
                 cam=False)  # fmt: skip
    roster = [gm.RosterEntry(leaf=0, **entry), gm.RosterEntry(leaf=1, away=True, **entry)]
    outbox.put_control(gm.Ended(reason="you left the meeting", outcome=None, joined=True))
    outbox.put_control(
        gm.State(
            phase="in_meeting", self_leaf=0, is_host=True, epoch=2, security_code=None,
            roster=roster, lobby=[], lobby_waiting=0,
            policy=gm.Policy(locked=False, auto_admit=True),
            pending_removals=[], ordering=None, link=None, info_url="https://r.example/m",
            connection="connected", reconnects=0, rejoining=None, rejoin=None,
        )
    )
    ended = outbox._control.popleft()
    assert ended == '{"type":"ended","reason":"you left the meeting","outcome":null,"joined":true}'
    state = json.loads(outbox._control.popleft())
    assert next(iter(state)) == "type" and state["security_code"] is None
    assert "away" not in state["roster"][0] and state["roster"][1]["away"] is True
    assert state["roster"][0]["role"] == "owner"
    assert state["roster"][0]["mic"] is None and state["roster"][0]["cam"] is False
    # And it reads back as the same message (what tests and tools may decode).
    decoder = msgspec.json.Decoder(gm.EngineMessage)
    outbox.put_control(gm.Alert(id=1, kind=AlertKind.forged_reply, message="m"))
    assert decoder.decode(outbox._control.popleft()) == gm.Alert(
        id=1, kind=AlertKind.forged_reply, message="m"
    )
