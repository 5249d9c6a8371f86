"""The attacks of the admission-and-authority issue, run against real meeting cores.

Each test plays the attacker with the same tools an attacker has (a link, a
member's state, a tampered engine, a lying relay) and checks what honest
engines do. The relay-level halves (commit credentials, room ids, rotation)
are tested against the real relay in tests/relay; the whole flows with real
processes in tests/e2e.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from meeting_harness import Client, FakeRelay, Net, meeting_of_three, rogue_commit, view

from clave import wire
from clave.meeting import (
    AlertKind,
    EpochChanged,
    ErrorCode,
    IdentityError,
    InvitationReplaced,
    JoinDeclined,
    JoinRefused,
    LobbyRequest,
    MediaFrameDecrypted,
    Meeting,
    MeetingConfig,
    MeetingEnded,
    MeetingPolicy,
    OrderingResumed,
    OrderingStalled,
    PeopleBook,
    SecurityAlert,
    generate_owner_key,
    new_link,
    parse_link,
)
from clave.meeting.app_messages import Invite
from clave.meeting.identity import Identity, make_credential
from clave.meeting.lobby import Outcome, ReplyBody, seal_reply
from clave.meeting.policy import CAPABILITIES, initial_extensions, with_policy
from clave.meeting.roles import HostEntry, owner_entry, suite
from clave.mls.group import Group, GroupConfig, Signer
from clave.wire.media import StreamKind


def alerts(c: Client, kind: AlertKind) -> list[SecurityAlert]:
    return [a for a in c.of(SecurityAlert) if a.kind == kind]


# ---------------------------------------------------------------- 2. counterfeit Welcome


def counterfeit(
    net: Net, attacker: Client, joiner: Client, policy_for: Callable[[bytes], MeetingPolicy]
) -> None:
    """``attacker`` (a member, so it holds the link and reads the join request) answers
    the joiner with a Welcome to a group of its own: same group id, host named "Ada"."""
    group = attacker.meeting._group
    assert group is not None
    (request,) = [e for e in attacker.meeting._lobby.values() if e.request_id == joiner.conn]
    priv, pub = suite().generate_signature_key_pair(net.rng)
    signer = Signer(make_credential(Identity.generate(net.rng), "Ada", pub), priv)
    fake = Group.create(
        1,
        group.group_id,
        signer,
        rng=net.rng,
        now=net.now,
        extensions=initial_extensions(policy_for(pub)),
        config=GroupConfig(capabilities=CAPABILITIES),
    )
    out = fake.commit(add=[request.key_package])
    fake.merge_pending_commit()
    assert out.welcome is not None
    net.relay.handle(attacker.conn, wire.encode(wire.WelcomeTo(to=joiner.conn, data=out.welcome)))


def real_owner(c: Client) -> bytes:
    policy = c.meeting.policy
    assert policy is not None
    return policy.owner


VARIANTS: dict[str, Callable[[Client], Callable[[bytes], MeetingPolicy]]] = {
    "its own owner key": lambda bob: lambda me: MeetingPolicy(owner=me, hosts=(owner_entry(me),)),
    "the real owner named, itself as an uncertified host": lambda bob: (
        lambda me: MeetingPolicy(owner=real_owner(bob), hosts=(HostEntry(me, ()),))
    ),
    "the real owner as host, signed by itself": lambda bob: (
        lambda me: MeetingPolicy(owner=real_owner(bob), hosts=(owner_entry(real_owner(bob)),))
    ),
}


@pytest.mark.parametrize("auto", [False, True], ids=["admitted by hand", "auto-admit"])
@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_counterfeit_welcome_is_refused_and_the_real_one_wins(
    variant: Callable[[Client], Callable[[bytes], MeetingPolicy]], auto: bool
) -> None:
    net = Net()
    host, bob, _carol = meeting_of_three(net)
    grace = net.guest("Grace")
    net.pump()
    grace.held = True  # Grace's inbox waits: the counterfeit is delivered first
    counterfeit(net, bob, grace, variant(bob))
    if auto:
        host.meeting.set_auto_admit(True)
    else:
        assert host.meeting.admit(grace.conn)
    net.pump()
    grace.held = False
    net.pump()
    (alert,) = alerts(grace, AlertKind.counterfeit_welcome)
    assert f"connection {bob.conn}" in alert.message
    assert grace.meeting.phase == "in_meeting"
    assert view(grace) == view(host)
    assert [r.name for r in grace.meeting.roster] == ["Ada", "Bob", "Carol", "Grace"]
    assert grace.meeting.security_code == host.meeting.security_code


def test_counterfeit_welcome_alone_never_admits() -> None:
    net = Net()
    _host, bob, _carol = meeting_of_three(net)
    grace = net.guest("Grace")
    net.pump()
    counterfeit(net, bob, grace, VARIANTS["its own owner key"](bob))
    net.pump()
    assert grace.meeting.phase == "lobby"
    assert alerts(grace, AlertKind.counterfeit_welcome)
    assert not grace.meeting.encrypted


def test_a_member_cannot_admit_behind_the_hosts_back() -> None:
    """Bob (a certified successor, not a host) commits Grace's Add himself and sends her
    his Welcome: the group is the real one, the owner too, but the signer is no host."""
    net = Net()
    host, bob, _carol = meeting_of_three(net)
    grace = net.guest("Grace")
    net.pump()
    (request,) = [e for e in bob.meeting._lobby.values() if e.request_id == grace.conn]
    out = rogue_commit(net, bob, add=[request.key_package])
    assert out.welcome is not None
    net.relay.handle(bob.conn, wire.encode(wire.WelcomeTo(to=grace.conn, data=out.welcome)))
    net.pump()
    (alert,) = alerts(grace, AlertKind.counterfeit_welcome)
    assert "not a host" in alert.message
    assert grace.meeting.phase == "lobby"
    assert [e for e in host.errors() if e.code == ErrorCode.rejected_commit]
    host.meeting.admit(grace.conn)
    net.pump()
    assert grace.meeting.phase == "in_meeting" and view(grace) == view(host)


# ---------------------------------------------------------------- 3. the first guest seizes


def test_first_guest_cannot_seize_the_meeting() -> None:
    net = Net()
    host, bob, carol = meeting_of_three(net)
    policy = host.meeting.policy
    assert policy is not None and bob.meeting.own_leaf == 1
    before = view(host)
    # Bob (the first successor) removes the present host and Carol, and names himself host.
    seized = policy.replace(hosts=(policy.successors[0],), successors=())
    group = bob.meeting._group
    assert group is not None
    rogue_commit(net, bob, remove=[0, 2], extensions=with_policy(group.extensions, seized))
    net.pump()
    for c in (host, carol):
        assert view(c) == before
        assert [e for e in c.errors() if e.code == ErrorCode.rejected_commit]
        assert alerts(c, AlertKind.refused_takeover)
    assert host.meeting.is_host and not carol.meeting.is_host
    # The honest members reopened the epoch, so the host still rules: it removes Bob.
    host.meeting.remove_member(1)
    net.pump()
    assert [r.name for r in carol.meeting.roster] == ["Ada", "Carol"]
    assert view(carol) == view(host)


def test_a_plain_member_cannot_unlock_or_admit() -> None:
    net = Net()
    host, bob, carol = meeting_of_three(net)
    dave = net.guest("Dave")
    net.admit_via_lobby(host, dave)
    host.meeting.set_locked(True)
    net.pump()
    accomplice = net.guest("Mallory")
    net.pump()
    group = dave.meeting._group
    policy = dave.meeting.policy
    assert group is not None and policy is not None and policy.locked
    assert dave.meeting.policy is not None
    # Dave (not a host) commits "unlock" and an Add of the knocking accomplice.
    (request,) = [e for e in dave.meeting._lobby.values() if e.name == "Mallory"] or [None]
    kp = [request.key_package] if request is not None else []
    rogue_commit(
        net, dave, add=kp, extensions=with_policy(group.extensions, policy.replace(locked=False))
    )
    net.pump()
    for c in (host, bob, carol):
        assert any("not a host" in e.message for e in c.errors())
        assert c.meeting.policy is not None and c.meeting.policy.locked
        assert "Mallory" not in [r.name for r in c.meeting.roster]
    assert accomplice.meeting.phase != "in_meeting"


def test_honest_handover_gives_newcomers_no_role() -> None:
    net = Net()
    host, bob, carol = meeting_of_three(net)
    host.meeting.leave()
    net.pump()
    assert bob.meeting.is_host and bob.meeting.own_leaf == 1
    eve = net.guest("Eve")
    net.admit_via_lobby(bob, eve)
    assert eve.meeting.own_leaf == 0  # blank leaf 0 reused
    assert not eve.meeting.is_host
    # Eve's role (if any) is the new host's choice of successor, not her position.
    assert [r.role for r in carol.meeting.roster] == ["successor", "host", "successor"]
    assert carol.meeting.policy is not None
    assert carol.meeting.policy.successor_keys[0] == carol.meeting._sig_pub


# ---------------------------------------------------------------- 4. freezing the meeting


def test_knocker_junk_commits_do_not_stop_a_removal() -> None:
    net = Net()
    host, bob, _carol = meeting_of_three(net)
    knocker = net.guest("Knocker")  # holds the link, never admitted
    net.pump()
    for i in range(50):
        junk = wire.Commit(cred=bytes([i]) * 32, next=bytes(32), data=b"\x00\x01junk")
        net.relay.handle(knocker.conn, wire.encode(junk))
    net.pump()
    assert net.relay.credential_refusals == 50
    host.meeting.remove_member(2)
    net.pump()
    assert [r.name for r in bob.meeting.roster] == ["Ada", "Bob"]
    assert not [e for e in host.errors() if e.code == ErrorCode.relay_error]


class LyingRelay(FakeRelay):
    """Answers the first ``lies`` commits with a fake stale_epoch and drops them."""

    def __init__(self, lies: int) -> None:
        super().__init__()
        self.lies = lies

    def handle(self, conn: int, frame: bytes) -> None:
        channel, body = wire.split_frame(frame)
        if channel == wire.CONTROL and self.lies > 0:
            msg = wire.decode_client(body)
            if isinstance(msg, wire.Commit):
                self.lies -= 1
                self._send(conn, wire.Error(code=wire.ErrorCode.stale_epoch, message="stale"))
                return
        super().handle(conn, frame)


def test_a_lying_relay_is_never_waited_for_silently() -> None:
    net = Net()
    host, bob, _carol = meeting_of_three(net)
    liar = LyingRelay(lies=3)
    liar.__dict__.update({k: v for k, v in net.relay.__dict__.items() if k != "lies"})
    net.relay = liar
    host.meeting.remove_member(2)
    net.pump()
    assert host.meeting.pending_removals == (2,)
    assert not host.of(OrderingStalled)
    net.tick(6)  # longer than order_timeout: the change that "won" never came
    (stall,) = host.of(OrderingStalled)
    assert "not ordering" in stall.reason
    assert host.meeting.ordering_stalled is not None
    assert host.meeting.pending_removals == (2,)
    for _ in range(4):
        net.tick(9)
    assert host.meeting.pending_removals == ()
    assert host.of(OrderingResumed) and host.meeting.ordering_stalled is None
    assert [r.name for r in bob.meeting.roster] == ["Ada", "Bob"]


class SilentRelay(FakeRelay):
    """Swallows every commit without an answer."""

    def handle(self, conn: int, frame: bytes) -> None:
        channel, body = wire.split_frame(frame)
        if channel == wire.CONTROL and isinstance(wire.decode_client(body), wire.Commit):
            return
        super().handle(conn, frame)


def test_an_unanswered_commit_turns_into_a_warning() -> None:
    net = Net()
    host, _bob, _carol = meeting_of_three(net)
    silent = SilentRelay()
    silent.__dict__.update(net.relay.__dict__)
    net.relay = silent
    host.meeting.remove_member(2)
    net.pump()
    assert host.meeting.commit_in_flight and not host.of(OrderingStalled)
    net.tick(5.5)
    assert "has not ordered" in host.of(OrderingStalled)[0].reason


# ---------------------------------------------------------------- 5. the security code


def test_key_refreshes_leave_the_code_alone_and_are_rate_limited() -> None:
    net = Net()
    host, bob, carol = meeting_of_three(net)
    code = host.meeting.security_code
    epoch = host.meeting.epoch or 0
    ordered = net.relay.ordered
    for _ in range(30):  # Bob refreshes back to back, his engine tampered to allow it
        ours = host.meeting.epoch
        rogue_commit(net, bob)
        net.pump()
        group = bob.meeting._group
        assert group is not None
        if host.meeting.epoch != ours:
            group.merge_pending_commit()
        else:
            group.discard_pending_commit()
    assert host.meeting.epoch == epoch + 1, "only the first refresh in a row is accepted"
    refused = [e for e in host.errors() if "in a row" in e.message]
    # every one the relay ordered after the first was refused (the relay itself stops
    # ordering once Bob owns too many open epochs)
    assert len(refused) == net.relay.ordered - ordered - 1 >= 3
    assert host.meeting.security_code == carol.meeting.security_code == code
    # Membership changes do change it.
    dave = net.guest("Dave")
    net.admit_via_lobby(host, dave)
    assert host.meeting.security_code != code
    assert dave.meeting.security_code == host.meeting.security_code


def test_engines_refresh_their_keys_periodically_without_moving_the_code() -> None:
    net = Net(config=MeetingConfig(refresh_interval=600))
    host, bob, carol = meeting_of_three(net)
    code, epoch = host.meeting.security_code, host.meeting.epoch or 0
    for _ in range(900):
        net.tick(1)  # 15 minutes
    assert (host.meeting.epoch or 0) >= epoch + 3, "each member refreshed at least once"
    assert view(host) == view(bob) == view(carol)
    assert host.meeting.security_code == code
    assert not [e for c in (host, bob, carol) for e in c.errors()]


# ---------------------------------------------------------------- 6. knocking as someone else


def test_lobby_says_known_new_or_a_different_key() -> None:
    book = PeopleBook()
    grace_id = Identity.generate(lambda n: b"\x07" * n)
    book.remember(grace_id.public_key, "Grace", 1_700_000_000)
    net = Net()
    owner_private, owner_public = generate_owner_key(net.rng)
    net.link = new_link("https://clave.example", net.rng, owner_public)
    host_meeting = Meeting.create(
        net.link, "Ada", owner_key=owner_private, rng=net.rng, clock=net.clock, now=net.now,
        config=net.config, people=book,
    )  # fmt: skip
    host = net._add("Ada", host_meeting)
    net.pump()
    real = net._add(
        "Grace",
        Meeting.join(net.link, "Grace", rng=net.rng, clock=net.clock, now=net.now,
                     identity=grace_id),
    )  # fmt: skip
    impostor = net.guest("Grace")
    stranger = net.guest("Heidi")
    net.pump()
    labels = {r.request_id: r.familiarity for r in host.of(LobbyRequest)}
    assert labels[real.conn].startswith("known since 2023-")
    assert labels[impostor.conn] == "⚠ a different key than the Grace you met before"
    assert labels[stranger.conn] == "new"


def test_look_alike_names_are_flagged_or_refused() -> None:
    net = Net()
    host, _bob, _carol = meeting_of_three(net)
    cyrillic = net.guest("C\u0430rol")  # Cyrillic a
    net.pump()
    (req,) = [r for r in host.of(LobbyRequest) if r.request_id == cyrillic.conn]
    assert req.confusable_with == "Carol"
    net.pump()
    host.meeting.admit(cyrillic.conn)
    net.pump()
    flagged = {r.name: r.confusable_with for r in host.meeting.roster}
    assert flagged["C\u0430rol"] == "Carol" and flagged["Carol"] == "C\u0430rol"
    for bad in ("Gr\u200bace", "\u202eecarG", "Ca\u2066rol"):
        with pytest.raises(IdentityError):
            net.guest(bad)
    assert net.guest("Grace\u00a0").meeting.name == "Grace"


def test_a_credential_with_a_hidden_character_is_refused_by_the_host() -> None:
    net = Net()
    host = net.host("Ada")
    net.pump()
    mallory = net.guest("Mallory")
    # A tampered engine puts a zero-width space into its credential's name.
    m = mallory.meeting
    sneaky = b"CLV2" + m._signer.credential.identity[4:100] + "Gr\u200bace".encode()
    m._signer = Signer(
        dataclasses.replace(m._signer.credential, identity=sneaky), m._signer.signature_private_key
    )
    m._name = "Gr\u200bace"
    net.pump()
    assert not host.of(LobbyRequest)
    assert [e.code for e in host.errors()] == [ErrorCode.bad_join_request]


# ---------------------------------------------------------------- 7. ex-members and the door key


def test_removal_replaces_the_invitation() -> None:
    net = Net()
    host, _bob, carol = meeting_of_three(net)
    lurker = net.guest("Lurker")  # an ex-member's second connection, sitting in the room
    net.pump()
    host.meeting.deny(lurker.conn)  # answered: it stays connected but is not waiting
    old = host.meeting.link
    host.meeting.remove_member(1, replace_invitation=True)
    net.pump()
    new = host.meeting.link
    assert new.url != old.url and new.owner == old.owner
    assert [e.url for e in carol.of(InvitationReplaced)] == [new.url]
    assert carol.meeting.link == new
    assert not alerts(carol, AlertKind.unexpected_rotation)
    assert net.relay.rooms.get(new.room_id) and net.relay.rooms.get(old.room_id) is None
    # Bob comes back with the old link: the relay says it was replaced.
    bob_again = net.guest("Bob", old)
    net.pump()
    assert bob_again.meeting.phase == "ended"
    assert [(e.code, e.reason) for e in bob_again.of(JoinRefused)] == [
        ("rotated", "the meeting's invitation was replaced")
    ]
    # A newcomer with the new link reaches the hosts, and is admitted.
    dave = net.guest("Dave", parse_link(new.url))
    net.admit_via_lobby(host, dave)
    assert view(dave) == view(carol)


def test_a_member_away_during_its_removal_is_not_left_in_a_meeting_of_its_own() -> None:
    """Bob's connection drops before his removal reaches him; the host removes him and
    replaces the invitation. Back with the old link, Bob must be told it is over, not
    find an empty room and carry on as the last one (taking over as host) in his copy."""
    net = Net()
    host, bob, carol = meeting_of_three(net)
    net.cut(bob)
    host.meeting.remove_member(1, replace_invitation=True)
    net.pump()
    assert carol.meeting.link == host.meeting.link != bob.meeting.link
    bob.clear()
    net.reconnect(bob)
    net.ticks(5)
    assert bob.meeting.phase == "ended"
    assert [e.reason for e in bob.of(MeetingEnded)] == [
        "the meeting's invitation was replaced; ask the host for the new one"
    ]
    assert not bob.meeting.is_host
    assert view(host) == view(carol) and len(host.meeting.roster) == 2


def test_rotation_drops_connections_that_are_not_members_or_waiting() -> None:
    net = Net()
    host, bob, _carol = meeting_of_three(net)
    assert net.link is not None
    # A lurker: in the room with the old link, never asking to join (e.g. an ex-member).
    lurker = net.relay.connect()
    net.relay.handle(
        lurker, wire.encode(wire.Enter(room=net.link.room_id, token=net.link.access_token))
    )
    waiting = net.guest("Walt")
    net.pump()
    host.meeting.rotate_invitation()
    net.pump()
    room = net.relay.rooms.get(host.meeting.link.room_id)
    assert room is not None
    assert lurker not in room.peers
    assert waiting.conn in room.peers
    assert host.meeting.admit(waiting.conn)
    net.pump()
    assert waiting.meeting.phase == "in_meeting"
    assert view(waiting) == view(bob)


def test_only_a_host_can_hand_out_a_new_invitation() -> None:
    net = Net()
    _host, bob, carol = meeting_of_three(net)
    before = carol.meeting.link
    bob.meeting._send_app(Invite(bytes(range(32))))
    net.pump()
    assert carol.meeting.link == before and not carol.of(InvitationReplaced)
    assert any("not a host" in e.message for e in carol.errors())


def test_a_rotation_without_a_host_invitation_is_flagged() -> None:
    net = Net()
    host, bob, carol = meeting_of_three(net)
    group = bob.meeting._group
    assert group is not None
    rotate = wire.Rotate(cred=bob.meeting._credential(group), token=bytes(range(32)))
    net.relay.handle(bob.conn, wire.encode(rotate))
    net.pump()
    assert alerts(host, AlertKind.unexpected_rotation)
    assert alerts(carol, AlertKind.unexpected_rotation)


# ---------------------------------------------------------------- 10. lobby outcomes


def test_only_a_certified_host_can_turn_a_joiner_away() -> None:
    net = Net()
    host, bob, _carol = meeting_of_three(net)
    grace = net.guest("Grace")
    net.pump()
    (request,) = [e for e in bob.meeting._lobby.values() if e.request_id == grace.conn]
    group = bob.meeting._group
    assert group is not None
    # Bob, a plain member, signs a "declined" with his own key and no certificate.
    body = ReplyBody(
        Outcome.declined, request.key_package_ref, group.group_id, real_owner(bob),
        HostEntry(bob.meeting._sig_pub, ()),
    )  # fmt: skip
    forged = seal_reply(
        bob.meeting._keys.join_key, body, bob.meeting._signer.signature_private_key, net.rng
    )
    net.relay.handle(bob.conn, wire.encode(wire.ReplyTo(to=grace.conn, data=forged)))
    # The relay (even one holding the secret) forges garbage.
    net.relay._send(grace.conn, wire.ReplyFrom(sender=1, data=b"\x00" * 40))
    net.pump()
    assert len(alerts(grace, AlertKind.forged_reply)) == 2
    assert grace.meeting.phase == "lobby"
    host.meeting.deny(grace.conn)
    net.pump()
    assert [(e.outcome, e.reason) for e in grace.of(JoinDeclined)] == [
        ("declined", "The host declined your request to join.")
    ]


def test_lobby_full_is_told() -> None:
    net = Net(config=MeetingConfig(max_lobby=2))
    host = net.host("Ada")
    net.pump()
    first, second, third = (net.guest(n) for n in ("A1", "A2", "A3"))
    net.pump()
    assert [e.outcome for e in third.of(JoinDeclined)] == ["full"]
    assert first.meeting.phase == second.meeting.phase == "lobby"
    assert len(host.of(LobbyRequest)) == 2


def test_media_keeps_flowing_to_the_real_members() -> None:
    """After all of the above kinds of noise, media still decrypts (a positive control)."""
    net = Net()
    host, bob, _carol = meeting_of_three(net)
    net.send_media(host, StreamKind.video, True, b"still here")
    net.pump()
    assert [e.payload for e in bob.of(MediaFrameDecrypted)] == [b"still here"]
    assert bob.of(EpochChanged)
