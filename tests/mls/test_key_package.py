"""KeyPackage creation and validation (RFC 9420 sections 10, 10.1)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from mls_vectors import claimed_suite, h, load_vectors, suite_params

from clave.mls.ciphersuite import SUPPORTED_CIPHER_SUITES, Rng, get_suite
from clave.mls.errors import KeyPackageError, PolicyError
from clave.mls.key_package import (
    KeyPackageBundle,
    create_key_package,
    key_package_ref,
    validate_key_package,
    validate_key_package_for_group,
)
from clave.mls.structs import (
    Capabilities,
    Credential,
    CredentialType,
    Extension,
    GroupContext,
    KeyPackage,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    MLSMessage,
    ProtocolVersion,
    RequiredCapabilities,
)

NOW = 1_700_000_000
DAY = 86400


def _rng(seed: bytes) -> Rng:
    counter = [0]

    def rng(n: int) -> bytes:
        counter[0] += 1
        return hashlib.shake_256(seed + counter[0].to_bytes(8, "big")).digest(n)

    return rng


def _bundle(cs: int = 1, **kw: Any) -> KeyPackageBundle:
    return create_key_package(
        get_suite(cs), Credential.basic(b"alice"), rng=_rng(b"kp%d" % cs), now=NOW, **kw
    )


def _resign(
    b: KeyPackageBundle, kp: KeyPackage, *, leaf: bool = True, package: bool = True
) -> KeyPackage:
    """Re-sign a modified KeyPackage so that only the intended check can fail."""
    suite = get_suite(1)
    ln = kp.leaf_node
    if leaf:
        ln = dataclasses.replace(
            ln, signature=suite.sign_with_label(b.signature_priv, "LeafNodeTBS", ln.tbs())
        )
    kp = dataclasses.replace(kp, leaf_node=ln)
    if package:
        kp = dataclasses.replace(
            kp, signature=suite.sign_with_label(b.signature_priv, "KeyPackageTBS", kp.tbs())
        )
    return kp


def _validate(kp: KeyPackage, **kw: Any) -> None:
    kw.setdefault("cipher_suite", 1)
    kw.setdefault("now", NOW)
    validate_key_package(kp, **kw)


# -- creation --------------------------------------------------------------------


@pytest.mark.parametrize("cs", SUPPORTED_CIPHER_SUITES)
def test_create_and_validate(cs: int) -> None:
    suite = get_suite(cs)
    b = _bundle(cs)
    kp = b.key_package
    assert kp.cipher_suite == cs and kp.version is ProtocolVersion.mls10
    assert suite.hpke_public_key(b.init_priv) == kp.init_key
    assert suite.hpke_public_key(b.encryption_priv) == kp.leaf_node.encryption_key
    assert suite.signature_public_key(b.signature_priv) == kp.leaf_node.signature_key
    assert kp.leaf_node.leaf_node_source is LeafNodeSource.key_package
    assert kp.leaf_node.lifetime == Lifetime(NOW, NOW + 90 * DAY)
    caps = kp.leaf_node.capabilities
    assert caps.versions == (1,) and caps.cipher_suites == (cs,)
    assert caps.credentials == (CredentialType.basic,)
    # Wire round trip, then validation of the decoded value.
    decoded = MLSMessage.from_bytes(MLSMessage(kp).to_bytes()).body
    assert decoded == kp
    assert isinstance(decoded, KeyPackage)
    validate_key_package(decoded, cipher_suite=cs, now=NOW + 10)
    assert b.ref == key_package_ref(kp) == suite.make_key_package_ref(kp.to_bytes())
    assert len(b.ref) == suite.nh


def test_create_is_deterministic_given_rng() -> None:
    assert _bundle() == _bundle()
    other = create_key_package(
        get_suite(1), Credential.basic(b"alice"), rng=_rng(b"other"), now=NOW
    )
    assert other.key_package.init_key != _bundle().key_package.init_key


def test_create_with_existing_signature_key_and_extensions() -> None:
    suite = get_suite(2)
    sig_priv, sig_pub = suite.generate_signature_key_pair(_rng(b"sig"))
    b = create_key_package(
        suite,
        Credential.basic(b"bob"),
        rng=_rng(b"ext"),
        now=NOW,
        signature_priv=sig_priv,
        lifetime=DAY,
        not_before=NOW - 3600,
        leaf_extensions=(Extension(0xF000, b"leaf"), Extension(1, b"app-id")),
        extensions=(Extension(0x0A0A, b""),),
    )
    ln = b.key_package.leaf_node
    assert ln.signature_key == sig_pub and b.signature_priv == sig_priv
    assert ln.lifetime == Lifetime(NOW - 3600, NOW + DAY)
    # Non-default types are listed; the default application_id is not.
    assert ln.capabilities.extensions == (0xF000, 0x0A0A)
    validate_key_package(b.key_package, cipher_suite=2, now=NOW)


def test_create_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="default types"):
        _bundle(capabilities=Capabilities((1,), (1,), (2,), (), (1,)))
    with pytest.raises(ValueError, match="positive"):
        _bundle(lifetime=0)
    with pytest.raises(KeyPackageError, match="cipher suite 1"):
        _bundle(capabilities=Capabilities((1,), (2,), (), (), (1,)))


# -- official vectors ----------------------------------------------------------------


@pytest.mark.parametrize("v", suite_params(load_vectors("welcome")))
def test_vector_key_packages_validate(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    kp = MLSMessage.from_bytes(h(v["key_package"])).body
    assert isinstance(kp, KeyPackage)
    validate_key_package(kp, cipher_suite=suite.id, now=NOW)
    with pytest.raises(KeyPackageError, match="cipher suite"):
        validate_key_package(kp, cipher_suite=suite.id % 3 + 1, now=NOW)


# -- each validation failure -----------------------------------------------------------


def test_reject_wrong_version() -> None:
    with pytest.raises(KeyPackageError, match="version"):
        _validate(_bundle().key_package, version=2)


def test_reject_wrong_cipher_suite() -> None:
    with pytest.raises(KeyPackageError, match="cipher suite 1 is not the group's 3"):
        _validate(_bundle().key_package, cipher_suite=3)


def test_reject_unsupported_cipher_suite() -> None:
    kp = dataclasses.replace(_bundle().key_package, cipher_suite=0x0A0A)
    with pytest.raises(KeyPackageError, match="unsupported"):
        _validate(kp, cipher_suite=0x0A0A)


def test_reject_bad_key_package_signature() -> None:
    kp = _bundle().key_package
    sig = bytearray(kp.signature)
    sig[0] ^= 1
    with pytest.raises(KeyPackageError, match="KeyPackage signature is invalid"):
        _validate(dataclasses.replace(kp, signature=bytes(sig)))
    # Changing a signed field without re-signing.
    with pytest.raises(KeyPackageError, match="KeyPackage signature is invalid"):
        _validate(dataclasses.replace(kp, extensions=(Extension(0x0A0A, b""),)))


def test_reject_bad_leaf_signature() -> None:
    b = _bundle()
    ln = dataclasses.replace(b.key_package.leaf_node, credential=Credential.basic(b"mallory"))
    kp = _resign(b, dataclasses.replace(b.key_package, leaf_node=ln), leaf=False)
    with pytest.raises(KeyPackageError, match="leaf node signature is invalid"):
        _validate(kp)


@pytest.mark.parametrize("source", [LeafNodeSource.update, LeafNodeSource.commit])
def test_reject_wrong_leaf_node_source(source: LeafNodeSource) -> None:
    b = _bundle()
    ln = dataclasses.replace(
        b.key_package.leaf_node,
        leaf_node_source=source,
        lifetime=None,
        parent_hash=b"" if source is LeafNodeSource.commit else None,
    )
    kp = _resign(b, dataclasses.replace(b.key_package, leaf_node=ln), leaf=False)
    with pytest.raises(KeyPackageError, match="leaf_node_source"):
        _validate(kp)


def test_reject_init_key_equal_to_encryption_key() -> None:
    b = _bundle()
    kp = _resign(
        b, dataclasses.replace(b.key_package, init_key=b.key_package.leaf_node.encryption_key)
    )
    with pytest.raises(KeyPackageError, match="init_key equals"):
        _validate(kp)


@pytest.mark.parametrize("field", ["init_key", "encryption_key", "signature_key"])
def test_reject_malformed_keys(field: str) -> None:
    b = _bundle()
    kp = b.key_package
    bad = b"\x01" * 5
    if field == "init_key":
        kp = dataclasses.replace(kp, init_key=bad)
    elif field == "encryption_key":
        kp = dataclasses.replace(
            kp, leaf_node=dataclasses.replace(kp.leaf_node, encryption_key=bad)
        )
    else:
        kp = dataclasses.replace(kp, leaf_node=dataclasses.replace(kp.leaf_node, signature_key=bad))
    with pytest.raises(KeyPackageError, match=f"{field} is invalid"):
        _validate(kp)


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (NOW - 1, False),
        (NOW, True),
        (NOW + 90 * DAY, True),
        (NOW + 90 * DAY + 1, False),
    ],
)
def test_lifetime_window(now: int, ok: bool) -> None:
    kp = _bundle().key_package
    if ok:
        _validate(kp, now=now)
    else:
        with pytest.raises(KeyPackageError, match="lifetime"):
            _validate(kp, now=now)


def test_reject_lifetime_longer_than_maximum() -> None:
    kp = _bundle().key_package
    _validate(kp, max_lifetime=90 * DAY)
    with pytest.raises(KeyPackageError, match="maximum"):
        _validate(kp, max_lifetime=30 * DAY)


@pytest.mark.parametrize(
    ("caps", "match"),
    [
        (Capabilities((), (1,), (), (), (1,)), "version 1"),
        (Capabilities((1,), (2, 3), (), (), (1,)), "cipher suite 1"),
        (Capabilities((1,), (1,), (), (), (2,)), "credential type 1"),
    ],
)
def test_reject_capabilities_missing(caps: Capabilities, match: str) -> None:
    b = _bundle()
    ln = dataclasses.replace(b.key_package.leaf_node, capabilities=caps)
    kp = _resign(b, dataclasses.replace(b.key_package, leaf_node=ln))
    with pytest.raises(KeyPackageError, match=match):
        _validate(kp)


def test_reject_unlisted_leaf_extension() -> None:
    b = _bundle()
    ln = dataclasses.replace(b.key_package.leaf_node, extensions=(Extension(0xF001, b"x"),))
    kp = _resign(b, dataclasses.replace(b.key_package, leaf_node=ln))
    with pytest.raises(KeyPackageError, match=r"leaf_node.extensions has extension type 0xf001"):
        _validate(kp)
    # A default extension type needs no listing.
    ln = dataclasses.replace(b.key_package.leaf_node, extensions=(Extension(1, b"app"),))
    _validate(_resign(b, dataclasses.replace(b.key_package, leaf_node=ln)))


def test_reject_unlisted_key_package_extension() -> None:
    b = _bundle()
    kp = _resign(b, dataclasses.replace(b.key_package, extensions=(Extension(0xF002, b""),)))
    with pytest.raises(KeyPackageError, match=r"KeyPackage extensions has extension type 0xf002"):
        _validate(kp)
    _validate(kp, check_key_package_extensions=False)


def test_required_capabilities() -> None:
    kp = _bundle(capabilities=Capabilities((1,), (1,), (0xF003,), (0xF004,), (1, 2))).key_package
    ok = RequiredCapabilities((0xF003, 2), (0xF004, 1), (2,))
    _validate(kp, required_capabilities=ok)
    for req, match in (
        (RequiredCapabilities((0xF005,)), "extension type 0xf005"),
        (RequiredCapabilities((), (0xF006,)), "proposal type 0xf006"),
        (RequiredCapabilities((), (), (0xF007,)), "credential type 0xf007"),
    ):
        with pytest.raises(KeyPackageError, match=match):
            _validate(kp, required_capabilities=req)


def test_validate_for_group_context() -> None:
    kp = _bundle().key_package
    ctx = GroupContext(ProtocolVersion.mls10, 1, b"g", 0, b"", b"", ())
    validate_key_package_for_group(kp, ctx, now=NOW)
    with pytest.raises(KeyPackageError, match="cipher suite"):
        validate_key_package_for_group(kp, dataclasses.replace(ctx, cipher_suite=2), now=NOW)
    req = RequiredCapabilities((), (), (CredentialType.x509,)).to_extension()
    with pytest.raises(KeyPackageError, match="required credential type"):
        validate_key_package_for_group(kp, dataclasses.replace(ctx, extensions=(req,)), now=NOW)
    broken = Extension(RequiredCapabilities.extension_type, b"\x05")
    with pytest.raises(KeyPackageError, match="malformed"):
        validate_key_package_for_group(kp, dataclasses.replace(ctx, extensions=(broken,)), now=NOW)


def test_hook_runs_last_and_can_reject() -> None:
    kp = _bundle().key_package
    seen: list[KeyPackage] = []
    _validate(kp, hook=seen.append)
    assert seen == [kp]

    def reject(_: KeyPackage) -> None:
        raise PolicyError("credential not trusted")

    with pytest.raises(PolicyError, match="not trusted"):
        _validate(kp, hook=reject)
    # The hook is not reached when a protocol check fails first.
    seen.clear()
    with pytest.raises(KeyPackageError):
        _validate(kp, cipher_suite=2, hook=seen.append)
    assert seen == []


def test_leaf_node_type_is_stable() -> None:
    """The created leaf decodes as a LeafNode on its own (used in Add / ratchet tree)."""
    ln = _bundle().key_package.leaf_node
    assert LeafNode.from_bytes(ln.to_bytes()) == ln
