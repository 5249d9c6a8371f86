"""Invitation links: ``https://HOST/m/<room-id>#<secret>``.

* ``room-id``: 128 random bits, base64url without padding (22 characters);
  the relay knows it (it names the room).
* ``secret``: 256 random bits, base64url without padding (43 characters).
  It sits in the URL fragment, which browsers never send to any server; the
  relay access token and the join key are derived from it (:mod:`.keys`).

``http://`` is accepted only for loopback hosts (a relay on this machine).
Parsing is strict: anything but exactly this shape raises :class:`LinkError`.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from .errors import LinkError

ROOM_ID_BYTES = 16
SECRET_BYTES = 32
ROOM_ID_CHARS = 22
SECRET_CHARS = 43
RELAY_PATH = "/ws"

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


def _split(url: str, where: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise LinkError(f"{where}: {exc}") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_origin(scheme: str, netloc: str, where: str) -> tuple[str, str]:
    """Validate ``scheme://netloc``; returns them normalized (lower case)."""
    scheme = scheme.lower()
    if scheme not in ("https", "http"):
        raise LinkError(f"{where}: scheme must be https (or http for a loopback relay)")
    if not netloc or "@" in netloc:
        raise LinkError(f"{where}: expected a host name without user information")
    netloc = netloc.lower()
    parts = _split(f"{scheme}://{netloc}", where)
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
    if scheme == "http" and not _is_loopback(host):
        raise LinkError(f"{where}: http:// is only allowed for a loopback relay; use https://")
    return scheme, netloc


def _reject_odd_characters(url: str, where: str) -> None:
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in url):
        raise LinkError(f"{where}: contains spaces, control or non-ASCII characters")


@dataclass(frozen=True, slots=True)
class MeetingLink:
    """A parsed invitation link. ``repr()`` never shows the secret."""

    scheme: str
    """``"https"``, or ``"http"`` for a loopback relay."""
    netloc: str
    """``host[:port]``, lower case."""
    room_id: str
    """22 base64url characters (``clave.wire`` RoomId)."""
    secret: bytes = field(repr=False)
    """The 32-byte link secret."""

    @property
    def room_id_bytes(self) -> bytes:
        """The 16 bytes the room id encodes (also the MLS group_id)."""
        return b64url_decode(self.room_id, ROOM_ID_BYTES, "room id")

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    @property
    def url(self) -> str:
        """The full invitation link (contains the secret: share it only with invitees)."""
        return f"{self.base_url}/m/{self.room_id}#{b64url_encode(self.secret)}"

    @property
    def relay_url(self) -> str:
        """The relay's WebSocket URL: ``wss://HOST/ws`` (``ws://`` for http)."""
        return relay_websocket_url(self.base_url)


def new_link(base_url: str, rng: Rng) -> MeetingLink:
    """A fresh link on the relay at ``base_url`` (``https://HOST[:PORT]``, no path)."""
    _reject_odd_characters(base_url, "base URL")
    parts = _split(base_url, "base URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "#" in base_url:
        raise LinkError("base URL must be scheme://host[:port] without path, query or fragment")
    scheme, netloc = _check_origin(parts.scheme, parts.netloc, "base URL")
    room = rng(ROOM_ID_BYTES)
    secret = rng(SECRET_BYTES)
    if len(room) != ROOM_ID_BYTES or len(secret) != SECRET_BYTES:
        raise ValueError("rng returned the wrong number of bytes")
    return MeetingLink(scheme, netloc, b64url_encode(room), bytes(secret))


def parse_link(url: str) -> MeetingLink:
    """Parse ``https://HOST/m/<room-id>#<secret>`` strictly (surrounding spaces ignored)."""
    if not isinstance(url, str):
        raise LinkError("a meeting link must be a str")
    url = url.strip()
    _reject_odd_characters(url, "link")
    if url.count("#") != 1:
        raise LinkError("link must have exactly one '#' followed by the meeting secret")
    parts = _split(url, "link")
    scheme, netloc = _check_origin(parts.scheme, parts.netloc, "link")
    if parts.query or "?" in url:
        raise LinkError("link must not have a query string")
    segments = parts.path.split("/")
    if len(segments) != 3 or segments[0] != "" or segments[1] != "m":
        raise LinkError("link path must be /m/<room-id>")
    room_id = segments[2]
    b64url_decode(room_id, ROOM_ID_BYTES, "room id")
    secret = b64url_decode(parts.fragment, SECRET_BYTES, "meeting secret")
    return MeetingLink(scheme, netloc, room_id, secret)


def relay_websocket_url(base_url: str) -> str:
    """``https://HOST`` -> ``wss://HOST/ws``; ``http://`` (loopback) -> ``ws://``."""
    parts = _split(base_url, "relay URL")
    scheme, netloc = _check_origin(parts.scheme, parts.netloc, "relay URL")
    return f"{'wss' if scheme == 'https' else 'ws'}://{netloc}{RELAY_PATH}"
