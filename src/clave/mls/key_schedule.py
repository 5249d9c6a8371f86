"""The MLS key schedule, transcript hashes and exporter (RFC 9420 section 8).

All inputs are bytes: the serialized GroupContext and transcript-hash inputs
are produced by the wire layer. Per the deletion schedule (RFC 9420 section
9.2) an :class:`EpochSecrets` holds only the secrets an epoch keeps using;
``epoch_secret`` itself is not retained, and ``joiner_secret`` /
``welcome_secret`` are returned separately by :func:`derive_epoch`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .ciphersuite import CipherSuite, Label, Rng
from .codec import encode_varint
from .errors import ConfirmationTagError

__all__ = [
    "EXTERNAL_INIT_LABEL",
    "EpochSecrets",
    "KeyScheduleEpoch",
    "confirmation_tag",
    "confirmed_transcript_hash",
    "derive_epoch",
    "derive_epoch_from_joiner",
    "epoch_secret",
    "external_init_secret_receiver",
    "external_init_secret_sender",
    "external_key_pair",
    "interim_transcript_hash",
    "joiner_secret",
    "mls_exporter",
    "verify_confirmation_tag",
    "welcome_key_nonce",
    "welcome_secret",
]

EXTERNAL_INIT_LABEL = b"MLS 1.0 external init secret"


def _zero(suite: CipherSuite) -> bytes:
    return bytes(suite.nh)


def joiner_secret(
    suite: CipherSuite, init_secret: bytes, commit_secret: bytes | None, group_context: bytes
) -> bytes:
    """``ExpandWithLabel(Extract(init_secret, commit_secret), "joiner", GroupContext_[n], Nh)``.

    ``commit_secret=None`` stands for the all-zero commit secret (no path).
    """
    prk = suite.kdf_extract(init_secret, _zero(suite) if commit_secret is None else commit_secret)
    return suite.expand_with_label(prk, "joiner", group_context, suite.nh)


def _member_prk(suite: CipherSuite, joiner: bytes, psk_secret: bytes | None) -> bytes:
    return suite.kdf_extract(joiner, _zero(suite) if psk_secret is None else psk_secret)


def welcome_secret(suite: CipherSuite, joiner: bytes, psk_secret: bytes | None) -> bytes:
    """``DeriveSecret(Extract(joiner_secret, psk_secret), "welcome")`` (section 8)."""
    return suite.derive_secret(_member_prk(suite, joiner, psk_secret), "welcome")


def welcome_key_nonce(suite: CipherSuite, welcome: bytes) -> tuple[bytes, bytes]:
    """Key and nonce encrypting GroupInfo in a Welcome (RFC 9420 section 12.4.3.1)."""
    return (
        suite.expand_with_label(welcome, "key", b"", suite.nk),
        suite.expand_with_label(welcome, "nonce", b"", suite.nn),
    )


def epoch_secret(
    suite: CipherSuite, joiner: bytes, psk_secret: bytes | None, group_context: bytes
) -> bytes:
    """``ExpandWithLabel(Extract(joiner_secret, psk_secret), "epoch", GroupContext_[n], Nh)``."""
    prk = _member_prk(suite, joiner, psk_secret)
    return suite.expand_with_label(prk, "epoch", group_context, suite.nh)


@dataclass(frozen=True, slots=True)
class EpochSecrets:
    """Secrets derived from ``epoch_secret`` (RFC 9420 section 8, table 4)."""

    sender_data_secret: bytes
    encryption_secret: bytes
    exporter_secret: bytes
    external_secret: bytes
    confirmation_key: bytes
    membership_key: bytes
    resumption_psk: bytes
    epoch_authenticator: bytes
    init_secret: bytes
    """``init_secret_[n]``, the input to the next epoch."""

    @classmethod
    def from_epoch_secret(cls, suite: CipherSuite, epoch: bytes) -> EpochSecrets:
        """Derive every epoch secret with ``DeriveSecret(epoch_secret, <label>)``."""
        d = suite.derive_secret
        return cls(
            sender_data_secret=d(epoch, "sender data"),
            encryption_secret=d(epoch, "encryption"),
            exporter_secret=d(epoch, "exporter"),
            external_secret=d(epoch, "external"),
            confirmation_key=d(epoch, "confirm"),
            membership_key=d(epoch, "membership"),
            resumption_psk=d(epoch, "resumption"),
            epoch_authenticator=d(epoch, "authentication"),
            init_secret=d(epoch, "init"),
        )

    def exporter(self, suite: CipherSuite, label: Label, context: bytes, length: int) -> bytes:
        """``MLS-Exporter(Label, Context, Length)`` for this epoch (section 8.5)."""
        return mls_exporter(suite, self.exporter_secret, label, context, length)

    def external_key_pair(self, suite: CipherSuite) -> tuple[bytes, bytes]:
        """``(external_priv, external_pub) = KEM.DeriveKeyPair(external_secret)``."""
        return suite.derive_key_pair(self.external_secret)


@dataclass(frozen=True, slots=True)
class KeyScheduleEpoch:
    """Result of running the key schedule for one epoch."""

    joiner_secret: bytes
    welcome_secret: bytes
    secrets: EpochSecrets


def derive_epoch(
    suite: CipherSuite,
    init_secret: bytes,
    commit_secret: bytes | None,
    psk_secret: bytes | None,
    group_context: bytes,
) -> KeyScheduleEpoch:
    """Run the key schedule of RFC 9420 section 8 for a member or committer.

    ``group_context`` is the serialized GroupContext of the new epoch;
    ``commit_secret`` / ``psk_secret`` of ``None`` mean the all-zero vector.
    """
    joiner = joiner_secret(suite, init_secret, commit_secret, group_context)
    return derive_epoch_from_joiner(suite, joiner, psk_secret, group_context)


def derive_epoch_from_joiner(
    suite: CipherSuite, joiner: bytes, psk_secret: bytes | None, group_context: bytes
) -> KeyScheduleEpoch:
    """The key schedule from ``joiner_secret`` on, as a Welcome recipient runs it."""
    prk = _member_prk(suite, joiner, psk_secret)
    return KeyScheduleEpoch(
        joiner_secret=joiner,
        welcome_secret=suite.derive_secret(prk, "welcome"),
        secrets=EpochSecrets.from_epoch_secret(
            suite, suite.expand_with_label(prk, "epoch", group_context, suite.nh)
        ),
    )


def mls_exporter(
    suite: CipherSuite, exporter_secret: bytes, label: Label, context: bytes, length: int
) -> bytes:
    """``ExpandWithLabel(DeriveSecret(exporter_secret, Label), "exported", Hash(Context), L)``."""
    return suite.expand_with_label(
        suite.derive_secret(exporter_secret, label), "exported", suite.hash(context), length
    )


def external_key_pair(suite: CipherSuite, external_secret: bytes) -> tuple[bytes, bytes]:
    """``KEM.DeriveKeyPair(external_secret)`` -> (external_priv, external_pub) (section 8)."""
    return suite.derive_key_pair(external_secret)


def external_init_secret_sender(
    suite: CipherSuite, external_pub: bytes, *, rng: Rng
) -> tuple[bytes, bytes]:
    """Joiner side of external init (section 8.3) -> (kem_output, init_secret)."""
    return suite.hpke.export_sender(external_pub, b"", EXTERNAL_INIT_LABEL, suite.nh, rng)


def external_init_secret_receiver(
    suite: CipherSuite, external_priv: bytes, kem_output: bytes
) -> bytes:
    """Member side of external init (section 8.3): ``init_secret`` from ``kem_output``."""
    return suite.hpke.export_receiver(external_priv, kem_output, b"", EXTERNAL_INIT_LABEL, suite.nh)


# -- transcript hashes and confirmation tag (RFC 9420 section 8.2) ------------


def confirmed_transcript_hash(
    suite: CipherSuite, interim_before: bytes, confirmed_input: bytes
) -> bytes:
    """``Hash(interim_transcript_hash_[n-1] || ConfirmedTranscriptHashInput_[n])``."""
    return suite.hash(interim_before + confirmed_input)


def interim_transcript_hash(
    suite: CipherSuite, confirmed: bytes, confirmation_tag_value: bytes
) -> bytes:
    """``Hash(confirmed_transcript_hash_[n] || InterimTranscriptHashInput_[n])``.

    ``confirmation_tag_value`` is the raw MAC; it is encoded here as the
    ``MAC confirmation_tag`` (``opaque<V>``) of InterimTranscriptHashInput.
    """
    return suite.hash(
        confirmed + encode_varint(len(confirmation_tag_value)) + confirmation_tag_value
    )


def confirmation_tag(suite: CipherSuite, confirmation_key: bytes, confirmed: bytes) -> bytes:
    """``MAC(confirmation_key, confirmed_transcript_hash)`` (RFC 9420 section 6.1)."""
    return suite.mac(confirmation_key, confirmed)


def verify_confirmation_tag(
    suite: CipherSuite, confirmation_key: bytes, confirmed: bytes, tag: bytes
) -> None:
    """Raise ConfirmationTagError unless ``tag`` is the confirmation tag (constant time)."""
    if not hmac.compare_digest(suite.mac(confirmation_key, confirmed), tag):
        raise ConfirmationTagError("confirmation tag mismatch")
