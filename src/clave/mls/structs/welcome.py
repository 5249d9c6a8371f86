"""Welcome messages and the group secrets they carry (RFC 9420 section 12.4.3.1)."""

from __future__ import annotations

from dataclasses import dataclass

from ._layout import OPAQUE, U16, Optional, Struct, Vector, layout
from .enums import HashReference
from .psk import PreSharedKeyID
from .update_path import HPKECiphertext


@layout(
    ("joiner_secret", OPAQUE),
    ("path_secret", Optional(OPAQUE)),
    ("psks", Vector(PreSharedKeyID)),
)
@dataclass(frozen=True, slots=True)
class GroupSecrets(Struct):
    """RFC 9420 section 12.4.3.1; ``path_secret`` is the PathSecret's bytes or None."""

    joiner_secret: bytes
    path_secret: bytes | None
    psks: tuple[PreSharedKeyID, ...] = ()


@layout(("new_member", OPAQUE), ("encrypted_group_secrets", HPKECiphertext))
@dataclass(frozen=True, slots=True)
class EncryptedGroupSecrets(Struct):
    """RFC 9420 section 12.4.3.1."""

    new_member: HashReference
    encrypted_group_secrets: HPKECiphertext


@layout(
    ("cipher_suite", U16),
    ("secrets", Vector(EncryptedGroupSecrets)),
    ("encrypted_group_info", OPAQUE),
)
@dataclass(frozen=True, slots=True)
class Welcome(Struct):
    """RFC 9420 section 12.4.3.1."""

    cipher_suite: int
    secrets: tuple[EncryptedGroupSecrets, ...]
    encrypted_group_info: bytes

    def secrets_for(self, key_package_ref: HashReference) -> EncryptedGroupSecrets | None:
        """The entry addressed to ``key_package_ref``, or None."""
        for entry in self.secrets:
            if entry.new_member == key_package_ref:
                return entry
        return None
