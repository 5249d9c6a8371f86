"""Transcript hash vectors (test-vectors.md "Transcript Hashes"; RFC 9420 section 8.2)."""

from __future__ import annotations

from typing import Any

import pytest
from mls_vectors import claimed_suite, h, load_vectors, suite_params

from clave.mls.ciphersuite import get_suite
from clave.mls.errors import ConfirmationTagError
from clave.mls.framing import FramingError, next_transcript_hashes
from clave.mls.key_schedule import (
    confirmed_transcript_hash,
    interim_transcript_hash,
    verify_confirmation_tag,
)
from clave.mls.structs import (
    AuthenticatedContent,
    Commit,
    FramedContent,
    FramedContentAuthData,
    Sender,
    WireFormat,
)

VECTORS = load_vectors("transcript-hashes")


@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_transcript_hashes_vector(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    auth = AuthenticatedContent.from_bytes(h(v["authenticated_content"]))
    assert auth.to_bytes() == h(v["authenticated_content"])
    assert isinstance(auth.content.content, Commit)
    tag = auth.auth.confirmation_tag
    assert tag is not None

    confirmed_after = h(v["confirmed_transcript_hash_after"])
    verify_confirmation_tag(suite, h(v["confirmation_key"]), confirmed_after, tag)

    before = h(v["interim_transcript_hash_before"])
    confirmed = confirmed_transcript_hash(
        suite, before, auth.confirmed_transcript_hash_input().to_bytes()
    )
    interim = interim_transcript_hash(suite, confirmed, tag)
    assert interim == suite.hash(confirmed + auth.interim_transcript_hash_input().to_bytes())
    assert (confirmed, interim) == (confirmed_after, h(v["interim_transcript_hash_after"]))
    assert next_transcript_hashes(suite, before, auth) == (confirmed, interim)


@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_transcript_confirmation_tag_mismatch(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    auth = AuthenticatedContent.from_bytes(h(v["authenticated_content"]))
    assert auth.auth.confirmation_tag is not None
    bad = bytearray(auth.auth.confirmation_tag)
    bad[0] ^= 1
    with pytest.raises(ConfirmationTagError):
        verify_confirmation_tag(
            suite, h(v["confirmation_key"]), h(v["confirmed_transcript_hash_after"]), bytes(bad)
        )


def test_transcript_hashes_need_a_commit() -> None:
    auth = AuthenticatedContent(
        WireFormat.mls_public_message,
        FramedContent(b"g", 0, Sender.member(0), b"", b"app"),
        FramedContentAuthData(b"sig"),
    )
    with pytest.raises(FramingError):
        next_transcript_hashes(get_suite(1), bytes(32), auth)
