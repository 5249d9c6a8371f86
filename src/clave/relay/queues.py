"""One receiver's outgoing queue: control never dropped, media dropped by policy.

Two backlogs feed one writer task:

* **control** (handshakes, welcomes, join requests, app messages, presence,
  errors): never dropped. If it grows beyond ``control_cap`` the queue is
  marked :attr:`OutQueue.overflowed`, emptied, and the receiver must be
  disconnected as too slow; that harms nobody else.
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

A :class:`Backlog` bounds a group of queues together: all connections of one
client address (big junk: without it, one client's connections that stop
reading would each hold ``control_cap`` plus ``hard_limit`` bytes of what
others send them). It counts what its queues hold plus the message each one
is writing. Media over ``media_cap`` (media only) is dropped (a queue with
nothing queued or in flight still takes one frame, so one slow connection does
not starve its fast siblings); over ``cap`` (everything) the group's largest
queue overflows (its connection is disconnected as too slow).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

AUDIO = 0
"""Stream kind value of audio (clave.wire.StreamKind.audio)."""


class Backlog:
    """Bytes held for a group of receivers (one client address): queued or being written."""

    __slots__ = ("cap", "media", "media_cap", "overflows", "peak", "queued", "queues")

    def __init__(self, cap: int, media_cap: int) -> None:
        self.cap = cap
        self.media_cap = media_cap
        self.queued = 0
        """Bytes held in all: control and media, queued or in flight."""
        self.media = 0
        """Of ``queued``, media bytes."""
        self.peak = 0
        """The most ``queued`` has ever been."""
        self.overflows = 0
        """Queues this backlog made overflow (their connections were disconnected)."""
        self.queues: set[OutQueue] = set()

    def add(self, size: int, media: bool = False) -> None:
        self.queued += size
        if media:
            self.media += size
        if self.queued > self.peak:
            self.peak = self.queued

    def remove(self, size: int, media: bool = False) -> None:
        self.queued -= size
        if media:
            self.media -= size

    def media_fits(self, size: int) -> bool:
        return self.media + size <= self.media_cap

    def trim(self) -> None:
        """While over ``cap``, the group's largest queue overflows (and lets go of its bytes)."""
        while self.queued > self.cap:
            live = (q for q in self.queues if not q.overflowed)
            largest = max(live, key=OutQueue.held, default=None)
            if largest is None or not largest.held():
                return
            self.overflows += 1
            largest.overflow(by_group=True)


class OutQueue:
    """Bounded-by-policy outgoing queue of one receiver."""

    __slots__ = (
        "_audio",
        "_control",
        "_hard",
        "_high",
        "_inflight",
        "_inflight_media",
        "_retry",
        "_seq",
        "_skipping",
        "_video",
        "backlog",
        "control_bytes",
        "control_cap",
        "dropped",
        "media_bytes",
        "on_overflow",
        "on_ready",
        "overflowed",
        "overflowed_by_group",
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
        self._inflight = 0
        """Size of the message last popped (being written) while a backlog counts it."""
        self._inflight_media = False
        self.dropped = 0
        self.overflowed = False
        self.overflowed_by_group = False
        """True if it overflowed because its backlog (not its own cap) was full."""
        self.backlog: Backlog | None = None

    def __len__(self) -> int:
        return len(self._control) + len(self._audio) + len(self._video)

    def held(self) -> int:
        """Bytes this queue holds: queued plus the message being written."""
        return self.control_bytes + self.media_bytes + self._inflight

    def _held_media(self) -> int:
        return self.media_bytes + (self._inflight if self._inflight_media else 0)

    def attach(self, backlog: Backlog) -> None:
        """Count this queue in ``backlog`` (its client address's) from now on."""
        self.detach()
        self.backlog = backlog
        backlog.queues.add(self)
        backlog.add(self.held() - self._held_media())
        backlog.add(self._held_media(), media=True)

    def detach(self) -> None:
        """Stop counting this queue in its backlog (the connection is gone)."""
        backlog = self.backlog
        if backlog is not None:
            backlog.remove(self.held() - self._held_media())
            backlog.remove(self._held_media(), media=True)
            backlog.queues.discard(self)
            self.backlog = None

    def _ready(self) -> None:
        if self.on_ready is not None:
            self.on_ready()

    def _grow(self, size: int, media: bool = False) -> None:
        if self.backlog is not None:
            self.backlog.add(size, media)

    def _shrink(self, size: int, media: bool = False) -> None:
        if self.backlog is not None:
            self.backlog.remove(size, media)

    def overflow(self, by_group: bool = False) -> None:
        """Mark this receiver too slow (once) and let go of its backlog now: it is being
        disconnected (``on_overflow``), so nothing queued would be sent anyway, and its
        bytes must not wait for the next event loop turn to be freed."""
        if self.overflowed:
            return
        self.overflowed = True
        self.overflowed_by_group = by_group
        self.clear()
        if self.on_overflow is not None:
            self.on_overflow()

    def push_control(self, data: bytes) -> bool:
        """Queue a control message; False if the backlog is now over its cap (too slow)."""
        if self.overflowed:
            return False
        self._control.append(data)
        self.control_bytes += len(data)
        self._grow(len(data))
        self._ready()
        if self.control_bytes > self.control_cap:
            self.overflow()
            return False
        if self.backlog is not None:
            self.backlog.trim()
        return not self.overflowed

    def push_media(self, data: bytes, sender: int, kind: int, keyframe: bool, now: float) -> bool:
        """Queue (or drop) a media message; True if a keyframe should be requested from sender."""
        if self.overflowed:
            return False
        size = len(data)
        if kind == AUDIO:
            if not self._make_room(size):
                self.dropped += 1
                return False
            self._seq += 1
            self._audio.append((self._seq, data))
        else:
            key = sender << 2 | kind
            skipping = self._skipping
            if keyframe:
                if not self._make_room(size):
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
                if self.media_bytes > self._high or not self._group_fits(size):
                    self.dropped += 1
                    return self._lost(key, now)
            self._seq += 1
            self._video.append((self._seq, data))
        self.media_bytes += size
        self._grow(size, media=True)
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

    def _group_fits(self, size: int) -> bool:
        """Whether the backlog takes ``size`` more media bytes (an idle queue takes any one)."""
        backlog = self.backlog
        return (
            backlog is None
            or backlog.media_fits(size)
            or (self.media_bytes == 0 and self._inflight == 0)
        )

    def _fits(self, size: int) -> bool:
        own = self.media_bytes == 0 or self.media_bytes + size <= self._hard
        return own and self._group_fits(size)

    def _make_room(self, size: int) -> bool:
        """Drop queued audio, oldest first, until ``size`` more bytes fit; True if they do."""
        audio = self._audio
        while audio and not self._fits(size):
            dropped = len(audio.popleft()[1])
            self.media_bytes -= dropped
            self._shrink(dropped, media=True)
            self.dropped += 1
        return self._fits(size)

    def forget(self, sender: int) -> None:
        """Drop the skip state of a sender that left the room."""
        for kind in (1, 2):
            self._skipping.pop(sender << 2 | kind, None)

    def pop(self) -> bytes | None:
        """The next message to send (control first, then media in arrival order), or None.

        The previous message counts as written now; with a backlog, the returned one
        stays counted in it until the next ``pop`` (it is in flight).
        """
        self._shrink(self._inflight, self._inflight_media)
        self._inflight = 0
        media = False
        if self._control:
            data = self._control.popleft()
            self.control_bytes -= len(data)
        else:
            media = True
            audio = self._audio
            video = self._video
            if video and not (audio and audio[0][0] < video[0][0]):
                data = video.popleft()[1]
            elif audio:
                data = audio.popleft()[1]
            else:
                return None
            self.media_bytes -= len(data)
        if self.backlog is not None:
            self._inflight = len(data)
            self._inflight_media = media
        return data

    def clear(self) -> None:
        """Forget everything queued (the receiver is gone)."""
        self._shrink(self.held() - self._held_media())
        self._shrink(self._held_media(), media=True)
        self._control.clear()
        self._audio.clear()
        self._video.clear()
        self._skipping.clear()
        self.control_bytes = self.media_bytes = self._inflight = 0
