"""SFrame keys from an MLS group (RFC 9605 section 5.2).

Per MLS epoch, every member derives the same ``base_key``::

    base_key = MLS-Exporter("SFrame 1.0 Base Key", "", AEAD.Nk)

Each sender uses KIDs carrying its leaf index, the low ``E`` bits of the epoch
and a free ``context`` value::

    KID = (context << (S + E)) + (sender_index << E) + (epoch % (1 << E))

where ``S`` is the smallest value with ``group_size <= 1 << S``.  The
per-sender ``sframe_key``/``sframe_salt`` then come from ``derive_key_salt(KID,
base_key)`` (section 4.4.2), which is what makes them unique per sender.

:class:`MLSKeyManager` implements this with lazy, cached per-KID derivation,
keeps retired epochs usable for a grace period measured by an injected clock,
and removes an old epoch as soon as a new one with the same low ``E`` bits is
installed (as section 5.2 requires).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .context import (
    DEFAULT_GRACE_PERIOD,
    Clock,
    RecvKeyContext,
    SendKeyContext,
    _as_bytes,
)
from .errors import ConfigurationError, UnknownKeyError
from .header import MAX_VALUE, decode_header
from .replay import DEFAULT_WINDOW_SIZE, ReplayWindow
from .suites import Buffer, CipherSuite, get_suite

Exporter = Callable[[bytes, bytes, int], bytes]
"""``MLS-Exporter(label, context, length)`` of the current epoch (RFC 9420 8.5)."""

BASE_KEY_LABEL = b"SFrame 1.0 Base Key"

"""Exporter label of RFC 9605 section 5.2."""

_tuple_new = tuple.__new__


def derive_base_key(suite: CipherSuite | int, exporter: Exporter) -> bytes:
    """``base_key = MLS-Exporter("SFrame 1.0 Base Key", "", AEAD.Nk)`` (section 5.2)."""
    suite = get_suite(suite)
    secret = exporter(BASE_KEY_LABEL, b"", suite.nk)
    if not isinstance(secret, bytes | bytearray) or len(secret) != suite.nk:
        raise ConfigurationError(
            f"MLS exporter must return {suite.nk} bytes for {suite.name}, got {secret!r:.40}"
        )
    return bytes(secret)


def index_bits(group_size: int) -> int:
    """``S``: the smallest value such that ``group_size <= (1 << S)``."""
    if type(group_size) is not int or group_size < 1:
        raise ConfigurationError(f"group_size must be a positive integer, got {group_size!r}")
    return (group_size - 1).bit_length()


class KidFields(NamedTuple):
    """The three fields of an MLS SFrame KID (RFC 9605 section 5.2, figure 7)."""

    epoch_low: int
    """``epoch % (1 << E)``."""
    leaf_index: int
    """The sender's MLS leaf index (``S`` bits)."""
    context_id: int
    """Sender-chosen context (the remaining ``64 - S - E`` bits)."""


def _check_bits(epoch_bits: int, s_bits: int) -> None:
    if type(epoch_bits) is not int or type(s_bits) is not int:
        raise ConfigurationError("epoch_bits and index_bits must be integers")
    if epoch_bits < 0 or s_bits < 0 or epoch_bits + s_bits > 64:
        raise ConfigurationError(
            f"need 0 <= E, 0 <= S and E + S <= 64, got E={epoch_bits}, S={s_bits}"
        )


def make_kid(
    epoch: int, leaf_index: int, *, epoch_bits: int, index_bits: int, context_id: int = 0
) -> int:
    """``KID = (context << (S + E)) + (sender_index << E) + (epoch % (1 << E))``."""
    _check_bits(epoch_bits, index_bits)
    if type(epoch) is not int or epoch < 0:
        raise ConfigurationError(f"epoch must be a non-negative integer, got {epoch!r}")
    if type(leaf_index) is not int or not 0 <= leaf_index < (1 << index_bits):
        raise ConfigurationError(
            f"leaf_index {leaf_index!r} does not fit in S={index_bits} bits"
        )
    shift = index_bits + epoch_bits
    if type(context_id) is not int or not 0 <= context_id < (1 << (64 - shift)):
        raise ConfigurationError(
            f"context_id {context_id!r} does not fit in 64 - S - E = {64 - shift} bits"
        )
    return (context_id << shift) + (leaf_index << epoch_bits) + (epoch % (1 << epoch_bits))


def parse_kid(kid: int, *, epoch_bits: int, index_bits: int) -> KidFields:
    """Split an MLS SFrame KID into ``(epoch_low, leaf_index, context_id)``."""
    _check_bits(epoch_bits, index_bits)
    if type(kid) is not int or not 0 <= kid <= MAX_VALUE:
        raise ConfigurationError(f"kid must be an integer in 0..2**64-1, got {kid!r}")
    return KidFields(
        kid & ((1 << epoch_bits) - 1),
        (kid >> epoch_bits) & ((1 << index_bits) - 1),
        kid >> (epoch_bits + index_bits),
    )


class MLSFrame(NamedTuple):
    """Result of :meth:`MLSKeyManager.unprotect`."""

    epoch: int
    leaf_index: int
    context_id: int
    kid: int
    ctr: int
    plaintext: bytes


class _Epoch:
    """Keys of one MLS epoch: base key, KID layout and the derived key contexts."""

    __slots__ = (
        "base_key",
        "deadline",
        "epoch",
        "group_size",
        "index_mask",
        "leaf",
        "low",
        "recv",
        "send",
        "shift",
    )

    def __init__(
        self, epoch: int, base_key: bytes, epoch_bits: int, group_size: int, leaf: int
    ) -> None:
        s_bits = index_bits(group_size)
        _check_bits(epoch_bits, s_bits)
        self.epoch = epoch
        self.base_key = base_key
        self.group_size = group_size
        self.leaf = leaf
        self.low = epoch % (1 << epoch_bits)
        self.index_mask = (1 << s_bits) - 1
        self.shift = s_bits + epoch_bits  # context_id = kid >> shift
        self.recv: dict[int, RecvKeyContext] = {}
        self.send: dict[int, SendKeyContext] = {}
        self.deadline = float("inf")  # set when retired


class MLSKeyManager:
    """SFrame protect/unprotect for one MLS group member (RFC 9605 section 5.2).

    ``epoch_bits`` is ``E``.  :meth:`set_epoch` installs a new epoch (from its
    MLS exporter) and makes it the sending epoch; the epoch it replaces stays
    decryptable for ``grace_period`` seconds of ``clock``.  Receive keys are
    derived lazily per KID on the first frame that authenticates, and cached.

    A KID carrying our own leaf index is a sending key and is refused by
    :meth:`unprotect` (RFC 9605 section 4.4.1: never use a key both ways).
    """

    def __init__(
        self,
        suite: CipherSuite | int,
        epoch_bits: int,
        clock: Clock,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        *,
        window_size: int = DEFAULT_WINDOW_SIZE,
        max_counter: int = MAX_VALUE,
        max_context_id: int | None = None,
    ) -> None:
        self.suite = get_suite(suite)
        _check_bits(epoch_bits, 0)
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning seconds")
        if not grace_period >= 0:
            raise ConfigurationError(f"grace_period must be >= 0, got {grace_period!r}")
        ReplayWindow(window_size)  # validate
        if type(max_counter) is not int or not 0 <= max_counter <= MAX_VALUE:
            raise ConfigurationError(f"max_counter must be in 0..2**64-1, got {max_counter!r}")
        self.epoch_bits = epoch_bits
        self._emask = (1 << epoch_bits) - 1
        self._clock = clock
        self._grace = float(grace_period)
        self._window = window_size
        self._max = max_counter
        if max_context_id is not None and (type(max_context_id) is not int or max_context_id < 0):
            raise ConfigurationError(f"max_context_id must be >= 0, got {max_context_id!r}")
        self._max_context = MAX_VALUE if max_context_id is None else max_context_id
        self._current: _Epoch | None = None
        self._retired: dict[int, _Epoch] = {}  # low epoch bits -> retired epoch

    # -- epochs ----------------------------------------------------------------

    @property
    def epoch(self) -> int | None:
        """The current (sending) epoch, or ``None`` before :meth:`set_epoch`."""
        return None if self._current is None else self._current.epoch

    @property
    def current_base_key(self) -> bytes | None:
        """The current epoch's ``base_key`` (for audits that must show what a holder of
        it can and cannot decrypt), or ``None`` before :meth:`set_epoch`."""
        return None if self._current is None else self._current.base_key

    @property
    def own_leaf_index(self) -> int | None:
        """Our leaf index in the current epoch."""
        return None if self._current is None else self._current.leaf

    def live_epochs(self) -> list[int]:
        """Epochs that can currently be decrypted (current first)."""
        self.purge_expired()
        cur = [] if self._current is None else [self._current.epoch]
        return cur + sorted((e.epoch for e in self._retired.values()), reverse=True)

    def set_epoch(
        self, epoch: int, exporter: Exporter, own_leaf_index: int, group_size: int
    ) -> None:
        """Install MLS ``epoch``; ``exporter`` is that epoch's MLS-Exporter.

        ``group_size`` is the number of leaves of the ratchet tree (it fixes
        ``S``).  Epochs must increase.  The replaced epoch stays usable for
        the grace period unless a newer epoch shares its low ``E`` bits.
        """
        if type(epoch) is not int or epoch < 0:
            raise ConfigurationError(f"epoch must be a non-negative integer, got {epoch!r}")
        cur = self._current
        if cur is not None and epoch <= cur.epoch:
            raise ConfigurationError(f"epoch {epoch} is not after the current epoch {cur.epoch}")
        index_bits(group_size)  # validates group_size
        if type(own_leaf_index) is not int or not 0 <= own_leaf_index < group_size:
            raise ConfigurationError(
                f"own_leaf_index {own_leaf_index!r} is outside the group of {group_size} leaves"
            )
        base_key = derive_base_key(self.suite, exporter)
        new = _Epoch(epoch, base_key, self.epoch_bits, group_size, own_leaf_index)
        now = self._clock()
        self._purge(now)
        if cur is not None and self._grace > 0:
            cur.deadline = now + self._grace
            cur.send.clear()  # the old epoch is never used for sending again
            self._retired[cur.low] = cur
        # Section 5.2: drop an old epoch that shares the new one's low E bits.
        self._retired.pop(new.low, None)
        self._current = new

    def _purge(self, now: float) -> None:
        for low in [low for low, ep in self._retired.items() if now >= ep.deadline]:
            del self._retired[low]

    def purge_expired(self) -> None:
        """Drop retired epochs whose grace period is over."""
        if self._retired:
            self._purge(self._clock())

    # -- KIDs ------------------------------------------------------------------

    def kid_for(self, leaf_index: int, context_id: int = 0) -> int:
        """The KID ``leaf_index`` uses with ``context_id`` in the current epoch."""
        ep = self._require_current()
        return make_kid(
            ep.epoch,
            leaf_index,
            epoch_bits=self.epoch_bits,
            index_bits=ep.shift - self.epoch_bits,
            context_id=context_id,
        )

    def own_kid(self, context_id: int = 0) -> int:
        """Our sending KID for ``context_id`` in the current epoch."""
        return self.kid_for(self._require_current().leaf, context_id)

    def _require_current(self) -> _Epoch:
        if self._current is None:
            raise UnknownKeyError("no MLS epoch installed yet (call set_epoch first)")
        return self._current

    # -- protect / unprotect ------------------------------------------------------

    def protect(self, metadata: Buffer, plaintext: Buffer, *, context_id: int = 0) -> bytes:
        """Encrypt with our KID for ``context_id`` in the current epoch."""
        ep = self._current
        ctx = None if ep is None else ep.send.get(context_id)
        if ctx is None:
            ep = self._require_current()
            kid = self.own_kid(context_id)
            ctx = SendKeyContext(self.suite, kid, ep.base_key, max_counter=self._max)
            ep.send[context_id] = ctx
        return ctx.seal(metadata, plaintext)

    def unprotect(self, data: Buffer, metadata: Buffer = b"", *, commit: bool = True) -> MLSFrame:
        """Decrypt a frame of any member in the current or a retired, live epoch.

        Raises only :class:`~clave.sframe.errors.SFrameError` subclasses:
        :class:`UnknownKeyError` for a KID of an unknown or expired epoch, a
        leaf outside the group, our own leaf, or a context id above
        ``max_context_id`` when one is set (an application that knows which
        context ids its senders use bounds the key contexts a member can make a
        receiver cache). With
        ``commit=False`` the counter is checked but recorded only by :meth:`accept`.
        """
        if type(data) is not bytes:
            data = _as_bytes(data, "ciphertext")
        kid, ctr, hlen = decode_header(data)
        ep = self._current
        ctx = None if ep is None else ep.recv.get(kid)
        if ctx is None or ep is None:
            return self._unprotect_slow(data, metadata, kid, ctr, hlen, commit)
        plaintext = ctx.open(data, hlen, ctr, metadata, commit=commit)
        leaf = (kid >> self.epoch_bits) & ep.index_mask
        return _tuple_new(MLSFrame, (ep.epoch, leaf, kid >> ep.shift, kid, ctr, plaintext))

    def accept(self, kid: int, ctr: int) -> None:
        """Record ``ctr`` of ``kid`` in its replay window after ``unprotect(commit=False)``.

        :class:`UnknownKeyError` if the KID's epoch is gone meanwhile;
        :class:`ReplayError` / :class:`CounterOutOfWindowError` as for a frame.
        """
        ep = self._epoch_of(kid, 0)
        ctx = ep.recv.get(kid)
        if ctx is None:
            raise UnknownKeyError(f"kid={kid}: no key context (no frame decrypted under it)")
        ctx.accept(ctr)

    def _epoch_of(self, kid: int, ctr: int) -> _Epoch:
        """The live epoch a KID belongs to (UnknownKeyError if none)."""
        low = kid & self._emask
        ep = self._current
        if ep is None or ep.low != low:
            ep = self._retired.get(low)
            if ep is None:
                raise UnknownKeyError(
                    f"kid={kid}: epoch bits {low} match no live epoch (ctr={ctr})"
                )
            if self._clock() >= ep.deadline:
                del self._retired[low]
                raise UnknownKeyError(
                    f"kid={kid}: epoch {ep.epoch} expired after its grace period (ctr={ctr})"
                )
        return ep

    def _unprotect_slow(
        self, data: bytes, metadata: Buffer, kid: int, ctr: int, hlen: int, commit: bool = True
    ) -> MLSFrame:
        ep = self._epoch_of(kid, ctr)
        ctx = ep.recv.get(kid)
        leaf = (kid >> self.epoch_bits) & ep.index_mask
        if ctx is None:
            if leaf >= ep.group_size:
                raise UnknownKeyError(
                    f"kid={kid}: leaf index {leaf} outside the group of {ep.group_size} "
                    f"in epoch {ep.epoch}"
                )
            if leaf == ep.leaf:
                raise UnknownKeyError(
                    f"kid={kid}: carries our own leaf index {leaf}; sending keys never decrypt"
                )
            if kid >> ep.shift > self._max_context:
                raise UnknownKeyError(
                    f"kid={kid}: context id {kid >> ep.shift} is above {self._max_context}, "
                    "which no member uses"
                )
            ctx = RecvKeyContext(self.suite, kid, ep.base_key, window_size=self._window)
            plaintext = ctx.open(data, hlen, ctr, metadata, commit=commit)
            ep.recv[kid] = ctx  # cache only keys that authenticated a frame
        else:
            plaintext = ctx.open(data, hlen, ctr, metadata, commit=commit)
        return MLSFrame(ep.epoch, leaf, kid >> ep.shift, kid, ctr, plaintext)


__all__ = [
    "BASE_KEY_LABEL",
    "Exporter",
    "KidFields",
    "MLSFrame",
    "MLSKeyManager",
    "derive_base_key",
    "index_bits",
    "make_kid",
    "parse_kid",
]
