"""Staying in the meeting across dropped connections and relay restarts (clave.meeting.resume).

Every test counts events: who is removed, which epoch and code everyone holds, which
frames decrypt, how many copies of a chat arrive.
"""

from __future__ import annotations

import itertools

import pytest
from meeting_harness import (
    Client,
    Net,
    assert_agree,
    host_and_bob,
    meeting_of_four,
    meeting_of_three,
    view,
)

from clave import wire
from clave.meeting import (
    ChatReceived,
    ConnectionLost,
    LobbyRequest,
    MediaFrameDecrypted,
    MeetingConfig,
    MemberAway,
    MemberBack,
    MemberLeft,
    Reconnected,
    Stranded,
)
from clave.meeting.app_messages import Hello, encode_app_message
from clave.wire.media import StreamKind


def media_flows(net: Net, clients: list[Client]) -> None:
    """Each sends one frame; every other decrypts exactly it."""
    for c in clients:
        c.clear()
    for c in clients:
        net.send_media(c, StreamKind.audio, False, f"from {c.name}".encode())
    net.pump()
    for c in clients:
        got = sorted(e.payload for e in c.of(MediaFrameDecrypted))
        assert got == sorted(f"from {o.name}".encode() for o in clients if o is not c), c.name


def no_one_left(clients: list[Client]) -> None:
    for c in clients:
        assert not c.of(MemberLeft), (c.name, c.of(MemberLeft))


def test_a_blip_loses_nobody_and_catches_up_the_commits_missed() -> None:
    net = Net()
    host, bob, carol, dave = everyone = list(meeting_of_four(net))
    code = view(host)[1]
    net.cut(carol)
    net.pump()
    assert [e.leaf for e in host.of(MemberAway)] == [carol.meeting.own_leaf]
    host.meeting.refresh_keys()  # two commits Carol misses while away
    net.pump()
    bob.meeting.refresh_keys()
    net.pump()
    assert carol.meeting.epoch == (host.meeting.epoch or 0) - 2
    net.ticks(5)  # within the resume window
    net.reconnect(carol)
    assert carol.of(ConnectionLost) and [e.caught_up for e in carol.of(Reconnected)] == [2]
    assert_agree(everyone)
    assert view(host)[1] == code
    for c in (host, bob, dave):
        assert [e.name for e in c.of(MemberBack)] == ["Carol"]
    media_flows(net, everyone)
    net.wait_out_resume_window()
    no_one_left(everyone)
    assert_agree(everyone)


def test_a_member_away_past_the_window_is_removed_and_stranded_on_return() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    net.cut(carol)
    net.wait_out_resume_window()
    rest = [host, bob, dave]
    assert_agree(rest)
    for c in rest:
        assert [e.name for e in c.of(MemberLeft)] == ["Carol"]
    net.reconnect(carol)  # the relay replays her removal
    assert [e.reason for e in carol.of(Stranded)] and carol.meeting.phase == "ended"
    assert not carol.meeting.encrypted


def test_the_resume_window_is_configurable() -> None:
    net = Net(config=MeetingConfig(resume_window=4.0))
    host, _bob, carol, _dave = meeting_of_four(net)
    net.cut(carol)
    net.pump()
    net.ticks(3)
    assert len(host.meeting.roster) == 4
    net.ticks(2)
    assert [e.name for e in host.of(MemberLeft)] == ["Carol"]


def test_our_commit_ordered_while_its_answer_was_lost_is_not_committed_twice() -> None:
    net = Net()
    host, bob, _carol, _dave = everyone = list(meeting_of_four(net))
    epoch = host.meeting.epoch or 0
    host.meeting.refresh_keys()
    net.flush([host])  # the relay orders it ...
    net.cut(host)  # ... but the CommitAccepted is lost with the connection
    net.pump()
    assert host.meeting.commit_in_flight and bob.meeting.epoch == epoch + 1
    net.reconnect(host)
    assert not host.meeting.commit_in_flight
    assert_agree(everyone)
    assert host.meeting.epoch == epoch + 1, "replayed, not committed again"
    media_flows(net, everyone)


def test_our_commit_lost_before_the_relay_is_sent_again() -> None:
    net = Net()
    host, bob, _carol, _dave = everyone = list(meeting_of_four(net))
    epoch = host.meeting.epoch or 0
    host.meeting.refresh_keys()
    net.cut(host)  # the Commit never reached the relay
    net.pump()
    assert host.meeting.commit_in_flight and bob.meeting.epoch == epoch
    net.reconnect(host)
    assert_agree(everyone)
    assert host.meeting.epoch == epoch + 1


def test_a_rival_commit_ordered_while_away_voids_ours_and_the_change_is_retried() -> None:
    net = Net()
    host, bob, carol, dave = list(meeting_of_four(net))
    epoch = host.meeting.epoch or 0
    host.meeting.remove_member(dave.meeting.own_leaf or 0)
    net.cut(host)  # the Remove never reached the relay; Bob's refresh wins the epoch
    bob.meeting.refresh_keys()
    net.pump()
    net.reconnect(host)
    net.pump()
    rest = [host, bob, carol]
    assert_agree(rest)
    assert [r.name for r in host.meeting.roster] == ["Alice", "Bob", "Carol"]
    assert host.meeting.epoch == epoch + 2


def test_chats_sent_around_a_dropped_connection_arrive_exactly_once() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    bob.meeting.send_chat("just before")
    net.flush([bob])  # reached the relay, and everyone
    net.cut(bob)
    bob.meeting.send_chat("while away")  # kept until the connection is back
    net.pump()
    net.reconnect(bob)
    for c in (host, carol, dave):
        texts = [e.text for e in c.of(ChatReceived)]
        assert texts == ["just before", "while away"], (c.name, texts)


def test_relay_restart_gets_the_meeting_back() -> None:
    net = Net()
    host, bob, carol, dave = everyone = list(meeting_of_four(net))
    code = view(host)[1]
    net.restart_relay()
    for c in (dave, bob, host, carol):  # they come back in any order
        net.reconnect(c)
    net.tick(0.1)  # Hellos asking who is there are answered
    assert_agree(everyone)
    assert view(host)[1] == code
    media_flows(net, everyone)
    for c in everyone:  # everyone knows everyone's new connection again
        assert not c.meeting.away
        for other in everyone:
            if other is not c:
                assert c.meeting.request_keyframe(other.meeting.own_leaf or 0)
    host.meeting.refresh_keys()  # ordering works in the re-established room
    net.pump()
    assert_agree(everyone)
    net.wait_out_resume_window()
    no_one_left(everyone)


def test_relay_restart_with_a_commit_half_delivered_is_repaired_by_a_re_offer() -> None:
    net = Net()
    host, bob, carol, dave = everyone = list(meeting_of_four(net))
    host.meeting.refresh_keys()
    net.flush([host])
    for c in (host, bob, dave):  # Carol's copy is lost in the crash
        net.deliver([c])
    net.relay.inbox[carol.conn].clear()
    assert carol.meeting.epoch == (host.meeting.epoch or 0) - 1
    net.restart_relay()
    net.reconnect(carol)  # registers her (older) epoch
    for c in (host, bob, dave):
        net.reconnect(c)  # each re-offers the commit that took it on: one is ordered
    net.tick(0.1)
    assert_agree(everyone)
    media_flows(net, everyone)


def test_a_member_nobody_can_catch_up_is_stranded_and_told_why() -> None:
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    host.meeting.refresh_keys()
    net.flush([host])
    for c in (host, bob, dave):
        net.deliver([c])
    net.relay.inbox[carol.conn].clear()
    net.restart_relay()
    for c in (host, bob, dave):
        net.reconnect(c)  # their re-offers find no member of Carol's epoch
    net.reconnect(carol)
    net.ticks(net.config.catchup_timeout + 1)  # she hears only later epochs
    stranded = carol.of(Stranded)
    assert len(stranded) == 1 and "moved on" in stranded[0].reason
    assert carol.meeting.phase == "ended"
    # She asks again, as the same person: admitted, she replaces her old leaf
    net.clients.remove(carol)
    again = net.guest("Carol", identity=carol.meeting._identity)
    net.pump()  # the host admits automatically (meeting_of_four turned auto-admit on)
    everyone = [host, bob, dave, again]
    assert_agree(everyone)
    assert [r.name for r in host.meeting.roster] == ["Alice", "Bob", "Carol", "Dave"]
    assert [e.name for e in host.of(MemberLeft)] == ["Carol"]  # the old leaf, replaced
    assert len(host.meeting.roster) == 4
    media_flows(net, everyone)


def test_a_successor_back_from_an_outage_does_not_take_over_from_hosts_it_could_not_hear() -> None:
    net = Net()
    host, bob, _carol, _dave = everyone = list(meeting_of_four(net))
    assert bob.meeting.roster[1].role == "successor"
    net.cut(bob)
    net.clock.advance(12)  # longer than the takeover silence, without hearing anyone
    bob.meeting.handle_timer()
    net.pump()
    net.reconnect(bob)
    net.tick(1)
    assert not bob.meeting.is_host and host.meeting.is_host
    assert_agree(everyone)
    no_one_left(everyone)


def test_members_back_while_the_primary_host_was_away_are_not_removed() -> None:
    """Carol comes back while the host is away: the host never hears her Hello. Back,
    it gives everyone it cannot place a fresh window and asks who is there."""
    net = Net()
    host, _bob, carol, _dave = everyone = list(meeting_of_four(net))
    net.cut(carol)
    net.ticks(5)
    net.cut(host)
    net.ticks(5)
    net.reconnect(carol)
    net.ticks(8)  # Carol's first window (at the host) ran out while the host was away
    net.reconnect(host)
    net.wait_out_resume_window()
    assert_agree(everyone)
    no_one_left(everyone)
    assert not host.meeting.away


def test_a_lobby_request_survives_a_relay_restart() -> None:
    net = Net()
    host, bob = host_and_bob(net)
    eve = net.guest("Eve")
    net.pump()
    assert [e.display_name for e in host.of(LobbyRequest)] == ["Bob", "Eve"]
    net.restart_relay()
    net.reconnect(eve)  # the joiner is back first, in an empty room, and waits
    assert eve.meeting.phase == "lobby"
    net.reconnect(host)
    net.reconnect(bob)
    net.ticks(3)  # Eve knocks again for the host that came back
    requests = [e for e in host.of(LobbyRequest) if e.display_name == "Eve"]
    assert len(requests) == 2 and requests[-1].request_id == eve.conn
    assert host.meeting.admit(eve.conn)
    net.pump()
    assert_agree([host, bob, eve])


def test_requests_waiting_when_the_host_leaves_reach_the_next_host() -> None:
    net = Net()
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    carol = net.guest("Carol")  # they knock before Bob is a member: he never sees it
    dave = net.guest("Dave")
    net.pump()
    assert host.meeting.admit(bob.conn)
    net.pump()
    assert not bob.of(LobbyRequest)
    host.meeting.leave()
    net.pump()
    assert bob.meeting.is_host
    net.ticks(3)  # the knockers repeat their requests when the host leaves
    assert sorted(e.display_name for e in bob.of(LobbyRequest)) == ["Carol", "Dave"]
    for c in (carol, dave):
        assert bob.meeting.admit(c.conn)
        net.pump()
    assert_agree([bob, carol, dave])


def test_hello_asking_who_is_there_is_answered_once() -> None:
    """A member's Hello listing us as missing makes us announce ourselves, once for a
    burst of such Hellos."""
    net = Net()
    host, bob, carol, dave = meeting_of_four(net)
    group = bob.meeting._group
    assert group is not None and bob.meeting.conn is not None
    missing = tuple(c.meeting.own_leaf or 0 for c in (host, carol, dave))
    hello = encode_app_message(Hello(bob.meeting.conn, "Bob", missing))
    for _ in range(20):
        net.relay.handle(bob.conn, wire.encode(wire.AppMessage(data=group.send(hello))))
    net.pump()
    sent_before = len(net.relay.log)
    net.tick(0.1)
    answers = net.relay.log[sent_before:]
    # one Hello from each of the three others, each to the three others
    assert len(answers) == 3 * 3



@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_connection_ids_a_restarted_relay_hands_out_again_are_bound_anew(
    order: tuple[int, ...],
) -> None:
    """A restarted relay numbers connections from 1 again, so a member's old id may now
    be another member's. Back in some orders, a member found every old id in the room
    again, trusted them all, asked nobody, and subscribed to the wrong connections (in a
    real meeting: one member's video never came back). Each must end with the true
    bindings and receive everyone."""
    net = Net()
    everyone = list(meeting_of_three(net))
    old = {c.name: c.conn for c in everyone}
    net.restart_relay()
    for i in order:
        net.reconnect(everyone[i])
    assert {c.conn for c in everyone} == set(old.values())  # every id handed out again
    net.ticks(3)
    for c in everyone:
        truth = {o.meeting.own_leaf: o.conn for o in everyone if o is not c}
        assert c.meeting._presence.conn_of_leaf == truth, (c.name, order)
        assert not c.meeting.away, (c.name, c.meeting.away)
    media_flows(net, everyone)
    net.wait_out_resume_window()
    no_one_left(everyone)
    assert_agree(everyone)
