"""Client addresses and their accounts: who the relay's per-address limits count against."""

from __future__ import annotations

import ipaddress
import os

import pytest

from clave.relay import RelayConfig
from clave.relay.__main__ import settings
from clave.relay.addresses import (
    RELAY_FULL,
    ROOMS_TOO_FAST,
    TOO_MANY_CONNS,
    TOO_MANY_ROOMS,
    Account,
    Accounts,
    address_key,
    client_address,
    parse_address,
    parse_networks,
)
from clave.relay.limits import TokenBucket
from clave.relay.queues import Backlog, OutQueue
from clave.relay.room import ROOM_CROWDED, Peer
from clave.relay.rooms import Rooms
from clave.relay.stats import Refused
from clave.wire import MAX_CONTROL_BYTES, Error, ErrorCode, room_id_for_token

PROXY = parse_networks(["10.0.0.1", "10.9.0.0/16"])


def key(peer: str | None, *forwarded: str, trusted: tuple[str, ...] = ()) -> str:
    return address_key(client_address(peer, forwarded, parse_networks(trusted)))


# ------------------------------------------------------------ addresses


def test_the_peer_address_counts_unless_a_trusted_proxy_forwards() -> None:
    assert key("198.51.100.7") == "198.51.100.7"
    # a client cannot choose its address by sending the header itself
    assert key("198.51.100.7", "203.0.113.1") == "198.51.100.7"
    # behind a trusted proxy: the hop the proxy appended (right to left, skip proxies)
    trusted = ("10.0.0.1", "10.9.0.0/16")
    assert key("10.0.0.1", "203.0.113.1", trusted=trusted) == "203.0.113.1"
    assert key("10.0.0.1", "1.2.3.4, 203.0.113.1", trusted=trusted) == "203.0.113.1"
    assert key("10.0.0.1", "1.2.3.4, 203.0.113.1, 10.9.3.3", trusted=trusted) == "203.0.113.1"
    assert key("10.0.0.1", "1.2.3.4", "203.0.113.1", trusted=trusted) == "203.0.113.1"
    # garbage after trusted hops: the last trusted hop stands
    assert key("10.0.0.1", "evil, 10.9.3.3", trusted=trusted) == "10.9.3.3"
    assert key("10.0.0.1", "not an address", trusted=trusted) == "10.0.0.1"
    # a trusted proxy without the header is a client like any other
    assert key("10.0.0.1", trusted=trusted) == "10.0.0.1"


def test_ipv6_counts_by_prefix_and_mapped_ipv4_as_ipv4() -> None:
    assert key("2001:db8:1:2:aaaa::1") == key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("::ffff:192.0.2.5") == "192.0.2.5"
    assert parse_address("[2001:db8::1]") == ipaddress.ip_address("2001:db8::1")
    assert parse_address("[2001:db8::1]:443") == ipaddress.ip_address("2001:db8::1")
    assert parse_address("192.0.2.5:8080") == ipaddress.ip_address("192.0.2.5")
    assert parse_address("unknown") is None and parse_address("") is None
    assert address_key(parse_address("2001:db8::1"), 128) == "2001:db8::1/128"
    assert key(None) == key("") == "unknown"


# ------------------------------------------------------------ accounts


def test_connections_per_address_and_in_total() -> None:
    accounts = Accounts(RelayConfig(max_conns=5, max_conns_per_address=2))
    a = [accounts.connect("a", 0.0) for _ in range(3)]
    assert [isinstance(x, Account) for x in a] == [True, True, False]
    assert a[2] == TOO_MANY_CONNS and a[2].code is ErrorCode.rate_limited
    b = [accounts.connect("b", 0.0) for _ in range(2)]
    c = accounts.connect("c", 0.0)
    assert isinstance(c, Account) and accounts.conns == 5
    assert accounts.connect("d", 0.0) == RELAY_FULL and RELAY_FULL.code is ErrorCode.room_full
    accounts.disconnect(c, 0.0)
    assert isinstance(accounts.connect("d", 0.0), Account)
    assert accounts.stats.refused == {Refused.address_conns: 1, Refused.relay_full: 1}
    assert all(isinstance(x, Account) for x in b)


def test_rooms_per_address_and_creation_rate() -> None:
    config = RelayConfig(max_rooms_per_address=2, room_create_rate=1.0, room_create_burst=3)
    accounts = Accounts(config)
    account = accounts.connect("a", 0.0)
    assert isinstance(account, Account)
    assert accounts.create_room(account, 0.0) is None
    assert accounts.create_room(account, 0.0) is None
    assert accounts.create_room(account, 0.0) == TOO_MANY_ROOMS  # live rooms
    accounts.room_closed(account, 0.0)
    assert accounts.create_room(account, 0.0) is None  # the third token of the burst
    accounts.room_closed(account, 0.0)
    assert accounts.create_room(account, 0.0) == ROOMS_TOO_FAST  # churn
    assert accounts.create_room(account, 1.0) is None  # one token a second
    assert accounts.stats.refused == {Refused.address_rooms: 1, Refused.room_rate: 1}


def test_reconnecting_does_not_refill_the_creation_bucket() -> None:
    config = RelayConfig(room_create_rate=0.1, room_create_burst=1)
    accounts = Accounts(config)
    first = accounts.connect("a", 0.0)
    assert isinstance(first, Account) and accounts.create_room(first, 0.0) is None
    accounts.room_closed(first, 0.0)
    accounts.disconnect(first, 0.0)
    again = accounts.connect("a", 1.0)
    assert again is first  # kept while its bucket refills
    assert accounts.create_room(again, 1.0) == ROOMS_TOO_FAST
    accounts.disconnect(again, 1.0)
    # forgotten once the bucket is full again (burst / rate = 10 s after it went idle)
    accounts.connect("b", 10.5)
    assert accounts.get("a") is again
    accounts.connect("c", 11.0)
    assert accounts.get("a") is None and len(accounts) == 2


def test_idle_accounts_are_bounded_in_count() -> None:
    accounts = Accounts(RelayConfig(max_conns=3, room_create_rate=0.001))
    for i in range(10):
        account = accounts.connect(f"k{i}", 0.0)
        assert isinstance(account, Account)
        accounts.disconnect(account, 0.0)
    assert len(accounts) <= 4  # at most max_conns idle ones, plus the one just seen


def test_an_account_with_a_live_room_is_kept() -> None:
    accounts = Accounts(RelayConfig(room_create_rate=1.0, room_create_burst=1))
    account = accounts.connect("a", 0.0)
    assert isinstance(account, Account) and accounts.create_room(account, 0.0) is None
    accounts.disconnect(account, 0.0)  # its room lives on with other people in it
    accounts.connect("b", 100.0)
    assert accounts.get("a") is account and account.rooms == 1
    accounts.room_closed(account, 100.0)
    accounts.connect("c", 200.0)
    assert accounts.get("a") is None


def test_rooms_charge_their_creator_and_count_addresses_per_room() -> None:
    config = RelayConfig(max_room_conns_per_address=2, max_rooms_per_address=1)
    accounts = Accounts(config)
    rooms = Rooms(config, accounts)
    evil, good = accounts.connect("evil", 0.0), accounts.connect("good", 0.0)
    assert isinstance(evil, Account) and isinstance(good, Account)
    token = os.urandom(32)
    room = rooms.enter(room_id_for_token(token), token, 0.0, evil)
    assert not isinstance(room, Error) and room.creator is evil and evil.rooms == 1
    other = os.urandom(32)
    assert rooms.enter(room_id_for_token(other), other, 0.0, evil) == TOO_MANY_ROOMS
    peers = [
        Peer(i, OutQueue(10**6, 10**6, 10**6), TokenBucket(1, 1, 0.0), None, evil) for i in (1, 2)
    ]
    room.add(peers[0])
    assert rooms.enter(room.id, token, 0.0, evil) is room
    room.add(peers[1])
    assert rooms.enter(room.id, token, 0.0, evil) == ROOM_CROWDED
    assert rooms.enter(room.id, token, 0.0, good) is room  # another address gets in
    room.remove(peers[1], "left")
    assert rooms.enter(room.id, token, 0.0, evil) is room
    room.remove(peers[0], "left")
    assert rooms.discard_if_empty(room, 0.0) and evil.rooms == 0
    assert rooms.stats.refused[Refused.room_address_conns] == 1


# ------------------------------------------------------------ backlog


def test_backlog_drops_media_over_its_share_but_an_idle_queue_takes_a_frame() -> None:
    backlog = Backlog(cap=10_000, media_cap=3_000)
    slow, fast = OutQueue(10**6, 10**6, 10**6), OutQueue(10**6, 10**6, 10**6)
    slow.attach(backlog)
    fast.attach(backlog)
    frame = bytes(1_000)
    for _ in range(5):
        slow.push_media(frame, 9, 0, False, 0.0)
    assert slow.media_bytes == 3_000 and slow.dropped == 2
    # the fast sibling still gets one frame at a time while it keeps up
    for _ in range(3):
        fast.push_media(frame, 9, 0, False, 0.0)
        assert fast.pop() == frame
        assert fast.pop() is None  # written; the writer waits for more
    assert fast.dropped == 0
    fast.push_media(frame, 9, 0, False, 0.0)
    assert fast.push_media(frame, 9, 1, False, 0.0) is True  # one queued: a delta is dropped
    assert fast.pop() == frame
    assert not fast.push_media(frame, 9, 0, False, 0.0)  # one in flight: no exemption
    assert fast.dropped == 2
    assert backlog.queued == slow.held() + fast.held() == 4_000


def test_control_does_not_spend_the_media_allowance() -> None:
    backlog = Backlog(cap=10_000, media_cap=3_000)
    q = OutQueue(10**6, 10**6, 10**6)
    q.attach(backlog)
    q.push_control(bytes(6_000))
    for _ in range(3):
        assert not q.push_media(bytes(1_000), 9, 1, False, 0.0)
    assert q.dropped == 0 and (backlog.queued, backlog.media) == (9_000, 3_000)
    assert q.push_media(bytes(1_000), 9, 1, False, 0.0)  # the media share is full
    q.pop()  # control in flight: still counted, as control
    assert (backlog.queued, backlog.media) == (9_000, 3_000)
    q.pop()  # the first frame in flight
    assert (backlog.queued, backlog.media) == (3_000, 3_000)
    q.detach()
    assert (backlog.queued, backlog.media) == (0, 0)


def test_backlog_over_its_cap_overflows_its_largest_queue() -> None:
    overflowed: list[str] = []
    backlog = Backlog(cap=5_000, media_cap=1_000)
    big = OutQueue(10**6, 10**6, 10**6, on_overflow=lambda: overflowed.append("big"))
    small = OutQueue(10**6, 10**6, 10**6, on_overflow=lambda: overflowed.append("small"))
    big.attach(backlog)
    small.attach(backlog)
    for _ in range(4):
        assert big.push_control(bytes(1_000))
    assert small.push_control(bytes(500))
    assert small.push_control(bytes(600))  # over the cap: the largest queue goes, not this one
    assert overflowed == ["big"] and big.overflowed_by_group and backlog.overflows == 1
    assert backlog.peak == 5_100
    big.clear()
    big.detach()
    assert backlog.queued == small.held() == 1_100


def test_in_flight_messages_count_until_the_next_pop() -> None:
    backlog = Backlog(cap=MAX_CONTROL_BYTES, media_cap=1_000)
    q = OutQueue(10**6, 10**6, 10**6)
    q.attach(backlog)
    q.push_control(bytes(700))
    assert q.pop() is not None
    assert q.control_bytes == 0 and backlog.queued == 700  # being written
    assert q.pop() is None and backlog.queued == 0
    q.push_control(bytes(10))
    q.pop()
    q.clear()
    assert backlog.queued == 0


# ------------------------------------------------------------ settings


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_conns": 0},
        {"max_conns_per_address": 0},
        {"max_rooms_per_address": 0},
        {"max_room_conns_per_address": 0},
        {"room_create_rate": 0},
        {"room_create_burst": 0.5},
        {"address_backlog": 1000},
        {"address_media_backlog": 0},
        {"address_media_backlog": 64 * 1024 * 1024},
        {"ipv6_prefix": 8},
        {"trusted_proxies": ("not-an-address",)},
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RelayConfig(**kwargs)  # type: ignore[arg-type]


def test_defaults_answer_the_attacks() -> None:
    cfg = RelayConfig()
    assert (cfg.max_conns, cfg.max_conns_per_address) == (20_000, 64)
    assert (cfg.max_rooms_per_address, cfg.max_room_conns_per_address) == (20, 32)
    assert cfg.max_room_conns_per_address < cfg.max_conns_per_room
    assert cfg.max_rooms_per_address * 500 <= cfg.max_rooms  # one address: a sliver
    assert cfg.address_backlog <= 2 * cfg.control_cap
    assert cfg.trusted_proxies == ()


def test_command_line_settings() -> None:
    pairs = ["max_conns=7", "room_create_rate=0.25", "trusted_proxies=10.0.0.1"]
    cfg = settings([*pairs, "socket_send_buffer=none"], ["10.0.0.2/31"], RelayConfig())
    assert cfg.max_conns == 7 and cfg.room_create_rate == 0.25
    assert cfg.trusted_proxies == ("10.0.0.1", "10.0.0.2/31") and cfg.socket_send_buffer is None
    with pytest.raises(ValueError):
        settings(["no_such_setting=1"], [], RelayConfig())
    with pytest.raises(ValueError):
        settings(["max_conns=0"], [], RelayConfig())
