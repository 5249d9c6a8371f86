"""``clave serve``: run a relay (it never sees keys or plaintext).

Plain http by default (behind a TLS-terminating proxy, or on loopback); with
``--tls-cert``/``--tls-key`` it serves https and wss itself, and ``--self-signed``
makes a throwaway certificate for testing whose fingerprint engines pin with
``--relay-fingerprint``. docs/OPERATORS.md has the whole story.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from .errors import EXIT_LOCAL, EXIT_USAGE, CliError

if TYPE_CHECKING:
    import ssl

    from ..relay.config import RelayConfig

SELF_SIGNED_DAYS = 7
"""Validity of a ``--self-signed`` certificate (a new one is made at every start)."""
FINGERPRINT_LINE = "relay certificate fingerprint (pin with --relay-fingerprint): "


def add_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run a relay (it never sees keys or plaintext)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8443, help="port (default 8443; 0: any)")
    serve.add_argument(
        "--heartbeat",
        type=float,
        default=None,
        help="seconds between pings; a client silent for 1.5 of them is gone (default 5)",
    )
    serve.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve https/wss with this PEM certificate chain (e.g. Let's Encrypt's "
        "fullchain.pem); needs --tls-key",
    )
    serve.add_argument(
        "--tls-key", metavar="FILE", help="the certificate's PEM private key (e.g. privkey.pem)"
    )
    serve.add_argument(
        "--self-signed",
        action="store_true",
        help="for testing: serve https/wss with a new self-signed certificate (kept in "
        "memory) and print its fingerprint for --relay-fingerprint",
    )
    serve.add_argument(
        "--nats",
        metavar="nats://HOST:PORT[,...]",
        help="join a relay cluster through these NATS servers (JetStream on): the "
        "participants of one meeting may then use different relays of the cluster",
    )
    serve.add_argument(
        "--nats-creds",
        metavar="FILE",
        help="NATS credentials file (a user JWT and its NKey seed) for --nats",
    )
    serve.add_argument(
        "--nats-nkey",
        metavar="FILE",
        help="file holding the NKey seed (SU...) of the NATS user this node connects as",
    )
    serve.add_argument(
        "--nats-ca",
        metavar="FILE",
        help="PEM file of the CA that signed the NATS servers' certificates (tls:// URLs)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDRESS[/BITS]",
        help="a reverse proxy whose X-Forwarded-For names the client (repeatable)",
    )
    serve.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a relay setting (a RelayConfig field, e.g. max_conns_per_address=16; "
        "repeatable; see docs/OPERATORS.md)",
    )
    serve.add_argument(
        "--verbose",
        "-v",
        action="count",
        default=0,
        help="log rooms opening and closing (-v) and connections (-vv) on standard error: "
        "counts and serial numbers, never addresses, room ids or payloads",
    )


def _config(args: argparse.Namespace) -> RelayConfig | None:
    """The relay settings the options ask for (None: the defaults)."""
    if args.heartbeat is None and not args.trusted_proxy and not args.set:
        return None
    from ..relay.__main__ import settings
    from ..relay.config import RelayConfig

    for proxy in args.trusted_proxy:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise CliError(
                f"--trusted-proxy: not an IP address or network: {proxy!r}", EXIT_USAGE
            ) from None
    try:
        base = RelayConfig() if args.heartbeat is None else RelayConfig(heartbeat=args.heartbeat)
    except ValueError as exc:
        raise CliError(f"--heartbeat: {exc}", EXIT_USAGE) from None
    try:
        return settings(args.set, args.trusted_proxy, base)
    except ValueError as exc:
        raise CliError(f"--set: {exc}", EXIT_USAGE) from None


def self_signed_pem(host: str) -> tuple[bytes, bytes]:
    """A new EC P-256 key and a self-signed certificate (PEM, key unencrypted) valid
    for :data:`SELF_SIGNED_DAYS` days, naming ``host`` (unless a wildcard address),
    localhost, 127.0.0.1 and ::1."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    addresses = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host and host != "localhost" and host.isascii():
            names.append(x509.DNSName(host))
    else:
        if not address.is_unspecified:
            addresses.add(address)
    names += [x509.IPAddress(a) for a in sorted(addresses, key=str)]
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Clave relay (self-signed)")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _self_signed_context(host: str) -> tuple[ssl.SSLContext, str]:
    """A server context for a new self-signed certificate, and its fingerprint. OpenSSL
    loads only from files: the PEMs go to 0600 files in a 0700 directory, deleted as
    soon as they are loaded."""
    import ssl as ssl_module

    from ..engine.tls import certificate_fingerprint
    from ..relay.tls import server_context

    cert_pem, key_pem = self_signed_pem(host)
    fingerprint = certificate_fingerprint(ssl_module.PEM_cert_to_DER_cert(cert_pem.decode()))
    where = tempfile.mkdtemp(prefix="clave-relay-")
    try:
        paths = []
        for name, data in (("cert.pem", cert_pem), ("key.pem", key_pem)):
            path = os.path.join(where, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            paths.append(path)
        return server_context(*paths), fingerprint
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _ssl_context(args: argparse.Namespace) -> tuple[ssl.SSLContext | None, str | None]:
    """The server context the options ask for (None: plain http) and, for
    ``--self-signed``, the certificate's fingerprint."""
    if args.self_signed:
        if args.tls_cert or args.tls_key:
            raise CliError(
                "--self-signed makes its own certificate: not with --tls-cert/--tls-key",
                EXIT_USAGE,
            )
        return _self_signed_context(args.host)
    if not args.tls_cert and not args.tls_key:
        return None, None
    if not args.tls_cert or not args.tls_key:
        raise CliError("--tls-cert and --tls-key go together: give both", EXIT_USAGE)
    from ..relay.tls import TLSSetupError, server_context

    try:
        return server_context(args.tls_cert, args.tls_key), None
    except TLSSetupError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _nats(args: argparse.Namespace) -> list[str] | None:
    """``--nats``: the NATS server URLs (None: a relay on its own)."""
    if not args.nats:
        return None
    urls = [u.strip() for u in args.nats.split(",") if u.strip()]
    for url in urls:
        if not url.startswith(("nats://", "tls://")):
            raise CliError(f"--nats: {url!r} is not a nats:// or tls:// URL", EXIT_USAGE)
    return urls


def _nats_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--nats-creds``, ``--nats-nkey`` and ``--nats-ca`` as NATS client options."""
    if (args.nats_creds or args.nats_nkey or args.nats_ca) and not args.nats:
        raise CliError("--nats-creds, --nats-nkey and --nats-ca go with --nats", EXIT_USAGE)
    if args.nats_creds and args.nats_nkey:
        raise CliError("--nats-creds and --nats-nkey: give one of them", EXIT_USAGE)
    options: dict[str, Any] = {}
    if (args.nats_creds or args.nats_nkey) and importlib.util.find_spec("nkeys") is None:
        raise CliError(
            "--nats-nkey and --nats-creds need the nkeys package: "
            "pip install 'clave[nats-auth]' (or: pip install nkeys)",
            EXIT_USAGE,
        )
    for flag, path, option in (
        ("--nats-creds", args.nats_creds, "user_credentials"),
        ("--nats-nkey", args.nats_nkey, "nkeys_seed"),
    ):
        if path:
            if not os.path.isfile(path):
                raise CliError(f"{flag}: no file {path}", EXIT_USAGE)
            options[option] = path
    if args.nats_ca:
        import ssl as ssl_module

        try:
            options["tls"] = ssl_module.create_default_context(cafile=args.nats_ca)
        except (OSError, ssl_module.SSLError) as exc:
            raise CliError(f"--nats-ca: {exc}", EXIT_USAGE) from None
    return options


def run(args: argparse.Namespace) -> int:
    import logging

    from ..relay.cluster.jetstream_order import ClusterJoinError
    from ..relay.server import serve_forever

    config = _config(args)
    level = (logging.WARNING, logging.INFO)[args.verbose] if args.verbose < 2 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    context, fingerprint = _ssl_context(args)
    scheme = "http" if context is None else "https"
    if fingerprint is not None:
        print(f"{FINGERPRINT_LINE}{fingerprint}", flush=True)

    listening = False

    def ready(port: int) -> None:
        nonlocal listening
        listening = True
        print(f"relay listening on {scheme}://{args.host}:{port}", flush=True)

    try:
        serve_forever(
            args.host,
            args.port,
            config,
            on_ready=ready,
            ssl_context=context,
            nats=_nats(args),
            nats_options=_nats_options(args),
        )
    except ClusterJoinError as exc:
        raise CliError(f"cannot join the relay cluster: {exc}", EXIT_LOCAL) from None
    except OSError as exc:
        if listening:
            raise
        raise CliError(
            f"cannot listen on {args.host}:{args.port}: "
            f"{os.strerror(exc.errno) if exc.errno else exc}",
            EXIT_LOCAL,
        ) from None
    return 0
