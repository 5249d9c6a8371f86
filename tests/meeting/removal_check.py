"""The removed-member check, done on the cryptography: a departed member's last SFrame
secrets against frames of the epochs after it left.

Before a member departs, take its last epoch's SFrame base key as the meeting
exports it (:func:`last_base_key`, RFC 9605 section 5.2). After the removal
commit, every frame the remaining members send carries a KID of a later epoch.
:func:`assert_departed_cannot_decrypt` derives, from the old base key, the key
and salt of *each frame's own KID* (``derive_key_salt``, RFC 9605 section
4.4.2) and tries the AEAD: none may authenticate. It does not ask the departed
member's key manager, which would refuse the new KIDs as unknown whatever the
keys were (that is how a build that reused one SFrame key in every epoch used to
pass). tests/meeting/test_key_schedule_mutation.py shows the check is live: with
key reuse patched in, it fails.

Usage in a scenario::

    old = last_base_key(carol)                     # before Carol leaves
    ...remove Carol, then have the others send...
    frames = [net.send_media(alice, StreamKind.video, True, b"x"), ...]
    assert_departed_cannot_decrypt(old, carol_epoch, frames, net.config)
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from meeting_harness import Client

from clave.meeting import MeetingConfig
from clave.sframe.errors import SFrameError
from clave.sframe.header import decode_header
from clave.sframe.suites import derive_key_salt, get_suite
from clave.wire.media import decode_media, media_aad

BASE_KEY_LABEL = "SFrame 1.0 Base Key"
"""RFC 9605 section 5.2: ``base_key = MLS-Exporter("SFrame 1.0 Base Key", "", AEAD.Nk)``."""


def last_base_key(c: Client, config: MeetingConfig | None = None) -> bytes:
    """``c``'s SFrame base key of its current epoch (call it before ``c`` departs)."""
    nk = get_suite((config or MeetingConfig()).sframe_suite).nk
    return c.meeting.export_secret(BASE_KEY_LABEL, b"", nk)


def frame_kid(frame: bytes) -> int:
    """The SFrame KID of a media wire frame."""
    return decode_header(decode_media(frame).sframe)[0]


def base_key_opens(frame: bytes, base_key: bytes, config: MeetingConfig | None = None) -> bool:
    """Whether the key and salt ``base_key`` gives for ``frame``'s own KID authenticate
    it: RFC 9605 sections 4.4.2-4.4.4, written out here rather than asked of the code
    under test."""
    suite = get_suite((config or MeetingConfig()).sframe_suite)
    media = decode_media(frame)
    kid, ctr, hlen = decode_header(media.sframe)
    key, salt = derive_key_salt(suite, kid, base_key)
    nonce = (int.from_bytes(salt, "big") ^ ctr).to_bytes(suite.nn, "big")
    aad = media.sframe[:hlen] + media_aad(media.kind, media.keyframe)
    try:
        suite.aead(key).decrypt(nonce, media.sframe[hlen:], aad)
    except (InvalidTag, SFrameError):
        return False
    return True


def assert_departed_cannot_decrypt(
    base_key: bytes,
    departed_epoch: int,
    frames: Sequence[bytes],
    config: MeetingConfig | None = None,
) -> int:
    """Every frame is under a KID of an epoch after ``departed_epoch`` (its epoch bits
    differ), and the departed member's ``base_key`` opens none of them. Returns the
    number of attempts (at least one: an empty check proves nothing)."""
    bits = (config or MeetingConfig()).epoch_bits
    mask = (1 << bits) - 1
    assert frames, "no frames of the new epoch to try the departed member's key on"
    for frame in frames:
        kid = frame_kid(frame)
        assert kid & mask != departed_epoch & mask, (
            f"kid {kid} is of the departed member's epoch {departed_epoch}: not a new key id"
        )
        assert not base_key_opens(frame, base_key, config), (
            f"the departed member's last base key (epoch {departed_epoch}) decrypts a frame "
            f"under the new kid {kid}: the SFrame key did not change with the epoch"
        )
    return len(frames)
