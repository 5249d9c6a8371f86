"""Test certificates for TLS tests: a throwaway CA and relay certificates it signs (EC
P-256, made with ``cryptography``), written as PEM files, and a name of this machine
that an invitation does not treat as loopback (so Clave reaches it with TLS)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clave.meeting.errors import LinkError
from clave.meeting.link import relay_netloc

_NOW = datetime.datetime.now(datetime.UTC)
_CA_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path
    der: bytes

    @property
    def digest(self) -> bytes:
        """SHA-256 of the certificate's DER encoding (what a pin holds)."""
        return hashlib.sha256(self.der).digest()


class TestCA:
    """A CA that exists for one test run; :meth:`issue` signs relay certificates."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, where: Path, name: str = "Clave test CA") -> None:
        self.where = where
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - datetime.timedelta(minutes=5))
            .not_valid_after(_NOW + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.pem = where / f"{name.replace(' ', '-')}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        stem: str,
        names: list[str],
        *,
        not_after: datetime.datetime | None = None,
        self_signed: bool = False,
    ) -> Issued:
        """A server certificate for ``names`` (IP addresses or DNS names), signed by this
        CA (or by its own key: ``self_signed``), written to ``STEM.pem`` / ``STEM.key``."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        subject = _name(f"relay {stem}")
        issuer, signer = (subject, key) if self_signed else (self.name, self.key)
        end = not_after or _NOW + datetime.timedelta(days=1)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(min(end, _NOW) - datetime.timedelta(days=2))
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        cert = builder.sign(signer, hashes.SHA256())
        cert_path, key_path = self.where / f"{stem}.pem", self.where / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_key_pem(key))
        key_path.chmod(0o600)
        return Issued(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER))


def other_key(where: Path) -> Path:
    """A private key that belongs to no certificate."""
    path = where / "other.key"
    path.write_bytes(_key_pem(ec.generate_private_key(ec.SECP256R1())))
    return path


def encrypted_key(where: Path) -> Path:
    """A private key protected by a passphrase (a relay cannot be given one)."""
    path = where / "encrypted.key"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return path


def _bindable(address: str) -> bool:
    with socket.socket(socket.AF_INET) as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


def reachable_name() -> tuple[str, str] | None:
    """``(name, address)``: a name of this machine that an invitation does not treat as
    loopback (so Clave insists on https for it) and the IPv4 address it resolves to,
    which a relay can bind; the host name, else a non-loopback address; None if none."""
    name = socket.gethostname().lower()
    try:
        address = socket.gethostbyname(name)
        relay_netloc(f"https://{name}")
    except (OSError, LinkError):
        pass
    else:
        if _bindable(address):
            return name, address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # chooses a source address; sends nothing
            address = s.getsockname()[0]
        except OSError:
            return None
    if ipaddress.ip_address(address).is_loopback or not _bindable(address):
        return None
    return address, address
