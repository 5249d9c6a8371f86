"""Pre-shared keys: PreSharedKeyID encoding and ``psk_secret`` (RFC 9420 section 8.4).

The PSK chain takes PSKs as ``(encoded PreSharedKeyID, psk value)`` pairs, in
the order of the Commit's PreSharedKey proposals or the GroupSecrets ``psks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

from .ciphersuite import CipherSuite
from .codec import Writer
from .errors import ValidationError

__all__ = [
    "PSKType",
    "ResumptionPSKUsage",
    "encode_external_psk_id",
    "encode_resumption_psk_id",
    "psk_secret",
]


class PSKType(IntEnum):
    """``PSKType`` (RFC 9420 section 8.4)."""

    EXTERNAL = 1
    RESUMPTION = 2


class ResumptionPSKUsage(IntEnum):
    """``ResumptionPSKUsage`` (RFC 9420 section 8.4)."""

    APPLICATION = 1
    REINIT = 2
    BRANCH = 3


def encode_external_psk_id(psk_id: bytes, psk_nonce: bytes) -> bytes:
    """Encode ``PreSharedKeyID`` with ``psktype = external``."""
    return Writer().u8(PSKType.EXTERNAL).opaque(psk_id).opaque(psk_nonce).finish()


def encode_resumption_psk_id(
    usage: ResumptionPSKUsage, psk_group_id: bytes, psk_epoch: int, psk_nonce: bytes
) -> bytes:
    """Encode ``PreSharedKeyID`` with ``psktype = resumption``."""
    return (
        Writer()
        .u8(PSKType.RESUMPTION)
        .u8(usage)
        .opaque(psk_group_id)
        .u64(psk_epoch)
        .opaque(psk_nonce)
        .finish()
    )


def psk_secret(suite: CipherSuite, psks: Sequence[tuple[bytes, bytes]]) -> bytes:
    """Chain PSKs into ``psk_secret`` (RFC 9420 section 8.4).

    ``psks`` holds ``(encoded PreSharedKeyID, psk)`` pairs. With no PSKs the
    result is the all-zero vector of length ``KDF.Nh``::

        psk_extracted_[i] = KDF.Extract(0, psk_[i])
        psk_input_[i]     = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel, Nh)
        psk_secret_[i+1]  = KDF.Extract(psk_input_[i], psk_secret_[i])
    """
    count = len(psks)
    if count > 0xFFFF:
        raise ValidationError(f"{count} PSKs exceed the uint16 PSKLabel count")
    zero = bytes(suite.nh)
    secret = zero
    count_bytes = count.to_bytes(2, "big")
    for index, (psk_id, psk) in enumerate(psks):
        extracted = suite.kdf_extract(zero, psk)
        label = psk_id + index.to_bytes(2, "big") + count_bytes  # PSKLabel
        psk_input = suite.expand_with_label(extracted, "derived psk", label, suite.nh)
        secret = suite.kdf_extract(psk_input, secret)
    return secret
