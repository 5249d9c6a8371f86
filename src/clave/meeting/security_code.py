"""The security code members compare to detect a meddling server.

From the MLS epoch authenticator (RFC 9420 section 8.7), identical for all
members of an epoch and new after every commit::

    n    = int(SHA-256("clave v1 security code" || epoch_authenticator)[:16]) mod 10**35
    code = n as 35 decimal digits, zero-padded, in 7 groups of 5

35 digits carry log2(10**35) = 116 bits, more than the 100 needed; the
modulo bias of a 128-bit value is below 2**-11 per code and irrelevant.
"""

from __future__ import annotations

import hashlib

SECURITY_CODE_LABEL = b"clave v1 security code"
DIGITS = 35
GROUP_DIGITS = 5


def security_code(epoch_authenticator: bytes) -> str:
    """``"01234 56789 ..."``: 7 groups of 5 digits."""
    digest = hashlib.sha256(SECURITY_CODE_LABEL + bytes(epoch_authenticator)).digest()
    n = int.from_bytes(digest[:16], "big") % 10**DIGITS
    text = f"{n:0{DIGITS}d}"
    return " ".join(text[i : i + GROUP_DIGITS] for i in range(0, DIGITS, GROUP_DIGITS))
