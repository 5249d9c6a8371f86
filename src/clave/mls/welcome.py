"""Creating and processing Welcome messages (RFC 9420 sections 12.4.3, 12.4.3.1).

:func:`create_welcome` encrypts a signed GroupInfo under the ``welcome_secret``
and the GroupSecrets to each new member's ``init_key``.
:func:`process_welcome` does the joiner's part that needs no ratchet tree:
it finds our entry, decrypts the GroupSecrets, resolves the PSKs, decrypts
the GroupInfo, checks the cipher suite, verifies the GroupInfo signature
(with a key the caller takes from the tree), runs the key schedule and
verifies the confirmation tag. Validating the tree, locating our leaf and
importing the path secret are left to the group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .ciphersuite import CipherSuite, Rng, get_suite
from .errors import CryptoError, DecodeError, MLSError, WelcomeError
from .group_info import verify_group_info
from .key_package import key_package_ref
from .key_schedule import (
    KeyScheduleEpoch,
    derive_epoch_from_joiner,
    interim_transcript_hash,
    verify_confirmation_tag,
    welcome_key_nonce,
    welcome_secret,
)
from .psk import psk_secret
from .structs import (
    EncryptedGroupSecrets,
    GroupInfo,
    GroupSecrets,
    HPKECiphertext,
    KeyPackage,
    PreSharedKeyID,
    PSKType,
    ResumptionPSKUsage,
    Welcome,
)

__all__ = [
    "JoinedWelcome",
    "PSKLookup",
    "SignerKeyLookup",
    "WelcomeRecipient",
    "create_welcome",
    "process_welcome",
]

WELCOME_LABEL = "Welcome"

PSKLookup = Callable[[PreSharedKeyID], bytes | None]
"""The PSK value for a PreSharedKeyID, or None (or an MLSError) if we do not hold it."""

SignerKeyLookup = Callable[[GroupInfo], bytes]
"""The signature key of leaf ``GroupInfo.signer`` (from the ratchet tree); raises if blank."""


@dataclass(frozen=True, slots=True)
class WelcomeRecipient:
    """A new member to welcome: its KeyPackage and, if any, the path secret it gets."""

    key_package: KeyPackage
    path_secret: bytes | None = None


@dataclass(frozen=True, slots=True)
class JoinedWelcome:
    """What :func:`process_welcome` learned; the group still validates the tree."""

    group_info: GroupInfo
    """Decrypted GroupInfo; signature and confirmation tag already verified."""
    group_secrets: GroupSecrets
    key_package_ref: bytes
    psk_secret: bytes | None
    """The chained ``psk_secret``, or None without PSKs (the zero vector)."""
    epoch: KeyScheduleEpoch
    """Key schedule of the epoch the Welcome joins."""
    interim_transcript_hash: bytes


def _psk_secret(suite: CipherSuite, psks: Sequence[tuple[PreSharedKeyID, bytes]]) -> bytes | None:
    if not psks:
        return None
    return psk_secret(suite, [(psk_id.to_bytes(), value) for psk_id, value in psks])


def create_welcome(
    suite: CipherSuite,
    group_info: GroupInfo,
    joiner_secret: bytes,
    recipients: Sequence[WelcomeRecipient],
    *,
    rng: Rng,
    psks: Sequence[tuple[PreSharedKeyID, bytes]] = (),
) -> Welcome:
    """Build a Welcome for ``recipients`` (RFC 9420 section 12.4.3.1).

    ``group_info`` must already be signed; ``psks`` are the ``(id, value)``
    pairs of the commit's PSK proposals, in order. Randomness for the HPKE
    encryptions comes from ``rng``.
    """
    if group_info.group_context.cipher_suite != suite.id:
        raise WelcomeError("GroupInfo cipher suite differs from the Welcome's")
    if not recipients:
        raise WelcomeError("a Welcome needs at least one recipient")
    key, nonce = welcome_key_nonce(
        suite, welcome_secret(suite, joiner_secret, _psk_secret(suite, psks))
    )
    encrypted_group_info = suite.aead_encrypt(key, nonce, b"", group_info.to_bytes())
    psk_ids = tuple(psk_id for psk_id, _ in psks)
    entries: list[EncryptedGroupSecrets] = []
    seen: set[bytes] = set()
    for recipient in recipients:
        kp = recipient.key_package
        if kp.cipher_suite != suite.id:
            raise WelcomeError(f"KeyPackage cipher suite {kp.cipher_suite} is not {suite.id}")
        ref = key_package_ref(kp, suite)
        if ref in seen:
            raise WelcomeError("the same KeyPackage is welcomed twice")
        seen.add(ref)
        secrets = GroupSecrets(joiner_secret, recipient.path_secret, psk_ids)
        kem_output, ciphertext = suite.encrypt_with_label(
            kp.init_key, WELCOME_LABEL, encrypted_group_info, secrets.to_bytes(), rng=rng
        )
        entries.append(EncryptedGroupSecrets(ref, HPKECiphertext(kem_output, ciphertext)))
    return Welcome(suite.id, tuple(entries), encrypted_group_info)


def _resolve_psks(
    suite: CipherSuite, psk_ids: Sequence[PreSharedKeyID], lookup: PSKLookup | None
) -> list[tuple[PreSharedKeyID, bytes]]:
    out: list[tuple[PreSharedKeyID, bytes]] = []
    seen: set[bytes] = set()
    special = 0
    for psk_id in psk_ids:
        encoded = psk_id.to_bytes()
        if encoded in seen:
            raise WelcomeError("GroupSecrets lists the same PSK twice")
        seen.add(encoded)
        if len(psk_id.psk_nonce) != suite.nh:
            raise WelcomeError(f"PSK nonce must be {suite.nh} bytes, got {len(psk_id.psk_nonce)}")
        if psk_id.psktype is PSKType.resumption and psk_id.usage in (
            ResumptionPSKUsage.reinit,
            ResumptionPSKUsage.branch,
        ):
            special += 1
            if special > 1:
                raise WelcomeError("more than one reinit/branch resumption PSK")
        value = None if lookup is None else lookup(psk_id)
        if value is None:
            raise WelcomeError(f"unknown PSK ({psk_id.psktype.name}) in GroupSecrets")
        out.append((psk_id, value))
    return out


def process_welcome(
    welcome: Welcome,
    key_package: KeyPackage,
    init_priv: bytes,
    *,
    signer_key: bytes | SignerKeyLookup,
    psk_lookup: PSKLookup | None = None,
) -> JoinedWelcome:
    """Decrypt and check a Welcome addressed to ``key_package`` (RFC 9420 section 12.4.3.1).

    ``signer_key`` is the signer leaf's signature key, or a lookup that finds
    it in the ratchet tree; ``psk_lookup`` resolves PSKs named in GroupSecrets
    (unknown ones are rejected). Raises WelcomeError (no entry for us, suite
    mismatch, undecryptable or malformed secrets or GroupInfo, bad PSKs),
    SignatureError and ConfirmationTagError.
    """
    if welcome.cipher_suite != key_package.cipher_suite:
        raise WelcomeError(
            f"Welcome cipher suite {welcome.cipher_suite} differs from the KeyPackage's "
            f"{key_package.cipher_suite}"
        )
    try:
        suite = get_suite(welcome.cipher_suite)
    except MLSError as exc:
        raise WelcomeError(f"Welcome cipher suite unsupported: {exc}") from None
    ref = key_package_ref(key_package, suite)
    matches = [e for e in welcome.secrets if e.new_member == ref]
    if not matches:
        raise WelcomeError("Welcome has no entry for our KeyPackage")
    if len(matches) > 1:
        raise WelcomeError("Welcome has several entries for our KeyPackage")
    enc = matches[0].encrypted_group_secrets

    try:
        secrets_bytes = suite.decrypt_with_label(
            init_priv, WELCOME_LABEL, welcome.encrypted_group_info, enc.kem_output, enc.ciphertext
        )
    except CryptoError:
        raise WelcomeError("could not decrypt our GroupSecrets") from None
    try:
        secrets = GroupSecrets.from_bytes(secrets_bytes)
    except DecodeError as exc:
        raise WelcomeError(f"malformed GroupSecrets: {exc}") from None
    if len(secrets.joiner_secret) != suite.nh:
        raise WelcomeError(f"joiner_secret must be {suite.nh} bytes")
    if secrets.path_secret is not None and len(secrets.path_secret) != suite.nh:
        raise WelcomeError(f"path_secret must be {suite.nh} bytes")

    psks = _resolve_psks(suite, secrets.psks, psk_lookup)
    psk = _psk_secret(suite, psks)
    key, nonce = welcome_key_nonce(suite, welcome_secret(suite, secrets.joiner_secret, psk))
    try:
        group_info_bytes = suite.aead_decrypt(key, nonce, b"", welcome.encrypted_group_info)
    except CryptoError:
        raise WelcomeError("could not decrypt the Welcome's GroupInfo") from None
    try:
        group_info = GroupInfo.from_bytes(group_info_bytes)
    except DecodeError as exc:
        raise WelcomeError(f"malformed GroupInfo: {exc}") from None
    ctx = group_info.group_context
    if ctx.cipher_suite != key_package.cipher_suite:
        raise WelcomeError(
            f"GroupInfo cipher suite {ctx.cipher_suite} differs from the KeyPackage's"
        )
    if (
        any(
            p.psktype is PSKType.resumption
            and p.usage in (ResumptionPSKUsage.reinit, ResumptionPSKUsage.branch)
            for p in secrets.psks
        )
        and ctx.epoch != 1
    ):
        raise WelcomeError("a reinit/branch Welcome must start the group at epoch 1")

    pub = signer_key if isinstance(signer_key, bytes) else signer_key(group_info)
    verify_group_info(suite, group_info, pub)

    epoch = derive_epoch_from_joiner(suite, secrets.joiner_secret, psk, ctx.to_bytes())
    verify_confirmation_tag(
        suite,
        epoch.secrets.confirmation_key,
        ctx.confirmed_transcript_hash,
        group_info.confirmation_tag,
    )
    return JoinedWelcome(
        group_info=group_info,
        group_secrets=secrets,
        key_package_ref=ref,
        psk_secret=psk,
        epoch=epoch,
        interim_transcript_hash=interim_transcript_hash(
            suite, ctx.confirmed_transcript_hash, group_info.confirmation_tag
        ),
    )
