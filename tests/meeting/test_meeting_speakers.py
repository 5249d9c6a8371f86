"""Speaking activity from decrypted audio and the last-N choice (clave.meeting.speakers)."""

from __future__ import annotations

from clave.meeting.speakers import (
    DTX_BYTES,
    LAST_N,
    SPEAKING_WINDOW,
    SpeakerTracker,
    choose,
    layer_for,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def talk(tracker: SpeakerTracker, clock: Clock, leaf: int, frames: int = 5) -> None:
    """``frames`` 20 ms Opus frames of speech from ``leaf``."""
    for _ in range(frames):
        tracker.heard(leaf, 60)
        clock.now += 0.02


def test_dtx_frames_are_silence_and_speech_starts_once() -> None:
    clock = Clock()
    tracker = SpeakerTracker(clock)
    assert tracker.heard(1, DTX_BYTES) is False
    assert tracker.speaking() == () and tracker.recent() == ()
    assert tracker.heard(1, DTX_BYTES + 1) is True  # a start of speech
    assert tracker.heard(1, 40) is False  # still the same speech
    assert tracker.speaking() == (1,)


def test_a_member_stops_speaking_after_the_window() -> None:
    clock = Clock()
    tracker = SpeakerTracker(clock)
    talk(tracker, clock, 1)
    clock.now += SPEAKING_WINDOW - 0.2
    assert tracker.speaking() == (1,)
    clock.now += 0.5
    assert tracker.speaking() == ()
    assert tracker.recent() == (1,)  # still a recent speaker
    assert tracker.heard(1, 40) is True  # speaking again: a new start


def test_most_recent_start_first_and_those_speaking_before_the_silent() -> None:
    clock = Clock()
    tracker = SpeakerTracker(clock)
    talk(tracker, clock, 3)
    talk(tracker, clock, 5)
    talk(tracker, clock, 7)
    assert tracker.speaking() == (7, 5, 3)
    clock.now += SPEAKING_WINDOW + 0.1  # everybody silent
    talk(tracker, clock, 3)  # 3 starts again
    assert tracker.speaking() == (3,)
    assert tracker.recent() == (3, 7, 5)
    tracker.retain({3, 5})
    assert tracker.recent() == (3, 5)


def test_layers_follow_the_tile_count() -> None:
    assert [layer_for(n) for n in (1, 2, 4, 5, 9)] == [2, 1, 1, 0, 0]


def test_small_meetings_receive_everyone_and_never_ourselves() -> None:
    choice = choose(members=[0, 1, 2], own=1)
    assert choice.order == (0, 2) and set(choice.video) == {0, 2}
    assert choice.video == {0: 1, 2: 1} and choice.focus is None
    alone = choose(members=[0, 4], own=0)
    assert alone.video == {4: 2}


def test_last_n_takes_pinned_then_recent_speakers_then_the_rest() -> None:
    members = range(20)
    choice = choose(members=members, own=0, recent=[15, 12], pinned=[18], n=4)
    assert choice.order == (18, 15, 12, 1)
    assert choice.focus == 18  # the pinned member, one layer up
    assert choice.video == {18: 2, 15: 1, 12: 1, 1: 1}
    many = choose(members=members, own=0, recent=[15, 12])
    assert len(many.video) == LAST_N and many.order[:2] == (15, 12)
    assert many.video[15] == 1 and all(many.video[leaf] == 0 for leaf in many.order[1:])


def test_cameras_off_and_departed_members_take_no_place() -> None:
    choice = choose(members=[0, 1, 2, 3], own=0, recent=[2, 9], cameras_off={3})
    assert choice.order == (2, 1)
    assert choice.focus == 2


def test_a_screen_share_makes_the_videos_a_strip() -> None:
    choice = choose(members=[0, 1, 2], own=0, recent=[2], sharers=[1, 0, 8])
    assert choice.screen == frozenset({1})  # our own share and strangers left out
    assert choice.video == {2: 1, 1: 0}


def test_a_congestion_cap_bounds_every_layer() -> None:
    choice = choose(members=[0, 1], own=0, cap=0)
    assert choice.video == {1: 0}
    choice = choose(members=[0, 1, 2, 3], own=0, recent=[3], cap=1)
    assert choice.video == {3: 1, 1: 1, 2: 1}
    assert choose(members=[0, 1], own=0, n=0).video == {}


def test_speaker_view_receives_the_focus_at_the_top_and_the_filmstrip_at_the_lowest() -> None:
    choice = choose(members=[0, 1, 2, 3], own=0, recent=[2], pinned=[3], speaker_view=True)
    assert choice.focus == 3
    assert choice.video == {3: 2, 2: 0, 1: 0}
    # Nobody pinned or heard: the first member on stage is the focus.
    choice = choose(members=[0, 1, 2], own=0, speaker_view=True)
    assert choice.focus == 1 and choice.video == {1: 2, 2: 0}
    # The congestion cap still bounds the focus; a screen share makes a strip as before.
    assert choose(members=[0, 1, 2], own=0, cap=1, speaker_view=True).video == {1: 1, 2: 0}
    shared = choose(members=[0, 1, 2], own=0, recent=[2], sharers=[1], speaker_view=True)
    assert shared.video == {2: 1, 1: 0}
