"""WebSocket close codes of the relay (docs/PROTOCOL.md, "Relay channel")."""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes the relay uses (4000-4999 are for applications)."""

    normal = 1000
    going_away = 1001
    bad_message = 4400
    not_joined = 4403
    too_slow = 4408
    rotated = 4410
    """Dropped by a member's ``Rotate`` (the invitation was replaced; HTTP 410 Gone)."""
    too_large = 4413
    rate_limited = 4429
    internal = 4500
    full = 4503
    """The relay or the room is at its capacity (``room_full``); try again later."""


__all__ = ["CloseCode"]
