"""Relay nodes reach NATS over TLS, as a user that proves an NKey (issue 14, item 5).

A real ``nats-server`` serves TLS with a certificate of its own (its CA is a file the
nodes are given: ``--nats-ca``) and admits only the NKey user whose seed the nodes
hold (``--nats-nkey``). Two nodes on it carry a meeting of two real engines, one on
each node. A node without the seed, with another seed, or without the CA is refused
at start in one line, and joins nothing.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nkeys
import pytest
from cluster_helpers import join_each
from e2e_helpers import BASE_URL, RecordingParticipant, invitation, stop_all, wait_for_frames
from nats_helpers import NatsServer

from bounded_run import run
from clave.cli.errors import EXIT_LOCAL
from clave.cli.serve import self_signed_pem
from clave.relay.server import STATE_KEY, start_relay


def _seed_file(path: Path) -> tuple[Path, str]:
    """A new NKey user: its seed in ``path`` (mode 600), and its public key."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    path.write_bytes(seed + b"\n")
    path.chmod(0o600)
    return path, nkeys.from_seed(seed).public_key.decode()


@pytest.fixture
def secure_nats(tmp_path: Path) -> Iterator[tuple[NatsServer, Path, Path]]:
    """A TLS-only, NKey-only NATS server; the CA file and the admitted user's seed file."""
    cert, key = self_signed_pem("127.0.0.1")
    (tmp_path / "nats-cert.pem").write_bytes(cert)
    (tmp_path / "nats-key.pem").write_bytes(key)
    seed, public = _seed_file(tmp_path / "relay.nk")
    config = f"""
tls {{
  cert_file: "{tmp_path / "nats-cert.pem"}"
  key_file: "{tmp_path / "nats-key.pem"}"
}}
authorization {{
  users = [ {{ nkey: "{public}" }} ]
}}
"""
    server = NatsServer(tmp_path / "nats", config=config)
    server.start()
    yield server, tmp_path / "nats-cert.pem", seed
    server.stop()


def _tls_url(server: NatsServer) -> str:
    return server.url.replace("nats://", "tls://")


def test_nodes_over_tls_with_an_nkey_carry_a_meeting(
    secure_nats: tuple[NatsServer, Path, Path],
) -> None:
    server, ca, seed = secure_nats
    options = {"tls": ssl.create_default_context(cafile=str(ca)), "nkeys_seed": str(seed)}

    async def scenario() -> None:
        relays = [
            await start_relay("127.0.0.1", 0, nats=[_tls_url(server)], nats_options=options)
            for _ in range(2)
        ]
        ports = [port for _, port in relays]
        link, owner_key = invitation(BASE_URL.format(port=ports[0]))
        people: list[RecordingParticipant] = []
        try:
            await join_each(people, link, owner_key, {"Ada": ports[0], "Bo": ports[1]})
            await wait_for_frames(people, timeout=60)
            codes = {p.report.security_code for p in people}
            assert len(codes) == 1 and None not in codes, codes
            assert people[0].decoded("Bo") > 0 and people[1].decoded("Ada") > 0
            nodes = [runner.app[STATE_KEY].cluster for runner, _ in relays]
            assert sorted(n.slot for n in nodes if n) == [1, 2]
            for node in nodes:  # what crossed went through the TLS connection to NATS
                assert node is not None and sum(node.delivered) > 0
        finally:
            await stop_all(people)
            for runner, _ in relays:
                await runner.cleanup()

    run(scenario(), 120)


_SERVE = (sys.executable, "-m", "clave.cli", "serve", "--port", "0")


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_SERVE, *args],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("case", ["no seed", "another seed", "no CA"])
def test_a_node_the_server_refuses_says_so_in_one_line(
    case: str, secure_nats: tuple[NatsServer, Path, Path], tmp_path: Path
) -> None:
    server, ca, seed = secure_nats
    args = ["--nats", _tls_url(server)]
    if case != "no CA":
        args += ["--nats-ca", str(ca)]
    if case == "another seed":
        args += ["--nats-nkey", str(_seed_file(tmp_path / "other.nk")[0])]
    elif case != "no seed":
        args += ["--nats-nkey", str(seed)]
    done = _serve(*args)
    assert done.returncode == EXIT_LOCAL, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clave: cannot join the relay cluster"), lines
    assert ("certificate" in lines[0]) == (case == "no CA"), lines
    assert ("authorization" in lines[0].lower()) == (case != "no CA"), lines
    assert "listening" not in done.stdout


def test_the_node_that_holds_the_seed_and_the_ca_starts(
    secure_nats: tuple[NatsServer, Path, Path],
) -> None:
    """Positive control of the refusals above: the same command with both starts."""
    server, ca, seed = secure_nats
    proc = subprocess.Popen(
        [*_SERVE, "--nats", _tls_url(server), "--nats-ca", str(ca), "--nats-nkey", str(seed)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("relay listening on http://"), (line, proc.stderr)
    finally:
        proc.terminate()
        proc.wait(20)
