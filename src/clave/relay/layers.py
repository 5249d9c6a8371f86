"""Simulcast at the relay: which layer of each video sender a receiver gets.

A sender may send each video or screen stream in up to three layers (the media
envelope's flags name the layer, authenticated by SFrame). A receiver gets one
layer per sender and kind, chosen by its ``Subscribe`` (``layers[conn]`` or
``layer``), lowered by the relay's congestion cap, and resolved against the
layers that sender actually sends (:class:`SenderLayers`): the highest one at or
below the wish, else the lowest one sent. A layer stops counting as sent once
``STALE_AFTER`` seconds *and* ``STALE_FRAMES`` frames of the sender's other layers
went by without it: a sender whose whole process paused (a busy machine) resumes
with its lowest layer first, and that alone must not look like its top layers
stopped.

A change of layer (a new wish, a cap, the sender dropping its top layer) takes
effect at the next **keyframe** of the new layer: until then the receiver keeps
getting the old layer, and the relay asks the sender for that keyframe (at most
every ``retry`` seconds), so a decoder never gets a delta of a new layer before
its keyframe. A receiver that has no layer of a sender yet (just subscribed) gets
the target layer at once; its decoder asks for a keyframe as after any gap.

**Congestion** (:meth:`ReceiverLayers.congestion`): when a receiver's media queue
at the relay holds more than ``downgrade_at`` bytes, its cap drops one layer (at
most once per ``hold`` seconds) and the receiver is told (``LayerCap``) so its
engine re-subscribes; after ``restore_after`` seconds without growth and with a
short queue the cap rises one layer again. Dropping deltas (:mod:`.queues`) only
starts higher up, so a slow receiver first gets a smaller picture, not a frozen
one, and never slows anybody else.

Everything here is plain data and arithmetic on injected times (no I/O).
"""

from __future__ import annotations

from clave.wire import MAX_LAYER

LAYERS = MAX_LAYER + 1
STALE_AFTER = 2.0
"""Seconds after which a layer a sender stopped sending no longer counts as sent..."""
STALE_FRAMES = 10
"""... provided this many frames of its other layers (same kind) arrived meanwhile."""


def _resolve_table() -> tuple[tuple[int, ...], ...]:
    """``table[mask][want]``: the layer to forward when the sender sends the layers of
    bit ``mask`` and the receiver wants ``want`` (-1: the sender sends no layer)."""
    table = []
    for mask in range(1 << LAYERS):
        sent = [layer for layer in range(LAYERS) if mask >> layer & 1]
        row = []
        for want in range(LAYERS):
            below = [layer for layer in sent if layer <= want]
            row.append(max(below) if below else (min(sent) if sent else -1))
        table.append(tuple(row))
    return tuple(table)


RESOLVE = _resolve_table()


class SenderLayers:
    """The layers one connection sends, per kind (video 1, screen 2), recently seen."""

    __slots__ = ("_check", "_count", "_seen", "_seen_at", "masks")

    def __init__(self) -> None:
        self._seen = [float("-inf")] * (3 * LAYERS)
        self._count = [0, 0, 0]
        """Per kind, frames seen so far (all layers)."""
        self._seen_at = [0] * (3 * LAYERS)
        """Per kind and layer, ``_count`` when that layer was last seen."""
        self._check = [0.0, 0.0, 0.0]
        self.masks = [0, 0, 0]
        """Per kind, bit ``l`` set if layer ``l`` arrived within ``STALE_AFTER``."""

    def saw(self, kind: int, layer: int, now: float) -> int:
        """A frame of ``kind`` and ``layer`` arrived; the kind's layer mask now."""
        base = kind * LAYERS
        self._seen[base + layer] = now
        count = self._count[kind] = self._count[kind] + 1
        self._seen_at[base + layer] = count
        mask = self.masks[kind]
        if not mask >> layer & 1:
            mask |= 1 << layer
            self.masks[kind] = mask
        if now >= self._check[kind]:
            self._check[kind] = now + 1.0
            seen, seen_at = self._seen, self._seen_at
            mask = sum(
                1 << layer
                for layer in range(LAYERS)
                if now - seen[base + layer] < STALE_AFTER
                or (count - seen_at[base + layer] < STALE_FRAMES and seen_at[base + layer])
            )
            self.masks[kind] = mask
        return mask


class ReceiverLayers:
    """One receiver's layer wishes, congestion cap and the layer it gets of each stream."""

    __slots__ = (
        "_asked",
        "_current",
        "cap",
        "capped_at",
        "congested_at",
        "default",
        "per_sender",
    )

    def __init__(self) -> None:
        self.default = MAX_LAYER
        """The layer wished for senders not in ``per_sender``."""
        self.per_sender: dict[int, int] = {}
        self.cap = MAX_LAYER
        """The congestion cap: no layer above it is forwarded."""
        self.capped_at = float("-inf")
        """When the cap last moved."""
        self.congested_at = float("-inf")
        """When the receiver's queue was last over the downgrade mark."""
        self._current: dict[int, int] = {}
        """(sender << 2 | kind) -> the layer being forwarded."""
        self._asked: dict[int, float] = {}
        """(sender << 2 | kind) -> when a keyframe of the next layer was last asked for."""

    def want(self, default: int, per_sender: dict[int, int] | None) -> None:
        self.default = default
        self.per_sender = dict(per_sender) if per_sender else {}

    def forget(self, sender: int) -> None:
        """``sender`` left, or is no longer subscribed: start again at a keyframe."""
        for kind in (1, 2):
            key = sender << 2 | kind
            self._current.pop(key, None)
            self._asked.pop(key, None)

    def target(self, sender: int, mask: int) -> int:
        """The layer of ``sender`` this receiver should get (-1: none is sent)."""
        want = self.per_sender.get(sender, self.default) if self.per_sender else self.default
        return RESOLVE[mask][want if want <= self.cap else self.cap]

    def admit(
        self,
        sender: int,
        kind: int,
        layer: int,
        keyframe: bool,
        mask: int,
        now: float,
        retry: float,
    ) -> tuple[bool, bool]:
        """``(forward, ask)`` for a frame: forward it to this receiver? ask the sender
        for a keyframe of the target layer (the switch is waiting for one)?"""
        key = sender << 2 | kind
        target = self.target(sender, mask)
        current = self._current.get(key)
        if layer == target:
            if current == target:
                return True, False
            if keyframe or current is None:
                self._current[key] = target
                self._asked.pop(key, None)
                return True, False
            asked = self._asked.get(key)
            if asked is not None and now - asked < retry:
                return False, False
            self._asked[key] = now
            return False, True
        return layer == current, False

    def congestion(
        self, queued: int, downgrade_at: int, now: float, hold: float, restore_after: float
    ) -> int | None:
        """The new cap if a receiver with ``queued`` media bytes should have its cap
        moved (one layer down when congested, up after a calm spell), else None."""
        if queued > downgrade_at:
            self.congested_at = now
            if self.cap > 0 and now - self.capped_at >= hold:
                self.cap -= 1
                self.capped_at = now
                return self.cap
            return None
        if (
            self.cap < MAX_LAYER
            and now - self.congested_at >= restore_after
            and queued < downgrade_at // 4
        ):
            self.cap += 1
            self.capped_at = self.congested_at = now  # the next raise needs another calm spell
            return self.cap
        return None


__all__ = ["LAYERS", "RESOLVE", "STALE_AFTER", "STALE_FRAMES", "ReceiverLayers", "SenderLayers"]
