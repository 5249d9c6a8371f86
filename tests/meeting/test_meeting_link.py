"""Invitation links: round trip, relay URL, strict rejection."""

from __future__ import annotations

import os

import pytest

from clave.meeting import LinkError, new_link, parse_link, relay_websocket_url

ROOM = "AAECAwQFBgcICQoLDA0ODw"  # bytes 0..15
SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"  # bytes 0..31
GOOD = f"https://clave.example/m/{ROOM}#{SECRET}"


def test_round_trip_and_fields() -> None:
    link = new_link("https://Clave.Example:8443/", os.urandom)
    assert link.netloc == "clave.example:8443"
    assert len(link.room_id) == 22 and len(link.url.split("#")[1]) == 43
    again = parse_link(link.url)
    assert again == link
    assert again.relay_url == "wss://clave.example:8443/ws"
    assert len(link.room_id_bytes) == 16 and len(link.secret) == 32
    assert link.secret.hex() not in repr(link)


def test_known_link() -> None:
    link = parse_link("  " + GOOD + "\n")
    assert link.room_id_bytes == bytes(range(16))
    assert link.secret == bytes(range(32))
    assert link.url == GOOD


def test_deterministic_rng() -> None:
    link = new_link("https://h.example", lambda n: bytes(range(n)))
    assert link.room_id == ROOM
    assert link.url == f"https://h.example/m/{ROOM}#{SECRET}"


@pytest.mark.parametrize(
    ("base", "ws"),
    [
        ("https://clave.example", "wss://clave.example/ws"),
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws"),
        ("http://localhost:8080", "ws://localhost:8080/ws"),
        ("http://[::1]:9000", "ws://[::1]:9000/ws"),
    ],
)
def test_relay_websocket_url(base: str, ws: str) -> None:
    assert relay_websocket_url(base) == ws
    link = new_link(base, os.urandom)
    assert link.relay_url == ws
    assert parse_link(link.url) == link


@pytest.mark.parametrize(
    "url",
    [
        "",
        f"ftp://clave.example/m/{ROOM}#{SECRET}",
        f"http://clave.example/m/{ROOM}#{SECRET}",  # http only for loopback
        f"http://10.0.0.1/m/{ROOM}#{SECRET}",
        f"https://clave.example/m/{ROOM}",  # no secret
        f"https://clave.example/m/{ROOM}#",
        f"https://clave.example/m/{ROOM}/#{SECRET}",
        f"https://clave.example/m/{ROOM}?x=1#{SECRET}",
        f"https://clave.example/x/{ROOM}#{SECRET}",
        f"https://clave.example/app/m/{ROOM}#{SECRET}",
        f"https://clave.example/m/{ROOM[:-1]}#{SECRET}",
        f"https://clave.example/m/{ROOM}A#{SECRET}",
        f"https://clave.example/m/{ROOM[:-1]}x#{SECRET}",  # non-canonical last char
        f"https://clave.example/m/{ROOM}#{SECRET[:-1]}",
        f"https://clave.example/m/{ROOM}#{SECRET[:-1]}9",  # non-canonical
        f"https://clave.example/m/{ROOM}#{SECRET}=",
        f"https://clave.example/m/{ROOM}#{SECRET[:-1]}+",
        f"https://clave.example/m/{ROOM}#{SECRET}#x",
        f"https://user@clave.example/m/{ROOM}#{SECRET}",
        f"https://clave.example:0/m/{ROOM}#{SECRET}",
        f"https://clave.example:99999/m/{ROOM}#{SECRET}",
        f"https://clave.example:/m/{ROOM}#{SECRET}",
        f"https://clave..example/m/{ROOM}#{SECRET}",
        f"https://-clave.example/m/{ROOM}#{SECRET}",
        f"https://clave_example/m/{ROOM}#{SECRET}",
        f"https://cläve.example/m/{ROOM}#{SECRET}",
        f"https://clave.example/m/{ROOM} #{SECRET}",
        f"https://clave.example/m/{ROOM}#{SECRET}\x00",
        f"https://[::1/m/{ROOM}#{SECRET}",
        f"https:///m/{ROOM}#{SECRET}",
        f"//clave.example/m/{ROOM}#{SECRET}",
    ],
)
def test_strict_rejection(url: str) -> None:
    with pytest.raises(LinkError):
        parse_link(url)


@pytest.mark.parametrize(
    "base",
    [
        "https://clave.example/path",
        "https://clave.example?x",
        "https://clave.example#x",
        "http://clave.example",
        "wss://clave.example",
        "clave.example",
    ],
)
def test_bad_base_urls(base: str) -> None:
    with pytest.raises(LinkError):
        new_link(base, os.urandom)


def test_not_a_string() -> None:
    with pytest.raises(LinkError):
        parse_link(b"https://x" )  # type: ignore[arg-type]
