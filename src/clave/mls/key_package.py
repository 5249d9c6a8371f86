"""KeyPackage creation and validation (RFC 9420 sections 10, 10.1).

:func:`create_key_package` builds and signs a KeyPackage for a :class:`Signer`
from an injected ``rng`` and ``now`` and returns it with its private keys;
:meth:`KeyPackageBundle.to_message_bytes` encodes it for the wire and
:func:`decode_key_package` reads it back.
:func:`validate_key_package` performs the checks of section 10.1 that need
no group state (plus the KeyPackage-relevant leaf node checks of section
7.3); each failure raises :class:`KeyPackageError` naming the check. Checks
that need the ratchet tree (uniqueness of keys, credential types in use) are
the group's, run through the optional ``hook``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import overload

from .ciphersuite import CipherSuite, Rng, get_suite
from .errors import CryptoError, KeyPackageError, MLSError, SignatureError, ValidationError
from .structs import (
    DEFAULT_EXTENSION_TYPES,
    DEFAULT_PROPOSAL_TYPES,
    Capabilities,
    Credential,
    Extension,
    GroupContext,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    MLSMessage,
    ProtocolVersion,
    RequiredCapabilities,
    find_extension,
)

__all__ = [
    "DEFAULT_LIFETIME",
    "Clock",
    "KeyPackageBundle",
    "KeyPackageHook",
    "Signer",
    "create_key_package",
    "decode_key_package",
    "key_package_ref",
    "suite_of",
    "validate_key_package",
    "validate_key_package_for_group",
]

DEFAULT_LIFETIME = 90 * 24 * 3600
"""Default validity of a new KeyPackage, in seconds."""

KEY_PACKAGE_LABEL = "KeyPackageTBS"
LEAF_NODE_LABEL = "LeafNodeTBS"
_MAX_U64 = (1 << 64) - 1

KeyPackageHook = Callable[[KeyPackage], None]
"""Extra validation (credential / group checks); raises an MLSError to reject."""

Clock = Callable[[], int]
"""The current time in Unix seconds (e.g. ``lambda: int(time.time())``)."""


@dataclass(frozen=True, slots=True)
class Signer:
    """A member's identity: credential and signature key pair (RFC 9420 section 5.3)."""

    credential: Credential
    signature_private_key: bytes

    @classmethod
    def generate(cls, suite: CipherSuite | int, credential: Credential, *, rng: Rng) -> Signer:
        """A Signer for ``credential`` with a fresh signature key pair of ``suite``."""
        signature_private_key, _ = suite_of(suite).generate_signature_key_pair(rng)
        return cls(credential, signature_private_key)

    def public_key(self, suite: CipherSuite) -> bytes:
        return suite.signature_public_key(self.signature_private_key)


def suite_of(suite: CipherSuite | int) -> CipherSuite:
    """A cipher suite given as an object or as its code point (RFC 9420 section 17.1)."""
    return suite if isinstance(suite, CipherSuite) else get_suite(suite)


@dataclass(frozen=True, slots=True)
class KeyPackageBundle:
    """A KeyPackage with the private keys its owner keeps (RFC 9420 section 10)."""

    key_package: KeyPackage
    init_priv: bytes
    encryption_priv: bytes
    signature_priv: bytes

    @property
    def ref(self) -> bytes:
        """The KeyPackageRef of :attr:`key_package` (RFC 9420 section 5.2)."""
        return key_package_ref(self.key_package)

    def to_message_bytes(self) -> bytes:
        """The KeyPackage as an encoded MLSMessage (RFC 9420 section 6): what a client
        publishes and what ``Group.commit(add=...)`` takes. No private key is included."""
        return MLSMessage(self.key_package).to_bytes()


def decode_key_package(data: bytes) -> KeyPackage:
    """A KeyPackage from its encoding, bare or in an MLSMessage (RFC 9420 sections 6, 10).

    Only decodes: validation against a group happens when it is added. Raises
    DecodeError on malformed bytes, ValidationError for an MLSMessage carrying
    something else.
    """
    try:
        msg = MLSMessage.from_bytes(bytes(data))
    except MLSError:
        return KeyPackage.from_bytes(bytes(data))
    if not isinstance(msg.body, KeyPackage):
        raise ValidationError(f"expected a KeyPackage, got a {msg.wire_format.name}")
    return msg.body


def key_package_ref(key_package: KeyPackage, suite: CipherSuite | None = None) -> bytes:
    """``MakeKeyPackageRef`` (RFC 9420 section 5.2), by default with the package's own suite."""
    s = get_suite(key_package.cipher_suite) if suite is None else suite
    return s.make_key_package_ref(key_package.to_bytes())


def _non_default(types: Iterable[int]) -> tuple[int, ...]:
    out: list[int] = []
    for t in types:
        if int(t) not in DEFAULT_EXTENSION_TYPES and int(t) not in out:
            out.append(int(t))
    return tuple(out)


@overload
def create_key_package(
    suite: CipherSuite | int,
    signer: Signer,
    /,
    *,
    rng: Rng,
    now: int | Clock,
    lifetime: int = DEFAULT_LIFETIME,
    not_before: int | None = None,
    capabilities: Capabilities | None = None,
    leaf_extensions: Sequence[Extension] = (),
    extensions: Sequence[Extension] = (),
) -> KeyPackageBundle: ...


@overload
def create_key_package(
    suite: CipherSuite | int,
    credential: Credential,
    /,
    *,
    rng: Rng,
    now: int | Clock,
    signature_priv: bytes | None = None,
    lifetime: int = DEFAULT_LIFETIME,
    not_before: int | None = None,
    capabilities: Capabilities | None = None,
    leaf_extensions: Sequence[Extension] = (),
    extensions: Sequence[Extension] = (),
) -> KeyPackageBundle: ...


def create_key_package(
    suite: CipherSuite | int,
    signer: Signer | Credential,
    /,
    *,
    rng: Rng,
    now: int | Clock,
    signature_priv: bytes | None = None,
    lifetime: int = DEFAULT_LIFETIME,
    not_before: int | None = None,
    capabilities: Capabilities | None = None,
    leaf_extensions: Sequence[Extension] = (),
    extensions: Sequence[Extension] = (),
) -> KeyPackageBundle:
    """Create and sign a KeyPackage (RFC 9420 sections 7.2, 10).

    ``suite`` is a :class:`CipherSuite` or its id; ``now`` is Unix seconds or a
    :data:`Clock` (read once). With a :class:`Signer` its key signs; with a bare
    :class:`Credential`, ``signature_priv`` does, or a fresh key pair if it is None.

    Draws from ``rng`` the init key pair, then the leaf encryption key pair,
    then (if no signature key is given) a signature key pair. The lifetime is
    ``[not_before or now, now + lifetime]``. Default capabilities list mls10,
    this suite, the credential's type and the non-default types of the given
    extensions. The result is checked with :func:`validate_key_package`.
    """
    suite = suite_of(suite)
    if isinstance(signer, Signer):
        if signature_priv is not None:
            raise TypeError("signature_priv is for a bare Credential; a Signer carries its key")
        credential, signature_priv = signer.credential, signer.signature_private_key
    else:
        credential = signer
    if callable(now):
        now = now()
    if lifetime <= 0:
        raise ValueError("lifetime must be positive")
    start = now if not_before is None else not_before
    if not 0 <= start <= now + lifetime <= _MAX_U64:
        raise ValueError("lifetime does not fit in uint64 seconds")
    if capabilities is None:
        capabilities = Capabilities(
            versions=(ProtocolVersion.mls10,),
            cipher_suites=(suite.id,),
            extensions=_non_default(e.extension_type for e in (*leaf_extensions, *extensions)),
            credentials=(credential.credential_type,),
        )
    listed_defaults = sorted(
        ({int(t) for t in capabilities.extensions} & DEFAULT_EXTENSION_TYPES)
        | ({int(t) for t in capabilities.proposals} & DEFAULT_PROPOSAL_TYPES)
    )
    if listed_defaults:
        raise ValueError(f"capabilities must not list default types {listed_defaults}")

    init_priv, init_pub = suite.generate_hpke_key_pair(rng)
    enc_priv, enc_pub = suite.generate_hpke_key_pair(rng)
    if signature_priv is None:
        signature_priv, sig_pub = suite.generate_signature_key_pair(rng)
    else:
        sig_pub = suite.signature_public_key(signature_priv)

    unsigned_leaf = LeafNode(
        encryption_key=enc_pub,
        signature_key=sig_pub,
        credential=credential,
        capabilities=capabilities,
        leaf_node_source=LeafNodeSource.key_package,
        lifetime=Lifetime(start, now + lifetime),
        extensions=tuple(leaf_extensions),
    )
    leaf = _with_leaf_signature(
        unsigned_leaf, suite.sign_with_label(signature_priv, LEAF_NODE_LABEL, unsigned_leaf.tbs())
    )
    unsigned = KeyPackage(ProtocolVersion.mls10, suite.id, init_pub, leaf, tuple(extensions))
    key_package = KeyPackage(
        unsigned.version,
        unsigned.cipher_suite,
        unsigned.init_key,
        unsigned.leaf_node,
        unsigned.extensions,
        suite.sign_with_label(signature_priv, KEY_PACKAGE_LABEL, unsigned.tbs()),
    )
    validate_key_package(key_package, cipher_suite=suite.id, now=max(now, start))
    return KeyPackageBundle(key_package, init_priv, enc_priv, signature_priv)


def _with_leaf_signature(leaf: LeafNode, signature: bytes) -> LeafNode:
    return LeafNode(
        leaf.encryption_key,
        leaf.signature_key,
        leaf.credential,
        leaf.capabilities,
        leaf.leaf_node_source,
        leaf.lifetime,
        leaf.parent_hash,
        leaf.extensions,
        signature,
    )


def validate_key_package(
    key_package: KeyPackage,
    *,
    cipher_suite: int,
    now: int,
    version: int = ProtocolVersion.mls10,
    required_capabilities: RequiredCapabilities | None = None,
    max_lifetime: int | None = None,
    check_key_package_extensions: bool = True,
    hook: KeyPackageHook | None = None,
) -> None:
    """Validate a received KeyPackage (RFC 9420 section 10.1; leaf checks of 7.3).

    Checks version and cipher suite against the group's, the key encodings,
    ``init_key != leaf_node.encryption_key``, the leaf node source, both
    signatures, the lifetime at ``now`` (and its total length against
    ``max_lifetime`` if given), that the capabilities list the group's version
    and suite and the leaf's credential type, that every non-default
    extension in ``leaf_node.extensions`` (and, per section 10, in
    ``extensions`` unless ``check_key_package_extensions`` is off) is listed
    in the capabilities, and ``required_capabilities``. Then runs ``hook``.
    Raises KeyPackageError.
    """
    kp = key_package
    leaf = kp.leaf_node
    if kp.version != version:
        raise KeyPackageError(f"KeyPackage version {int(kp.version)} is not the group's {version}")
    if kp.cipher_suite != cipher_suite:
        raise KeyPackageError(
            f"KeyPackage cipher suite {kp.cipher_suite} is not the group's {cipher_suite}"
        )
    try:
        suite = get_suite(kp.cipher_suite)
    except MLSError as exc:
        raise KeyPackageError(f"KeyPackage cipher suite unsupported: {exc}") from None
    if leaf.leaf_node_source is not LeafNodeSource.key_package:
        raise KeyPackageError(
            f"KeyPackage leaf_node_source is {leaf.leaf_node_source.name}, not key_package"
        )
    for what, check, value in (
        ("init_key", suite.validate_hpke_public_key, kp.init_key),
        ("leaf_node.encryption_key", suite.validate_hpke_public_key, leaf.encryption_key),
        ("leaf_node.signature_key", suite.validate_signature_public_key, leaf.signature_key),
    ):
        try:
            check(value)
        except CryptoError as exc:
            raise KeyPackageError(f"KeyPackage {what} is invalid: {exc}") from None
    if kp.init_key == leaf.encryption_key:
        raise KeyPackageError("KeyPackage init_key equals leaf_node.encryption_key")
    try:
        suite.verify_with_label(leaf.signature_key, LEAF_NODE_LABEL, leaf.tbs(), leaf.signature)
    except SignatureError:
        raise KeyPackageError("KeyPackage leaf node signature is invalid") from None
    try:
        suite.verify_with_label(leaf.signature_key, KEY_PACKAGE_LABEL, kp.tbs(), kp.signature)
    except SignatureError:
        raise KeyPackageError("KeyPackage signature is invalid") from None

    lifetime = leaf.lifetime
    if lifetime is None:  # pragma: no cover - the key_package source always carries one
        raise KeyPackageError("KeyPackage leaf node has no lifetime")
    if not lifetime.not_before <= now <= lifetime.not_after:
        raise KeyPackageError(
            f"KeyPackage lifetime [{lifetime.not_before}, {lifetime.not_after}] "
            f"does not include now={now}"
        )
    if max_lifetime is not None and lifetime.not_after - lifetime.not_before > max_lifetime:
        raise KeyPackageError(f"KeyPackage lifetime exceeds the maximum of {max_lifetime}s")

    caps = leaf.capabilities
    if version not in caps.versions:
        raise KeyPackageError(f"KeyPackage capabilities do not list version {version}")
    if cipher_suite not in caps.cipher_suites:
        raise KeyPackageError(f"KeyPackage capabilities do not list cipher suite {cipher_suite}")
    if leaf.credential.credential_type not in caps.credentials:
        raise KeyPackageError(
            f"KeyPackage capabilities do not list its credential type "
            f"{int(leaf.credential.credential_type)}"
        )
    _check_extensions_listed("leaf_node.extensions", leaf.extensions, caps)
    if check_key_package_extensions:
        _check_extensions_listed("extensions", kp.extensions, caps)
    if required_capabilities is not None:
        _check_required(required_capabilities, caps)
    if hook is not None:
        hook(kp)


def validate_key_package_for_group(
    key_package: KeyPackage,
    group_context: GroupContext,
    *,
    now: int,
    max_lifetime: int | None = None,
    check_key_package_extensions: bool = True,
    hook: KeyPackageHook | None = None,
) -> None:
    """:func:`validate_key_package` against a GroupContext (suite, version, required caps)."""
    required: RequiredCapabilities | None = None
    ext = find_extension(group_context.extensions, RequiredCapabilities.extension_type)
    if ext is not None:
        try:
            required = RequiredCapabilities.from_extension(ext)
        except MLSError as exc:
            raise KeyPackageError(f"group's required_capabilities is malformed: {exc}") from None
    validate_key_package(
        key_package,
        cipher_suite=group_context.cipher_suite,
        now=now,
        version=group_context.version,
        required_capabilities=required,
        max_lifetime=max_lifetime,
        check_key_package_extensions=check_key_package_extensions,
        hook=hook,
    )


def _check_extensions_listed(
    field: str, extensions: Sequence[Extension], caps: Capabilities
) -> None:
    for ext in extensions:
        t = int(ext.extension_type)
        if t not in DEFAULT_EXTENSION_TYPES and t not in caps.extensions:
            raise KeyPackageError(
                f"KeyPackage {field} has extension type {t:#06x} not listed in capabilities"
            )


def _check_required(required: RequiredCapabilities, caps: Capabilities) -> None:
    for t in required.extension_types:
        if int(t) not in DEFAULT_EXTENSION_TYPES and t not in caps.extensions:
            raise KeyPackageError(f"KeyPackage lacks required extension type {t:#06x}")
    for t in required.proposal_types:
        if int(t) not in DEFAULT_PROPOSAL_TYPES and t not in caps.proposals:
            raise KeyPackageError(f"KeyPackage lacks required proposal type {t:#06x}")
    for t in required.credential_types:
        if t not in caps.credentials:
            raise KeyPackageError(f"KeyPackage lacks required credential type {t:#06x}")
