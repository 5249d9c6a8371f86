"""Messages test vectors (RFC 9420 / mls-implementations test-vectors.md "Messages").

Every field of every entry must decode with the matching structure and
re-encode to the same bytes; every strict prefix must be rejected. The wire
structures embedded in other vector files are round-tripped as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from mls_vectors import load_vectors

from clave.mls.errors import DecodeError
from clave.mls.structs import (
    Add,
    AuthenticatedContent,
    Commit,
    ContentType,
    ExternalInit,
    GroupContextExtensions,
    GroupInfo,
    GroupSecrets,
    KeyPackage,
    MLSMessage,
    PreSharedKey,
    PrivateMessage,
    PublicMessage,
    RatchetTree,
    ReInit,
    Remove,
    Update,
    UpdatePath,
    Welcome,
    WireFormat,
    proposal_from_bytes,
    proposal_to_bytes,
)

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "mls"


def suite_params_plain(entries: list[dict[str, Any]]) -> list[Any]:
    """One param per entry (messages.json entries carry no cipher suite)."""
    return [pytest.param(e, id=f"entry{i}") for i, e in enumerate(entries)]


@cache
def load(name: str) -> list[dict[str, Any]]:
    path = VECTORS / name
    if not path.is_file():
        pytest.fail(f"test vector file missing: {path}")
    data = json.loads(path.read_text())
    assert isinstance(data, list) and data, f"{name}: expected a non-empty JSON array"
    return data


Decoder = Callable[[bytes], Any]
Encoder = Callable[[Any], bytes]


def _to_bytes(obj: Any) -> bytes:
    out = obj.to_bytes()
    assert isinstance(out, bytes)
    return out


# field -> (decoder, encoder, expected type, expected wire format or None)
FIELDS: dict[str, tuple[Decoder, Encoder, type, WireFormat | None]] = {
    "mls_welcome": (MLSMessage.from_bytes, _to_bytes, Welcome, WireFormat.mls_welcome),
    "mls_group_info": (MLSMessage.from_bytes, _to_bytes, GroupInfo, WireFormat.mls_group_info),
    "mls_key_package": (
        MLSMessage.from_bytes,
        _to_bytes,
        KeyPackage,
        WireFormat.mls_key_package,
    ),
    "ratchet_tree": (RatchetTree.from_bytes, _to_bytes, RatchetTree, None),
    "group_secrets": (GroupSecrets.from_bytes, _to_bytes, GroupSecrets, None),
    "add_proposal": (Add.from_bytes, _to_bytes, Add, None),
    "update_proposal": (Update.from_bytes, _to_bytes, Update, None),
    "remove_proposal": (Remove.from_bytes, _to_bytes, Remove, None),
    "pre_shared_key_proposal": (PreSharedKey.from_bytes, _to_bytes, PreSharedKey, None),
    "re_init_proposal": (ReInit.from_bytes, _to_bytes, ReInit, None),
    "external_init_proposal": (ExternalInit.from_bytes, _to_bytes, ExternalInit, None),
    "group_context_extensions_proposal": (
        GroupContextExtensions.from_bytes,
        _to_bytes,
        GroupContextExtensions,
        None,
    ),
    "commit": (Commit.from_bytes, _to_bytes, Commit, None),
    "public_message_application": (
        MLSMessage.from_bytes,
        _to_bytes,
        PublicMessage,
        WireFormat.mls_public_message,
    ),
    "public_message_proposal": (
        MLSMessage.from_bytes,
        _to_bytes,
        PublicMessage,
        WireFormat.mls_public_message,
    ),
    "public_message_commit": (
        MLSMessage.from_bytes,
        _to_bytes,
        PublicMessage,
        WireFormat.mls_public_message,
    ),
    "private_message": (
        MLSMessage.from_bytes,
        _to_bytes,
        PrivateMessage,
        WireFormat.mls_private_message,
    ),
}

PUBLIC_CONTENT_TYPE = {
    "public_message_application": ContentType.application,
    "public_message_proposal": ContentType.proposal,
    "public_message_commit": ContentType.commit,
}


def test_vector_file_has_every_field() -> None:
    for i, entry in enumerate(load("messages.json")):
        assert set(FIELDS) <= set(entry), f"entry {i} lacks {set(FIELDS) - set(entry)}"


@pytest.mark.parametrize("entry", suite_params_plain(load_vectors("messages")))
def test_decode_reencode(entry: dict[str, Any]) -> None:
    """Every field of one messages.json entry decodes and re-encodes byte for byte."""
    for field in sorted(FIELDS):
        decode, encode, expected_type, wire_format = FIELDS[field]
        data = bytes.fromhex(entry[field])
        obj = decode(data)
        if wire_format is not None:
            assert isinstance(obj, MLSMessage)
            assert obj.wire_format is wire_format, field
            body = obj.body
        else:
            body = obj
        assert isinstance(body, expected_type), f"{field}: got {type(body).__name__}"
        if field in PUBLIC_CONTENT_TYPE:
            assert isinstance(body, PublicMessage)
            assert body.content.content_type is PUBLIC_CONTENT_TYPE[field], field
        assert encode(obj) == data, f"{field} does not re-encode identically"
        # decoding is deterministic and the result is a value object
        assert decode(data) == obj


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_truncations_rejected(field: str) -> None:
    decode = FIELDS[field][0]
    for entry in load("messages.json")[:4]:
        data = bytes.fromhex(entry[field])
        for n in range(len(data)):
            with pytest.raises(DecodeError):
                decode(data[:n])


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_trailing_bytes_rejected(field: str) -> None:
    decode = FIELDS[field][0]
    data = bytes.fromhex(load("messages.json")[0][field])
    with pytest.raises(DecodeError, match="trailing"):
        decode(data + b"\x00")


def _roundtrip(decode: Decoder, encode: Encoder, hex_data: str | None) -> int:
    if hex_data is None:
        return 0
    data = bytes.fromhex(hex_data)
    assert encode(decode(data)) == data
    return 1


def test_other_vector_files_roundtrip() -> None:
    """Structures embedded in the other vector files re-encode byte for byte."""
    msg = (MLSMessage.from_bytes, _to_bytes)
    tree = (RatchetTree.from_bytes, _to_bytes)
    count = 0
    for entry in load("tree-validation.json"):
        count += _roundtrip(*tree, entry["tree"])
    for entry in load("treekem.json"):
        count += _roundtrip(*tree, entry["ratchet_tree"])
        for up in entry["update_paths"]:
            count += _roundtrip(UpdatePath.from_bytes, _to_bytes, up["update_path"])
    for entry in load("tree-operations.json"):
        count += _roundtrip(*tree, entry["tree_before"])
        count += _roundtrip(*tree, entry["tree_after"])
        count += _roundtrip(proposal_from_bytes, proposal_to_bytes, entry["proposal"])
    for name in (
        "passive-client-welcome.json",
        "passive-client-handling-commit.json",
        "passive-client-random.json",
    ):
        for entry in load(name):
            count += _roundtrip(*msg, entry["key_package"])
            count += _roundtrip(*msg, entry["welcome"])
            count += _roundtrip(*tree, entry.get("ratchet_tree"))
            for epoch in entry["epochs"]:
                for proposal in epoch["proposals"]:
                    count += _roundtrip(*msg, proposal)
                count += _roundtrip(*msg, epoch["commit"])
    for entry in load("welcome.json"):
        count += _roundtrip(*msg, entry["key_package"])
        count += _roundtrip(*msg, entry["welcome"])
    for entry in load("transcript-hashes.json"):
        count += _roundtrip(
            AuthenticatedContent.from_bytes, _to_bytes, entry["authenticated_content"]
        )
    for entry in load("message-protection.json"):
        count += _roundtrip(proposal_from_bytes, proposal_to_bytes, entry["proposal"])
        count += _roundtrip(Commit.from_bytes, _to_bytes, entry["commit"])
        for key in ("proposal_pub", "proposal_priv", "commit_pub", "commit_priv"):
            count += _roundtrip(*msg, entry[key])
        count += _roundtrip(*msg, entry["application_priv"])
    assert count > 3000
