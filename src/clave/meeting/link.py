"""Invitation links: ``clave://HOST[:PORT]/m/<room-id>#<secret>.<owner>``.

* ``secret``: 256 random bits, base64url without padding (43 characters). The
  relay access token and the join key are derived from it (:mod:`.keys`).
* ``owner``: the meeting owner's fingerprint, ``SHA-256("clave v2 owner" ||
  owner signature key)[:16]`` (128 bits, 22 characters). A joiner accepts only a
  meeting whose policy names this owner and whose Welcome comes from a host the
  owner certified (:mod:`.roles`), so a link holder cannot pass off a meeting of
  its own.
* ``room-id``: derived from the access token (``clave.wire.room_id_for_token``);
  the parser checks it, so a link names exactly one room and a room id alone
  names no link.

The ``clave:`` scheme is opened by the local engine (``clave open``, registered
by ``clave setup``), never by a web page: no code a relay serves ever sees the
secret. The relay's own address for the room, :attr:`MeetingLink.info_url`,
carries no secret and only explains how to install Clave and open the
invitation. The relay is reached over ``wss://HOST/ws``, or ``ws://`` for a
loopback host (a relay on this machine). Parsing is strict: anything but exactly
this shape raises :class:`LinkError`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from ..wire.control import room_id_for_token
from .errors import LinkError
from .keys import SECRET_BYTES, RoomKeys, access_token, room_keys

OWNER_BYTES = 16
ROOM_ID_BYTES = 16
ROOM_ID_CHARS = 22
SECRET_CHARS = 43
OWNER_CHARS = 22
SCHEME = "clave"
RELAY_PATH = "/ws"
OWNER_LABEL = b"clave v2 owner"
MAX_LINK_CHARS = 400

Rng = Callable[[int], bytes]

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 4648 section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, length: int, what: str) -> bytes:
    """Strict inverse of :func:`b64url_encode` for exactly ``length`` bytes."""
    chars = (4 * length + 2) // 3
    if len(text) != chars or not _B64URL.match(text):
        raise LinkError(f"{what} must be {chars} base64url characters")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(data) != length or b64url_encode(data) != text:
        raise LinkError(f"{what} is not canonical base64url")
    return data


def owner_fingerprint(owner_key: bytes) -> bytes:
    """The 16 bytes an invitation carries for the owner's MLS signature public key."""
    return hashlib.sha256(OWNER_LABEL + bytes(owner_key)).digest()[:OWNER_BYTES]


def _split(url: str, where: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise LinkError(f"{where}: {exc}") from None


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1 (brackets allowed)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_netloc(netloc: str, where: str) -> str:
    """Validate ``host[:port]``; returns it in lower case."""
    if not netloc or "@" in netloc:
        raise LinkError(f"{where}: expected a host name without user information")
    netloc = netloc.lower()
    parts = _split(f"https://{netloc}", where)
    try:
        port = parts.port
    except ValueError as exc:
        raise LinkError(f"{where}: bad port ({exc})") from None
    host = parts.hostname or ""
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise LinkError(f"{where}: bad IPv6 address {host!r}") from None
        expected = f"[{host}]"
    else:
        if not _HOSTNAME.match(host):
            raise LinkError(f"{where}: bad host name {host!r}")
        expected = host
    if port is not None:
        if port == 0:
            raise LinkError(f"{where}: port 0 is not allowed")
        expected += f":{port}"
    if netloc != expected:
        raise LinkError(f"{where}: malformed host {netloc!r}")
    return netloc


def _reject_odd_characters(url: str, where: str) -> None:
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in url):
        raise LinkError(f"{where}: contains spaces, control or non-ASCII characters")


@dataclass(frozen=True, slots=True)
class MeetingLink:
    """A parsed invitation. ``repr()`` never shows the secret."""

    netloc: str
    """``host[:port]`` of the relay, lower case."""
    secret: bytes = field(repr=False)
    """The 32-byte link secret."""
    owner: bytes
    """The owner fingerprint (:func:`owner_fingerprint`, 16 bytes)."""

    @property
    def host(self) -> str:
        return _split(f"https://{self.netloc}", "link").hostname or ""

    @property
    def loopback(self) -> bool:
        """True for a relay on this machine (reached without TLS)."""
        return is_loopback(self.host)

    @property
    def access_token(self) -> bytes:
        return access_token(self.secret)

    @property
    def keys(self) -> RoomKeys:
        """Every key derived from the secret (:mod:`.keys`)."""
        return room_keys(self.secret)

    @property
    def room_id(self) -> str:
        """22 base64url characters, derived from the access token."""
        return room_id_for_token(self.access_token)

    @property
    def base_url(self) -> str:
        """``https://HOST`` (``http://`` for a loopback relay)."""
        return f"{'http' if self.loopback else 'https'}://{self.netloc}"

    @property
    def url(self) -> str:
        """The invitation (contains the secret: share it only with invitees)."""
        fragment = f"{b64url_encode(self.secret)}.{b64url_encode(self.owner)}"
        return f"{SCHEME}://{self.netloc}/m/{self.room_id}#{fragment}"

    @property
    def info_url(self) -> str:
        """The relay's page for this room: how to install Clave and open the invitation.
        It carries no secret."""
        return f"{self.base_url}/m/{self.room_id}"

    @property
    def relay_url(self) -> str:
        """The relay's WebSocket URL: ``wss://HOST/ws`` (``ws://`` for loopback)."""
        return f"{'ws' if self.loopback else 'wss'}://{self.netloc}{RELAY_PATH}"

    def with_secret(self, secret: bytes) -> MeetingLink:
        """The same meeting under a new secret (a replaced invitation)."""
        if len(secret) != SECRET_BYTES:
            raise ValueError(f"a link secret has {SECRET_BYTES} bytes")
        return MeetingLink(self.netloc, bytes(secret), self.owner)


def relay_netloc(base_url: str) -> str:
    """``host[:port]`` of a relay base URL (``https://HOST[:PORT]``, or ``http://`` for
    loopback), validated."""
    _reject_odd_characters(base_url, "relay URL")
    parts = _split(base_url, "relay URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "#" in base_url:
        raise LinkError("relay URL must be scheme://host[:port] without path, query or fragment")
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise LinkError("relay URL: scheme must be https (or http for a loopback relay)")
    netloc = _check_netloc(parts.netloc, "relay URL")
    loop = is_loopback(_split(f"https://{netloc}", "relay URL").hostname or "")
    if scheme == "http" and not loop:
        raise LinkError("relay URL: http:// is only allowed for a loopback relay; use https://")
    if scheme == "https" and loop:
        raise LinkError("relay URL: a loopback relay is reached without TLS; use http://")
    return netloc


def new_link(base_url: str, rng: Rng, owner_key: bytes) -> MeetingLink:
    """A fresh invitation for the relay at ``base_url``, owned by ``owner_key``
    (the owner's MLS signature public key)."""
    netloc = relay_netloc(base_url)
    secret = rng(SECRET_BYTES)
    if len(secret) != SECRET_BYTES:
        raise ValueError("rng returned the wrong number of bytes")
    return MeetingLink(netloc, bytes(secret), owner_fingerprint(owner_key))


def parse_link(url: str) -> MeetingLink:
    """Parse ``clave://HOST[:PORT]/m/<room-id>#<secret>.<owner>`` strictly
    (surrounding spaces ignored)."""
    if not isinstance(url, str):
        raise LinkError("a meeting link must be a str")
    url = url.strip()
    if len(url) > MAX_LINK_CHARS:
        raise LinkError(f"a meeting link has at most {MAX_LINK_CHARS} characters")
    _reject_odd_characters(url, "link")
    scheme = url.partition(":")[0].lower()
    if scheme in ("https", "http"):
        raise LinkError(
            "this is a web address, not an invitation: a Clave invitation starts with "
            "clave:// (the web page of a meeting holds no secret)"
        )
    if scheme != SCHEME:
        raise LinkError("an invitation starts with clave://")
    if url.count("#") != 1:
        raise LinkError("link must have exactly one '#' followed by the meeting secret")
    parts = _split(url, "link")
    netloc = _check_netloc(parts.netloc, "link")
    if parts.query or "?" in url:
        raise LinkError("link must not have a query string")
    segments = parts.path.split("/")
    if len(segments) != 3 or segments[0] != "" or segments[1] != "m":
        raise LinkError("link path must be /m/<room-id>")
    room_id = segments[2]
    b64url_decode(room_id, ROOM_ID_BYTES, "room id")
    secret_text, dot, owner_text = parts.fragment.partition(".")
    if not dot:
        raise LinkError("the part after '#' must be <secret>.<owner fingerprint>")
    secret = b64url_decode(secret_text, SECRET_BYTES, "meeting secret")
    owner = b64url_decode(owner_text, OWNER_BYTES, "owner fingerprint")
    link = MeetingLink(netloc, secret, owner)
    if link.room_id != room_id:
        raise LinkError("the room id does not belong to this secret (a mistyped or forged link)")
    return link
