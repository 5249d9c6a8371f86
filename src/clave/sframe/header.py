"""SFrame header encoding and parsing (RFC 9605 section 4.3).

The header is a config byte ``X|K(3)|Y|C(3)`` followed by the KID and then
the CTR as minimal-length big-endian integers.  Values 0-7 live in the config
byte itself (flag 0); larger values are appended and the 3-bit field holds
their byte length minus one (flag 1).  Both KID and CTR range over
``0 .. 2**64 - 1``.

Parsing is strict: a header that is truncated or not minimally encoded (the
RFC says the value MUST be encoded with the minimum number of bytes) raises
:class:`~clave.sframe.errors.HeaderError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import HeaderError

MAX_VALUE = (1 << 64) - 1
"""Largest KID or CTR representable in an SFrame header (8 bytes)."""

MAX_HEADER_LEN = 17
"""Config byte plus an 8-byte KID and an 8-byte CTR."""

# Smallest value that may be encoded with n extra bytes (index n = 1..8); a
# smaller value would have a shorter (or in-config-byte) encoding.
_MIN_FOR_LEN = (0, 8, *(1 << (8 * (n - 1)) for n in range(2, 9)))


@dataclass(frozen=True, slots=True)
class SFrameHeader:
    """A decoded SFrame header: key identifier and counter (RFC 9605 section 4.3)."""

    kid: int
    ctr: int

    def encode(self) -> bytes:
        """Return the minimal encoding of this header."""
        return encode_header(self.kid, self.ctr)


def _check_value(name: str, value: int) -> None:
    if type(value) is not int or not 0 <= value <= MAX_VALUE:
        raise HeaderError(f"{name} must be an integer in 0..2**64-1, got {value!r}")


def encode_header(kid: int, ctr: int) -> bytes:
    """Encode ``kid`` and ``ctr`` as an SFrame header (RFC 9605 section 4.3)."""
    _check_value("kid", kid)
    _check_value("ctr", ctr)
    return kid_prefix(kid, ctr) + (ctr.to_bytes(_byte_len(ctr), "big") if ctr >= 8 else b"")


def _byte_len(value: int) -> int:
    return (value.bit_length() + 7) >> 3


def kid_prefix(kid: int, ctr: int) -> bytes:
    """Config byte and KID bytes of a header; the CTR bytes (if any) follow.

    A CTR below 8 sits in the config byte; for larger ones only the byte
    length matters, so callers can precompute the prefixes of one KID and
    append ``ctr.to_bytes(n, "big")`` on the hot path.
    """
    if kid < 8:
        config = kid << 4
        kid_bytes = b""
    else:
        n = _byte_len(kid)
        config = 0x80 | ((n - 1) << 4)
        kid_bytes = kid.to_bytes(n, "big")
    config |= ctr if ctr < 8 else 0x08 | (_byte_len(ctr) - 1)
    return bytes((config,)) + kid_bytes


def _config_table() -> tuple[tuple[int, int, int, int, int, int, int], ...]:
    # For each config byte: (header length, bit length of the CTR field,
    # CTR field mask, in-config KID, in-config CTR, smallest KID and smallest
    # CTR that the announced field lengths may minimally carry).  With these,
    # v = int(bytes after the config byte) gives kid = v >> bits | kid_in and
    # ctr = v & mask | ctr_in for all four header forms.
    table = []
    for b0 in range(256):
        klen = ((b0 >> 4) & 7) + 1 if b0 & 0x80 else 0
        clen = (b0 & 7) + 1 if b0 & 0x08 else 0
        table.append(
            (
                1 + klen + clen,
                8 * clen,
                (1 << (8 * clen)) - 1,
                0 if klen else b0 >> 4,
                0 if clen else b0 & 7,
                _MIN_FOR_LEN[klen] if klen else 0,
                _MIN_FOR_LEN[clen] if clen else 0,
            )
        )
    return tuple(table)


_CONFIG = _config_table()


def decode_header(data: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """Parse the header at the start of ``data``; return ``(kid, ctr, header_len)``.

    Raises :class:`HeaderError` if ``data`` is empty, truncated inside the KID
    or CTR field, or not minimally encoded.
    """
    if not data:
        raise HeaderError("empty SFrame ciphertext: no header config byte")
    b0 = data[0]
    hlen, ctr_bits, ctr_mask, kid_in, ctr_in, kid_min, ctr_min = _CONFIG[b0]
    if len(data) < hlen:
        raise HeaderError(
            f"truncated SFrame header: config byte {b0:#04x} announces {hlen} bytes, "
            f"have {len(data)}"
        )
    v = int.from_bytes(data[1:hlen], "big")
    kid = v >> ctr_bits | kid_in
    ctr = v & ctr_mask | ctr_in
    if kid < kid_min:
        klen = hlen - 1 - ctr_bits // 8
        raise HeaderError(f"non-minimal KID encoding: kid={kid} in {klen} bytes")
    if ctr < ctr_min:
        clen = ctr_bits // 8
        raise HeaderError(f"non-minimal CTR encoding (kid={kid}): ctr={ctr} in {clen} bytes")
    return kid, ctr, hlen


def parse_header(data: bytes | bytearray | memoryview) -> tuple[SFrameHeader, int]:
    """Parse the header at the start of ``data``; return it and its length in bytes."""
    kid, ctr, length = decode_header(data)
    return SFrameHeader(kid, ctr), length


__all__ = [
    "MAX_HEADER_LEN",
    "MAX_VALUE",
    "SFrameHeader",
    "decode_header",
    "encode_header",
    "kid_prefix",
    "parse_header",
]
