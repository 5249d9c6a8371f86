"""Benchmark of MLS (RFC 9420) group operations at 10, 100 and 1000 members.

For each group size N (cipher suite 1, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
handshake messages as PrivateMessage, the default):

* the creator builds the group with ONE commit adding N-1 members (timed, for
  information), then makes one self-update commit so its direct path is full;
  only two other members are materialized from the Welcome: the one at the
  rightmost leaf ("right") and the one at leaf 1 ("other");
* from that same epoch, every measurement starts from an identical copy of the
  acting member's state: by default a deep copy of the in-memory ``Group``, so
  per-node caches are as warm as in a long-running client; with
  ``--state saved``, ``Group.from_bytes(Group.to_bytes())``, as a client that
  reloads its state from storage for every message (cold caches):

  - add one member: commit create (creator, no path: Add needs none), processing
    by ``right``, Welcome processing by the joiner;
  - remove one member (a leaf in the middle of the tree): commit create by
    ``right``, processing by ``other``;
  - self-update (a path-only commit): create by the creator, processing by ``right``;
  - sizes in bytes of the add commit, Welcome, remove commit, update commit and
    a GroupInfo carrying the ratchet tree.

Each time is the median of several repetitions (5 below 1000 members, 3 at 1000,
or ``--reps``), wall-clock (``time.perf_counter``) after a ``gc.collect()``. Every
measured commit is then merged and checked to give all parties the same epoch
secrets. Run: ``python bench/mls.py [--sizes 10,100,1000] [--state memory|saved]``.

Side by side: ``python bench/mls.py --baseline REV [--rounds R]`` checks out
commit REV in a temporary ``git worktree`` under /tmp and runs these same
measurements (this script) in subprocesses, once with ``PYTHONPATH`` on the
worktree's ``src`` and once on this tree's ``src``, alternating old and new
for each size (R times, default 1; of the R medians the lowest is kept, the
run least disturbed by other load on a shared machine). It prints
old / new / new÷old per operation and size, and the message sizes of both (they
should match: the protocol output is the same). The worktree is removed after.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import clave.mls  # noqa: F401
except ImportError:  # not installed: run from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from clave.mls.ciphersuite import get_suite
from clave.mls.group import Group, Signer
from clave.mls.key_package import KeyPackageBundle, create_key_package
from clave.mls.structs import Credential

SUITE_ID = 1
DEFAULT_SIZES = (10, 100, 1000)

OPERATIONS = (
    ("build", "build: commit of N-1 adds (1 run)"),
    ("add_create", "add: commit create"),
    ("add_process", "add: commit process (member)"),
    ("welcome_process", "add: Welcome process (joiner)"),
    ("remove_create", "remove: commit create"),
    ("remove_process", "remove: commit process"),
    ("update_create", "self-update: commit create"),
    ("update_process", "self-update: commit process"),
)
SIZE_ROWS = (
    ("add_commit", "add commit"),
    ("welcome", "Welcome (1 joiner)"),
    ("remove_commit", "remove commit"),
    ("update_commit", "update commit"),
    ("group_info", "GroupInfo with ratchet tree"),
)
# (operation, N, limit in ms)
GOALS = (
    ("remove_create", 1000, 300.0),
    ("remove_process", 1000, 60.0),
    ("add_process", 1000, 20.0),
    ("welcome_process", 1000, 250.0),
)

suite = get_suite(SUITE_ID)
rng = os.urandom


def now() -> int:
    return int(time.time())


def new_signer(name: str) -> Signer:
    priv, _ = suite.generate_signature_key_pair(rng)
    return Signer(Credential.basic(name.encode()), priv)


def new_bundle(name: str) -> KeyPackageBundle:
    s = new_signer(name)
    return create_key_package(
        suite, s.credential, rng=rng, now=now(), signature_priv=s.signature_private_key
    )


CLONE_MODE = "memory"


def clone(group: Group) -> Group:
    """An independent copy of ``group``'s state.

    ``memory`` (default): a deep copy of the in-memory object, per-node caches
    included, as in a long-running client (the cipher suite object, immutable,
    is shared). ``saved``: ``Group.from_bytes(group.to_bytes())``, as a client
    that reloads its state from storage for every message.
    """
    if CLONE_MODE == "saved":
        return Group.from_bytes(group.to_bytes(), rng=rng, now=now)
    memo: dict[int, Any] = {id(group.suite): group.suite}
    return copy.deepcopy(group, memo)


def timed(setup: Callable[[], Any], op: Callable[[Any], Any], reps: int) -> tuple[float, Any, Any]:
    """Median milliseconds of ``op(setup())`` over ``reps`` runs; the last input and result."""
    times: list[float] = []
    arg: Any = None
    result: Any = None
    for _ in range(reps):
        arg = setup()
        gc.collect()  # do not bill the copy's garbage to the measured operation
        start = time.perf_counter()
        result = op(arg)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), arg, result


def check_same_epoch(committer: Group, *others: Group) -> None:
    """The committer merges its pending commit; everyone must agree on the new epoch."""
    committer.merge_pending_commit()
    for g in others:
        assert g.epoch == committer.epoch, "benchmark sanity check: epochs differ"
        assert g.epoch_authenticator == committer.epoch_authenticator, "epoch secrets differ"


def bench_size(n: int, reps: int) -> tuple[dict[str, float], dict[str, int]]:
    if n < 4:
        raise ValueError("group size must be at least 4")
    ms: dict[str, float] = {}
    sizes: dict[str, int] = {}
    creator = Group.create(SUITE_ID, b"bench-%d" % n, new_signer("creator"), rng=rng, now=now)
    bundles = [new_bundle(f"member-{i}") for i in range(1, n)]
    kps = [b.key_package.to_bytes() for b in bundles]

    start = time.perf_counter()
    out = creator.commit(add=kps)
    ms["build"] = (time.perf_counter() - start) * 1000.0
    creator.merge_pending_commit()
    assert out.welcome is not None
    right = Group.join(out.welcome, bundles[-1], rng=rng, now=now)
    other = Group.join(out.welcome, bundles[0], rng=rng, now=now)
    assert right.own_leaf_index == n - 1 and other.own_leaf_index == 1

    up = creator.commit()
    creator.merge_pending_commit()
    right.process(up.commit)
    other.process(up.commit)
    assert creator.epoch_authenticator == right.epoch_authenticator == other.epoch_authenticator
    sizes["group_info"] = len(creator.group_info(with_ratchet_tree=True))

    # -- add one member
    joiner = new_bundle("joiner")
    joiner_kp = joiner.key_package.to_bytes()
    ms["add_create"], g_add, add = timed(
        lambda: clone(creator), lambda g: g.commit(add=[joiner_kp]), reps
    )
    ms["add_process"], g_right, _ = timed(
        lambda: clone(right), lambda g: g.process(add.commit), reps
    )
    ms["welcome_process"], _, g_joined = timed(
        lambda: None, lambda _: Group.join(add.welcome, joiner, rng=rng, now=now), reps
    )
    assert g_joined.own_leaf_index == n
    check_same_epoch(g_add, g_right, g_joined)
    sizes["add_commit"] = len(add.commit)
    sizes["welcome"] = len(add.welcome)

    # -- remove one member (a leaf in the middle, neither `right` nor `other`)
    victim = n // 2
    ms["remove_create"], g_rem, rem = timed(
        lambda: clone(right), lambda g: g.commit(remove=[victim]), reps
    )
    ms["remove_process"], g_other, _ = timed(
        lambda: clone(other), lambda g: g.process(rem.commit), reps
    )
    check_same_epoch(g_rem, g_other)
    sizes["remove_commit"] = len(rem.commit)

    # -- self-update by the creator
    ms["update_create"], g_upd, upd = timed(lambda: clone(creator), lambda g: g.commit(), reps)
    ms["update_process"], g_right, _ = timed(
        lambda: clone(right), lambda g: g.process(upd.commit), reps
    )
    check_same_epoch(g_upd, g_right)
    sizes["update_commit"] = len(upd.commit)
    return ms, sizes


SizeResult = tuple[dict[str, float], dict[str, int]]
"""Median ms per operation and message sizes in bytes, for one group size."""
Results = dict[int, SizeResult]


def print_tables(results: Results, ns: list[int]) -> None:
    print(
        f"MLS cipher suite {SUITE_ID} (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519), "
        f"PrivateMessage handshakes; state: {CLONE_MODE}; median ms"
    )
    print()
    print("| operation | " + " | ".join(f"N={n}" for n in ns) + " |")
    print("|---|" + "---:|" * len(ns))
    for key, label in OPERATIONS:
        print(f"| {label} | " + " | ".join(f"{results[n][0][key]:.1f}" for n in ns) + " |")
    print()
    print("| message size (bytes) | " + " | ".join(f"N={n}" for n in ns) + " |")
    print("|---|" + "---:|" * len(ns))
    for key, label in SIZE_ROWS:
        print(f"| {label} | " + " | ".join(str(results[n][1][key]) for n in ns) + " |")
    print()
    print_goals(results)


def print_goals(results: Results) -> None:
    labels = dict(OPERATIONS)
    for key, n, limit in GOALS:
        if n not in results:
            print(f"goal: {labels[key]} at N={n} <= {limit:.0f} ms: not measured")
            continue
        value = results[n][0][key]
        verdict = "met" if value <= limit else "NOT met"
        print(f"goal: {labels[key]} at N={n} <= {limit:.0f} ms: {value:.1f} ms, {verdict}")


# -- side by side with an older commit ---------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@contextmanager
def worktree(rev: str) -> Iterator[tuple[str, Path]]:
    """A detached ``git worktree`` of ``rev`` under /tmp: (full commit id, its src)."""
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    parent = Path(tempfile.mkdtemp(prefix=f"clave-bench-{commit[:9]}-", dir="/tmp"))
    tree = parent / "tree"
    _git("worktree", "add", "--detach", str(tree), commit)
    try:
        yield commit, tree / "src"
    finally:
        _git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(parent, ignore_errors=True)


def measure_in(src: Path, n: int, reps: int | None) -> SizeResult:
    """Run this script at size ``n`` in a subprocess importing clave from ``src``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--sizes", str(n)]
    cmd += ["--state", CLONE_MODE, "--json"]
    if reps is not None:
        cmd += ["--reps", str(reps)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"the run for {src} at N={n} failed (exit status {done.returncode})")
    out = json.loads(done.stdout)
    imported = Path(out["clave"]).resolve()
    if not imported.is_relative_to(src.resolve()):
        raise RuntimeError(f"the run for {src} imported clave from {imported}")
    ms, sizes = out["results"][str(n)]
    return ms, sizes


def _best_of(runs: list[SizeResult]) -> SizeResult:
    ms = {key: min(r[0][key] for r in runs) for key, _ in OPERATIONS}
    return ms, runs[-1][1]


def side_by_side(rev: str, ns: list[int], rounds: int, reps: int | None) -> int:
    here = ROOT / "src"
    old: Results = {}
    new: Results = {}
    with worktree(rev) as (commit, old_src):
        for n in ns:
            old_runs = []
            new_runs = []
            for r in range(rounds):
                t0 = time.perf_counter()
                old_runs.append(measure_in(old_src, n, reps))
                new_runs.append(measure_in(here, n, reps))
                took = time.perf_counter() - t0
                print(f"# N={n} round {r + 1}/{rounds}: {took:.1f} s", file=sys.stderr, flush=True)
            old[n] = _best_of(old_runs)
            new[n] = _best_of(new_runs)
    head = _git("rev-parse", "--short", "HEAD")
    dirty = " + uncommitted changes" if _git("status", "--porcelain", "--", "src") else ""
    print(
        f"MLS cipher suite {SUITE_ID}, PrivateMessage handshakes; state: {CLONE_MODE}; "
        f"median ms{f' (lowest of {rounds} runs)' if rounds > 1 else ''}"
    )
    print(f"old: {commit[:9]}; new: {head}{dirty}; new/old < 1 is faster")
    print()
    print("| operation | N | old ms | new ms | new/old |")
    print("|---|---:|---:|---:|---:|")
    for key, label in OPERATIONS:
        for n in ns:
            a, b = old[n][0][key], new[n][0][key]
            print(f"| {label} | {n} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
    print()
    print("| message size (bytes) | N | old | new |")
    print("|---|---:|---:|---:|")
    for key, label in SIZE_ROWS:
        for n in ns:
            print(f"| {label} | {n} | {old[n][1][key]} | {new[n][1][key]} |")
    print()
    print_goals(new)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(n) for n in DEFAULT_SIZES),
        help="comma-separated group sizes (default 10,100,1000)",
    )
    parser.add_argument(
        "--state",
        choices=("memory", "saved"),
        default="memory",
        help="start each run from a deep copy of the in-memory state (default) or from "
        "the state saved with Group.to_bytes() and restored with Group.from_bytes()",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure commit REV (in a temporary git worktree) and print old/new ratios",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --baseline: alternate old and new this many times per size (best kept)",
    )
    parser.add_argument(
        "--reps",
        type=int,
        default=None,
        help="repetitions per measurement (default 5, 3 from 1000 members)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    global CLONE_MODE
    CLONE_MODE = args.state
    ns = [int(x) for x in args.sizes.split(",") if x.strip()]
    if args.baseline is not None:
        return side_by_side(args.baseline, ns, max(1, args.rounds), args.reps)
    results: Results = {}
    for n in ns:
        reps = args.reps or (3 if n >= 1000 else 5)
        t0 = time.perf_counter()
        results[n] = bench_size(n, reps)
        print(f"# N={n}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    if args.json:
        json.dump({"clave": sys.modules["clave"].__file__, "results": results}, sys.stdout)
        return 0
    print_tables(results, ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
