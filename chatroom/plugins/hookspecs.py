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
    from chatroom.plugins.commands import Command
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


@hookspec
def startup(ctx: Context) -> None:
    """The server is listening and about to run its loop.

    Called once, before the first client is accepted. ``ctx`` is bound to
    the plugin; ``ctx.client`` is None. Use it to check ``ctx.config``,
    migrate ``ctx.store`` or start timers (``ctx.call_later``). Return
    value: ignored.

    Example::

        @hookimpl
        def startup(ctx):
            ctx.state["started"] = time.time()
    """


@hookspec
def shutdown(ctx: Context) -> None:
    """The server is stopping (SIGINT, SIGTERM or ``Server.shutdown()``).

    Called once, before clients are disconnected: lines sent with
    ``ctx.broadcast`` here still reach them. ``ctx.client`` is None; the
    plugin's ``ctx.store`` is closed by the server afterwards. Return
    value: ignored.

    Example::

        @hookimpl
        def shutdown(ctx):
            ctx.broadcast("* the board is saved; see you soon", include_self=True)
    """


@hookspec
def client_joined(ctx: Context) -> None:
    """A client connected and joined ``ctx.room``; ``ctx.client`` is it.

    Called after the greeting was sent and the room was told, while the
    client still has its ``guestN`` nick. Return value: ignored.

    Example: greet the newcomer::

        @hookimpl
        def client_joined(ctx):
            ctx.reply("Be nice. /help lists the commands.")
    """


@hookspec
def client_left(ctx: Context, reason: str) -> None:
    """``ctx.client`` left: it is out of every room and takes no more part.

    Called after its rooms were told. ``reason`` is a short text:
    ``"quit"``, ``"connection lost"``, ``"too slow"``, ``"server shutting
    down"``. Forget what you kept about the client (``ctx.client.id`` is a
    good key); do not write to it. At shutdown it is called for every member
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
def chat_message(ctx: Context, text: str) -> str | None | bool:
    """A chat line from ``ctx.client`` is about to be broadcast to ``ctx.room``.

    Called for every chat line (not for commands or private messages).
    ``text`` is the sanitized line (``str``, without the ``NICK: `` prefix).
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


def hook_names() -> list[str]:
    """The names of every hook specified in this module."""
    return [name for name, value in globals().items() if _is_spec(value)]


def _is_spec(value: Any) -> bool:
    return callable(value) and hasattr(value, PROJECT + "_spec")
