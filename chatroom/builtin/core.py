"""Built-in commands: /quit, /upper, /nick, /who, /msg, /help, /caps, /plugins.

These use exactly the hooks and context a third-party plugin gets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from chatroom import Command, CommandError, Context, Example, UsageError, hookimpl

if TYPE_CHECKING:
    from chatroom import PluginInfo

PLUGINS_USAGE = "/plugins [enable|disable NAME]"
#: Capabilities a client may announce with /caps: frames (file transfer), message tags on room lines,
#: resumable transfers (docs/protocol.md, "Resumable transfers").
KNOWN_CAPS = frozenset({"binary", "tags", "resume"})


def quit_(ctx: Context, args: list[str]) -> None:
    """``/quit``: ``OK``, then the connection closes once its output is sent."""
    ctx.reply("OK")
    ctx.disconnect(reason="quit")


def upper(ctx: Context, args: list[str]) -> None:
    """``/upper TEXT``: TEXT in upper case, to the caller only."""
    ctx.reply(ctx.text.upper())


def nick(ctx: Context, args: list[str]) -> None:
    """``/nick NAME``: rename the caller (``OK nick NAME``)."""
    ctx.rename(args[0])
    ctx.reply(f"OK nick {ctx.nick}")


def who(ctx: Context, args: list[str]) -> None:
    """``/who [#ROOM]``: ``* N in ROOM: nick, nick...``."""
    room = ctx.room
    if args:
        found = ctx.find_room(args[0])
        if found is None:
            raise CommandError(f"no such room: {args[0]}")
        room = found
    ctx.require_read(room)  # a keyed room's members only its members see; a banned member never
    nicks = room.nicks()
    ctx.reply(f"* {len(nicks)} in {room.label}: {', '.join(nicks)}")


def msg(ctx: Context, args: list[str]) -> None:
    """``/msg NICK TEXT``: a private line to NICK (``NICK (private): TEXT``); ``OK sent to NICK``, with
    ``(NICK is away: MESSAGE)`` when NICK is away (an IRC member's ``AWAY``)."""
    target_nick, _, text = ctx.text.partition(" ")
    text = text.strip()
    if not text:
        raise UsageError("/msg NAME TEXT")
    target = ctx.find(target_nick)
    if target is None:
        raise CommandError(f"no such nick: {target_nick}")
    if not ctx.private(target, text):
        raise CommandError(f"not sent to {target.nick}: a plugin refused it")
    away = target.away  # an IRC member's AWAY: the sender learns it as an IRC sender does (301)
    ctx.reply(f"OK sent to {target.nick}" + (f" ({target.nick} is away: {away})" if away else ""))


def help_(ctx: Context, args: list[str]) -> None:
    """``/help [COMMAND]``: the usage and summary of each command the caller may use; or of one command, with
    its parameters' help, then each subcommand the caller may use with its parameters' help, then the
    examples of the command and of those subcommands (a subcommand the caller may not use is not shown)."""
    if not args:
        for each in ctx.commands():
            if ctx.may(each):  # only what the caller may use
                ctx.reply(_summary(each))
        return
    command = ctx.lookup_command(args[0])
    if command is None:
        raise CommandError(f"no such command: /{args[0].lstrip('/')}")
    ctx.reply(_summary(command))
    _params(ctx, command, "  ")
    usable = [sub for sub in command.subcommands if ctx.may(sub)]
    for sub in usable:
        ctx.reply(f"  {sub.usage_line()} - {sub.summary}")
        _params(ctx, sub, "    ")
    for given in (*command.examples, *(e for sub in usable for e in sub.examples)):
        example = Example.of(given)  # already one: Command keeps its examples as Example objects
        shown = " / ".join(example.replies) if example.replies else "(no reply)"
        ctx.reply(f"  e.g. {example.line}  ->  {shown}")


def _summary(command: Command) -> str:
    return f"{command.usage_line()}{''.join(f', /{a}' for a in command.aliases)} - {command.summary}"


def _params(ctx: Context, command: Command, indent: str) -> None:
    for param in command.params:
        if param.help:
            ctx.reply(f"{indent}{param.name.upper()}: {param.help}")


def caps(ctx: Context, args: list[str]) -> None:
    """``/caps CAPABILITY...``: announce ``binary``, ``tags`` and/or ``resume``; replies ``OK caps ...``."""
    unknown = [c for c in args if c.lower() not in KNOWN_CAPS]
    if unknown:
        raise CommandError(f"unknown capability: {' '.join(unknown)} (known: {' '.join(sorted(KNOWN_CAPS))})")
    ctx.reply("OK caps " + " ".join(sorted(ctx.set_caps(args))))


def plugins(ctx: Context, args: list[str]) -> None:
    """``/plugins``: list them; ``/plugins enable|disable NAME`` (admins, declared in ``sub_requires``)."""
    if args:
        if len(args) != 2 or args[0].lower() not in ("enable", "disable"):
            raise UsageError(PLUGINS_USAGE)
        enable = args[0].lower() == "enable"
        ctx.set_plugin_enabled(args[1], enable)
        ctx.log.info("%s (account %s) %s plugin %s", ctx.nick, ctx.account, args[0].lower() + "d", args[1])
        ctx.reply(f"OK plugin {args[1]} {'enabled' if enable else 'disabled'}")
        return
    for line in describe_plugins(ctx.plugins()):
        ctx.reply(line)


def describe_plugins(infos: Iterable[PluginInfo]) -> list[str]:
    """One line per plugin (``str``, starting ``"* "``), built-ins first:
    name, where it comes from (distribution and version, or file), the
    commands it adds and the hooks it implements; ``[disabled after N faults]``
    or ``[quarantined: it blocked the loop]`` for a plugin the host switched off.
    """
    lines = []
    for info in sorted(infos, key=lambda i: (i.source != "builtin", i.name)):
        commands = " ".join("/" + c for c in info.commands) or "-"
        hooks = ", ".join(h for h in info.hooks if h != "register_commands") or "-"
        state = (" [quarantined: it blocked the loop]" if info.quarantined else f" [disabled: {info.off}]" if info.off
                 else f" [disabled after {info.faults} faults]" if info.faults else " [disabled]") if info.disabled else ""
        lines.append(f"* {info.name} ({info.source}: {info.origin}){state} commands: {commands}; hooks: {hooks}")
    return lines


@hookimpl
def register_commands() -> list[Command]:
    return [
        Command("quit", quit_, usage="/quit", summary="Leave the room and close the connection", max_args=0),
        Command("upper", upper, usage="/upper TEXT", summary="Echo TEXT back in upper case, to you only",
                min_args=1, raw=True, examples=[("/upper hello, world", "HELLO, WORLD")]),
        Command("nick", nick, usage="/nick NAME", summary="Choose your name in the room", min_args=1, max_args=1,
                examples=[("/nick carol", "OK nick carol"), ("/nick bob", "ERROR the nick bob is taken")]),
        Command("who", who, usage="/who [#ROOM]", summary="List the names in your room (or in #ROOM)", max_args=1,
                aliases=("names",), cost=3.0, examples=[("/who", "* 2 in lobby: alice, bob")]),
        Command("msg", msg, usage="/msg NAME TEXT", summary="Send a private line to one user", min_args=1,
                raw=True, aliases=("tell",), examples=[("/msg bob lunch?", "OK sent to bob")]),
        Command("help", help_, usage="/help [COMMAND]", summary="List the commands, or explain one", max_args=1,
                cost=3.0),
        Command("caps", caps, usage="/caps CAPABILITY...",
                summary="Announce client capabilities (binary: file frames; tags: message tags on room lines)",
                min_args=1),
        Command("plugins", plugins, usage=PLUGINS_USAGE, cost=3.0, max_args=2,
                summary="List the installed plugins (admins: enable or disable one at run time)",
                sub_requires=(("enable", "admin"), ("disable", "admin"))),
    ]
