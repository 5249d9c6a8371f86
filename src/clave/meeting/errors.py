"""Typed errors of the meeting layer.

Bad input from the network never raises out of :class:`~clave.meeting.Meeting`:
it becomes an :class:`~clave.meeting.events.Error` or
:class:`~clave.meeting.events.FrameRejected` event. The parsers in this
package raise the subclasses below (with a message that says what was wrong);
:class:`StateError` signals programmer misuse of the API.
"""

from __future__ import annotations


class MeetingError(Exception):
    """Base class of every error raised by :mod:`clave.meeting`."""


class LinkError(MeetingError, ValueError):
    """A meeting link or relay base URL is malformed."""


class IdentityError(MeetingError, ValueError):
    """A display name or MLS credential identity is not acceptable."""


class JoinRequestError(MeetingError):
    """A sealed join request could not be opened or is malformed."""


class AppMessageError(MeetingError):
    """An application message (inside MLS) is malformed or unknown."""


class RoleError(MeetingError):
    """A host certificate, the meeting policy or a role change is invalid."""


class LobbyError(MeetingError):
    """A lobby reply could not be opened or does not come from a certified host."""


class StateError(MeetingError):
    """An API call that the meeting's current state does not allow."""
