"""One receiver's outgoing queue: control never dropped, media dropped by policy.

Two backlogs feed one writer task:

* **control** (handshakes, welcomes, join requests, app messages, presence,
  errors): never dropped. If it grows beyond ``control_cap`` the queue is
  marked :attr:`OutQueue.overflowed` and the receiver must be disconnected as
  too slow; that harms nobody else.
* **media**: while over ``high_water`` bytes, video and screen *deltas* are dropped.
  After a dropped delta the receiver cannot decode that sender's stream until
  the next keyframe, so further deltas of that sender and kind are skipped
  too, and the caller is told to ask the sender for a keyframe (once per
  recovery, repeated at most every ``keyframe_retry`` seconds while it lasts).
  Keyframes and audio may pass the high-water mark up to ``hard_limit``; to
  stay under it, queued audio is dropped, oldest first, and a frame that
  still does not fit is dropped (an empty queue takes any one frame).

Control messages are sent before media: a receiver learns of a new epoch
before the frames protected under it. The queue is plain data (no asyncio):
``on_ready`` is called after every push, ``on_overflow`` once when the
control backlog goes over its cap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

AUDIO = 0
"""Stream kind value of audio (clave.wire.StreamKind.audio)."""


class OutQueue:
    """Bounded-by-policy outgoing queue of one receiver."""

    __slots__ = (
        "_audio",
        "_control",
        "_hard",
        "_high",
        "_retry",
        "_seq",
        "_skipping",
        "_video",
        "control_bytes",
        "control_cap",
        "dropped",
        "media_bytes",
        "on_overflow",
        "on_ready",
        "overflowed",
    )

    def __init__(
        self,
        high_water: int,
        hard_limit: int,
        control_cap: int,
        keyframe_retry: float = 1.0,
        on_ready: Callable[[], None] | None = None,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self._high = high_water
        self._hard = hard_limit
        self._retry = keyframe_retry
        self.control_cap = control_cap
        self.on_ready = on_ready
        self.on_overflow = on_overflow
        self._control: deque[bytes] = deque()
        self._audio: deque[tuple[int, bytes]] = deque()
        self._video: deque[tuple[int, bytes]] = deque()
        self._seq = 0
        self._skipping: dict[int, float] = {}
        """(sender << 2 | kind) -> when a keyframe was last requested for it."""
        self.control_bytes = 0
        self.media_bytes = 0
        self.dropped = 0
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._control) + len(self._audio) + len(self._video)

    def _ready(self) -> None:
        if self.on_ready is not None:
            self.on_ready()

    def push_control(self, data: bytes) -> bool:
        """Queue a control message; False if the backlog is now over its cap (too slow)."""
        if self.overflowed:
            return False
        self._control.append(data)
        self.control_bytes += len(data)
        self._ready()
        if self.control_bytes > self.control_cap:
            self.overflowed = True
            if self.on_overflow is not None:
                self.on_overflow()
            return False
        return True

    def push_media(self, data: bytes, sender: int, kind: int, keyframe: bool, now: float) -> bool:
        """Queue (or drop) a media message; True if a keyframe should be requested from sender."""
        if self.overflowed:
            return False
        size = len(data)
        if kind == AUDIO:
            if self.media_bytes + size > self._hard and not self._evict_audio(size):
                self.dropped += 1
                return False
            self._seq += 1
            self._audio.append((self._seq, data))
        else:
            key = sender << 2 | kind
            skipping = self._skipping
            if keyframe:
                if self.media_bytes + size > self._hard and not self._evict_audio(size):
                    self.dropped += 1
                    return self._lost(key, now)
                skipping.pop(key, None)
            else:
                since = skipping.get(key)
                if since is not None:
                    self.dropped += 1
                    if now - since >= self._retry:
                        skipping[key] = now
                        return True
                    return False
                if self.media_bytes > self._high:
                    self.dropped += 1
                    return self._lost(key, now)
            self._seq += 1
            self._video.append((self._seq, data))
        self.media_bytes += size
        if self.on_ready is not None:
            self.on_ready()
        return False

    def _lost(self, key: int, now: float) -> bool:
        """A frame of ``key`` was dropped: skip its deltas until a keyframe; maybe ask for one."""
        since = self._skipping.get(key)
        if since is not None and now - since < self._retry:
            return False
        self._skipping[key] = now
        return True

    def _evict_audio(self, size: int) -> bool:
        """Drop queued audio, oldest first, until ``size`` more bytes fit under the hard limit."""
        audio = self._audio
        while audio and self.media_bytes + size > self._hard:
            self.media_bytes -= len(audio.popleft()[1])
            self.dropped += 1
        return self.media_bytes == 0 or self.media_bytes + size <= self._hard

    def forget(self, sender: int) -> None:
        """Drop the skip state of a sender that left the room."""
        for kind in (1, 2):
            self._skipping.pop(sender << 2 | kind, None)

    def pop(self) -> bytes | None:
        """The next message to send (control first, then media in arrival order), or None."""
        if self._control:
            data = self._control.popleft()
            self.control_bytes -= len(data)
            return data
        audio = self._audio
        video = self._video
        if video and not (audio and audio[0][0] < video[0][0]):
            data = video.popleft()[1]
        elif audio:
            data = audio.popleft()[1]
        else:
            return None
        self.media_bytes -= len(data)
        return data

    def clear(self) -> None:
        """Forget everything queued (the receiver is gone)."""
        self._control.clear()
        self._audio.clear()
        self._video.clear()
        self._skipping.clear()
        self.control_bytes = self.media_bytes = 0
