"""Channel mode changes from IRC, as changes of the room's rules (:class:`~chatroom.model.moderation.RoomRules`).

``+o/-o NICK`` (an account: persisted as the room's operator; a guest: operator while it stays, as the first
member of an unowned room is), ``+b/-b MASK`` and ``b`` alone (the list: 367, 368; which masks map to which bans: :func:`make_ban`), ``+l N``/``-l``
(the member limit), ``+i``/``-i`` (invite-only: INVITE lets a member in once), ``+k KEY``/``-k``, ``+t``/``-t``
(the topic lock), ``+s`` (secret: listed, and its members shown, to its members only), ``+n``/``-n`` (whether
IRC clients outside the room may send to it; on by default; no other door has a way to), ``+v NICK`` (may speak in a moderated room, while it stays), ``+m`` (moderated). Anything else (``+i``, ``+m``, ``+l``, ``+s``, ``+v``, ``-n``) is a rule
chatroom's rooms do not have: ``472``. Every change is persisted, told to the room as a structured ``mode``
notice (IRC clients see ``MODE``, the others the human line) and logged. Loop thread only.
"""

from __future__ import annotations

import logging
import time

from chatroom.model.errors import Refused
from chatroom.model.member import Member
from chatroom.model.room import Room
from chatroom.model.moderation import Ban
from chatroom.net.irc import IrcConnection, IrcDoor
from chatroom.wire.numbers import parse_uint

__all__ = ["change_modes", "make_ban", "shown"]

log = logging.getLogger("chatroom.server")

#: Modes that take a parameter when set (and, for o, b and k, when unset).
_WITH_ARG = {"+": "obkvl", "-": "obv"}
#: Most mode changes with a parameter in one MODE command (ISUPPORT MODES).
MAX_MODES = 4


def change_modes(door: IrcDoor, conn: IrcConnection, room: Room, changes: str, args: list[str]) -> float:
    """Apply ``MODE #room CHANGES ARGS...``; returns the flood cost."""
    sign = "+"
    args = list(args)
    done = 0
    made: list[tuple[str, str, str]] = []  # (sign and letter, parameter, human text) of each change applied
    for char in changes:
        if char in "+-":
            sign = char
            continue
        arg = args.pop(0) if char in _WITH_ARG[sign] and args else None
        if char == "b" and arg is None:
            for ban in room.rules.bans:
                door.numeric(conn, "367", room.name, shown(ban), ban.by or door.server_name, str(int(ban.at)))
            door.numeric(conn, "368", room.name, "End of channel ban list")
            continue
        if char not in "obktnvslim":
            door.numeric(conn, "472", char, f"is not a mode of chatroom's rooms ({room.name})")
            continue
        if room.name not in conn.rooms and not door.is_admin(conn):
            door.numeric(conn, "442", room.name, "You're not on that channel")
            return 1.0
        if not door.is_op(conn, room):
            door.numeric(conn, "482", room.name, "You're not channel operator")
            return 1.0
        if char == "l" and sign == "+" and arg is None:
            door.numeric(conn, "696", room.name, "l", "*", "The limit is a number of members, 1 or more")
            continue
        if char in "obkv" and arg is None and sign == "+" or char in "obv" and arg is None:
            door.numeric(conn, "461", "MODE", "Not enough parameters")
            continue
        done += 1
        if done > MAX_MODES:
            break
        _one(door, conn, room, sign, char, arg or "", made)
    if made:  # one MODE for the whole command, as IRC servers send it (the rules saved first); a log line per change
        door.hub.mode(room, conn, _mode_string(made), "; ".join(text for _, _, text in made))
        for _, _, text in made:
            log.info("%s: %s (by %s, account %s)", room.name, text, conn.nick, conn.account or "-")
    return 1.0 + done


def _mode_string(made: list[tuple[str, str, str]]) -> str:
    """``[("+i", "", ..), ("+k", "key", ..), ("-t", "", ..)]`` -> ``"+ik-t key"``."""
    letters, params, sign = "", [], ""
    for change, param, _ in made:
        if change[0] != sign:
            sign = change[0]
            letters += sign
        letters += change[1]
        if param:
            params.append(param)
    return " ".join([letters, *params])


def _one(door: IrcDoor, conn: IrcConnection, room: Room, sign: str, char: str, arg: str,
         made: list[tuple[str, str, str]]) -> None:
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
        _changed(made, f"{sign}o {member.nick}", text)
    elif char == "v":
        member = hub.find(arg)
        if member is None or room.name not in member.rooms:
            door.numeric(conn, "441", arg, room.name, "They aren't on that channel")
            return
        if (member.id in room.voices) == (sign == "+"):
            return
        (room.voices.add if sign == "+" else room.voices.discard)(member.id)
        verb = "gave voice to" if sign == "+" else "took voice from"
        _changed(made, f"{sign}v {member.nick}", f"{conn.nick} {verb} {member.nick} in {label}")
    elif char == "b":
        if sign == "+":
            ban = make_ban(door, arg, conn.nick)
            if not rules.add_ban(ban):
                return
            if ban.kind == "account":
                rules.operators.pop(ban.value, None)
            _changed(made, f"+b {shown(ban)}", f"{conn.nick} banned {ban.kind} {ban.value} from {label}")
            for other in list(room.members.values()):
                if other is not conn and rules.banned(other.account, str(getattr(other, "host", "")),
                                                      door.mask_of(other.nick)) and not door.is_admin(other):
                    try:  # as /ban and KICK: a member of another server out of reach is refused aloud
                        hub.kick(other, room, f"{other.nick} is banned from {label}", by=conn.nick, reason="banned")
                    except Refused as exc:
                        door.app.send_line(conn, f"ERROR {exc}")
        else:
            removed = rules.remove_ban(arg) or rules.remove_ban(arg[3:] if arg.lower().startswith("$a:") else
                                                                arg[4:] if arg.startswith("*!*@") else arg)
            if removed is None:
                return
            _changed(made, f"-b {shown(removed)}", f"{conn.nick} lifted the ban on {removed.label} in {label}")
    elif char == "k":
        if sign == "+":
            if not arg.strip() or " " in arg or len(arg) > 64:
                door.numeric(conn, "696", room.name, "k", "*", "A key is 1 to 64 characters without spaces")
                return
            rules.key = arg
            _changed(made, f"+k {arg}", f"{conn.nick} set a key on {label}: /join {room.name} KEY")
        elif rules.key:
            rules.key = ""
            _changed(made, "-k *", f"{conn.nick} removed the key of {label}")
    elif char == "l":
        limit = (parse_uint(arg, max_digits=6, minimum=1) or 0) if sign == "+" else 0  # 1 to 999999; never int('²')
        if sign == "+" and not limit:
            door.numeric(conn, "696", room.name, "l", arg or "*", "The limit is a number of members, 1 or more")
            return
        if rules.limit != limit:
            rules.limit = limit
            what = f"limited {label} to {limit} members" if limit else f"lifted the member limit of {label}"
            _changed(made, f"+l {limit}" if limit else "-l", f"{conn.nick} {what}")
    else:  # a flag: the rule it sets (n sets the opposite: ``external``) and what the room is told
        field, on, off = _FLAGS[char]
        value = (sign == "+") != (char == "n")
        if getattr(rules, field) != value:
            setattr(rules, field, value)
            _changed(made, f"{sign}{char}", f"{conn.nick} " + (on if sign == "+" else off).format(label))


#: Flag modes: the RoomRules field each sets, and the human text of setting and of unsetting it.
_FLAGS = {
    "i": ("invite_only", "made {0} invite-only", "opened {0} to everyone"),
    "m": ("moderated", "made {0} moderated: only operators and voiced members speak", "made {0} unmoderated"),
    "n": ("external", "made {0} hear its members only", "opened {0} to messages from outside (IRC clients)"),
    "s": ("secret", "made {0} secret: listed to its members only", "made {0} listed again"),
    "t": ("topic_locked", "locked the topic of {0}", "unlocked the topic of {0}"),
}


def _changed(made: list[tuple[str, str, str]], change: str, text: str) -> None:
    """Note one applied change (``"+k KEY"``, ``"-t"``) and its human *text*; :func:`change_modes` tells the room."""
    letters, _, param = change.partition(" ")
    made.append((letters, param, text))


def shown(ban: Ban) -> str:
    """*ban* as a mask in ``367`` and in the ``MODE +b/-b`` every member sees (the same, so clients keep a ban list
    they can ``-b`` from): the mask given when it has the ``nick!user@host`` or ``$a:`` form, else what the
    bare nick or ``/ban`` meant: ``$a:ACCOUNT`` or ``*!*@ADDRESS``."""
    if "!" in ban.label or ban.label.startswith("$"):
        return ban.label
    return f"$a:{ban.value}" if ban.kind == "account" else f"*!*@{ban.value}"


def make_ban(door: IrcDoor, mask: str, by: str) -> Ban:
    """The chatroom ban a ``+b`` mask stands for: ``$a:ACCOUNT`` an account ban; ``*!*@ADDRESS`` an address ban
    (guests from that address); ``NICK`` or ``NICK!*@*`` of a member here or a registered nick: that account,
    else that member's address (what ``/ban NICK`` does); any other mask: a mask ban, matched against the
    ``nick!user@host`` of whoever joins, from any door (``nick!nick@address`` for the line protocol)."""
    now = time.time()
    if mask.lower().startswith("$a:") and len(mask) > 3:
        return Ban("account", mask[3:].casefold(), mask, by, now)
    nick, bang, rest = mask.partition("!")
    if mask.startswith("*!*@") and rest[2:] and not any(c in rest[2:] for c in "*?"):
        return Ban("address", rest[2:], mask, by, now)
    if not bang or rest in ("*@*", "*"):
        member = door.hub.find(nick)
        if member is not None and (member.account or getattr(member, "host", "")):
            if member.account:
                return Ban("account", member.account.casefold(), mask, by, now)
            return Ban("address", str(getattr(member, "host", "")), mask, by, now)
        account = door.app.accounts.registered(nick)
        if account is not None:
            return Ban("account", account.casefold(), mask, by, now)
        if not bang:
            mask = nick + "!*@*"
    return Ban("mask", mask.lower(), mask, by, now)
