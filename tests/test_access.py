"""The room access rule (chatroom.model.access) as unit tests: who may read a room, who may enter it,
what a listing shows; and the model's one read path (Rooms.read) that applies it.

The end-to-end paths (every command, the web page, replay on join, plugins) are in tests/test_access_e2e.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from chatroom.model.access import SERVER, Viewer, check_read, join_refusal, may_read, read_refusal, view
from chatroom.model.errors import Refused
from chatroom.model.history import History
from chatroom.model.hub import Hub
from chatroom.model.member import Member
from chatroom.model.moderation import Ban
from chatroom.model.room import Room


class Person(Member):
    """A member with an address, as a transport's connection has (``host``)."""

    __slots__ = ("host", "got")

    def __init__(self, mid: int, nick: str, account: str | None = None, host: str = "") -> None:
        super().__init__(mid, nick)
        self.account = account
        self.host = host
        self.got: list[bytes] = []

    def deliver(self, data: bytes | memoryview) -> None:
        self.got.append(bytes(data))


def room_with(*members: Member, key: str = "", owner: str = "", bans: tuple[Ban, ...] = ()) -> Room:
    room = Room("#den", topic="secret plans")
    room.rules.key = key
    room.rules.owner = owner
    for ban in bans:
        room.rules.add_ban(ban)
    for member in members:
        room.members[member.id] = member
    return room


ALICE = Person(1, "alice", "alice", "10.0.0.1")  # the owner
BOB = Person(2, "bob", "bob", "10.0.0.2")  # logged in
GUEST = Person(3, "guest3", None, "10.0.0.3")  # a guest
CAROL = Person(4, "carol", "carol", "10.0.0.4")  # an operator


@pytest.mark.parametrize("keyed, member, banned", list(itertools.product([False, True], repeat=3)))
def test_the_rule_for_every_combination_of_key_membership_and_ban(keyed: bool, member: bool, banned: bool) -> None:
    """Read iff not banned and (a member or no key): a keyed room only its members, a ban never."""
    bans = (Ban("account", "bob", "bob"),) if banned else ()
    room = room_with(*([BOB] if member else []), key="door" if keyed else "", owner="alice", bans=bans)
    viewer = Viewer.of(BOB)
    expected = not banned and (member or not keyed)
    assert may_read(viewer, room) is expected
    reason = read_refusal(viewer, room)
    if banned:
        assert reason == "you are banned from #den"
    elif not expected:
        assert reason == "#den has a key: only its members can read it (/join #den KEY)"
    else:
        assert reason is None


def test_guests_are_banned_by_address_and_logged_in_members_by_account() -> None:
    room = room_with(GUEST, key="", bans=(Ban("address", "10.0.0.3", "guest3"),))
    assert not may_read(Viewer.of(GUEST), room)  # a member, but banned: never
    assert may_read(Viewer(None, "10.0.0.9"), room)  # another guest: the room has no key
    assert may_read(Viewer("dave", "10.0.0.3"), room)  # an address ban catches guests only (NAT)
    assert not may_read(Viewer(None, "10.0.0.3"), room)  # the same address, not connected: still banned
    with pytest.raises(Refused, match="you are banned from #den"):
        check_read(Viewer.of(GUEST), room)


def test_operators_and_admins_read_a_keyed_room_they_may_enter_without_the_key() -> None:
    room = room_with(ALICE, key="door", owner="alice")
    room.rules.operators["carol"] = "carol"
    assert may_read(Viewer("alice"), room)  # the owner, not even connected
    assert may_read(Viewer.of(CAROL), room)  # an operator
    assert not may_read(Viewer.of(BOB), room)
    assert may_read(Viewer.of(BOB, admin=True), room)
    assert may_read(SERVER, room)
    banned = room_with(key="door", owner="alice", bans=(Ban("account", "bob", "bob"),))
    assert may_read(Viewer.of(BOB, admin=True), banned)  # admins cannot be banned (/ban refuses them)


def test_membership_is_the_member_object_not_the_nick() -> None:
    room = room_with(BOB, key="door")
    impostor = Person(2, "bob", "bob", "10.0.0.2")  # same id and nick, another object
    assert may_read(Viewer.of(BOB), room) and not may_read(Viewer.of(impostor), room)
    assert not may_read(Viewer("bob", "10.0.0.2"), room)  # an account alone is no membership


def test_join_refusal_follows_the_same_rule() -> None:
    room = room_with(ALICE, key="door", owner="alice", bans=(Ban("account", "bob", "bob"),))
    room.rules.operators["carol"] = "carol"
    assert join_refusal(Viewer.of(BOB), room, "door") == "you are banned from #den"
    assert join_refusal(Viewer.of(GUEST), room, None) == "#den needs a key: /join #den KEY"
    assert join_refusal(Viewer.of(GUEST), room, "wrong") == "wrong key for #den"
    assert join_refusal(Viewer.of(GUEST), room, "door") is None
    assert join_refusal(Viewer.of(CAROL), room, None) is None  # operators need no key
    assert join_refusal(Viewer.of(BOB, admin=True), room, None) is None
    assert join_refusal(Viewer.of(ALICE), room, None) is None  # in it already


def test_a_listing_shows_name_count_and_key_to_all_and_the_topic_to_readers() -> None:
    room = room_with(ALICE, BOB, key="door", owner="alice")
    outsider = view(Viewer.of(GUEST), room)
    assert (outsider.name, outsider.members, outsider.keyed, outsider.topic, outsider.readable) == \
        ("#den", 2, True, "", False)
    assert view(Viewer.of(BOB), room).topic == "secret plans"
    banned = room_with(key="", bans=(Ban("address", "10.0.0.3", "guest3"),))
    seen = view(Viewer.of(GUEST), banned)
    assert seen.banned and not seen.readable and seen.topic == ""
    assert view(Viewer.of(BOB), banned).topic == "secret plans"


# -- the model's read path ----------------------------------------------------------------------------
def test_rooms_read_applies_the_rule_to_every_query(tmp_path: Path) -> None:
    """Lines said after a ban are never readable by the banned account; a keyed room only by members."""
    with History(tmp_path / "rooms.sqlite3") as history:
        hub = Hub(history)
        alice, bob = Person(1, "alice", "alice"), Person(2, "bob", "bob")
        for person in (alice, bob):
            hub.add(person)
        den = hub.open_room("#den", owner="alice")
        hub.join(alice, den)
        hub.join(bob, den)
        hub.say(alice, den, "before the ban")
        assert [e.text for e in hub.rooms.read(bob, den)] == ["before the ban"]
        den.rules.add_ban(Ban("account", "bob", "bob"))
        hub.part(bob, den)
        hub.say(alice, den, "after the ban")
        for query in ({}, {"since": 0}, {"before": 99}, {"last": 500}):
            with pytest.raises(Refused, match="you are banned from #den"):
                hub.rooms.read(bob, den, **query)
            with pytest.raises(Refused):
                hub.rooms.read(Viewer("bob"), den, **query)  # the account, not connected
        assert [e.text for e in hub.rooms.read(alice, den)] == ["before the ban", "after the ban"]
        den.rules.bans.clear()
        den.rules.key = "door"
        carol = Person(3, "carol")
        hub.add(carol)
        with pytest.raises(Refused, match="has a key"):
            hub.rooms.read(carol, den, since=0)
        hub.join(carol, den)
        assert len(hub.rooms.read(carol, den, since=0)) == 2
        assert len(hub.rooms.read(SERVER, den)) == 2
        hub.rooms.is_admin = lambda account: account == "bob"
        assert len(hub.rooms.read(bob, den)) == 2  # the server's admins read every room
