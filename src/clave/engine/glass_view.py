"""What the glass is shown: the ``hello``, ``state``, ``padlock`` and ``ended`` messages
of the Local UI channel (docs/PROTOCOL.md), built from the meeting core and the relay
link as :mod:`.glass_messages` structs.

The padlock says "encrypted" only while media is protected under the current
epoch (:attr:`Meeting.encrypted`) *and* the relay link is up; while the engine
reconnects it says so ("reconnecting": media paused, nothing is sent, the keys
stay on this computer). There is no unencrypted fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ..meeting.app_messages import MediaState
from ..meeting.identity import Identity
from ..meeting.link import MeetingLink
from ..meeting.meeting import Meeting, Phase
from .glass_messages import (
    LOBBY_SHOWN,
    Connection,
    Ended,
    GlassPhase,
    Hello,
    LobbyEntry,
    MediaSwitches,
    Outcome,
    Padlock,
    PadlockState,
    Policy,
    RejoinMode,
    Remembered,
    RosterEntry,
    State,
)

CONNECTED = "connected"
RECONNECTING = "reconnecting"
CLOSED = "closed"

MEETING_PHASES: dict[Phase, GlassPhase] = {
    Phase.connecting: "connecting",
    Phase.lobby: "lobby",
    Phase.in_meeting: "in_meeting",
    Phase.ended: "ended",
}
"""The meeting core's phases as the glass names them (it adds ``prejoin``)."""
_CONNECTIONS: dict[str, Connection] = {
    CONNECTED: "connected",
    RECONNECTING: "reconnecting",
    CLOSED: "closed",
}
_OUTCOMES: dict[str, Outcome] = {"declined": "declined", "locked": "locked", "full": "full"}


@dataclass(frozen=True, slots=True)
class View:
    """Everything the two messages are made of."""

    phase: GlassPhase
    meeting: Meeting | None
    link: MeetingLink
    """The invitation as it is now (a host may have replaced it)."""
    auto_admit: bool
    """What a host glass starts with before its meeting's policy exists."""
    joining: bool = False
    """Connecting to the relay, no meeting core yet."""
    connection: str | None = None
    """The relay link: ``connected``, ``reconnecting``, ``closed``; None without a session."""
    reconnects: int = 0
    rejoining: str | None = None
    """Why the engine is being admitted afresh (it missed too much while away)."""
    rejoin: RejoinMode | None = None
    """After the meeting ended: what "Rejoin" does, ``knock`` (ask through the lobby) or
    ``restart`` (the owner starts its meeting again); None while not offered."""
    away: frozenset[int] = frozenset()
    """Leaves whose relay connection is gone without a goodbye (``MemberAway``)."""


def hello_message(
    host: bool,
    link: MeetingLink,
    default_name: str,
    identity: Identity | None,
    media: MediaSwitches | None,
    remembered: Remembered | None = None,
) -> Hello:
    """The ``hello`` message (engine -> glass, first on connect): our role, the invitation,
    the name to offer, our identity's fingerprint, the switches the glass last reported
    and the choices kept from earlier meetings."""
    return Hello(
        role="host" if host else "guest",
        link=link.url,
        info_url=link.info_url,
        default_name=default_name,
        fingerprint=identity.fingerprint if identity is not None else None,
        media=media,
        remembered=remembered,
    )


def ended_message(reason: str, outcome: str | None, joined: bool) -> Ended:
    """``ended``: why, the lobby answer if a host turned us away, and whether we had
    been in the meeting (the glass says "Meeting ended" only then)."""
    return Ended(
        reason=reason,
        outcome=_OUTCOMES.get(outcome) if outcome is not None else None,
        joined=joined,
    )


def _recording(switches: MediaState | None) -> bool:
    return switches is not None and switches.rec


def state_message(view: View) -> State:
    """The ``state`` message (engine -> glass). Roster entries say ``away`` only while
    somebody is away."""
    meeting = view.meeting
    in_meeting = meeting is not None and meeting.phase is Phase.in_meeting
    is_host = bool(in_meeting and meeting is not None and meeting.is_host)
    roster: list[RosterEntry] = []
    lobby: list[LobbyEntry] = []
    policy = Policy(locked=False, auto_admit=view.auto_admit)
    pending: list[int] = []
    waiting = 0
    away = view.away
    if meeting is not None and in_meeting:
        switches = meeting.media_states
        roster = [
            RosterEntry(
                leaf=e.leaf,
                name=e.name,
                fingerprint=e.fingerprint,
                is_host=e.is_host,
                is_self=e.is_self,
                role=e.role,
                familiarity=e.familiarity,
                verified=e.verified,
                confusable_with=e.confusable_with,
                mic=switches[e.leaf].mic if e.leaf in switches else None,
                cam=switches[e.leaf].cam if e.leaf in switches else None,
                away=e.leaf in away if away else msgspec.UNSET,
                recording=meeting.recording if e.is_self else _recording(switches.get(e.leaf)),
            )
            for e in meeting.roster
        ]
        if is_host:
            lobby = [
                LobbyEntry(
                    id=r.request_id,
                    name=r.display_name,
                    fingerprint=r.fingerprint,
                    familiarity=r.familiarity,
                    confusable_with=r.confusable_with,
                )
                for r in meeting.lobby_head(LOBBY_SHOWN)
            ]
            waiting = meeting.lobby_waiting
        p = meeting.policy
        if p is not None:
            policy = Policy(locked=p.locked, auto_admit=p.auto_admit)
        pending = list(meeting.pending_removals)
    return State(
        phase=view.phase,
        self_leaf=meeting.own_leaf if meeting is not None else None,
        is_host=is_host,
        epoch=meeting.epoch if meeting is not None else None,
        security_code=meeting.security_code if meeting is not None else None,
        roster=roster,
        lobby=lobby,
        lobby_waiting=waiting,
        policy=policy,
        pending_removals=pending,
        ordering=meeting.ordering_stalled if meeting is not None else None,
        link=view.link.url if in_meeting else None,
        info_url=view.link.info_url,
        connection=_CONNECTIONS.get(view.connection) if view.connection is not None else None,
        reconnects=view.reconnects,
        rejoining=view.rejoining,
        rejoin=view.rejoin if view.phase == "ended" else None,
        hands=list(meeting.raised_hands) if meeting is not None and in_meeting else [],
        muted_by=meeting.muted_by if meeting is not None and in_meeting else None,
    )


def padlock_message(view: View) -> Padlock:
    """The ``padlock`` message: what is true about media right now."""
    meeting = view.meeting
    if view.phase == "ended" or (meeting is not None and meeting.phase is Phase.ended):
        return _padlock("not_encrypted", "not in the meeting any more: nothing is sent")
    if view.rejoining and (meeting is None or meeting.phase is not Phase.in_meeting):
        return _padlock(
            "not_encrypted",
            "rejoining: being admitted again through the lobby; nothing is sent meanwhile",
        )
    if meeting is None:
        if view.joining:
            return _padlock("not_encrypted", "connecting to the relay: nothing is sent yet")
        return _padlock("not_encrypted", "not in the meeting yet: nothing is sent")
    if view.connection == RECONNECTING:
        return _padlock(
            "reconnecting",
            "the connection to the relay was lost and is being restored: media is paused "
            "and nothing is sent meanwhile; the meeting's keys never left this computer",
        )
    if meeting.phase is Phase.connecting:
        return _padlock("not_encrypted", "connecting to the relay: nothing is sent yet")
    if meeting.phase is Phase.lobby:
        return _padlock("not_encrypted", "waiting to be admitted: nothing is sent yet")
    if not meeting.encrypted:
        return _padlock(
            "rekeying", "new keys are being installed: media is held back until they are"
        )
    if meeting.ordering_stalled is not None:
        return _padlock(
            "warning",
            "the relay is not ordering changes: "
            f"{meeting.ordering_stalled}. Media stays encrypted under epoch {meeting.epoch}",
        )
    if meeting.commit_in_flight:
        return _padlock(
            "rekeying",
            f"keys are being renegotiated; media stays encrypted under epoch {meeting.epoch}",
        )
    return _padlock(
        "encrypted",
        f"media is end-to-end encrypted (SFrame keys of MLS epoch {meeting.epoch})",
    )


def _padlock(state: PadlockState, detail: str) -> Padlock:
    return Padlock(state=state, detail=detail)


__all__ = [
    "CLOSED",
    "CONNECTED",
    "MEETING_PHASES",
    "RECONNECTING",
    "View",
    "ended_message",
    "hello_message",
    "padlock_message",
    "state_message",
]
