"""Welcome and GroupInfo (RFC 9420 sections 12.4.3, 12.4.3.1; test-vectors.md "Welcome")."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from mls_vectors import claimed_suite, h, load_vectors, suite_params

from clave.mls.ciphersuite import SUPPORTED_CIPHER_SUITES, CipherSuite, Rng, get_suite
from clave.mls.errors import ConfirmationTagError, SignatureError, ValidationError, WelcomeError
from clave.mls.group_info import create_group_info, sign_group_info, verify_group_info
from clave.mls.key_package import KeyPackageBundle, create_key_package, key_package_ref
from clave.mls.key_schedule import (
    confirmation_tag,
    derive_epoch_from_joiner,
    interim_transcript_hash,
    verify_confirmation_tag,
    welcome_key_nonce,
    welcome_secret,
)
from clave.mls.psk import psk_secret
from clave.mls.structs import (
    Credential,
    EncryptedGroupSecrets,
    Extension,
    GroupContext,
    GroupInfo,
    GroupSecrets,
    HPKECiphertext,
    KeyPackage,
    MLSMessage,
    PreSharedKeyID,
    ProtocolVersion,
    ResumptionPSKUsage,
    Welcome,
)
from clave.mls.welcome import JoinedWelcome, WelcomeRecipient, create_welcome, process_welcome

VECTORS = load_vectors("welcome")
NOW = 1_700_000_000


def _rng(seed: bytes) -> Rng:
    counter = [0]

    def rng(n: int) -> bytes:
        counter[0] += 1
        return hashlib.shake_256(seed + counter[0].to_bytes(8, "big")).digest(n)

    return rng


# -- official vectors ----------------------------------------------------------


@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_welcome_vector(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    kp = MLSMessage.from_bytes(h(v["key_package"])).body
    welcome = MLSMessage.from_bytes(h(v["welcome"])).body
    assert isinstance(kp, KeyPackage) and isinstance(welcome, Welcome)

    joined = process_welcome(welcome, kp, h(v["init_priv"]), signer_key=h(v["signer_pub"]))

    # The vector's verification steps, spelled out on the decrypted values.
    gi = joined.group_info
    verify_group_info(suite, gi, h(v["signer_pub"]))
    epoch = derive_epoch_from_joiner(
        suite, joined.group_secrets.joiner_secret, None, gi.group_context.to_bytes()
    )
    assert confirmation_tag(
        suite, epoch.secrets.confirmation_key, gi.group_context.confirmed_transcript_hash
    ) == (gi.confirmation_tag)
    assert joined.epoch == epoch
    assert joined.key_package_ref == suite.make_key_package_ref(kp.to_bytes())
    assert joined.psk_secret is None
    assert joined.interim_transcript_hash == interim_transcript_hash(
        suite, gi.group_context.confirmed_transcript_hash, gi.confirmation_tag
    )


@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_welcome_vector_wrong_signer_key(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    kp = MLSMessage.from_bytes(h(v["key_package"])).body
    welcome = MLSMessage.from_bytes(h(v["welcome"])).body
    assert isinstance(kp, KeyPackage) and isinstance(welcome, Welcome)
    _, other = suite.generate_signature_key_pair(_rng(b"other signer"))
    with pytest.raises(SignatureError):
        process_welcome(welcome, kp, h(v["init_priv"]), signer_key=other)


@pytest.mark.parametrize("v", suite_params(VECTORS))
def test_welcome_vector_tampered_group_info(v: dict[str, Any]) -> None:
    claimed_suite(v)
    kp = MLSMessage.from_bytes(h(v["key_package"])).body
    welcome = MLSMessage.from_bytes(h(v["welcome"])).body
    assert isinstance(kp, KeyPackage) and isinstance(welcome, Welcome)
    egi = bytearray(welcome.encrypted_group_info)
    egi[-1] ^= 1
    bad = dataclasses.replace(welcome, encrypted_group_info=bytes(egi))
    with pytest.raises(WelcomeError, match="GroupSecrets"):
        process_welcome(bad, kp, h(v["init_priv"]), signer_key=h(v["signer_pub"]))


# -- round trips ---------------------------------------------------------------


class Group:
    """A committer's view: a signed GroupInfo for an epoch and its joiner secret."""

    def __init__(
        self,
        suite: CipherSuite,
        seed: bytes,
        *,
        psk: bytes | None = None,
        epoch: int = 5,
        extensions: tuple[Extension, ...] = (),
    ) -> None:
        rng = _rng(seed)
        self.suite = suite
        self.sig_priv, self.sig_pub = suite.generate_signature_key_pair(rng)
        self.joiner_secret = rng(suite.nh)
        self.context = GroupContext(
            ProtocolVersion.mls10, suite.id, b"group", epoch, rng(32), rng(32), ()
        )
        epoch_keys = derive_epoch_from_joiner(
            suite, self.joiner_secret, psk, self.context.to_bytes()
        )
        tag = confirmation_tag(
            suite, epoch_keys.secrets.confirmation_key, self.context.confirmed_transcript_hash
        )
        self.group_info = create_group_info(suite, self.context, extensions, tag, 3, self.sig_priv)


def _member(suite: CipherSuite, name: bytes) -> KeyPackageBundle:
    return create_key_package(suite, Credential.basic(name), rng=_rng(name), now=NOW)


def _psk_id(suite: CipherSuite, name: bytes) -> PreSharedKeyID:
    return PreSharedKeyID.external(name, hashlib.sha256(b"nonce" + name).digest()[: suite.nh])


@pytest.mark.parametrize("cs", SUPPORTED_CIPHER_SUITES)
def test_welcome_roundtrip_two_members(cs: int) -> None:
    suite = get_suite(cs)
    group = Group(suite, b"roundtrip")
    alice, bob = _member(suite, b"alice"), _member(suite, b"bob")
    path_secret = bytes(range(suite.nh))
    welcome = create_welcome(
        suite,
        group.group_info,
        group.joiner_secret,
        [WelcomeRecipient(alice.key_package), WelcomeRecipient(bob.key_package, path_secret)],
        rng=_rng(b"welcome"),
    )
    wire = MLSMessage(welcome).to_bytes()
    welcome2 = MLSMessage.from_bytes(wire).body
    assert isinstance(welcome2, Welcome)
    joined: list[JoinedWelcome] = []
    for member in (alice, bob):
        joined.append(
            process_welcome(
                welcome2, member.key_package, member.init_priv, signer_key=group.sig_pub
            )
        )
    assert joined[0].group_secrets.path_secret is None
    assert joined[1].group_secrets.path_secret == path_secret
    for j, member in zip(joined, (alice, bob), strict=True):
        assert j.group_info == group.group_info
        assert j.group_secrets.joiner_secret == group.joiner_secret
        assert j.key_package_ref == key_package_ref(member.key_package)
    assert joined[0].epoch == joined[1].epoch


@pytest.mark.parametrize("cs", SUPPORTED_CIPHER_SUITES)
def test_welcome_with_external_psk(cs: int) -> None:
    suite = get_suite(cs)
    ids = [_psk_id(suite, b"psk-a"), _psk_id(suite, b"psk-b")]
    values = {i.to_bytes(): hashlib.sha256(i.psk_id).digest() for i in ids}
    psks = [(i, values[i.to_bytes()]) for i in ids]
    chained = psk_secret(suite, [(i.to_bytes(), val) for i, val in psks])
    group = Group(suite, b"psk", psk=chained)
    carol = _member(suite, b"carol")
    welcome = create_welcome(
        suite,
        group.group_info,
        group.joiner_secret,
        [WelcomeRecipient(carol.key_package)],
        rng=_rng(b"w"),
        psks=psks,
    )
    joined = process_welcome(
        welcome,
        carol.key_package,
        carol.init_priv,
        signer_key=lambda gi: group.sig_pub if gi.signer == 3 else b"",
        psk_lookup=lambda psk_id: values.get(psk_id.to_bytes()),
    )
    assert joined.psk_secret == chained
    assert joined.group_secrets.psks == tuple(ids)

    # Without the PSK (or without any lookup) the Welcome is rejected.
    with pytest.raises(WelcomeError, match="unknown PSK"):
        process_welcome(welcome, carol.key_package, carol.init_priv, signer_key=group.sig_pub)
    with pytest.raises(WelcomeError, match="unknown PSK"):
        process_welcome(
            welcome,
            carol.key_package,
            carol.init_priv,
            signer_key=group.sig_pub,
            psk_lookup=lambda psk_id: None if psk_id.psk_id == b"psk-b" else b"x" * 32,
        )


# -- negative cases ------------------------------------------------------------


@pytest.fixture
def setup() -> tuple[Group, KeyPackageBundle, Welcome]:
    suite = get_suite(1)
    group = Group(suite, b"neg")
    dave = _member(suite, b"dave")
    welcome = create_welcome(
        suite,
        group.group_info,
        group.joiner_secret,
        [WelcomeRecipient(dave.key_package)],
        rng=_rng(b"neg-w"),
    )
    return group, dave, welcome


def _reencrypt_secrets(
    suite: CipherSuite, welcome: Welcome, kp: KeyPackage, plaintext: bytes
) -> Welcome:
    kem_output, ct = suite.encrypt_with_label(
        kp.init_key, "Welcome", welcome.encrypted_group_info, plaintext, rng=_rng(b"re")
    )
    entry = EncryptedGroupSecrets(key_package_ref(kp), HPKECiphertext(kem_output, ct))
    return dataclasses.replace(welcome, secrets=(entry,))


def test_welcome_not_for_us(setup: tuple[Group, KeyPackageBundle, Welcome]) -> None:
    group, _, welcome = setup
    eve = _member(get_suite(1), b"eve")
    with pytest.raises(WelcomeError, match="no entry"):
        process_welcome(welcome, eve.key_package, eve.init_priv, signer_key=group.sig_pub)


def test_welcome_duplicate_entries(setup: tuple[Group, KeyPackageBundle, Welcome]) -> None:
    group, dave, welcome = setup
    bad = dataclasses.replace(welcome, secrets=welcome.secrets * 2)
    with pytest.raises(WelcomeError, match="several entries"):
        process_welcome(bad, dave.key_package, dave.init_priv, signer_key=group.sig_pub)


def test_welcome_wrong_init_key(setup: tuple[Group, KeyPackageBundle, Welcome]) -> None:
    group, dave, welcome = setup
    wrong, _ = get_suite(1).generate_hpke_key_pair(_rng(b"wrong init"))
    with pytest.raises(WelcomeError, match="decrypt our GroupSecrets"):
        process_welcome(welcome, dave.key_package, wrong, signer_key=group.sig_pub)


def test_welcome_tampered_group_secrets(setup: tuple[Group, KeyPackageBundle, Welcome]) -> None:
    group, dave, welcome = setup
    entry = welcome.secrets[0]
    ct = bytearray(entry.encrypted_group_secrets.ciphertext)
    ct[0] ^= 0x80
    bad_entry = EncryptedGroupSecrets(
        entry.new_member, HPKECiphertext(entry.encrypted_group_secrets.kem_output, bytes(ct))
    )
    bad = dataclasses.replace(welcome, secrets=(bad_entry,))
    with pytest.raises(WelcomeError):
        process_welcome(bad, dave.key_package, dave.init_priv, signer_key=group.sig_pub)


def test_welcome_tampered_encrypted_group_info(
    setup: tuple[Group, KeyPackageBundle, Welcome],
) -> None:
    group, dave, welcome = setup
    suite = get_suite(1)
    egi = bytearray(welcome.encrypted_group_info)
    egi[3] ^= 1
    bad = dataclasses.replace(welcome, encrypted_group_info=bytes(egi))
    # The GroupSecrets are bound to encrypted_group_info (HPKE context) ...
    with pytest.raises(WelcomeError, match="GroupSecrets"):
        process_welcome(bad, dave.key_package, dave.init_priv, signer_key=group.sig_pub)
    # ... and even re-encrypted to the tampered value, the AEAD catches it.
    secrets = GroupSecrets(group.joiner_secret, None)
    bad2 = _reencrypt_secrets(suite, bad, dave.key_package, secrets.to_bytes())
    with pytest.raises(WelcomeError, match="decrypt the Welcome's GroupInfo"):
        process_welcome(bad2, dave.key_package, dave.init_priv, signer_key=group.sig_pub)


def test_welcome_wrong_joiner_secret(setup: tuple[Group, KeyPackageBundle, Welcome]) -> None:
    group, dave, welcome = setup
    secrets = GroupSecrets(bytes(32), None)
    bad = _reencrypt_secrets(get_suite(1), welcome, dave.key_package, secrets.to_bytes())
    with pytest.raises(WelcomeError, match="GroupInfo"):
        process_welcome(bad, dave.key_package, dave.init_priv, signer_key=group.sig_pub)


@pytest.mark.parametrize(
    ("plaintext", "match"),
    [
        (b"\x20" + bytes(31), "malformed GroupSecrets"),  # truncated
        (GroupSecrets(bytes(32), None).to_bytes() + b"\x00", "malformed GroupSecrets"),
        (b"\x20" + bytes(32) + b"\x02\x00", "malformed GroupSecrets"),  # bad optional octet
        (GroupSecrets(bytes(31), None).to_bytes(), "joiner_secret must be"),
        (GroupSecrets(bytes(32), bytes(5)).to_bytes(), "path_secret must be"),
    ],
)
def test_welcome_malformed_group_secrets(
    setup: tuple[Group, KeyPackageBundle, Welcome], plaintext: bytes, match: str
) -> None:
    group, dave, welcome = setup
    bad = _reencrypt_secrets(get_suite(1), welcome, dave.key_package, plaintext)
    with pytest.raises(WelcomeError, match=match):
        process_welcome(bad, dave.key_package, dave.init_priv, signer_key=group.sig_pub)


@pytest.mark.parametrize(
    ("psks", "match"),
    [
        ([PreSharedKeyID.external(b"a", bytes(32))] * 2, "same PSK twice"),
        ([PreSharedKeyID.external(b"a", bytes(16))], "nonce must be 32 bytes"),
        (
            [
                PreSharedKeyID.resumption(ResumptionPSKUsage.reinit, b"g", 1, bytes(32)),
                PreSharedKeyID.resumption(ResumptionPSKUsage.branch, b"g", 2, bytes(32)),
            ],
            "more than one reinit/branch",
        ),
    ],
)
def test_welcome_bad_psk_lists(
    setup: tuple[Group, KeyPackageBundle, Welcome], psks: list[PreSharedKeyID], match: str
) -> None:
    group, dave, welcome = setup
    secrets = GroupSecrets(group.joiner_secret, None, tuple(psks))
    bad = _reencrypt_secrets(get_suite(1), welcome, dave.key_package, secrets.to_bytes())
    with pytest.raises(WelcomeError, match=match):
        process_welcome(
            bad,
            dave.key_package,
            dave.init_priv,
            signer_key=group.sig_pub,
            psk_lookup=lambda _: bytes(32),
        )


def test_welcome_reinit_psk_needs_epoch_1() -> None:
    suite = get_suite(1)
    psk_id = PreSharedKeyID.resumption(ResumptionPSKUsage.reinit, b"old", 9, bytes(32))
    value = bytes(range(32))
    chained = psk_secret(suite, [(psk_id.to_bytes(), value)])
    frank = _member(suite, b"frank")
    for epoch, ok in ((1, True), (2, False)):
        group = Group(suite, b"reinit", psk=chained, epoch=epoch)
        welcome = create_welcome(
            suite,
            group.group_info,
            group.joiner_secret,
            [WelcomeRecipient(frank.key_package)],
            rng=_rng(b"ri"),
            psks=[(psk_id, value)],
        )
        args = (welcome, frank.key_package, frank.init_priv)
        if ok:
            process_welcome(*args, signer_key=group.sig_pub, psk_lookup=lambda _: value)
        else:
            with pytest.raises(WelcomeError, match="epoch 1"):
                process_welcome(*args, signer_key=group.sig_pub, psk_lookup=lambda _: value)


def test_welcome_cipher_suite_mismatch(setup: tuple[Group, KeyPackageBundle, Welcome]) -> None:
    group, dave, welcome = setup
    with pytest.raises(WelcomeError, match="cipher suite"):
        process_welcome(
            dataclasses.replace(welcome, cipher_suite=3),
            dave.key_package,
            dave.init_priv,
            signer_key=group.sig_pub,
        )
    with pytest.raises(WelcomeError, match="unsupported"):
        kp = dataclasses.replace(dave.key_package, cipher_suite=0x7777)
        process_welcome(
            dataclasses.replace(welcome, cipher_suite=0x7777),
            kp,
            dave.init_priv,
            signer_key=group.sig_pub,
        )


def test_welcome_group_info_for_other_suite() -> None:
    """A GroupInfo whose GroupContext names another suite than the KeyPackage."""
    suite = get_suite(1)
    group = Group(suite, b"mismatch")
    gus = _member(suite, b"gus")
    other_ctx = dataclasses.replace(group.context, cipher_suite=3)
    gi = GroupInfo(other_ctx, (), group.group_info.confirmation_tag, 3)
    key, nonce = _welcome_key(suite, group.joiner_secret)
    egi = suite.aead_encrypt(key, nonce, b"", gi.to_bytes())
    welcome = Welcome(1, (), egi)
    secrets = GroupSecrets(group.joiner_secret, None)
    welcome = _reencrypt_secrets(suite, welcome, gus.key_package, secrets.to_bytes())
    with pytest.raises(WelcomeError, match="GroupInfo cipher suite"):
        process_welcome(welcome, gus.key_package, gus.init_priv, signer_key=group.sig_pub)
    with pytest.raises(WelcomeError, match="differs"):
        create_welcome(
            suite, gi, group.joiner_secret, [WelcomeRecipient(gus.key_package)], rng=_rng(b"x")
        )


def _welcome_key(suite: CipherSuite, joiner: bytes) -> tuple[bytes, bytes]:
    return welcome_key_nonce(suite, welcome_secret(suite, joiner, None))


def test_welcome_bad_group_info_signature(
    setup: tuple[Group, KeyPackageBundle, Welcome],
) -> None:
    group, dave, _ = setup
    suite = get_suite(1)
    sig = bytearray(group.group_info.signature)
    sig[5] ^= 1
    forged = dataclasses.replace(group.group_info, signature=bytes(sig))
    welcome = create_welcome(
        suite, forged, group.joiner_secret, [WelcomeRecipient(dave.key_package)], rng=_rng(b"f")
    )
    with pytest.raises(SignatureError):
        process_welcome(welcome, dave.key_package, dave.init_priv, signer_key=group.sig_pub)


def test_welcome_bad_confirmation_tag(setup: tuple[Group, KeyPackageBundle, Welcome]) -> None:
    group, dave, _ = setup
    suite = get_suite(1)
    gi = sign_group_info(
        suite, dataclasses.replace(group.group_info, confirmation_tag=bytes(32)), group.sig_priv
    )
    welcome = create_welcome(
        suite, gi, group.joiner_secret, [WelcomeRecipient(dave.key_package)], rng=_rng(b"t")
    )
    with pytest.raises(ConfirmationTagError):
        process_welcome(welcome, dave.key_package, dave.init_priv, signer_key=group.sig_pub)


def test_create_welcome_rejects_bad_recipients() -> None:
    suite = get_suite(1)
    group = Group(suite, b"recips")
    hank = _member(suite, b"hank")
    with pytest.raises(WelcomeError, match="at least one"):
        create_welcome(suite, group.group_info, group.joiner_secret, [], rng=_rng(b"r"))
    with pytest.raises(WelcomeError, match="twice"):
        create_welcome(
            suite,
            group.group_info,
            group.joiner_secret,
            [WelcomeRecipient(hank.key_package)] * 2,
            rng=_rng(b"r"),
        )
    other = _member(get_suite(3), b"ivy")
    with pytest.raises(WelcomeError, match="KeyPackage cipher suite"):
        create_welcome(
            suite,
            group.group_info,
            group.joiner_secret,
            [WelcomeRecipient(other.key_package)],
            rng=_rng(b"r"),
        )


# -- GroupInfo signing -----------------------------------------------------------


@pytest.mark.parametrize("cs", SUPPORTED_CIPHER_SUITES)
def test_group_info_sign_verify(cs: int) -> None:
    suite = get_suite(cs)
    group = Group(suite, b"gi", extensions=(Extension(0x0A0A, b"grease"),))
    gi = GroupInfo.from_bytes(group.group_info.to_bytes())
    verify_group_info(suite, gi, group.sig_pub)
    verify_confirmation_tag(
        suite,
        derive_epoch_from_joiner(
            suite, group.joiner_secret, None, gi.group_context.to_bytes()
        ).secrets.confirmation_key,
        gi.group_context.confirmed_transcript_hash,
        gi.confirmation_tag,
    )
    for tampered in (
        dataclasses.replace(gi, signer=4),
        dataclasses.replace(gi, extensions=()),
        dataclasses.replace(gi, confirmation_tag=bytes(32)),
        dataclasses.replace(gi, group_context=dataclasses.replace(gi.group_context, epoch=6)),
    ):
        with pytest.raises(SignatureError):
            verify_group_info(suite, tampered, group.sig_pub)
    _, other_pub = suite.generate_signature_key_pair(_rng(b"gi-other"))
    with pytest.raises(SignatureError):
        verify_group_info(suite, gi, other_pub)
    other_suite = get_suite(2 if cs != 2 else 1)
    with pytest.raises(ValidationError, match="cipher suite"):
        verify_group_info(other_suite, gi, group.sig_pub)
