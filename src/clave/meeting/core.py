"""The state of one participant's meeting and the helpers every layer uses (sans-I/O).

:class:`MeetingCore` holds the state; :mod:`.meeting_actions` adds user actions
and committing, :mod:`.meeting_handlers` relay input, and :mod:`.meeting` the
public facade. See :mod:`clave.meeting.meeting` for the whole picture.

It keeps the group, the roster per epoch, presence, the lobby, the commit queue
and what is in flight, the media keys and the timers; it sends and emits.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .. import wire
from ..mls.errors import MLSError
from ..mls.events import CommitSummary, Member, PolicyInput
from ..mls.group import Group, GroupConfig, Signer
from ..mls.structs import MLSMessage, PrivateMessage
from .admission import Request
from .app_messages import (
    MAX_MISSING,
    Alive,
    AppMessage,
    Chat,
    Directory,
    Hello,
    MediaState,
    encode_app_message,
    make_directory,
)
from .buffer import FutureBuffer, RecentSet
from .committer import Inflight, Queue
from .config import MeetingConfig
from .errors import StateError
from .events import (
    AlertKind,
    EpochChanged,
    Error,
    ErrorCode,
    Event,
    InvitationReplaced,
    LobbyRequest,
    MemberJoined,
    MemberLeft,
    RosterEntry,
    SecurityAlert,
)
from .identity import Identity, credential_validator, make_credential
from .keys import room_keys
from .link import MeetingLink, owner_fingerprint
from .lobby import LobbyEntry
from .media import MediaPlane
from .names import normalize_display_name
from .people import PeopleBook
from .policy import (
    ALIVE_INTERVAL,
    CAPABILITIES,
    CommitRules,
    MeetingPolicy,
    initial_extensions,
    meeting_policy,
)
from .presence import Presence
from .roles import owner_entry, suite
from .roster import Familiarity, build_roster, lobby_request
from .security_code import security_code
from .subscription import Wanted
from .timers import Timer, Timers

Rng = Callable[[int], bytes]
Clock = Callable[[], float]
UnixTime = Callable[[], int]

CREDENTIAL_LABEL = "clave v2 commit credential"
MAX_REMEMBERED = 4096
"""Join requests answered, KeyPackages and chat ids seen, remembered at most (oldest go)."""
CHAT_RESEND_WINDOW = 10.0
"""Chats sent this many seconds before a dropped connection are sent again once back
(receivers drop copies by the chat's id): the ones the relay may not have delivered."""
CHAT_RESEND_MAX = 64
GROUP_ID_BYTES = 16
DIRECTORY_WAIT = 1.0
"""Seconds a newcomer waits for its admitting host's directory before it sends its Hello
anyway (asking everyone it does not know for theirs)."""


class Phase(StrEnum):
    connecting = "connecting"
    """``Enter`` sent, waiting for the relay's ``Joined``."""
    lobby = "lobby"
    """Join request sent, waiting for a Welcome (or a host's reply)."""
    in_meeting = "in_meeting"
    """A member of the MLS group."""
    ended = "ended"
    """Left, removed, declined or refused; every further input is ignored."""


@dataclass(frozen=True, slots=True)
class _Incoming:
    """An MLS message from the relay (commit or application), possibly buffered."""

    commit: bool
    sender: int
    data: bytes
    from_lobby: bool = False


def peek(data: bytes) -> PrivateMessage | None:
    try:
        body = MLSMessage.from_bytes(data).body
    except (MLSError, ValueError):
        return None
    return body if isinstance(body, PrivateMessage) else None


class MeetingCore:
    """State and shared helpers of a :class:`~clave.meeting.meeting.Meeting`."""

    def __init__(
        self,
        link: MeetingLink,
        name: str,
        *,
        create: bool,
        rng: Rng,
        clock: Clock,
        now: UnixTime,
        config: MeetingConfig,
        identity: Identity | None = None,
        owner_key: bytes | None = None,
        auto_admit: bool = False,
        people: PeopleBook | None = None,
    ) -> None:
        self._link = link
        self._name = normalize_display_name(name)
        self._rng = rng
        self._clock = clock
        self._now = now
        self._config = config
        self._identity = identity or Identity.generate(rng)
        self._keys = room_keys(link.secret)
        cs = suite()
        if create:
            if owner_key is None:
                raise StateError("creating a meeting needs the owner key its invitation names")
            sig_priv, sig_pub = owner_key, cs.signature_public_key(owner_key)
            if owner_fingerprint(sig_pub) != link.owner:
                raise StateError("the owner key does not match the invitation's owner")
        else:
            sig_priv, sig_pub = cs.generate_signature_key_pair(rng)
        self._sig_pub = sig_pub
        self._signer = Signer(make_credential(self._identity, self._name, sig_pub), sig_priv)
        self._group_config = GroupConfig(
            capabilities=CAPABILITIES,
            credential_validator=credential_validator,
            max_past_epochs=1 if config.grace_period > 0 else 0,
        )
        self._media = MediaPlane(
            config.sframe_suite,
            config.epoch_bits,
            clock,
            config.grace_period,
            authenticate=config.authenticate_media,
            interval=config.manifest_interval,
        )
        self._familiarity = Familiarity(people, self._identity.public_key, now)
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []
        self._phase = Phase.connecting
        self._presence = Presence()
        self._timers = Timers()
        self._group: Group | None = None
        self._request: Request | None = None
        self._mls_members: dict[int, Member] = {}
        self._members: dict[int, RosterEntry] = {}
        self._rosters: dict[int, dict[int, RosterEntry]] = {}
        self._lobby: dict[int, LobbyEntry] = {}
        self._denied: RecentSet[int] = RecentSet(MAX_REMEMBERED)
        """Connections whose requests we answered (not re-shown if they ask again)."""
        self._seen_key_packages: RecentSet[bytes] = RecentSet(MAX_REMEMBERED)
        self._queue = Queue(batch=config.admit_batch, welcome_budget=config.welcome_budget)
        self._inflight: Inflight | None = None
        self._stalled: str | None = None
        self._backoff = 0.0
        self._buffer: FutureBuffer[_Incoming] = FutureBuffer(config.buffer)
        self._previous_until: float | None = None
        """Until when the group's kept past epoch may open late application messages."""
        self._own_media: MediaState | None = None
        """Our microphone, camera and screen switches, once the user set them."""
        self._media_of: dict[int, MediaState] = {}
        """Each member's switches as it last announced them (by leaf)."""
        self._awaiting_directory = False
        """Admitted by Welcome, our Hello held until the admitting host's directory."""
        self._wanted: Wanted | None = None
        """The media we asked for (None: everything, the relay's default)."""
        self._sent_subscription: wire.Subscribe | None = None
        self._seen_app: dict[int, set[tuple[int, int]]] = {}
        self._last_refresh_by: int | None = None
        self._added_at: dict[int, int] = {}
        self._last_sent_app = 0.0
        self._leaving = False
        self._pending_invite: str | None = None
        self._rotate_after_commit = False
        self._link_up = False
        """``Joined`` on the current relay connection (nothing is sent while False)."""
        self._resuming = False
        """Reconnected, waiting for ``Joined`` (commits replayed before it are caught up)."""
        self._lost = False
        self._lost_at = 0.0
        self._came_back = False
        """We reconnected at least once (a lobby joiner then waits in an empty room)."""
        self._last_knock = -1e9
        self._caught_up = 0
        self._confirmed = True
        """Since reconnecting, a member of our epoch (or a new epoch) was heard."""
        self._last_commit: wire.Commit | None = None
        """The commit that took us to this epoch, re-offered after a reconnection (members
        the relay lost track of may still need it)."""
        self._reoffers = 0
        """Answers still due for re-offered commits (they come before our own's)."""
        self._chat_log: deque[tuple[float, Chat]] = deque(maxlen=CHAT_RESEND_MAX)
        """Chats sent recently or while disconnected, resent after a reconnection."""
        self._seen_chat: RecentSet[tuple[int, int]] = RecentSet(MAX_REMEMBERED)
        if create:
            policy = MeetingPolicy(
                owner=sig_pub, hosts=(owner_entry(sig_pub),), auto_admit=auto_admit
            )
            self._group = Group.create(
                MLS_CIPHER_SUITE_ID,
                rng(GROUP_ID_BYTES),
                self._signer,
                rng=rng,
                now=now,
                extensions=initial_extensions(policy),
                policy=self._check_commit,
                config=self._group_config,
            )
            cred_hash = hashlib.sha256(self._credential(self._group)).digest()
            self._send(
                wire.Enter(
                    room=self._keys.room_id, token=self._keys.access_token, cred_hash=cred_hash
                )
            )
        else:
            self._send(wire.Enter(room=self._keys.room_id, token=self._keys.access_token))

    # ------------------------------------------------------------------ state

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def link(self) -> MeetingLink:
        """The current invitation (a host may replace it; see :meth:`rotate_invitation`)."""
        return self._link

    @property
    def name(self) -> str:
        return self._name

    @property
    def fingerprint(self) -> str:
        """Our long-term identity's fingerprint (8 groups of 4 hex digits)."""
        return self._identity.fingerprint

    @property
    def conn(self) -> int | None:
        """Our relay connection id once connected."""
        return self._presence.conn

    @property
    def own_leaf(self) -> int | None:
        return self._group.own_leaf_index if self._in_meeting() and self._group else None

    @property
    def epoch(self) -> int | None:
        """The current MLS epoch while in the meeting."""
        return self._group.epoch if self._in_meeting() and self._group else None

    @property
    def security_code(self) -> str | None:
        """The code to compare out of band: it changes when someone joins or leaves."""
        if not self._in_meeting() or self._group is None:
            return None
        return security_code(self._group.group_id, self._mls_members.values())

    @property
    def roster(self) -> tuple[RosterEntry, ...]:
        return tuple(self._members[leaf] for leaf in sorted(self._members))

    @property
    def policy(self) -> MeetingPolicy | None:
        """The meeting policy (roles and settings) of the current epoch."""
        if self._group is None or not self._in_meeting():
            return None
        return meeting_policy(self._group.extensions)

    @property
    def is_host(self) -> bool:
        policy = self.policy
        return policy is not None and policy.is_host(self._sig_pub)

    @property
    def host_leaves(self) -> tuple[int, ...]:
        return tuple(e.leaf for e in self.roster if e.is_host)

    @property
    def media_states(self) -> dict[int, MediaState]:
        """Present members' announced microphone, camera and screen switches, by leaf
        (a member that announced none is absent: unknown, not muted)."""
        return {leaf: m for leaf, m in self._media_of.items() if leaf in self._members}

    @property
    def lobby(self) -> tuple[LobbyRequest, ...]:
        """Validated join requests waiting for a host's decision."""
        return tuple(self._lobby_request(e) for e in self._lobby.values() if not e.answered)

    @property
    def commit_in_flight(self) -> bool:
        """True while our own commit awaits the relay's ordering (keys are about to change)."""
        return self._inflight is not None

    @property
    def ordering_stalled(self) -> str | None:
        """Why our pending change is not being ordered (None while all is well)."""
        return self._stalled

    @property
    def pending_removals(self) -> tuple[int, ...]:
        """Leaves a removal was asked for (or that departed) and are still members."""
        return tuple(sorted((self._queue.kick | self._presence.departed) & set(self._members)))

    @property
    def encrypted(self) -> bool:
        """True only while in the meeting with the current epoch's media keys installed."""
        return (
            self._in_meeting()
            and self._group is not None
            and self._media.epoch == self._group.epoch
        )

    def export_secret(self, label: str, context: bytes, length: int) -> bytes:
        """MLS-Exporter of the current epoch (RFC 9420 section 8.5), for audits and tests."""
        return self._require_in_meeting("export a secret").export_secret(label, context, length)

    # ------------------------------------------------------------------ internals

    def _in_meeting(self) -> bool:
        return self._phase is Phase.in_meeting

    def _require_in_meeting(self, what: str) -> Group:
        if not self._in_meeting() or self._group is None:
            raise StateError(f"cannot {what}: not in the meeting (phase {self._phase})")
        return self._group

    def _require_host(self, what: str) -> Group:
        group = self._require_in_meeting(what)
        if not self.is_host:
            raise StateError(f"only a host can {what}")
        return group

    def _credential(self, group: Group) -> bytes:
        return group.export_secret(CREDENTIAL_LABEL, b"", 32)

    def _check_commit(self, info: PolicyInput) -> None:
        """The MLS policy hook: :class:`CommitRules` with this member's view of silence."""
        group = self._group
        now = self._clock()
        rules = CommitRules(
            group.group_id if group is not None else b"",
            lambda leaf: self._presence.silent_for(leaf, now),
            self._last_refresh_by,
        )
        rules(info)

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _error(self, code: ErrorCode, message: str) -> None:
        self._events.append(Error(code, message))

    def _alert(self, kind: AlertKind, message: str) -> None:
        self._events.append(SecurityAlert(kind, message))

    def _send(self, msg: Any) -> bool:
        try:
            self._out.append(wire.encode(msg))
        except wire.WireError as exc:
            self._error(ErrorCode.commit_failed, f"cannot send {type(msg).__name__}: {exc}")
            return False
        return True

    def _send_app(self, msg: AppMessage) -> None:
        """Encrypt and send an application message; nothing while the relay link is down
        (a chat is kept and sent once back, see :meth:`send_chat`)."""
        group = self._require_in_meeting("send")
        if not self._link_up:
            return
        self._send(wire.AppMessage(data=group.send(encode_app_message(msg))))
        self._last_sent_app = self._clock()

    def _hello(self) -> Hello | None:
        """Our Hello; ``missing`` names members away from our view and those whose
        connection we never learned (each answers with its own Hello)."""
        conn = self._presence.conn
        group = self._group
        if conn is None or group is None:
            return None
        presence = self._presence
        ask = set(presence.away) | presence.unknown(self._members, group.own_leaf_index)
        return Hello(conn, self._name, tuple(sorted(ask))[:MAX_MISSING], self._own_media)

    def _directory(self) -> Directory:
        """The bindings and switches we know, for the newcomers we just admitted."""
        me, members = self.own_leaf, self._members
        conns = {x: c for x, c in self._presence.conn_of_leaf.items() if x in members}
        media = dict(self.media_states)
        if me is not None and self._presence.conn is not None:
            conns[me] = self._presence.conn
        if me is not None and self._own_media is not None:
            media[me] = self._own_media
        return make_directory(conns, media)

    def _end(self, event: Event) -> None:
        self._phase = Phase.ended
        self._emit(event)
        self._group = None
        self._request = None
        self._previous_until = None
        self._inflight = None
        self._buffer.clear()
        self._members = {}
        self._mls_members = {}
        self._timers.clear()
        self._media.forget()

    def _name_of(self, leaf: int | None) -> str:
        entry = self._members.get(leaf) if leaf is not None else None
        return entry.name if entry else f"leaf {leaf}"

    # ------------------------------------------------------------------ epochs

    def _enter_epoch(self, summary: CommitSummary | None) -> None:
        """Install a new epoch: media keys, roster, events, Hello (RFC 9605 section 5.2)."""
        group = self._group
        assert group is not None
        old = self._members
        epoch = group.epoch
        self._media.set_epoch(group, self._signer.signature_private_key)
        policy = meeting_policy(group.extensions)
        self._mls_members = {m.leaf_index: m for m in group.roster()}
        members = build_roster(
            self._mls_members.values(), policy, group.own_leaf_index, self._familiarity
        )
        self._members = members
        self._rosters[epoch] = members
        keep = 1 << self._config.epoch_bits
        for e in [e for e in self._rosters if e <= epoch - keep]:
            del self._rosters[e]
        for e in [e for e in self._seen_app if e < epoch - 1]:
            del self._seen_app[e]
        if summary is not None:
            self._last_refresh_by = (
                summary.committer
                if not (summary.added or summary.removed or summary.extensions_changed)
                else None
            )
            if summary.committer is not None:
                self._presence.heard(summary.committer, self._clock())
            self._media.revoke(epoch - 1, {m.leaf_index for m in summary.removed})
            for m in summary.removed:
                self._presence.forget(m.leaf_index)
                self._added_at.pop(m.leaf_index, None)
                entry = old.get(m.leaf_index)
                self._emit(MemberLeft(m.leaf_index, entry.name if entry else "?"))
            for m in summary.added:
                self._added_at[m.leaf_index] = epoch
                self._adopt_added(m)
                new = members.get(m.leaf_index)
                if new is not None:
                    self._emit(MemberJoined(new.leaf, new.name, new.fingerprint))
        self._presence.keep_only(members)
        self._queue.kick &= set(members)
        code = security_code(group.group_id, self._mls_members.values())
        self._emit(EpochChanged(epoch, code, self.roster))
        if summary is not None and self._resuming:
            self._caught_up += 1
        self._confirmed = True
        self._announce_epoch(summary)
        self._schedule()

    def _announce_epoch(self, summary: CommitSummary | None) -> None:
        """Nothing when our connection did not change, the common case (docs/PROTOCOL.md,
        "Announcing connections"); a directory when our commit added members; just
        admitted, our Hello once the directory came (or ``DIRECTORY_WAIT`` passed)."""
        if summary is None and len(self._mls_members) > 1:  # admitted by a Welcome
            self._awaiting_directory = True
            self._timers.set(Timer.announce, self._clock() + DIRECTORY_WAIT)
        elif summary is not None and summary.added and summary.committer == self.own_leaf:
            self._send_app(self._directory())

    def _adopt_added(self, m: Member) -> None:
        """A newcomer we held a request for: map its connection, forget the request."""
        for rid, entry in list(self._lobby.items()):
            if entry.signature_key == m.signature_key:
                del self._lobby[rid]
                if rid in self._queue.admit:
                    self._queue.admit.remove(rid)
                self._presence.map(m.leaf_index, rid, self._clock() + self._config.resume_window)

    def _seniority(self, leaf: int) -> tuple[int, int]:
        return (self._added_at.get(leaf, -1), leaf)

    def _schedule(self) -> None:
        """(Re)arm the timers that depend on our role and the epoch."""
        now = self._clock()
        if self._in_meeting() and self._announces_alive():
            self._timers.set_if_unset(Timer.alive, now + ALIVE_INTERVAL)
        else:
            self._timers.cancel(Timer.alive)
        interval = self._config.refresh_interval
        if interval > 0 and self._in_meeting():
            jitter = 0.8 + 0.4 * int.from_bytes(self._rng(2), "big") / 0xFFFF
            self._timers.set_if_unset(Timer.refresh, now + interval * jitter)

    def _media_out(self) -> None:
        """Send the manifests the media plane signed; wake up when it next needs to."""
        for data in self._media.take_manifests():
            self._send(wire.Manifest(data=data))
        when = self._media.deadline()
        if when is None:
            self._timers.cancel(Timer.media)
        else:
            self._timers.set(Timer.media, when)

    def _timer_media(self) -> None:
        for event in self._media.expire():
            self._emit(event)
        self._media_out()

    def _announces_alive(self) -> bool:
        """Hosts and successors: the takeover rule asks how long they have been silent."""
        policy = self.policy
        return policy is not None and (
            policy.is_host(self._sig_pub) or self._sig_pub in policy.successor_keys
        )

    def _timer_alive(self) -> None:
        if self._in_meeting() and self._announces_alive():
            if self._link_up and self._clock() - self._last_sent_app >= ALIVE_INTERVAL * 0.9:
                self._send_app(Alive())
            self._timers.set(Timer.alive, self._clock() + ALIVE_INTERVAL)

    def _set_previous(self) -> None:
        """A commit was merged: the group keeps the epoch before it (RFC 9420 §14) for
        late application messages until the grace period ends."""
        if self._config.grace_period <= 0:
            self._previous_until = None
            return
        deadline = self._clock() + self._config.grace_period
        self._previous_until = deadline
        self._timers.set(Timer.previous, deadline)

    def _timer_previous(self) -> None:
        until = self._previous_until
        if until is not None and self._clock() >= until:
            self._previous_until = None
            if self._group is not None:
                self._group.forget_past_epochs()

    def _lobby_request(self, entry: LobbyEntry) -> LobbyRequest:
        return lobby_request(
            entry, self._mls_members.values(), self._lobby.values(), self._familiarity
        )

    def _refresh_subscription(self) -> None:
        """Send our subscription if what it names on the wire changed (a member's new
        connection, our own new connection, or a new choice)."""
        if self._wanted is None or not self._link_up or self._phase is Phase.ended:
            return
        msg = self._wanted.to_wire(self._presence.conn_of_leaf)
        if msg != self._sent_subscription and self._send(msg):
            self._sent_subscription = msg

    def _settle(self) -> None:
        """After any input: apply what became possible (defined by the input layer)."""
        raise NotImplementedError

    def _adopt_link(self, link: MeetingLink) -> None:
        self._link = link
        self._keys = room_keys(link.secret)
        self._emit(InvitationReplaced(link.url))


MLS_CIPHER_SUITE_ID = 1
