"""Who may speak in a room is one rule in the model (``Rooms.speak_refusal`` -> ``access.speak_block``), and every
path to it refuses and admits alike.

Unit: ``Rooms.speak_refusal`` over each rule (a member of a free room, someone outside a room that takes lines
from outside or not, a ban, a moderated room, voice and operators over both, an admin) and the word
``SpeakRefused`` carries; a member of a free room passes without the admin check (the per-line fast path).
End to end (the real ``chatroom-server`` with its IRC door): a line-protocol client's plain line and ``/me``, a
third-party plugin's ``ctx.chat`` and 1.0's ``ctx.say(text)``, and an IRC client's PRIVMSG, CTCP ACTION, NOTICE
and TAGMSG (client-only tags, ``message-tags``) to the channel, tried in a moderated room and under a ban (a mask
ban matching two members after a nick change: both stay in the room, banned); each door answers in its own words
(``ERROR ...``; IRC's 404, nothing for a NOTICE), the room hears none of it, and what voice and lifting the ban
admit, every path admits. A TAGMSG from outside a ``+n`` room is refused too, and taken once the room is ``-n``.
"""

from __future__ import annotations

from pathlib import Path

from irc_kit import operator_and_other, start_with_plugin

from chatroom.model.errors import Refused, SpeakRefused
from chatroom.model.history import History
from chatroom.model.hub import Hub
from chatroom.model.member import Member
from chatroom.model.moderation import Ban

MODERATED = "#den is moderated: only its operators and voiced members speak"


class Quiet(Member):
    """A member whose deliveries are dropped (the rule is what is tested here)."""

    def deliver(self, data: bytes | memoryview) -> None:
        pass


def _said(hub: Hub, member: Member, name: str = "#den") -> tuple[str, str] | None:
    refused = hub.rooms.speak_refusal(member, hub.rooms[name])
    if refused is None:
        return None
    assert isinstance(refused, SpeakRefused) and isinstance(refused, Refused)
    return refused.block, str(refused)


def test_speak_refusal_over_every_rule(tmp_path: Path) -> None:
    hub = Hub(History(tmp_path / "rooms.sqlite3"))
    alice, bob, carol, root = Quiet(1, "alice"), Quiet(2, "bob"), Quiet(3, "carol"), Quiet(4, "root")
    alice.account, root.account = "alice", "root"
    admins: list[str | None] = []

    def is_admin(account: str | None) -> bool:
        admins.append(account)
        return account == "root"

    hub.rooms.is_admin = is_admin
    for member in (alice, bob, carol, root):
        hub.add(member)
    room, _ = hub.enter(alice, "#den")  # owned by alice's account
    hub.enter(bob, "#den")
    admins.clear()
    assert _said(hub, bob) is None and _said(hub, alice) is None
    assert admins == []  # a member of a room without bans or +m: no admin check, no viewer built
    assert _said(hub, carol) == ("outside", "you are not in #den: /join #den first")
    assert _said(hub, root) is None  # an admin speaks anywhere
    room.rules.external = True  # IRC's -n: lines from outside are taken
    assert _said(hub, carol) is None
    room.rules.bans.append(Ban("mask", "carol!*@*", "carol"))
    assert _said(hub, carol) == ("banned", "you are banned from #den")
    hub.enter(root, "#den")
    room.rules.bans.append(Ban("mask", "b*!*@*", "b*"))  # bob is in the room, now banned
    assert _said(hub, bob) == ("banned", "you are banned from #den")
    room.voices.add(bob.id)  # a voice speaks, banned or not (IRC: +v before +b)
    assert _said(hub, bob) is None
    room.voices.discard(bob.id)
    room.rules.bans.clear()
    room.rules.external = False
    room.rules.moderated = True
    assert _said(hub, bob) == ("moderated", MODERATED)
    assert _said(hub, carol) == ("outside", "you are not in #den: /join #den first")
    assert _said(hub, alice) is None  # the owner operates it
    assert _said(hub, root) is None  # an admin, in it or not
    room.voices.add(bob.id)
    assert _said(hub, bob) is None
    hub.part(bob, room)  # a voice lasts while its member stays
    hub.enter(bob, "#den")
    assert _said(hub, bob) == ("moderated", MODERATED)
    room.rules.bans.append(Ban("mask", "alice!*@*", "alice"))
    assert _said(hub, alice) is None  # an operator speaks over a ban too


PARROT = '''
from chatroom import Command, hookimpl


def chat(ctx, args):
    ctx.chat(ctx.text)


def say(ctx, args):
    ctx.say(ctx.text)  # plugin API 1.0: the caller chats (DeprecationWarning)


@hookimpl
def register_commands():
    return [Command("parrot", chat, min_args=1), Command("parrot10", say, min_args=1)]
'''


def test_every_door_and_a_plugin_are_silenced_and_let_speak_alike(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = start_with_plugin(server_factory, tmp_path, "parrot", PARROT)
    carol, dave = operator_and_other(server, "#open", "message-tags")  # carol operates #open
    dave.send("JOIN #open")
    dave.expect("366")
    bob = server.connect("bob")
    bob.send("/join #open")
    bob.expect("OK join #open (3 members)")
    nicks = {"bob": "bob", "dave": "dave"}

    def mode(change: str) -> None:
        carol.send(f"MODE #open {change}")
        carol.expect("MODE")

    def attempt(tag: str) -> None:
        """Every path to the rule, from a line client, a plugin it calls and an IRC client: eight lines."""
        assert tag.startswith("t-")  # (no notice of the room has it)
        bob.send(f"plain {tag}")
        bob.send(f"/me waves {tag}")
        bob.send(f"/parrot chat {tag}")
        bob.send(f"/parrot10 say {tag}")
        dave.send(f"PRIVMSG #open :irc {tag}")
        dave.send(f"PRIVMSG #open :\x01ACTION acts {tag}\x01")
        dave.send(f"NOTICE #open :notice {tag}")
        dave.send(f"@+typing=active;+t={tag} TAGMSG #open")

    def heard(tag: str) -> list[tuple[str, str, str]]:
        """What carol (an operator in the room) heard of *tag*: (sender, command, text or a TAGMSG's ``+t`` tag)."""
        got = [(str(m.source).partition("!")[0], m.command, m.tags.get("+t", "") if m.command == "TAGMSG"
                else m.params[-1]) for m in carol.sync() if m.command in ("PRIVMSG", "NOTICE", "TAGMSG")]
        return [said for said in got if tag in said[2]]

    def refused(tag: str, words: str, why: str) -> None:
        attempt(tag)
        replies = dave.sync()
        assert [m.params[1:] for m in replies if m.command == "404"] == [["#open", f"Cannot send to channel ({why})"]] * 3
        lines = bob.sync()
        assert [line for line in lines if line.startswith("ERROR")] == [f"ERROR {words}"] * 4, lines
        assert not [line for line in lines if tag in line], lines
        assert not [m for m in dave.sync() if m.command in ("PRIVMSG", "NOTICE", "TAGMSG")]
        assert heard(tag) == []

    def admitted(tag: str) -> None:
        attempt(tag)
        assert not [m for m in dave.sync() if m.command == "404"]
        lines = bob.sync()
        assert not [line for line in lines if line.startswith("ERROR")], lines
        b, d = nicks["bob"], nicks["dave"]
        assert f"{d}: irc {tag}" in lines and f"* {d} acts {tag}" in lines, lines
        got = heard(tag)
        assert [said for said in got if said[0] == b] == [
            (b, "PRIVMSG", f"plain {tag}"), (b, "PRIVMSG", f"\x01ACTION waves {tag}\x01"),
            (b, "PRIVMSG", f"chat {tag}"), (b, "PRIVMSG", f"say {tag}")], got
        assert [said for said in got if said[0] == d] == [
            (d, "PRIVMSG", f"irc {tag}"), (d, "PRIVMSG", f"\x01ACTION acts {tag}\x01"), (d, "NOTICE", f"notice {tag}"),
            (d, "TAGMSG", tag)], got

    admitted("t-free")
    mode("+m")
    refused("t-moderated", "#open is moderated: only its operators and voiced members speak", "+m")
    carol.send("PRIVMSG #open :carol operates it")  # an operator speaks in a moderated room
    bob.expect("carol: carol operates it")
    mode("+v bob")
    mode("+v dave")
    admitted("t-voiced")
    mode("-v bob")
    mode("-v dave")
    refused("t-unvoiced", "#open is moderated: only its operators and voiced members speak", "+m")
    mode("-m")
    admitted("t-unmoderated")
    mode("+b mute*!*@*")  # nobody matches it yet: nobody is kicked
    bob.send("/nick mutebob")
    bob.expect("OK nick mutebob")
    dave.send("NICK mutedave")
    dave.expect("NICK")
    nicks.update(bob="mutebob", dave="mutedave")
    names = carol.sync()
    assert not [m for m in names if m.command in ("PART", "KICK")]  # both are still in the room, banned
    refused("t-banned", "you are banned from #open", "you are banned")
    mode("+v mutebob")  # a voice speaks over a ban, as on IRC
    mode("+v mutedave")
    admitted("t-voicedban")
    mode("-v mutebob")
    mode("-v mutedave")
    refused("t-stillbanned", "you are banned from #open", "you are banned")
    mode("-b mute*!*@*")
    admitted("t-unbanned")
    dave.send("PART #open")
    dave.expect("PART")
    dave.send("@+t=t-outside TAGMSG #open")  # from outside a +n room: refused, as a PRIVMSG is
    assert dave.expect("404").params[1:] == ["#open", "Cannot send to channel (you are not in it)"]
    dave.send("TAGMSG #nowhere")
    assert dave.expect("403").params[1] == "#nowhere"
    assert heard("t-outside") == []
    mode("-n")  # lines from outside are taken
    dave.send("@+t=t-external TAGMSG #open")
    assert [m for m in dave.sync() if m.command == "404"] == []
    assert heard("t-external") == [("mutedave", "TAGMSG", "t-external")]
    for client in (carol, dave):
        client.close()
