"""Room moderation: ``/op``, ``/deop``, ``/kick``, ``/ban``, ``/unban``, ``/bans``, ``/key``.

::

    /op NICK               make a logged-in member an operator of your current room
    /deop NICK|ACCOUNT     take it back (never from the owner)
    /kick NICK [REASON]    put a member out of the room (they may come back)
    /ban NICK|ACCOUNT      keep them out: by account if logged in (any nick, any connection),
                           else by address (a guest); members it matches are kicked
    /unban NAME            lift the ban on NAME (as /bans shows it: a nick, account or address)
    /bans                  list the room's bans
    /key PASSWORD | off    joining needs /join #room PASSWORD (operators and admins need none)

Who may: every command here declares ``requires="operator"``, so the core checks, before the
handler runs, that the caller owns the current room, is one of its operators, or is an admin
(``admins = [...]`` in the server's config file); anyone else gets ``ERROR permission denied:
/kick needs a room operator`` and ``/help`` does not list them. The logged-in member who creates
a room owns it; the default room has no owner (admins moderate it). ``/topic lock`` is in the
rooms built-in. Everything is persisted with the room (``ctx.moderate``), announced in the room
and logged under ``[GENERAL]`` with who did it. Room keys are stored as given (like IRC channel
keys): they are a door code, not an account password.

Written against the public plugin API only, like any third-party plugin.
"""

from __future__ import annotations

import time

from chatroom import Ban, Command, CommandError, Context, Member, Refused, Room, hookimpl

#: Longest kick reason kept, and longest key (characters).
MAX_REASON = 200
MAX_KEY = 64


def _room(ctx: Context) -> Room:
    room = ctx.client.room if ctx.client is not None else None
    if not isinstance(room, Room):  # None: in no room (Member.room is untyped: the room imports the member)
        raise CommandError("you are in no room: /join #room first")
    return room


def _member(ctx: Context, nick: str) -> Member:
    member = ctx.find(nick)
    if member is None:
        raise CommandError(f"no such nick: {nick}")
    return member


def _protected(ctx: Context, room: Room, member: Member, verb: str) -> None:
    """Refuse to act on oneself, an admin, or the room's owner (only an admin may act on the owner)."""
    if member is ctx.client:
        raise CommandError(f"you cannot {verb} yourself")
    if ctx.admin(member):
        raise CommandError(f"{member.nick} is an admin")
    account = member.account
    if account and account.casefold() == room.rules.owner.casefold() and not ctx.is_admin:
        raise CommandError(f"{member.nick} owns {room.label}")


def _mask(kind: str, value: str) -> str:
    """A ban as an IRC ban mask: ``$a:ACCOUNT`` or ``*!*@ADDRESS``."""
    return f"$a:{value}" if kind == "account" else f"*!*@{value}"


def _log(ctx: Context, room: Room, text: str) -> None:
    ctx.log.info("%s: %s (by %s, account %s)", room.name, text, ctx.nick, ctx.account or "-")


def op(ctx: Context, args: list[str]) -> None:
    """``/op NICK``: make a logged-in member an operator of your current room."""
    room = _room(ctx)
    member = _member(ctx, args[0])
    if member.account is None:
        raise CommandError(f"{member.nick} is not logged in: only an account can be an operator")
    if room.rules.is_operator(member.account):
        raise CommandError(f"{member.nick} is already an operator of {room.label}")
    room.rules.operators[member.account.casefold()] = member.account
    ctx.moderate(room, f"{ctx.nick} made {member.nick} an operator of {room.label}", mode=f"+o {member.nick}")
    ctx.reply(f"OK op {member.nick}")


def deop(ctx: Context, args: list[str]) -> None:
    """``/deop NICK``: take operator rights in your current room away from NICK."""
    room = _room(ctx)
    member = ctx.find(args[0])
    account = member.account if member is not None and member.account else args[0]
    if account.casefold() == room.rules.owner.casefold():
        raise CommandError(f"{account} owns {room.label}")
    if room.rules.operators.pop(account.casefold(), None) is None:
        raise CommandError(f"{args[0]} is not an operator of {room.label}")
    ctx.moderate(room, f"{ctx.nick} took operator from {args[0]} in {room.label}", mode=f"-o {args[0]}")
    ctx.reply(f"OK deop {args[0]}")


def kick(ctx: Context, args: list[str]) -> None:
    """``/kick NICK [REASON]``: take NICK out of your current room (announced)."""
    room = _room(ctx)
    name, _, reason = ctx.text.partition(" ")
    member = _member(ctx, name)
    if room.name not in member.rooms:
        raise CommandError(f"{member.nick} is not in {room.label}")
    _protected(ctx, room, member, "kick")
    reason = reason.strip()[:MAX_REASON]
    text = f"{ctx.nick} kicked {member.nick} from {room.label}" + (f" ({reason})" if reason else "")
    ctx.kick(member, room, text)
    _log(ctx, room, text)
    ctx.reply(f"OK kick {member.nick}")


def ban(ctx: Context, args: list[str]) -> None:
    """``/ban NICK|ACCOUNT``: ban an account (or a guest's address) from your current room."""
    room = _room(ctx)
    name = args[0]
    member = ctx.find(name)
    if member is not None:
        _protected(ctx, room, member, "ban")
        if member.account:
            kind, value = "account", member.account.casefold()
        else:
            kind, value = "address", ctx.address(member)
            if not value:
                raise CommandError(f"{member.nick} has no known address to ban")
    else:
        account = ctx.accounts.registered(name)
        if account is None:
            raise CommandError(f"no such nick or account: {name}")
        if account.casefold() == room.rules.owner.casefold():
            raise CommandError(f"{account} owns {room.label}")
        kind, value = "account", account.casefold()
    if not room.rules.add_ban(Ban(kind, value, name, ctx.nick, time.time())):
        raise CommandError(f"{name} is already banned from {room.label}")
    if kind == "account":
        room.rules.operators.pop(value, None)
    what = f"{kind} {value}" if kind == "account" else f"{name} (by address)"
    ctx.moderate(room, f"{ctx.nick} banned {what} from {room.label}", mode=f"+b {_mask(kind, value)}")
    for other in list(room.members.values()):
        if room.rules.banned(other.account, ctx.address(other)) and other is not ctx.client:
            try:
                ctx.kick(other, room, f"{other.nick} is banned from {room.label}")
            except Refused as exc:  # another server's member, unreachable now: the ban holds; said (the answer is OK)
                ctx.reply(f"* {exc}")
    ctx.reply(f"OK ban {name}")


def unban(ctx: Context, args: list[str]) -> None:
    """``/unban NICK|ACCOUNT|ADDRESS``: lift a ban of your current room."""
    room = _room(ctx)
    removed = room.rules.remove_ban(args[0])
    if removed is None:
        raise CommandError(f"{args[0]} is not banned from {room.label} (see /bans)")
    ctx.moderate(room, f"{ctx.nick} lifted the ban on {removed.label} in {room.label}",
                 mode=f"-b {_mask(removed.kind, removed.value)}")
    ctx.reply(f"OK unban {removed.label}")


def bans(ctx: Context, args: list[str]) -> None:
    """``/bans``: list the bans of your current room."""
    room = _room(ctx)
    for entry in room.rules.bans:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.at))
        ctx.reply(f"* {room.label}: {entry.label} ({entry.kind} {entry.value}), by {entry.by}, {when}")
    count = len(room.rules.bans)
    ctx.reply(f"OK {count} ban{'s' * (count != 1)}")


def key(ctx: Context, args: list[str]) -> None:
    """``/key PASSWORD`` or ``/key off``: require (or stop requiring) a password to join your current room."""
    room = _room(ctx)
    if args[0].lower() == "off":
        if not room.rules.key:
            raise CommandError(f"{room.label} has no key")
        room.rules.key = ""
        ctx.moderate(room, f"{ctx.nick} removed the key of {room.label}", mode="-k *")
        ctx.reply("OK key off")
        return
    if len(args[0]) > MAX_KEY:
        raise CommandError(f"a key is at most {MAX_KEY} characters")
    room.rules.key = args[0]
    ctx.moderate(room, f"{ctx.nick} set a key on {room.label}: /join {room.name} KEY", mode=f"+k {args[0]}")
    ctx.reply("OK key set")


@hookimpl
def register_commands() -> list[Command]:
    op_ = "operator"
    return [
        Command("op", op, usage="/op NICK", summary="Make a logged-in member an operator of your room",
                min_args=1, max_args=1, requires=op_),
        Command("deop", deop, usage="/deop NICK|ACCOUNT", summary="Take operator back (not from the owner)",
                min_args=1, max_args=1, requires=op_),
        Command("kick", kick, usage="/kick NICK [REASON]", summary="Put a member out of your room", min_args=1,
                raw=True, requires=op_),
        Command("ban", ban, usage="/ban NICK|ACCOUNT", summary="Keep an account (a guest: an address) out of your room",
                min_args=1, max_args=1, requires=op_),
        Command("unban", unban, usage="/unban NAME", summary="Lift a ban (as /bans shows it)", min_args=1,
                max_args=1, requires=op_),
        Command("bans", bans, usage="/bans", summary="List your room's bans", max_args=0, requires=op_),
        Command("key", key, usage="/key PASSWORD|off", summary="Make joining your room need a key (off: no key)",
                min_args=1, max_args=1, requires=op_),
    ]
