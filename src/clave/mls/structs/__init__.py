"""Wire structures of MLS (RFC 9420) as immutable dataclasses.

One module per part of the RFC: :mod:`.enums` (enumerations, registries, type
aliases), :mod:`.credential` (5.3), :mod:`.extension` (7.2, 13), :mod:`.tree`
(ratchet-tree nodes and hash inputs, 7.1-7.9), :mod:`.update_path` (7.6),
:mod:`.key_package` (10), :mod:`.psk` (8.4), :mod:`.proposal` (12.1),
:mod:`.commit` (12.4), :mod:`.group_info` (8.1, 12.4.3), :mod:`.welcome`
(12.4.3.1), :mod:`.framing` (6, 8.2) and :mod:`.message` (the MLSMessage
envelope). Everything is re-exported here.

Each structure declares its TLS-presentation layout once, as data
(:func:`~clave.mls.structs._layout.layout`); its ``encode(w)`` / ``decode(r)``
against the codec of :mod:`clave.mls.codec` and the conveniences
``to_bytes()`` / ``from_bytes()`` (the latter rejects trailing bytes) are
generated from that declaration. Structures whose layout depends on an outer
field (:class:`FramedContentAuthData`, :class:`PrivateMessageContent`) take
that field as an extra ``decode`` / ``from_bytes`` argument.

This package is pure data: no cryptography. It also provides the byte strings
that get signed, MAC'd or hashed (``LeafNode.tbs``, ``KeyPackage.tbs``,
``GroupInfo.tbs``, :func:`framed_content_tbs`, :func:`authenticated_content_tbm`,
the transcript-hash inputs and the tree-hash inputs).

Decoders raise only :class:`~clave.mls.errors.DecodeError`. Closed enumerations
(content, sender, node, leaf-node-source, PSK types, ...) reject unknown values;
the open IANA registries (extension, proposal, credential types, cipher suites)
are plain ``int`` wherever the RFC requires unknown values to be carried, e.g.
in :class:`Capabilities` and :class:`Extension`. Encoders raise ``ValueError``
on internally inconsistent objects (for example a commit without a
confirmation tag).
"""

from __future__ import annotations

from .commit import (
    Commit,
    ProposalOrRef,
)
from .credential import (
    Credential,
)
from .enums import (
    DEFAULT_EXTENSION_TYPES,
    DEFAULT_PROPOSAL_TYPES,
    GREASE_VALUES,
    MAC,
    ContentType,
    CredentialType,
    ExtensionType,
    HashReference,
    HPKEPublicKey,
    LeafNodeSource,
    NodeType,
    ProposalOrRefType,
    ProposalType,
    ProtocolVersion,
    PSKType,
    ResumptionPSKUsage,
    SenderType,
    SignaturePublicKey,
    WireFormat,
)
from .extension import (
    ApplicationId,
    Extension,
    ExternalPub,
    ExternalSender,
    ExternalSenders,
    RequiredCapabilities,
    find_extension,
)
from .framing import (
    AuthenticatedContent,
    ConfirmedTranscriptHashInput,
    Content,
    FramedContent,
    FramedContentAuthData,
    InterimTranscriptHashInput,
    PrivateContentAAD,
    PrivateMessage,
    PrivateMessageContent,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    authenticated_content_tbm,
    content_type_of,
    framed_content_tbs,
)
from .group_info import (
    GroupContext,
    GroupInfo,
)
from .key_package import (
    KeyPackage,
)
from .message import (
    MessageBody,
    MLSMessage,
)
from .proposal import (
    PROPOSAL_CLASSES,
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    Proposal,
    ReInit,
    Remove,
    Update,
    decode_proposal,
    encode_proposal,
    proposal_from_bytes,
    proposal_to_bytes,
)
from .psk import (
    PreSharedKeyID,
    PSKLabel,
)
from .tree import (
    Capabilities,
    LeafNode,
    Lifetime,
    Node,
    ParentHashInput,
    ParentNode,
    RatchetTree,
    leaf_tree_hash_input,
    parent_tree_hash_input,
)
from .update_path import (
    HPKECiphertext,
    UpdatePath,
    UpdatePathNode,
)
from .welcome import (
    EncryptedGroupSecrets,
    GroupSecrets,
    Welcome,
)

__all__ = [
    "DEFAULT_EXTENSION_TYPES",
    "DEFAULT_PROPOSAL_TYPES",
    "GREASE_VALUES",
    "MAC",
    "PROPOSAL_CLASSES",
    "Add",
    "ApplicationId",
    "AuthenticatedContent",
    "Capabilities",
    "Commit",
    "ConfirmedTranscriptHashInput",
    "Content",
    "ContentType",
    "Credential",
    "CredentialType",
    "EncryptedGroupSecrets",
    "Extension",
    "ExtensionType",
    "ExternalInit",
    "ExternalPub",
    "ExternalSender",
    "ExternalSenders",
    "FramedContent",
    "FramedContentAuthData",
    "GroupContext",
    "GroupContextExtensions",
    "GroupInfo",
    "GroupSecrets",
    "HPKECiphertext",
    "HPKEPublicKey",
    "HashReference",
    "InterimTranscriptHashInput",
    "KeyPackage",
    "LeafNode",
    "LeafNodeSource",
    "Lifetime",
    "MLSMessage",
    "MessageBody",
    "Node",
    "NodeType",
    "PSKLabel",
    "PSKType",
    "ParentHashInput",
    "ParentNode",
    "PreSharedKey",
    "PreSharedKeyID",
    "PrivateContentAAD",
    "PrivateMessage",
    "PrivateMessageContent",
    "Proposal",
    "ProposalOrRef",
    "ProposalOrRefType",
    "ProposalType",
    "ProtocolVersion",
    "PublicMessage",
    "RatchetTree",
    "ReInit",
    "Remove",
    "RequiredCapabilities",
    "ResumptionPSKUsage",
    "Sender",
    "SenderData",
    "SenderDataAAD",
    "SenderType",
    "SignaturePublicKey",
    "Update",
    "UpdatePath",
    "UpdatePathNode",
    "Welcome",
    "WireFormat",
    "authenticated_content_tbm",
    "content_type_of",
    "decode_proposal",
    "encode_proposal",
    "find_extension",
    "framed_content_tbs",
    "leaf_tree_hash_input",
    "parent_tree_hash_input",
    "proposal_from_bytes",
    "proposal_to_bytes",
]
