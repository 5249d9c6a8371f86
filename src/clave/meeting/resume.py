"""Staying in the meeting across dropped relay connections (sans-I/O).

The driver reports a dropped connection with :meth:`MeetingResume.connection_lost`
and, once it has opened a new one, calls :meth:`MeetingResume.reconnect`. We stay
a member throughout: the MLS group, its keys and the roster are untouched, and
nothing is sent while the link is down (chats typed meanwhile wait).

Coming back (docs/PROTOCOL.md, "Reconnection"):

1. ``Enter`` with the hash of our epoch's credential. If the relay ordered
   commits for that epoch meanwhile, it replays them before ``Joined``
   (:meth:`clave.relay.ordering.EpochSlots.chain`); we process them as usual,
   including our own commit in flight if it was ordered while its
   ``CommitAccepted`` was lost. After a relay restart the hash registers our
   epoch again.
2. On ``Joined``: the members whose connections are not in the room are *away*
   for a fresh resume window; our ``Hello`` (signed in the current epoch) binds
   the new connection to our leaf and lists them (and any member whose
   connection we never learned) as missing, so each answers with its own Hello,
   once for a burst of such Hellos (``ANNOUNCE_DELAY``). Members whose connection
   did not change send nothing on epoch changes, so this and a newcomer's first
   Hello are the only Hellos a meeting sees besides those answers. We re-offer
   the commit that took us to this epoch (members a restarted relay lost track
   of may still need it; the relay refuses it as stale otherwise), resend our
   commit in flight if it is still pending, and chats of the last
   ``CHAT_RESEND_WINDOW`` seconds (receivers drop copies).
3. If, ``catchup_timeout`` seconds later, we have heard nobody of our epoch but
   hold messages of later epochs, we missed changes that nobody can replay: the
   membership is over (:class:`Stranded`), and the driver asks to be admitted
   again. The same happens if a replayed commit removed us.

A lobby joiner cannot keep its request across connections (it is sealed to the
connection id): it enters again and sends a fresh one. It also repeats its
request when someone enters or leaves the room (a host coming back, a host
handing over as it leaves) and every ``KNOCK_PERIOD`` seconds (a host admitted
after the request was sent has never seen it); members ignore copies. In a room
of hundreds it knocks only periodically, less often (``KNOCK_ROOM``).
"""

from __future__ import annotations

import hashlib

from .. import wire
from .core import CHAT_RESEND_WINDOW, Phase
from .events import (
    ConnectionLost,
    LobbyWithdrawn,
    MeetingEnded,
    MemberAway,
    Reconnected,
    Stranded,
)
from .meeting_actions import MeetingActions
from .timers import Timer

ANNOUNCE_DELAY = 0.05
"""Seconds before answering a Hello's ``missing`` (answers to several are combined)."""
KNOCK_INTERVAL = 2.0
"""Seconds between two repeats of a lobby joiner's request at least."""
KNOCK_PERIOD = 10.0
"""A lobby joiner repeats its request this often anyway: a member admitted after it
knocked, who becomes a host later, has never seen it."""
KNOCK_ROOM = 100
"""In a room of more connections, a joiner knocks again only every ``KNOCK_PERIOD`` x
connections / ``KNOCK_ROOM`` seconds (jittered), and not when someone enters or leaves:
every knock is delivered to every connection, so hundreds waiting, each knocking on
every arrival, would cost the relay O(N²) deliveries (successors keep the lobby, so a
takeover does not depend on knocks)."""


class MeetingResume(MeetingActions):
    """Reconnection of a :class:`~clave.meeting.meeting.Meeting` (see the module docstring)."""

    @property
    def link_up(self) -> bool:
        """True while the relay connection is up and we are in its room."""
        return self._link_up

    @property
    def away(self) -> tuple[int, ...]:
        """Members whose connection vanished and who have not come back yet."""
        return self._presence.missing()

    def connection_lost(self, reason: str = "the connection to the relay dropped") -> None:
        """The relay connection is gone (not by :meth:`leave`). Nothing is sent until
        :meth:`reconnect`; frames not yet sent are dropped."""
        if self._phase is Phase.ended:
            return
        lost = self._link_up or self._resuming or not self._lost
        self._link_up = False
        self._resuming = False
        self._out.clear()
        self._reoffers = 0
        self._lost_at = self._clock()
        for timer in (Timer.knock, Timer.announce, Timer.catchup):
            self._timers.cancel(timer)
        if self._phase is Phase.lobby:
            self._request = None  # sealed to the old connection
            self._buffer.clear()
        if lost:
            self._lost = True
            self._emit(ConnectionLost(reason))

    def abandon(self, reason: str) -> None:
        """The driver gives up on the relay: the meeting ends for us (the others see us
        away, then gone)."""
        if self._phase is not Phase.ended:
            self._end(MeetingEnded(reason))

    def reconnect(self) -> None:
        """A new relay connection is open: enter the room again (see the module
        docstring). Read :meth:`frames_to_send` next."""
        if self._phase is Phase.ended:
            return
        self._out.clear()
        self._came_back = True
        keys = self._keys
        group = self._group
        if self._phase is not Phase.in_meeting:  # not admitted yet: knock afresh
            self._phase = Phase.connecting
            self._request = None
            self._buffer.clear()
            cred_hash = None if group is None else self._cred_hash()
            self._send(wire.Enter(room=keys.room_id, token=keys.access_token, cred_hash=cred_hash))
            return
        self._resuming = True
        self._caught_up = 0
        self._send(
            wire.Enter(room=keys.room_id, token=keys.access_token, cred_hash=self._cred_hash())
        )

    def _cred_hash(self) -> bytes:
        group = self._group
        assert group is not None
        return hashlib.sha256(self._credential(group)).digest()

    # ------------------------------------------------------------------ back in the room

    def _rejoined(self, msg: wire.Joined) -> None:
        """``Joined`` after :meth:`reconnect`: bind the new connection, resend what
        may have been lost, and check that we are not behind."""
        self._resuming = False
        self._link_up = True
        self._lost = False
        self._sent_subscription = None  # a new connection receives everything until told
        now = self._clock()
        cfg = self._config
        presence = self._presence
        was_away = set(presence.away)
        for leaf in presence.rejoined(msg.conn, msg.peers, now + cfg.resume_window, now):
            if leaf not in was_away:
                self._emit(MemberAway(leaf, self._name_of(leaf)))
        for rid in [r for r in self._lobby if r not in presence.peers]:
            entry = self._lobby.pop(rid)
            if rid in self._queue.admit:
                self._queue.admit.remove(rid)
            if entry.announced and self.is_host:
                self._emit(LobbyWithdrawn(rid))
        self._emit(Reconnected(msg.conn, self._caught_up))
        self._confirmed = self._caught_up > 0
        self._resend(now)
        self._timers.set(Timer.catchup, now + cfg.catchup_timeout)
        self._arm_presence()
        self._schedule()

    def _resend(self, now: float) -> None:
        """Re-offer our last commit, resend our commit in flight, Hello and recent chats."""
        last = self._last_commit
        inflight = self._inflight
        fresh = inflight is None or last is None or last.data != inflight.commit
        if last is not None and fresh and self._send(last):
            self._reoffers += 1
        if inflight is not None:
            if inflight.superseded:  # another commit won our epoch; its refusal was lost
                self._inflight = None
                self._timers.cancel(Timer.ordering)
            else:
                self._send(
                    wire.Commit(cred=inflight.cred, next=inflight.next, data=inflight.commit)
                )
                self._timers.set(Timer.ordering, now + self._config.order_timeout)
        hello = self._hello()
        if hello is not None:
            self._awaiting_directory = False  # a directory sent meanwhile was lost
            self._send_app(hello)
        since = self._lost_at - CHAT_RESEND_WINDOW
        log = list(self._chat_log)
        self._chat_log.clear()
        for sent_at, chat in log:
            if sent_at >= since:
                self._send_app(chat)
                self._chat_log.append((now, chat))

    def _refused_back(self, msg: wire.Error) -> None:
        """The relay did not let us back in (full, rate limited, ...): the driver drops
        this connection and tries again later."""
        self.connection_lost(f"the relay did not let us back in: {msg.message}")

    def _timer_catchup(self) -> None:
        group = self._group
        if not self._in_meeting() or group is None or not self._link_up or self._confirmed:
            return
        ahead = self._buffer.senders_after(group.epoch)
        if ahead:
            self._strand(
                f"the meeting moved on while your connection was down (epoch {group.epoch} "
                "here, later ones there) and the relay could not replay what you missed"
            )

    def _strand(self, reason: str) -> None:
        self._send(wire.Leave())
        self._end(Stranded(reason))

    # ------------------------------------------------------------------ presence

    def _arm_presence(self) -> None:
        when = self._presence.next_deadline()
        if when is None:
            self._timers.cancel(Timer.presence)
        else:
            self._timers.set(Timer.presence, when)

    def _timer_presence(self) -> None:
        """Members whose resume window ran out depart (a host removes them); not while
        our own link is down: :meth:`_rejoined` gives everyone a fresh window then."""
        if self._link_up:
            self._presence.expire(self._clock())
            self._arm_presence()

    def _announce_soon(self) -> None:
        self._timers.set_if_unset(Timer.announce, self._clock() + ANNOUNCE_DELAY)

    def _timer_announce(self) -> None:
        hello = self._hello()
        if self._in_meeting() and self._link_up and hello is not None:
            self._awaiting_directory = False  # too late now: our Hello asks instead
            self._send_app(hello)

    def _knock_period(self) -> float:
        """Seconds until our next periodic knock (see ``KNOCK_ROOM``)."""
        crowd = len(self._presence.peers) / KNOCK_ROOM
        if crowd <= 1:
            return KNOCK_PERIOD
        return KNOCK_PERIOD * crowd * (0.8 + 0.4 * int.from_bytes(self._rng(2), "big") / 0xFFFF)

    def _knock_soon(self) -> None:
        if len(self._presence.peers) > KNOCK_ROOM:
            return  # a large room: the periodic knock only
        when = max(self._clock() + ANNOUNCE_DELAY, self._last_knock + KNOCK_INTERVAL)
        due = self._timers.get(Timer.knock)
        if due is None or when < due:
            self._timers.set(Timer.knock, when)

    def _timer_knock(self) -> None:
        request = self._request
        if self._phase is Phase.lobby and request is not None and self._link_up:
            self._send(wire.JoinRequest(data=request.sealed))
            self._last_knock = self._clock()
            self._timers.set(Timer.knock, self._last_knock + self._knock_period())
