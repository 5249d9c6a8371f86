"""What a :class:`~clave.meeting.Meeting` reports: small frozen dataclasses.

Named for what happened, in the aioquic style; read them with
:meth:`Meeting.next_event`. Leaves are MLS leaf indices (RFC 9420 section 7),
stable for a member from admission to removal; names and fingerprints come
from the member's MLS credential, never from unauthenticated relay data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..wire.media import StreamKind


class ErrorCode(StrEnum):
    """Codes of :class:`Error` events."""

    bad_frame = "bad_frame"
    """A relay frame could not be decoded (clave.wire)."""
    bad_join_request = "bad_join_request"
    """A join request did not open under the join key or carried an invalid KeyPackage."""
    bad_welcome = "bad_welcome"
    """A Welcome could not be processed or is for another group."""
    bad_handshake = "bad_handshake"
    """An MLS handshake message is malformed, for another group or of the wrong type."""
    rejected_commit = "rejected_commit"
    """A commit the relay ordered failed MLS validation or the meeting policy."""
    bad_reply = "bad_reply"
    """A lobby reply could not be opened or verified."""
    stale_message = "stale_message"
    """A handshake for an epoch this member has already left."""
    bad_app_message = "bad_app_message"
    """An MLS application message failed to decrypt or to decode."""
    relay_error = "relay_error"
    """The relay reported an error (its code and message are in the text)."""
    protocol_violation = "protocol_violation"
    """A relay message that makes no sense in the current state."""
    commit_failed = "commit_failed"
    """A queued change could not be committed (for example an expired KeyPackage)."""
    buffer_full = "buffer_full"
    """Too many (or too large) messages for future epochs; the oldest were dropped."""
    lobby_full = "lobby_full"
    """The lobby holds ``max_lobby`` requests: a new one was answered "full"."""
    internal = "internal"
    """A bug: an unexpected exception while handling input (reported, not raised)."""
    not_host = "not_host"
    """A host-only request (mute, ask to unmute, lower a hand) from a member that is not
    a host: refused and ignored."""
    flooding = "flooding"
    """A member sent reactions faster than the rate limit: the excess was dropped."""


class Role(StrEnum):
    """A member's role in the meeting policy (by key, never by position)."""

    owner = "owner"
    """The meeting's owner, while it holds the host role."""
    host = "host"
    successor = "successor"
    """Takes over, in order, if every host falls silent."""
    member = "member"


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One member of the current epoch.

    ``fingerprint`` is that of the member's long-term identity key (stable
    across meetings); ``familiarity`` says whether this engine met that key
    before ("known since …", "new", "⚠ a different key than the … you met
    before"); ``confusable_with`` names another present member whose name looks
    the same.
    """

    leaf: int
    name: str
    fingerprint: str
    is_host: bool
    is_self: bool
    role: Role = Role.member
    familiarity: str = "new"
    verified: bool = False
    confusable_with: str | None = None


@dataclass(frozen=True, slots=True)
class Connected:
    """The relay admitted this connection to the room (not yet to the meeting)."""

    conn: int


@dataclass(frozen=True, slots=True)
class LobbyRequest:
    """Someone holding the link asks to join; :meth:`Meeting.admit` or :meth:`Meeting.deny`.

    Reported to the host only, after the KeyPackage passed validation.
    """

    request_id: int
    display_name: str
    fingerprint: str
    familiarity: str = "new"
    confusable_with: str | None = None


@dataclass(frozen=True, slots=True)
class LobbyWithdrawn:
    """A pending join request is gone: its connection left the relay."""

    request_id: int


@dataclass(frozen=True, slots=True)
class Admitted:
    """This participant joined the meeting from a Welcome (RFC 9420 section 12.4.3.1)."""

    leaf: int
    epoch: int


@dataclass(frozen=True, slots=True)
class MemberJoined:
    leaf: int
    name: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class MemberLeft:
    leaf: int
    name: str


@dataclass(frozen=True, slots=True)
class EpochChanged:
    """A new MLS epoch: new media keys; the security code changes only with membership."""

    epoch: int
    security_code: str
    roster: tuple[RosterEntry, ...]


@dataclass(frozen=True, slots=True)
class ChatReceived:
    sender: int
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class MediaFrameDecrypted:
    """A media frame authenticated and decrypted (RFC 9605 section 4.4.4).

    ``sender`` comes from the SFrame KID (RFC 9605 section 5.2). Every member
    knows the epoch's base key, so this proves group membership, not which
    member sent the frame (RFC 9605 section 7.2).
    """

    sender: int
    name: str
    kind: StreamKind
    keyframe: bool
    payload: bytes
    layer: int = 0
    """The simulcast layer (0 lowest); always 0 for audio."""


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A media frame or application message was discarded (never shown)."""

    reason: str
    sender: int | None


@dataclass(frozen=True, slots=True)
class KeyframeRequested:
    """A receiver (or the relay, switching its layer) asks us for a keyframe of ``kind``
    and simulcast ``layer`` (None: of every layer); ``by`` is its leaf if known."""

    kind: StreamKind
    by: int | None
    layer: int | None = None


@dataclass(frozen=True, slots=True)
class LayerCapped:
    """Our queue at the relay grew (congestion): until a later ``LayerCapped`` the relay
    forwards no video layer above ``layer``. Subscribe to no more than that."""

    layer: int


@dataclass(frozen=True, slots=True)
class JoinRefused:
    """The relay refused to create or join the room (bad link, unknown room, full)."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Removed:
    """A commit removed this participant from the group; the meeting is over for it."""

    reason: str


@dataclass(frozen=True, slots=True)
class MeetingEnded:
    """This participant left, or nobody is left who could admit it."""

    reason: str


@dataclass(frozen=True, slots=True)
class JoinDeclined:
    """A host answered our join request: declined, locked or full (authenticated as a
    certified host's, see :mod:`clave.meeting.lobby`). The meeting is over for us."""

    outcome: str
    reason: str


class AlertKind(StrEnum):
    counterfeit_welcome = "counterfeit_welcome"
    """A Welcome to a group not owned by the invitation's owner, or not from a host."""
    forged_reply = "forged_reply"
    """A lobby reply that is not a certified host's."""
    unexpected_rotation = "unexpected_rotation"
    """The relay room moved to a new token without a host's invitation."""
    refused_takeover = "refused_takeover"
    """A member tried to use a role it does not have (seize the meeting, admit, remove)."""


@dataclass(frozen=True, slots=True)
class SecurityAlert:
    """Something that only an attack explains was refused; the user should know."""

    kind: AlertKind
    message: str


@dataclass(frozen=True, slots=True)
class OrderingStalled:
    """Our change has not been ordered by the relay for a while (or the relay refused
    it): it is still pending, and keys do not change until it is."""

    reason: str


@dataclass(frozen=True, slots=True)
class OrderingResumed:
    """The relay ordered our pending change after a stall."""


@dataclass(frozen=True, slots=True)
class InvitationReplaced:
    """A host replaced the invitation; ``url`` is the new one (the old stops working)."""

    url: str


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """Our relay connection dropped (or the relay would not let us back in). We stay a
    member: nothing is sent until :meth:`Meeting.reconnect` on a new connection."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reconnected:
    """Back in the relay room on connection ``conn``, bound to our leaf by an
    authenticated Hello; ``caught_up`` commits missed while away were applied."""

    conn: int
    caught_up: int


@dataclass(frozen=True, slots=True)
class Stranded:
    """We missed too much while away (removed meanwhile, or changes the relay no longer
    has): this membership is over, and a fresh admission through the lobby is needed."""

    reason: str


@dataclass(frozen=True, slots=True)
class MemberAway:
    """A member's relay connection vanished without a goodbye: it keeps its place for
    the resume window (``MeetingConfig.resume_window``) unless it comes back."""

    leaf: int
    name: str


@dataclass(frozen=True, slots=True)
class MemberBack:
    """A member that was away announced its new relay connection (authenticated)."""

    leaf: int
    name: str


@dataclass(frozen=True, slots=True)
class MemberMedia:
    """A member's own microphone, camera and screen-share switches changed (its
    authenticated ``media`` message or Hello): a mute is shown as a mute.
    ``recording``: it announced that it records the meeting."""

    leaf: int
    name: str
    mic: bool
    cam: bool
    screen: bool
    recording: bool = False


@dataclass(frozen=True, slots=True)
class HandsChanged:
    """A hand went up or down; ``queue``: leaves with a raised hand, in raise order;
    ``by``: the host's name when a host lowered someone's hand, else None."""

    leaf: int
    name: str
    up: bool
    queue: tuple[int, ...]
    by: str | None = None


@dataclass(frozen=True, slots=True)
class ReactionReceived:
    """A member's reaction (one of ``app_messages.REACTIONS``), within the rate limit."""

    leaf: int
    name: str
    emoji: str


@dataclass(frozen=True, slots=True)
class UnmuteAsked:
    """A host asks us to unmute: shown to the user, who chooses (nothing is unmuted)."""

    by: int
    name: str


@dataclass(frozen=True, slots=True)
class MutedByHost:
    """A host muted our outgoing audio: none is sent until the user unmutes."""

    by: int
    name: str


@dataclass(frozen=True, slots=True)
class Error:
    """Bad or unexpected input was discarded; the meeting goes on."""

    code: ErrorCode
    message: str


Event = (
    Connected
    | LobbyRequest
    | LobbyWithdrawn
    | Admitted
    | MemberJoined
    | MemberLeft
    | EpochChanged
    | ChatReceived
    | MediaFrameDecrypted
    | FrameRejected
    | KeyframeRequested
    | LayerCapped
    | JoinRefused
    | Removed
    | MeetingEnded
    | JoinDeclined
    | SecurityAlert
    | OrderingStalled
    | OrderingResumed
    | InvitationReplaced
    | ConnectionLost
    | Reconnected
    | Stranded
    | MemberAway
    | MemberBack
    | MemberMedia
    | HandsChanged
    | ReactionReceived
    | UnmuteAsked
    | MutedByHost
    | Error
)
