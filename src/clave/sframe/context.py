"""SFrame protect/unprotect with per-KID key contexts (RFC 9605 section 4.4 and Appendix A).

* :class:`SendKeyContext` / :class:`RecvKeyContext`: the derived key, salt and
  cached AEAD object for one KID, plus the next CTR (sending) or the replay
  window (receiving).  A key context is for sending *or* receiving, never both
  (RFC 9605 section 4.4.1).
* :class:`Sender`: per-KID counters that are never reused
  (:class:`CounterExhaustedError` is raised before a counter would wrap).
* :class:`Receiver`: a *current* key set plus, after :meth:`Receiver.rotate`,
  the previous set, which stays usable for ``grace_period`` seconds of the
  injected clock and is then dropped.
* :class:`SFrameContext`: the notional API of RFC 9605 Appendix A combining
  both, refusing to use one KID for both directions.

``protect`` builds ``header || AEAD.Encrypt(sframe_key, nonce, header ||
metadata, plaintext)`` (section 4.4.3); ``unprotect`` reverses it (section
4.4.4) and raises only :class:`~clave.sframe.errors.SFrameError` subclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from cryptography.exceptions import InvalidTag

from .errors import (
    AuthenticationError,
    ConfigurationError,
    CounterExhaustedError,
    HeaderError,
    InvalidInputError,
    UnknownKeyError,
)
from .header import (
    _CONFIG,
    MAX_VALUE,
    decode_header,
    kid_prefix,
)
from .replay import DEFAULT_WINDOW_SIZE, ReplayWindow
from .suites import Buffer, CipherSuite, derive_key_salt, get_suite

Clock = Callable[[], float]
"""Monotonic time source in seconds, injected by the application."""

DEFAULT_GRACE_PERIOD = 2.0
"""Seconds the previous key set stays usable after a rotation."""

_NN = 12  # AEAD.Nn of every supported suite
# Above this size the ciphertext is passed to the AEAD as a zero-copy view.
_VIEW_THRESHOLD = 4096
# Smallest CTR whose header encoding takes n extra bytes.
_MIN_CTR_OF_LEN = (0, 8, *(1 << (8 * n - 8) for n in range(2, 9)))


Unprotected = tuple[int, int, bytes]
"""Result of :meth:`Receiver.unprotect`: ``(kid, ctr, plaintext)``.

A plain tuple rather than a named tuple: building one is measurably cheaper
on the per-frame hot path.
"""


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise InvalidInputError(f"{what} must be bytes-like, got {type(data).__name__}")


def _header_error(data: bytes) -> HeaderError:
    try:
        decode_header(data)
    except HeaderError as exc:
        return exc
    return HeaderError("malformed SFrame header")  # pragma: no cover


def _check_kid(kid: object) -> int:
    if type(kid) is not int or not 0 <= kid <= MAX_VALUE:
        raise ConfigurationError(f"kid must be an integer in 0..2**64-1, got {kid!r}")
    return kid


def _check_counter(name: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_VALUE:
        raise ConfigurationError(f"{name} must be an integer in 0..2**64-1, got {value!r}")
    return value


class SendKeyContext:
    """Sending state for one KID: derived key/salt, AEAD object and next CTR.

    Header bytes for the KID are precomputed so :meth:`seal` only appends the
    CTR.  ``max_counter`` (default ``2**64 - 1``) is the last CTR that may be
    used; after it :meth:`seal` raises :class:`CounterExhaustedError`.
    """

    __slots__ = (
        "_aead",
        "_hlimit",
        "_hn",
        "_hpre",
        "_max",
        "_next",
        "_prefix",
        "_salt",
        "_small",
        "kid",
        "suite",
    )

    def __init__(
        self,
        suite: CipherSuite,
        kid: int,
        base_key: Buffer,
        *,
        next_counter: int = 0,
        max_counter: int = MAX_VALUE,
    ) -> None:
        self.suite = suite
        self.kid = _check_kid(kid)
        self._next = _check_counter("next_counter", next_counter)
        self._max = _check_counter("max_counter", max_counter)
        key, salt = derive_key_salt(suite, kid, base_key)
        self._aead = suite.aead(key)
        self._salt = int.from_bytes(salt, "big")
        self._small = tuple(kid_prefix(kid, c) for c in range(8))
        # _prefix[n]: config byte and KID for a CTR of n bytes (n = 1..8).
        self._prefix = (b"", *(kid_prefix(kid, _MIN_CTR_OF_LEN[n]) for n in range(1, 9)))
        # Cache for the current CTR byte length n: prefix, n, and 256**n.  CTRs
        # only grow, so every CTR below _hlimit (once >= 8) has this length.
        self._hpre = b""
        self._hn = 0
        self._hlimit = 0

    @property
    def next_counter(self) -> int:
        """CTR the next :meth:`seal` will use."""
        return self._next

    def _exhausted(self) -> CounterExhaustedError:
        return CounterExhaustedError(
            f"kid={self.kid}: counter exhausted (next ctr={self._next} > max {self._max}); "
            "a new key is needed"
        )

    def _header(self, ctr: int) -> bytes:
        """Header for ``ctr`` (section 4.3), refreshing the CTR-length cache.

        Raises :class:`CounterExhaustedError` if ``ctr`` is past ``max_counter``;
        the cache limit never exceeds ``max_counter + 1``, so the hot path
        (``ctr < _hlimit``) needs no separate exhaustion check.
        """
        if ctr > self._max:
            raise self._exhausted()
        if ctr < 8:
            return self._small[ctr]
        n = (ctr.bit_length() + 7) >> 3
        self._hpre = self._prefix[n]
        self._hn = n
        self._hlimit = min(1 << (8 * n), self._max + 1)
        return self._hpre + ctr.to_bytes(n)

    def seal(self, metadata: Buffer, plaintext: Buffer) -> bytes:
        """Encrypt one frame with the next CTR (RFC 9605 section 4.4.3)."""
        ctr = self._next
        header = self._hpre + ctr.to_bytes(self._hn) if ctr < self._hlimit else self._header(ctr)
        # Consume the counter before encrypting so it is never used twice.
        self._next = ctr + 1
        try:
            return header + self._aead.encrypt(
                (self._salt ^ ctr).to_bytes(_NN), plaintext, header + metadata
            )
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise InvalidInputError(
                f"cannot protect frame kid={self.kid}, ctr={ctr}: {exc}"
            ) from None


class RecvKeyContext:
    """Receiving state for one KID: derived key/salt, AEAD object, replay window."""

    __slots__ = ("_aead", "_salt", "kid", "suite", "window")

    def __init__(
        self,
        suite: CipherSuite,
        kid: int,
        base_key: Buffer,
        *,
        window_size: int = DEFAULT_WINDOW_SIZE,
    ) -> None:
        self.suite = suite
        self.kid = _check_kid(kid)
        self.window = ReplayWindow(window_size, kid=kid)
        key, salt = derive_key_salt(suite, kid, base_key)
        self._aead = suite.aead(key)
        self._salt = int.from_bytes(salt, "big")

    def open(
        self, data: bytes, header_len: int, ctr: int, metadata: Buffer, *, commit: bool = True
    ) -> bytes:
        """Decrypt the frame ``data`` whose header (already parsed) is ``header_len`` long.

        Authenticates first, then records ``ctr`` in the replay window
        (RFC 9605 section 4.4.4). With ``commit=False`` the counter is only
        checked: the caller records it with :meth:`accept` once the frame passed
        further checks (a sender's signature), so a frame that passes the AEAD but
        not those checks cannot move the window.
        """
        try:
            plaintext = self._aead.decrypt(
                (self._salt ^ ctr).to_bytes(_NN),
                data[header_len:] if len(data) < _VIEW_THRESHOLD else memoryview(data)[header_len:],
                data[:header_len] + metadata,
            )
        except (InvalidTag, AuthenticationError):
            raise AuthenticationError(
                f"authentication failed for kid={self.kid}, ctr={ctr}: frame discarded"
            ) from None
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise InvalidInputError(
                f"cannot unprotect frame kid={self.kid}, ctr={ctr}: {exc}"
            ) from None
        if commit:
            self.window.accept(ctr)
        else:
            self.window.check(ctr)
        return plaintext

    def accept(self, ctr: int) -> None:
        """Record ``ctr`` in the replay window (after a deferred check)."""
        self.window.accept(ctr)


class Sender:
    """Encrypting side: KID -> :class:`SendKeyContext` (RFC 9605 section 4.4.1).

    Each KID's CTR starts at ``initial_counter`` (default 0), increases by one
    per frame and is never reused.
    """

    __slots__ = ("_keys", "_max", "suite")

    def __init__(self, suite: CipherSuite | int, *, max_counter: int = MAX_VALUE) -> None:
        self.suite = get_suite(suite)
        self._max = _check_counter("max_counter", max_counter)
        self._keys: dict[int, SendKeyContext] = {}

    def add_key(self, kid: int, base_key: Buffer, *, initial_counter: int = 0) -> None:
        """Provision ``base_key`` for sending under ``kid``.

        Re-adding a KID is refused: restarting its counter would reuse nonces.
        """
        _check_kid(kid)
        if kid in self._keys:
            raise ConfigurationError(f"kid={kid} already has a sending key")
        self._keys[kid] = SendKeyContext(
            self.suite, kid, base_key, next_counter=initial_counter, max_counter=self._max
        )

    def remove_key(self, kid: int) -> None:
        """Forget the sending key of ``kid`` (no error if absent)."""
        self._keys.pop(kid, None)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def kids(self) -> Iterator[int]:
        """KIDs with a sending key."""
        return iter(tuple(self._keys))

    def next_counter(self, kid: int) -> int:
        """CTR the next frame for ``kid`` will carry."""
        return self._context(kid).next_counter

    def _context(self, kid: int) -> SendKeyContext:
        ctx = self._keys.get(kid)
        if ctx is None:
            raise UnknownKeyError(f"no sending key for kid={kid}")
        return ctx

    def protect(self, kid: int, metadata: Buffer, plaintext: Buffer) -> bytes:
        """Return the SFrame ciphertext ``header || ct || tag`` for the next CTR of ``kid``."""
        # Hot path: this inlines SendKeyContext.seal().
        ctx = self._keys.get(kid)
        if ctx is None:
            raise UnknownKeyError(f"no sending key for kid={kid}")
        ctr = ctx._next
        # _header() raises CounterExhaustedError; below _hlimit ctr <= max_counter.
        header = ctx._hpre + ctr.to_bytes(ctx._hn) if ctr < ctx._hlimit else ctx._header(ctr)
        ctx._next = ctr + 1  # consumed before use: never reused, even on error
        try:
            return header + ctx._aead.encrypt(
                (ctx._salt ^ ctr).to_bytes(_NN), plaintext, header + metadata
            )
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise InvalidInputError(f"cannot protect frame kid={kid}, ctr={ctr}: {exc}") from None


class Receiver:
    """Decrypting side: a current key set and a previous one during a grace period.

    :meth:`rotate` makes the current set "previous" (usable until
    ``grace_period`` seconds of ``clock`` have passed) and starts a new
    current set; an older previous set is dropped at once.  Expired keys are
    removed and a frame for them raises :class:`UnknownKeyError`.  A KID in
    both sets resolves to the current one.
    """

    __slots__ = (
        "_clock",
        "_current",
        "_deadline",
        "_grace",
        "_previous",
        "_window",
        "suite",
    )

    def __init__(
        self,
        suite: CipherSuite | int,
        *,
        window_size: int = DEFAULT_WINDOW_SIZE,
        clock: Clock | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD,
    ) -> None:
        self.suite = get_suite(suite)
        ReplayWindow(window_size)  # validate early
        if not grace_period >= 0:
            raise ConfigurationError(f"grace_period must be >= 0, got {grace_period!r}")
        self._window = window_size
        self._clock = clock
        self._grace = float(grace_period)
        self._current: dict[int, RecvKeyContext] = {}
        self._previous: dict[int, RecvKeyContext] = {}
        self._deadline = 0.0

    def add_key(self, kid: int, base_key: Buffer) -> None:
        """Provision ``base_key`` for receiving under ``kid`` in the current set."""
        _check_kid(kid)
        if kid in self._current:
            raise ConfigurationError(f"kid={kid} already has a receiving key; remove it first")
        self._current[kid] = RecvKeyContext(self.suite, kid, base_key, window_size=self._window)

    def remove_key(self, kid: int) -> None:
        """Forget ``kid`` in both the current and the previous set."""
        self._current.pop(kid, None)
        self._previous.pop(kid, None)

    def rotate(self, keys: Mapping[int, Buffer] | None = None) -> None:
        """Start a new current key set (``keys``); keep the old one for the grace period."""
        new = {}
        for kid, base_key in (keys or {}).items():
            _check_kid(kid)
            new[kid] = RecvKeyContext(self.suite, kid, base_key, window_size=self._window)
        if self._current and self._grace > 0:
            if self._clock is None:
                raise ConfigurationError("rotate() with a grace period needs a clock")
            self._previous = self._current
            self._deadline = self._clock() + self._grace
        else:
            self._previous = {}
        self._current = new

    def purge_expired(self) -> None:
        """Drop the previous key set if its grace period is over."""
        if self._previous and (self._clock is None or self._clock() >= self._deadline):
            self._previous = {}

    def __contains__(self, kid: object) -> bool:
        self.purge_expired()
        return kid in self._current or kid in self._previous

    def _fallback(self, kid: int) -> RecvKeyContext:
        if self._previous:
            self.purge_expired()
            ctx = self._previous.get(kid)
            if ctx is not None:
                return ctx
        raise UnknownKeyError(f"no receiving key for kid={kid}")

    def unprotect(self, data: Buffer, metadata: Buffer = b"") -> Unprotected:
        """Authenticate and decrypt one SFrame ciphertext (RFC 9605 section 4.4.4).

        Returns ``(kid, ctr, plaintext)``.  Raises :class:`HeaderError`,
        :class:`UnknownKeyError`, :class:`AuthenticationError`,
        :class:`ReplayError` / :class:`CounterOutOfWindowError` or
        :class:`InvalidInputError`; nothing else.
        """
        # Hot path: this inlines decode_header() and RecvKeyContext.open().
        if type(data) is not bytes:
            data = _as_bytes(data, "ciphertext")
        try:
            hlen, ctr_bits, ctr_mask, kid_in, ctr_in, kid_min, ctr_min = _CONFIG[data[0]]
        except IndexError:
            raise _header_error(data) from None
        n = len(data)
        if n < hlen:
            raise _header_error(data)
        v = int.from_bytes(data[1:hlen])
        kid = v >> ctr_bits | kid_in
        ctr = v & ctr_mask | ctr_in
        if kid < kid_min or ctr < ctr_min:
            raise _header_error(data)
        ctx = self._current.get(kid)
        if ctx is None:
            ctx = self._fallback(kid)
        try:
            plaintext = ctx._aead.decrypt(
                (ctx._salt ^ ctr).to_bytes(_NN),
                data[hlen:] if n < _VIEW_THRESHOLD else memoryview(data)[hlen:],
                data[:hlen] + metadata,
            )
        except (InvalidTag, AuthenticationError):
            raise AuthenticationError(
                f"authentication failed for kid={kid}, ctr={ctr}: frame discarded"
            ) from None
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise InvalidInputError(f"cannot unprotect frame kid={kid}, ctr={ctr}: {exc}") from None
        window = ctx.window
        if ctr > window._top:
            # Inlined fast path of ReplayWindow.accept(): a new highest counter.
            window._top = ctr
            window._ring[ctr % window._size] = ctr
        else:
            window.accept(ctr)
        return (kid, ctr, plaintext)


class SFrameContext:
    """RFC 9605 Appendix A "SFrame context": send and receive keys of one session.

    A KID is either a sending or a receiving key, never both
    (RFC 9605 section 4.4.1).
    """

    __slots__ = ("receiver", "sender", "suite")

    def __init__(
        self,
        suite: CipherSuite | int,
        *,
        window_size: int = DEFAULT_WINDOW_SIZE,
        max_counter: int = MAX_VALUE,
        clock: Clock | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD,
    ) -> None:
        self.suite = get_suite(suite)
        self.sender = Sender(self.suite, max_counter=max_counter)
        self.receiver = Receiver(
            self.suite, window_size=window_size, clock=clock, grace_period=grace_period
        )

    def add_send_key(self, kid: int, base_key: Buffer, *, initial_counter: int = 0) -> None:
        """Provision a key used only for encryption."""
        if kid in self.receiver:
            raise ConfigurationError(f"kid={kid} is a receiving key; a key is never used for both")
        self.sender.add_key(kid, base_key, initial_counter=initial_counter)

    def add_recv_key(self, kid: int, base_key: Buffer) -> None:
        """Provision a key used only for decryption."""
        if kid in self.sender:
            raise ConfigurationError(f"kid={kid} is a sending key; a key is never used for both")
        self.receiver.add_key(kid, base_key)

    def remove_key(self, kid: int) -> None:
        """Forget ``kid`` for both directions."""
        self.sender.remove_key(kid)
        self.receiver.remove_key(kid)

    def protect(self, kid: int, metadata: Buffer, plaintext: Buffer) -> bytes:
        """See :meth:`Sender.protect`."""
        return self.sender.protect(kid, metadata, plaintext)

    def unprotect(self, data: Buffer, metadata: Buffer = b"") -> Unprotected:
        """See :meth:`Receiver.unprotect`."""
        return self.receiver.unprotect(data, metadata)


def protect_frame(
    suite: CipherSuite | int,
    base_key: Buffer,
    kid: int,
    ctr: int,
    metadata: Buffer,
    plaintext: Buffer,
) -> bytes:
    """Stateless ``encrypt(CTR, KID, metadata, plaintext)`` of RFC 9605 section 4.4.3.

    The caller is responsible for never repeating ``(base_key, kid, ctr)``.
    """
    return SendKeyContext(get_suite(suite), kid, base_key, next_counter=ctr).seal(
        metadata, plaintext
    )


def unprotect_frame(
    suite: CipherSuite | int, base_key: Buffer, data: Buffer, metadata: Buffer = b""
) -> Unprotected:
    """Stateless ``decrypt(metadata, sframe_ciphertext)`` (no replay protection)."""
    if type(data) is not bytes:
        data = _as_bytes(data, "ciphertext")
    kid, ctr, hlen = decode_header(data)
    ctx = RecvKeyContext(get_suite(suite), kid, base_key, window_size=1)
    return kid, ctr, ctx.open(data, hlen, ctr, metadata)


__all__ = [
    "DEFAULT_GRACE_PERIOD",
    "Clock",
    "Receiver",
    "RecvKeyContext",
    "SFrameContext",
    "SendKeyContext",
    "Sender",
    "Unprotected",
    "protect_frame",
    "unprotect_frame",
]
