"""Large meetings, control plane (issue 13, requirement 6): an epoch change costs O(N)
deliveries, not O(N²) Hellos; newcomers learn who is where from one directory; hosts
admit in batches; plain members ignore join requests before any crypto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from meeting_harness import Client, Net, assert_agree

from clave import wire
from clave.meeting import EpochChanged, ErrorCode, Meeting, MeetingConfig
from clave.meeting.app_messages import (
    CAM,
    MAX_DIRECTORY,
    MIC,
    Directory,
    Hello,
    MediaState,
    decode_app_message,
    encode_app_message,
    make_directory,
)
from clave.meeting.committer import Queue, batch_size
from clave.meeting.core import DIRECTORY_WAIT
from clave.meeting.errors import AppMessageError


def relay_msgs(frames: list[bytes], kind: type[Any]) -> list[Any]:
    """The relay->client messages of type ``kind`` among delivered ``frames``."""
    out = []
    for frame in frames:
        channel, body = wire.split_frame(frame)
        if channel == wire.CONTROL:
            msg = wire.decode_relay(body)
            if isinstance(msg, kind):
                out.append(msg)
    return out


def client_msgs(frames: list[bytes], kind: type[Any]) -> list[Any]:
    msgs = [wire.decode_client(wire.split_frame(f)[1]) for f in frames]
    return [m for m in msgs if isinstance(m, kind)]


def meeting_of(net: Net, n: int) -> list[Client]:
    """A host and ``n - 1`` guests, auto-admitted."""
    host = net.host("Host", auto_admit=True)
    net.pump()
    guests = [net.guest(f"Guest {i}") for i in range(1, n)]
    net.pump()
    everyone = [host, *guests]
    assert all(c.meeting.phase == "in_meeting" for c in everyone)
    return everyone


def knows_everyone(c: Client, everyone: list[Client]) -> bool:
    want = {o.meeting.own_leaf: o.conn for o in everyone if o is not c}
    return all(c.meeting._presence.conn_of_leaf.get(leaf) == conn for leaf, conn in want.items())


def send_app(net: Net, c: Client, msg: Any) -> None:
    """``c`` sends ``msg`` as an MLS application message of its current epoch."""
    group = c.meeting._group
    assert group is not None
    data = group.send(encode_app_message(msg))
    net.relay.handle(c.conn, wire.encode(wire.AppMessage(data=data)))


def record(c: Client) -> list[Any]:
    """The application messages ``c`` sends from now on (before encryption)."""
    sent: list[Any] = []
    original = c.meeting._send_app

    def spy(msg: Any) -> None:
        sent.append(msg)
        original(msg)

    c.meeting._send_app = spy  # type: ignore[method-assign]
    return sent


def test_an_epoch_change_costs_one_delivery_per_member_and_no_hellos() -> None:
    net = Net()
    everyone = meeting_of(net, 10)
    assert all(knows_everyone(c, everyone) for c in everyone)
    mark = len(net.relay.log)
    everyone[3].meeting.refresh_keys()
    net.pump()
    delivered = net.relay.log[mark:]
    assert len(relay_msgs(delivered, wire.CommitFrom)) == 9
    assert relay_msgs(delivered, wire.AppFrom) == []  # no Hello: nobody's connection changed
    assert_agree(everyone)
    assert all(knows_everyone(c, everyone) for c in everyone)


def test_admitting_one_costs_a_directory_and_the_newcomers_hello() -> None:
    net = Net()
    everyone = meeting_of(net, 10)
    mark = len(net.relay.log)
    newcomer = net.guest("Newcomer")
    net.pump()
    everyone.append(newcomer)
    apps = relay_msgs(net.relay.log[mark:], wire.AppFrom)
    # the host's directory and the newcomer's Hello, each to the 10 others
    assert sorted(m.sender for m in apps) == [everyone[0].conn] * 10 + [newcomer.conn] * 10
    assert_agree(everyone)
    assert all(knows_everyone(c, everyone) for c in everyone)


def test_a_newcomer_learns_bindings_and_switches_from_the_directory_and_asks_nobody() -> None:
    net = Net()
    everyone = meeting_of(net, 4)
    everyone[2].meeting.set_media_state(mic=False, cam=True)
    net.pump()
    newcomer = net.guest("Newcomer")
    sent = record(newcomer)
    net.pump()
    assert knows_everyone(newcomer, everyone)
    (hello,) = sent
    assert isinstance(hello, Hello) and hello.missing == ()
    leaf = everyone[2].meeting.own_leaf
    assert newcomer.meeting.media_states == {leaf: MediaState(mic=False, cam=True)}
    # the members that never saw its join request learned its connection from its Hello
    assert all(knows_everyone(c, [*everyone, newcomer]) for c in everyone)


def test_newcomers_of_one_commit_know_each_other() -> None:
    net = Net()
    host = net.host("Host")
    net.pump()
    guests = [net.guest(f"Guest {i}") for i in range(5)]
    net.pump()
    assert host.meeting.admit_many([g.conn for g in guests]) == 5
    net.pump()
    everyone = [host, *guests]
    assert [len(e.roster) for e in host.of(EpochChanged)] == [1, 6]
    assert_agree(everyone)
    assert all(knows_everyone(c, everyone) for c in everyone)


def admit_holding_the_directory(net: Net, host: Client, guest: Client) -> list[bytes]:
    """The host admits ``guest``; its Welcome goes out, its directory is held back
    (returned). The other members process the commit."""
    net.pump()
    assert host.meeting.admit(guest.conn)
    net.flush([host])  # the commit
    net.deliver([host])  # CommitAccepted: Welcome and directory queued
    frames = host.meeting.frames_to_send()
    msgs = [wire.decode_client(wire.split_frame(f)[1]) for f in frames]
    held = [f for f, m in zip(frames, msgs, strict=True) if isinstance(m, wire.AppMessage)]
    for f, m in zip(frames, msgs, strict=True):
        if not isinstance(m, wire.AppMessage):
            net.relay.handle(host.conn, f)
    net.deliver([c for c in net.clients if c is not guest])
    return held


def test_a_newcomer_takes_a_directory_only_from_a_host() -> None:
    net = Net()
    host, bob = meeting_of(net, 2)
    host.meeting.set_auto_admit(False)
    net.pump()
    newcomer = net.guest("Newcomer")
    held = admit_holding_the_directory(net, host, newcomer)
    lie = Directory(conns=((host.meeting.own_leaf, bob.conn),))
    send_app(net, bob, lie)  # a plain member's directory
    net.deliver([newcomer])
    assert newcomer.meeting.phase == "in_meeting"
    assert any("not a host: directory ignored" in e.message for e in newcomer.errors())
    assert newcomer.meeting._presence.conn_of_leaf == {}
    for f in held:
        net.relay.handle(host.conn, f)
    net.pump()
    assert knows_everyone(newcomer, [host, bob, newcomer])


def test_a_members_own_hello_wins_over_a_hosts_directory() -> None:
    net = Net()
    host, bob = meeting_of(net, 2)
    host.meeting.set_auto_admit(False)
    net.pump()
    newcomer = net.guest("Newcomer")
    admit_holding_the_directory(net, host, newcomer)
    bob.meeting._timer_announce()  # Bob's Hello (as when asked who is there) comes first
    net.flush([bob])
    net.deliver([newcomer])
    assert newcomer.meeting._presence.conn_of_leaf == {bob.meeting.own_leaf: bob.conn}
    lie = Directory(conns=((bob.meeting.own_leaf, 4242), (host.meeting.own_leaf, host.conn)))
    send_app(net, host, lie)
    net.pump()
    assert newcomer.meeting._presence.conn_of_leaf[bob.meeting.own_leaf] == bob.conn
    assert 4242 not in newcomer.meeting._presence.leaf_of_conn
    assert knows_everyone(newcomer, [host, bob, newcomer])


def test_without_a_directory_the_newcomer_asks_who_is_there() -> None:
    net = Net()
    everyone = meeting_of(net, 3)
    host = everyone[0]
    host.meeting.set_auto_admit(False)
    net.pump()
    newcomer = net.guest("Newcomer")
    sent = record(newcomer)
    admit_holding_the_directory(net, host, newcomer)  # and never sent
    net.pump()
    assert sent == [] and newcomer.meeting._presence.conn_of_leaf == {}
    net.tick(DIRECTORY_WAIT)
    net.tick(0.1)  # the answers, combined
    (hello,) = sent
    assert sorted(hello.missing) == sorted(c.meeting.own_leaf for c in everyone)
    everyone.append(newcomer)
    assert all(knows_everyone(c, everyone) for c in everyone)


def test_members_that_are_not_hosts_or_successors_ignore_join_requests_unopened() -> None:
    net = Net()
    everyone = meeting_of(net, 5)
    policy = everyone[0].meeting.policy
    assert policy is not None
    plain = [c for c in everyone if c.meeting._sig_pub not in policy.successor_keys][1:]
    keepers = [c for c in everyone if c not in plain]
    assert len(plain) == 2 and len(keepers) == 3  # the host and two successors
    for c in everyone:
        c.clear()
    junk = wire.encode(wire.JoinRequestFrom(sender=4000, data=b"not sealed" * 4))
    for c in everyone:
        c.meeting.receive(junk)
    for c in keepers:
        assert [e.code for e in c.errors()] == [ErrorCode.bad_join_request]
    for c in plain:
        assert c.errors() == []  # dropped before any decryption
    late = net.guest("Late")
    everyone[0].meeting.set_auto_admit(False)
    net.pump()
    assert all(late.conn in c.meeting._lobby for c in keepers)
    assert all(c.meeting._lobby == {} for c in plain)


@pytest.mark.parametrize("auto", [False, True])
def test_admissions_are_batched_up_to_the_configured_size(auto: bool) -> None:
    net = Net(config=MeetingConfig(admit_batch=3))
    host = net.host("Host")
    net.pump()
    guests = [net.guest(f"Guest {i}") for i in range(7)]
    net.pump()
    if auto:
        host.meeting.set_auto_admit(True)
    else:
        assert host.meeting.admit_many([g.conn for g in guests]) == 7
    net.pump()
    sizes = [len(e.roster) for e in host.of(EpochChanged)]
    assert sizes == [1, 4, 7, 8]  # Adds per commit: 3, 3, 1
    assert_agree([host, *guests])
    # one Welcome per commit (sent once, naming its newcomers), delivered to each
    welcomes = relay_msgs(net.relay.log, wire.WelcomeFor)
    assert len(welcomes) == 7 and len({w.data for w in welcomes}) == 3


def test_the_welcome_budget_makes_batches_smaller_in_large_meetings() -> None:
    queue = Queue(batch=50, welcome_budget=2 * 1024 * 1024)
    assert batch_size(queue, 10, 200) == 50
    assert batch_size(queue, 10, 7) == 7
    # one Welcome for all newcomers (~290 KB at N = 1000): a full batch fits
    assert batch_size(queue, 1000, 200) == 50
    assert 1 < batch_size(Queue(welcome_budget=300 * 1024), 1000, 200) < 50
    assert batch_size(Queue(welcome_budget=1), 1000, 5) == 1  # one is always admitted


def test_a_full_directory_fits_one_application_message() -> None:
    net = Net()
    host = net.host("Host")
    net.pump()
    n = MAX_DIRECTORY
    state = MediaState(mic=True, cam=True, screen=True)
    full = make_directory(
        {2000 + i: 0xFFFFFFFF - i for i in range(n)}, {2000 + i: state for i in range(n)}
    )
    assert decode_app_message(encode_app_message(full)) == full
    send_app(net, host, full)  # wire.encode would raise if it did not fit
    too_many = msgspec.msgpack.encode({"t": "dir", "conns": [[i, 1] for i in range(n + 1)]})
    with pytest.raises(AppMessageError):
        decode_app_message(too_many)


def test_the_protocol_document_shows_the_directory_as_encoded() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    example = Directory(conns=((0, 7), (2, 9)), media=((0, MIC | CAM),))
    assert f"`{encode_app_message(example).hex()}`" in doc


def knocks_in(net: Net, peers: int, seconds: int) -> tuple[int, int]:
    """A joiner in a room of ``peers`` others, one more entering every second for
    ``seconds``: its knocks then, and in the minute after."""
    net.host("Host")  # for the link
    joiner = Meeting.join(
        net.link, "Joiner", rng=net.rng, clock=net.clock, now=net.now, config=net.config
    )
    joiner.frames_to_send()  # Enter
    joiner.receive(wire.encode(wire.Joined(conn=9000, peers=list(range(1, peers + 1)))))
    assert len(client_msgs(joiner.frames_to_send(), wire.JoinRequest)) == 1
    counts = []
    for span, arrivals in ((seconds, True), (60, False)):
        sent = 0
        for i in range(span):
            if arrivals:
                joiner.receive(wire.encode(wire.PeerJoined(conn=5000 + i)))
            net.clock.advance(1.0)
            joiner.handle_timer()
            sent += len(client_msgs(joiner.frames_to_send(), wire.JoinRequest))
        counts.append(sent)
    return counts[0], counts[1]


def test_in_a_crowded_room_a_joiner_knocks_seldom_and_not_on_every_arrival() -> None:
    small = knocks_in(Net(), 3, 20)
    assert small[0] >= 8  # a knock for the arrivals, at most every 2 s
    crowded = knocks_in(Net(), 500, 20)
    assert crowded == (0, 1)  # every 40-60 s: 10 s x 520 / 100, jittered
