"""Garbage into Meeting.receive(): never an exception, never an internal error.

Inputs that carry no valid authenticated content must also leave the
meeting working (members still agree and exchange media and chat).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from meeting_harness import Client, Net, view

from clave import wire
from clave.meeting import ChatReceived, ErrorCode, MediaFrameDecrypted
from clave.wire.frames import CONTROL, MEDIA, PROTOCOL_VERSION
from clave.wire.media import StreamKind


def assert_no_internal_errors(c: Client) -> None:
    internal = [e for e in c.errors() if e.code == ErrorCode.internal]
    assert not internal, internal[:3]


def small_meeting(seed: int = 7) -> tuple[Net, Client, Client, Client, Client]:
    """Host and Bob in the meeting, Eve in the lobby, Zed still connecting.

    Dan was turned away (a sealed host reply went out); the meeting then refreshed
    its keys once, so the relay's log holds every kind of opaque payload.
    """
    net = Net(seed)
    host = net.host("Alice")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(host, bob)
    dan = net.guest("Dan")
    net.pump()
    assert host.meeting.deny(dan.conn)
    net.pump()
    assert dan.meeting.phase == "ended"
    net.disconnect(dan)
    eve = net.guest("Eve")
    net.pump()
    zed = net.guest("Zed")  # its Enter is never flushed: still connecting
    zed.held = True
    bob.meeting.refresh_keys()
    bob.meeting.send_chat("some traffic")
    net.send_media(host, StreamKind.video, True, b"a frame")
    net.pump()
    assert eve.meeting.phase == "lobby" and zed.meeting.phase == "connecting"
    return net, host, bob, eve, zed


def still_works(net: Net, host: Client, bob: Client) -> None:
    assert view(host) == view(bob)
    host.clear()
    bob.clear()
    net.send_media(host, StreamKind.audio, False, b"still here")
    bob.meeting.send_chat("still talking")
    net.pump()
    assert [e.payload for e in bob.of(MediaFrameDecrypted)] == [b"still here"]
    assert [e.text for e in host.of(ChatReceived)] == ["still talking"]


def mutate(rnd: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    op = rnd.randrange(4)
    if op == 0 and b:
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
    elif op == 1 and b:
        del b[rnd.randrange(len(b)) :]
    elif op == 2:
        pos = rnd.randrange(len(b) + 1)
        b[pos:pos] = rnd.randbytes(rnd.randint(1, 16))
    else:
        b = bytearray(rnd.randbytes(len(b)))
    return bytes(b)


def test_random_bytes_in_every_phase() -> None:
    net, host, bob, eve, zed = small_meeting()
    rnd = random.Random(1)
    prefixes = [b"", bytes((PROTOCOL_VERSION, CONTROL)), bytes((PROTOCOL_VERSION, MEDIA))]
    for _ in range(400):
        frame = rnd.choice(prefixes) + rnd.randbytes(rnd.randint(0, 200))
        for c in (host, bob, eve, zed):
            c.meeting.receive(frame)
    for c in (host, bob, eve, zed):
        assert_no_internal_errors(c)
    assert eve.meeting.phase == "lobby" and zed.meeting.phase == "connecting"
    still_works(net, host, bob)


def test_mutated_real_mls_payloads_change_nothing() -> None:
    """Welcomes, commits, app messages, join requests and host replies, corrupted."""
    net, host, bob, eve, _zed = small_meeting()
    payloads: list[tuple[type, bytes]] = []
    carriers = (
        wire.CommitFrom | wire.AppFrom | wire.WelcomeFor | wire.JoinRequestFrom | wire.ReplyFrom
    )
    for frame in net.relay.log:
        channel, body = wire.split_frame(frame)
        if channel != wire.CONTROL:
            continue
        msg = wire.decode_relay(body)
        if isinstance(msg, carriers):
            payloads.append((type(msg), msg.data))
    assert {t for t, _ in payloads} == {
        wire.CommitFrom,
        wire.AppFrom,
        wire.WelcomeFor,
        wire.JoinRequestFrom,
        wire.ReplyFrom,
    }
    rnd = random.Random(2)
    for _ in range(300):
        kind, data = rnd.choice(payloads)
        data = mutate(rnd, data) or b"\x00"
        sender = rnd.choice([host.conn, bob.conn, eve.conn, 99])
        msg: wire.RelayMessage
        if kind is wire.CommitFrom:
            msg = wire.CommitFrom(sender=sender, data=data)
        elif kind is wire.AppFrom:
            msg = wire.AppFrom(sender=sender, data=data[:65536])
        elif kind is wire.WelcomeFor:
            msg = wire.WelcomeFor(sender=sender, data=data)
        elif kind is wire.ReplyFrom:
            msg = wire.ReplyFrom(sender=sender, data=data[:65536])
        else:
            msg = wire.JoinRequestFrom(sender=sender, data=data[:65536])
        frame = wire.encode(msg)
        for c in (host, bob, eve):
            c.meeting.receive(frame)
    for c in (host, bob, eve):
        assert_no_internal_errors(c)
    still_works(net, host, bob)
    assert eve.meeting.phase == "lobby"


def test_mutated_real_frames_and_odd_relay_messages() -> None:
    net, host, bob, eve, zed = small_meeting()
    log = list(net.relay.log)
    rnd = random.Random(3)
    odd: list[wire.RelayMessage] = [
        wire.Joined(conn=5, peers=[]),
        wire.Joined(conn=host.conn, peers=[bob.conn]),
        wire.CommitAccepted(),
        wire.KeyframeWanted(by=77, kind=2),
        wire.PeerJoined(conn=1),
        wire.PeerLeft(conn=12345),
        wire.Rotated(by=bob.conn),
        wire.Rotated(by=4242),
    ] + [wire.Error(code=code, message="x") for code in wire.ErrorCode]
    for _ in range(300):
        frame = wire.encode(rnd.choice(odd)) if rnd.random() < 0.3 else mutate(rnd, rnd.choice(log))
        for c in (host, bob, eve, zed):
            c.meeting.receive(frame)
    for c in (host, bob, eve, zed):
        assert_no_internal_errors(c)


_fuzz_target: list[Client] = []


def _member() -> Client:
    if not _fuzz_target:
        _, _, bob, _, _ = small_meeting(11)
        _fuzz_target.append(bob)
    return _fuzz_target[0]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(lambda b: bytes((PROTOCOL_VERSION, CONTROL)) + b),
        st.binary(max_size=300).map(lambda b: bytes((PROTOCOL_VERSION, MEDIA)) + b),
        st.builds(
            lambda s, d: wire.encode(wire.CommitFrom(sender=s, data=d)),
            st.integers(1, 2**32 - 1),
            st.binary(min_size=1, max_size=300),
        ),
        st.builds(
            lambda s, d: wire.encode(wire.AppFrom(sender=s, data=d)),
            st.integers(1, 2**32 - 1),
            st.binary(min_size=1, max_size=300),
        ),
        st.builds(
            lambda s, d: wire.encode(wire.WelcomeFor(sender=s, data=d)),
            st.integers(1, 2**32 - 1),
            st.binary(min_size=1, max_size=300),
        ),
        st.builds(
            lambda s, d: wire.encode(wire.ReplyFrom(sender=s, data=d)),
            st.integers(1, 2**32 - 1),
            st.binary(min_size=1, max_size=300),
        ),
        st.builds(
            lambda s, d: wire.encode(wire.JoinRequestFrom(sender=s, data=d)),
            st.integers(1, 2**32 - 1),
            st.binary(min_size=1, max_size=300),
        ),
    )
)
def test_hypothesis_garbage_never_raises(frame: bytes) -> None:
    bob = _member()
    bob.meeting.receive(frame)
    assert_no_internal_errors(bob)
