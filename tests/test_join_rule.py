"""Entering a room is one rule in the model (``Hub.enter`` -> ``Rooms.admit`` -> ``access.check_join``), and every
path to it refuses and admits alike.

Unit: ``Hub.enter`` over each rule (a new room opened and owned by its creator, a member entering again, a key,
a member limit, invite-only and its invitation, a ban, an admin, a bad name) and the word ``JoinRefused`` carries.
End to end (the real ``chatroom-server`` with its IRC door): the line protocol's ``/join``, a third-party plugin's
``ctx.join`` and IRC ``JOIN``, each tried against a key, a member limit, invite-only and a ban set with IRC
``MODE``; each door answers in its own words (``ERROR ...``; IRC's 475, 471, 473, 474) and what one admits the
others admit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from irc_kit import operator_and_other, start_with_plugin

from chatroom.model.errors import JoinRefused, Refused
from chatroom.model.history import History
from chatroom.model.hub import Hub
from chatroom.model.member import Member
from chatroom.model.moderation import Ban


class Quiet(Member):
    """A member whose deliveries are dropped (the rule is what is tested here)."""

    def deliver(self, data: bytes | memoryview) -> None:
        pass


def _refusal(hub: Hub, member: Member, name: str, key: str | None = None) -> tuple[str, str]:
    with pytest.raises(JoinRefused) as caught:
        hub.enter(member, name, key)
    assert caught.value.args[0] == str(caught.value)
    return caught.value.block, str(caught.value)


def test_enter_opens_a_new_room_for_its_creator_and_else_applies_the_rooms_rules(tmp_path: Path) -> None:
    hub = Hub(History(tmp_path / "rooms.sqlite3"))
    alice, bob, root = Quiet(1, "alice"), Quiet(2, "bob"), Quiet(3, "root")
    alice.account, root.account = "alice", "root"
    hub.rooms.is_admin = lambda account: account == "root"
    for member in (alice, bob, root):
        hub.add(member)
    room, joined = hub.enter(alice, "Den")
    assert (room.name, joined, room.rules.owner, alice.room) == ("#den", True, "alice", room)
    assert hub.enter(alice, "#den", "any key") == (room, False)  # a member is in already: it becomes current
    room.rules.key = "door"
    assert _refusal(hub, bob, "#den") == ("key", "#den needs a key: /join #den KEY")
    assert _refusal(hub, bob, "#den", "nope") == ("key", "wrong key for #den")
    assert hub.enter(bob, "#den", "door") == (room, True)
    hub.part(bob, room)
    room.rules.key, room.rules.limit = "", 1  # alice fills it
    assert _refusal(hub, bob, "#den") == ("full", "#den is full")
    room.rules.limit, room.rules.invite_only = 0, True
    assert _refusal(hub, bob, "#den") == ("invite", "#den is invite-only: it needs an invitation")
    bob.invite("#den")
    assert hub.enter(bob, "#den") == (room, True) and not bob.invited_to("#den")  # an invitation lets in once
    hub.part(bob, room)
    room.rules.invite_only = False
    room.rules.bans.append(Ban("mask", "bob!*@*", "bob"))
    assert _refusal(hub, bob, "#den") == ("banned", "you are banned from #den")
    root_room, _ = hub.enter(root, "#den")  # an admin enters whatever the rules
    assert root_room is room and root.id in room.members and bob.id not in room.members
    with pytest.raises(Refused) as bad:
        hub.enter(bob, "no spaces")
    assert not isinstance(bad.value, JoinRefused) and "is not a room name" in str(bad.value)


ENTER = '''
from chatroom import Command, hookimpl


def enter(ctx, args):
    room, joined = ctx.join(args[0], args[1] if len(args) > 1 else None)
    ctx.reply(f"OK entered {room.name} {joined}")


@hookimpl
def register_commands():
    return [Command("enter", enter, min_args=1, max_args=2)]
'''


def test_join_enter_and_irc_join_refuse_and_admit_alike(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = start_with_plugin(server_factory, tmp_path, "enter", ENTER)
    carol, dave = operator_and_other(server, "#open")  # carol operates #open
    bob = server.connect("bob")

    def mode(change: str) -> None:
        carol.send(f"MODE #open {change}")
        carol.expect("MODE")

    def refused(words: str, numeric: str, key: str = "") -> None:
        for command in ("/join", "/enter"):
            bob.send(f"{command} #open {key}".rstrip())
            assert not [line for line in bob.expect(f"ERROR {words}") if line.startswith("OK")], command
        dave.send(f"JOIN #open {key}".rstrip())
        assert dave.expect(numeric).params[1] == "#open"
        assert [m.command for m in dave.sync() if m.command == "JOIN"] == []

    mode("+k door")
    refused("#open needs a key: /join #open KEY", "475")
    refused("wrong key for #open", "475", "nope")
    mode("-k")
    mode("+l 1")
    refused("#open is full", "471")
    mode("-l")
    mode("+i")
    refused("#open is invite-only: it needs an invitation", "473")
    mode("-i")
    mode("+b bob")  # a guest here: its address, which dave shares (both on 127.0.0.1)
    refused("you are banned from #open", "474")
    mode("-b bob")
    mode("+k door")
    bob.send("/enter #open door")
    bob.expect("OK entered #open True")
    bob.send("/enter #open")  # in it already: no key asked, it just becomes current
    bob.expect("OK entered #open False")
    dave.send("JOIN #open door")
    assert dave.expect("JOIN").params[0] == "#open"
    erin = server.connect("erin")
    erin.send("/join #open door")
    erin.expect("OK join #open (4 members)")
    for client in (carol, dave):
        client.close()
