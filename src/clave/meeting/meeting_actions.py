"""User actions of a :class:`~clave.meeting.meeting.Meeting` and its commit machinery.

Host actions queue changes (:class:`~clave.meeting.committer.Queue`); the
committer plans one commit at a time and sends it for ordering with the
epoch's credential; the relay's answer (or its silence) resolves it. A change
the relay does not order is never waited for silently: after
``MeetingConfig.order_timeout`` an :class:`OrderingStalled` event says so, and
:attr:`Meeting.pending_removals` shows removals still to happen.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterable, Mapping

from .. import wire
from ..mls.errors import MLSError
from ..mls.group import Group
from ..wire.media import StreamKind
from .app_messages import MAX_CHAT_CHARS, Bye, Chat, Invite, MediaState
from .committer import Inflight, Plan, View, plan, primary_host, takeover_wait
from .core import CREDENTIAL_LABEL, MeetingCore, Phase
from .errors import RoleError, StateError
from .events import ErrorCode, LobbyRequest, MeetingEnded, OrderingResumed, OrderingStalled
from .keys import access_token
from .lobby import LobbyEntry, Outcome, ReplyBody, seal_reply
from .policy import with_policy
from .roles import MAX_CHAIN
from .subscription import Wanted
from .timers import Timer

MAX_BACKOFF = 8.0
_REFUSALS = (wire.ErrorCode.stale_epoch, wire.ErrorCode.bad_credential, wire.ErrorCode.rate_limited)


class MeetingActions(MeetingCore):
    """User actions and committing (see the module docstring)."""

    # ------------------------------------------------------------------ lobby

    def admit(self, request_id: int) -> bool:
        """Host: admit a lobby request (commits an Add, then sends the Welcome).

        Returns False if the request is gone (its connection left meanwhile).
        """
        return self.admit_many([request_id]) == 1

    def admit_many(self, request_ids: Iterable[int]) -> int:
        """Host: admit several lobby requests; they go in together, up to
        ``MeetingConfig.admit_batch`` per commit. Returns how many were still waiting."""
        self._require_host("admit someone")
        if self._locked_or_locking():
            raise StateError("the meeting is locked: unlock it before admitting anyone")
        queued = 0
        for request_id in request_ids:
            entry = self._lobby.get(request_id)
            if entry is None or entry.answered:
                continue
            if request_id not in self._queue.admit:
                self._queue.admit.append(request_id)
            queued += 1
        self._settle()
        return queued

    def admit_all(self) -> int:
        """Host: admit everyone waiting (``admit_batch`` per commit); how many."""
        return self.admit_many([rid for rid, e in self._lobby.items() if not e.answered])

    @property
    def lobby_waiting(self) -> int:
        """How many validated join requests wait for a host's decision."""
        return sum(1 for e in self._lobby.values() if not e.answered)

    def lobby_head(self, limit: int) -> tuple[LobbyRequest, ...]:
        """The first ``limit`` of :attr:`lobby`, in arrival order (what a screen shows of
        hundreds waiting; each costs a look-alike check against everyone)."""
        waiting = (e for e in self._lobby.values() if not e.answered)
        return tuple(self._lobby_request(e) for e in itertools.islice(waiting, max(0, limit)))

    def deny(self, request_id: int) -> bool:
        """Host: decline a lobby request; the requester is told (a signed reply).
        False if unknown or already being admitted."""
        self._require_host("decline a request")
        if not self._link_up:
            raise StateError("reconnecting to the relay: decline once the connection is back")
        entry = self._lobby.get(request_id)
        inflight = self._inflight
        if entry is None or (inflight and entry in inflight.plan.adds):
            return False
        self._answer(entry, Outcome.declined)
        return True

    def _answer(self, entry: LobbyEntry, outcome: Outcome) -> None:
        """Send a signed, sealed lobby reply and forget the request (not while the relay
        link is down: the request stays and is answered once back)."""
        if not self._link_up:
            return
        group = self._group
        policy = self.policy
        assert group is not None and policy is not None
        mine = policy.host_entry(self._sig_pub)
        if mine is not None and policy.is_host(self._sig_pub):
            body = ReplyBody(outcome, entry.key_package_ref, group.group_id, policy.owner, mine)
            data = seal_reply(
                self._keys.join_key, body, self._signer.signature_private_key, self._rng
            )
            self._send(wire.ReplyTo(to=entry.request_id, data=data))
        entry.answered = True
        self._lobby.pop(entry.request_id, None)
        self._denied.add(entry.request_id)
        if entry.request_id in self._queue.admit:
            self._queue.admit.remove(entry.request_id)

    def _locked_or_locking(self) -> bool:
        policy = self.policy
        return bool(self._queue.settings.get("locked", policy is not None and policy.locked))

    # ------------------------------------------------------------------ host actions

    def remove_member(self, leaf: int, *, replace_invitation: bool = False) -> None:
        """Host: remove a member (commits a Remove). With ``replace_invitation`` the
        invitation is replaced once the removal is done, so the old link stops working."""
        self._require_host("remove a member")
        if leaf == self.own_leaf:
            raise StateError("you cannot remove yourself; use leave()")
        entry = self._members.get(leaf)
        if entry is None:
            raise StateError(f"leaf {leaf} is not a member")
        policy = self.policy
        assert policy is not None
        member = self._mls_members[leaf]
        if member.signature_key == policy.owner and policy.is_host(policy.owner):
            raise StateError("the meeting's owner cannot be removed while it is a host")
        self._queue.kick.add(leaf)
        if replace_invitation:
            self._rotate_after_commit = True
        self._settle()

    def set_locked(self, locked: bool) -> None:
        """Host: lock (no new join requests are admitted; knockers are told) or unlock."""
        self._change_setting("locked", locked)
        if locked:
            self._queue.admit.clear()
            for entry in list(self._lobby.values()):
                if not entry.answered:
                    self._answer(entry, Outcome.locked)
        self._settle()

    def set_auto_admit(self, auto_admit: bool) -> None:
        """Host: admit valid join requests without asking."""
        self._change_setting("auto_admit", auto_admit)
        self._settle()

    def _change_setting(self, name: str, value: bool) -> None:
        self._require_host("change the meeting settings")
        policy = self.policy
        assert policy is not None
        if getattr(policy, name) == value:
            self._queue.settings.pop(name, None)
        else:
            self._queue.settings[name] = value

    def set_host(self, leaf: int, host: bool) -> None:
        """Host: give a member the host role (certified with our chain) or take it away."""
        self._require_host("change roles")
        policy = self.policy
        assert policy is not None
        member = self._mls_members.get(leaf)
        if member is None:
            raise StateError(f"leaf {leaf} is not a member")
        key = member.signature_key
        if host:
            mine = policy.host_entry(self._sig_pub)
            if mine is not None and len(mine.chain) >= MAX_CHAIN and policy.host_entry(key) is None:
                raise StateError("your host certificate chain is at its limit")
            self._queue.demote.discard(key)
            self._queue.promote.add(key)
        else:
            if key == policy.owner and key != self._sig_pub:
                raise StateError("only the owner can give up the owner's host role")
            self._queue.promote.discard(key)
            self._queue.demote.add(key)
        self._settle()

    def rotate_invitation(self) -> None:
        """Host: replace the invitation. Members get the new one inside the meeting (an
        MLS message), the relay room moves to its token, and connections that are
        neither members nor waiting in the lobby are dropped."""
        self._require_host("replace the invitation")
        if self.pending_removals or self._inflight is not None:
            self._rotate_after_commit = True
            return
        self._rotate()

    def _rotate(self) -> None:
        group = self._group
        assert group is not None
        self._rotate_after_commit = False
        secret = self._rng(32)
        new = self._link.with_secret(secret)
        self._send_app(Invite(secret))
        keep = self._presence.member_conns() | set(self._lobby)
        drop = sorted(self._presence.peers - keep)[: wire.MAX_DROP]
        self._send(wire.Rotate(cred=self._credential(group), token=access_token(secret), drop=drop))
        self._adopt_link(new)

    def refresh_keys(self) -> None:
        """Commit a fresh UpdatePath (post-compromise security, RFC 9420 section 12.4)."""
        self._require_in_meeting("refresh keys")
        self._queue.refresh = True
        self._settle()

    def set_verified(self, leaf: int, verified: bool = True) -> None:
        """Record that we compared codes with this member (remembered across meetings)."""
        self._require_in_meeting("verify a member")
        member = self._mls_members.get(leaf)
        if member is None:
            raise StateError(f"leaf {leaf} is not a member")
        from .identity import parse_credential

        self._familiarity.set_verified(parse_credential(member.credential), verified)
        self._refresh_roster()

    def _refresh_roster(self) -> None:
        from .roster import build_roster

        group = self._group
        policy = self.policy
        if group is None or policy is None:
            return
        self._members = build_roster(
            self._mls_members.values(), policy, group.own_leaf_index, self._familiarity
        )
        self._rosters[group.epoch] = self._members

    # ------------------------------------------------------------------ everyone

    def send_chat(self, text: str) -> None:
        """Send a chat message to the current members (an MLS application message)."""
        self._require_in_meeting("send a chat message")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_CHAT_CHARS:
            raise ValueError(f"a chat message must have 1 to {MAX_CHAT_CHARS} characters")
        chat = Chat(text, int.from_bytes(self._rng(8), "big") >> 1 or 1)
        # Kept for a while: if the connection drops, it is sent again once back (or only
        # then, if the link is down now); receivers drop copies by its id.
        self._chat_log.append((self._clock() if self._link_up else math.inf, chat))
        self._send_app(chat)

    def protect_media(
        self, kind: StreamKind, keyframe: bool, payload: bytes, layer: int = 0
    ) -> bytes:
        """Encrypt one encoded media frame (of simulcast ``layer``) with SFrame and return
        the media wire frame.

        Raises :class:`StateError` unless :attr:`encrypted`: there is no
        unencrypted fallback.
        """
        if not self.encrypted:
            raise StateError("not in the meeting with current keys: media cannot be sent")
        frame = self._media.protect(StreamKind(kind), keyframe, payload, layer)
        self._media_out()  # a manifest of our latest frames, when one is due
        return frame

    def send_manifest_now(self) -> None:
        """Sign and queue the manifest of the frames protected so far, without waiting
        for ``manifest_interval`` (e.g. when a stream stops)."""
        self._require_in_meeting("send a media manifest")
        self._media.flush_now()
        self._media_out()

    def request_keyframe(
        self, leaf: int, kind: StreamKind = StreamKind.video, layer: int | None = None
    ) -> bool:
        """Ask a member for a keyframe (of ``layer``; None: of every layer it sends);
        False if its relay connection is not known yet."""
        self._require_in_meeting("request a keyframe")
        conn = self._presence.conn_of_leaf.get(leaf)
        if conn is None:
            return False
        return self._send(wire.KeyframeRequest(to=conn, kind=int(StreamKind(kind)), layer=layer))

    @property
    def recording(self) -> bool:
        """Whether we announced that we record the meeting."""
        return self._own_media is not None and self._own_media.rec

    def set_media_state(
        self, *, mic: bool, cam: bool, screen: bool = False, recording: bool | None = None
    ) -> None:
        """Our microphone, camera and screen switches and whether we record (None: as
        before): announced to the others now (an MLS application message) and in every
        later Hello, so a mute shows as one and everyone sees who records."""
        if self._phase is Phase.ended:
            raise StateError("the meeting has ended")
        rec = self.recording if recording is None else recording
        state = MediaState(mic=mic, cam=cam, screen=screen, rec=rec)
        if state == self._own_media:
            return
        self._own_media = state
        if self._in_meeting():
            self._send_app(state)

    def set_recording(self, on: bool) -> None:
        """Announce that we start (or stop) recording the meeting, other switches kept."""
        own = self._own_media or MediaState(mic=False, cam=False)
        self.set_media_state(mic=own.mic, cam=own.cam, screen=own.screen, recording=on)

    def subscribe(
        self,
        *,
        audio: bool = True,
        video: bool = True,
        screen: bool = True,
        video_from: Iterable[int] | None = None,
        screen_from: Iterable[int] | None = None,
        layer: int = wire.MAX_LAYER,
        layers: Mapping[int, int] | None = None,
    ) -> None:
        """Tell the relay which media to forward to us: each kind on or off, for video
        and screen optionally only from these members (leaves; None: everybody), and
        the video layer of each member (``layers``, else ``layer``; 0 is the lowest).
        The relay is told their connection ids, kept current as members reconnect;
        manifests of streams we do not receive are no longer verified."""
        if self._phase is Phase.ended:
            raise StateError("the meeting has ended")
        wanted = Wanted.of(
            audio=audio,
            video=video,
            screen=screen,
            video_from=video_from,
            screen_from=screen_from,
            layer=layer,
            layers=layers,
        )
        self._wanted = wanted
        self._media.interest = wanted.receives
        self._refresh_subscription()

    def leave(self) -> None:
        """Leave. A host that others depend on first hands its role over by commit
        (bounded by ``handover_timeout``); then Bye, so a host removes us, and Leave."""
        if self._phase is Phase.ended or self._leaving:
            return
        policy = self.policy
        if self._in_meeting() and policy is not None and policy.is_host(self._sig_pub):
            others = [m for leaf, m in self._mls_members.items() if leaf != self.own_leaf]
            other_hosts = [h for h in policy.hosts if h.key != self._sig_pub]
            if others and (not other_hosts or self._sig_pub == policy.owner):
                self._leaving = True
                self._queue.handover = True
                self._timers.set(Timer.handover, self._clock() + self._config.handover_timeout)
                self._settle()
                return
        self._finish_leaving()

    def _finish_leaving(self) -> None:
        if self._phase is Phase.ended:
            return
        if self._in_meeting():
            self._send_app(Bye())
        self._send(wire.Leave())
        self._end(MeetingEnded("you left the meeting"))

    # ------------------------------------------------------------------ committing

    def _view(self, group: Group) -> View:
        policy = self.policy
        assert policy is not None
        return View(
            me=group.own_leaf_index,
            my_key=self._sig_pub,
            my_private=self._signer.signature_private_key,
            group_id=group.group_id,
            policy=policy,
            members=self._mls_members,
            presence=self._presence,
            lobby=self._lobby,
            seniority=self._seniority,
            now=self._clock(),
            last_refresh_by=self._last_refresh_by,
            fingerprints={leaf: e.fingerprint for leaf, e in self._members.items()},
            recorders=frozenset(leaf for leaf, m in self.media_states.items() if m.rec),
        )

    def _is_primary(self) -> bool:
        policy = self.policy
        return policy is not None and (
            primary_host(policy, self._mls_members, self._presence) == self._sig_pub
        )

    def _arm_takeover(self) -> None:
        group = self._group
        if not self._in_meeting() or group is None:
            return
        wait = takeover_wait(self._view(group))
        if wait is None:
            self._timers.cancel(Timer.takeover)
        elif wait > 0:
            self._timers.set(Timer.takeover, self._clock() + wait)

    def _maybe_commit(self) -> None:
        """Commit queued changes if we may and nothing of ours is in flight."""
        group = self._group
        if not self._in_meeting() or group is None or self._inflight is not None:
            return
        if not self._link_up:
            return  # after reconnecting, once caught up
        if self._timers.get(Timer.retry) is not None:
            return  # waiting for a winning commit, or backing off after a refusal
        if self._rotate_after_commit and not self.pending_removals and self.is_host:
            self._rotate()
        self._arm_takeover()
        try:
            todo = plan(self._view(group), self._queue)
        except RoleError as exc:
            self._error(ErrorCode.commit_failed, f"cannot plan the queued changes: {exc}")
            self._queue.promote.clear()
            return
        if todo is None:
            return
        try:
            out = group.commit(
                add=[e.key_package for e in todo.adds],
                remove=sorted(todo.removes),
                extensions=None
                if todo.policy is None
                else with_policy(group.extensions, todo.policy),
            )
        except MLSError as exc:
            self._error(ErrorCode.commit_failed, f"cannot commit the queued changes: {exc}")
            self._drop(todo)
            return
        cred = self._credential(group)
        nxt = hashlib.sha256(group.pending_export_secret(CREDENTIAL_LABEL, b"", 32)).digest()
        now = self._clock()
        self._inflight = Inflight(
            plan=todo, commit=out.commit, welcome=out.welcome, cred=cred, next=nxt, sent_at=now
        )
        if not self._send(wire.Commit(cred=cred, next=nxt, data=out.commit)):
            group.discard_pending_commit()
            self._inflight = None
            self._drop(todo)
            return
        self._timers.set(Timer.ordering, now + self._config.order_timeout)

    def _drop(self, todo: Plan) -> None:
        """Forget changes that cannot be committed, so they are not retried forever."""
        for e in todo.adds:
            self._lobby.pop(e.request_id, None)
            if e.request_id in self._queue.admit:
                self._queue.admit.remove(e.request_id)
        self._queue.kick -= todo.removes
        self._presence.departed -= todo.removes
        self._queue.settings.clear()
        self._queue.promote.clear()
        self._queue.demote.clear()
        self._queue.refresh = False
        if todo.handover:
            self._finish_leaving()

    def _done(self, todo: Plan) -> None:
        """Our commit was ordered: clear what it did from the queue."""
        queue = self._queue
        for e in todo.adds:
            if e.request_id in queue.admit:
                queue.admit.remove(e.request_id)
        queue.kick -= todo.removes
        policy = self.policy
        if policy is not None:
            for name, value in list(queue.settings.items()):
                if getattr(policy, name) == value:
                    del queue.settings[name]
            queue.promote = {k for k in queue.promote if not policy.is_host(k)}
            queue.demote = {k for k in queue.demote if policy.is_host(k)}
        if todo.refresh:
            queue.refresh = False

    def _on_commit_accepted(self, msg: wire.CommitAccepted) -> None:
        if self._reoffers:
            self._reoffers -= 1  # a re-offered commit reached members the relay had lost
            return
        inflight = self._inflight
        if inflight is None or self._group is None or inflight.superseded:
            self._inflight = None
            self._error(ErrorCode.protocol_violation, "CommitAccepted without a commit in flight")
            return
        self._ordered_ours()

    def _ordered_ours(self) -> None:
        """The relay ordered our commit in flight: merge it and enter its epoch."""
        inflight = self._inflight
        group = self._group
        assert inflight is not None and group is not None
        summary = group.merge_pending_commit()
        self._inflight = None
        self._last_commit = wire.Commit(
            cred=inflight.cred, next=inflight.next, data=inflight.commit
        )
        self._timers.cancel(Timer.ordering)
        self._backoff = 0.0
        self._resume()
        if inflight.welcome is not None:
            to = [e.request_id for e in inflight.plan.adds if e.request_id in self._presence.peers]
            for start in range(0, len(to), wire.MAX_WELCOMED):
                first, *also = to[start : start + wire.MAX_WELCOMED]
                self._send(wire.WelcomeTo(to=first, data=inflight.welcome, also=also))
        self._set_previous()
        self._enter_epoch(summary)
        self._done(inflight.plan)
        if inflight.plan.handover:
            self._finish_leaving()

    def _commit_refused(self, msg: wire.Error) -> bool:
        """The relay refused our commit (True), or the error is about something else."""
        if self._reoffers and msg.code in _REFUSALS:
            self._reoffers -= 1  # nobody needed our re-offered commit
            return True
        inflight = self._inflight
        group = self._group
        if inflight is None or group is None or msg.code not in _REFUSALS:
            return False
        if not inflight.superseded and group.has_pending_commit:
            group.discard_pending_commit()
        self._inflight = None
        self._timers.cancel(Timer.ordering)
        now = self._clock()
        if msg.code == wire.ErrorCode.stale_epoch:
            if not inflight.superseded:
                # Another commit took our epoch; wait for it before trying again.
                self._timers.set(Timer.retry, now + self._config.order_timeout)
            return True
        self._backoff = min(MAX_BACKOFF, max(1.0, self._backoff * 2))
        self._timers.set(Timer.retry, now + self._backoff)
        if msg.code == wire.ErrorCode.bad_credential:
            self._stall("the relay does not accept this meeting's commit credential")
        return True

    def _winner_arrived(self) -> None:
        """A commit for our epoch was processed: stop waiting for it."""
        if self._inflight is None:
            self._timers.cancel(Timer.retry)

    def _timer_ordering(self) -> None:
        if self._inflight is not None:
            self._stall(
                f"the relay has not ordered our change for {self._config.order_timeout:g} s: "
                "it stays pending, and removals do not take effect until it is ordered"
            )

    def _timer_retry(self) -> None:
        if self._inflight is None and self._backoff == 0.0:
            self._stall(
                "the relay said another change was ordered first, but that change never "
                "arrived: the relay is not ordering changes"
            )
            self._backoff = 1.0

    def _stall(self, reason: str) -> None:
        if self._stalled != reason:
            self._stalled = reason
            self._emit(OrderingStalled(reason))

    def _resume(self) -> None:
        if self._stalled is not None:
            self._stalled = None
            self._emit(OrderingResumed())

    def _timer_refresh(self) -> None:
        if self._in_meeting() and len(self._mls_members) > 1:
            self._queue.refresh = True
        self._schedule()
