"""One participant's meeting state machine (sans-I/O).

Admission, roles, policy, epochs -> SFrame keys, security code, chat.

Start with :class:`Meeting` (:meth:`Meeting.create` for the owner, with a key from
:func:`generate_owner_key` and a link from :func:`new_link`; :meth:`Meeting.join`
for a guest, with :func:`parse_link`). The wire format is described in
docs/PROTOCOL.md.
"""

from .errors import (
    AppMessageError,
    IdentityError,
    JoinRequestError,
    LinkError,
    LobbyError,
    MeetingError,
    RoleError,
    StateError,
)
from .events import (
    Admitted,
    AlertKind,
    ChatReceived,
    Connected,
    ConnectionLost,
    EpochChanged,
    Error,
    ErrorCode,
    Event,
    FrameRejected,
    HandsChanged,
    InvitationReplaced,
    JoinDeclined,
    JoinRefused,
    KeyframeRequested,
    LayerCapped,
    LobbyRequest,
    LobbyWithdrawn,
    MediaFrameDecrypted,
    MeetingEnded,
    MemberAway,
    MemberBack,
    MemberJoined,
    MemberLeft,
    MemberMedia,
    MutedByHost,
    OrderingResumed,
    OrderingStalled,
    ReactionReceived,
    Reconnected,
    Removed,
    Role,
    RosterEntry,
    SecurityAlert,
    Stranded,
    UnmuteAsked,
)
from .identity import Identity
from .link import MeetingLink, new_link, owner_fingerprint, parse_link
from .meeting import Meeting, MeetingConfig, Phase
from .people import PeopleBook
from .policy import MeetingPolicy
from .roles import generate_owner_key
from .security_code import security_code

__all__ = [
    "Admitted",
    "AlertKind",
    "AppMessageError",
    "ChatReceived",
    "Connected",
    "ConnectionLost",
    "EpochChanged",
    "Error",
    "ErrorCode",
    "Event",
    "FrameRejected",
    "HandsChanged",
    "Identity",
    "IdentityError",
    "InvitationReplaced",
    "JoinDeclined",
    "JoinRefused",
    "JoinRequestError",
    "KeyframeRequested",
    "LayerCapped",
    "LinkError",
    "LobbyError",
    "LobbyRequest",
    "LobbyWithdrawn",
    "MediaFrameDecrypted",
    "Meeting",
    "MeetingConfig",
    "MeetingEnded",
    "MeetingError",
    "MeetingLink",
    "MeetingPolicy",
    "MemberAway",
    "MemberBack",
    "MemberJoined",
    "MemberLeft",
    "MemberMedia",
    "MutedByHost",
    "OrderingResumed",
    "OrderingStalled",
    "PeopleBook",
    "Phase",
    "ReactionReceived",
    "Reconnected",
    "Removed",
    "Role",
    "RoleError",
    "RosterEntry",
    "SecurityAlert",
    "StateError",
    "Stranded",
    "UnmuteAsked",
    "generate_owner_key",
    "new_link",
    "owner_fingerprint",
    "parse_link",
    "security_code",
]
