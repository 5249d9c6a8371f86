"""Wire structures of MLS (RFC 9420) as immutable dataclasses.

Every structure has ``encode(w)`` / ``decode(r)`` against the TLS codec of
:mod:`clave.mls.codec` and the conveniences ``to_bytes()`` / ``from_bytes()``
(the latter rejects trailing bytes). Structures whose layout depends on an
outer field (:class:`FramedContentAuthData`, :class:`PrivateMessageContent`)
take that field as an extra ``decode`` / ``from_bytes`` argument.

This module is pure data: no cryptography. It also provides the byte strings
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

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self, TypeAlias, TypeVar

from .codec import Reader, Writer, decode_all
from .errors import DecodeError

HPKEPublicKey: TypeAlias = bytes
"""``opaque HPKEPublicKey<V>`` (RFC 9420 section 5.1.1)."""

SignaturePublicKey: TypeAlias = bytes
"""``opaque SignaturePublicKey<V>`` (RFC 9420 section 5.1.1)."""

HashReference: TypeAlias = bytes
"""``opaque HashReference<V>``: KeyPackageRef and ProposalRef (RFC 9420 section 5.2)."""

MAC: TypeAlias = bytes
"""``opaque MAC<V>`` (RFC 9420 section 6.1)."""


# --------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------


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

_E = TypeVar("_E", bound=IntEnum)
_KNOWN_EXTENSION_TYPES: dict[int, ExtensionType] = {int(t): t for t in ExtensionType}


def _closed(enum: type[_E], value: int, field: str) -> _E:
    """Map a decoded value onto a closed enumeration or raise DecodeError naming the field."""
    try:
        return enum(value)
    except ValueError:
        raise DecodeError(f"invalid {field}: unknown value {value}") from None


# --------------------------------------------------------------------------
# Base classes and codec helpers
# --------------------------------------------------------------------------


class _Encodable:
    """Mixin: ``to_bytes()`` in terms of ``encode()``."""

    __slots__ = ()

    def encode(self, w: Writer) -> None:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.finish()


class _Struct(_Encodable):
    """Mixin for self-delimiting structures: ``from_bytes()`` in terms of ``decode()``."""

    __slots__ = ()

    @classmethod
    def decode(cls, r: Reader) -> Self:
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode exactly one value; trailing bytes raise DecodeError."""
        return decode_all(data, cls.decode, cls.__name__)


def _write_structs(w: Writer, items: Iterable[_Encodable]) -> None:
    """``T items<V>`` for structures."""
    inner = Writer()
    for item in items:
        item.encode(inner)
    w.opaque(inner.finish())


def _pack(fmt: str, items: Sequence[int]) -> bytes:
    try:
        return struct.pack(f">{len(items)}{fmt}", *items)
    except struct.error as exc:
        raise ValueError(f"integer vector item out of range: {exc}") from None


def _write_u16s(w: Writer, items: Sequence[int]) -> None:
    w.opaque(_pack("H", items))


def _read_u16s(r: Reader) -> tuple[int, ...]:
    data = r.opaque()
    n, odd = divmod(len(data), 2)
    if odd:
        raise DecodeError("uint16 vector length is not a multiple of 2")
    return struct.unpack(f">{n}H", data)


def _write_opaques(w: Writer, items: Iterable[bytes]) -> None:
    inner = Writer()
    for item in items:
        inner.opaque(item)
    w.opaque(inner.finish())


def _read_opaques(r: Reader) -> tuple[bytes, ...]:
    return tuple(r.vector(Reader.opaque))


def _read_extensions(r: Reader) -> tuple[Extension, ...]:
    return tuple(r.vector(Extension.decode))


# --------------------------------------------------------------------------
# Credentials, capabilities, extensions (RFC 9420 sections 5.3, 7.2, 13)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential(_Struct):
    """RFC 9420 section 5.3. ``identity`` for basic, ``certificates`` (DER) for x509.

    Unknown credential types cannot be skipped (the encoding carries no length)
    and are rejected on decode.
    """

    credential_type: CredentialType
    identity: bytes = b""
    certificates: tuple[bytes, ...] = ()

    @classmethod
    def basic(cls, identity: bytes) -> Credential:
        return cls(CredentialType.basic, identity=identity)

    @classmethod
    def x509(cls, certificates: Sequence[bytes]) -> Credential:
        return cls(CredentialType.x509, certificates=tuple(certificates))

    def encode(self, w: Writer) -> None:
        t = self.credential_type
        if t == CredentialType.basic:
            if self.certificates:
                raise ValueError("basic credential must not carry certificates")
            w.u16(t)
            w.opaque(self.identity)
        elif t == CredentialType.x509:
            if self.identity:
                raise ValueError("x509 credential must not carry an identity")
            w.u16(t)
            _write_opaques(w, self.certificates)
        else:
            raise ValueError(f"cannot encode credential type {t}")

    @classmethod
    def decode(cls, r: Reader) -> Self:
        t = r.u16()
        if t == CredentialType.basic:
            return cls(CredentialType.basic, r.opaque())
        if t == CredentialType.x509:
            return cls(CredentialType.x509, b"", _read_opaques(r))
        raise DecodeError(f"unsupported Credential.credential_type {t:#06x}")


@dataclass(frozen=True, slots=True)
class Capabilities(_Struct):
    """RFC 9420 section 7.2. Values are raw uint16 so unknown/GREASE values survive."""

    versions: tuple[int, ...] = ()
    cipher_suites: tuple[int, ...] = ()
    extensions: tuple[int, ...] = ()
    proposals: tuple[int, ...] = ()
    credentials: tuple[int, ...] = ()

    def encode(self, w: Writer) -> None:
        _write_u16s(w, self.versions)
        _write_u16s(w, self.cipher_suites)
        _write_u16s(w, self.extensions)
        _write_u16s(w, self.proposals)
        _write_u16s(w, self.credentials)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(_read_u16s(r), _read_u16s(r), _read_u16s(r), _read_u16s(r), _read_u16s(r))


@dataclass(frozen=True, slots=True)
class Lifetime(_Struct):
    """RFC 9420 section 7.2: validity interval in seconds since the Unix epoch."""

    not_before: int
    not_after: int

    def encode(self, w: Writer) -> None:
        w.u64(self.not_before)
        w.u64(self.not_after)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.u64(), r.u64())


@dataclass(frozen=True, slots=True)
class Extension(_Struct):
    """RFC 9420 section 7.2: any uint16 type with opaque data (unknown types kept)."""

    extension_type: int
    extension_data: bytes

    def encode(self, w: Writer) -> None:
        w.u16(self.extension_type)
        w.opaque(self.extension_data)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        t = r.u16()
        return cls(_KNOWN_EXTENSION_TYPES.get(t, t), r.opaque())


def find_extension(extensions: Iterable[Extension], extension_type: int) -> Extension | None:
    """The first extension of the given type, or None."""
    for ext in extensions:
        if ext.extension_type == extension_type:
            return ext
    return None


class _ExtensionContent(_Struct):
    """Mixin for the content of a known extension type (RFC 9420 section 13)."""

    __slots__ = ()
    extension_type: ClassVar[ExtensionType]

    def to_extension(self) -> Extension:
        return Extension(self.extension_type, self.to_bytes())

    @classmethod
    def from_extension(cls, ext: Extension) -> Self:
        """Parse ``ext.extension_data``; ValueError if the type is wrong."""
        if ext.extension_type != cls.extension_type:
            raise ValueError(
                f"extension type {ext.extension_type} is not {cls.extension_type.name}"
            )
        return cls.from_bytes(ext.extension_data)


@dataclass(frozen=True, slots=True)
class ApplicationId(_ExtensionContent):
    """``opaque application_id<V>`` leaf-node extension (RFC 9420 section 5.3.3)."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.application_id
    application_id: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.application_id)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class RequiredCapabilities(_ExtensionContent):
    """Group-context extension (RFC 9420 section 11.1); values are raw uint16."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.required_capabilities
    extension_types: tuple[int, ...] = ()
    proposal_types: tuple[int, ...] = ()
    credential_types: tuple[int, ...] = ()

    def encode(self, w: Writer) -> None:
        _write_u16s(w, self.extension_types)
        _write_u16s(w, self.proposal_types)
        _write_u16s(w, self.credential_types)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(_read_u16s(r), _read_u16s(r), _read_u16s(r))


@dataclass(frozen=True, slots=True)
class ExternalPub(_ExtensionContent):
    """GroupInfo extension for external joins (RFC 9420 section 12.4.3.2)."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.external_pub
    external_pub: HPKEPublicKey

    def encode(self, w: Writer) -> None:
        w.opaque(self.external_pub)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class ExternalSender(_Struct):
    """One entry of the ``external_senders`` extension (RFC 9420 section 12.1.8.1)."""

    signature_key: SignaturePublicKey
    credential: Credential

    def encode(self, w: Writer) -> None:
        w.opaque(self.signature_key)
        self.credential.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.opaque(), Credential.decode(r))


@dataclass(frozen=True, slots=True)
class ExternalSenders(_ExtensionContent):
    """``ExternalSender external_senders<V>`` (RFC 9420 section 12.1.8.1)."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.external_senders
    senders: tuple[ExternalSender, ...]

    def encode(self, w: Writer) -> None:
        _write_structs(w, self.senders)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(ExternalSender.decode)))


# --------------------------------------------------------------------------
# Ratchet tree nodes (RFC 9420 sections 7.1, 7.2, 7.6, 7.8, 12.4.3.3)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParentNode(_Struct):
    """RFC 9420 section 7.1."""

    encryption_key: HPKEPublicKey
    parent_hash: bytes
    unmerged_leaves: tuple[int, ...]

    def encode(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.opaque(self.parent_hash)
        w.opaque(_pack("I", self.unmerged_leaves))

    @classmethod
    def decode(cls, r: Reader) -> Self:
        key = r.opaque()
        parent_hash = r.opaque()
        data = r.opaque()
        n, rest = divmod(len(data), 4)
        if rest:
            raise DecodeError("ParentNode.unmerged_leaves length is not a multiple of 4")
        return cls(key, parent_hash, struct.unpack(f">{n}I", data))


@dataclass(frozen=True, slots=True)
class LeafNode(_Struct):
    """RFC 9420 section 7.2.

    ``lifetime`` is present iff the source is ``key_package``; ``parent_hash``
    iff it is ``commit``. :meth:`tbs` gives the signed LeafNodeTBS bytes.
    """

    encryption_key: HPKEPublicKey
    signature_key: SignaturePublicKey
    credential: Credential
    capabilities: Capabilities
    leaf_node_source: LeafNodeSource
    lifetime: Lifetime | None = None
    parent_hash: bytes | None = None
    extensions: tuple[Extension, ...] = ()
    signature: bytes = b""

    def _encode_content(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.opaque(self.signature_key)
        self.credential.encode(w)
        self.capabilities.encode(w)
        src = self.leaf_node_source
        w.u8(src)
        if src == LeafNodeSource.key_package:
            if self.lifetime is None or self.parent_hash is not None:
                raise ValueError("key_package leaf node needs a lifetime and no parent_hash")
            self.lifetime.encode(w)
        elif src == LeafNodeSource.commit:
            if self.parent_hash is None or self.lifetime is not None:
                raise ValueError("commit leaf node needs a parent_hash and no lifetime")
            w.opaque(self.parent_hash)
        elif src == LeafNodeSource.update:
            if self.lifetime is not None or self.parent_hash is not None:
                raise ValueError("update leaf node carries neither lifetime nor parent_hash")
        else:
            raise ValueError(f"invalid leaf_node_source {src}")
        _write_structs(w, self.extensions)

    def encode(self, w: Writer) -> None:
        self._encode_content(w)
        w.opaque(self.signature)

    def tbs(self, group_id: bytes | None = None, leaf_index: int | None = None) -> bytes:
        """LeafNodeTBS (RFC 9420 section 7.2), the content signed with label "LeafNodeTBS".

        ``group_id`` and ``leaf_index`` are required for sources ``update`` and
        ``commit`` and ignored for ``key_package``.
        """
        w = Writer()
        self._encode_content(w)
        if self.leaf_node_source != LeafNodeSource.key_package:
            if group_id is None or leaf_index is None:
                raise ValueError("LeafNodeTBS for update/commit needs group_id and leaf_index")
            w.opaque(group_id)
            w.u32(leaf_index)
        return w.finish()

    @classmethod
    def decode(cls, r: Reader) -> Self:
        encryption_key = r.opaque()
        signature_key = r.opaque()
        credential = Credential.decode(r)
        capabilities = Capabilities.decode(r)
        src = _closed(LeafNodeSource, r.u8(), "LeafNode.leaf_node_source")
        lifetime: Lifetime | None = None
        parent_hash: bytes | None = None
        if src is LeafNodeSource.key_package:
            lifetime = Lifetime.decode(r)
        elif src is LeafNodeSource.commit:
            parent_hash = r.opaque()
        extensions = _read_extensions(r)
        signature = r.opaque()
        return cls(
            encryption_key,
            signature_key,
            credential,
            capabilities,
            src,
            lifetime,
            parent_hash,
            extensions,
            signature,
        )


@dataclass(frozen=True, slots=True)
class Node(_Struct):
    """A non-blank ratchet-tree node (RFC 9420 section 12.4.3.3)."""

    value: LeafNode | ParentNode

    @property
    def node_type(self) -> NodeType:
        return NodeType.leaf if isinstance(self.value, LeafNode) else NodeType.parent

    @property
    def leaf_node(self) -> LeafNode | None:
        return self.value if isinstance(self.value, LeafNode) else None

    @property
    def parent_node(self) -> ParentNode | None:
        return self.value if isinstance(self.value, ParentNode) else None

    def encode(self, w: Writer) -> None:
        if isinstance(self.value, LeafNode):
            w.u8(NodeType.leaf)
        else:
            w.u8(NodeType.parent)
        self.value.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        t = r.u8()
        if t == NodeType.leaf:
            return cls(LeafNode.decode(r))
        if t == NodeType.parent:
            return cls(ParentNode.decode(r))
        raise DecodeError(f"invalid Node.node_type: unknown value {t}")


def _decode_optional_node(r: Reader) -> Node | None:
    return r.optional(Node.decode)


@dataclass(frozen=True, slots=True)
class RatchetTree(_ExtensionContent):
    """``optional<Node> ratchet_tree<V>`` (RFC 9420 section 12.4.3.3).

    ``nodes`` is in array (in-order) layout, ``None`` for blank nodes. Decoding
    checks what the serialization itself guarantees: the list is non-empty, the
    last node is non-blank, leaves sit at even and parents at odd indices.
    The receiver still has to pad the tree to 2^(d+1)-1 nodes.
    """

    extension_type: ClassVar[ExtensionType] = ExtensionType.ratchet_tree
    nodes: tuple[Node | None, ...]

    @classmethod
    def from_nodes(cls, nodes: Iterable[Node | None]) -> RatchetTree:
        """Build from a full array, dropping trailing blank nodes as the RFC requires."""
        out = list(nodes)
        while out and out[-1] is None:
            out.pop()
        return cls(tuple(out))

    def encode(self, w: Writer) -> None:
        if not self.nodes or self.nodes[-1] is None:
            raise ValueError("ratchet_tree must be non-empty and end with a non-blank node")
        inner = Writer()
        for node in self.nodes:
            if node is None:
                inner.u8(0)
            else:
                inner.u8(1)
                node.encode(inner)
        w.opaque(inner.finish())

    @classmethod
    def decode(cls, r: Reader) -> Self:
        nodes = tuple(r.vector(_decode_optional_node))
        if not nodes:
            raise DecodeError("ratchet_tree is empty")
        if nodes[-1] is None:
            raise DecodeError("ratchet_tree ends with a blank node")
        for i, node in enumerate(nodes):
            if node is not None and isinstance(node.value, LeafNode) != (i % 2 == 0):
                kind = "leaf" if i % 2 == 0 else "parent"
                raise DecodeError(f"ratchet_tree node {i} must be a {kind} node")
        return cls(nodes)


def leaf_tree_hash_input(leaf_index: int, leaf_node: LeafNode | None) -> bytes:
    """TreeHashInput for a leaf: node_type + LeafNodeHashInput (RFC 9420 section 7.8)."""
    w = Writer()
    w.u8(NodeType.leaf)
    w.u32(leaf_index)
    if leaf_node is None:
        w.u8(0)
    else:
        w.u8(1)
        leaf_node.encode(w)
    return w.finish()


def parent_tree_hash_input(
    parent_node: ParentNode | None, left_hash: bytes, right_hash: bytes
) -> bytes:
    """TreeHashInput for a parent: node_type + ParentNodeHashInput (RFC 9420 section 7.8)."""
    w = Writer()
    w.u8(NodeType.parent)
    if parent_node is None:
        w.u8(0)
    else:
        w.u8(1)
        parent_node.encode(w)
    w.opaque(left_hash)
    w.opaque(right_hash)
    return w.finish()


@dataclass(frozen=True, slots=True)
class ParentHashInput(_Struct):
    """RFC 9420 section 7.9."""

    encryption_key: HPKEPublicKey
    parent_hash: bytes
    original_sibling_tree_hash: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        w.opaque(self.parent_hash)
        w.opaque(self.original_sibling_tree_hash)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.opaque(), r.opaque())


@dataclass(frozen=True, slots=True)
class HPKECiphertext(_Struct):
    """RFC 9420 section 7.6."""

    kem_output: bytes
    ciphertext: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.kem_output)
        w.opaque(self.ciphertext)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.opaque())


@dataclass(frozen=True, slots=True)
class UpdatePathNode(_Struct):
    """RFC 9420 section 7.6."""

    encryption_key: HPKEPublicKey
    encrypted_path_secret: tuple[HPKECiphertext, ...]

    def encode(self, w: Writer) -> None:
        w.opaque(self.encryption_key)
        _write_structs(w, self.encrypted_path_secret)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.opaque(), tuple(r.vector(HPKECiphertext.decode)))


@dataclass(frozen=True, slots=True)
class UpdatePath(_Struct):
    """RFC 9420 section 7.6."""

    leaf_node: LeafNode
    nodes: tuple[UpdatePathNode, ...]

    def encode(self, w: Writer) -> None:
        self.leaf_node.encode(w)
        _write_structs(w, self.nodes)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(LeafNode.decode(r), tuple(r.vector(UpdatePathNode.decode)))


# --------------------------------------------------------------------------
# Key packages and pre-shared keys (RFC 9420 sections 10, 8.4)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyPackage(_Struct):
    """RFC 9420 section 10. :meth:`tbs` gives the signed KeyPackageTBS bytes.

    Only ``mls10`` is accepted for ``version`` when decoding.
    """

    version: ProtocolVersion
    cipher_suite: int
    init_key: HPKEPublicKey
    leaf_node: LeafNode
    extensions: tuple[Extension, ...] = ()
    signature: bytes = b""

    def _encode_content(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.cipher_suite)
        w.opaque(self.init_key)
        self.leaf_node.encode(w)
        _write_structs(w, self.extensions)

    def encode(self, w: Writer) -> None:
        self._encode_content(w)
        w.opaque(self.signature)

    def tbs(self) -> bytes:
        """KeyPackageTBS (RFC 9420 section 10), signed with label "KeyPackageTBS"."""
        w = Writer()
        self._encode_content(w)
        return w.finish()

    @classmethod
    def decode(cls, r: Reader) -> Self:
        version = _closed(ProtocolVersion, r.u16(), "KeyPackage.version")
        return cls(
            version,
            r.u16(),
            r.opaque(),
            LeafNode.decode(r),
            _read_extensions(r),
            r.opaque(),
        )


@dataclass(frozen=True, slots=True)
class PreSharedKeyID(_Struct):
    """RFC 9420 section 8.4. Use :meth:`external` / :meth:`resumption` to build.

    ``psk_id`` is meaningful for external PSKs; ``usage``, ``psk_group_id`` and
    ``psk_epoch`` for resumption PSKs.
    """

    psktype: PSKType
    psk_nonce: bytes
    psk_id: bytes = b""
    usage: ResumptionPSKUsage | None = None
    psk_group_id: bytes = b""
    psk_epoch: int = 0

    @classmethod
    def external(cls, psk_id: bytes, psk_nonce: bytes) -> PreSharedKeyID:
        return cls(PSKType.external, psk_nonce, psk_id=psk_id)

    @classmethod
    def resumption(
        cls, usage: ResumptionPSKUsage, psk_group_id: bytes, psk_epoch: int, psk_nonce: bytes
    ) -> PreSharedKeyID:
        return cls(
            PSKType.resumption,
            psk_nonce,
            usage=usage,
            psk_group_id=psk_group_id,
            psk_epoch=psk_epoch,
        )

    def encode(self, w: Writer) -> None:
        w.u8(self.psktype)
        if self.psktype == PSKType.external:
            w.opaque(self.psk_id)
        elif self.psktype == PSKType.resumption:
            if self.usage is None:
                raise ValueError("resumption PreSharedKeyID needs a usage")
            w.u8(self.usage)
            w.opaque(self.psk_group_id)
            w.u64(self.psk_epoch)
        else:
            raise ValueError(f"invalid psktype {self.psktype}")
        w.opaque(self.psk_nonce)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        t = _closed(PSKType, r.u8(), "PreSharedKeyID.psktype")
        if t is PSKType.external:
            psk_id = r.opaque()
            return cls(t, r.opaque(), psk_id=psk_id)
        usage = _closed(ResumptionPSKUsage, r.u8(), "PreSharedKeyID.usage")
        group_id = r.opaque()
        epoch = r.u64()
        return cls(t, r.opaque(), usage=usage, psk_group_id=group_id, psk_epoch=epoch)


@dataclass(frozen=True, slots=True)
class PSKLabel(_Struct):
    """Input to the "derived psk" expansion (RFC 9420 section 8.4)."""

    id: PreSharedKeyID
    index: int
    count: int

    def encode(self, w: Writer) -> None:
        self.id.encode(w)
        w.u16(self.index)
        w.u16(self.count)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(PreSharedKeyID.decode(r), r.u16(), r.u16())


# --------------------------------------------------------------------------
# Proposals and commits (RFC 9420 section 12)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Add(_Struct):
    """RFC 9420 section 12.1.1."""

    proposal_type: ClassVar[ProposalType] = ProposalType.add
    key_package: KeyPackage

    def encode(self, w: Writer) -> None:
        self.key_package.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(KeyPackage.decode(r))


@dataclass(frozen=True, slots=True)
class Update(_Struct):
    """RFC 9420 section 12.1.2."""

    proposal_type: ClassVar[ProposalType] = ProposalType.update
    leaf_node: LeafNode

    def encode(self, w: Writer) -> None:
        self.leaf_node.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(LeafNode.decode(r))


@dataclass(frozen=True, slots=True)
class Remove(_Struct):
    """RFC 9420 section 12.1.3."""

    proposal_type: ClassVar[ProposalType] = ProposalType.remove
    removed: int

    def encode(self, w: Writer) -> None:
        w.u32(self.removed)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.u32())


@dataclass(frozen=True, slots=True)
class PreSharedKey(_Struct):
    """RFC 9420 section 12.1.4."""

    proposal_type: ClassVar[ProposalType] = ProposalType.psk
    psk: PreSharedKeyID

    def encode(self, w: Writer) -> None:
        self.psk.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(PreSharedKeyID.decode(r))


@dataclass(frozen=True, slots=True)
class ReInit(_Struct):
    """RFC 9420 section 12.1.5. ``version`` is a raw uint16 (may name a future version)."""

    proposal_type: ClassVar[ProposalType] = ProposalType.reinit
    group_id: bytes
    version: int
    cipher_suite: int
    extensions: tuple[Extension, ...] = ()

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u16(self.version)
        w.u16(self.cipher_suite)
        _write_structs(w, self.extensions)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        group_id = r.opaque()
        version = r.u16()
        version = ProtocolVersion(version) if version == ProtocolVersion.mls10 else version
        return cls(group_id, version, r.u16(), _read_extensions(r))


@dataclass(frozen=True, slots=True)
class ExternalInit(_Struct):
    """RFC 9420 section 12.1.6."""

    proposal_type: ClassVar[ProposalType] = ProposalType.external_init
    kem_output: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.kem_output)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class GroupContextExtensions(_Struct):
    """RFC 9420 section 12.1.7."""

    proposal_type: ClassVar[ProposalType] = ProposalType.group_context_extensions
    extensions: tuple[Extension, ...]

    def encode(self, w: Writer) -> None:
        _write_structs(w, self.extensions)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(_read_extensions(r))


Proposal: TypeAlias = (
    Add | Update | Remove | PreSharedKey | ReInit | ExternalInit | GroupContextExtensions
)
"""The ``Proposal`` struct (RFC 9420 section 12.1): one of the seven default proposal bodies.

Encode/decode the tagged form with :func:`encode_proposal` / :func:`decode_proposal`;
each body class's own ``encode``/``decode`` handle the untagged body.
"""

PROPOSAL_CLASSES: dict[ProposalType, type[Proposal]] = {
    cls.proposal_type: cls
    for cls in (Add, Update, Remove, PreSharedKey, ReInit, ExternalInit, GroupContextExtensions)
}


def encode_proposal(w: Writer, proposal: Proposal) -> None:
    """``Proposal``: proposal_type then the body (RFC 9420 section 12.1)."""
    w.u16(proposal.proposal_type)
    proposal.encode(w)


def decode_proposal(r: Reader) -> Proposal:
    """Decode a tagged ``Proposal``; unknown proposal types raise DecodeError."""
    t = r.u16()
    if 0 < t <= 7:
        return PROPOSAL_CLASSES[ProposalType(t)].decode(r)
    raise DecodeError(f"unsupported Proposal.proposal_type {t:#06x}")


def proposal_to_bytes(proposal: Proposal) -> bytes:
    w = Writer()
    encode_proposal(w, proposal)
    return w.finish()


def proposal_from_bytes(data: bytes) -> Proposal:
    return decode_all(data, decode_proposal, "Proposal")


@dataclass(frozen=True, slots=True)
class ProposalOrRef(_Struct):
    """RFC 9420 section 12.4: exactly one of ``proposal`` / ``reference`` is set."""

    proposal: Proposal | None = None
    reference: HashReference | None = None

    @classmethod
    def by_value(cls, proposal: Proposal) -> ProposalOrRef:
        return cls(proposal=proposal)

    @classmethod
    def by_reference(cls, reference: HashReference) -> ProposalOrRef:
        return cls(reference=reference)

    @property
    def type(self) -> ProposalOrRefType:
        if self.proposal is not None:
            return ProposalOrRefType.proposal
        return ProposalOrRefType.reference

    def encode(self, w: Writer) -> None:
        if (self.proposal is None) == (self.reference is None):
            raise ValueError("ProposalOrRef needs exactly one of proposal and reference")
        if self.proposal is not None:
            w.u8(ProposalOrRefType.proposal)
            encode_proposal(w, self.proposal)
        else:
            assert self.reference is not None
            w.u8(ProposalOrRefType.reference)
            w.opaque(self.reference)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        t = r.u8()
        if t == ProposalOrRefType.proposal:
            return cls(proposal=decode_proposal(r))
        if t == ProposalOrRefType.reference:
            return cls(reference=r.opaque())
        raise DecodeError(f"invalid ProposalOrRef.type: unknown value {t}")


@dataclass(frozen=True, slots=True)
class Commit(_Struct):
    """RFC 9420 section 12.4."""

    proposals: tuple[ProposalOrRef, ...] = ()
    path: UpdatePath | None = None

    def encode(self, w: Writer) -> None:
        _write_structs(w, self.proposals)
        if self.path is None:
            w.u8(0)
        else:
            w.u8(1)
            self.path.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(ProposalOrRef.decode)), r.optional(UpdatePath.decode))


# --------------------------------------------------------------------------
# Group context, group info, welcome (RFC 9420 sections 8.1, 12.4.3)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupContext(_Struct):
    """RFC 9420 section 8.1 (only ``mls10`` is accepted when decoding)."""

    version: ProtocolVersion
    cipher_suite: int
    group_id: bytes
    epoch: int
    tree_hash: bytes
    confirmed_transcript_hash: bytes
    extensions: tuple[Extension, ...] = ()

    def encode(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.cipher_suite)
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.opaque(self.tree_hash)
        w.opaque(self.confirmed_transcript_hash)
        _write_structs(w, self.extensions)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        version = _closed(ProtocolVersion, r.u16(), "GroupContext.version")
        return cls(
            version,
            r.u16(),
            r.opaque(),
            r.u64(),
            r.opaque(),
            r.opaque(),
            _read_extensions(r),
        )


@dataclass(frozen=True, slots=True)
class GroupInfo(_Struct):
    """RFC 9420 section 12.4.3. :meth:`tbs` gives the signed GroupInfoTBS bytes."""

    group_context: GroupContext
    extensions: tuple[Extension, ...]
    confirmation_tag: MAC
    signer: int
    signature: bytes = b""

    def _encode_content(self, w: Writer) -> None:
        self.group_context.encode(w)
        _write_structs(w, self.extensions)
        w.opaque(self.confirmation_tag)
        w.u32(self.signer)

    def encode(self, w: Writer) -> None:
        self._encode_content(w)
        w.opaque(self.signature)

    def tbs(self) -> bytes:
        """GroupInfoTBS (RFC 9420 section 12.4.3), signed with label "GroupInfoTBS"."""
        w = Writer()
        self._encode_content(w)
        return w.finish()

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(
            GroupContext.decode(r),
            _read_extensions(r),
            r.opaque(),
            r.u32(),
            r.opaque(),
        )


@dataclass(frozen=True, slots=True)
class GroupSecrets(_Struct):
    """RFC 9420 section 12.4.3.1; ``path_secret`` is the PathSecret's bytes or None."""

    joiner_secret: bytes
    path_secret: bytes | None
    psks: tuple[PreSharedKeyID, ...] = ()

    def encode(self, w: Writer) -> None:
        w.opaque(self.joiner_secret)
        if self.path_secret is None:
            w.u8(0)
        else:
            w.u8(1)
            w.opaque(self.path_secret)
        _write_structs(w, self.psks)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(
            r.opaque(),
            r.optional(Reader.opaque),
            tuple(r.vector(PreSharedKeyID.decode)),
        )


@dataclass(frozen=True, slots=True)
class EncryptedGroupSecrets(_Struct):
    """RFC 9420 section 12.4.3.1."""

    new_member: HashReference
    encrypted_group_secrets: HPKECiphertext

    def encode(self, w: Writer) -> None:
        w.opaque(self.new_member)
        self.encrypted_group_secrets.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.opaque(), HPKECiphertext.decode(r))


@dataclass(frozen=True, slots=True)
class Welcome(_Struct):
    """RFC 9420 section 12.4.3.1."""

    cipher_suite: int
    secrets: tuple[EncryptedGroupSecrets, ...]
    encrypted_group_info: bytes

    def secrets_for(self, key_package_ref: HashReference) -> EncryptedGroupSecrets | None:
        """The entry addressed to ``key_package_ref``, or None."""
        for entry in self.secrets:
            if entry.new_member == key_package_ref:
                return entry
        return None

    def encode(self, w: Writer) -> None:
        w.u16(self.cipher_suite)
        _write_structs(w, self.secrets)
        w.opaque(self.encrypted_group_info)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.u16(), tuple(r.vector(EncryptedGroupSecrets.decode)), r.opaque())


# --------------------------------------------------------------------------
# Message framing (RFC 9420 section 6)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sender(_Struct):
    """RFC 9420 section 6. ``index`` is the leaf index (member), the external-senders
    index (external), and None for the two new-member types."""

    sender_type: SenderType
    index: int | None = None

    @classmethod
    def member(cls, leaf_index: int) -> Sender:
        return cls(SenderType.member, leaf_index)

    @classmethod
    def external(cls, sender_index: int) -> Sender:
        return cls(SenderType.external, sender_index)

    @classmethod
    def new_member_proposal(cls) -> Sender:
        return cls(SenderType.new_member_proposal)

    @classmethod
    def new_member_commit(cls) -> Sender:
        return cls(SenderType.new_member_commit)

    def encode(self, w: Writer) -> None:
        t = self.sender_type
        if t == SenderType.member or t == SenderType.external:
            if self.index is None:
                raise ValueError(f"{t.name} sender needs an index")
            w.u8(t)
            w.u32(self.index)
        elif t == SenderType.new_member_proposal or t == SenderType.new_member_commit:
            if self.index is not None:
                raise ValueError(f"{t.name} sender carries no index")
            w.u8(t)
        else:
            raise ValueError(f"invalid sender_type {t}")

    @classmethod
    def decode(cls, r: Reader) -> Self:
        t = _closed(SenderType, r.u8(), "Sender.sender_type")
        if t is SenderType.member or t is SenderType.external:
            return cls(t, r.u32())
        return cls(t)


Content: TypeAlias = bytes | Proposal | Commit
"""Framed content: application data (bytes), a Proposal or a Commit (RFC 9420 section 6)."""


def content_type_of(content: Content) -> ContentType:
    """The ContentType that a content value is framed with."""
    if isinstance(content, bytes):
        return ContentType.application
    if isinstance(content, Commit):
        return ContentType.commit
    return ContentType.proposal


def _encode_content(w: Writer, content: Content) -> None:
    if isinstance(content, bytes):
        w.opaque(content)
    elif isinstance(content, Commit):
        content.encode(w)
    else:
        encode_proposal(w, content)


def _decode_content(r: Reader, content_type: ContentType) -> Content:
    if content_type is ContentType.application:
        return r.opaque()
    if content_type is ContentType.proposal:
        return decode_proposal(r)
    return Commit.decode(r)


@dataclass(frozen=True, slots=True)
class FramedContent(_Struct):
    """RFC 9420 section 6. ``content_type`` is derived from ``content``."""

    group_id: bytes
    epoch: int
    sender: Sender
    authenticated_data: bytes
    content: Content

    @property
    def content_type(self) -> ContentType:
        return content_type_of(self.content)

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        self.sender.encode(w)
        w.opaque(self.authenticated_data)
        w.u8(content_type_of(self.content))
        _encode_content(w, self.content)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        group_id = r.opaque()
        epoch = r.u64()
        sender = Sender.decode(r)
        authenticated_data = r.opaque()
        ct = _closed(ContentType, r.u8(), "FramedContent.content_type")
        return cls(group_id, epoch, sender, authenticated_data, _decode_content(r, ct))


@dataclass(frozen=True, slots=True)
class FramedContentAuthData(_Encodable):
    """RFC 9420 section 6.1: ``confirmation_tag`` is present iff the content is a commit.

    Decoding needs the content type: ``decode(r, content_type)``.
    """

    signature: bytes
    confirmation_tag: MAC | None = None

    def encode(self, w: Writer) -> None:
        w.opaque(self.signature)
        if self.confirmation_tag is not None:
            w.opaque(self.confirmation_tag)

    def check_content_type(self, content_type: ContentType) -> None:
        """ValueError unless the tag's presence matches ``content_type``."""
        if (self.confirmation_tag is not None) != (content_type == ContentType.commit):
            raise ValueError("confirmation_tag must be present exactly for commits")

    @classmethod
    def decode(cls, r: Reader, content_type: ContentType) -> Self:
        signature = r.opaque()
        if content_type == ContentType.commit:
            return cls(signature, r.opaque())
        return cls(signature)

    @classmethod
    def from_bytes(cls, data: bytes, content_type: ContentType) -> Self:
        return decode_all(data, lambda r: cls.decode(r, content_type), cls.__name__)


def _sender_has_context(sender: Sender) -> bool:
    t = sender.sender_type
    return t == SenderType.member or t == SenderType.new_member_commit


def framed_content_tbs(
    wire_format: WireFormat, content: FramedContent, context: GroupContext | bytes | None
) -> bytes:
    """FramedContentTBS (RFC 9420 section 6.1), signed with label "FramedContentTBS".

    ``context`` (a GroupContext or its encoding) is required when the sender is
    ``member`` or ``new_member_commit`` and ignored for the other sender types,
    so callers can always pass the current context.
    """
    w = Writer()
    w.u16(ProtocolVersion.mls10)
    w.u16(wire_format)
    content.encode(w)
    if _sender_has_context(content.sender):
        if context is None:
            raise ValueError("FramedContentTBS for this sender needs the GroupContext")
        if isinstance(context, bytes):
            w.raw(context)
        else:
            context.encode(w)
    return w.finish()


def authenticated_content_tbm(content_tbs: bytes, auth: FramedContentAuthData) -> bytes:
    """AuthenticatedContentTBM (RFC 9420 section 6.2): the membership-tag MAC input."""
    w = Writer()
    w.raw(content_tbs)
    auth.encode(w)
    return w.finish()


def _check_framing_wire_format(value: int, field: str) -> WireFormat:
    wf = _closed(WireFormat, value, field)
    if wf not in (WireFormat.mls_public_message, WireFormat.mls_private_message):
        raise DecodeError(f"invalid {field}: {wf.name} does not frame content")
    return wf


@dataclass(frozen=True, slots=True)
class ConfirmedTranscriptHashInput(_Struct):
    """RFC 9420 section 8.2 (``content`` must be a commit)."""

    wire_format: WireFormat
    content: FramedContent
    signature: bytes

    def encode(self, w: Writer) -> None:
        if not isinstance(self.content.content, Commit):
            raise ValueError("ConfirmedTranscriptHashInput content must be a commit")
        w.u16(self.wire_format)
        self.content.encode(w)
        w.opaque(self.signature)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        wf = _check_framing_wire_format(r.u16(), "ConfirmedTranscriptHashInput.wire_format")
        content = FramedContent.decode(r)
        if not isinstance(content.content, Commit):
            raise DecodeError("ConfirmedTranscriptHashInput content is not a commit")
        return cls(wf, content, r.opaque())


@dataclass(frozen=True, slots=True)
class InterimTranscriptHashInput(_Struct):
    """RFC 9420 section 8.2."""

    confirmation_tag: MAC

    def encode(self, w: Writer) -> None:
        w.opaque(self.confirmation_tag)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class AuthenticatedContent(_Struct):
    """RFC 9420 section 6; its encoding is also the ProposalRef hash input (5.2)."""

    wire_format: WireFormat
    content: FramedContent
    auth: FramedContentAuthData

    def encode(self, w: Writer) -> None:
        self.auth.check_content_type(self.content.content_type)
        w.u16(self.wire_format)
        self.content.encode(w)
        self.auth.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        wf = _check_framing_wire_format(r.u16(), "AuthenticatedContent.wire_format")
        content = FramedContent.decode(r)
        return cls(wf, content, FramedContentAuthData.decode(r, content.content_type))

    def tbs(self, context: GroupContext | bytes | None) -> bytes:
        """FramedContentTBS for this content; see :func:`framed_content_tbs`."""
        return framed_content_tbs(self.wire_format, self.content, context)

    def confirmed_transcript_hash_input(self) -> ConfirmedTranscriptHashInput:
        return ConfirmedTranscriptHashInput(self.wire_format, self.content, self.auth.signature)

    def interim_transcript_hash_input(self) -> InterimTranscriptHashInput:
        if self.auth.confirmation_tag is None:
            raise ValueError("only commits have an interim transcript hash input")
        return InterimTranscriptHashInput(self.auth.confirmation_tag)


@dataclass(frozen=True, slots=True)
class PublicMessage(_Struct):
    """RFC 9420 section 6.2: ``membership_tag`` is present iff the sender is a member."""

    content: FramedContent
    auth: FramedContentAuthData
    membership_tag: MAC | None = None

    def encode(self, w: Writer) -> None:
        self.auth.check_content_type(self.content.content_type)
        if (self.membership_tag is not None) != (
            self.content.sender.sender_type == SenderType.member
        ):
            raise ValueError("membership_tag must be present exactly for member senders")
        self.content.encode(w)
        self.auth.encode(w)
        if self.membership_tag is not None:
            w.opaque(self.membership_tag)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        content = FramedContent.decode(r)
        auth = FramedContentAuthData.decode(r, content.content_type)
        tag = r.opaque() if content.sender.sender_type is SenderType.member else None
        return cls(content, auth, tag)

    def authenticated_content(self) -> AuthenticatedContent:
        return AuthenticatedContent(WireFormat.mls_public_message, self.content, self.auth)

    def tbm(self, context: GroupContext | bytes) -> bytes:
        """AuthenticatedContentTBM, the input to the membership-tag MAC (section 6.2)."""
        tbs = framed_content_tbs(WireFormat.mls_public_message, self.content, context)
        return authenticated_content_tbm(tbs, self.auth)


@dataclass(frozen=True, slots=True)
class PrivateMessage(_Struct):
    """RFC 9420 section 6.3."""

    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes
    encrypted_sender_data: bytes
    ciphertext: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.u8(self.content_type)
        w.opaque(self.authenticated_data)
        w.opaque(self.encrypted_sender_data)
        w.opaque(self.ciphertext)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        group_id = r.opaque()
        epoch = r.u64()
        ct = _closed(ContentType, r.u8(), "PrivateMessage.content_type")
        return cls(group_id, epoch, ct, r.opaque(), r.opaque(), r.opaque())

    def content_aad(self) -> PrivateContentAAD:
        return PrivateContentAAD(
            self.group_id, self.epoch, self.content_type, self.authenticated_data
        )

    def sender_data_aad(self) -> SenderDataAAD:
        return SenderDataAAD(self.group_id, self.epoch, self.content_type)


@dataclass(frozen=True, slots=True)
class PrivateMessageContent(_Encodable):
    """RFC 9420 section 6.3.1: content, auth, then ``padding`` zero octets.

    Decoding needs the content type (``decode(r, content_type)``), consumes the
    rest of the reader and rejects non-zero padding.
    """

    content: Content
    auth: FramedContentAuthData
    padding: int = 0

    @property
    def content_type(self) -> ContentType:
        return content_type_of(self.content)

    def encode(self, w: Writer) -> None:
        self.auth.check_content_type(self.content_type)
        if self.padding < 0:
            raise ValueError("padding length must be non-negative")
        _encode_content(w, self.content)
        self.auth.encode(w)
        w.raw(bytes(self.padding))

    @classmethod
    def decode(cls, r: Reader, content_type: ContentType) -> Self:
        content = _decode_content(r, content_type)
        auth = FramedContentAuthData.decode(r, content_type)
        padding = r.raw(r.remaining)
        if padding.count(0) != len(padding):
            raise DecodeError("PrivateMessageContent padding contains non-zero bytes")
        return cls(content, auth, len(padding))

    @classmethod
    def from_bytes(cls, data: bytes, content_type: ContentType) -> Self:
        return cls.decode(Reader(data), content_type)


@dataclass(frozen=True, slots=True)
class PrivateContentAAD(_Struct):
    """RFC 9420 section 6.3.1: AAD for the content encryption."""

    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.u8(self.content_type)
        w.opaque(self.authenticated_data)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        group_id = r.opaque()
        epoch = r.u64()
        ct = _closed(ContentType, r.u8(), "PrivateContentAAD.content_type")
        return cls(group_id, epoch, ct, r.opaque())


@dataclass(frozen=True, slots=True)
class SenderData(_Struct):
    """RFC 9420 section 6.3.2 (``reuse_guard`` is exactly 4 bytes)."""

    leaf_index: int
    generation: int
    reuse_guard: bytes

    def encode(self, w: Writer) -> None:
        if len(self.reuse_guard) != 4:
            raise ValueError("reuse_guard must be 4 bytes")
        w.u32(self.leaf_index)
        w.u32(self.generation)
        w.raw(self.reuse_guard)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.u32(), r.u32(), r.raw(4))


@dataclass(frozen=True, slots=True)
class SenderDataAAD(_Struct):
    """RFC 9420 section 6.3.2: AAD for the sender-data encryption."""

    group_id: bytes
    epoch: int
    content_type: ContentType

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.u8(self.content_type)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        group_id = r.opaque()
        epoch = r.u64()
        return cls(group_id, epoch, _closed(ContentType, r.u8(), "SenderDataAAD.content_type"))


MessageBody: TypeAlias = PublicMessage | PrivateMessage | Welcome | GroupInfo | KeyPackage
"""What an MLSMessage can carry (RFC 9420 section 6)."""

_WIRE_FORMAT_OF: dict[type[_Struct], WireFormat] = {
    PublicMessage: WireFormat.mls_public_message,
    PrivateMessage: WireFormat.mls_private_message,
    Welcome: WireFormat.mls_welcome,
    GroupInfo: WireFormat.mls_group_info,
    KeyPackage: WireFormat.mls_key_package,
}


@dataclass(frozen=True, slots=True)
class MLSMessage(_Struct):
    """RFC 9420 section 6: version (always mls10) and a body; ``wire_format`` is derived."""

    body: MessageBody

    @property
    def version(self) -> ProtocolVersion:
        return ProtocolVersion.mls10

    @property
    def wire_format(self) -> WireFormat:
        return _WIRE_FORMAT_OF[type(self.body)]

    def encode(self, w: Writer) -> None:
        w.u16(ProtocolVersion.mls10)
        w.u16(self.wire_format)
        self.body.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        _closed(ProtocolVersion, r.u16(), "MLSMessage.version")
        wf = _closed(WireFormat, r.u16(), "MLSMessage.wire_format")
        body: MessageBody
        if wf is WireFormat.mls_public_message:
            body = PublicMessage.decode(r)
        elif wf is WireFormat.mls_private_message:
            body = PrivateMessage.decode(r)
        elif wf is WireFormat.mls_welcome:
            body = Welcome.decode(r)
        elif wf is WireFormat.mls_group_info:
            body = GroupInfo.decode(r)
        else:
            body = KeyPackage.decode(r)
        return cls(body)
