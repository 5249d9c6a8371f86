"""Shared fixtures for the media tests: one encoded VP8 clip, made once."""

from __future__ import annotations

import pytest

from clave.media import EncodedChunk, TestPatternSource, VideoEncoder


@pytest.fixture(scope="session")
def vp8_clip() -> list[EncodedChunk]:
    """150 frames (5 s) of the 640x360 test pattern at 30 fps, default settings."""
    source = TestPatternSource(label="clip")
    encoder = VideoEncoder()
    chunks: list[EncodedChunk] = []
    for _ in range(150):
        chunks += encoder.encode(source.next_frame())
    return chunks
