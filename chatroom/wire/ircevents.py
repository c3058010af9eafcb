"""How room events look on IRC: the room model's events as IRC messages, sans-I/O.

:func:`render_event` turns one event of the room model (an ``Entry`` or a
``Notice``, duck-typed: ``room id ts kind nick account text`` and, for
notices, ``extra quiet by cause``) into the bytes an IRC client receives:

========= ===========================================================
kind      IRC message
========= ===========================================================
msg       ``:nick!u@h PRIVMSG #room :text`` (cut to fit 512 bytes; every piece has the same ``msgid``)
me        ``:nick!u@h PRIVMSG #room :\\x01ACTION text\\x01``
topic     ``:nick!u@h TOPIC #room :text``
notice    ``:server NOTICE #room :text`` (a room notice: a moderation, a plugin's line); a member's
          ``NOTICE #room`` (the event has a nick): ``:nick!u@h NOTICE #room :text``
raw       the same
join      ``:nick!u@h JOIN #room``
part      ``:nick!u@h PART #room :reason``; a kick: ``:by!u@h KICK #room nick :reason``; a quit: nothing (the
          ``quit`` notice said it once)
quit      ``:nick!u@h QUIT :Quit: reason``
nick      ``:old!u@h NICK new``
mode      ``:by!u@h MODE #room +o bob``
away      ``:nick!u@h AWAY :message`` (``AWAY`` alone when back), only with ``away-notify``
private   ``:nick!u@h PRIVMSG target :text``
========= ===========================================================

*flags* (the member's ``tagged`` number) says which IRCv3 tags it negotiated:
:data:`TIME` (``server-time``), :data:`TAGS` (``message-tags``: ``msgid``,
``account``), :data:`ACCOUNT` (``account-tag``), :data:`AWAY` (``away-notify``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatroom.wire.irc import MAX_LINE, Message, encode, encode_whole, fit_text, split_text
from chatroom.wire.render import iso_time

__all__ = ["ACCOUNT", "AWAY", "TAGS", "TIME", "event_tags", "msgid", "parse_msgid", "plain_privmsg", "render_event"]

#: ``Member.tagged`` bits of an IRC member: the capabilities that change the bytes it receives.
TIME, TAGS, ACCOUNT, AWAY = 1, 2, 4, 8


def event_tags(entry: Any, flags: int, history: bool = False) -> dict[str, str]:
    """The server tags of *entry* for a client with *flags*: ``time`` (server-time or message-tags),
    ``msgid`` (a stored line's, :func:`msgid`; message-tags), ``account`` (account-tag or message-tags)."""
    tags: dict[str, str] = {}
    if flags & (TIME | TAGS):
        tags["time"] = iso_time(entry.ts)
    if flags & TAGS and entry.id:
        tags["msgid"] = msgid(entry.room, entry.id)
    if flags & (ACCOUNT | TAGS) and entry.account:
        tags["account"] = entry.account
    return tags


def msgid(room: str, number: int) -> str:
    """The IRC ``msgid`` of line *number* of *room*: ``ROOM-NUMBER`` without the ``#`` (``lobby-42``), so the
    message id names its room and a history query can find it (see :func:`parse_msgid`)."""
    return f"{room.lstrip('#')}-{number}"


def parse_msgid(text: str) -> tuple[str, int] | None:
    """``"lobby-42"`` -> ``("#lobby", 42)``; None if *text* is not one of ours."""
    room, _, number = text.rpartition("-")
    if not room or not number.isascii() or not number.isdigit() or len(number) > 18:
        return None
    return "#" + room, int(number)


def render_event(entry: Any, flags: int, mask: Callable[[str], str], server: str, history: bool = False,
                 more: dict[str, str] | None = None) -> bytes:
    """*entry* as IRC bytes for a member with *flags* (see the module docstring); *mask* gives
    ``nick!user@host`` for a nick, *server* is the server's name (the source of notices); *more*: tags
    added for a member with ``message-tags`` (a private line's ``msgid``, the sender's client-only tags)."""
    kind = entry.kind
    room = entry.room
    if kind == "msg" and not flags & (TIME | TAGS | ACCOUNT) and getattr(entry, "cause", "") != "notice":
        # Hot path (every chat line, once per variant of the fan-out): a plain PRIVMSG with no tags,
        # formatted straight into one line; the general path below when it would need cutting.
        data = plain_privmsg(mask(entry.nick), room, entry.text)
        if data is not None:
            return data
    tags = event_tags(entry, flags, history)
    if more and flags & TAGS:
        tags.update(more)
    if kind == "msg" or kind == "me" or kind == "private":
        target = entry.extra if kind == "private" else room
        source = mask(entry.nick)
        text = entry.text
        command = "NOTICE" if getattr(entry, "cause", "") == "notice" else "PRIVMSG"
        if kind == "me":
            return _one(tags, source, command, target, f"\x01ACTION {text}\x01")
        return _long(tags, source, command, target, text)
    if kind == "join":
        return _one(tags, mask(entry.nick), "JOIN", room)
    if kind == "part":
        cause = getattr(entry, "cause", "")
        if cause == "quit":
            return b""
        if cause == "kick":
            return _one(tags, mask(entry.by), "KICK", room, entry.nick, entry.extra or entry.by)
        return _one(tags, mask(entry.nick), "PART", room, *([entry.extra] if entry.extra else []))
    if kind == "quit":
        return _one(tags, mask(entry.nick), "QUIT", f"Quit: {entry.extra}" if entry.extra else "Quit")
    if kind == "nick":
        source = mask(entry.nick).replace(entry.nick, entry.extra, 1)
        return _one(tags, source, "NICK", entry.nick)
    if kind == "topic":
        return _one(tags, mask(entry.nick), "TOPIC", room, entry.text)
    if kind == "mode":
        return _one(tags, mask(entry.by or entry.nick), "MODE", room, *entry.extra.split(" "))
    if kind == "away":
        if not flags & AWAY:
            return b""
        return _one(tags, mask(entry.nick), "AWAY", *([entry.extra] if entry.extra else []))
    if kind == "notice" and entry.nick:  # a member's notice to the room
        return _one(tags, mask(entry.nick), "NOTICE", room, entry.text)
    return _long(tags, server, "NOTICE", room or "*", entry.text)


def plain_privmsg(source: str, target: str, text: str) -> bytes | None:
    """``:SOURCE PRIVMSG TARGET :TEXT`` CR LF (``bytes``) as :func:`chatroom.wire.irc.encode_whole` makes it for a
    message without tags, or None when it would pass 512 bytes or holds NUL, CR or LF (then
    :func:`render_event`'s general path cuts or cleans it): the fan-out's hot path, one chat line for IRC clients
    that negotiated no tags."""
    if not text.isprintable() and ("\0" in text or "\r" in text or "\n" in text):  # (one scan for most lines)
        return None
    last = ":" + text if not text or " " in text or text[0] == ":" else text
    line = f":{source} PRIVMSG {target} {last}\r\n" if source else f"PRIVMSG {target} {last}\r\n"
    data = line.encode("utf-8", "replace")
    return data if len(data) <= MAX_LINE else None


def _long(tags: dict[str, str], source: str, command: str, target: str, text: str) -> bytes:
    """One message, or, when it would pass 512 bytes, several with the same tags (one ``msgid``)."""
    whole = encode_whole(Message(command, [target, text], source=source, tags=tags))
    if whole is not None:
        return whole
    pieces = split_text(text, fit_text(f":{source} {command} {target} :"))
    return b"".join(_one(tags, source, command, target, piece) for piece in pieces)


def _one(tags: dict[str, str], source: str, command: str, *params: str) -> bytes:
    return encode(Message(command, params, source=source, tags=tags))
