"""Invitation links: round trip, relay URL, strict rejection.

``clave://HOST[:PORT]/m/<room-id>#<secret>.<owner>``: the room id is derived from
the access token (itself derived from the secret), the owner part is the owner
key's fingerprint; https:// (the relay's web page) is never an invitation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest

from clave.meeting import (
    LinkError,
    MeetingLink,
    generate_owner_key,
    new_link,
    owner_fingerprint,
    parse_link,
)
from clave.meeting.link import MAX_LINK_CHARS


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hkdf_sha256(ikm: bytes, info: bytes) -> bytes:
    """RFC 5869 with an empty salt and one 32-byte block, written out independently."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def room_for_secret(secret: bytes) -> str:
    token = hkdf_sha256(secret, b"clave v2 relay access token")
    return b64(hashlib.sha256(b"clave v2 room id" + token).digest()[:16])


_, OWNER_KEY = generate_owner_key(lambda n: bytes(range(n)))
OWNER = b64(hashlib.sha256(b"clave v2 owner" + OWNER_KEY).digest()[:16])
SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"  # bytes 0..31
ROOM = room_for_secret(bytes(range(32)))
GOOD = f"clave://clave.example/m/{ROOM}#{SECRET}.{OWNER}"
OTHER_ROOM = room_for_secret(bytes(32))  # a well-formed room id of another secret


def test_independent_derivations_are_the_pinned_values() -> None:
    """The constants this file uses, pinned (a changed derivation shows up here first)."""
    assert ROOM == "Y_dSY-bMRsJbGbyPJg3vTA"
    assert OWNER == "66uz4BjnOPGBHdRHm6wJ_g"
    assert owner_fingerprint(OWNER_KEY) == base64.urlsafe_b64decode(OWNER + "==")


def test_round_trip_and_fields() -> None:
    _, owner = generate_owner_key(os.urandom)
    link = new_link("https://Clave.Example:8443/", os.urandom, owner)
    assert link.netloc == "clave.example:8443"
    assert link.owner == owner_fingerprint(owner) and len(link.owner) == 16
    assert len(link.secret) == 32
    assert link.room_id == room_for_secret(link.secret) and len(link.room_id) == 22
    assert link.url.startswith(f"clave://clave.example:8443/m/{link.room_id}#")
    secret_text, dot, owner_text = link.url.split("#")[1].partition(".")
    assert (len(secret_text), dot, len(owner_text)) == (43, ".", 22)
    again = parse_link(link.url)
    assert again == link
    assert again.relay_url == "wss://clave.example:8443/ws"
    assert again.base_url == "https://clave.example:8443"
    # The relay's web page for the room names the room, never the secret.
    assert again.info_url == f"https://clave.example:8443/m/{link.room_id}"
    assert secret_text not in again.info_url and "#" not in again.info_url
    # repr() shows neither the secret nor anything derived from it.
    for hidden in (link.secret.hex(), secret_text, repr(link.secret), link.access_token.hex()):
        assert hidden not in repr(link)


def test_known_link() -> None:
    link = parse_link("  " + GOOD + "\n")
    assert link.secret == bytes(range(32))
    assert link.owner == owner_fingerprint(OWNER_KEY)
    assert link.room_id == ROOM
    assert link.url == GOOD


def test_deterministic_rng() -> None:
    link = new_link("https://h.example", lambda n: bytes(range(n)), OWNER_KEY)
    assert link.room_id == ROOM
    assert link.url == f"clave://h.example/m/{ROOM}#{SECRET}.{OWNER}"


def test_with_secret_is_a_new_room_of_the_same_meeting() -> None:
    link = parse_link(GOOD)
    other = link.with_secret(bytes(32))
    assert (other.netloc, other.owner) == (link.netloc, link.owner)
    assert other.room_id == OTHER_ROOM != link.room_id
    assert other.access_token != link.access_token
    assert parse_link(other.url) == other
    with pytest.raises(ValueError):
        link.with_secret(bytes(31))


@pytest.mark.parametrize(
    ("base", "ws", "web"),
    [
        ("https://clave.example", "wss://clave.example/ws", "https://clave.example"),
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws", "http://127.0.0.1:8080"),
        ("http://localhost:8080", "ws://localhost:8080/ws", "http://localhost:8080"),
        ("http://[::1]:9000", "ws://[::1]:9000/ws", "http://[::1]:9000"),
    ],
)
def test_relay_websocket_url(base: str, ws: str, web: str) -> None:
    link = new_link(base, os.urandom, OWNER_KEY)
    assert link.relay_url == ws
    assert link.base_url == web
    assert link.url.startswith("clave://")
    assert parse_link(link.url) == link


@pytest.mark.parametrize(
    "url",
    [
        "",
        f"ftp://clave.example/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave:/clave.example/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave://clave.example/m/{ROOM}",  # no secret
        f"clave://clave.example/m/{ROOM}#",
        f"clave://clave.example/m/{ROOM}#{SECRET}",  # no owner
        f"clave://clave.example/m/{ROOM}#{SECRET}.",
        f"clave://clave.example/m/{ROOM}#.{OWNER}",
        f"clave://clave.example/m/{ROOM}#{SECRET}.{OWNER}.{OWNER}",
        f"clave://clave.example/m/{ROOM}#{SECRET}.{OWNER[:-1]}",
        f"clave://clave.example/m/{ROOM}#{SECRET}.{OWNER}A",
        f"clave://clave.example/m/{ROOM}#{SECRET}.{OWNER[:-1]}h",  # non-canonical
        f"clave://clave.example/m/{ROOM}#{OWNER}.{SECRET}",
        f"clave://clave.example/m/{ROOM}/#{SECRET}.{OWNER}",
        f"clave://clave.example/m/{ROOM}?x=1#{SECRET}.{OWNER}",
        f"clave://clave.example/x/{ROOM}#{SECRET}.{OWNER}",
        f"clave://clave.example/app/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave://clave.example/m/#{SECRET}.{OWNER}",
        f"clave://clave.example/m/{ROOM[:-1]}#{SECRET}.{OWNER}",
        f"clave://clave.example/m/{ROOM}A#{SECRET}.{OWNER}",
        f"clave://clave.example/m/{ROOM[:-1]}B#{SECRET}.{OWNER}",  # non-canonical last char
        f"clave://clave.example/m/{OTHER_ROOM}#{SECRET}.{OWNER}",  # another secret's room
        f"clave://clave.example/m/{ROOM}#{SECRET[:-1]}.{OWNER}",
        f"clave://clave.example/m/{ROOM}#{SECRET[:-1]}9.{OWNER}",  # non-canonical
        f"clave://clave.example/m/{ROOM}#{SECRET}=.{OWNER}",
        f"clave://clave.example/m/{ROOM}#{SECRET[:-1]}+.{OWNER}",
        f"clave://clave.example/m/{ROOM}#{SECRET}.{OWNER}#x",
        f"clave://user@clave.example/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave://clave.example:0/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave://clave.example:99999/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave://clave.example:/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave://clave..example/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave://-clave.example/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave://clave_example/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave://cläve.example/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave://clave.example/m/{ROOM} #{SECRET}.{OWNER}",
        f"clave://clave.example/m/{ROOM}#{SECRET}.{OWNER}\x00",
        f"clave://[::1/m/{ROOM}#{SECRET}.{OWNER}",
        f"clave:///m/{ROOM}#{SECRET}.{OWNER}",
        f"//clave.example/m/{ROOM}#{SECRET}.{OWNER}",
        GOOD + "x" * (MAX_LINK_CHARS - len(GOOD) + 1),
    ],
)
def test_strict_rejection(url: str) -> None:
    with pytest.raises(LinkError):
        parse_link(url)


def test_a_mismatched_room_id_is_called_out() -> None:
    """A room id that belongs to another secret: a mistyped or forged invitation."""
    with pytest.raises(LinkError, match="does not belong"):
        parse_link(f"clave://clave.example/m/{OTHER_ROOM}#{SECRET}.{OWNER}")


@pytest.mark.parametrize(
    "url",
    [
        f"https://clave.example/m/{ROOM}#{SECRET}.{OWNER}",
        f"HTTPS://clave.example/m/{ROOM}#{SECRET}.{OWNER}",
        f"http://127.0.0.1:8080/m/{ROOM}#{SECRET}.{OWNER}",
        f"https://clave.example/m/{ROOM}",
    ],
)
def test_web_addresses_are_not_invitations(url: str) -> None:
    """A web page (served by the relay) must never be handed the secret."""
    with pytest.raises(LinkError, match="web address"):
        parse_link(url)


@pytest.mark.parametrize(
    "base",
    [
        "https://clave.example/path",
        "https://clave.example?x",
        "https://clave.example#x",
        "http://clave.example",  # http only for loopback
        "http://10.0.0.1",
        "https://127.0.0.1",  # a loopback relay is reached without TLS
        "wss://clave.example",
        "clave://clave.example",
        "clave.example",
    ],
)
def test_bad_base_urls(base: str) -> None:
    with pytest.raises(LinkError):
        new_link(base, os.urandom, OWNER_KEY)


def test_rng_must_return_a_whole_secret() -> None:
    with pytest.raises(ValueError):
        new_link("https://clave.example", lambda n: bytes(n - 1), OWNER_KEY)


def test_not_a_string() -> None:
    with pytest.raises(LinkError):
        parse_link(b"clave://x")  # type: ignore[arg-type]


def test_equality_is_by_value() -> None:
    link = parse_link(GOOD)
    assert link == MeetingLink("clave.example", bytes(range(32)), owner_fingerprint(OWNER_KEY))
    assert link != MeetingLink("clave.example", bytes(32), owner_fingerprint(OWNER_KEY))
    assert link != MeetingLink("clave.example", bytes(range(32)), bytes(16))
