"""Python driver for the ts-mls interop peer (``peer.mjs``).

``TsMlsPeer`` starts ``node peer.mjs`` and talks to it with one JSON object
per line (protocol: README.md in this directory).  Binary values travel as
lowercase hex; :meth:`TsMlsPeer.call` converts ``bytes`` arguments to hex for
you, and the typed helpers convert hex results back to ``bytes``.

Test-only code: nothing here is part of Clave.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

HERE = Path(__file__).resolve().parent
PEER_SCRIPT = HERE / "peer.mjs"
TS_MLS_DIR = HERE / "node_modules" / "ts-mls"
TS_MLS_VERSION = "1.6.4"
SETUP_HINT = (
    "run the test setup (bash scripts/test.sh), or by hand: "
    "cd tests/interop && npm ci --no-audit --no-fund"
)

Handshake = Literal["private", "public"]
JSONDict = dict[str, Any]


class TsMlsPeerError(RuntimeError):
    """Base class of everything this module raises."""


class TsMlsPeerUnavailable(TsMlsPeerError):
    """node or the installed ts-mls package is missing."""


class TsMlsPeerDied(TsMlsPeerError):
    """The node process exited, timed out or broke the protocol."""


class TsMlsError(TsMlsPeerError):
    """The peer answered ``ok: false`` (the process is still usable)."""

    def __init__(self, op: str, error: str, error_type: str) -> None:
        super().__init__(f"{op}: {error}")
        self.op = op
        self.error = error
        self.error_type = error_type


@dataclass(frozen=True)
class Member:
    leaf_index: int
    identity: bytes | None
    signature_key: bytes
    encryption_key: bytes
    credential_type: str


@dataclass(frozen=True)
class GroupState:
    """What ``state`` reports; everything but ``leaf_index``/``status`` is
    expected to be equal across all members of one epoch."""

    epoch: int
    group_id: bytes
    ciphersuite: int
    leaf_index: int
    status: str
    exporter: bytes
    epoch_authenticator: bytes
    tree_hash: bytes
    confirmed_transcript_hash: bytes
    confirmation_tag: bytes
    ratchet_tree: bytes
    roster: tuple[Member, ...]
    pending_proposals: int
    pending_commit: bool

    def shared_view(self) -> tuple[object, ...]:
        """The fields all members of the same epoch must agree on."""
        return (
            self.epoch,
            self.group_id,
            self.ciphersuite,
            self.exporter,
            self.epoch_authenticator,
            self.tree_hash,
            self.confirmed_transcript_hash,
            self.confirmation_tag,
            self.ratchet_tree,
            self.roster,
        )


@dataclass(frozen=True)
class CommitResult:
    commit: bytes
    welcome: bytes | None
    epoch: int
    ratchet_tree: bytes


@dataclass(frozen=True)
class Processed:
    kind: Literal["commit", "application", "proposal"]
    epoch: int
    application_data: bytes | None
    raw: JSONDict

    @property
    def removed(self) -> bool:
        return bool(self.raw.get("removed", False))


def _hexify(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_hexify(v) for v in value]
    if isinstance(value, dict):
        return {k: _hexify(v) for k, v in value.items()}
    return value


def _b(reply: JSONDict, key: str) -> bytes:
    return bytes.fromhex(reply[key])


def _state(reply: JSONDict) -> GroupState:
    roster = tuple(
        Member(
            leaf_index=m["leaf_index"],
            identity=None if m["identity"] is None else bytes.fromhex(m["identity"]),
            signature_key=bytes.fromhex(m["signature_key"]),
            encryption_key=bytes.fromhex(m["encryption_key"]),
            credential_type=m["credential_type"],
        )
        for m in reply["roster"]
    )
    return GroupState(
        epoch=reply["epoch"],
        group_id=_b(reply, "group_id"),
        ciphersuite=reply["ciphersuite"],
        leaf_index=reply["leaf_index"],
        status=reply["status"],
        exporter=_b(reply, "exporter"),
        epoch_authenticator=_b(reply, "epoch_authenticator"),
        tree_hash=_b(reply, "tree_hash"),
        confirmed_transcript_hash=_b(reply, "confirmed_transcript_hash"),
        confirmation_tag=_b(reply, "confirmation_tag"),
        ratchet_tree=_b(reply, "ratchet_tree"),
        roster=roster,
        pending_proposals=reply["pending_proposals"],
        pending_commit=reply["pending_commit"],
    )


def _commit(reply: JSONDict) -> CommitResult:
    welcome = reply.get("welcome")
    return CommitResult(
        commit=_b(reply, "commit"),
        welcome=None if welcome is None else bytes.fromhex(welcome),
        epoch=reply["epoch"],
        ratchet_tree=_b(reply, "ratchet_tree"),
    )


class TsMlsPeer:
    """One ``node peer.mjs`` process; it can hold several named clients."""

    def __init__(self, *, timeout: float = 60.0, node: str | None = None) -> None:
        node_path = node or shutil.which("node")
        if node_path is None:
            raise TsMlsPeerUnavailable(f"node (Node.js >= 20) is not on PATH; {SETUP_HINT}")
        pkg = TS_MLS_DIR / "package.json"
        if not pkg.is_file():
            raise TsMlsPeerUnavailable(f"{TS_MLS_DIR} is missing; {SETUP_HINT}")
        installed = json.loads(pkg.read_text(encoding="utf-8")).get("version")
        if installed != TS_MLS_VERSION:
            raise TsMlsPeerUnavailable(
                f"ts-mls {installed} is installed, not {TS_MLS_VERSION}; {SETUP_HINT}"
            )
        self.timeout = timeout
        self._next_id = 0
        self._stderr_tail: deque[str] = deque(maxlen=200)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._proc = subprocess.Popen(
            [node_path, str(PEER_SCRIPT)],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        self._threads = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    # ------------------------------------------------------------ plumbing

    def _pump_stdout(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr_tail.append(line.rstrip("\n"))

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    def _died(self, why: str) -> TsMlsPeerDied:
        return TsMlsPeerDied(f"ts-mls peer {why}; stderr:\n{self.stderr_tail()}")

    def call(self, op: str, **fields: object) -> JSONDict:
        """Send one request; return the reply (hex strings untouched).

        ``bytes`` values in ``fields`` (also inside lists/dicts) are sent as
        hex.  Raises :class:`TsMlsError` on an ``ok: false`` reply.
        """
        if self._proc.poll() is not None or self._proc.stdin is None:
            raise self._died(f"is not running (exit status {self._proc.returncode})")
        self._next_id += 1
        rid = self._next_id
        request = {"id": rid, "op": op, **{k: _hexify(v) for k, v in fields.items()}}
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._died(f"closed its stdin ({exc})") from exc
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            raise self._died(f"did not answer {op!r} within {self.timeout}s") from None
        if line is None:
            raise self._died(f"exited while handling {op!r}")
        try:
            reply = json.loads(line)
        except json.JSONDecodeError as exc:
            raise self._died(f"wrote a non-JSON line {line!r}") from exc
        if not isinstance(reply, dict) or reply.get("id") != rid:
            raise self._died(f"answered {reply!r} to request id {rid}")
        if not reply.get("ok"):
            raise TsMlsError(op, str(reply.get("error")), str(reply.get("error_type")))
        return reply

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ typed ops

    def ping(self) -> JSONDict:
        return self.call("ping")

    def new_client(
        self, name: str, identity: bytes, *, ciphersuite: int | None = None, grease: bool = False
    ) -> bytes:
        """Create a client; returns its signature public key."""
        extra: dict[str, object] = {} if ciphersuite is None else {"ciphersuite": ciphersuite}
        reply = self.call("new_client", name=name, identity=identity, grease=grease, **extra)
        return _b(reply, "signature_public_key")

    def key_package(self, name: str) -> bytes:
        """A fresh KeyPackage, MLSMessage-encoded."""
        return _b(self.call("key_package", name=name), "key_package")

    def create_group(
        self, name: str, group_id: bytes, *, extensions: list[JSONDict] | None = None
    ) -> None:
        self.call("create_group", name=name, group_id=group_id, extensions=extensions or [])

    def add(
        self,
        name: str,
        key_packages: list[bytes],
        *,
        handshake: Handshake = "private",
        ratchet_tree_extension: bool = True,
        merge: bool = True,
    ) -> CommitResult:
        return _commit(
            self.call(
                "add",
                name=name,
                key_packages=key_packages,
                handshake=handshake,
                ratchet_tree_extension=ratchet_tree_extension,
                merge=merge,
            )
        )

    def remove(
        self, name: str, leaf_index: int, *, handshake: Handshake = "private", merge: bool = True
    ) -> CommitResult:
        reply = self.call(
            "remove", name=name, leaf_index=leaf_index, handshake=handshake, merge=merge
        )
        return _commit(reply)

    def update(
        self, name: str, *, handshake: Handshake = "private", merge: bool = True
    ) -> CommitResult:
        return _commit(self.call("update", name=name, handshake=handshake, merge=merge))

    def commit(
        self,
        name: str,
        *,
        add_key_packages: list[bytes] | None = None,
        remove_leaf_indices: list[int] | None = None,
        handshake: Handshake = "private",
        ratchet_tree_extension: bool = True,
        merge: bool = True,
    ) -> CommitResult:
        reply = self.call(
            "commit",
            name=name,
            add_key_packages=add_key_packages or [],
            remove_leaf_indices=remove_leaf_indices or [],
            handshake=handshake,
            ratchet_tree_extension=ratchet_tree_extension,
            merge=merge,
        )
        return _commit(reply)

    def commit_pending(
        self, name: str, *, handshake: Handshake = "private", merge: bool = True
    ) -> CommitResult:
        return _commit(self.call("commit_pending", name=name, handshake=handshake, merge=merge))

    def merge_pending_commit(self, name: str) -> int:
        return int(self.call("merge_pending_commit", name=name)["epoch"])

    def discard_pending_commit(self, name: str) -> int:
        return int(self.call("discard_pending_commit", name=name)["epoch"])

    def propose_add(
        self, name: str, key_package: bytes, *, handshake: Handshake = "private"
    ) -> bytes:
        reply = self.call("propose_add", name=name, key_package=key_package, handshake=handshake)
        return _b(reply, "proposal")

    def propose_remove(
        self, name: str, leaf_index: int, *, handshake: Handshake = "private"
    ) -> bytes:
        reply = self.call("propose_remove", name=name, leaf_index=leaf_index, handshake=handshake)
        return _b(reply, "proposal")

    def propose_update(self, name: str, *, handshake: Handshake = "private") -> bytes:
        return _b(self.call("propose_update", name=name, handshake=handshake), "proposal")

    def join(self, name: str, welcome: bytes, *, ratchet_tree: bytes | None = None) -> int:
        """Join from a Welcome; returns the own leaf index."""
        extra: dict[str, object] = {} if ratchet_tree is None else {"ratchet_tree": ratchet_tree}
        return int(self.call("join", name=name, welcome=welcome, **extra)["leaf_index"])

    def group_info(self, name: str, *, ratchet_tree_extension: bool = True) -> bytes:
        reply = self.call("group_info", name=name, ratchet_tree_extension=ratchet_tree_extension)
        return _b(reply, "group_info")

    def external_join(
        self,
        name: str,
        group_info: bytes,
        *,
        ratchet_tree: bytes | None = None,
        resync: bool = False,
    ) -> CommitResult:
        """External commit (always a PublicMessage); ``resync`` replaces the
        client's old leaf (same signature key) with a Remove in the commit."""
        extra: dict[str, object] = {} if ratchet_tree is None else {"ratchet_tree": ratchet_tree}
        reply = self.call("external_join", name=name, group_info=group_info, resync=resync, **extra)
        return _commit(reply)

    def process(self, name: str, message: bytes) -> Processed:
        reply = self.call("process", name=name, message=message)
        data = reply.get("application_data")
        return Processed(
            kind=reply["kind"],
            epoch=reply["epoch"],
            application_data=None if data is None else bytes.fromhex(data),
            raw=reply,
        )

    def send(self, name: str, data: bytes) -> bytes:
        """An application message (PrivateMessage, MLSMessage-encoded)."""
        return _b(self.call("send", name=name, data=data), "message")

    def export_secret(self, name: str, label: str, context: bytes, length: int) -> bytes:
        reply = self.call("export_secret", name=name, label=label, context=context, length=length)
        return _b(reply, "secret")

    def state(self, name: str) -> GroupState:
        return _state(self.call("state", name=name))
