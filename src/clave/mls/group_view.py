"""What the current epoch of a group shows: context, roster, exporter (RFC 9420 sections 7, 8).

:class:`GroupView` is the read-only part of :class:`clave.mls.group.Group`:
every property and query here reads the current :class:`EpochState` and
changes nothing.
"""

from __future__ import annotations

from .ciphersuite import CipherSuite
from .events import Member
from .group_info import RatchetTreeEncoder
from .group_records import EpochState
from .structs import Extension, GroupContext


class GroupView:
    """The current epoch of one member's group, read only."""

    _suite: CipherSuite
    _epoch: EpochState
    _tree_encoder: RatchetTreeEncoder

    @property
    def suite(self) -> CipherSuite:
        return self._suite

    @property
    def group_id(self) -> bytes:
        return self._epoch.context.group_id

    @property
    def epoch(self) -> int:
        return self._epoch.context.epoch

    @property
    def own_leaf_index(self) -> int:
        return self._epoch.own_leaf

    @property
    def group_context(self) -> GroupContext:
        return self._epoch.context

    @property
    def extensions(self) -> tuple[Extension, ...]:
        return self._epoch.context.extensions

    @property
    def tree_hash(self) -> bytes:
        return self._epoch.context.tree_hash

    @property
    def epoch_authenticator(self) -> bytes:
        """RFC 9420 section 8.7."""
        return self._epoch.secrets.epoch_authenticator

    @property
    def confirmed_transcript_hash(self) -> bytes:
        return self._epoch.context.confirmed_transcript_hash

    @property
    def leaf_count(self) -> int:
        """Leaves of the ratchet tree, blanks included (sizes SFrame KIDs, RFC 9605 5.2)."""
        return self._epoch.tree.n_leaves

    def roster(self) -> list[Member]:
        """Members in leaf order (RFC 9420 section 7)."""
        return list(self._epoch.members().members())

    def member(self, leaf_index: int) -> Member:
        return self._epoch.member(leaf_index)

    def export_secret(self, label: str | bytes, context: bytes, length: int) -> bytes:
        """MLS-Exporter (RFC 9420 section 8.5)."""
        return self._epoch.secrets.exporter(self._suite, label, context, length)

    def ratchet_tree(self) -> bytes:
        """The encoded ``optional<Node> ratchet_tree<V>`` of this epoch (section 12.4.3.3)."""
        return self._tree_encoder.encode(self._epoch.tree)
