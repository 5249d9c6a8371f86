"""The secret tree and per-sender hash ratchets (RFC 9420 section 9), plus sender-data keys.

The tree is derived lazily from ``encryption_secret`` and honours the deletion
schedule of section 9.2: a node secret is dropped as soon as its children are
derived, a leaf secret as soon as its two ratchets exist, a ratchet secret as
soon as the next one is derived, and a key/nonce once consumed.

Receiving is two-phase so that a forged or corrupt message cannot burn a key:
:meth:`SecretTree.peek_key` derives (and retains) the key for a generation,
:meth:`SecretTree.consume_key` deletes it after the AEAD opened successfully;
:meth:`SecretTree.take_key` does both at once. Out-of-order delivery is
bounded by ``max_forward_distance`` (how far ahead of the ratchet a generation
may be) and ``max_retained_keys`` (skipped keys kept per ratchet, oldest
evicted first). A consumed, evicted or out-of-window generation raises
:class:`~clave.mls.errors.GenerationError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from . import tree_math
from .ciphersuite import CipherSuite, get_suite
from .errors import GenerationError, MLSError, TreeError, ValidationError

__all__ = [
    "DEFAULT_MAX_FORWARD_DISTANCE",
    "DEFAULT_MAX_RETAINED_KEYS",
    "RatchetType",
    "SecretTree",
    "apply_reuse_guard",
    "ratchet_type_for_content_type",
    "sender_data_key_nonce",
]

DEFAULT_MAX_FORWARD_DISTANCE = 1000
DEFAULT_MAX_RETAINED_KEYS = 256
_MAX_GENERATION = 0xFFFFFFFF
_STATE_VERSION = 1


class RatchetType(IntEnum):
    """The two hash ratchets of each leaf (RFC 9420 section 9)."""

    HANDSHAKE = 0
    APPLICATION = 1


def ratchet_type_for_content_type(content_type: int) -> RatchetType:
    """Application data uses the application ratchet; proposals and commits the handshake one."""
    if content_type == 1:
        return RatchetType.APPLICATION
    if content_type in (2, 3):
        return RatchetType.HANDSHAKE
    raise ValidationError(f"content type {content_type} has no sender ratchet")


def sender_data_key_nonce(
    suite: CipherSuite, sender_data_secret: bytes, ciphertext: bytes
) -> tuple[bytes, bytes]:
    """``sender_data_key`` and ``sender_data_nonce`` (RFC 9420 section 6.3.2).

    The sample is the first ``KDF.Nh`` bytes of the content ciphertext (all of
    it if shorter).
    """
    sample = bytes(ciphertext[: suite.nh])
    return (
        suite.expand_with_label(sender_data_secret, "key", sample, suite.nk),
        suite.expand_with_label(sender_data_secret, "nonce", sample, suite.nn),
    )


def apply_reuse_guard(nonce: bytes, reuse_guard: bytes) -> bytes:
    """XOR the 4-byte ``reuse_guard`` into the first bytes of ``nonce`` (section 6.3.1)."""
    if len(reuse_guard) != 4:
        raise ValidationError("reuse_guard must be 4 bytes")
    head = (int.from_bytes(nonce[:4], "big") ^ int.from_bytes(reuse_guard, "big")).to_bytes(
        4, "big"
    )
    return head + bytes(nonce[4:])


@dataclass(slots=True)
class _Ratchet:
    secret: bytes
    """``ratchet_secret_[N]_[generation]``."""
    generation: int
    """Next generation the ratchet secret can produce."""
    retained: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    """Derived but unconsumed ``(key, nonce)`` by generation, in ascending order."""


class SecretTree:
    """Per-epoch secret tree over ``n_leaves`` leaves (a power of two)."""

    __slots__ = (
        "_nodes",
        "_ratchets",
        "max_forward_distance",
        "max_retained_keys",
        "n_leaves",
        "suite",
    )

    def __init__(
        self,
        suite: CipherSuite,
        encryption_secret: bytes,
        n_leaves: int,
        *,
        max_forward_distance: int = DEFAULT_MAX_FORWARD_DISTANCE,
        max_retained_keys: int = DEFAULT_MAX_RETAINED_KEYS,
    ) -> None:
        if max_forward_distance < 0 or max_retained_keys < 1:
            raise ValueError("max_forward_distance must be >= 0 and max_retained_keys >= 1")
        self.suite = suite
        self.n_leaves = n_leaves
        self.max_forward_distance = max_forward_distance
        self.max_retained_keys = max_retained_keys
        self._nodes: dict[int, bytes] = {tree_math.root(n_leaves): bytes(encryption_secret)}
        self._ratchets: dict[tuple[int, RatchetType], _Ratchet] = {}

    # -- derivation -----------------------------------------------------------

    def _ratchet(self, leaf: int, kind: RatchetType) -> _Ratchet:
        r = self._ratchets.get((leaf, kind))
        if r is not None:
            return r
        if not 0 <= leaf < self.n_leaves:
            raise TreeError(f"leaf {leaf} outside a secret tree of {self.n_leaves} leaves")
        suite, nodes = self.suite, self._nodes
        target = 2 * leaf
        # Walk up to the nearest ancestor whose secret is still held.
        path = [target]
        while path[-1] not in nodes:
            path.append(tree_math.parent(path[-1], self.n_leaves))
        # Derive downwards, consuming (deleting) each parent secret.
        for node in reversed(path[1:]):
            secret = nodes.pop(node)
            nodes[tree_math.left(node)] = suite.expand_with_label(secret, "tree", b"left", suite.nh)
            nodes[tree_math.right(node)] = suite.expand_with_label(
                secret, "tree", b"right", suite.nh
            )
        leaf_secret = nodes.pop(target)
        hs = _Ratchet(suite.expand_with_label(leaf_secret, "handshake", b"", suite.nh), 0)
        app = _Ratchet(suite.expand_with_label(leaf_secret, "application", b"", suite.nh), 0)
        self._ratchets[(leaf, RatchetType.HANDSHAKE)] = hs
        self._ratchets[(leaf, RatchetType.APPLICATION)] = app
        return hs if kind is RatchetType.HANDSHAKE else app

    def _key_nonce(self, secret: bytes, generation: int) -> tuple[bytes, bytes]:
        s = self.suite
        return (
            s.derive_tree_secret(secret, "key", generation, s.nk),
            s.derive_tree_secret(secret, "nonce", generation, s.nn),
        )

    def _advance(self, r: _Ratchet) -> None:
        r.secret = self.suite.derive_tree_secret(r.secret, "secret", r.generation, self.suite.nh)
        r.generation += 1

    # -- sending --------------------------------------------------------------

    def next_send_key(self, leaf: int, kind: RatchetType) -> tuple[int, bytes, bytes]:
        """Key and nonce for our next message -> ``(generation, key, nonce)``; consumed."""
        r = self._ratchet(leaf, RatchetType(kind))
        g = r.generation
        if g > _MAX_GENERATION:
            raise GenerationError("sender ratchet exhausted")
        key, nonce = self._key_nonce(r.secret, g)
        self._advance(r)
        return g, key, nonce

    # -- receiving ------------------------------------------------------------

    def peek_key(self, leaf: int, kind: RatchetType, generation: int) -> tuple[bytes, bytes]:
        """``(key, nonce)`` for a received generation, retained until consumed.

        Ratchets forward as needed (keeping up to ``max_retained_keys`` skipped
        keys); raises GenerationError if the generation was consumed or evicted,
        or is more than ``max_forward_distance`` ahead.
        """
        r = self._ratchet(leaf, RatchetType(kind))
        if not 0 <= generation <= _MAX_GENERATION:
            raise GenerationError(f"generation {generation} out of range")
        kept = r.retained.get(generation)
        if kept is not None:
            return kept
        if generation < r.generation:
            raise GenerationError(
                f"generation {generation} of leaf {leaf} was already consumed or expired"
            )
        if generation - r.generation > self.max_forward_distance:
            raise GenerationError(
                f"generation {generation} is more than {self.max_forward_distance} ahead "
                f"of generation {r.generation}"
            )
        # Only the newest max_retained_keys generations are worth deriving keys for.
        first_kept = generation + 1 - self.max_retained_keys
        while r.generation <= generation:
            if r.generation >= first_kept:
                r.retained[r.generation] = self._key_nonce(r.secret, r.generation)
            self._advance(r)
        excess = len(r.retained) - self.max_retained_keys
        if excess > 0:
            for g in list(r.retained)[:excess]:  # insertion order == ascending generation
                del r.retained[g]
        return r.retained[generation]

    def consume_key(self, leaf: int, kind: RatchetType, generation: int) -> None:
        """Delete the key of a generation after a successful decryption."""
        r = self._ratchet(leaf, RatchetType(kind))
        if r.retained.pop(generation, None) is None:
            raise GenerationError(f"generation {generation} of leaf {leaf} is not held")

    def take_key(self, leaf: int, kind: RatchetType, generation: int) -> tuple[bytes, bytes]:
        """:meth:`peek_key` and :meth:`consume_key` in one step."""
        out = self.peek_key(leaf, kind, generation)
        self.consume_key(leaf, kind, generation)
        return out

    def next_generation(self, leaf: int, kind: RatchetType) -> int:
        """The generation the ratchet of ``leaf`` will produce next."""
        return self._ratchet(leaf, RatchetType(kind)).generation

    # -- state persistence ----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible snapshot of the remaining secrets and ratchet positions."""
        return {
            "version": _STATE_VERSION,
            "cipher_suite": self.suite.id,
            "n_leaves": self.n_leaves,
            "max_forward_distance": self.max_forward_distance,
            "max_retained_keys": self.max_retained_keys,
            "nodes": [[n, s.hex()] for n, s in sorted(self._nodes.items())],
            "ratchets": [
                {
                    "leaf": leaf,
                    "type": int(kind),
                    "generation": r.generation,
                    "secret": r.secret.hex(),
                    "retained": [[g, k.hex(), n.hex()] for g, (k, n) in r.retained.items()],
                }
                for (leaf, kind), r in sorted(self._ratchets.items())
            ],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> SecretTree:
        """Restore a tree from :meth:`to_dict`; ValidationError if the state is malformed."""
        try:
            return cls._from_dict(state)
        except MLSError as exc:
            raise ValidationError(f"invalid secret tree state: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ValidationError(f"invalid secret tree state: {exc!r}") from None

    @classmethod
    def _from_dict(cls, state: dict[str, Any]) -> SecretTree:
        if state["version"] != _STATE_VERSION:
            raise ValueError(f"unknown state version {state['version']!r}")
        suite = get_suite(_int(state["cipher_suite"]))
        n_leaves = _int(state["n_leaves"])
        tree_math.root(n_leaves)
        self = cls.__new__(cls)
        self.suite = suite
        self.n_leaves = n_leaves
        self.max_forward_distance = _int(state["max_forward_distance"])
        self.max_retained_keys = _int(state["max_retained_keys"])
        if self.max_forward_distance < 0 or self.max_retained_keys < 1:
            raise ValueError("bad ratchet window parameters")
        width = tree_math.node_width(n_leaves)
        self._nodes = {}
        for n, s in state["nodes"]:
            if not 0 <= _int(n) < width:
                raise ValueError(f"node {n} outside the tree")
            self._nodes[_int(n)] = _secret(s, suite.nh)
        self._ratchets = {}
        for entry in state["ratchets"]:
            leaf = _int(entry["leaf"])
            if not 0 <= leaf < n_leaves:
                raise ValueError(f"leaf {leaf} outside the tree")
            kind = RatchetType(_int(entry["type"]))
            generation = _int(entry["generation"])
            if not 0 <= generation <= _MAX_GENERATION + 1:
                raise ValueError(f"generation {generation} out of range")
            retained: dict[int, tuple[bytes, bytes]] = {}
            for g, k, nonce in sorted(entry["retained"], key=lambda e: _int(e[0])):
                if not 0 <= _int(g) < generation:
                    raise ValueError(f"retained generation {g} not behind the ratchet")
                retained[_int(g)] = (_secret(k, suite.nk), _secret(nonce, suite.nn))
            if len(retained) > self.max_retained_keys:
                raise ValueError("more retained keys than allowed")
            secret = _secret(entry["secret"], suite.nh)
            self._ratchets[(leaf, kind)] = _Ratchet(secret, generation, retained)
        # Every leaf must still be derivable exactly once: either its ratchets are
        # present (both) or exactly one ancestor-or-self secret is held.
        for leaf in range(n_leaves):
            has = [(leaf, k) in self._ratchets for k in RatchetType]
            node = 2 * leaf
            path = [node, *tree_math.direct_path(node, n_leaves)]
            holders = [n for n in path if n in self._nodes]
            if all(has) and not holders:
                continue
            if not any(has) and len(holders) == 1:
                continue
            raise ValueError(f"inconsistent secrets for leaf {leaf}")
        return self


def _int(v: object) -> int:
    if type(v) is not int:
        raise ValueError(f"expected an integer, got {v!r}")
    return v


def _secret(v: object, length: int) -> bytes:
    if not isinstance(v, str):
        raise ValueError("expected a hex string")
    b = bytes.fromhex(v)
    if len(b) != length:
        raise ValueError(f"expected {length} bytes, got {len(b)}")
    return b
