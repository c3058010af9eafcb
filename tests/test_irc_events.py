"""How room events look on IRC (chatroom/wire/ircevents.py), without sockets: every kind the room model has."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.model.history import Entry
from chatroom.model.hub import Notice
from chatroom.net.ircchat import relayed_size
from chatroom.wire.irc import MAX_LINE, IrcParser, Message, line_size
from chatroom.wire.ircevents import ACCOUNT, AWAY, TAGS, TIME, msgid, parse_msgid, render_event

T = 1_790_000_000.5


def mask(nick: str) -> str:
    return f"{nick}!~{nick}@127.0.0.1"


def parsed(data: bytes) -> list[Message]:
    return [m for m in IrcParser(max_line=MAX_LINE, max_tags=8191).feed(data) if isinstance(m, Message)]


def one(entry: object, flags: int = 0) -> Message:
    [msg] = parsed(render_event(entry, flags, mask, "irc.test"))
    return msg


def test_chat_me_topic_and_private_lines() -> None:
    said = Entry("#r", 7, T, "msg", "alice", "alice", "hello there")
    assert one(said) == Message("PRIVMSG", ["#r", "hello there"], source=mask("alice"))
    assert one(Entry("#r", 8, T, "me", "bob", None, "waves")).params == ["#r", "\x01ACTION waves\x01"]
    assert one(Entry("#r", 9, T, "topic", "bob", None, "new")) == Message("TOPIC", ["#r", "new"], source=mask("bob"))
    private = Notice("", 0, T, "private", "bob", None, "psst", "alice")
    assert one(private) == Message("PRIVMSG", ["alice", "psst"], source=mask("bob"))


def test_tags_follow_the_negotiated_capabilities() -> None:
    said = Entry("#r", 7, T, "msg", "alice", "alice", "hi")
    assert one(said).tags == {}
    assert set(one(said, TIME).tags) == {"time"}
    assert one(said, TAGS).tags == {"time": "2026-09-21T14:13:20.500Z", "msgid": "r-7", "account": "alice"}
    assert set(one(said, ACCOUNT).tags) == {"account"}


def test_membership_kick_quit_nick_mode_away() -> None:
    assert one(Notice("#r", 0, T, "join", "bob", None, "bob joined r")) == Message("JOIN", ["#r"], source=mask("bob"))
    assert one(Notice("#r", 0, T, "part", "bob", None, "bob left r (bye)", "bye")).params == ["#r", "bye"]
    kick = Notice("#r", 0, T, "part", "bob", None, "alice kicked bob", "spam", by="alice", cause="kick")
    assert one(kick) == Message("KICK", ["#r", "bob", "spam"], source=mask("alice"))
    assert render_event(Notice("#r", 0, T, "part", "bob", None, "x", "bye", cause="quit"), 0, mask, "s") == b""
    assert one(Notice("", 0, T, "quit", "bob", None, "bob left (bye)", "bye")).params == ["Quit: bye"]
    renamed = one(Notice("", 0, T, "nick", "robert", None, "bob is now known as robert", "bob"))
    assert renamed.command == "NICK" and renamed.source.startswith("bob!") and renamed.params == ["robert"]
    mode = Notice("#r", 0, T, "mode", "alice", None, "alice made bob an operator", "+o bob", by="alice")
    assert one(mode) == Message("MODE", ["#r", "+o", "bob"], source=mask("alice"))
    away = Notice("", 0, T, "away", "bob", None, "bob is away: lunch", "lunch")
    assert render_event(away, 0, mask, "s") == b""  # only with away-notify
    assert one(away, AWAY) == Message("AWAY", ["lunch"], source=mask("bob"))


def test_room_notices_come_from_the_server_and_members_notices_from_them() -> None:
    assert one(Entry("#r", 0, T, "notice", "", None, "alice set a key")).source == "irc.test"
    assert one(Entry("#r", 3, T, "notice", "bob", None, "hear ye")) == Message("NOTICE", ["#r", "hear ye"],
                                                                               source=mask("bob"))


def test_a_long_line_is_split_under_512_bytes_with_one_msgid() -> None:
    text = "\u00e9t\u00e9 " * 400
    data = render_event(Entry("#r", 5, T, "msg", "alice", None, text), TAGS, mask, "irc.test")
    lines = data.split(b"\r\n")[:-1]
    assert len(lines) > 3 and all(len(line.split(b" ", 1)[1]) + 2 <= MAX_LINE for line in lines)
    messages = parsed(data)
    assert "".join(m.params[1] for m in messages) == text
    assert {m.tags["msgid"] for m in messages} == {"r-5"}


def test_msgids_name_their_room() -> None:
    assert msgid("#lobby", 42) == "lobby-42" and parse_msgid("lobby-42") == ("#lobby", 42)
    assert parse_msgid("my-room-7") == ("#my-room", 7)
    for bad in ("lobby", "-4", "lobby-x", "lobby-" + "9" * 19):
        assert parse_msgid(bad) is None


@given(st.text(alphabet=st.characters(blacklist_characters="\0\r\n", blacklist_categories=("Cs",)), max_size=60),
       st.booleans())
@settings(deadline=None)
def test_the_door_counts_a_relayed_line_as_the_codec_encodes_it(text: str, action: bool) -> None:
    shown = f"\x01ACTION {text}\x01" if action else text
    for command, target in (("PRIVMSG", "#room"), ("NOTICE", "bob")):
        assert relayed_size("alice!~a@127.0.0.1", command, target, text, action) == \
            line_size(Message(command, [target, shown], source="alice!~a@127.0.0.1"))
