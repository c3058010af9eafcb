"""IRC server queries and admin commands: HELP, TIME, INFO, USERHOST, ISON, WHOWAS, KILL.

``HELP`` gives chatroom's ``/help`` text (the commands the client may use, or
one command explained) in 704/705/706; ``WHOWAS`` remembers the last :data:`WHOWAS_KEEP` IRC
members who left or changed nick; ``KILL`` is for server admins (an account in
the config's ``admins``, after ``OPER`` or SASL). Loop thread only.
"""

from __future__ import annotations

import time
from collections import deque

from chatroom.net.connection import Connection
from chatroom.net.irc import IrcConnection, IrcDoor, irc_host
from chatroom.wire.irc import Message, casefold
from chatroom.wire.numbers import parse_uint

__all__ = ["WHOWAS_KEEP", "install", "remember"]

#: Departed nicks WHOWAS remembers (oldest forgotten first).
WHOWAS_KEEP = 1000


def help_(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``HELP [subject]``: 704, 705..., 706 (Modern IRC, "HELP"); an unknown subject is 524. The text of a chatroom
    command, or of the list, is what chatroom's ``/help [COMMAND]`` replies to this member (run for it, its lines
    collected: one source of the help text, usage, parameters, subcommands and examples, only what the member may
    use); a subject that is only an IRC command of the door's gets its first docstring line."""
    subject = msg.params[0].lower().lstrip("/") if msg.params else ""
    registry = door.app.plugins.registry
    cost = 3.0
    if subject and registry.get(subject) is None:
        handler = door.commands.get(subject.upper())
        if handler is None:
            door.numeric(conn, "524", subject, "Help not found")
            return 2.0
        lines = [f"{subject.upper()}: an IRC command", *(handler[0].__doc__ or "").split("\n")[:1]]
    else:
        lines = [] if subject else ["chatroom's commands (send them as IRC commands: /quote NAME ARGS in irssi):"]
        conn.replies, streaming = [], conn.streams  # a listing being streamed to it waits (its lines not taken)
        conn.streams = None
        try:
            cost = float(door.app.on_line(conn, f"/help {subject}".rstrip()))
        finally:
            lines += conn.replies
            conn.replies, conn.streams = None, streaming
    door.numeric(conn, "704", subject or "*", lines[0] if lines else "")
    for line in lines[1:]:
        door.numeric(conn, "705", subject or "*", line)
    door.numeric(conn, "706", subject or "*", "End of /HELP")
    return cost


def time_(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``TIME``: 391, the server's local time."""
    door.numeric(conn, "391", door.server_name, time.strftime("%A %B %d %Y -- %H:%M:%S %z"))
    return 1.0


def info(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``INFO``: 371 lines, 374."""
    for line in (f"chatroom {door.version}: a chat-room server whose commands are plugins",
                 "IRC, terminal, browser and nc clients share its rooms"):
        door.numeric(conn, "371", line)
    door.numeric(conn, "374", "End of INFO list")
    return 1.0


def userhost(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``USERHOST nick...``: 302 ``nick[*]=+|-user@host`` for up to five nicks."""
    replies = []
    for name in msg.params[:5]:
        member = door.hub.find(name)
        if member is not None:
            user, host = door.mask_of(member.nick).split("!", 1)[1].split("@", 1)
            oper = "*" if door.is_admin(member) else ""
            replies.append(f"{member.nick}{oper}={'-' if member.away else '+'}{user}@{host}")
    door.numeric(conn, "302", " ".join(replies))
    return 1.0


def ison(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``ISON nick...``: ``303`` with those of the nicks that are here, as each spells its nick (RFC 2812 4.9; what
    irssi's and WeeChat's ``/notify`` ask every minute). Members of every door count."""
    names = " ".join(msg.params).split()[:30]
    here = [member.nick for member in map(door.hub.find, names) if member is not None]
    door.numeric(conn, "303", " ".join(here))
    return 1.0


def remember(door: IrcDoor, conn: IrcConnection) -> None:
    """*conn* leaves its nick (a QUIT, a close, a NICK): WHOWAS will answer with it."""
    past: deque[tuple[str, str, str, str, float]] = door.whowas
    past.appendleft((conn.nick, conn.user or "~" + conn.nick, irc_host(conn.host), conn.realname, time.time()))


def whowas(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``WHOWAS nick [count]``: 314 + 312 per remembered use, newest first, then 369; 406 when none."""
    name = msg.params[0]
    count = msg.params[1] if len(msg.params) > 1 else ""
    limit = parse_uint(count, max_digits=9) or 0  # 0 (none, negative, not a number): every remembered use
    key = casefold(name)
    found = 0
    for nick, user, host, realname, when in door.whowas:
        if casefold(nick) != key:
            continue
        door.numeric(conn, "314", nick, user, host, "*", realname or nick)
        door.numeric(conn, "312", nick, door.server_name, time.strftime("%c", time.localtime(when)))
        found += 1
        if limit and found >= limit:
            break
    if not found:
        door.numeric(conn, "406", name, "There was no such nickname")
    door.numeric(conn, "369", name, "End of WHOWAS")
    return 2.0


def kill(door: IrcDoor, conn: IrcConnection, msg: Message) -> float:
    """``KILL nick :reason``: a server admin disconnects a member of any door (481 for anyone else)."""
    if not door.is_admin(conn):
        door.numeric(conn, "481", "Permission Denied- You're not an IRC operator")
        return 2.0
    target = door.hub.find(msg.params[0])
    if target is None:
        door.numeric(conn, "401", msg.params[0], "No such nick/channel")
        return 1.0
    if not isinstance(target, Connection):  # a member of another node (--redis): its own server closes it
        door.numeric(conn, "483", target.nick, "is on another server: KILL it there")
        return 1.0
    reason = f"Killed ({conn.nick} ({msg.params[1] if len(msg.params) > 1 and msg.params[1] else conn.nick}))"
    door.close(target, reason)  # in its door's words: IRC's ERROR :Closing Link, the line protocol's ERROR Killed
    return 2.0


def install(door: IrcDoor) -> None:
    """Register this module's commands with *door*."""
    door.command("HELP", help_)
    door.command("TIME", time_)
    door.command("INFO", info)
    door.command("USERHOST", userhost, params=1)
    door.command("ISON", ison, params=1)
    door.command("WHOWAS", whowas, params=1)
    door.command("KILL", kill, params=1)

