"""Raised hands, reactions and a host's moderation (sans-I/O), as MLS application
messages (:mod:`.app_messages`: ``hand``, ``react``, ``lower``, ``ask_unmute``,
``mute``).

A layer of :class:`~clave.meeting.meeting.Meeting` between :mod:`.resume` and
:mod:`.meeting_handlers`: user actions here, and the handlers of those messages in
:data:`MODERATION_HANDLERS` (merged into the input layer's dispatch table).

Host-only requests are checked against the sender's role in the meeting policy,
as an ``invite`` is: a member's is refused (an ``Error`` of code ``not_host`` and a
``refused_takeover`` alert) and changes nothing. A host's ``mute`` is honoured by
the target: its announced microphone goes off, and :attr:`muted_by` tells the
engine to send no audio until the user unmutes (:meth:`set_media_state` with the
microphone on). An ``ask_unmute`` only tells the user; nothing is unmuted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from .app_messages import (
    REACTIONS,
    AppMessage,
    AskUnmute,
    Emoji,
    Hand,
    LowerHand,
    Mute,
    React,
)
from .errors import StateError
from .events import (
    AlertKind,
    ErrorCode,
    HandsChanged,
    MutedByHost,
    ReactionReceived,
    UnmuteAsked,
)
from .hands import HandQueue, ReactionLimit
from .resume import MeetingResume

AppHandler = Callable[[Any, AppMessage, int, str, int, bool], None]


class MeetingModeration(MeetingResume):
    """Hands, reactions and moderation (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hands = HandQueue()
        self._reaction_limit = ReactionLimit()
        self._own_reactions = ReactionLimit()
        self._muted_by: str | None = None

    # ------------------------------------------------------------------ state

    @property
    def raised_hands(self) -> tuple[int, ...]:
        """Leaves of members with a raised hand, in the order they were raised."""
        return self._hands.queue(self._members)

    @property
    def muted_by(self) -> str | None:
        """The host who muted our audio, until the user unmutes (None: not muted by one).
        While set, no audio is to be sent."""
        return self._muted_by

    @property
    def reactions_dropped(self) -> int:
        """Other members' reactions refused by the rate limit so far."""
        return self._reaction_limit.dropped

    # ------------------------------------------------------------------ actions

    def raise_hand(self, up: bool = True) -> None:
        """Raise (or lower) our own hand, for everyone."""
        group = self._require_in_meeting("raise a hand")
        me = group.own_leaf_index
        entry = self._members.get(me)
        if entry is None:  # pragma: no cover - we are always in our roster
            return
        changed = self._hands.raise_hand(me, entry.fingerprint) if up else self._hands.lower(me)
        self._send_app(Hand(up=up))
        if changed:
            self._emit(HandsChanged(me, entry.name, up, self.raised_hands))

    def lower_hand(self, leaf: int) -> None:
        """Lower ``leaf``'s hand: our own (anyone), or anyone's (a host only)."""
        group = self._require_in_meeting("lower a hand")
        if leaf == group.own_leaf_index:
            self.raise_hand(False)
            return
        self._require_host("lower someone's hand")
        self._require_member(leaf)
        self._send_app(LowerHand(leaf=leaf))
        if self._hands.lower(leaf):
            name = self._name_of(leaf)
            self._emit(HandsChanged(leaf, name, False, self.raised_hands, self._name))

    def react(self, emoji: str) -> bool:
        """Send a reaction from :data:`~.app_messages.REACTIONS`; False (not sent) beyond
        the rate limit the others hold us to."""
        group = self._require_in_meeting("react")
        if emoji not in REACTIONS:
            raise StateError(f"not a reaction: {emoji!r}")
        if not self._own_reactions.allow(group.own_leaf_index, self._clock()):
            return False
        self._send_app(React(emoji=cast(Emoji, emoji)))
        self._emit(ReactionReceived(group.own_leaf_index, self._name, emoji))
        return True

    def ask_to_unmute(self, leaf: int) -> None:
        """Host: ask ``leaf`` to unmute; its user decides."""
        self._require_host("ask someone to unmute")
        self._require_member(leaf)
        self._send_app(AskUnmute(leaf=leaf))

    def mute_member(self, leaf: int) -> None:
        """Host: mute ``leaf``'s outgoing audio for everyone (its engine honours it)."""
        self._require_host("mute someone")
        self._require_member(leaf)
        self._send_app(Mute(leaf=leaf))

    def set_media_state(
        self, *, mic: bool, cam: bool, screen: bool = False, recording: bool | None = None
    ) -> None:
        """As :meth:`MeetingActions.set_media_state`; turning the microphone on is the
        user's choice, which ends a host's mute."""
        super().set_media_state(mic=mic, cam=cam, screen=screen, recording=recording)
        if mic:
            self._muted_by = None

    def _require_member(self, leaf: int) -> None:
        if leaf not in self._members or leaf == self.own_leaf:
            raise StateError(f"leaf {leaf} is not another member of the meeting")

    # ------------------------------------------------------------------ input

    def _hello_heard(self, leaf: int) -> None:
        """A member announced itself (a newcomer, or back): our raised hand is news to
        it (it queues hands in the order it hears them)."""
        me = self.own_leaf
        if me is not None and leaf != me and self._hands.is_up(me, self._members):
            self._send_app(Hand(up=True))

    def _app_hand(self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool) -> None:
        assert isinstance(msg, Hand)
        entry = self._members.get(leaf)
        if not member or entry is None:
            return
        hands = self._hands
        changed = hands.raise_hand(leaf, entry.fingerprint) if msg.up else hands.lower(leaf)
        if changed:
            self._emit(HandsChanged(leaf, name, msg.up, self.raised_hands))

    def _app_react(self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool) -> None:
        assert isinstance(msg, React)
        if not member:
            return
        limit = self._reaction_limit
        if limit.allow(leaf, self._clock()):
            self._emit(ReactionReceived(leaf, name, msg.emoji))
        elif limit.first_refusal(leaf):
            self._error(
                ErrorCode.flooding,
                f"{name} (leaf {leaf}) sends reactions too fast: the excess is dropped",
            )

    def _from_host(self, what: str, leaf: int, name: str, member: bool) -> bool:
        """True if ``leaf`` is a host now; a member's host-only request is refused."""
        entry = self._members.get(leaf)
        if member and entry is not None and entry.is_host:
            return True
        self._error(ErrorCode.not_host, f"{name} (leaf {leaf}) is not a host: {what} refused")
        self._alert(AlertKind.refused_takeover, f"{name} tried to act as a host: {what}")
        return False

    def _app_lower(self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool) -> None:
        assert isinstance(msg, LowerHand)
        if self._from_host("lowering a hand", leaf, name, member) and self._hands.lower(msg.leaf):
            target = self._name_of(msg.leaf)
            self._emit(HandsChanged(msg.leaf, target, False, self.raised_hands, name))

    def _app_ask_unmute(
        self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool
    ) -> None:
        assert isinstance(msg, AskUnmute)
        if msg.leaf != self.own_leaf:
            return  # for someone else: theirs to answer
        if self._from_host("asking to unmute", leaf, name, member):
            self._emit(UnmuteAsked(leaf, name))

    def _app_mute(self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool) -> None:
        assert isinstance(msg, Mute)
        if msg.leaf != self.own_leaf:
            return  # the target announces its own switches
        if not self._from_host("muting you", leaf, name, member):
            return
        self._muted_by = name
        own = self._own_media
        if own is not None and own.mic:
            super().set_media_state(mic=False, cam=own.cam, screen=own.screen)
        self._emit(MutedByHost(leaf, name))


MODERATION_HANDLERS: dict[type, AppHandler] = {
    Hand: MeetingModeration._app_hand,
    React: MeetingModeration._app_react,
    LowerHand: MeetingModeration._app_lower,
    AskUnmute: MeetingModeration._app_ask_unmute,
    Mute: MeetingModeration._app_mute,
}
"""Application message type -> handler, merged into the input layer's table."""
