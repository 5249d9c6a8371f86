"""A receiver chooses whose video and screen it gets (issue 13, requirement 1, first
part): the meeting subscribes by member, the relay forwards by connection, and the
subscription follows members (and ourselves) across new connections. Counted in
frames played, on the relay's own rules (MemoryRelay)."""

from __future__ import annotations

from meeting_harness import Client, Net, meeting_of_four

from clave import wire
from clave.meeting import MediaFrameDecrypted
from clave.wire.media import StreamKind


def heard(c: Client) -> list[bytes]:
    return [e.payload for e in c.of(MediaFrameDecrypted)]


def everybody_sends(net: Net, senders: list[Client], tag: bytes) -> None:
    for s in senders:
        for kind in (StreamKind.audio, StreamKind.video, StreamKind.screen):
            net.send_media(s, kind, True, s.name.encode() + b" " + tag + bytes([kind]))
    net.pump()


def test_a_receiver_gets_video_only_from_the_members_it_chose() -> None:
    net = Net()
    alice, bob, carol, dave = meeting_of_four(net)
    dave.meeting.subscribe(video_from=[alice.meeting.own_leaf], screen_from=[])
    net.pump()
    dave.clear()
    everybody_sends(net, [alice, bob, carol], b"1")
    got = sorted(heard(dave))
    audio, video, screen = (bytes([k]) for k in (0, 1, 2))
    assert got == sorted([b"Alice 1" + audio, b"Alice 1" + video,
                          b"Bob 1" + audio, b"Carol 1" + audio])  # fmt: skip
    assert b"Bob 1" + video in heard(alice) and b"Carol 1" + screen in heard(bob)

    # Alice comes back on a new connection: Dave's subscription follows her ...
    net.cut(alice)
    net.reconnect(alice)
    # ... and Dave's own new connection is told again (a relay connection starts open).
    net.cut(dave)
    net.reconnect(dave)
    dave.clear()
    everybody_sends(net, [alice, bob], b"2")
    assert sorted(heard(dave)) == sorted([b"Alice 2" + audio, b"Alice 2" + video,
                                          b"Bob 2" + audio])  # fmt: skip

    # Back to everything.
    dave.meeting.subscribe()
    net.pump()
    dave.clear()
    everybody_sends(net, [bob], b"3")
    assert sorted(heard(dave)) == sorted(b"Bob 3" + bytes([k]) for k in (0, 1, 2))


def test_the_subscription_is_sent_again_only_when_what_it_names_changes() -> None:
    net = Net()
    _alice, bob, _carol, dave = meeting_of_four(net)
    told: list[wire.Subscribe] = []
    handle = net.relay.handle

    def recording(conn: int, frame: bytes) -> None:
        if conn == dave.conn and frame[1] == wire.CONTROL:
            msg = wire.decode_client(frame[2:])
            if isinstance(msg, wire.Subscribe):
                told.append(msg)
        handle(conn, frame)

    net.relay.handle = recording  # type: ignore[method-assign]
    dave.meeting.subscribe(video_from=[bob.meeting.own_leaf])
    net.pump()
    net.ticks(3)  # inputs and timers that change no connection send nothing new
    assert told == [wire.Subscribe(video_from=[bob.conn])]
    net.cut(bob)
    net.reconnect(bob)  # Bob's new connection: Dave names it
    net.ticks(2)
    assert told[1:] == [wire.Subscribe(video_from=[bob.conn])] and len(told) == 2
