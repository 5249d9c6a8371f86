"""Per-sender media authentication, attacked by a member who holds the group's keys.

Bob is a member: he knows every epoch's SFrame base key, so he can derive Ada's
sending key (RFC 9605 section 4.4.2) and make frames that pass the group AEAD
under Ada's key id. The relay in these tests stamps whatever sender it is told
(a hostile relay helping Bob). Carol must never play them as Ada's, and Ada's
real frames must keep playing.
"""

from __future__ import annotations

from meeting_harness import Client, Net, meeting_of_three, view

from clave import wire
from clave.meeting import FrameRejected, MediaFrameDecrypted, MeetingConfig
from clave.meeting.media_auth import ManifestBody, Run, sign_manifest
from clave.sframe.context import SendKeyContext
from clave.sframe.suites import get_suite
from clave.wire.media import StreamKind, encode_media, media_aad

VIDEO_CONTEXT = wire.context_of(StreamKind.video)


def forge_as(forger: Client, victim: Client, payload: bytes, ctr: int) -> bytes:
    """A frame under ``victim``'s KID, sealed with the key ``forger`` derives from the
    epoch's base key, stamped by a (hostile) relay as if ``victim`` had sent it."""
    base = forger.meeting.export_secret("SFrame 1.0 Base Key", b"", 16)
    kid = victim.meeting._media._keys.own_kid(VIDEO_CONTEXT)
    ctx = SendKeyContext(
        get_suite(forger.meeting._config.sframe_suite), kid, base, next_counter=ctr
    )
    sframe = ctx.seal(media_aad(StreamKind.video, True), payload)
    return wire.stamp_sender(encode_media(StreamKind.video, True, sframe), victim.conn)


def played(c: Client) -> list[bytes]:
    return [e.payload for e in c.of(MediaFrameDecrypted)]


def test_a_member_cannot_make_frames_that_play_as_someone_else() -> None:
    net = Net()
    ada, bob, carol = meeting_of_three(net)
    carol.clear()
    carol.meeting.receive(forge_as(bob, ada, b"forged by Bob", ctr=7))
    net.tick(0.6)  # longer than the hold timeout: no manifest of Ada's covers it
    assert b"forged by Bob" not in played(carol)
    (rejected,) = carol.of(FrameRejected)
    assert "claiming to be from Ada was not authenticated" in rejected.reason
    assert rejected.sender == ada.meeting.own_leaf
    net.send_media(ada, StreamKind.video, True, b"the real Ada")
    net.pump()
    assert played(carol) == [b"the real Ada"]


def test_a_forged_huge_counter_does_not_silence_the_real_sender() -> None:
    net = Net()
    ada, bob, carol = meeting_of_three(net)
    carol.clear()
    carol.meeting.receive(forge_as(bob, ada, b"counter 2^40", ctr=2**40))
    net.pump()
    for i in range(200):
        net.send_media(ada, StreamKind.audio, False, f"genuine {i}".encode())
    net.pump()
    assert played(carol) == [f"genuine {i}".encode() for i in range(200)]
    net.tick(0.6)
    assert b"counter 2^40" not in played(carol)


def test_a_forgery_racing_the_real_frame_at_the_same_counter_loses() -> None:
    net = Net()
    ada, bob, carol = meeting_of_three(net)
    carol.clear()
    ada.meeting.protect_media(StreamKind.video, True, b"warm up")  # creates the sender
    ada.meeting.send_manifest_now()
    net.pump()
    carol.clear()
    ctr = ada.meeting._media._keys._current.send[VIDEO_CONTEXT].next_counter  # type: ignore[union-attr]
    carol.meeting.receive(forge_as(bob, ada, b"first, but forged", ctr=ctr))
    net.send_media(ada, StreamKind.video, True, b"second, but Ada's")
    net.pump()
    assert played(carol) == [b"second, but Ada's"]
    assert any("forged" in r.reason for r in carol.of(FrameRejected))


def test_a_manifest_signed_by_someone_else_is_refused() -> None:
    net = Net()
    ada, bob, carol = meeting_of_three(net)
    carol.clear()
    forged = forge_as(bob, ada, b"with a manifest", ctr=3)
    sframe = wire.decode_media(forged).sframe
    group = bob.meeting._group
    assert group is not None
    from clave.meeting.media_auth import frame_hash

    kid = ada.meeting._media._keys.own_kid(VIDEO_CONTEXT)
    body = ManifestBody(group.epoch, [Run(kid, 3, frame_hash(sframe))])
    manifest = sign_manifest(group.group_id, body, bob.meeting._signer.signature_private_key)
    carol.meeting.receive(forged)
    carol.meeting.receive(wire.encode(wire.ManifestFrom(sender=ada.conn, data=manifest)))
    net.tick(0.6)
    assert played(carol) == []
    assert any("does not verify" in r.reason for r in carol.of(FrameRejected))
    assert carol.meeting._media.counters.manifests_refused == 1


def test_a_removed_sender_is_refused_at_once_even_within_the_grace_period() -> None:
    net = Net()
    ada, bob, carol = meeting_of_three(net)
    old_epoch = carol.meeting.epoch
    ada_old = ada.meeting.protect_media(StreamKind.audio, False, b"Ada, old epoch")
    ada.meeting.send_manifest_now()
    ada_manifest = ada.meeting.frames_to_send()
    keys = bob.meeting._media._keys  # what Bob holds of this epoch when he leaves
    bob.meeting.leave()
    net.pump()
    assert carol.meeting.epoch == (old_epoch or 0) + 1
    assert [r.name for r in carol.meeting.roster] == ["Ada", "Carol"]
    carol.clear()
    # Bob sends in the old epoch, which is still within its 2 s grace period.
    group = bob.meeting._group
    assert group is None or group.epoch == old_epoch
    sframe = keys.protect(media_aad(StreamKind.audio, False), b"from a removed member")
    frame = wire.stamp_sender(encode_media(StreamKind.audio, False, sframe), bob.conn)
    carol.meeting.receive(frame)
    assert played(carol) == []
    assert "was removed" in carol.of(FrameRejected)[0].reason
    # ... while Ada's frame of the old epoch, sent just before, still plays.
    for out in ada_manifest:
        net.relay.handle(ada.conn, out)
    net.relay.handle(ada.conn, ada_old)
    net.deliver([carol])
    assert played(carol) == [b"Ada, old epoch"]


def test_the_manifest_can_arrive_before_the_frame() -> None:
    net = Net()
    ada, _bob, carol = meeting_of_three(net)
    carol.clear()
    frame = ada.meeting.protect_media(StreamKind.audio, False, b"late frame")
    ada.meeting.send_manifest_now()
    for out in ada.meeting.frames_to_send():
        net.relay.handle(ada.conn, out)  # the manifest overtakes the frame
    net.deliver([carol])
    assert played(carol) == []
    net.relay.handle(ada.conn, frame)
    net.deliver([carol])
    assert played(carol) == [b"late frame"]


def test_unauthenticated_frames_are_bounded() -> None:
    net = Net()
    ada, bob, carol = meeting_of_three(net)
    carol.clear()
    for i in range(1000):
        carol.meeting.receive(forge_as(bob, ada, b"x" * 1000, ctr=10_000 + i))
    waiting = carol.meeting._media._waiting
    assert len(waiting) <= waiting.limits.frames_per_sender
    assert waiting.total_bytes <= waiting.limits.bytes_per_sender
    assert len(carol.of(FrameRejected)) >= 1000 - waiting.limits.frames_per_sender
    net.send_media(ada, StreamKind.video, True, b"still Ada")
    net.pump()
    assert played(carol) == [b"still Ada"]


def test_without_authentication_the_forgery_plays() -> None:
    """The positive control: the attack the manifests stop, on a receiver without them."""
    net = Net(config=MeetingConfig(authenticate_media=False))
    ada, bob, carol = meeting_of_three(net)
    carol.clear()
    carol.meeting.receive(forge_as(bob, ada, b"forged by Bob", ctr=7))
    assert played(carol) == [b"forged by Bob"]
    assert carol.of(MediaFrameDecrypted)[0].name == "Ada"


def test_senders_sign_at_most_every_interval() -> None:
    net = Net()
    ada, bob, carol = meeting_of_three(net)
    media = ada.meeting._media
    sent = media.counters.manifests_sent
    for i in range(10):  # ten frames at one instant: one manifest covers them all
        ada.meeting.protect_media(StreamKind.video, False, f"{i}".encode())
    assert media.counters.manifests_sent == sent + 1  # the first was due at once
    net.tick(0.021)
    assert media.counters.manifests_sent == sent + 2
    assert view(bob) == view(carol)
