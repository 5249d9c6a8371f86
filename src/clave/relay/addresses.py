"""Client addresses: what the relay counts connections, rooms and queued bytes against.

Each bound answers an attack (defaults in :class:`~clave.relay.config.RelayConfig`):

* **Room flood** (one client without an invitation opened the relay's whole room cap
  and a real host was refused): connections per address (64) and in total (20 000),
  live rooms created per address (20) and a token bucket of room creations per
  address (0.5/s, burst 20) against create-leave-create churn.
* **Lobby flood** (one client crowding a room): connections per address in one room
  (8), checked by :meth:`clave.relay.rooms.Rooms.enter` with :attr:`Account.key`.
* **Big junk into non-reading sinks**: everything queued for an address's connections
  shares one :class:`~clave.relay.queues.Backlog`.

An address is the TCP peer's; IPv6 counts by its ``ipv6_prefix`` (/64: one host
usually holds a whole /64). Only when the peer is one of ``trusted_proxies`` is the
client taken from ``X-Forwarded-For``: right to left, the first hop that is not a
trusted proxy. Addresses are never logged. An address whose counts are all zero is
forgotten once its creation bucket has refilled (or, beyond ``max_conns`` such
addresses, oldest first), so an idle table stays bounded.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from clave.wire import Error, ErrorCode

from .config import RelayConfig
from .limits import TokenBucket
from .queues import Backlog
from .stats import Refused, RelayStats

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

RELAY_FULL = Error(ErrorCode.room_full, "this relay is at its connection limit; try again later")
TOO_MANY_CONNS = Error(ErrorCode.rate_limited, "too many connections from your network address")
TOO_MANY_ROOMS = Error(ErrorCode.rate_limited, "too many meetings opened from your network address")
ROOMS_TOO_FAST = Error(
    ErrorCode.rate_limited, "meetings opened too quickly from your network address; try again soon"
)


def parse_address(text: str) -> Address | None:
    """An IP address, or None; ``[v6]``, ``[v6]:port`` and ``v4:port`` (as some proxies
    write them) are accepted, and IPv4-mapped IPv6 is taken as IPv4."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)


def client_address(
    peer: str | None, forwarded: Sequence[str], trusted: Sequence[Network]
) -> Address | None:
    """The client's address: the peer's, or from ``X-Forwarded-For`` behind a trusted proxy.

    ``forwarded`` holds the header's values in order. Walking it right to left, each
    hop a trusted proxy appended is believed; the first untrusted hop is the client.
    A malformed hop ends the walk at the last trusted hop.
    """
    address = parse_address(peer) if peer else None
    if address is None or not forwarded:
        return address
    hops = [hop for value in forwarded for hop in value.split(",")]
    for hop in reversed(hops):
        if not any(address in network for network in trusted):
            return address
        parsed = parse_address(hop)
        if parsed is None:
            return address
        address = parsed
    return address


def address_key(address: Address | None, ipv6_prefix: int = 64) -> str:
    """What limits count by: an IPv4 address, an IPv6 prefix, or one key for the unknown."""
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)


class Account:
    """What one client address holds: connections, live rooms it created, its backlog."""

    __slots__ = ("backlog", "conns", "creations", "key", "rooms")

    def __init__(self, key: str, config: RelayConfig, now: float) -> None:
        self.key = key
        """The address (or IPv6 prefix): never log it."""
        self.conns = 0
        self.rooms = 0
        self.creations = TokenBucket(config.room_create_rate, config.room_create_burst, now)
        self.backlog = Backlog(config.address_backlog, config.address_media_backlog)

    @property
    def idle(self) -> bool:
        return self.conns == 0 and self.rooms == 0


class Accounts:
    """The accounts of all client addresses and the relay's connection count."""

    def __init__(self, config: RelayConfig, stats: RelayStats | None = None) -> None:
        self.config = config
        self.stats = stats or RelayStats()
        self.trusted = parse_networks(config.trusted_proxies)
        self.conns = 0
        self._accounts: dict[str, Account] = {}
        self._idle: OrderedDict[str, float] = OrderedDict()
        """Keys of idle accounts, oldest first, with when they became idle."""
        self._keep = config.room_create_burst / config.room_create_rate
        """Seconds an idle account is kept: its creation bucket is full again by then."""

    def __len__(self) -> int:
        return len(self._accounts)

    def get(self, key: str) -> Account | None:
        return self._accounts.get(key)

    def key_for(self, peer: str | None, forwarded: Sequence[str] = ()) -> str:
        """The account key of a client whose TCP peer is ``peer``."""
        address = client_address(peer, forwarded, self.trusted)
        return address_key(address, self.config.ipv6_prefix)

    def connect(self, key: str, now: float) -> Account | Error:
        """Count a new connection from ``key``; its account, or the refusal."""
        self._forget_idle(now)
        if self.conns >= self.config.max_conns:
            self.stats.refuse(Refused.relay_full)
            return RELAY_FULL
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = Account(key, self.config, now)
        elif account.conns >= self.config.max_conns_per_address:
            self.stats.refuse(Refused.address_conns)
            return TOO_MANY_CONNS
        self._idle.pop(key, None)
        account.conns += 1
        self.conns += 1
        return account

    def disconnect(self, account: Account, now: float) -> None:
        account.conns -= 1
        self.conns -= 1
        self._maybe_idle(account, now)

    def create_room(self, account: Account, now: float) -> Error | None:
        """Charge a room creation to ``account``; the refusal if it may not create one."""
        if account.rooms >= self.config.max_rooms_per_address:
            self.stats.refuse(Refused.address_rooms)
            return TOO_MANY_ROOMS
        if not account.creations.take(1.0, now):
            self.stats.refuse(Refused.room_rate)
            return ROOMS_TOO_FAST
        account.rooms += 1
        return None

    def room_closed(self, account: Account, now: float) -> None:
        account.rooms -= 1
        self._maybe_idle(account, now)

    def _maybe_idle(self, account: Account, now: float) -> None:
        if account.idle and self._accounts.get(account.key) is account:
            self._idle[account.key] = now
            self._idle.move_to_end(account.key)

    def _forget_idle(self, now: float) -> None:
        idle = self._idle
        while idle:
            key, since = next(iter(idle.items()))
            if now - since < self._keep and len(idle) <= self.config.max_conns:
                return
            del idle[key]
            account = self._accounts.get(key)
            if account is not None and account.idle:
                del self._accounts[key]
