"""One participant's meeting state machine (sans-I/O).

Bytes in, bytes and events out, in the aioquic style: feed every WebSocket
binary message from the relay to :meth:`Meeting.receive`, send what
:meth:`Meeting.frames_to_send` returns, and read :meth:`Meeting.next_event`
until it returns None. User actions (:meth:`admit`, :meth:`send_chat`,
:meth:`protect_media`, ...) queue frames and events the same way. Randomness
(``rng``), monotonic time (``clock``, for grace periods) and Unix time
(``now``, for MLS lifetimes) are injected.

The meeting is an MLS group (RFC 9420) whose group_id is the 16-byte room id;
media keys come from its exporter (RFC 9605 section 5.2). The relay orders
commits (RFC 9420 section 14): a ``Handshake`` with ``commit=True`` sent for
the relay's current epoch is accepted (``CommitAccepted`` to the sender,
``HandshakeFrom`` to everyone else) and any other is refused with
``Error(stale_epoch)``. Exactly one commit of ours is in flight at a time;
queued changes (admissions, removals, settings, key refresh) are committed
together when it resolves.

The wire ``epoch`` fields carry the relay's commit counter, which this
participant tracks from ``Joined``, ``HandshakeFrom`` and ``CommitAccepted``.
It equals the MLS epoch unless the relay ordered a commit that members
refused (a broken or malicious member's): the members then skip that commit
and stay in step with each other and with the relay. The MLS epoch of a
message is read from its PrivateMessage header.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .. import wire
from ..mls.ciphersuite import get_suite
from ..mls.errors import KeyPackageError, MLSError, PolicyError
from ..mls.events import ApplicationMessage, CommitProcessed, CommitSummary, PolicyInput
from ..mls.group import Group, GroupConfig, Signer
from ..mls.key_package import (
    KeyPackageBundle,
    create_key_package,
    key_package_ref,
    validate_key_package_for_group,
)
from ..mls.leaf_node import check_capabilities_support
from ..mls.structs import ContentType, KeyPackage, MLSMessage, PrivateMessage
from ..sframe.errors import SFrameError, UnknownKeyError
from ..sframe.header import decode_header
from ..sframe.mls import MLSKeyManager, index_bits
from ..sframe.suites import AES_128_GCM_SHA256_128
from ..wire.errors import WireError
from ..wire.media import StreamKind, decode_media, encode_media, media_aad
from .app_messages import (
    MAX_CHAT_CHARS,
    AppMessage,
    Bye,
    Chat,
    Hello,
    decode_app_message,
    encode_app_message,
)
from .errors import AppMessageError, IdentityError, JoinRequestError, StateError
from .events import (
    Admitted,
    ChatReceived,
    Connected,
    EpochChanged,
    Error,
    ErrorCode,
    Event,
    FrameRejected,
    JoinRefused,
    KeyframeRequested,
    LobbyRequest,
    LobbyWithdrawn,
    MediaFrameDecrypted,
    MeetingEnded,
    MemberJoined,
    MemberLeft,
    Removed,
    RosterEntry,
)
from .identity import (
    check_display_name,
    credential_name,
    credential_validator,
    fingerprint,
    make_credential,
)
from .join_request import JoinRequestBody, open_join_request, seal_join_request
from .keys import room_keys
from .link import MeetingLink
from .policy import (
    CAPABILITIES,
    MLS_CIPHER_SUITE,
    MeetingPolicy,
    check,
    host_of,
    initial_extensions,
    meeting_policy,
    remover_of,
    with_policy,
)
from .security_code import security_code

Rng = Callable[[int], bytes]
Clock = Callable[[], float]
UnixTime = Callable[[], int]


class Phase(StrEnum):
    connecting = "connecting"
    """``Create``/``Join`` sent, waiting for the relay's ``Joined``."""
    lobby = "lobby"
    """Join request sent, waiting for a Welcome."""
    in_meeting = "in_meeting"
    """A member of the MLS group."""
    ended = "ended"
    """Left, removed or refused; every further input is ignored."""


@dataclass(frozen=True, slots=True)
class MeetingConfig:
    """Local choices that do not affect interoperability."""

    epoch_bits: int = 4
    """``E`` of the SFrame KID (RFC 9605 section 5.2)."""
    grace_period: float = 2.0
    """Seconds for which the previous epoch's media and application messages still decrypt."""
    sframe_suite: int = AES_128_GCM_SHA256_128.id
    max_lobby: int = 64
    """Pending join requests kept at most."""
    max_buffered: int = 512
    """Messages kept for a later epoch (or until the Welcome) at most."""
    key_package_lifetime: int = 24 * 3600
    clock_skew: int = 3600
    """Our KeyPackage is valid from this many seconds before ``now()``."""


@dataclass(slots=True)
class _LobbyEntry:
    request_id: int
    name: str
    fingerprint: str
    key_package: bytes
    signature_key: bytes
    announced: bool = False


@dataclass(slots=True)
class _Inflight:
    """Our commit sent to the relay, until ``CommitAccepted`` or ``Error(stale_epoch)``."""

    relay_epoch: int
    adds: tuple[int, ...]
    removes: tuple[int, ...]
    policy: MeetingPolicy | None
    refresh: bool
    commit: bytes
    welcome: bytes | None
    snapshot: Group | None
    superseded: bool = False
    """Another commit won the epoch: ours is discarded, its refusal still to come."""


@dataclass(frozen=True, slots=True)
class _Incoming:
    """An MLS message from the relay (handshake or application), possibly buffered."""

    handshake: bool
    sender: int
    data: bytes
    from_lobby: bool = False


@dataclass(slots=True)
class _Previous:
    """The previous epoch's group state, kept to read late application messages."""

    group: Group
    deadline: float


def _refuse_everything(info: PolicyInput) -> None:
    raise PolicyError("a retained past epoch only decrypts application messages")


def _peek(data: bytes) -> PrivateMessage | None:
    try:
        body = MLSMessage.from_bytes(data).body
    except (MLSError, ValueError):
        return None
    return body if isinstance(body, PrivateMessage) else None


class Meeting:
    """One participant of a Clave meeting. Build with :meth:`create` or :meth:`join`."""

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
        auto_admit: bool = False,
    ) -> None:
        self._link = link
        self._name = check_display_name(name)
        self._rng = rng
        self._clock = clock
        self._now = now
        self._config = config
        self._room = link.room_id_bytes
        self._keys = room_keys(link)
        self._suite = get_suite(MLS_CIPHER_SUITE)
        sig_priv, sig_pub = self._suite.generate_signature_key_pair(rng)
        self._signer = Signer(make_credential(self._name, rng), sig_priv)
        self._fingerprint = fingerprint(sig_pub)
        self._group_config = GroupConfig(
            capabilities=CAPABILITIES, credential_validator=credential_validator
        )
        self._audit_media: MLSKeyManager | None = None
        self._media = MLSKeyManager(
            config.sframe_suite, config.epoch_bits, clock, config.grace_period
        )
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []
        self._phase = Phase.connecting
        self._conn: int | None = None
        self._peers: set[int] = set()
        self._relay_epoch = 0
        self._relay_epoch_hint = 0
        self._joined_at = 0.0
        self._group: Group | None = None
        self._bundle: KeyPackageBundle | None = None
        self._members: dict[int, RosterEntry] = {}
        self._rosters: dict[int, dict[int, RosterEntry]] = {}
        self._conn_of_leaf: dict[int, int] = {}
        self._leaf_of_conn: dict[int, int] = {}
        self._lobby: dict[int, _LobbyEntry] = {}
        self._denied: set[int] = set()
        self._seen_key_packages: set[bytes] = set()
        self._admit_queue: list[int] = []
        self._kick: set[int] = set()
        self._departed: set[int] = set()
        self._policy_change: MeetingPolicy | None = None
        self._refresh = False
        self._inflight: _Inflight | None = None
        self._buffer: list[tuple[int | None, _Incoming]] = []  # (MLS epoch, message)
        self._previous: _Previous | None = None
        self._seen_app: dict[int, set[tuple[int, int]]] = {}
        if create:
            self._group = Group.create(
                MLS_CIPHER_SUITE,
                self._room,
                self._signer,
                rng=rng,
                now=now,
                extensions=initial_extensions(MeetingPolicy(auto_admit=auto_admit)),
                policy=check,
                config=self._group_config,
            )
            self._send(wire.Create(room=link.room_id, token_hash=self._keys.token_hash))
        else:
            self._send(wire.Join(room=link.room_id, token=self._keys.access_token))

    @classmethod
    def create(
        cls,
        link: MeetingLink,
        name: str,
        *,
        rng: Rng,
        clock: Clock,
        now: UnixTime,
        config: MeetingConfig | None = None,
        auto_admit: bool = False,
    ) -> Meeting:
        """Start a new meeting as its host: creates the MLS group and queues ``Create``."""
        return cls(
            link,
            name,
            create=True,
            rng=rng,
            clock=clock,
            now=now,
            config=config or MeetingConfig(),
            auto_admit=auto_admit,
        )

    @classmethod
    def join(
        cls,
        link: MeetingLink,
        name: str,
        *,
        rng: Rng,
        clock: Clock,
        now: UnixTime,
        config: MeetingConfig | None = None,
    ) -> Meeting:
        """Join an existing meeting: queues ``Join``, then asks the members for admission."""
        config = config or MeetingConfig()
        return cls(link, name, create=False, rng=rng, clock=clock, now=now, config=config)

    # ------------------------------------------------------------------ I/O

    def receive(self, frame: bytes) -> None:
        """Handle one whole WebSocket binary message from the relay. Never raises."""
        if self._phase is Phase.ended:
            return
        try:
            self._receive(bytes(frame))
            self._settle()
        except Exception as exc:  # last line of defence: network input never raises
            self._error(ErrorCode.internal, f"{type(exc).__name__} while handling input: {exc}")

    def frames_to_send(self) -> list[bytes]:
        """Whole wire frames for the relay, in order (the list is handed over)."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # ------------------------------------------------------------------ state

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def link(self) -> MeetingLink:
        return self._link

    @property
    def name(self) -> str:
        return self._name

    @property
    def fingerprint(self) -> str:
        """Our own key fingerprint (8 groups of 4 hex digits)."""
        return self._fingerprint

    @property
    def conn(self) -> int | None:
        """Our relay connection id once connected."""
        return self._conn

    @property
    def own_leaf(self) -> int | None:
        return self._group.own_leaf_index if self._in_meeting() and self._group else None

    @property
    def epoch(self) -> int | None:
        """The current MLS epoch while in the meeting."""
        return self._group.epoch if self._in_meeting() and self._group else None

    @property
    def security_code(self) -> str | None:
        """The code to compare out of band (changes with every epoch)."""
        if not self._in_meeting() or self._group is None:
            return None
        return security_code(self._group.epoch_authenticator)

    @property
    def roster(self) -> tuple[RosterEntry, ...]:
        return tuple(self._members[leaf] for leaf in sorted(self._members))

    @property
    def host_leaf(self) -> int | None:
        return host_of(self._members)

    @property
    def is_host(self) -> bool:
        return self.own_leaf is not None and self.own_leaf == self.host_leaf

    @property
    def policy(self) -> MeetingPolicy:
        """The meeting settings of the current epoch."""
        if self._group is None or not self._in_meeting():
            return MeetingPolicy()
        return meeting_policy(self._group.extensions)

    @property
    def lobby(self) -> tuple[LobbyRequest, ...]:
        """Validated join requests waiting for the host's decision."""
        return tuple(
            LobbyRequest(e.request_id, e.name, e.fingerprint) for e in self._lobby.values()
        )

    def export_secret(self, label: str, context: bytes, length: int) -> bytes:
        """MLS-Exporter of the current epoch (RFC 9420 section 8.5), for audits and tests."""
        return self._require_in_meeting("export a secret").export_secret(label, context, length)

    @property
    def commit_in_flight(self) -> bool:
        """True while our own commit awaits the relay's ordering (keys are about to change)."""
        return self._inflight is not None

    @property
    def encrypted(self) -> bool:
        """True only while in the meeting with the current epoch's media keys installed."""
        return (
            self._in_meeting()
            and self._group is not None
            and self._media.epoch == self._group.epoch
        )

    # ------------------------------------------------------------------ user actions

    def admit(self, request_id: int) -> bool:
        """Host: admit a lobby request (commits an Add, then sends the Welcome).

        Returns False if the request is gone (its connection left meanwhile).
        """
        self._require_host("admit someone")
        if self.policy.locked or (self._policy_change is not None and self._policy_change.locked):
            raise StateError("the meeting is locked: unlock it before admitting anyone")
        if request_id not in self._lobby:
            return False
        if request_id not in self._admit_queue:
            self._admit_queue.append(request_id)
        self._settle()
        return True

    def deny(self, request_id: int) -> bool:
        """Drop a lobby request (the requester is not told). False if unknown or already
        being admitted."""
        self._require_in_meeting("deny a request")
        inflight = self._inflight
        if request_id not in self._lobby or (inflight and request_id in inflight.adds):
            return False
        del self._lobby[request_id]
        self._denied.add(request_id)
        if request_id in self._admit_queue:
            self._admit_queue.remove(request_id)
        return True

    def remove_member(self, leaf: int) -> None:
        """Host: remove a member (commits a Remove)."""
        self._require_host("remove a member")
        if leaf == self.own_leaf:
            raise StateError("the host cannot remove itself; use leave()")
        if leaf not in self._members:
            raise StateError(f"leaf {leaf} is not a member")
        self._kick.add(leaf)
        self._settle()

    def set_locked(self, locked: bool) -> None:
        """Host: lock (no one can be added) or unlock the meeting."""
        self._change_policy(locked=locked)

    def set_auto_admit(self, auto_admit: bool) -> None:
        """Host: admit valid join requests without asking."""
        self._change_policy(auto_admit=auto_admit)

    def refresh_keys(self) -> None:
        """Commit a fresh UpdatePath (post-compromise security, RFC 9420 section 12.4)."""
        self._require_in_meeting("refresh keys")
        self._refresh = True
        self._settle()

    def send_chat(self, text: str) -> None:
        """Send a chat message to the current members (an MLS application message)."""
        self._require_in_meeting("send a chat message")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_CHAT_CHARS:
            raise ValueError(f"a chat message must have 1 to {MAX_CHAT_CHARS} characters")
        self._send_app(Chat(text))

    def protect_media(self, kind: StreamKind, keyframe: bool, payload: bytes) -> bytes:
        """Encrypt one encoded media frame with SFrame and return the media wire frame.

        The SFrame metadata is ``media_aad(kind, keyframe)`` (RFC 9605 section
        4.4.3), so the relay can read but not alter the envelope's flags.
        Raises :class:`StateError` unless :attr:`encrypted`: there is no
        unencrypted fallback.
        """
        if not self.encrypted:
            raise StateError("not in the meeting with current keys: media cannot be sent")
        kind = StreamKind(kind)
        sframe = self._media.protect(media_aad(kind, keyframe), payload)
        return encode_media(kind, keyframe, sframe)

    def request_keyframe(self, leaf: int, kind: StreamKind = StreamKind.video) -> bool:
        """Ask a member for a keyframe; False if its relay connection is not known yet."""
        self._require_in_meeting("request a keyframe")
        conn = self._conn_of_leaf.get(leaf)
        if conn is None:
            return False
        return self._send(wire.KeyframeRequest(to=conn, kind=int(StreamKind(kind))))

    def subscribe(self, *, audio: bool = True, video: bool = True, screen: bool = True) -> None:
        """Tell the relay which media kinds to forward to us."""
        if self._phase is Phase.ended:
            raise StateError("the meeting has ended")
        self._send(wire.Subscribe(audio=audio, video=video, screen=screen))

    def depart_for_audit(self) -> None:
        """Audit mode: send Bye so the committer removes us, but keep the relay
        connection and this epoch's media keys afterwards, so :meth:`try_decrypt_media`
        can show that frames of later epochs do not decrypt with them
        (RFC 9420 section 8: a new epoch has a new exporter)."""
        self._require_in_meeting("depart")
        self._audit_media = self._media
        self._send_app(Bye())

    def try_decrypt_media(self, frame: bytes) -> bool:
        """After :meth:`depart_for_audit`: whether a media wire frame decrypts with the
        keys this participant held when it left. Emits no events."""
        keys = self._audit_media
        if keys is None:
            raise StateError("try_decrypt_media() is only for audits after depart_for_audit()")
        try:
            m = decode_media(frame)
            keys.unprotect(m.sframe, media_aad(m.kind, m.keyframe))
        except (WireError, SFrameError):
            return False
        return True

    def leave(self) -> None:
        """Say goodbye (Bye, so the committer removes us) and leave the relay room."""
        if self._phase is Phase.ended:
            return
        if self._in_meeting():
            self._send_app(Bye())
        self._send(wire.Leave())
        self._end(MeetingEnded("you left the meeting"))

    # ------------------------------------------------------------------ helpers

    def _in_meeting(self) -> bool:
        return self._phase is Phase.in_meeting

    def _require_in_meeting(self, what: str) -> Group:
        if not self._in_meeting() or self._group is None:
            raise StateError(f"cannot {what}: not in the meeting (phase {self._phase})")
        return self._group

    def _require_host(self, what: str) -> Group:
        group = self._require_in_meeting(what)
        if not self.is_host:
            raise StateError(f"only the host (leaf {self.host_leaf}) can {what}")
        return group

    def _change_policy(self, **changes: bool) -> None:
        self._require_host("change the meeting settings")
        base = self._policy_change or self.policy
        target = MeetingPolicy(
            locked=changes.get("locked", base.locked),
            auto_admit=changes.get("auto_admit", base.auto_admit),
        )
        self._policy_change = None if target == self.policy else target
        if target.locked:
            self._admit_queue.clear()
        self._settle()

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _error(self, code: ErrorCode, message: str) -> None:
        self._events.append(Error(code, message))

    def _send(self, msg: wire.ClientMessage) -> bool:
        try:
            self._out.append(wire.encode(msg))
        except WireError as exc:
            self._error(ErrorCode.commit_failed, f"cannot send {type(msg).__name__}: {exc}")
            return False
        return True

    def _send_app(self, msg: AppMessage) -> None:
        group = self._require_in_meeting("send")
        data = group.send(encode_app_message(msg))
        self._send(wire.AppMessage(epoch=self._relay_epoch, data=data))

    def _end(self, event: Event) -> None:
        self._phase = Phase.ended
        self._emit(event)
        self._group = None
        self._bundle = None
        self._previous = None
        self._inflight = None
        self._buffer.clear()
        self._members = {}
        # Forget the media keys too (a fresh manager holds none).
        self._media = MLSKeyManager(
            self._config.sframe_suite, self._config.epoch_bits, self._clock, 0.0
        )

    def _name_of(self, leaf: int | None, epoch: int | None = None) -> str:
        roster = self._members if epoch is None else self._rosters.get(epoch, {})
        entry = roster.get(leaf) if leaf is not None else None
        return entry.name if entry else f"leaf {leaf}"

    # ------------------------------------------------------------------ dispatch

    def _receive(self, frame: bytes) -> None:
        try:
            channel, body = wire.split_frame(frame)
        except WireError as exc:
            self._error(ErrorCode.bad_frame, str(exc))
            return
        if channel == wire.MEDIA:
            self._on_media(frame)
            return
        try:
            msg = wire.decode_relay(body)
        except WireError as exc:
            self._error(ErrorCode.bad_frame, str(exc))
            return
        if isinstance(msg, wire.Joined):
            self._on_joined(msg)
        elif isinstance(msg, wire.PeerJoined):
            if msg.conn != self._conn:
                self._peers.add(msg.conn)
        elif isinstance(msg, wire.PeerLeft):
            self._on_peer_left(msg.conn)
        elif isinstance(msg, wire.HandshakeFrom):
            self._on_handshake(msg)
        elif isinstance(msg, wire.CommitAccepted):
            self._on_commit_accepted(msg)
        elif isinstance(msg, wire.WelcomeFor):
            self._on_welcome(msg)
        elif isinstance(msg, wire.JoinRequestFrom):
            self._on_join_request(msg)
        elif isinstance(msg, wire.AppFrom):
            self._on_app(msg)
        elif isinstance(msg, wire.KeyframeWanted):
            if self._in_meeting():
                self._emit(KeyframeRequested(StreamKind(msg.kind), self._leaf_of_conn.get(msg.by)))
        else:
            self._on_relay_error(msg)

    def _settle(self) -> None:
        """After any input: apply buffered messages that became current, then act."""
        self._drain_buffer()
        self._announce_lobby()
        self._maybe_commit()

    # ------------------------------------------------------------------ relay channel

    def _on_joined(self, msg: wire.Joined) -> None:
        if self._phase is not Phase.connecting:
            self._error(ErrorCode.protocol_violation, "a second Joined from the relay")
            return
        self._conn = msg.conn
        self._peers = set(msg.peers) - {msg.conn}
        self._relay_epoch = self._relay_epoch_hint = msg.epoch
        self._emit(Connected(msg.conn))
        if self._group is not None:  # we created the meeting
            self._phase = Phase.in_meeting
            self._joined_at = self._clock()
            self._enter_epoch(None)
            return
        now = self._now()
        self._bundle = create_key_package(
            self._suite,
            self._signer.credential,
            rng=self._rng,
            now=now,
            signature_priv=self._signer.signature_private_key,
            lifetime=self._config.key_package_lifetime,
            not_before=max(0, now - self._config.clock_skew),
            capabilities=CAPABILITIES,
        )
        body = JoinRequestBody(
            key_package=MLSMessage(self._bundle.key_package).to_bytes(),
            name=self._name,
            conn=msg.conn,
        )
        sealed = seal_join_request(self._keys.join_key, self._room, body, self._rng)
        self._send(wire.JoinRequest(data=sealed))
        self._phase = Phase.lobby
        if not self._peers:
            self._send(wire.Leave())
            self._end(MeetingEnded("nobody is in the meeting to admit you"))

    def _on_peer_left(self, conn: int) -> None:
        self._peers.discard(conn)
        entry = self._lobby.pop(conn, None)
        if entry is not None:
            if conn in self._admit_queue:
                self._admit_queue.remove(conn)
            if entry.announced and self.is_host:
                self._emit(LobbyWithdrawn(conn))
        if self._phase is Phase.lobby and not self._peers:
            self._send(wire.Leave())
            self._end(MeetingEnded("everyone left before you were admitted"))
            return
        leaf = self._leaf_of_conn.get(conn)
        if self._in_meeting() and leaf is not None and leaf in self._members:
            self._departed.add(leaf)

    def _on_relay_error(self, msg: wire.Error) -> None:
        code = msg.code.name
        if self._phase is Phase.connecting:
            self._end(JoinRefused(code, msg.message))
            return
        if msg.code == wire.ErrorCode.stale_epoch:
            if msg.epoch is not None:
                self._relay_epoch_hint = max(self._relay_epoch_hint, msg.epoch)
            inflight = self._inflight
            if inflight is not None and (msg.epoch is None or msg.epoch > inflight.relay_epoch):
                # Our commit lost the race: drop it, catch up, then retry (RFC 9420 section 14).
                if not inflight.superseded and self._group is not None:
                    self._group.discard_pending_commit()
                self._inflight = None
                return
        self._error(ErrorCode.relay_error, f"relay error {code}: {msg.message}")

    # ------------------------------------------------------------------ admission

    def _check_key_package(self, group: Group, data: bytes) -> tuple[KeyPackage, str]:
        """Validate an encoded KeyPackage for this group (RFC 9420 section 10.1)."""
        msg = MLSMessage.from_bytes(data)
        kp = msg.body
        if not isinstance(kp, KeyPackage):
            raise KeyPackageError(f"expected a KeyPackage, got a {msg.wire_format.name}")
        validate_key_package_for_group(kp, group.group_context, now=self._now())
        check_capabilities_support(kp.leaf_node.capabilities, group.extensions)
        if not credential_validator(kp.leaf_node, None):
            raise KeyPackageError("the KeyPackage's credential is not a Clave identity")
        sig = kp.leaf_node.signature_key
        if any(m.signature_key == sig for m in group.roster()):
            raise KeyPackageError("the KeyPackage's signature key belongs to a member")
        return kp, credential_name(kp.leaf_node.credential)

    def _on_join_request(self, msg: wire.JoinRequestFrom) -> None:
        group = self._group
        if not self._in_meeting() or group is None:
            return  # other joiners' requests: not ours to read
        rid = msg.sender
        if rid in self._denied or rid in self._lobby or rid in self._leaf_of_conn:
            return
        if len(self._lobby) >= self._config.max_lobby:
            self._error(ErrorCode.bad_join_request, f"lobby full: request {rid} ignored")
            return
        try:
            body = open_join_request(self._keys.join_key, self._room, msg.data)
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
            kp, name = self._check_key_package(group, body.key_package)
        except (MLSError, IdentityError, ValueError) as exc:
            self._error(ErrorCode.bad_join_request, f"from connection {rid}: {exc}")
            return
        if name != body.name:
            self._error(
                ErrorCode.bad_join_request,
                f"from connection {rid}: name {body.name!r} differs from its credential's",
            )
            return
        ref = key_package_ref(kp)
        if ref in self._seen_key_packages:
            self._error(ErrorCode.bad_join_request, f"from connection {rid}: replayed KeyPackage")
            return
        self._seen_key_packages.add(ref)
        sig = kp.leaf_node.signature_key
        self._lobby[rid] = _LobbyEntry(rid, name, fingerprint(sig), body.key_package, sig)

    def _announce_lobby(self) -> None:
        """Host: show new lobby requests, or queue them when auto-admit is on."""
        if not self._lobby or not self.is_host:
            return
        policy = self._policy_change or self.policy
        for entry in self._lobby.values():
            if entry.announced:
                continue
            entry.announced = True
            if policy.auto_admit and not policy.locked:
                self._admit_queue.append(entry.request_id)
            else:
                self._emit(LobbyRequest(entry.request_id, entry.name, entry.fingerprint))

    def _on_welcome(self, msg: wire.WelcomeFor) -> None:
        if self._phase is not Phase.lobby or self._bundle is None:
            self._error(ErrorCode.protocol_violation, "a Welcome while not waiting for one")
            return
        try:
            group = Group.join(
                msg.data,
                self._bundle,
                rng=self._rng,
                now=self._now,
                policy=check,
                config=self._group_config,
            )
            if group.group_id != self._room:
                raise PolicyError("the Welcome is for another group than this meeting")
            meeting_policy(group.extensions)
        except MLSError as exc:
            self._error(ErrorCode.bad_welcome, f"from connection {msg.sender}: {exc}")
            return
        self._group = group
        self._bundle = None
        self._phase = Phase.in_meeting
        self._joined_at = self._clock()
        self._emit(Admitted(group.own_leaf_index, group.epoch))
        self._enter_epoch(None)

    # ------------------------------------------------------------------ commits

    def _maybe_commit(self) -> None:
        """Commit queued changes if we may and nothing of ours is in flight."""
        group = self._group
        if not self._in_meeting() or group is None or self._inflight is not None:
            return
        if self._relay_epoch < self._relay_epoch_hint:
            return  # the relay is ahead: process the commits still on their way first
        me = group.own_leaf_index
        members = set(self._members)
        departed = (self._departed & members) - {me}
        adds: list[_LobbyEntry] = []
        removes: set[int] = set()
        change: MeetingPolicy | None = None
        refresh = self._refresh
        if me == host_of(members):
            removes = departed | ((self._kick & members) - {me})
            change = self._policy_change
            effective = change or self.policy
            if not effective.locked:
                for rid in list(self._admit_queue):
                    entry = self._lobby.get(rid)
                    if entry is None or rid not in self._peers:
                        self._admit_queue.remove(rid)
                        continue
                    try:
                        self._check_key_package(group, entry.key_package)
                    except (MLSError, IdentityError, ValueError) as exc:
                        self._error(ErrorCode.commit_failed, f"cannot admit {entry.name}: {exc}")
                        self._admit_queue.remove(rid)
                        del self._lobby[rid]
                        continue
                    adds.append(entry)
        elif departed and remover_of(members, departed) == me:
            removes = departed  # handover: the host is gone and we are next in line
        elif not refresh:
            return
        if not (adds or removes or change or refresh):
            return
        snapshot = self._snapshot(group)
        try:
            out = group.commit(
                add=[e.key_package for e in adds],
                remove=sorted(removes),
                extensions=None if change is None else with_policy(group.extensions, change),
            )
        except MLSError as exc:
            self._error(ErrorCode.commit_failed, f"cannot commit the queued changes: {exc}")
            self._drop_queued(adds, removes)
            return
        self._inflight = _Inflight(
            self._relay_epoch,
            tuple(e.request_id for e in adds),
            tuple(sorted(removes)),
            change,
            refresh,
            out.commit,
            out.welcome,
            snapshot,
        )
        if not self._send(wire.Handshake(epoch=self._relay_epoch, commit=True, data=out.commit)):
            group.discard_pending_commit()
            self._inflight = None
            self._drop_queued(adds, removes)

    def _drop_queued(self, adds: list[_LobbyEntry], removes: set[int]) -> None:
        """Forget changes that cannot be committed, so they are not retried forever."""
        for e in adds:
            self._lobby.pop(e.request_id, None)
            if e.request_id in self._admit_queue:
                self._admit_queue.remove(e.request_id)
        self._kick -= removes
        self._departed -= removes
        self._policy_change = None
        self._refresh = False

    def _on_commit_accepted(self, msg: wire.CommitAccepted) -> None:
        inflight = self._inflight
        group = self._group
        if inflight is None or group is None or inflight.superseded:
            self._inflight = None
            self._error(ErrorCode.protocol_violation, "CommitAccepted without a commit in flight")
            return
        self._relay_epoch = max(self._relay_epoch, msg.epoch)
        summary = group.merge_pending_commit()
        self._inflight = None
        if inflight.policy is not None and self._policy_change == inflight.policy:
            self._policy_change = None
        if inflight.refresh:
            self._refresh = False
        if inflight.welcome is not None:
            for rid in inflight.adds:
                if rid in self._peers:
                    self._send(wire.WelcomeTo(to=rid, data=inflight.welcome))
        self._set_previous(inflight.snapshot)
        self._enter_epoch(summary)

    def _on_handshake(self, msg: wire.HandshakeFrom) -> None:
        if msg.commit:
            self._relay_epoch = max(self._relay_epoch, msg.epoch + 1)
        if self._phase is Phase.lobby:
            self._buffer_item(_Incoming(True, msg.sender, msg.data, from_lobby=True))
        elif self._in_meeting():
            self._process(_Incoming(True, msg.sender, msg.data))

    def _on_app(self, msg: wire.AppFrom) -> None:
        if self._phase is Phase.lobby:
            self._buffer_item(_Incoming(False, msg.sender, msg.data, from_lobby=True))
        elif self._in_meeting():
            self._process(_Incoming(False, msg.sender, msg.data))

    def _buffer_item(self, item: _Incoming) -> None:
        pm = _peek(item.data)
        self._buffer.append((None if pm is None else pm.epoch, item))
        if len(self._buffer) > self._config.max_buffered:
            del self._buffer[0]
            if self._in_meeting():
                self._error(ErrorCode.buffer_full, "too many messages for future epochs")

    def _drain_buffer(self) -> None:
        while self._in_meeting() and self._group is not None and self._buffer:
            current = self._group.epoch
            for i, (epoch, item) in enumerate(self._buffer):
                if epoch is None or epoch <= current:
                    del self._buffer[i]
                    self._process(item)
                    break
            else:
                return

    def _process(self, item: _Incoming) -> None:
        """One MLS PrivateMessage from the relay (RFC 9420 section 6.3)."""
        group = self._group
        assert group is not None
        code = ErrorCode.bad_handshake if item.handshake else ErrorCode.bad_app_message
        pm = _peek(item.data)
        if pm is None:
            if not item.from_lobby:
                self._error(code, f"from connection {item.sender}: not an MLS PrivateMessage")
            return
        if pm.group_id != group.group_id:
            if not item.from_lobby:
                self._error(code, f"from connection {item.sender}: for another group")
            return
        want = ContentType.commit if item.handshake else ContentType.application
        if pm.content_type != want:
            self._error(
                code,
                f"from connection {item.sender}: {pm.content_type.name} content where "
                f"{want.name} is expected (standalone proposals are not accepted)",
            )
            return
        if pm.epoch > group.epoch:
            self._buffer_item(item)
        elif pm.epoch < group.epoch:
            if not item.handshake:
                self._process_late_app(item, pm.epoch)
            elif not item.from_lobby:
                self._error(
                    ErrorCode.stale_message,
                    f"commit for epoch {pm.epoch} from connection {item.sender} ignored: "
                    f"this member is at epoch {group.epoch}",
                )
        elif item.handshake:
            self._process_commit(group, item)
        else:
            self._process_app(group, item, pm.epoch)

    def _process_commit(self, group: Group, item: _Incoming) -> None:
        inflight = self._inflight
        if inflight is not None and item.data == inflight.commit:
            self._error(ErrorCode.protocol_violation, "the relay echoed our own commit back")
            return
        if group.has_pending_commit:
            # Another member's commit was ordered first for this epoch: ours is void.
            group.discard_pending_commit()
            if inflight is not None:
                inflight.superseded = True
                inflight.snapshot = None
        snapshot = self._snapshot(group)
        try:
            event = group.process(item.data)
        except MLSError as exc:
            self._error(
                ErrorCode.rejected_commit,
                f"commit from connection {item.sender} rejected: {exc}",
            )
            return
        if not isinstance(event, CommitProcessed):  # pragma: no cover - content type checked
            return
        summary = event.summary
        if summary.removed_self:
            who = self._name_of(summary.committer)
            if self._audit_media is None:
                self._send(wire.Leave())
            self._end(Removed(f"removed from the meeting by {who}"))
            return
        self._set_previous(snapshot)
        self._enter_epoch(summary)

    def _snapshot(self, group: Group) -> Group | None:
        """A copy of this epoch's group to read its late application messages."""
        if self._config.grace_period <= 0 or group.has_pending_commit:
            return None
        try:
            return Group.from_bytes(
                group.to_bytes(),
                rng=self._rng,
                now=self._now,
                policy=_refuse_everything,
                config=self._group_config,
            )
        except MLSError:  # pragma: no cover - our own state always round-trips
            return None

    def _set_previous(self, snapshot: Group | None) -> None:
        self._previous = (
            None
            if snapshot is None
            else _Previous(snapshot, self._clock() + self._config.grace_period)
        )

    def _enter_epoch(self, summary: CommitSummary | None) -> None:
        """Install a new epoch: media keys, roster, events, Hello (RFC 9605 section 5.2)."""
        group = self._group
        assert group is not None
        old = self._members
        epoch = group.epoch
        self._media.set_epoch(epoch, group.export_secret, group.own_leaf_index, group.leaf_count)
        members = self._build_roster(group)
        self._members = members
        self._rosters[epoch] = members
        keep = 1 << self._config.epoch_bits
        for e in [e for e in self._rosters if e <= epoch - keep]:
            del self._rosters[e]
        for e in [e for e in self._seen_app if e < epoch - 1]:
            del self._seen_app[e]
        if summary is not None:
            for m in summary.removed:
                conn = self._conn_of_leaf.pop(m.leaf_index, None)
                if conn is not None:
                    self._leaf_of_conn.pop(conn, None)
                entry = old.get(m.leaf_index)
                self._emit(MemberLeft(m.leaf_index, entry.name if entry else "?"))
            for m in summary.added:
                for rid, lobby_entry in list(self._lobby.items()):
                    if lobby_entry.signature_key == m.signature_key:
                        del self._lobby[rid]
                        if rid in self._admit_queue:
                            self._admit_queue.remove(rid)
                        self._map(m.leaf_index, rid)
                new = members.get(m.leaf_index)
                if new is not None:
                    self._emit(MemberJoined(new.leaf, new.name, new.fingerprint))
        self._departed &= set(members)
        self._kick &= set(members)
        self._emit(EpochChanged(epoch, security_code(group.epoch_authenticator), self.roster))
        if self._conn is not None:
            self._send_app(Hello(self._conn, self._name))

    def _build_roster(self, group: Group) -> dict[int, RosterEntry]:
        roster = group.roster()
        host = host_of(m.leaf_index for m in roster)
        me = group.own_leaf_index
        out: dict[int, RosterEntry] = {}
        for m in roster:
            try:
                name = credential_name(m.credential)
            except IdentityError:  # pragma: no cover - the credential validator refuses these
                name = "?"
            out[m.leaf_index] = RosterEntry(
                m.leaf_index,
                name,
                fingerprint(m.signature_key),
                m.leaf_index == host,
                m.leaf_index == me,
            )
        return out

    def _map(self, leaf: int, conn: int) -> None:
        """Record that ``leaf`` speaks through relay connection ``conn``."""
        old_conn = self._conn_of_leaf.pop(leaf, None)
        if old_conn is not None:
            self._leaf_of_conn.pop(old_conn, None)
        old_leaf = self._leaf_of_conn.pop(conn, None)
        if old_leaf is not None:
            self._conn_of_leaf.pop(old_leaf, None)
        self._conn_of_leaf[leaf] = conn
        self._leaf_of_conn[conn] = leaf
        if conn not in self._peers:
            self._departed.add(leaf)  # it already left the relay

    # ------------------------------------------------------------------ application messages

    def _process_late_app(self, item: _Incoming, epoch: int) -> None:
        prev = self._previous
        if prev is not None and prev.group.epoch == epoch and self._clock() < prev.deadline:
            self._process_app(prev.group, item, epoch)
        elif not item.from_lobby:
            self._emit(
                FrameRejected(
                    f"application message for past epoch {epoch} (no longer kept)",
                    self._leaf_of_conn.get(item.sender),
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
        entry = self._rosters.get(epoch, {}).get(event.sender)
        if entry is None:  # pragma: no cover - MLS only decrypts messages of members
            return
        try:
            msg = decode_app_message(event.data)
        except AppMessageError as exc:
            self._error(ErrorCode.bad_app_message, f"from {entry.name} (leaf {entry.leaf}): {exc}")
            return
        current = self._members.get(entry.leaf)
        still_member = current is not None and current.fingerprint == entry.fingerprint
        if isinstance(msg, Chat):
            self._emit(ChatReceived(entry.leaf, entry.name, msg.text))
        elif isinstance(msg, Hello):
            if msg.conn != item.sender or msg.name != entry.name:
                self._error(
                    ErrorCode.bad_app_message,
                    f"Hello from {entry.name} (leaf {entry.leaf}) claims connection "
                    f"{msg.conn} and name {msg.name!r}, but came from connection {item.sender}",
                )
            elif still_member:
                self._map(entry.leaf, msg.conn)
        elif isinstance(msg, Bye) and still_member:
            self._departed.add(entry.leaf)

    # ------------------------------------------------------------------ media

    def _on_media(self, frame: bytes) -> None:
        if not self._in_meeting() or self._group is None:
            return  # not a member yet: nothing we could decrypt
        try:
            media = decode_media(frame)
        except WireError as exc:
            self._emit(FrameRejected(f"malformed media frame: {exc}", None))
            return
        try:
            result = self._media.unprotect(media.sframe, media_aad(media.kind, media.keyframe))
        except SFrameError as exc:
            if isinstance(exc, UnknownKeyError) and self._from_before_joining(media.sframe):
                return
            self._emit(FrameRejected(f"media frame rejected: {exc}", self._kid_leaf(media.sframe)))
            return
        entry = self._rosters.get(result.epoch, {}).get(result.leaf_index)
        if entry is None:
            self._emit(
                FrameRejected(
                    f"media frame from leaf {result.leaf_index}, not a member in epoch "
                    f"{result.epoch}",
                    None,
                )
            )
            return
        self._emit(
            MediaFrameDecrypted(
                entry.leaf, entry.name, media.kind, media.keyframe, result.plaintext
            )
        )

    def _kid(self, sframe: bytes) -> int | None:
        try:
            return decode_header(sframe)[0]
        except SFrameError:
            return None

    def _kid_leaf(self, sframe: bytes) -> int | None:
        """The sender leaf a KID names, if it is of the current epoch and a member."""
        kid = self._kid(sframe)
        group = self._group
        if kid is None or group is None:
            return None
        ebits = self._config.epoch_bits
        if kid & ((1 << ebits) - 1) != group.epoch % (1 << ebits):
            return None
        leaf = (kid >> ebits) & ((1 << index_bits(group.leaf_count)) - 1)
        return leaf if leaf in self._members else None

    def _from_before_joining(self, sframe: bytes) -> bool:
        """A frame of an epoch we never had, shortly after joining: expected, not an attack."""
        if self._clock() - self._joined_at >= self._config.grace_period:
            return False
        kid = self._kid(sframe)
        if kid is None:
            return False
        mask = (1 << self._config.epoch_bits) - 1
        return (kid & mask) not in {e & mask for e in self._media.live_epochs()}
