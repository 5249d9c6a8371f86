"""The joiner's side of admission: the request, the Welcome check, the host's answer.

A joiner knows only its invitation: the secret and the owner fingerprint
(:mod:`.link`). It accepts a Welcome (RFC 9420 section 12.4.3.1) only if

* the group's meeting policy names an owner with that fingerprint,
* every host and successor entry is certified from that owner for this group
  (:mod:`.roles`), and
* the GroupInfo was signed by a current host.

Anything else (a link holder's own group under the same name, a relay
replaying another meeting's Welcome) is reported as a
:class:`~clave.meeting.events.SecurityAlert` and ignored; the joiner keeps its
KeyPackage and waits for the real Welcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..mls.errors import MLSError, PolicyError
from ..mls.events import PolicyInput
from ..mls.group import Group, GroupConfig
from ..mls.key_package import KeyPackageBundle, create_key_package, key_package_ref
from ..mls.structs import Credential, MLSMessage
from .join_request import JoinRequestBody, seal_join_request
from .link import MeetingLink, owner_fingerprint
from .policy import CAPABILITIES, MeetingPolicy, meeting_policy, validate_policy
from .roles import suite

Rng = Callable[[int], bytes]
UnixTime = Callable[[], int]


@dataclass(frozen=True, slots=True)
class Request:
    """What a joiner keeps while it waits: its KeyPackage (and private keys) and reference."""

    bundle: KeyPackageBundle
    ref: bytes
    sealed: bytes


def make_request(
    *,
    credential: Credential,
    signature_private: bytes,
    name: str,
    conn: int,
    join_key: bytes,
    rng: Rng,
    now: int,
    lifetime: int,
    skew: int,
) -> Request:
    """A fresh KeyPackage (RFC 9420 section 10) sealed into a join request for ``conn``."""
    bundle = create_key_package(
        suite(),
        credential,
        rng=rng,
        now=now,
        signature_priv=signature_private,
        lifetime=lifetime,
        not_before=max(0, now - skew),
        capabilities=CAPABILITIES,
    )
    body = JoinRequestBody(
        key_package=MLSMessage(bundle.key_package).to_bytes(), name=name, conn=conn
    )
    sealed = seal_join_request(join_key, body, rng)
    return Request(bundle, key_package_ref(bundle.key_package), sealed)


def verify_meeting(group: Group, link: MeetingLink) -> MeetingPolicy:
    """The meeting policy of a group joined from a Welcome, if it is the invited meeting.

    Raises :class:`PolicyError` saying why not.
    """
    policy = meeting_policy(group.extensions)
    if owner_fingerprint(policy.owner) != link.owner:
        raise PolicyError(
            "the meeting's owner is not the one named in your invitation "
            "(someone holding the link tried to pull you into a meeting of their own)"
        )
    validate_policy(policy, group.group_id, [m.signature_key for m in group.roster()])
    signer = group.welcome_signer
    if signer is None:  # pragma: no cover - always set by Group.join
        raise PolicyError("the Welcome has no GroupInfo signer")
    if not policy.is_host(group.member(signer).signature_key):
        raise PolicyError(
            f"the Welcome was sent by leaf {signer}, which is not a host of the meeting"
        )
    return policy


def join_group(
    welcome: bytes,
    request: Request,
    link: MeetingLink,
    *,
    rng: Rng,
    now: UnixTime,
    policy: Callable[[PolicyInput], None],
    config: GroupConfig,
) -> tuple[Group, MeetingPolicy]:
    """Process a Welcome and check that it admits us to the invited meeting.

    :class:`MLSError` (``PolicyError`` for a counterfeit) if not; our request stays usable.
    """
    group = Group.join(welcome, request.bundle, rng=rng, now=now, policy=policy, config=config)
    return group, verify_meeting(group, link)


__all__ = ["MLSError", "Request", "join_group", "make_request", "verify_meeting"]
