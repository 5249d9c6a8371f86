"""The worked examples in docs/PROTOCOL.md, recomputed from the code."""

from __future__ import annotations

from pathlib import Path

from clave import wire
from clave.meeting.app_messages import Alive, Bye, Chat, Hello, encode_app_message
from clave.meeting.keys import access_token, join_key, token_hash
from clave.meeting.link import MeetingLink, owner_fingerprint, parse_link
from clave.meeting.security_code import security_code
from clave.mls.events import Member
from clave.mls.structs import Credential

DOC = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
SECRET = bytes(range(32))
OWNER = bytes(range(32, 64))


def test_derived_keys_and_invitation_match_the_document() -> None:
    token = access_token(SECRET)
    link = MeetingLink("clave.example", SECRET, owner_fingerprint(OWNER))
    expected = {
        "access_token": token.hex(),
        "token_hash": token_hash(token).hex(),
        "room_id": wire.room_id_for_token(token),
        "join_key": join_key(SECRET).hex(),
        "invitation": link.url,
        "web page": link.info_url,
    }
    for name, value in expected.items():
        assert f"{name} = {value}" in " ".join(DOC.split()), name
    assert parse_link(link.url) == link


def test_security_code_and_messages_match_the_document() -> None:
    identity = b"CLV2" + bytes(96) + b"Ada"
    code = security_code(b"g" * 16, [Member(0, Credential.basic(identity), bytes(32), b"")])
    assert f"give `{code}`" in " ".join(DOC.split())
    assert f"`{encode_app_message(Alive()).hex()}`" in DOC
    assert f"`{encode_app_message(Bye()).hex()}`" in DOC
    hello = Hello(conn=7, name="Bob", missing=(2,))
    assert f"`{encode_app_message(hello).hex()}`" in DOC
    assert f"`{encode_app_message(Chat(text='hi', id=5)).hex()}`" in DOC
