"""Typed errors of the MLS implementation (RFC 9420).

Every parser and validator in :mod:`clave.mls` raises a subclass of
:class:`MLSError` whose message says what failed; nothing else escapes on
bad input.
"""

from __future__ import annotations


class MLSError(Exception):
    """Base class of every error raised by :mod:`clave.mls`."""


class DecodeError(MLSError):
    """Malformed TLS-presentation bytes (RFC 9420 section 2.1)."""


class CryptoError(MLSError):
    """A cryptographic operation failed (bad key, AEAD tag or HPKE open)."""


class SignatureError(MLSError):
    """A signature did not verify (RFC 9420 section 5.1.2)."""


class UnsupportedCipherSuiteError(MLSError):
    """The cipher suite is not implemented (RFC 9420 section 17.1)."""


class ValidationError(MLSError):
    """A structure violates an invariant the RFC requires."""


class TreeError(ValidationError):
    """Ratchet-tree invariant violated (RFC 9420 sections 7.8-7.9, 12.4.3.1)."""


class LeafNodeError(ValidationError):
    """Leaf node validation failed (RFC 9420 section 7.3)."""


class KeyPackageError(ValidationError):
    """KeyPackage validation failed (RFC 9420 section 10.1)."""


class ProposalError(ValidationError):
    """Proposal list validation failed (RFC 9420 section 12.2)."""


class CommitError(ValidationError):
    """Commit validation failed (RFC 9420 section 12.4.2)."""


class MembershipTagError(ValidationError):
    """PublicMessage membership tag mismatch (RFC 9420 section 6.2)."""


class ConfirmationTagError(ValidationError):
    """Confirmation tag mismatch (RFC 9420 section 8.1)."""


class EpochError(ValidationError):
    """Message for the wrong group or epoch (RFC 9420 section 6)."""


class GenerationError(ValidationError):
    """Secret-tree generation reused, deleted or too far ahead (RFC 9420 section 9)."""


class WelcomeError(ValidationError):
    """Welcome could not be processed (RFC 9420 section 12.4.3.1)."""


class WelcomeNotForUsError(WelcomeError):
    """A Welcome has no entry for any of the KeyPackages it was tried with (section 12.4.3.1)."""


class MemberLookupError(MLSError, LookupError):
    """A member named by its credential identity could not be singled out."""


class UnknownMemberError(MemberLookupError):
    """No member of the group has the given identity."""


class AmbiguousMemberError(MemberLookupError):
    """Several members (leaves) have the given identity; name one by leaf index."""


class PolicyError(MLSError):
    """The application policy hook rejected a proposal or commit."""


class StateError(MLSError):
    """An API call that the group's current state does not allow."""
