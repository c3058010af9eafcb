"""A member a ban silences in a room it is in may not change nick out of the banned mask: one rule in the model
(``Hub.rename`` -> ``Rooms.nick_refusal`` -> ``access.nick_refusal``, on ``speak_block``'s ban logic).

Unit: the rule over a mask ban, voice, an operator, an admin, a member outside the room, a nick change *into* a
banned mask (allowed) and the words and room ``NickRefused`` carries.
End to end (the real ``chatroom-server`` with its IRC door): a line client's ``/nick`` (the built-in, a plugin's
``ctx.rename``) and an IRC client's NICK, each banned by a nick mask in a room it is in, are refused (``ERROR``;
IRC's ``435 ERR_BANNICKCHANGE``, as solanum and hybrid answer) and stay silenced; voiced, or once the ban is
lifted, the change works; a member not in that room renames freely.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from irc_kit import operator_and_other, start_irc

from chatroom.model.errors import NickRefused, Refused
from chatroom.model.history import History
from chatroom.model.hub import Hub
from chatroom.model.member import Member
from chatroom.model.moderation import Ban

WORDS = "you are banned from #den: you cannot change your nick there"


class Quiet(Member):
    """A member whose deliveries are dropped (the rule is what is tested here)."""

    def deliver(self, data: bytes | memoryview) -> None:
        pass


def test_a_banned_member_may_not_rename_unless_voiced_operator_or_admin(tmp_path: Path) -> None:
    hub = Hub(History(tmp_path / "rooms.sqlite3"))
    alice, bob, carol, root = Quiet(1, "alice"), Quiet(2, "bob"), Quiet(3, "carol"), Quiet(4, "root")
    alice.account, root.account = "alice", "root"
    hub.rooms.is_admin = lambda account: account == "root"
    for member in (alice, bob, carol, root):
        hub.add(member)
    room, _ = hub.enter(alice, "#den")  # owned by alice's account: she operates it
    for member in (bob, root):
        hub.enter(member, "#den")
    room.rules.bans.append(Ban("mask", "*o*!*@*", "*o*"))  # bob, carol and root match; alice does not
    with pytest.raises(NickRefused) as refused:
        hub.rename(bob, "robert")
    assert isinstance(refused.value, Refused) and str(refused.value) == WORDS
    assert (refused.value.block, refused.value.room, bob.nick) == ("banned", "#den", "bob")
    assert hub.find("bob") is bob and hub.find("robert") is None
    assert hub.rooms.speak_refusal(bob, room) is not None  # still silenced
    assert hub.rename(bob, "bob") == "bob"  # no change: nothing to refuse
    assert hub.rename(carol, "carl") == "carol"  # banned by the mask, but not in the room
    assert hub.rename(root, "rooty") == "root"  # an admin
    assert hub.rename(alice, "bobalice") == "alice"  # she operates #den: an operator passes
    dan = Quiet(5, "dan")
    hub.add(dan)
    hub.enter(dan, "#den")
    assert hub.rooms.nick_refusal(dan) is None
    assert hub.rename(dan, "don") == "dan"  # into the banned mask: allowed...
    assert hub.rooms.speak_refusal(dan, room) is not None  # ... and the speak rule silences him
    with pytest.raises(NickRefused):
        hub.rename(dan, "dan")  # ... and he stays so
    room.voices.add(bob.id)
    assert hub.rename(bob, "robert") == "bob"  # a voiced member passes, as it speaks
    assert hub.rename(bob, "bobby") == "robert"  # "bobby" is banned, but changing into a ban is allowed
    room.voices.discard(bob.id)
    with pytest.raises(NickRefused):
        hub.rename(bob, "rob")
    room.rules.bans.clear()
    assert hub.rename(bob, "rob") == "bobby"


def test_line_and_irc_clients_banned_by_a_mask_may_not_rename(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start_irc(server_factory)
    carol, dave = operator_and_other(server, "#den")  # carol operates #den
    dave.send("JOIN #den")
    dave.expect("366")
    bob = server.connect("bob")
    bob.send("/join #den")
    bob.expect("OK join #den (3 members)")
    erin = server.connect("erin")  # in the lobby, not in #den
    erin.sync()

    def mode(change: str) -> None:
        carol.send(f"MODE #den {change}")
        carol.expect("MODE")

    def silenced() -> None:
        bob.send("still here")
        dave.send("PRIVMSG #den :still here")
        assert "ERROR you are banned from #den" in bob.sync()
        assert dave.expect("404").params[1] == "#den"
        assert not [m for m in carol.sync() if m.command == "PRIVMSG"]

    def into_the_ban() -> None:
        """bob and dave take nicks the ban matches (allowed: the speak rule silences them); they stay in #den."""
        bob.send("/nick mutebob")
        bob.expect("OK nick mutebob")
        dave.send("NICK mutedave")
        dave.expect("NICK", lambda m: str(m.source).startswith("dave!") and m.params == ["mutedave"])
        assert not [m for m in carol.sync() if m.command in ("PART", "KICK")]
        silenced()

    def refused() -> None:
        bob.send("/nick bob")
        lines = bob.sync()
        assert f"ERROR {WORDS}" in lines and not [line for line in lines if line.startswith("OK nick")], lines
        dave.send("NICK dave")
        assert dave.expect("435").params == ["mutedave", "dave", "#den", "Cannot change nickname while banned on channel"]
        assert not [m for m in dave.sync() if m.command == "NICK"]
        assert not [m for m in carol.sync() if m.command == "NICK"]  # the room saw no rename
        silenced()  # still silenced

    def renamed() -> None:
        bob.send("/nick bob")
        bob.expect("OK nick bob")
        dave.send("NICK dave")
        dave.expect("NICK", lambda m: str(m.source).startswith("mutedave!") and m.params == ["dave"])

    mode("+b mute*!*@*")  # nobody matches it yet: nobody is parted
    into_the_ban()
    refused()
    erin.send("/nick muterin")  # not in #den: its ban does not hold her, into the mask or out of it
    erin.expect("OK nick muterin")
    erin.send("/nick erin")
    erin.expect("OK nick erin")
    mode("+v mutebob")  # voiced: a voice speaks over a ban, and renames
    mode("+v mutedave")
    renamed()
    mode("-v bob")
    mode("-v dave")
    into_the_ban()
    refused()
    mode("-b mute*!*@*")
    renamed()
    for client in (carol, dave):
        client.close()
