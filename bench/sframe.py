"""Benchmark of the SFrame hot path (RFC 9605) against raw AES-GCM.

For each payload size and cipher suite, measures microseconds per
``Sender.protect`` + ``Receiver.unprotect`` (replay window enforced, counters
increasing, empty metadata) and divides by one raw ``AESGCM.encrypt`` +
``AESGCM.decrypt`` call (AES-128 key, 12-byte nonce, same payload, no AAD)
measured in the same run.  Each figure is the best of several repeats, with
the raw and SFrame measurements interleaved so machine noise hits both.

Run: ``python bench/sframe.py [--quick]``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

try:
    import clave.sframe  # noqa: F401
except ImportError:  # not installed: run from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from clave.sframe import RFC9605_SUITES, CipherSuite, MLSKeyManager, Receiver, Sender

SIZES = (100, 1_000, 10_000, 50_000)
KID = 0x14E  # a typical MLS-style KID (two bytes in the header)


def _per_call(fn: Callable[[], None], iterations: int) -> float:
    """Seconds per call over one batch of ``iterations`` calls."""
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations


def _raw_pair(size: int) -> Callable[[], None]:
    aead = AESGCM(os.urandom(16))
    nonce = os.urandom(12)
    payload = os.urandom(size)
    encrypt, decrypt = aead.encrypt, aead.decrypt

    def run() -> None:
        decrypt(nonce, encrypt(nonce, payload, None), None)

    return run


def _sframe_pair(suite: CipherSuite, size: int) -> Callable[[], None]:
    base_key = os.urandom(suite.nk)
    sender = Sender(suite)
    sender.add_key(KID, base_key)
    receiver = Receiver(suite)
    receiver.add_key(KID, base_key)
    payload = os.urandom(size)
    protect, unprotect = sender.protect, receiver.unprotect

    def run() -> None:
        unprotect(protect(KID, b"", payload), b"")

    return run


def _mls_pair(suite: CipherSuite, size: int) -> Callable[[], None]:
    clock = time.monotonic  # the benchmark may read time; the library never does
    alice, bob = MLSKeyManager(suite, 4, clock), MLSKeyManager(suite, 4, clock)
    secret = os.urandom(suite.nk)

    def exporter(label: bytes, context: bytes, length: int) -> bytes:
        return secret[:length]

    alice.set_epoch(14, exporter, 20, 64)  # KID 0x14e, as in RFC 9605 figure 7
    bob.set_epoch(14, exporter, 3, 64)
    payload = os.urandom(size)
    protect, unprotect = alice.protect, bob.unprotect

    def run() -> None:
        unprotect(protect(b"", payload), b"")

    return run


def _iterations(size: int, quick: bool) -> int:
    n = 20_000 if size <= 1_000 else 8_000 if size <= 10_000 else 2_500
    return n // 10 if quick else n


def _measure(
    make: Callable[[int], Callable[[], None]], repeats: int, quick: bool
) -> list[tuple[float, float]]:
    """(seconds per pair, ratio to raw AES-GCM) for every payload size."""
    out = []
    for size in SIZES:
        n = _iterations(size, quick)
        raw, pair = _raw_pair(size), make(size)
        raw(), pair()  # warm up
        best_raw = best = float("inf")
        for _ in range(repeats):  # interleaved so noise hits both alike
            best_raw = min(best_raw, _per_call(raw, n))
            best = min(best, _per_call(pair, n))
        out.append((best, best / best_raw))
    return out


def _row(name: str, cells: list[tuple[float, float]]) -> str:
    return f"| {name} | " + " | ".join(f"{t * 1e6:.2f} us ({r:.2f}x)" for t, r in cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SFrame protect+unprotect benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per figure (best kept)")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats

    print(
        f"Python {sys.version.split()[0]}, best of {repeats} repeats. Each cell: microseconds "
        "per protect+unprotect (ratio to one raw AESGCM-128 encrypt+decrypt).\n"
    )
    print("| Suite | " + " | ".join(f"{s:,} B" for s in SIZES) + " |")
    print("|:--|" + "--:|" * len(SIZES))
    raw = []
    for size in SIZES:
        pair, n = _raw_pair(size), _iterations(size, args.quick)
        raw.append((min(_per_call(pair, n) for _ in range(repeats)), 1.0))
    for suite in RFC9605_SUITES:
        cells = _measure(functools.partial(_sframe_pair, suite), repeats, args.quick)
        print(_row(suite.name, cells), flush=True)
    gcm = RFC9605_SUITES[3]
    cells = _measure(functools.partial(_mls_pair, gcm), repeats, args.quick)
    print(_row(f"{gcm.name} via MLSKeyManager", cells))
    print(_row("raw AESGCM-128 encrypt+decrypt", raw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
