"""One participant's meeting state machine (sans-I/O).

Admission, roles, policy, epochs -> SFrame keys, security code, chat.

Start with :class:`Meeting` (:meth:`Meeting.create` for the host,
:meth:`Meeting.join` for a guest) and :func:`parse_link` / :func:`new_link`.
The wire format is described in docs/PROTOCOL.md.
"""

from .errors import (
    AppMessageError,
    IdentityError,
    JoinRequestError,
    LinkError,
    MeetingError,
    StateError,
)
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
from .link import MeetingLink, new_link, parse_link, relay_websocket_url
from .meeting import Meeting, MeetingConfig, Phase
from .policy import MeetingPolicy
from .security_code import security_code

__all__ = [
    "Admitted",
    "AppMessageError",
    "ChatReceived",
    "Connected",
    "EpochChanged",
    "Error",
    "ErrorCode",
    "Event",
    "FrameRejected",
    "IdentityError",
    "JoinRefused",
    "JoinRequestError",
    "KeyframeRequested",
    "LinkError",
    "LobbyRequest",
    "LobbyWithdrawn",
    "MediaFrameDecrypted",
    "Meeting",
    "MeetingConfig",
    "MeetingEnded",
    "MeetingError",
    "MeetingLink",
    "MeetingPolicy",
    "MemberJoined",
    "MemberLeft",
    "Phase",
    "Removed",
    "RosterEntry",
    "StateError",
    "new_link",
    "parse_link",
    "relay_websocket_url",
    "security_code",
]
