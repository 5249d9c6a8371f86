"""Saving and restoring one member's group state (keep the saved bytes secret).

The state is JSON (format ``"v": 1``): identity, the current epoch (context,
tree, private keys, epoch secrets, secret-tree positions, transcript hash),
this epoch's cached proposals and own Update keys, PSKs, and, only when the
group keeps any, the past epochs of :mod:`clave.mls.past_epochs`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .ciphersuite import CipherSuite, get_suite
from .errors import MLSError, ValidationError
from .group_info import RatchetTreeEncoder
from .group_records import CachedProposal, EpochState, PskStore, Signer
from .key_schedule import EpochSecrets
from .past_epochs import PastEpoch, PastEpochs
from .ratchet_tree import RatchetTree
from .secret_tree import SecretTree
from .structs import (
    Credential,
    GroupContext,
    Sender,
    proposal_from_bytes,
    proposal_to_bytes,
)
from .treekem import TreePrivateKeys

_SECRET_FIELDS = (
    "sender_data_secret",
    "encryption_secret",
    "exporter_secret",
    "external_secret",
    "confirmation_key",
    "membership_key",
    "resumption_psk",
    "epoch_authenticator",
    "init_secret",
)


def save_group(
    *,
    suite: CipherSuite,
    signer: Signer,
    epoch: EpochState,
    proposals: Iterable[CachedProposal],
    own_update_keys: Mapping[bytes, tuple[bytes, bytes]],
    psks: PskStore,
    past: PastEpochs,
    active: bool,
    tree_encoder: RatchetTreeEncoder,
) -> bytes:
    ep = epoch
    state: dict[str, Any] = {
        "v": 1,
        "suite": suite.id,
        "credential": signer.credential.to_bytes().hex(),
        "signature_priv": signer.signature_private_key.hex(),
        "context": ep.context_bytes.hex(),
        "tree": tree_encoder.encode(ep.tree).hex(),
        "own_leaf": ep.own_leaf,
        "keys": [[x, priv.hex(), pub.hex()] for x, (priv, pub) in ep.keys.items()],
        "secrets": {k: getattr(ep.secrets, k).hex() for k in _SECRET_FIELDS},
        "secret_tree": ep.secret_tree.to_dict(),
        "interim": ep.interim_transcript_hash.hex(),
        "confirmation_tag": ep.confirmation_tag.hex(),
        "proposals": [
            [p.sender.to_bytes().hex(), proposal_to_bytes(p.proposal).hex(), p.reference.hex()]
            for p in proposals
        ],
        "own_update_keys": [
            [ref.hex(), priv.hex(), pub.hex()] for ref, (priv, pub) in own_update_keys.items()
        ],
        "psks": [[k.hex(), v.hex()] for k, v in psks.external.items()],
        "resumption_psks": [[gid.hex(), n, v.hex()] for (gid, n), v in psks.resumption.items()],
        "active": active,
    }
    if len(past):
        state["past"] = past.to_json()
    return json.dumps(state, sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class SavedGroup:
    """The parts of a saved group state, checked; the facade reassembles them."""

    suite: CipherSuite
    signer: Signer
    epoch: EpochState
    external_psks: dict[bytes, bytes]
    resumption_psks: dict[tuple[bytes, int], bytes]
    proposals: list[CachedProposal]
    own_update_keys: dict[bytes, tuple[bytes, bytes]]
    past: list[PastEpoch]
    active: bool


def load_group(data: bytes) -> SavedGroup:
    """Parse :func:`save_group` output; ValidationError (or another MLSError) if malformed."""
    try:
        return _load(data)
    except MLSError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(f"malformed group state: {exc!r}") from exc


def _load(data: bytes) -> SavedGroup:
    st = json.loads(data)
    if not isinstance(st, dict) or st.get("v") != 1:
        raise ValidationError("unknown group state format")
    suite = get_suite(int(st["suite"]))
    signer = Signer(
        credential=Credential.from_bytes(bytes.fromhex(st["credential"])),
        signature_private_key=bytes.fromhex(st["signature_priv"]),
    )
    context_bytes = bytes.fromhex(st["context"])
    tree = RatchetTree.from_bytes(suite, bytes.fromhex(st["tree"]))
    secrets = EpochSecrets(**{k: bytes.fromhex(st["secrets"][k]) for k in _SECRET_FIELDS})
    keys = TreePrivateKeys({int(x): (bytes.fromhex(a), bytes.fromhex(b)) for x, a, b in st["keys"]})
    epoch = EpochState(
        context=GroupContext.from_bytes(context_bytes),
        context_bytes=context_bytes,
        tree=tree,
        own_leaf=int(st["own_leaf"]),
        keys=keys,
        secrets=secrets,
        secret_tree=SecretTree.from_dict(st["secret_tree"]),
        interim_transcript_hash=bytes.fromhex(st["interim"]),
        confirmation_tag=bytes.fromhex(st["confirmation_tag"]),
    )
    keys.check_consistent(tree, epoch.own_leaf)
    proposals = [
        CachedProposal(
            sender=Sender.from_bytes(bytes.fromhex(sender_hex)),
            proposal=proposal_from_bytes(bytes.fromhex(prop_hex)),
            reference=bytes.fromhex(ref_hex),
        )
        for sender_hex, prop_hex, ref_hex in st["proposals"]
    ]
    past = st.get("past", [])
    if not isinstance(past, list):
        raise ValidationError("malformed group state: past epochs")
    return SavedGroup(
        suite=suite,
        signer=signer,
        epoch=epoch,
        external_psks={bytes.fromhex(k): bytes.fromhex(v) for k, v in st["psks"]},
        resumption_psks={
            (bytes.fromhex(gid), int(n)): bytes.fromhex(v)
            for gid, n, v in st.get("resumption_psks", [])
        },
        proposals=proposals,
        own_update_keys={
            bytes.fromhex(ref): (bytes.fromhex(priv), bytes.fromhex(pub))
            for ref, priv, pub in st["own_update_keys"]
        },
        past=[PastEpoch.from_json(p) for p in past],
        active=bool(st["active"]),
    )
