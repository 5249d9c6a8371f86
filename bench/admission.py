"""What the admission and authority checks cost, as ratios measured in one run.

For a meeting of N members (owner-host, two certified successors, everyone
with a Clave credential vouched for by a long-term identity key):

* **Welcome**: a joiner processing the Welcome with plain MLS (no credential
  validator, no meeting checks) vs the way Clave does it (the credential
  validator on every leaf of the tree, then the owner / certificate / signer
  checks of ``clave.meeting.admission.verify_meeting``);
* **commit**: a member processing a key-refresh commit with MLS's allow-all
  policy vs the meeting's ``CommitRules`` (which decodes the policy and checks
  every certificate chain);
* **join request**: a host validating a KeyPackage for the group (RFC 9420
  section 10.1) vs opening the sealed request and validating it the Clave
  way (vouch, look-alike data, duplicates);
* **lobby reply**: sealing (sign + AES-GCM) and opening (decrypt + chain +
  signature) a signed "declined" answer, in microseconds.

Each figure is the median of several runs (``time.perf_counter`` after
``gc.collect()``); ratios are taken within the run. ``python bench/admission.py
[--sizes 10,100,1000]``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import clave.meeting  # noqa: F401
except ImportError:  # not installed: run from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from clave.meeting.admission import Request, join_group, make_request
from clave.meeting.identity import Identity, credential_validator, make_credential
from clave.meeting.join_request import open_join_request
from clave.meeting.keys import join_key
from clave.meeting.link import MeetingLink, owner_fingerprint
from clave.meeting.lobby import (
    Outcome,
    ReplyBody,
    check_key_package,
    open_reply,
    seal_reply,
)
from clave.meeting.policy import (
    CAPABILITIES,
    CommitRules,
    MeetingPolicy,
    initial_extensions,
    with_policy,
)
from clave.meeting.roles import extend, owner_entry, suite
from clave.mls.events import allow_all
from clave.mls.group import Group, GroupConfig, Signer
from clave.mls.key_package import (
    KeyPackageBundle,
    create_key_package,
    validate_key_package_for_group,
)
from clave.mls.structs import KeyPackage, MLSMessage

NOW = int(time.time())
CLAVE = GroupConfig(capabilities=CAPABILITIES, credential_validator=credential_validator)
PLAIN = GroupConfig(capabilities=CAPABILITIES)


def now() -> int:
    return NOW


def median_us(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def member(name: str) -> tuple[KeyPackageBundle, bytes]:
    priv, pub = suite().generate_signature_key_pair(os.urandom)
    credential = make_credential(Identity.generate(os.urandom), name, pub)
    bundle = create_key_package(
        suite(), credential, rng=os.urandom, now=NOW, signature_priv=priv,
        capabilities=CAPABILITIES, not_before=NOW - 3600,
    )  # fmt: skip
    return bundle, MLSMessage(bundle.key_package).to_bytes()


def build(n: int) -> tuple[Group, MeetingLink, bytes]:
    """A meeting of ``n`` members as the owner sees it; returns the group, the link and
    the owner's private key."""
    owner_priv, owner_pub = suite().generate_signature_key_pair(os.urandom)
    group_id = os.urandom(16)
    others = [member(f"member {i}") for i in range(n - 1)]
    successors = tuple(
        extend(owner_entry(owner_pub), owner_priv, group_id, b.key_package.leaf_node.signature_key)
        for b, _ in others[:2]
    )
    policy = MeetingPolicy(owner=owner_pub, hosts=(owner_entry(owner_pub),), successors=())
    signer = Signer(make_credential(Identity.generate(os.urandom), "Owner", owner_pub), owner_priv)
    group = Group.create(
        1, group_id, signer, rng=os.urandom, now=now,
        extensions=initial_extensions(policy), config=CLAVE,
    )  # fmt: skip
    group.commit(
        add=[kp for _, kp in others],
        extensions=with_policy(group.extensions, policy.replace(successors=successors)),
    )
    group.merge_pending_commit()
    link = MeetingLink("relay.example", os.urandom(32), owner_fingerprint(owner_pub))
    return group, link, owner_priv


def measure(n: int) -> dict[str, float]:
    runs = 5 if n < 1000 else 3
    owner, link, owner_priv = build(n)
    out: dict[str, float] = {}

    # Welcome: plain MLS vs Clave's checks.
    bundle, kp = member("Joiner")
    host = copy.deepcopy(owner)
    welcome = host.commit(add=[kp]).welcome
    assert welcome is not None
    request = Request(bundle, b"", b"")
    out["welcome_plain"] = median_us(
        lambda: Group.join(welcome, bundle, rng=os.urandom, now=now, config=PLAIN), runs
    )
    out["welcome_clave"] = median_us(
        lambda: join_group(welcome, request, link, rng=os.urandom, now=now,
                           policy=allow_all, config=CLAVE),
        runs,
    )  # fmt: skip

    # A key-refresh commit, processed by another member.
    joined, _ = join_group(welcome, request, link, rng=os.urandom, now=now,
                           policy=allow_all, config=CLAVE)  # fmt: skip
    host.merge_pending_commit()
    refresh = host.commit().commit
    rules = CommitRules(joined.group_id, lambda leaf: 0.0, None)
    plain, clave = copy.deepcopy(joined), copy.deepcopy(joined)
    out["commit_plain"] = median_us(lambda: copy.deepcopy(plain).process(refresh), runs)
    out["commit_clave"] = median_us(
        lambda: _with_policy(copy.deepcopy(clave), rules).process(refresh), runs
    )
    out["copy"] = median_us(lambda: copy.deepcopy(plain), runs)

    # A join request, at the host.
    req_bundle, req_kp = member("Knocker")
    key = join_key(link.secret)
    sealed = make_request(
        credential=req_bundle.key_package.leaf_node.credential,
        signature_private=_private_of(req_bundle),
        name="Knocker", conn=7, join_key=key, rng=os.urandom, now=NOW, lifetime=86400, skew=3600,
    ).sealed  # fmt: skip
    parsed = MLSMessage.from_bytes(req_kp).body
    assert isinstance(parsed, KeyPackage)
    out["request_plain"] = median_us(
        lambda: validate_key_package_for_group(parsed, owner.group_context, now=NOW), runs * 4
    )

    def clave_request() -> None:
        body = open_join_request(key, sealed)
        check_key_package(owner, body.key_package, NOW)

    out["request_clave"] = median_us(clave_request, runs * 4)

    # A signed lobby reply.
    body = ReplyBody(Outcome.declined, b"r" * 32, owner.group_id, owner.member(0).signature_key,
                     owner_entry(owner.member(0).signature_key))  # fmt: skip
    reply = seal_reply(key, body, owner_priv, os.urandom)
    out["reply_seal"] = median_us(lambda: seal_reply(key, body, owner_priv, os.urandom), runs * 4)
    out["reply_open"] = median_us(
        lambda: open_reply(key, reply, owner=link.owner, key_package_ref=b"r" * 32), runs * 4
    )
    return out


def _with_policy(group: Group, rules: CommitRules) -> Group:
    group._policy = rules
    return group


def _private_of(bundle: KeyPackageBundle) -> bytes:
    return bundle.signature_priv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print("median µs; ratio = Clave's checks / plain MLS, measured in the same run")
    print(
        f"{'N':>5} {'Welcome plain':>14} {'Clave':>10} {'ratio':>6} "
        f"{'refresh plain':>13} {'Clave':>9} {'ratio':>6} "
        f"{'request plain':>14} {'Clave':>9} {'ratio':>6} {'reply seal':>11} {'open':>7}"
    )
    for n in sizes:
        r = measure(n)
        cp = r["commit_plain"] - r["copy"]
        cc = r["commit_clave"] - r["copy"]
        print(
            f"{n:>5} {r['welcome_plain']:>14.0f} {r['welcome_clave']:>10.0f} "
            f"{r['welcome_clave'] / r['welcome_plain']:>6.2f} "
            f"{cp:>13.0f} {cc:>9.0f} {cc / cp:>6.2f} "
            f"{r['request_plain']:>14.0f} {r['request_clave']:>9.0f} "
            f"{r['request_clave'] / r['request_plain']:>6.2f} "
            f"{r['reply_seal']:>11.0f} {r['reply_open']:>7.0f}",
            flush=True,
        )
    print("(commit times exclude the state copy each run starts from)")


if __name__ == "__main__":
    main()
