"""What :class:`~clave.meeting.meeting.Meeting` does with each relay message.

Dispatch goes through :data:`_RELAY_HANDLERS` (message type -> method) and
:data:`_APP_HANDLERS` (application message type -> method). Network input
never raises: everything wrong becomes an ``Error``, ``FrameRejected`` or
``SecurityAlert`` event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .. import wire
from ..mls.errors import MLSError, PolicyError
from ..mls.events import ApplicationMessage, CommitProcessed
from ..mls.group import Group
from ..mls.structs import ContentType
from ..wire.media import StreamKind
from .admission import join_group, make_request
from .app_messages import (
    Alive,
    AppMessage,
    Bye,
    Chat,
    Directory,
    Hello,
    Invite,
    MediaState,
    decode_app_message,
    media_of_bits,
    switches,
)
from .core import Phase, _Incoming, peek
from .errors import AppMessageError, IdentityError, JoinRequestError, LobbyError
from .events import (
    Admitted,
    AlertKind,
    ChatReceived,
    Connected,
    ErrorCode,
    FrameRejected,
    JoinDeclined,
    JoinRefused,
    KeyframeRequested,
    LayerCapped,
    LobbyWithdrawn,
    MeetingEnded,
    MemberAway,
    MemberBack,
    MemberMedia,
    OrderingResumed,
    Removed,
    Stranded,
)
from .join_request import open_join_request
from .lobby import OUTCOME_TEXT, Outcome, check_key_package, entry_for, open_reply
from .moderation import MODERATION_HANDLERS, MeetingModeration
from .policy import AuthorityError
from .timers import Timer


class MeetingInput(MeetingModeration):
    """Relay input of a :class:`~clave.meeting.meeting.Meeting` (see the module docstring)."""

    def _settle(self) -> None:
        """After any input: apply buffered messages that became current, then act."""
        self._drain_buffer()
        self._announce_lobby()
        self._maybe_commit()
        self._refresh_subscription()

    def _dispatch(self, msg: wire.RelayMessage) -> None:
        _RELAY_HANDLERS[type(msg)](self, msg)

    # ------------------------------------------------------------------ relay channel

    def _on_joined(self, msg: wire.Joined) -> None:
        if self._resuming:
            self._rejoined(msg)
            return
        if self._phase is not Phase.connecting:
            self._error(ErrorCode.protocol_violation, "a second Joined from the relay")
            return
        self._presence.joined(msg.conn, msg.peers)
        self._link_up = True
        self._emit(Connected(msg.conn))
        if self._group is not None:  # we created the meeting
            self._phase = Phase.in_meeting
            self._presence.start(self._clock())
            self._media.start()
            self._enter_epoch(None)
            return
        if not self._presence.peers and not self._came_back:
            self._send(wire.Leave())
            self._end(MeetingEnded("nobody is in the meeting to admit you"))
            return
        cfg = self._config
        self._request = make_request(
            credential=self._signer.credential,
            signature_private=self._signer.signature_private_key,
            name=self._name,
            conn=msg.conn,
            join_key=self._keys.join_key,
            rng=self._rng,
            now=self._now(),
            lifetime=cfg.key_package_lifetime,
            skew=cfg.clock_skew,
        )
        self._send(wire.JoinRequest(data=self._request.sealed))
        self._phase = Phase.lobby
        self._last_knock = self._clock()
        self._timers.set(Timer.knock, self._last_knock + self._knock_period())

    def _on_peer_joined(self, msg: wire.PeerJoined) -> None:
        self._presence.peer_joined(msg.conn)
        if self._phase is Phase.lobby and self._request is not None:
            self._knock_soon()  # a host coming back has not seen our request

    def _on_peer_left(self, msg: wire.PeerLeft) -> None:
        conn = msg.conn
        entry = self._lobby.pop(conn, None)
        if entry is not None:
            if conn in self._queue.admit:
                self._queue.admit.remove(conn)
            if entry.announced and self.is_host:
                self._emit(LobbyWithdrawn(conn))
        was_away = set(self._presence.away)
        leaf = self._presence.peer_left(conn, self._clock() + self._config.resume_window)
        if self._phase is Phase.lobby and not self._presence.peers and not self._came_back:
            self._send(wire.Leave())
            self._end(MeetingEnded("everyone left before you were admitted"))
            return
        if self._phase is Phase.lobby and self._request is not None:
            self._knock_soon()  # a host handing over as it leaves: the next may not know us
        if leaf is not None:
            if leaf in self._presence.away and leaf not in was_away:
                self._emit(MemberAway(leaf, self._name_of(leaf)))
            self._arm_presence()
            self._arm_takeover()

    def _on_relay_error(self, msg: wire.Error) -> None:
        if self._phase is Phase.connecting:
            self._end(JoinRefused(msg.code.name, msg.message))
            return
        if msg.code == wire.ErrorCode.rotated:
            # Dropped by a host's Rotate, or back with a replaced invitation (we were
            # away while it was replaced, perhaps removed): there is no way back in.
            self._end(
                MeetingEnded("the meeting's invitation was replaced; ask the host for the new one")
            )
            return
        if self._resuming:
            self._refused_back(msg)
            return
        if self._commit_refused(msg):
            return
        self._error(ErrorCode.relay_error, f"relay error {msg.code.name}: {msg.message}")

    def _on_manifest(self, msg: wire.ManifestFrom) -> None:
        if self._in_meeting():
            for event in self._media.receive_manifest(msg.data):
                self._emit(event)
            self._media_out()

    def _on_keyframe_wanted(self, msg: wire.KeyframeWanted) -> None:
        if self._in_meeting():
            by = self._presence.leaf_of_conn.get(msg.by)
            self._emit(KeyframeRequested(StreamKind(msg.kind), by, msg.layer))

    def _on_layer_cap(self, msg: wire.LayerCap) -> None:
        if self._in_meeting():
            self._emit(LayerCapped(msg.layer))

    def _on_rotated(self, msg: wire.Rotated) -> None:
        expected = self._pending_invite
        self._pending_invite = None
        if not self._in_meeting():
            return
        if expected is None or expected != f"{msg.by}":
            self._alert(
                AlertKind.unexpected_rotation,
                f"connection {msg.by} moved the meeting's relay room without an invitation "
                "from a host; new people may not be able to join with the invitation you have",
            )

    # ------------------------------------------------------------------ MLS messages

    def _on_commit_from(self, msg: wire.CommitFrom) -> None:
        self._on_mls(True, msg.sender, msg.data)

    def _on_app(self, msg: wire.AppFrom) -> None:
        self._on_mls(False, msg.sender, msg.data)

    def _on_mls(self, commit: bool, sender: int, data: bytes) -> None:
        """A commit or application message: buffered in the lobby, else processed."""
        lobby = self._phase is Phase.lobby
        item = _Incoming(commit, sender, data, from_lobby=lobby)
        if lobby:
            self._buffer_item(item)
        elif self._in_meeting():
            self._process(item)

    def _buffer_item(self, item: _Incoming) -> None:
        pm = peek(item.data)
        epoch = None if pm is None else pm.epoch
        dropped = self._buffer.add(epoch, item.sender, len(item.data), item)
        for sender in sorted(set(dropped)):
            self._error(
                ErrorCode.buffer_full,
                f"dropped messages for later epochs from connection {sender}: too many or too "
                f"large ({self._buffer.dropped} dropped so far)",
            )

    def _drain_buffer(self) -> None:
        while self._in_meeting() and self._group is not None:
            item = self._buffer.pop_ready(self._group.epoch)
            if item is None:
                return
            self._process(item)

    def _process(self, item: _Incoming) -> None:
        """One MLS PrivateMessage from the relay (RFC 9420 section 6.3)."""
        group = self._group
        assert group is not None
        code = ErrorCode.bad_handshake if item.commit else ErrorCode.bad_app_message
        pm = peek(item.data)
        want = ContentType.commit if item.commit else ContentType.application
        problem = None
        if pm is None:
            problem = "not an MLS PrivateMessage"
        elif pm.group_id != group.group_id:
            problem = "for another group"
        elif pm.content_type != want:
            problem = (
                f"{pm.content_type.name} content where {want.name} is expected "
                "(standalone proposals are not accepted)"
            )
        if problem is not None:
            if not item.from_lobby:
                self._error(code, f"from connection {item.sender}: {problem}")
                if item.commit:
                    self._reopen(group)
            return
        assert pm is not None
        if pm.epoch > group.epoch:
            self._buffer_item(item)
        elif pm.epoch < group.epoch:
            if not item.commit:
                self._process_late_app(item, pm.epoch)
            elif not item.from_lobby:
                self._error(
                    ErrorCode.stale_message,
                    f"commit for epoch {pm.epoch} from connection {item.sender} ignored: "
                    f"this member is at epoch {group.epoch}",
                )
        elif item.commit:
            self._process_commit(group, item)
        else:
            self._process_app(group, item, pm.epoch)

    def _reopen(self, group: Group) -> None:
        """The relay ordered a commit for our epoch that we refuse: reopen the epoch's slot."""
        self._send(wire.Reopen(cred=self._credential(group)))

    def _process_commit(self, group: Group, item: _Incoming) -> None:
        inflight = self._inflight
        if inflight is not None and item.data == inflight.commit and not inflight.superseded:
            # Our own commit, replayed from the relay's log after a reconnection: it
            # was ordered while its CommitAccepted was lost with the old connection.
            self._ordered_ours()
            return
        superseding = group.has_pending_commit
        if superseding:
            group.discard_pending_commit()
        cred = self._credential(group)
        try:
            event = group.process(item.data)
        except MLSError as exc:
            self._error(
                ErrorCode.rejected_commit, f"commit from connection {item.sender} rejected: {exc}"
            )
            if isinstance(exc, AuthorityError):
                who = self._name_of(self._presence.leaf_of_conn.get(item.sender))
                self._alert(AlertKind.refused_takeover, f"{who} tried to act as a host: {exc}")
            self._reopen(group)
            return
        if not isinstance(event, CommitProcessed):  # pragma: no cover - content type checked
            return
        if superseding and inflight is not None:
            # Another member's commit was ordered first for this epoch: ours is void.
            inflight.superseded = True
        summary = event.summary
        if summary.removed_self:
            who = self._name_of(summary.committer)
            self._send(wire.Leave())
            if self._resuming:
                self._end(
                    Stranded(
                        f"{who} removed you from the meeting while your connection was down "
                        "(away longer than the meeting waits, or removed by a host)"
                    )
                )
            else:
                self._end(Removed(f"removed from the meeting by {who}"))
            return
        nxt = hashlib.sha256(self._credential(group)).digest()
        self._last_commit = wire.Commit(cred=cred, next=nxt, data=item.data)
        self._set_previous()
        if self._stalled is not None and inflight is None:
            self._stalled = None
            self._emit(OrderingResumed())
        self._enter_epoch(summary)
        self._winner_arrived()

    def _process_late_app(self, item: _Incoming, epoch: int) -> None:
        until = self._previous_until
        group = self._group
        if (
            until is not None
            and group is not None
            and epoch in group.past_epochs
            and self._clock() < until
        ):
            self._process_app(group, item, epoch)
        elif not item.from_lobby:
            self._emit(
                FrameRejected(
                    f"application message for past epoch {epoch} (no longer kept)",
                    self._presence.leaf_of_conn.get(item.sender),
                )
            )

    def _process_app(self, group: Group, item: _Incoming, epoch: int) -> None:
        try:
            event = group.process(item.data)
        except MLSError as exc:
            self._error(ErrorCode.bad_app_message, f"from connection {item.sender}: {exc}")
            return
        if not isinstance(event, ApplicationMessage):  # pragma: no cover - content type checked
            return
        seen = self._seen_app.setdefault(epoch, set())
        if (event.sender, event.generation) in seen:
            self._emit(FrameRejected("replayed application message", event.sender))
            return
        seen.add((event.sender, event.generation))
        if event.epoch == group.epoch:
            self._confirmed = True  # a member of our epoch: we are not behind
        entry = self._rosters.get(epoch, {}).get(event.sender)
        if entry is None:  # pragma: no cover - MLS only decrypts messages of members
            return
        current = self._members.get(entry.leaf)
        if current is not None and current.fingerprint == entry.fingerprint:
            self._presence.heard(entry.leaf, self._clock())
        try:
            msg = decode_app_message(event.data)
        except AppMessageError as exc:
            self._error(ErrorCode.bad_app_message, f"from {entry.name} (leaf {entry.leaf}): {exc}")
            return
        still_member = current is not None and current.fingerprint == entry.fingerprint
        _APP_HANDLERS[type(msg)](self, msg, entry.leaf, entry.name, item.sender, still_member)

    def _app_chat(self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool) -> None:
        assert isinstance(msg, Chat)
        if msg.id:
            if (leaf, msg.id) in self._seen_chat:
                return  # resent after a reconnection: we have it already
            self._seen_chat.add((leaf, msg.id))
        self._emit(ChatReceived(leaf, name, msg.text))

    def _app_hello(self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool) -> None:
        assert isinstance(msg, Hello)
        if msg.conn != sender or msg.name != name:
            self._error(
                ErrorCode.bad_app_message,
                f"Hello from {name} (leaf {leaf}) claims connection {msg.conn} and name "
                f"{msg.name!r}, but came from connection {sender}",
            )
        elif member:
            if self._presence.map(leaf, msg.conn, self._clock() + self._config.resume_window):
                self._emit(MemberBack(leaf, name))
            self._arm_presence()
            if self.own_leaf in msg.missing:
                self._announce_soon()  # it does not know our connection
            self._hello_heard(leaf)
            if msg.media is not None:
                self._app_media(msg.media, leaf, name, sender, member)

    def _app_directory(
        self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool
    ) -> None:
        """A host's directory: read only while we wait for one, just admitted (members
        already know the bindings). Fills what no Hello taught us, then we say Hello."""
        assert isinstance(msg, Directory)
        if not self._awaiting_directory or not member:
            return
        entry = self._members.get(leaf)
        if entry is None or not entry.is_host:
            self._error(
                ErrorCode.bad_app_message, f"{name} (leaf {leaf}) is not a host: directory ignored"
            )
            return
        self._awaiting_directory = False
        presence = self._presence
        deadline = self._clock() + self._config.resume_window
        presence.map(leaf, sender, deadline)  # the sender's own, as its Hello would say
        me = self.own_leaf
        for other, conn in msg.conns:
            if other not in (leaf, me) and other in self._members:
                presence.learn(other, conn, deadline)
        for other, bits in msg.media:
            if other != me and other in self._members and other not in self._media_of:
                state = media_of_bits(bits)
                self._media_of[other] = state
                self._emit(MemberMedia(other, self._name_of(other), *switches(state)))
        self._arm_presence()
        self._timers.cancel(Timer.announce)
        hello = self._hello()
        if hello is not None:
            self._send_app(hello)

    def _app_media(self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool) -> None:
        """A member's own switches (in a ``media`` message or its Hello)."""
        assert isinstance(msg, MediaState)
        if member and self._media_of.get(leaf) != msg:
            self._media_of[leaf] = msg
            self._emit(MemberMedia(leaf, name, *switches(msg)))

    def _app_bye(self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool) -> None:
        if member:
            self._presence.bye(leaf)

    def _app_alive(self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool) -> None:
        """Hearing it is all it is for (see :meth:`Presence.heard`)."""

    def _app_invite(self, msg: AppMessage, leaf: int, name: str, sender: int, member: bool) -> None:
        assert isinstance(msg, Invite)
        entry = self._members.get(leaf)
        if not member or entry is None or not entry.is_host:
            self._error(
                ErrorCode.bad_app_message, f"{name} (leaf {leaf}) is not a host: invitation ignored"
            )
            return
        self._adopt_link(self._link.with_secret(msg.secret))
        self._pending_invite = f"{sender}"

    # ------------------------------------------------------------------ admission (hosts)

    def _on_join_request(self, msg: wire.JoinRequestFrom) -> None:
        group = self._group
        if not self._in_meeting() or group is None:
            return  # other joiners' requests: not ours to read
        if not self._announces_alive():
            return  # only hosts and successors keep the lobby (joiners knock again)
        rid = msg.sender
        if rid in self._denied or rid in self._lobby or rid in self._presence.leaf_of_conn:
            return
        try:
            body = open_join_request(self._keys.join_key, msg.data)
        except JoinRequestError as exc:
            self._error(ErrorCode.bad_join_request, f"from connection {rid}: {exc}")
            return
        if body.conn != rid:
            self._error(
                ErrorCode.bad_join_request,
                f"request sealed by connection {body.conn} was replayed from connection {rid}",
            )
            return
        try:
            kp, member = check_key_package(group, body.key_package, self._now())
        except (MLSError, IdentityError, ValueError) as exc:
            self._error(ErrorCode.bad_join_request, f"from connection {rid}: {exc}")
            return
        if member.name != body.name:
            self._error(
                ErrorCode.bad_join_request,
                f"from connection {rid}: name {body.name!r} differs from its credential's",
            )
            return
        entry = entry_for(rid, body.key_package, kp, member)
        if entry.key_package_ref in self._seen_key_packages:
            self._error(ErrorCode.bad_join_request, f"from connection {rid}: replayed KeyPackage")
            return
        self._seen_key_packages.add(entry.key_package_ref)
        if len(self._lobby) >= self._config.max_lobby:
            self._error(ErrorCode.lobby_full, f"the lobby is full: request {rid} was turned away")
            self._answer(entry, Outcome.full)
            return
        self._lobby[rid] = entry

    def _announce_lobby(self) -> None:
        """Hosts: show new requests; the primary host answers them while locked and
        queues them under auto-admit."""
        if not self._lobby or not self.is_host:
            return
        policy = self.policy
        assert policy is not None
        target = policy.replace(**self._queue.settings) if self._queue.settings else policy
        primary = self._is_primary()
        for entry in list(self._lobby.values()):
            if entry.answered:
                continue
            if target.locked:
                if primary:
                    self._answer(entry, Outcome.locked)
                continue
            if target.auto_admit and primary:
                entry.announced = True
                if entry.request_id not in self._queue.admit:
                    self._queue.admit.append(entry.request_id)
            elif not entry.announced:
                entry.announced = True
                self._emit(self._lobby_request(entry))

    # ------------------------------------------------------------------ admission (joiner)

    def _on_welcome(self, msg: wire.WelcomeFor) -> None:
        request = self._request
        if self._phase is not Phase.lobby or request is None:
            self._error(ErrorCode.protocol_violation, "a Welcome while not waiting for one")
            return
        try:
            group, _ = join_group(
                msg.data,
                request,
                self._link,
                rng=self._rng,
                now=self._now,
                policy=self._check_commit,
                config=self._group_config,
            )
        except PolicyError as exc:
            self._alert(AlertKind.counterfeit_welcome, f"from connection {msg.sender}: {exc}")
            return
        except MLSError as exc:
            self._error(ErrorCode.bad_welcome, f"from connection {msg.sender}: {exc}")
            return
        self._group = group
        self._request = None
        self._phase = Phase.in_meeting
        self._presence.start(self._clock())
        self._media.start()
        self._emit(Admitted(group.own_leaf_index, group.epoch))
        self._enter_epoch(None)

    def _on_reply(self, msg: wire.ReplyFrom) -> None:
        request = self._request
        if self._phase is not Phase.lobby or request is None:
            return
        try:
            outcome = open_reply(
                self._keys.join_key, msg.data, owner=self._link.owner, key_package_ref=request.ref
            )
        except LobbyError as exc:
            self._alert(AlertKind.forged_reply, f"from connection {msg.sender}: {exc}")
            return
        self._send(wire.Leave())
        self._end(JoinDeclined(outcome.value, OUTCOME_TEXT[outcome]))


_RELAY_HANDLERS: dict[type, Callable[[Any, Any], None]] = {
    wire.Joined: MeetingInput._on_joined,
    wire.PeerJoined: MeetingInput._on_peer_joined,
    wire.PeerLeft: MeetingInput._on_peer_left,
    wire.CommitFrom: MeetingInput._on_commit_from,
    wire.AppFrom: MeetingInput._on_app,
    wire.WelcomeFor: MeetingInput._on_welcome,
    wire.ReplyFrom: MeetingInput._on_reply,
    wire.JoinRequestFrom: MeetingInput._on_join_request,
    wire.ManifestFrom: MeetingInput._on_manifest,
    wire.KeyframeWanted: MeetingInput._on_keyframe_wanted,
    wire.LayerCap: MeetingInput._on_layer_cap,
    wire.Rotated: MeetingInput._on_rotated,
    wire.Error: MeetingInput._on_relay_error,
    wire.CommitAccepted: lambda m, msg: m._on_commit_accepted(msg),
}

_APP_HANDLERS: dict[type, Callable[[Any, AppMessage, int, str, int, bool], None]] = {
    Chat: MeetingInput._app_chat,
    Hello: MeetingInput._app_hello,
    MediaState: MeetingInput._app_media,
    Directory: MeetingInput._app_directory,
    Bye: MeetingInput._app_bye,
    Alive: MeetingInput._app_alive,
    Invite: MeetingInput._app_invite,
    **MODERATION_HANDLERS,
}
