"""Simulcast in the meeting core (issue 13, requirement 2): each layer is its own SFrame
stream (KID context), receivers choose layers per member on the relay's own rules
(MemoryRelay), a frame cannot claim another stream's layer, the relay's congestion
cap reaches the engine, and manifests of streams we do not receive are not verified.
Counted in frames played and signatures checked."""

from __future__ import annotations

from collections import Counter

from meeting_harness import Client, Net, meeting_of_four

from clave import wire
from clave.meeting import FrameRejected, KeyframeRequested, LayerCapped, MediaFrameDecrypted
from clave.sframe.context import SendKeyContext
from clave.sframe.suites import get_suite
from clave.wire.media import StreamKind, encode_media, media_aad

VIDEO = StreamKind.video


def layers_played(c: Client, sender: Client | None = None) -> Counter[int]:
    return Counter(
        e.layer
        for e in c.of(MediaFrameDecrypted)
        if e.kind == VIDEO and (sender is None or e.sender == sender.meeting.own_leaf)
    )


def simulcast(net: Net, sender: Client, frames: int, first_keyframe: bool = True) -> None:
    for i in range(frames):
        for layer in (0, 1, 2):
            net.send_media(sender, VIDEO, first_keyframe and i == 0, b"L%d #%d" % (layer, i), layer)
    net.pump()


def test_each_receiver_plays_the_layer_it_chose_of_each_member() -> None:
    net = Net()
    alice, bob, carol, dave = meeting_of_four(net)
    bob.meeting.subscribe(layer=0)  # a small window: everybody at 180p
    carol.meeting.subscribe(layer=0, layers={alice.meeting.own_leaf: 2})  # Alice pinned
    net.pump()
    simulcast(net, alice, 1)  # the relay learns Alice's layers
    simulcast(net, dave, 1)
    for c in (bob, carol, dave):
        c.clear()
    simulcast(net, alice, 5, first_keyframe=False)
    simulcast(net, dave, 5, first_keyframe=False)
    assert layers_played(bob) == {0: 10}
    assert layers_played(carol, alice) == {2: 5}
    assert layers_played(carol, dave) == {0: 5}
    assert layers_played(dave, alice) == {2: 5}  # no choice made: the top layer
    # every frame is its own stream's: one KID context per layer, each counted in order
    kids = {e.layer: None for e in carol.of(MediaFrameDecrypted)}
    assert set(kids) == {0, 2}
    assert not carol.of(FrameRejected)


def test_switching_layers_asks_the_sender_for_a_keyframe_of_the_new_one() -> None:
    net = Net()
    alice, bob, _carol, _dave = meeting_of_four(net)
    bob.meeting.subscribe(layer=0)
    net.pump()
    simulcast(net, alice, 2)
    alice.clear()
    bob.meeting.subscribe(layer=1)
    net.pump()
    bob.clear()
    simulcast(net, alice, 1, first_keyframe=False)
    asked = alice.of(KeyframeRequested)
    assert [(e.kind, e.layer, e.by) for e in asked] == [(VIDEO, 1, bob.meeting.own_leaf)]
    assert layers_played(bob) == {0: 1}  # the old layer until the new one's keyframe
    net.send_media(alice, VIDEO, True, b"L1 key", 1)
    simulcast(net, alice, 2, first_keyframe=False)
    assert layers_played(bob) == {0: 1, 1: 3}


def test_a_frame_claiming_another_layer_than_its_key_context_is_refused() -> None:
    net = Net()
    alice, bob, carol, _dave = meeting_of_four(net)
    carol.clear()
    # Bob seals under his own layer-0 video context but labels the frame layer 2.
    base = bob.meeting.export_secret("SFrame 1.0 Base Key", b"", 16)
    kid = bob.meeting._media._keys.own_kid(wire.context_of(VIDEO, 0))
    ctx = SendKeyContext(get_suite(bob.meeting._config.sframe_suite), kid, base)
    sframe = ctx.seal(media_aad(VIDEO, True, 2), b"mislabelled")
    carol.meeting.receive(wire.stamp_sender(encode_media(VIDEO, True, sframe, layer=2), bob.conn))
    (rejected,) = carol.of(FrameRejected)
    assert "not its stream's" in rejected.reason
    assert not carol.of(MediaFrameDecrypted)
    # positive control: the same frame labelled with its real layer decrypts
    carol.clear()
    sframe = ctx.seal(media_aad(VIDEO, True, 0), b"labelled right")
    carol.meeting.receive(wire.stamp_sender(encode_media(VIDEO, True, sframe), bob.conn))
    assert not carol.of(FrameRejected)
    assert alice is not None


def test_the_relays_congestion_cap_reaches_the_engine() -> None:
    net = Net()
    _alice, bob, _carol, _dave = meeting_of_four(net)
    bob.clear()
    bob.meeting.receive(wire.encode(wire.LayerCap(layer=1)))
    assert bob.of(LayerCapped) == [LayerCapped(1)]


def test_manifests_of_videos_we_do_not_receive_are_not_verified() -> None:
    net = Net()
    alice, bob, carol, dave = meeting_of_four(net)
    dave.meeting.subscribe(video_from=[bob.meeting.own_leaf])
    net.pump()
    dave.clear()
    counters = dave.meeting._media.counters
    verified, skipped = counters.manifests_verified, counters.manifests_skipped
    simulcast(net, alice, 4)  # video only: Dave does not receive Alice's
    simulcast(net, carol, 4)
    assert counters.manifests_verified == verified
    assert counters.manifests_skipped > skipped
    assert not dave.of(FrameRejected)
    simulcast(net, bob, 4)  # positive control: Bob's are verified and his frames play
    assert counters.manifests_verified > verified
    # (while the relay learns Bob's layers his first keyframes of 0 and 1 come too)
    assert layers_played(dave, bob)[2] == 4
    net.send_media(alice, StreamKind.audio, False, b"Alice speaks")  # audio is received
    net.pump()
    assert b"Alice speaks" in [e.payload for e in dave.of(MediaFrameDecrypted)]


def test_a_frame_that_arrives_after_its_skipped_manifest_still_plays() -> None:
    """A subscription changed while frames were on their way: the manifest was not
    verified (not our stream), but the frame it covers plays when it comes."""
    net = Net()
    alice, bob, _carol, dave = meeting_of_four(net)
    dave.meeting.subscribe(video_from=[bob.meeting.own_leaf])
    net.pump()
    dave.clear()
    frame = alice.meeting.protect_media(VIDEO, True, b"Alice, in flight", 1)
    alice.meeting.send_manifest_now()
    manifests = [
        m
        for m in alice.meeting.frames_to_send()
        if isinstance(wire.decode_client(m[2:]), wire.Manifest)
    ]
    counters = dave.meeting._media.counters
    skipped = counters.manifests_skipped
    for m in manifests:  # the relay forwards the manifest (control overtakes media) ...
        data = wire.decode_client(m[2:]).data  # type: ignore[union-attr]
        dave.meeting.receive(wire.encode(wire.ManifestFrom(sender=alice.conn, data=data)))
    assert counters.manifests_skipped == skipped + 1
    dave.meeting.receive(wire.stamp_sender(frame, alice.conn))  # ... then the frame
    net.tick(0.6)
    assert [e.payload for e in dave.of(MediaFrameDecrypted)] == [b"Alice, in flight"]
    assert not dave.of(FrameRejected)
