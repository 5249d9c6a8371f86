"""Relay settings: timeouts, caps, rate limits and queue sizes, with safe defaults."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from clave.wire import MAX_CONTROL_BYTES, MAX_MEDIA_BYTES


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Everything an operator or a test may tune. All sizes are in bytes, times in seconds.

    The rate defaults admit a 1080p60 camera plus a 1080p screen share and audio
    (about 15 Mbit/s with keyframe bursts) with room to spare.
    """

    heartbeat: float = 5.0
    """WebSocket ping interval; a peer that does not answer within half of it is gone
    (its members start counting the resume window then)."""
    join_timeout: float = 30.0
    """A connection must be admitted to a room (``Enter``) within this time."""
    close_timeout: float = 2.0
    """How long a closing handshake or a final error message may take."""

    max_rooms: int = 10_000
    replaced_kept: int = 10_000
    """Old room ids of replaced invitations remembered (oldest forgotten first), so that
    an old link is told "replaced" instead of opening an empty room of its own."""
    max_conns_per_room: int = 1_100
    """Connections in one room: a 1000-member meeting plus 100 waiting in its lobby (each
    costs the room's fan-out; a control message to a full room is 1100 deliveries)."""

    max_conns: int = 20_000
    """WebSocket connections held at once, admitted or not (room flood: finite memory)."""
    max_conns_per_address: int = 64
    """Connections from one client address (room flood: one client held 10 000 connections)."""
    max_rooms_per_address: int = 20
    """Live rooms created from one client address, until they empty (room flood)."""
    room_create_rate: float = 0.5
    """Rooms one client address may create per second, sustained (room churn)."""
    room_create_burst: float = 20.0
    max_room_conns_per_address: int = 32
    """Connections from one client address in one room (lobby flood: link holders crowding
    out joiners need 35 addresses to fill a room of 1100). Raise it when more of one
    meeting sits behind one NAT address."""
    address_backlog: int = 32 * 1024 * 1024
    """Bytes queued for (or being written to) all connections of one client address together;
    over it, its largest queue is disconnected as too slow (big junk into non-reading sinks)."""
    address_media_backlog: int = 16 * 1024 * 1024
    """Of ``address_backlog``, what media may fill; more media for that address is dropped
    (a queue with nothing queued or in flight still takes one frame)."""
    trusted_proxies: tuple[str, ...] = ()
    """Reverse proxies (addresses or CIDR networks) whose ``X-Forwarded-For`` names the
    client: only when the TCP peer is one of them is the header read (right to left,
    skipping trusted hops). Without it every client behind a proxy is one address."""
    ipv6_prefix: int = 64
    """IPv6 clients are counted by this prefix (a host usually holds a whole /64)."""

    msg_rate: float = 500.0
    """Sustained messages per second per connection (video 60 + screen 60 + audio 50 + control)."""
    msg_burst: float = 1_000.0
    byte_rate: float = 4_000_000.0
    """Sustained bytes per second per connection (32 Mbit/s)."""
    byte_burst: float = 8_000_000.0

    commit_rate: float = 1.0
    """Sustained Commit, Reopen and Rotate messages per second per connection."""
    commit_burst: float = 5.0
    room_commit_rate: float = 10.0
    """Sustained ordered commits, reopens and rotations per second per room."""
    room_commit_burst: float = 30.0
    max_open_epochs: int = 4
    """Open epoch slots one connection may own (see :mod:`clave.relay.ordering`)."""
    max_epoch_slots: int = 4_608
    """Epoch slots (open or consumed) one room keeps at most: more than every connection
    of a full room may hold open at once (``max_open_epochs`` x ``max_conns_per_room``),
    so an honest commit always finds a place. About 330 bytes each."""
    commit_log_bytes: int = 1024 * 1024
    """Bytes of ordered commits one room remembers for members coming back after a dropped
    connection (oldest forgotten first; a member further behind is admitted again)."""
    commit_log_total: int = 256 * 1024 * 1024
    """Bytes of remembered commits of all rooms together (beyond it, commits are not
    remembered)."""

    media_high_water: int = 1024 * 1024
    """Receiver media backlog above which video and screen deltas are dropped."""
    media_hard_limit: int = 4 * 1024 * 1024
    """Receiver media backlog above which audio is dropped too (oldest first)."""
    control_cap: int = 16 * 1024 * 1024
    """Receiver control backlog above which the receiver is disconnected as too slow."""
    keyframe_retry: float = 1.0
    """While a receiver waits for a keyframe, re-ask the sender at most this often."""
    media_downgrade_at: int = 256 * 1024
    """Receiver media backlog above which its simulcast cap drops one layer (see
    :mod:`clave.relay.layers`); below ``media_high_water``, so a receiver gets a smaller
    picture before it loses frames."""
    layer_hold: float = 2.0
    """Seconds between two congestion downgrades of one receiver."""
    layer_restore_after: float = 10.0
    """Seconds without congestion before a receiver's cap rises one layer again."""

    socket_send_buffer: int | None = None
    """SO_SNDBUF for WebSocket connections (None: the OS default, autotuned)."""

    def __post_init__(self) -> None:
        if not 0 < self.media_high_water <= self.media_hard_limit:
            raise ValueError("need 0 < media_high_water <= media_hard_limit")
        if not 0 < self.media_downgrade_at <= self.media_high_water:
            raise ValueError("need 0 < media_downgrade_at <= media_high_water")
        if self.control_cap < MAX_CONTROL_BYTES:
            raise ValueError("control_cap must hold at least one control message")
        for name in (
            "heartbeat",
            "join_timeout",
            "close_timeout",
            "msg_rate",
            "byte_rate",
            "commit_rate",
            "room_commit_rate",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.msg_burst < 1 or self.byte_burst < MAX_CONTROL_BYTES:
            raise ValueError("bursts must admit at least one message of the largest size")
        for name in (
            "max_rooms",
            "replaced_kept",
            "max_conns_per_room",
            "max_conns",
            "max_conns_per_address",
            "max_rooms_per_address",
            "max_room_conns_per_address",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.room_create_rate <= 0 or self.room_create_burst < 1:
            raise ValueError("need room_create_rate > 0 and room_create_burst >= 1")
        if self.address_backlog < MAX_CONTROL_BYTES:
            raise ValueError("address_backlog must hold at least one control message")
        if not 0 < self.address_media_backlog <= self.address_backlog:
            raise ValueError("need 0 < address_media_backlog <= address_backlog")
        if not 32 <= self.ipv6_prefix <= 128:
            raise ValueError("ipv6_prefix must be within 32..128")
        for proxy in self.trusted_proxies:
            ipaddress.ip_network(proxy, strict=False)  # ValueError names the bad entry
        if self.commit_burst < 1 or self.room_commit_burst < 1:
            raise ValueError("commit bursts must admit at least one commit")
        if self.max_open_epochs < 1 or self.max_epoch_slots < 2:
            raise ValueError("need max_open_epochs >= 1 and max_epoch_slots >= 2")
        if self.commit_log_bytes < 0 or self.commit_log_total < 0:
            raise ValueError("commit_log_bytes and commit_log_total must not be negative")


MAX_MESSAGE_BYTES = max(MAX_CONTROL_BYTES, MAX_MEDIA_BYTES)
"""The WebSocket message size limit (aiohttp ``max_msg_size``)."""
