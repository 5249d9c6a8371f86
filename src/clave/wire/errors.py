"""The one error type of :mod:`clave.wire`."""

from __future__ import annotations


class WireError(Exception):
    """Malformed, oversized or unknown wire data; the message says which."""
