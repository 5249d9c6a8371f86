"""The security code members read aloud: who is in this meeting, with which keys.

Derived from the membership alone, so it is identical for every honest member
and changes when someone joins or leaves, but not when keys are refreshed
(RFC 9420 section 12.4: a refresh commit replaces encryption keys, never a
member's credential or signature key, which the credential validator keeps
fixed)::

    digest = SHA-256("clave v2 security code" || opaque(group_id)
                     || for each member in leaf order:
                        u32(leaf) || opaque(signature_key) || opaque(credential identity))
    n      = int(digest[:16]) mod 10**35
    code   = n as 35 decimal digits, zero-padded, in 7 groups of 5

Why this still catches an attack: every reader of a meeting's media and chat
must be a member (MLS), and every member's signature key and credential are in
the code. Two people who see the same code are in groups of exactly the same
members; a hidden member, a substituted key or a room split by a meddling
relay or member (two groups that each contain someone the other lacks) gives
different codes. 35 digits carry 116 bits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ..mls.codec import Writer
from ..mls.events import Member

SECURITY_CODE_LABEL = b"clave v2 security code"
DIGITS = 35
GROUP_DIGITS = 5


def membership_digest(group_id: bytes, members: Iterable[Member]) -> bytes:
    w = Writer()
    w.raw(SECURITY_CODE_LABEL)
    w.opaque(group_id)
    for m in sorted(members, key=lambda m: m.leaf_index):
        w.u32(m.leaf_index)
        w.opaque(m.signature_key)
        w.opaque(m.identity)
    return hashlib.sha256(w.finish()).digest()


def security_code(group_id: bytes, members: Iterable[Member]) -> str:
    """``"01234 56789 ..."``: 7 groups of 5 digits."""
    digest = membership_digest(group_id, members)
    n = int.from_bytes(digest[:16], "big") % 10**DIGITS
    text = f"{n:0{DIGITS}d}"
    return " ".join(text[i : i + GROUP_DIGITS] for i in range(0, DIGITS, GROUP_DIGITS))
