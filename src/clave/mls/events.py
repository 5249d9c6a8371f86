"""What the group state machine reports: members, events and policy input.

Small frozen dataclasses named for what happened, in the aioquic style.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .structs import Credential, CredentialType, Extension, Proposal, Sender


@dataclass(frozen=True, slots=True)
class Member:
    """One roster entry: a non-blank leaf of the ratchet tree (RFC 9420 section 7.2)."""

    leaf_index: int
    credential: Credential
    signature_key: bytes
    encryption_key: bytes

    @property
    def identity(self) -> bytes:
        """The basic credential's identity (RFC 9420 section 5.3.1); b"" for others."""
        if self.credential.credential_type == CredentialType.basic:
            return self.credential.identity or b""
        return b""


@dataclass(frozen=True, slots=True)
class ApplicationMessage:
    """An application message was decrypted (RFC 9420 section 6.3)."""

    sender: int
    data: bytes
    authenticated_data: bytes
    epoch: int
    generation: int


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    """A standalone proposal was verified and cached for a later commit (section 12.1)."""

    sender: Sender
    proposal: Proposal
    reference: bytes


@dataclass(frozen=True, slots=True)
class CommitSummary:
    """What a commit changed (RFC 9420 section 12.4); produced on merge or processing."""

    epoch: int
    committer: int | None
    external: bool
    added: tuple[Member, ...]
    removed: tuple[Member, ...]
    updated: tuple[int, ...]
    extensions_changed: bool
    psk_count: int
    has_path: bool
    removed_self: bool


@dataclass(frozen=True, slots=True)
class CommitProcessed:
    """A commit from another member (or an external joiner) moved the group to a new epoch."""

    summary: CommitSummary


Event = ApplicationMessage | ProposalReceived | CommitProcessed


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """What the application policy hook is asked about.

    ``proposals`` pairs each proposal with the leaf index of the member that
    sent it (``None`` for external or new-member senders). ``committer`` is
    the committing leaf (``None`` for a standalone proposal or an external
    commit). ``roster`` and ``extensions`` describe the group *before* the
    change.
    """

    kind: str  # "proposal" | "commit" | "external_commit"
    committer: int | None
    proposals: tuple[tuple[int | None, Proposal], ...]
    roster: tuple[Member, ...]
    extensions: tuple[Extension, ...]
    own: bool


Policy = Callable[[PolicyInput], None]
"""Raises :class:`clave.mls.errors.PolicyError` to refuse a change."""


def allow_all(_: PolicyInput) -> None:
    """The default policy: every RFC-valid change is accepted."""
