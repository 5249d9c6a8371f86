"""Signing and verifying GroupInfo (RFC 9420 section 12.4.3).

The signer's public key is the ``signature_key`` of the LeafNode at leaf index
``GroupInfo.signer`` in the group's ratchet tree; looking it up (and failing if
that leaf is blank) is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence

from .ciphersuite import CipherSuite
from .errors import ValidationError
from .structs import Extension, GroupContext, GroupInfo

__all__ = ["create_group_info", "sign_group_info", "verify_group_info"]

GROUP_INFO_LABEL = "GroupInfoTBS"


def _check_suite(suite: CipherSuite, group_info: GroupInfo) -> None:
    if group_info.group_context.cipher_suite != suite.id:
        raise ValidationError(
            f"GroupInfo is for cipher suite {group_info.group_context.cipher_suite}, not {suite.id}"
        )


def sign_group_info(suite: CipherSuite, group_info: GroupInfo, signature_priv: bytes) -> GroupInfo:
    """Return ``group_info`` with ``SignWithLabel(., "GroupInfoTBS", GroupInfoTBS)`` set."""
    _check_suite(suite, group_info)
    signature = suite.sign_with_label(signature_priv, GROUP_INFO_LABEL, group_info.tbs())
    return GroupInfo(
        group_info.group_context,
        group_info.extensions,
        group_info.confirmation_tag,
        group_info.signer,
        signature,
    )


def create_group_info(
    suite: CipherSuite,
    group_context: GroupContext,
    extensions: Sequence[Extension],
    confirmation_tag: bytes,
    signer: int,
    signature_priv: bytes,
) -> GroupInfo:
    """Build and sign a GroupInfo for leaf ``signer`` (RFC 9420 section 12.4.3)."""
    unsigned = GroupInfo(group_context, tuple(extensions), confirmation_tag, signer)
    return sign_group_info(suite, unsigned, signature_priv)


def verify_group_info(suite: CipherSuite, group_info: GroupInfo, signer_public_key: bytes) -> None:
    """Verify the GroupInfo signature with the signer leaf's key; SignatureError if invalid.

    Also rejects (ValidationError) a GroupInfo whose GroupContext names another suite.
    """
    _check_suite(suite, group_info)
    suite.verify_with_label(
        signer_public_key, GROUP_INFO_LABEL, group_info.tbs(), group_info.signature
    )
