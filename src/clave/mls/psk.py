"""Pre-shared keys: the ``psk_secret`` chain (RFC 9420 section 8.4).

The chain takes PSKs as ``(encoded PreSharedKeyID, psk value)`` pairs, in the
order of the Commit's PreSharedKey proposals or the GroupSecrets ``psks``;
``PreSharedKeyID`` itself lives in :mod:`clave.mls.structs`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .ciphersuite import CipherSuite
from .errors import ValidationError

__all__ = ["psk_secret"]


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
