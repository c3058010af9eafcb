"""Channel mode changes from IRC, as changes of the room's rules (:class:`~chatroom.model.moderation.RoomRules`).

``+o/-o NICK`` (an account: persisted as the room's operator; a guest: operator while it stays, as the first
member of an unowned room is), ``+b/-b MASK`` and ``b`` alone (the list: 367, 368), ``+k KEY``/``-k``, ``+t``/``-t``
(the topic lock), ``+s`` (secret: listed, and its members shown, to its members only), ``+n`` (always on), ``+v NICK`` (shown as ``+``, for IRC clients only: no room is moderated,
so it changes nothing). Anything else (``+i``, ``+m``, ``+l``, ``+s``, ``+v``, ``-n``) is a rule
chatroom's rooms do not have: ``472``. Every change is persisted, told to the room as a structured ``mode``
notice (IRC clients see ``MODE``, the others the human line) and logged. Loop thread only.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chatroom.model.moderation import Ban
from chatroom.net.irc import IrcConnection, IrcDoor

__all__ = ["change_modes"]

log = logging.getLogger("chatroom.server")

#: Modes that take a parameter when set (and, for o, b and k, when unset).
_WITH_ARG = {"+": "obkv", "-": "obv"}
#: Most mode changes with a parameter in one MODE command (ISUPPORT MODES).
MAX_MODES = 4


def change_modes(door: IrcDoor, conn: IrcConnection, room: Any, changes: str, args: list[str]) -> float:
    """Apply ``MODE #room CHANGES ARGS...``; returns the flood cost."""
    sign = "+"
    args = list(args)
    done = 0
    for char in changes:
        if char in "+-":
            sign = char
            continue
        arg = args.pop(0) if char in _WITH_ARG[sign] and args else None
        if char == "b" and arg is None:
            for ban in room.rules.bans:
                door.numeric(conn, "367", room.name, ban.label if "!" in ban.label or ban.label.startswith("$")
                             else ban.label, ban.by or door.server_name, str(int(ban.at)))
            door.numeric(conn, "368", room.name, "End of channel ban list")
            continue
        if char not in "obktnvs":
            door.numeric(conn, "472", char, f"is not a mode of chatroom's rooms ({room.name})")
            continue
        if char == "n":
            if sign == "-":
                door.numeric(conn, "472", char, "is always on: a room hears only its members")
            continue
        if room.name not in conn.rooms and not door.is_admin(conn):
            door.numeric(conn, "442", room.name, "You're not on that channel")
            return 1.0
        if not door.is_op(conn, room):
            door.numeric(conn, "482", room.name, "You're not channel operator")
            return 1.0
        if char in "obkv" and arg is None and not (char == "k" and sign == "-"):
            door.numeric(conn, "461", "MODE", "Not enough parameters")
            continue
        done += 1
        if done > MAX_MODES:
            break
        _one(door, conn, room, sign, char, arg or "")
    return 1.0 + done


def _one(door: IrcDoor, conn: IrcConnection, room: Any, sign: str, char: str, arg: str) -> None:
    hub, rules = door.hub, room.rules
    label = room.label
    if char == "o":
        member = hub.find(arg)
        if member is None:
            door.numeric(conn, "401", arg, "No such nick/channel")
            return
        if room.name not in member.rooms:
            door.numeric(conn, "441", member.nick, room.name, "They aren't on that channel")
            return
        if sign == "+":
            if door.is_op(member, room):
                return
            if member.account:
                rules.operators[member.account.casefold()] = member.account
            else:
                room.ops.add(member.id)
            text = f"{conn.nick} made {member.nick} an operator of {label}"
        else:
            if member.account and member.account.casefold() == rules.owner.casefold():
                door.numeric(conn, "482", room.name, f"{member.nick} owns {room.name}")
                return
            was = member.id in room.ops or rules.operators.pop((member.account or "").casefold(), None) is not None
            room.ops.discard(member.id)
            if not was:
                return
            text = f"{conn.nick} took operator from {member.nick} in {label}"
        _changed(door, conn, room, f"{sign}o {member.nick}", text)
    elif char == "v":
        member = hub.find(arg)
        if member is None or room.name not in member.rooms:
            door.numeric(conn, "441", arg, room.name, "They aren't on that channel")
            return
        key = (room.name, member.id)
        if (key in door.voices) == (sign == "+"):
            return
        (door.voices.add if sign == "+" else door.voices.discard)(key)
        door.voices -= {(r, i) for r, i in door.voices if i not in hub.members}  # members gone since
        verb = "gave voice to" if sign == "+" else "took voice from"
        _changed(door, conn, room, f"{sign}v {member.nick}", f"{conn.nick} {verb} {member.nick} in {label}")
    elif char == "b":
        if sign == "+":
            ban = make_ban(door, arg, conn.nick)
            if ban is None:
                door.numeric(conn, "472", "b", f"{arg}: chatroom bans a nick, *!*@ADDRESS or $a:ACCOUNT")
                return
            if not rules.add_ban(ban):
                return
            if ban.kind == "account":
                rules.operators.pop(ban.value, None)
            _changed(door, conn, room, f"+b {arg}", f"{conn.nick} banned {ban.kind} {ban.value} from {label}")
            for other in list(room.members.values()):
                if other is not conn and rules.banned(other.account, str(getattr(other, "host", ""))) \
                        and not door.is_admin(other):
                    hub.part(other, room, "banned", notice=f"{other.nick} is banned from {label}", by=conn.nick)
        else:
            removed = rules.remove_ban(arg[3:] if arg.lower().startswith("$a:") else arg)
            if removed is None:
                return
            _changed(door, conn, room, f"-b {arg}", f"{conn.nick} lifted the ban on {removed.label} in {label}")
    elif char == "k":
        if sign == "+":
            if " " in arg or len(arg) > 64:
                door.numeric(conn, "525", room.name, "Key is not well-formed")
                return
            rules.key = arg
            _changed(door, conn, room, f"+k {arg}", f"{conn.nick} set a key on {label}: /join {room.name} KEY")
        elif rules.key:
            rules.key = ""
            _changed(door, conn, room, "-k *", f"{conn.nick} removed the key of {label}")
    elif char == "s":
        if rules.secret != (sign == "+"):
            rules.secret = sign == "+"
            what = "secret: listed to its members only" if rules.secret else "listed again"
            _changed(door, conn, room, f"{sign}s", f"{conn.nick} made {label} {what}")
    elif char == "t":
        if rules.topic_locked != (sign == "+"):
            rules.topic_locked = sign == "+"
            verb = "locked" if sign == "+" else "unlocked"
            _changed(door, conn, room, f"{sign}t", f"{conn.nick} {verb} the topic of {label}")


def _changed(door: IrcDoor, conn: IrcConnection, room: Any, change: str, text: str) -> None:
    door.hub.save_rules(room)
    door.hub.mode(room, conn, change, text)
    log.info("%s: %s (by %s, account %s)", room.name, text, conn.nick, conn.account or "-")


def make_ban(door: IrcDoor, mask: str, by: str) -> Ban | None:
    """The chatroom ban a ``+b`` mask stands for (see the module docstring), or None if it names nothing."""
    if mask.lower().startswith("$a:") and len(mask) > 3:
        return Ban("account", mask[3:].casefold(), mask, by, time.time())
    nick, bang, rest = mask.partition("!")
    if mask.startswith("*!*@") and rest[2:] not in ("", "*"):
        return Ban("address", rest[2:], mask, by, time.time())
    if not bang or rest in ("*@*", "*"):
        member = door.hub.find(nick)
        if member is not None:
            if member.account:
                return Ban("account", member.account.casefold(), mask, by, time.time())
            return Ban("address", str(getattr(member, "host", "")), mask, by, time.time())
        account = door.app.accounts.registered(nick)
        if account is not None:
            return Ban("account", account.casefold(), mask, by, time.time())
    return None
