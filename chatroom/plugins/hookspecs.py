"""Hook specifications: every way a plugin can extend chatroom.

Modelled on pytest's ``hookspec.py`` and datasette's ``hookspecs.py``: each
hook is a plain function spec whose docstring says when it is called, what its
arguments are, and what its return value means. Built-in features (``/quit``,
``/post``, ``/sendfile``...) are plugins written against these same hooks.

A plugin implements a hook by defining a function of the same name decorated
with :data:`hookimpl`; it may accept any subset of the spec's arguments::

    from chatroom import hookimpl, Command

    @hookimpl
    def register_commands():
        return [Command("hello", lambda ctx, args: ctx.reply("hello!"),
                        usage="/hello", summary="Say hello")]

Every hook runs on the server's event-loop thread. A hook must not block:
use ``ctx.run_in_thread`` and ``ctx.call_later`` (see ``chatroom.plugins.context``).
An exception raised by one plugin's implementation is caught and logged with
the plugin's name; the other plugins' implementations still run.

``ctx`` is always a :class:`chatroom.plugins.context.Context` bound to the plugin
being called (its ``ctx.state`` and ``ctx.store`` are that plugin's own) and,
for client events, to the client concerned (``ctx.client``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from chatroom.model.history import Entry
    from chatroom.model.member import Member
    from chatroom.model.room import Room
    from chatroom.plugins.commands import Command
    from chatroom.plugins.config import Setting
    from chatroom.plugins.context import Context

PROJECT = "chatroom"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_commands() -> list[Command]:
    """Return the :class:`chatroom.plugins.commands.Command` objects this plugin adds.

    Called once, after all plugins are loaded, built-ins first. No
    arguments. Return value: a list of ``Command`` (a single ``Command`` is
    accepted too; None adds nothing). A command name or alias that another
    plugin already provides is reported at start-up naming both providers,
    and the later one is not registered; a built-in command is never
    replaced.

    Example::

        @hookimpl
        def register_commands():
            return [Command("roll", roll, usage="/roll [SIDES]",
                            summary="Roll a die", max_args=1)]
    """
    return []  # the spec's body is never called (pluggy calls the plugins' hookimpls)


@hookspec
def startup(ctx: Context) -> None:
    """The server is listening and about to run its loop.

    Called once, before the first client is accepted. ``ctx`` is bound to
    the plugin; ``ctx.client`` is None. Use it to check ``ctx.config``,
    migrate ``ctx.store`` or start timers (``ctx.call_later``). Return
    value: ignored. If it raises, the plugin is switched off (its hooks,
    commands and timers; ``/plugins`` shows ``[disabled: its startup hook
    raised]``) and the error is logged like a load error, so its commands
    never run on state it did not set up (since 1.2; the kit raises
    ``PluginLoadError``).

    Example::

        @hookimpl
        def startup(ctx):
            ctx.state["started"] = ctx.now()
    """


@hookspec
def shutdown(ctx: Context) -> None:
    """The server is stopping (SIGINT, SIGTERM or ``Server.shutdown()``),
    or the host is switching this plugin off for good.

    Called at most once per plugin, so it is the place to stop the
    threads and close the files ``startup`` started: when the server
    stops, before clients are disconnected (lines sent with
    ``ctx.broadcast`` here still reach them), for every plugin, one an
    admin disabled or a quarantine paused included; or earlier, when the
    host switches the plugin off because its ``startup`` raised (release
    only what it took) or after ``--plugin-fault-limit`` faults (since
    1.3; before, such a plugin never heard of it). ``ctx.client`` is
    None; the plugin's ``ctx.store`` is closed by the server when it
    stops. A raise is logged, never counted. Return value: ignored.

    Example::

        @hookimpl
        def shutdown(ctx):
            ctx.broadcast("* the board is saved; see you soon", include_self=True)
    """


@hookspec
def client_joined(ctx: Context) -> None:
    """A client connected and joined ``ctx.room``; ``ctx.client`` is it.

    Called after the greeting was sent and the room was told, while the
    client still has its ``guestN`` nick. An IRC client is different: it
    is called when registration ends (the nick is the one its ``NICK``
    chose, it is in no room yet: ``ctx.client.rooms`` is empty and it
    joins its channels itself, each a ``member_joined``), before the IRC
    welcome (001). Return value: ignored.

    Example: greet the newcomer::

        @hookimpl
        def client_joined(ctx):
            ctx.reply("Be nice. /help lists the commands.")
    """


@hookspec
def client_left(ctx: Context, reason: str) -> None:
    """``ctx.client`` left: it is out of every room and takes no more part.

    Called after its rooms were told. ``reason`` is a short text for
    people and logs, not a closed set: ``"quit"`` (``/quit``; an IRC
    client's ``QUIT :gone fishing`` gives its own text, ``"gone
    fishing"``, so never parse it), ``"connection lost"``, ``"server
    shutting down"`` (or ``"server error"``) at shutdown, and whatever a
    door closes a client for (``"too slow"``, ``"timeout"``, ``"excess
    flood"``, ``"ping timeout"``, ``"internal error"``...). Forget what
    you kept about the client (``ctx.client.id`` is a good key); do not
    write to it. At shutdown it is called for every member
    first, before queued worker jobs finish and before the ``shutdown`` hook
    (see "Shutdown order" in docs/plugins.md). Return value: ignored.

    Example::

        @hookimpl
        def client_left(ctx, reason):
            ctx.state.get("away", {}).pop(ctx.client.id, None)
    """


@hookspec
def nick_changed(ctx: Context, old: str, new: str) -> None:
    """``ctx.client`` changed its nick from ``old`` to ``new`` (both ``str``).

    Called after the rename (``ctx.nick == new``) and after the room was
    told; not called when a client keeps the same nick. Return value:
    ignored.

    Example::

        @hookimpl
        def nick_changed(ctx, old, new):
            ctx.log.info("%s is now %s", old, new)
    """


@hookspec
def chat_message(ctx: Context, text: str, room: Room) -> str | None | bool:
    """A chat line from ``ctx.client`` is about to be broadcast to ``room``.

    Called for every chat line (not for commands or private messages).
    ``text`` is the sanitized line (``str``, without the ``NICK: `` prefix).
    ``room`` (a :class:`~chatroom.model.room.Room`; since 1.2) is the room
    it is said in, and ``ctx.room`` is that room too. It is not always the
    member's current room: an IRC client says ``PRIVMSG #aa`` in any of its
    channels (before 1.2, ``ctx.room`` was then the channel it joined last).
    Return value: ``None`` to leave it as it is, a ``str`` to replace it
    (the next plugin sees the replacement), or ``False`` to drop it (no
    later plugin is called and nobody receives it). Anything else is
    logged as a fault and ignored.

    Example, a word filter::

        @hookimpl
        def chat_message(ctx, text):
            return text.replace("darn", "d**n")
    """


@hookspec
def file_offered(ctx: Context, name: str, size: int) -> str | None:
    """``ctx.client`` offers the file ``name`` of ``size`` bytes to the room (``/sendfile``).

    Called before any byte is relayed. ``name`` is the sanitized base name
    (``str``), ``size`` is in bytes (``int``). Return value: a reason
    (``str``) to refuse the transfer (the sender gets ``ERROR sendfile
    NAME: reason``), or None to allow it.

    Example::

        @hookimpl
        def file_offered(ctx, name, size):
            if name.endswith(".exe"):
                return "no executables here"
    """


@hookspec
def file_delivered(ctx: Context, name: str, size: int, receivers: list[str], ok: bool) -> None:
    """A transfer from ``ctx.client`` ended.

    Called once per transfer offered with ``/sendfile``. ``name`` and
    ``size`` (bytes) are the offer's; ``receivers`` are the nicks the file
    was relayed to in full; ``ok`` is False when the sender aborted or
    disconnected (then ``receivers`` is empty). Return value: ignored.

    Example::

        @hookimpl
        def file_delivered(ctx, name, size, receivers, ok):
            if ok:
                ctx.log.info("%s sent %s (%d bytes) to %d people", ctx.nick, name, size, len(receivers))
    """


@hookspec
def config_schema() -> dict[str, Setting]:
    """Declare this plugin's settings: ``{key: chatroom.Setting(...)}`` for its ``[plugins.NAME]`` table.

    Called once, when loading ends (no arguments). The host checks the
    server's ``--config`` table against it (types, bounds, choices,
    required keys), fills in defaults, reports unknown keys with a
    did-you-mean, and deep-freezes the result into ``ctx.config``. A value
    that does not fit stops the server at start-up (``chatroom-server
    --check-config FILE`` shows every problem). Without this hook the table
    is passed through unchecked (but frozen). Return value: a dict of
    :class:`chatroom.plugins.config.Setting`.

    Example::

        @hookimpl
        def config_schema():
            return {"timeout": Setting(int, default=300, min=10, max=86400, help="seconds a poll stays open")}
    """
    return {}  # the spec's body is never called (pluggy calls the plugins' hookimpls)


@hookspec
def member_ready(ctx: Context) -> None:
    """``ctx.client`` is ready: it named itself (its first ``/nick`` or ``/login``), or it stayed
    ``grace`` seconds (``chatroom-server --ready-grace``, default 5) without doing so (a person on ``nc``).

    Called at most once per connection, after ``client_joined`` and never
    after ``client_left``. An IRC client named itself to register, so it
    is ready right after the IRC welcome (in no room yet; before 1.2 it
    waited out the grace). Use it instead of ``client_joined`` to greet
    someone by the name they chose. Return value: ignored.

    Example::

        @hookimpl
        def member_ready(ctx):
            ctx.reply(f"* welcome, {ctx.nick}")
    """


@hookspec
def private_message(ctx: Context, target: Member, text: str) -> str | None | bool:
    """``ctx.client`` sends the private line ``text`` to the member ``target`` (``/msg``).

    Called on the loop thread before delivery, for every ``/msg`` (and
    ``ctx.private``). Return value, as for :func:`chat_message`: ``None``
    to leave it, a ``str`` to replace it, ``False`` to drop it (the sender
    is told it was not delivered).

    Example::

        @hookimpl
        def private_message(ctx, target, text):
            ctx.log.info("%s -> %s: %d characters", ctx.nick, target.nick, len(text))
    """


@hookspec
def message_delivered(ctx: Context, room: Room, entry: Entry, recipients: int) -> None:
    """A room line was handed to its readers: observe only (loggers, bridges, counters).

    Called at the end of the loop pass in which ``entry`` (a chat line,
    ``/me``, topic change or notice of ``room``, or a plugin's line, kind
    ``"raw"``, from ``ctx.say(room, text)`` or ``ctx.broadcast``;
    ``entry.id`` is its history id, 0 for what is not recorded) was queued
    to its readers. ``recipients`` is an ``int``, not a list: how many
    members it was queued to, the room's members at that moment less its
    author (a chat line's speaker, or a plugin line's excluded caller). It
    may be 0 (the author alone in the room, an empty room): the hook fires
    all the same, so a transcript records lines nobody read. ``ctx.client``
    is the author while connected, else None (also for a plugin's line). Lines
    are reported in the order they were said. Output a plugin sends from
    here reaches clients after the line itself. Return value: ignored. It
    runs once per line, so keep it cheap, and hand slow work to
    ``ctx.run_in_thread(..., serial=True)``.

    Example, a transcript::

        @hookimpl
        def message_delivered(ctx, room, entry, recipients):
            line = json.dumps({"room": room.name, "id": entry.id, "nick": entry.nick, "text": entry.text})
            ctx.run_in_thread(lambda: append(line), lambda result, error: None, serial=True)
    """


@hookspec
def member_joined(ctx: Context, room: Room) -> None:
    """``ctx.client`` joined ``room`` (a :class:`~chatroom.model.room.Room`): it is one of its members now.

    Called for every join of every room, once the member is in
    ``room.members`` and the room was told: the default room when a client
    connects (before ``client_joined``, while it is still ``guestN``;
    an IRC client joins no room on connecting, only each ``JOIN``),
    ``/join``, ``ctx.join``, the kit's ``room.join``. Not called when the
    member was in the room already (``/join`` of a room you are in only
    makes it current). It runs during the command that joined, before its
    reply. Return value: ignored.

    Example, a greeter::

        @hookimpl
        def member_joined(ctx, room):
            if room.name == "#help":
                ctx.say(room, f"* {ctx.nick}: welcome to #help, ask away")
    """


@hookspec
def member_left(ctx: Context, room: Room, reason: str) -> None:
    """``ctx.client`` left ``room``: it is no longer in ``room.members``.

    Called once per room left, after the room was told: ``/part``
    (``reason`` is its text, often ``""``), a kick (``reason`` is the kick's
    notice) or the connection closing (``reason`` is the disconnect's:
    ``"quit"``, ``"connection lost"``..., once for each of its rooms, before
    ``client_left``; then ``ctx.client`` has left the server and only the
    room-wide parts of ``ctx`` work, such as ``ctx.say(room, text)``: see
    "How long a ctx stays usable" in docs/plugins.md). Not called for the
    connections the server closes at shutdown (``client_left`` ran for
    them). Return value: ignored.

    Example::

        @hookimpl
        def member_left(ctx, room, reason):
            if not room.members:
                ctx.log.info("%s is empty now", room.name)
    """


def hook_names() -> list[str]:
    """The names of every hook specified in this module."""
    return [name for name, value in globals().items() if _is_spec(value)]


def _is_spec(value: Any) -> bool:
    return callable(value) and hasattr(value, PROJECT + "_spec")
