"""Past epochs kept to read late application messages (RFC 9420 sections 9.2, 14, 15.3).

An application message can arrive after the commit that ended its epoch. When
``GroupConfig.max_past_epochs`` is positive, the group keeps, for that many
epochs before the current one, just what decrypting and authenticating such a
message needs: the epoch's GroupContext, its ``sender_data_secret``, its secret
tree (whose ratchets keep moving, so each key still opens one message only)
and its members' signature keys. Nothing of a past epoch can produce or
accept a handshake message. Forgetting an epoch deletes its secrets.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import framing
from .ciphersuite import CipherSuite
from .errors import StateError, ValidationError
from .events import ApplicationMessage
from .group_records import EpochState
from .ratchet_tree import RatchetTree
from .secret_tree import SecretTree
from .structs import FramedContent, GroupContext, PrivateMessage


class _TreeSignatureKeys(Mapping[int, bytes]):
    """Leaf index -> signature key of the members of one (no longer changing) tree."""

    __slots__ = ("_tree",)

    def __init__(self, tree: RatchetTree) -> None:
        self._tree = tree

    def __getitem__(self, leaf: int) -> bytes:
        tree = self._tree
        node = tree.leaf(leaf) if 0 <= leaf < tree.n_leaves else None
        if node is None:
            raise KeyError(leaf)
        return node.signature_key

    def __iter__(self) -> Iterator[int]:
        return (i for i, _ in self._tree.leaf_nodes())

    def __len__(self) -> int:
        return self._tree.member_count()


@dataclass(frozen=True, slots=True)
class PastEpoch:
    """What reading an application message of a past epoch needs."""

    context: GroupContext
    context_bytes: bytes
    own_leaf: int
    sender_data_secret: bytes
    secret_tree: SecretTree
    signature_keys: Mapping[int, bytes]
    """The epoch's members: leaf index -> signature key."""

    @classmethod
    def of(cls, epoch: EpochState) -> PastEpoch:
        # The tree of a past epoch never changes (commits stage copies), so it is shared.
        return cls(
            context=epoch.context,
            context_bytes=epoch.context_bytes,
            own_leaf=epoch.own_leaf,
            sender_data_secret=epoch.secrets.sender_data_secret,
            secret_tree=epoch.secret_tree,
            signature_keys=_TreeSignatureKeys(epoch.tree),
        )

    def open(self, suite: CipherSuite, message: PrivateMessage) -> ApplicationMessage:
        """Decrypt and verify an application message of this epoch (RFC 9420 section 6.3)."""

        def is_member(i: int) -> bool:
            if i == self.own_leaf:
                raise StateError("this is our own message; a sender cannot decrypt it")
            return i in self.signature_keys

        def signature_key(content: FramedContent) -> bytes:
            leaf = content.sender.index
            assert leaf is not None  # a PrivateMessage's sender is a member
            key = self.signature_keys.get(leaf)
            if key is None:
                raise ValidationError(f"leaf {leaf} is not a member")
            return key

        opened = framing.open_private(
            suite,
            message,
            self.context,
            self.secret_tree,
            self.sender_data_secret,
            is_member=is_member,
            signature_key=signature_key,
        )
        content = opened.content.content
        if not isinstance(content.content, bytes):
            raise ValidationError("a past epoch only accepts application messages")
        assert content.sender.index is not None
        event = ApplicationMessage(
            sender=content.sender.index,
            data=content.content,
            authenticated_data=content.authenticated_data,
            epoch=content.epoch,
            generation=opened.generation,
        )
        opened.consume()
        return event

    def to_json(self) -> dict[str, Any]:
        return {
            "context": self.context_bytes.hex(),
            "own_leaf": self.own_leaf,
            "sender_data_secret": self.sender_data_secret.hex(),
            "secret_tree": self.secret_tree.to_dict(),
            "signature_keys": [[i, k.hex()] for i, k in self.signature_keys.items()],
        }

    @classmethod
    def from_json(cls, st: dict[str, Any]) -> PastEpoch:
        """Inverse of :meth:`to_json`; KeyError, TypeError, ValueError or MLSError if malformed."""
        context_bytes = bytes.fromhex(st["context"])
        return cls(
            context=GroupContext.from_bytes(context_bytes),
            context_bytes=context_bytes,
            own_leaf=int(st["own_leaf"]),
            sender_data_secret=bytes.fromhex(st["sender_data_secret"]),
            secret_tree=SecretTree.from_dict(st["secret_tree"]),
            signature_keys={int(i): bytes.fromhex(k) for i, k in st["signature_keys"]},
        )


class PastEpochs:
    """The last ``limit`` past epochs of one group, by epoch number, oldest first."""

    __slots__ = ("_epochs", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self._epochs: OrderedDict[int, PastEpoch] = OrderedDict()

    def __len__(self) -> int:
        return len(self._epochs)

    def epochs(self) -> tuple[int, ...]:
        return tuple(self._epochs)

    def get(self, epoch: int) -> PastEpoch | None:
        return self._epochs.get(epoch)

    def retire(self, epoch: EpochState) -> None:
        """Keep what reading late messages of ``epoch`` (just ended) needs, within the limit."""
        if self.limit:
            self._keep(PastEpoch.of(epoch))

    def _keep(self, past: PastEpoch) -> None:
        self._epochs[past.context.epoch] = past
        self._epochs.move_to_end(past.context.epoch)
        while len(self._epochs) > self.limit:
            self._epochs.popitem(last=False)

    def forget(self, before: int | None = None) -> None:
        """Forget every past epoch, or those numbered below ``before``."""
        for n in [n for n in self._epochs if before is None or n < before]:
            del self._epochs[n]

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self._epochs.values()]

    def restore(self, saved: list[PastEpoch]) -> None:
        """Keep ``saved`` (oldest first), within the limit."""
        for past in saved:
            if self.limit:
                self._keep(past)
