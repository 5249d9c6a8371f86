"""Bounded memory in the meeting core under hostile input (counted, never timed).

* A link holder who is not a member sends large messages that parse as MLS
  PrivateMessages of a future epoch: every member and every lobby joiner keeps
  only a bounded amount, per sender and in total, and says so.
* A member sends frames under fresh SFrame KID context values: receivers derive
  and cache no key context beyond the context ids senders use.
* The lobby holds at most ``max_lobby`` requests; the next knocker is told.
"""

from __future__ import annotations

import os

from meeting_harness import Client, Net, view

from clave import wire
from clave.meeting import ChatReceived, ErrorCode, JoinDeclined, MeetingConfig
from clave.mls.structs import ContentType, MLSMessage, PrivateMessage
from clave.sframe.context import SendKeyContext
from clave.sframe.suites import get_suite
from clave.wire.media import StreamKind, encode_media, media_aad


def junk_future_message(group_id: bytes, size: int) -> bytes:
    """Something every member must keep for later: a PrivateMessage of epoch 10^6."""
    body = PrivateMessage(
        group_id, 1_000_000, ContentType.application, b"", os.urandom(32), os.urandom(size)
    )
    return MLSMessage(body).to_bytes()


def test_a_knocker_cannot_fill_members_or_joiners_with_future_messages() -> None:
    net = Net()
    ada = net.host("Ada")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(ada, bob)
    waiting = net.guest("Walt")  # in the lobby: buffers too
    knocker = net.guest("Knocker")
    net.pump()
    group = ada.meeting._group
    assert group is not None
    for _ in range(300):  # 300 x 60 KB = 18 MB, were it kept
        data = junk_future_message(group.group_id, 60_000)
        net.relay.handle(knocker.conn, wire.encode(wire.AppMessage(data=data)))
    net.pump()
    for c in (ada, bob, waiting):
        buffer = c.meeting._buffer
        limits = buffer.limits
        assert buffer.bytes <= limits.bytes_per_sender
        assert buffer.dropped >= 300 - limits.bytes_per_sender // 60_000
        if c is not waiting:
            assert [e for e in c.errors() if e.code == ErrorCode.buffer_full]
    # The meeting goes on: a chat, an admission.
    bob.meeting.send_chat("still here")
    net.pump()
    assert [e.text for e in ada.of(ChatReceived)] == ["still here"]
    ada.meeting.admit(waiting.conn)
    net.pump()
    assert waiting.meeting.phase == "in_meeting" and view(waiting) == view(ada)


def test_many_senders_cannot_exceed_the_total() -> None:
    net = Net()
    ada = net.host("Ada")
    net.pump()
    knockers = [net.guest(f"K{i}") for i in range(8)]
    net.pump()
    group = ada.meeting._group
    assert group is not None
    for k in knockers:
        for _ in range(40):
            data = junk_future_message(group.group_id, 60_000)
            net.relay.handle(k.conn, wire.encode(wire.AppMessage(data=data)))
    net.pump()
    buffer = ada.meeting._buffer
    assert buffer.bytes <= buffer.limits.bytes
    assert len(buffer) <= buffer.limits.count


def forged_frame(member: Client, victim_leaf: int, context: int, epoch_bits: int = 4) -> bytes:
    base = member.meeting.export_secret("SFrame 1.0 Base Key", b"", 16)
    keys = member.meeting._media._keys
    kid = keys.kid_for(victim_leaf, context)
    ctx = SendKeyContext(get_suite(member.meeting._config.sframe_suite), kid, base)
    sframe = ctx.seal(media_aad(StreamKind.audio, False), b"x")
    return wire.stamp_sender(encode_media(StreamKind.audio, False, sframe), 99)


def test_fresh_key_id_contexts_create_no_receive_state() -> None:
    net = Net(config=MeetingConfig())
    ada = net.host("Ada")
    net.pump()
    bob = net.guest("Bob")
    net.admit_via_lobby(ada, bob)
    carol = net.guest("Carol")
    net.admit_via_lobby(ada, carol)
    for context in range(1000):  # Bob, a member, under Ada's leaf with 1000 context ids
        carol.meeting.receive(forged_frame(bob, 0, context))
    epoch = carol.meeting._media._keys._current
    assert epoch is not None
    assert len(epoch.recv) <= wire.MAX_CONTEXT + 1  # context ids 0..6 of leaf 0, nothing more
    assert len(carol.meeting._media._waiting) <= 64


def test_a_full_lobby_tells_the_knocker_and_the_host() -> None:
    net = Net(config=MeetingConfig(max_lobby=3))
    ada = net.host("Ada")
    net.pump()
    knockers = [net.guest(f"K{i}") for i in range(5)]
    net.pump()
    told = [k for k in knockers if [e.outcome for e in k.of(JoinDeclined)] == ["full"]]
    assert len(told) == 2
    assert len([e for e in ada.errors() if e.code == ErrorCode.lobby_full]) == 2
    assert len(ada.meeting.lobby) == 3
