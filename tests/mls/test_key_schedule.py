"""Key schedule, exporter and transcript hashes (RFC 9420 section 8).

Vectors: key-schedule.json (every field, every epoch) and transcript-hashes.json.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from mls_vectors import claimed_suite, h, load_vectors, suite_params

from clave.mls import key_schedule as ks
from clave.mls.ciphersuite import SUPPORTED_CIPHER_SUITES, CipherSuite, get_suite
from clave.mls.codec import Writer
from clave.mls.errors import ConfirmationTagError, CryptoError

EPOCH_FIELDS = (
    "sender_data_secret",
    "encryption_secret",
    "exporter_secret",
    "epoch_authenticator",
    "external_secret",
    "confirmation_key",
    "membership_key",
    "resumption_psk",
    "init_secret",
)


def group_context(
    suite: CipherSuite, group_id: bytes, epoch: int, tree_hash: bytes, cth: bytes
) -> bytes:
    """GroupContext with empty extensions (RFC 9420 section 8.1)."""
    return (
        Writer()
        .u16(1)  # mls10
        .u16(suite.id)
        .opaque(group_id)
        .u64(epoch)
        .opaque(tree_hash)
        .opaque(cth)
        .opaque(b"")  # extensions<V>
        .finish()
    )


@pytest.mark.parametrize("v", suite_params(load_vectors("key-schedule")))
def test_key_schedule_vector(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    group_id = h(v["group_id"])
    init_secret = h(v["initial_init_secret"])
    assert v["epochs"]
    for n, e in enumerate(v["epochs"]):
        gc = group_context(suite, group_id, n, h(e["tree_hash"]), h(e["confirmed_transcript_hash"]))
        assert gc == h(e["group_context"]), n
        psk = h(e["psk_secret"]) if e.get("psk_secret") is not None else None
        out = ks.derive_epoch(suite, init_secret, h(e["commit_secret"]), psk, gc)
        assert out.joiner_secret == h(e["joiner_secret"]), n
        assert out.welcome_secret == h(e["welcome_secret"]), n
        for name in EPOCH_FIELDS:
            assert getattr(out.secrets, name) == h(e[name]), (n, name)
        # Joining from the joiner secret (Welcome path) gives the same epoch.
        joined = ks.derive_epoch_from_joiner(suite, out.joiner_secret, psk, gc)
        assert joined == out
        assert ks.welcome_secret(suite, out.joiner_secret, psk) == out.welcome_secret
        ep = ks.epoch_secret(suite, out.joiner_secret, psk, gc)
        assert ks.EpochSecrets.from_epoch_secret(suite, ep) == out.secrets
        # external_pub = KEM.DeriveKeyPair(external_secret).public
        priv, pub = out.secrets.external_key_pair(suite)
        assert pub == h(e["external_pub"]), n
        assert ks.external_key_pair(suite, out.secrets.external_secret) == (priv, pub)
        assert suite.hpke_public_key(priv) == pub
        x = e["exporter"]
        exported = out.secrets.exporter(suite, x["label"], h(x["context"]), x["length"])
        assert exported == h(x["secret"]), n
        init_secret = out.secrets.init_secret


def _split_commit_authenticated_content(suite: CipherSuite, ac: bytes) -> tuple[bytes, bytes]:
    """AuthenticatedContent of a commit ends with ``opaque confirmation_tag<V>`` (Nh bytes)."""
    assert ac[-suite.nh - 1] == suite.nh  # 1-byte varint length prefix
    return ac[: -suite.nh - 1], ac[-suite.nh :]


@pytest.mark.parametrize("v", suite_params(load_vectors("transcript-hashes")))
def test_transcript_hash_vector(v: dict[str, Any]) -> None:
    suite = claimed_suite(v)
    confirmed_input, tag = _split_commit_authenticated_content(suite, h(v["authenticated_content"]))
    confirmed = ks.confirmed_transcript_hash(
        suite, h(v["interim_transcript_hash_before"]), confirmed_input
    )
    assert confirmed == h(v["confirmed_transcript_hash_after"])
    assert ks.confirmation_tag(suite, h(v["confirmation_key"]), confirmed) == tag
    ks.verify_confirmation_tag(suite, h(v["confirmation_key"]), confirmed, tag)
    with pytest.raises(ConfirmationTagError):
        ks.verify_confirmation_tag(suite, h(v["confirmation_key"]), confirmed + b"x", tag)
    interim = ks.interim_transcript_hash(suite, confirmed, tag)
    assert interim == h(v["interim_transcript_hash_after"])


SUITES = [get_suite(i) for i in SUPPORTED_CIPHER_SUITES]


def _rng(seed: bytes) -> Any:
    counter = iter(range(1 << 30))
    return lambda n: hashlib.shake_256(seed + next(counter).to_bytes(4, "big")).digest(n)


@pytest.mark.parametrize("s", SUITES, ids=[f"suite{s.id}" for s in SUITES])
def test_zero_defaults_and_welcome_key(s: CipherSuite) -> None:
    zero = bytes(s.nh)
    gc = b"gc"
    a = ks.derive_epoch(s, b"i" * 32, None, None, gc)
    b = ks.derive_epoch(s, b"i" * 32, zero, zero, gc)
    assert a == b
    key, nonce = ks.welcome_key_nonce(s, a.welcome_secret)
    assert (len(key), len(nonce)) == (s.nk, s.nn)
    assert ks.derive_epoch(s, b"i" * 32, None, None, b"gc2") != a


@pytest.mark.parametrize("s", SUITES, ids=[f"suite{s.id}" for s in SUITES])
def test_external_init_round_trip(s: CipherSuite) -> None:
    secrets = ks.derive_epoch(s, b"i" * 32, None, None, b"gc").secrets
    priv, pub = secrets.external_key_pair(s)
    kem_output, init_joiner = ks.external_init_secret_sender(s, pub, rng=_rng(b"ext"))
    assert len(init_joiner) == s.nh
    assert ks.external_init_secret_receiver(s, priv, kem_output) == init_joiner
    with pytest.raises(CryptoError):
        ks.external_init_secret_receiver(s, priv, kem_output[:-1])
    other_priv, _ = s.derive_key_pair(b"other")
    assert ks.external_init_secret_receiver(s, other_priv, kem_output) != init_joiner
