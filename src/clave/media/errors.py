"""Typed error for the media package."""

from __future__ import annotations

__all__ = ["MediaError"]


class MediaError(Exception):
    """Invalid media configuration, a codec that cannot be opened, or misuse.

    Decoders never raise on bad *input bytes*: they count an error and return
    zero frames instead (see :class:`clave.media.VideoDecoder`).
    """
