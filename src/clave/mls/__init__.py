"""MLS, RFC 9420: a strict, sans-I/O implementation (one module per RFC concept).

The public API, all importable from here (docs/MLS.md walks through it)::

    suite          CipherSuite, get_suite(id), CipherSuiteId, SUPPORTED_CIPHER_SUITES (1, 2, 3)
    identity       Credential.basic(identity), Signer(credential, key) / Signer.generate(...)
    key packages   create_key_package(suite, signer, rng=, now=) -> KeyPackageBundle;
                   bundle.to_message_bytes(), decode_key_package(bytes), key_package_ref
    groups         Group.create(suite, group_id, signer, rng=, now=), Group.join(welcome,
                   bundles, ...), Group.join_external(...), Group.from_bytes(...);
                   group.commit(add=, remove=) -> CommitOutput, merge_pending_commit(),
                   send(data), process(message) -> event, leaf_of(identity), to_bytes()
    events         ApplicationMessage, CommitProcessed (CommitSummary, Member), ProposalReceived
    configuration  GroupConfig, Policy / PolicyInput / allow_all, Rng, Clock
    wire structs   Extension, WireFormat, PreSharedKeyID, KeyPackage
    errors         MLSError and its subclasses (clave.mls.errors)

Nothing here does I/O: bytes go in and out, randomness (``rng(n) -> bytes``)
and time (``now() -> Unix seconds``) are injected.
"""

from __future__ import annotations

from .ciphersuite import SUPPORTED_CIPHER_SUITES, CipherSuite, CipherSuiteId, Rng, get_suite
from .errors import (
    AmbiguousMemberError,
    CommitError,
    ConfirmationTagError,
    CryptoError,
    DecodeError,
    EpochError,
    GenerationError,
    KeyPackageError,
    LeafNodeError,
    MemberLookupError,
    MembershipTagError,
    MLSError,
    PolicyError,
    ProposalError,
    SignatureError,
    StateError,
    TreeError,
    UnknownMemberError,
    UnsupportedCipherSuiteError,
    ValidationError,
    WelcomeError,
    WelcomeNotForUsError,
)
from .events import (
    ApplicationMessage,
    CommitProcessed,
    CommitSummary,
    Event,
    Member,
    Policy,
    PolicyInput,
    ProposalReceived,
    allow_all,
)
from .group import Group
from .group_records import CommitOutput, GroupConfig
from .key_package import (
    Clock,
    KeyPackageBundle,
    Signer,
    create_key_package,
    decode_key_package,
    key_package_ref,
)
from .structs import Credential, Extension, KeyPackage, PreSharedKeyID, WireFormat

__all__ = [
    "SUPPORTED_CIPHER_SUITES",
    "AmbiguousMemberError",
    "ApplicationMessage",
    "CipherSuite",
    "CipherSuiteId",
    "Clock",
    "CommitError",
    "CommitOutput",
    "CommitProcessed",
    "CommitSummary",
    "ConfirmationTagError",
    "Credential",
    "CryptoError",
    "DecodeError",
    "EpochError",
    "Event",
    "Extension",
    "GenerationError",
    "Group",
    "GroupConfig",
    "KeyPackage",
    "KeyPackageBundle",
    "KeyPackageError",
    "LeafNodeError",
    "MLSError",
    "Member",
    "MemberLookupError",
    "MembershipTagError",
    "Policy",
    "PolicyError",
    "PolicyInput",
    "PreSharedKeyID",
    "ProposalError",
    "ProposalReceived",
    "Rng",
    "SignatureError",
    "Signer",
    "StateError",
    "TreeError",
    "UnknownMemberError",
    "UnsupportedCipherSuiteError",
    "ValidationError",
    "WelcomeError",
    "WelcomeNotForUsError",
    "WireFormat",
    "allow_all",
    "create_key_package",
    "decode_key_package",
    "get_suite",
    "key_package_ref",
]
