"""Plugin hooks seen from every door: what a plugin author's member_ready greeter gets from an IRC client."""

from __future__ import annotations

import time

from irc_kit import IrcClient, start_irc

GREETER = '''
from chatroom import hookimpl


@hookimpl
def member_ready(ctx):
    ctx.reply(f"* welcome, {ctx.nick}")
'''


def test_an_irc_client_is_ready_once_registered_not_after_the_grace(server_factory, tmp_path):
    # An IRC client names itself at registration (NICK), so member_ready follows the welcome at once; it used
    # to wait for --ready-grace like a silent nc user, so an IRC member was greeted minutes late.
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "greeter.py").write_text(GREETER)
    server = start_irc(server_factory, "--plugin-dir", str(folder), "--ready-grace", "600")
    dave = IrcClient(server.irc_port)
    try:
        started = time.monotonic()
        welcome = dave.register("dave")
        notice = dave.expect("NOTICE", lambda m: m.params[-1].startswith("* welcome"), timeout=5)
        assert notice.params == ["dave", "* welcome, dave"]
        assert time.monotonic() - started < 5
        assert [m.command for m in welcome][-1] == "422"  # after the welcome, never before it
    finally:
        dave.close()


ROOM_WATCHER = '''
from chatroom import hookimpl


@hookimpl
def chat_message(ctx, text, room):
    ctx.reply(f"* said in {room.name}, ctx.room {ctx.room.name}, {len(ctx.members())} members")
'''


def test_chat_message_names_the_room_an_irc_line_goes_to_not_the_last_joined(server_factory, tmp_path):
    # An IRC client speaks in any of its channels (PRIVMSG #aa) without a "current room"; chat_message's
    # ctx.room used to be the last channel it joined (#bb), so a plugin filed the line under the wrong room.
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "watcher.py").write_text(ROOM_WATCHER)
    server = start_irc(server_factory, "--plugin-dir", str(folder))
    frank, gina = IrcClient(server.irc_port), IrcClient(server.irc_port)
    try:
        frank.register("frank")
        gina.register("gina")
        gina.send("JOIN #aa")
        gina.expect("366")
        frank.send("JOIN #aa")
        frank.expect("366")
        frank.send("JOIN #bb")
        frank.expect("366")
        frank.send("PRIVMSG #aa :hello aa")
        notice = frank.expect("NOTICE", lambda m: m.params[-1].startswith("* said in"))
        assert notice.params[-1] == "* said in #aa, ctx.room #aa, 2 members"
        assert gina.expect("PRIVMSG").params == ["#aa", "hello aa"]
    finally:
        frank.close()
        gina.close()
