"""The public API of clave.mls as docs/MLS.md presents it.

The example of docs/MLS.md is run as written (its ``python`` blocks, in order,
in one namespace); then each API point the page promises gets a unit test:
suite as id or object, Signer or Credential, ``now`` as Unix seconds or a
clock, KeyPackage wire bytes, removal by identity, and joining with several
KeyPackageBundles.
"""

from __future__ import annotations

import ast
import dataclasses
import random
import re
from pathlib import Path

import pytest

import clave.mls
from clave.mls import (
    AmbiguousMemberError,
    CipherSuite,
    CommitProcessed,
    Credential,
    Group,
    KeyPackageBundle,
    MemberLookupError,
    Rng,
    Signer,
    UnknownMemberError,
    ValidationError,
    WelcomeError,
    WelcomeNotForUsError,
    create_key_package,
    decode_key_package,
    get_suite,
    key_package_ref,
)
from clave.mls.group_records import Roster
from clave.mls.structs import MLSMessage

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "MLS.md"
PACKAGE = ROOT / "src" / "clave" / "mls"
NOW = 1_700_000_000


def clock() -> int:
    return NOW


def rng_of(seed: str) -> Rng:
    return random.Random(seed).randbytes


def signer(name: bytes, suite: int = 1, seed: str = "signers") -> Signer:
    return Signer.generate(suite, Credential.basic(name), rng=rng_of(seed + name.decode()))


# --------------------------------------------------------------- the page itself


def doc_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)


def test_doc_example_runs() -> None:
    blocks = doc_blocks()
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "mls_doc_example"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC}:block{i}", "exec"), namespace)
    # The example ends with Bob removed and Alice alone.
    alice_group, bob_group = namespace["alice_group"], namespace["bob_group"]
    assert isinstance(alice_group, Group) and isinstance(bob_group, Group)
    assert not bob_group.active and alice_group.active
    assert [m.identity for m in alice_group.roster()] == [b"alice"]


def test_all_names_exist_and_are_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in clave.mls.__all__:
        assert hasattr(clave.mls, name), name
        assert f"`{name}" in text, f"docs/MLS.md does not list {name}"
    errors = [n for n in clave.mls.__all__ if n.endswith("Error")]
    assert all(issubclass(getattr(clave.mls, n), clave.mls.MLSError) for n in errors)
    from clave.mls import errors as errors_module

    defined = {
        n
        for n, v in vars(errors_module).items()
        if isinstance(v, type) and issubclass(v, clave.mls.MLSError)
    }
    assert defined == set(errors), "every error of clave.mls.errors is exported"


def _imports(path: Path) -> set[str]:
    """The clave.mls modules ``path`` imports at module level (not under TYPE_CHECKING)."""
    rel = path.relative_to(PACKAGE.parent.parent).with_suffix("")
    parts = list(rel.parts)
    module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    package = module if parts[-1] == "__init__" else module.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("clave.mls"):
                continue
            if node.module is None or target in ("clave.mls", "clave.mls.structs"):
                # ``from . import x``: x may be a submodule
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if (PACKAGE.parent.parent / Path(*sub.split("."))).with_suffix(".py").exists():
                        out.add(sub)
                    else:
                        out.add(target)
            else:
                out.add(target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("clave.mls"))
    out.discard(module)
    return out


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent.parent).with_suffix("")
        parts = list(rel.parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = _imports(path)
    # A package's __init__ imports its submodules, so a submodule importing from its
    # package (``from clave.mls import Group``) closes a cycle too.
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt] if nxt in stack else [node, nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if state.get(nxt) is None:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


# --------------------------------------------------------------- suites, signers, time


def test_key_package_suite_as_id_or_object() -> None:
    for cs in (1, 2, 3):
        s = signer(b"alice", cs)
        by_id = create_key_package(cs, s, rng=rng_of("kp"), now=NOW)
        by_object = create_key_package(get_suite(cs), s, rng=rng_of("kp"), now=NOW)
        assert by_id == by_object
        assert by_id.key_package.cipher_suite == cs


def test_group_create_suite_as_id_or_object() -> None:
    s = signer(b"alice", 2)
    a = Group.create(2, b"g", s, rng=rng_of("g"), now=clock)
    b = Group.create(get_suite(2), b"g", s, rng=rng_of("g"), now=clock)
    assert isinstance(a.suite, CipherSuite) and a.suite is b.suite
    assert a.group_context == b.group_context
    assert a.epoch_authenticator == b.epoch_authenticator


def test_key_package_signer_or_credential() -> None:
    s = signer(b"bob")
    with_signer = create_key_package(1, s, rng=rng_of("kp"), now=NOW)
    key = s.signature_private_key
    with_credential = create_key_package(
        get_suite(1), s.credential, rng=rng_of("kp"), now=NOW, signature_priv=key
    )
    assert with_signer == with_credential
    assert with_signer.signature_priv == s.signature_private_key
    leaf = with_signer.key_package.leaf_node
    assert leaf.credential == s.credential
    assert leaf.signature_key == s.public_key(get_suite(1))
    # A bare credential without a key gets a fresh signature key pair.
    fresh = create_key_package(1, s.credential, rng=rng_of("kp"), now=NOW)
    assert fresh.key_package.leaf_node.signature_key != leaf.signature_key
    # A Signer already carries its key: a second one is refused.
    with pytest.raises(TypeError, match="signature_priv"):
        create_key_package(  # type: ignore[call-overload]
            1, s, rng=rng_of("kp"), now=NOW, signature_priv=s.signature_private_key
        )


def test_key_package_now_int_or_clock() -> None:
    s = signer(b"bob")
    calls: list[int] = []

    def counting_clock() -> int:
        calls.append(NOW)
        return NOW

    by_int = create_key_package(1, s, rng=rng_of("kp"), now=NOW, lifetime=3600)
    by_clock = create_key_package(1, s, rng=rng_of("kp"), now=counting_clock, lifetime=3600)
    assert by_int == by_clock
    assert calls == [NOW]  # read once
    lifetime = by_clock.key_package.leaf_node.lifetime
    assert lifetime is not None
    assert (lifetime.not_before, lifetime.not_after) == (NOW, NOW + 3600)


def test_signer_generate_is_a_key_pair_of_the_suite() -> None:
    for cs in (1, 2, 3):
        s = Signer.generate(get_suite(cs), Credential.basic(b"x"), rng=rng_of(f"s{cs}"))
        suite = get_suite(cs)
        suite.validate_signature_public_key(s.public_key(suite))


# --------------------------------------------------------------- KeyPackage wire bytes


def test_key_package_wire_bytes_round_trip() -> None:
    bundle = create_key_package(1, signer(b"bob"), rng=rng_of("kp"), now=NOW)
    wire = bundle.to_message_bytes()
    msg = MLSMessage.from_bytes(wire)
    assert msg.body == bundle.key_package  # an MLSMessage carrying the KeyPackage
    assert wire == MLSMessage(bundle.key_package).to_bytes()
    assert decode_key_package(wire) == bundle.key_package
    assert decode_key_package(bundle.key_package.to_bytes()) == bundle.key_package  # bare
    assert key_package_ref(decode_key_package(wire)) == bundle.ref
    assert bundle.signature_priv not in wire and bundle.init_priv not in wire


def test_decode_key_package_refuses_other_messages() -> None:
    group = Group.create(1, b"g", signer(b"alice"), rng=rng_of("g"), now=clock)
    with pytest.raises(ValidationError, match="expected a KeyPackage"):
        decode_key_package(group.group_info())
    with pytest.raises(clave.mls.DecodeError):
        decode_key_package(b"\x00\x01\x02")


def test_commit_adds_key_packages_in_either_encoding() -> None:
    rng = rng_of("world")
    alice = Group.create(1, b"g", signer(b"alice"), rng=rng, now=clock)
    bob = create_key_package(1, signer(b"bob"), rng=rng, now=clock)
    carol = create_key_package(1, signer(b"carol"), rng=rng, now=clock)
    out = alice.commit(add=[bob.to_message_bytes(), carol.key_package.to_bytes()])
    alice.merge_pending_commit()
    assert out.welcome is not None
    assert [m.identity for m in alice.roster()] == [b"alice", b"bob", b"carol"]
    for bundle in (bob, carol):
        joined = Group.join(out.welcome, bundle, rng=rng, now=clock)
        assert joined.epoch_authenticator == alice.epoch_authenticator


# --------------------------------------------------------------- removal by identity


def _group_of(*names: bytes, rng: Rng) -> dict[bytes, Group]:
    creator = Group.create(1, b"g", signer(names[0]), rng=rng, now=clock)
    bundles = [create_key_package(1, signer(n), rng=rng, now=clock) for n in names[1:]]
    out = creator.commit(add=[b.to_message_bytes() for b in bundles])
    creator.merge_pending_commit()
    assert out.welcome is not None
    groups = {names[0]: creator}
    for name, bundle in zip(names[1:], bundles, strict=True):
        groups[name] = Group.join(out.welcome, bundle, rng=rng, now=clock)
    return groups


def test_remove_by_identity() -> None:
    rng = rng_of("remove")
    g = _group_of(b"alice", b"bob", b"carol", b"dave", rng=rng)
    alice = g[b"alice"]
    assert [alice.leaf_of(n) for n in (b"alice", b"bob", b"carol", b"dave")] == [0, 1, 2, 3]
    # Identities and leaf indices mix.
    out = alice.commit(remove=[b"carol", 3])
    assert [m.identity for m in out.summary.removed] == [b"carol", b"dave"]
    alice.merge_pending_commit()
    for name in (b"carol", b"dave"):
        event = g[name].process(out.commit)
        assert isinstance(event, CommitProcessed) and event.summary.removed_self
    event = g[b"bob"].process(out.commit)
    assert isinstance(event, CommitProcessed)
    assert [m.identity for m in g[b"bob"].roster()] == [b"alice", b"bob"]
    # A standalone Remove proposal by identity, committed by another member.
    proposal = g[b"bob"].propose_remove(b"alice")
    alice.process(proposal)
    out = g[b"bob"].commit()
    g[b"bob"].merge_pending_commit()
    assert [m.identity for m in out.summary.removed] == [b"alice"]
    assert [m.identity for m in g[b"bob"].roster()] == [b"bob"]


def test_remove_unknown_identity_is_refused() -> None:
    g = _group_of(b"alice", b"bob", rng=rng_of("unknown"))
    alice = g[b"alice"]
    epoch = alice.epoch
    for who in (b"mallory", b"", b"bo", b"bob\x00"):
        with pytest.raises(UnknownMemberError, match="no member has the identity"):
            alice.commit(remove=[who])
        with pytest.raises(UnknownMemberError):
            alice.leaf_of(who)
        with pytest.raises(UnknownMemberError):
            alice.propose_remove(who)
    with pytest.raises(UnknownMemberError):  # one bad name spoils the whole call
        alice.commit(remove=[b"bob", b"mallory"])
    assert not alice.has_pending_commit and alice.pending_proposals == 0
    assert alice.epoch == epoch
    assert issubclass(UnknownMemberError, MemberLookupError)
    assert issubclass(MemberLookupError, LookupError)


def test_remove_ambiguous_identity_is_refused() -> None:
    """Two leaves with one identity (two devices of one user, say).

    A group run by clave.mls never gets there (an Add of an identity already in
    the group is refused), but a ratchet tree made by another implementation may
    hold one, so the roster is given a second "bob" leaf here.
    """
    g = _group_of(b"alice", b"bob", b"carol", rng=rng_of("ambiguous"))
    alice = g[b"alice"]
    roster = alice.roster()
    twin = dataclasses.replace(roster[1], leaf_index=2)
    alice._epoch.roster = Roster([roster[0], roster[1], twin])
    with pytest.raises(AmbiguousMemberError, match=r"leaves \[1, 2\]"):
        alice.commit(remove=[b"bob"])
    with pytest.raises(AmbiguousMemberError):
        alice.leaf_of(b"bob")
    with pytest.raises(AmbiguousMemberError):
        alice.propose_remove(b"bob")
    assert issubclass(AmbiguousMemberError, MemberLookupError)
    assert not alice.has_pending_commit and alice.pending_proposals == 0
    out = alice.commit(remove=[1])  # by leaf index it works
    assert [m.leaf_index for m in out.summary.removed] == [1]
    alice.discard_pending_commit()


def test_remove_takes_a_list_not_one_identity() -> None:
    g = _group_of(b"alice", b"bob", rng=rng_of("list"))
    with pytest.raises(TypeError, match="list"):
        g[b"alice"].commit(remove=b"bob")


# --------------------------------------------------------------- joining with several bundles


def _bundles(name: bytes, rng: Rng, n: int = 3) -> list[KeyPackageBundle]:
    s = signer(name)
    return [create_key_package(1, s, rng=rng, now=clock) for _ in range(n)]


def test_join_picks_the_bundle_the_welcome_is_for() -> None:
    rng = rng_of("join")
    bob_bundles = _bundles(b"bob", rng)
    for used in range(len(bob_bundles)):
        alice = Group.create(1, b"g%d" % used, signer(b"alice"), rng=rng, now=clock)
        out = alice.commit(add=[bob_bundles[used].to_message_bytes()])
        alice.merge_pending_commit()
        assert out.welcome is not None
        for offered in (bob_bundles, tuple(reversed(bob_bundles)), bob_bundles[used]):
            bob = Group.join(out.welcome, offered, rng=rng, now=clock)
            own = bob.member(bob.own_leaf_index)
            assert own.encryption_key == bob_bundles[used].key_package.leaf_node.encryption_key
            assert bob.epoch_authenticator == alice.epoch_authenticator


def test_join_with_another_suites_bundle_among_them() -> None:
    rng = rng_of("suites")
    other = create_key_package(3, signer(b"bob", 3), rng=rng, now=clock)
    mine = create_key_package(1, signer(b"bob"), rng=rng, now=clock)
    alice = Group.create(1, b"g", signer(b"alice"), rng=rng, now=clock)
    out = alice.commit(add=[mine.to_message_bytes()])
    alice.merge_pending_commit()
    assert out.welcome is not None
    bob = Group.join(out.welcome, [other, mine], rng=rng, now=clock)
    assert bob.epoch_authenticator == alice.epoch_authenticator
    with pytest.raises(WelcomeNotForUsError, match="cipher suite"):
        Group.join(out.welcome, other, rng=rng, now=clock)


def test_join_fails_when_no_bundle_matches() -> None:
    rng = rng_of("none")
    alice = Group.create(1, b"g", signer(b"alice"), rng=rng, now=clock)
    used, *unused = _bundles(b"bob", rng)
    out = alice.commit(add=[used.to_message_bytes()])
    alice.merge_pending_commit()
    assert out.welcome is not None
    with pytest.raises(WelcomeNotForUsError, match="no entry for any of our 2 KeyPackages"):
        Group.join(out.welcome, unused, rng=rng, now=clock)
    with pytest.raises(WelcomeNotForUsError, match="no entry for our KeyPackage"):
        Group.join(out.welcome, unused[0], rng=rng, now=clock)
    assert issubclass(WelcomeNotForUsError, WelcomeError)
    with pytest.raises(ValueError, match="at least one"):
        Group.join(out.welcome, [], rng=rng, now=clock)


def test_signatures_are_typed_as_documented() -> None:
    """The shared argument kinds of create_key_package and Group.create (mypy checks the
    overloads; this checks what a caller sees at run time)."""
    import inspect

    kp = inspect.signature(create_key_package).parameters
    create = inspect.signature(Group.create).parameters
    assert list(kp)[:2] == ["suite", "signer"]
    assert list(create)[:3] == ["suite", "group_id", "signer"]
    for params in (kp, create):
        assert params["rng"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params["now"].kind is inspect.Parameter.KEYWORD_ONLY
    join = inspect.signature(Group.join).parameters
    assert list(join)[:2] == ["welcome_bytes", "bundles"]
