"""Enumerations, registries and type aliases of MLS (RFC 9420 sections 5-7, 12, 17)."""

from __future__ import annotations

from enum import IntEnum
from typing import TypeAlias

HPKEPublicKey: TypeAlias = bytes
"""``opaque HPKEPublicKey<V>`` (RFC 9420 section 5.1.1)."""

SignaturePublicKey: TypeAlias = bytes
"""``opaque SignaturePublicKey<V>`` (RFC 9420 section 5.1.1)."""

HashReference: TypeAlias = bytes
"""``opaque HashReference<V>``: KeyPackageRef and ProposalRef (RFC 9420 section 5.2)."""

MAC: TypeAlias = bytes
"""``opaque MAC<V>`` (RFC 9420 section 6.1)."""


class ProtocolVersion(IntEnum):
    """RFC 9420 section 6."""

    mls10 = 1


class ContentType(IntEnum):
    """RFC 9420 section 6."""

    application = 1
    proposal = 2
    commit = 3


class SenderType(IntEnum):
    """RFC 9420 section 6."""

    member = 1
    external = 2
    new_member_proposal = 3
    new_member_commit = 4


class WireFormat(IntEnum):
    """MLS Wire Formats registry (RFC 9420 section 17.2)."""

    mls_public_message = 1
    mls_private_message = 2
    mls_welcome = 3
    mls_group_info = 4
    mls_key_package = 5


class ExtensionType(IntEnum):
    """MLS Extension Types registry (RFC 9420 section 17.3); other values are legal."""

    application_id = 1
    ratchet_tree = 2
    required_capabilities = 3
    external_pub = 4
    external_senders = 5


class ProposalType(IntEnum):
    """MLS Proposal Types registry (RFC 9420 section 17.4)."""

    add = 1
    update = 2
    remove = 3
    psk = 4
    reinit = 5
    external_init = 6
    group_context_extensions = 7


class CredentialType(IntEnum):
    """MLS Credential Types registry (RFC 9420 section 17.5)."""

    basic = 1
    x509 = 2


class NodeType(IntEnum):
    """RFC 9420 section 7.8."""

    leaf = 1
    parent = 2


class LeafNodeSource(IntEnum):
    """RFC 9420 section 7.2."""

    key_package = 1
    update = 2
    commit = 3


class PSKType(IntEnum):
    """RFC 9420 section 8.4."""

    external = 1
    resumption = 2


class ResumptionPSKUsage(IntEnum):
    """RFC 9420 section 8.4."""

    application = 1
    reinit = 2
    branch = 3


class ProposalOrRefType(IntEnum):
    """RFC 9420 section 12.4."""

    proposal = 1
    reference = 2


DEFAULT_PROPOSAL_TYPES: frozenset[int] = frozenset(int(t) for t in ProposalType)
"""Proposal types that MUST NOT be listed in capabilities (RFC 9420 section 7.2)."""

DEFAULT_EXTENSION_TYPES: frozenset[int] = frozenset(int(t) for t in ExtensionType)
"""Extension types that MUST NOT be listed in capabilities (RFC 9420 section 7.2)."""

GREASE_VALUES: frozenset[int] = frozenset(0x0A0A + 0x1010 * i for i in range(15))
"""Values reserved for GREASE in every MLS registry (RFC 9420 section 13.5)."""
