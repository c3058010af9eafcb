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
use ``ctx.run_in_thread`` and ``ctx.call_later`` (see ``chatroom.context``).
An exception raised by one plugin's implementation is caught and logged with
the plugin's name; the other plugins' implementations still run.

``ctx`` is always a :class:`chatroom.context.Context` bound to the plugin
being called (its ``ctx.state`` and ``ctx.store`` are that plugin's own) and,
for client events, to the client concerned (``ctx.client``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from chatroom.commands import Command
    from chatroom.context import Context

PROJECT = "chatroom"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_commands() -> list[Command]:
    """Return the :class:`chatroom.commands.Command` objects this plugin adds.

    Called once, after all plugins are loaded. A command name or alias that
    another plugin already provides is reported at start-up naming both
    providers, and the later one is not registered; a built-in command is
    never replaced.

    Example::

        @hookimpl
        def register_commands():
            return [Command("roll", roll, usage="/roll [SIDES]",
                            summary="Roll a die", max_args=1)]
    """


@hookspec
def startup(ctx: Context) -> None:
    """The server is listening and about to run its loop.

    ``ctx.client`` is None. Use it to open resources or start timers
    (``ctx.call_later``). Example::

        @hookimpl
        def startup(ctx):
            ctx.state["started"] = time.time()
    """


@hookspec
def shutdown(ctx: Context) -> None:
    """The server is stopping (SIGINT, SIGTERM or ``Server.shutdown()``).

    Called before clients are disconnected; messages broadcast here still
    reach them. ``ctx.client`` is None.
    """


@hookspec
def client_joined(ctx: Context) -> None:
    """A client connected and joined ``ctx.room``; ``ctx.client`` is it.

    Called after the room was told. Example: greet the newcomer::

        @hookimpl
        def client_joined(ctx):
            ctx.reply("Be nice. /help lists the commands.")
    """


@hookspec
def client_left(ctx: Context, reason: str) -> None:
    """``ctx.client`` left the room; ``reason`` is a short text (``"quit"``,
    ``"connection lost"``, ``"too slow"``, ``"server shutting down"``).

    The client can no longer be written to.
    """


@hookspec
def nick_changed(ctx: Context, old: str, new: str) -> None:
    """``ctx.client`` changed its nick from ``old`` to ``new`` (both ``str``)."""


@hookspec
def chat_message(ctx: Context, text: str) -> str | None | bool:
    """A chat line from ``ctx.client`` is about to be broadcast to ``ctx.room``.

    ``text`` is the sanitized line (``str``, without the ``NICK: `` prefix).
    Return ``None`` to leave it as it is, a ``str`` to replace it (the next
    plugin sees the replacement), or ``False`` to drop it (no later plugin is
    called and nobody receives it). Example, a word filter::

        @hookimpl
        def chat_message(ctx, text):
            return text.replace("darn", "d**n")
    """


@hookspec
def file_offered(ctx: Context, name: str, size: int) -> str | None:
    """``ctx.client`` offers the file ``name`` of ``size`` bytes to the room.

    Called before any byte is relayed. Return a reason (``str``) to refuse
    the transfer (the sender gets ``ERROR sendfile NAME: reason``), or None to
    allow it.
    """


@hookspec
def file_delivered(ctx: Context, name: str, size: int, receivers: list[str], ok: bool) -> None:
    """A transfer from ``ctx.client`` ended.

    ``receivers`` are the nicks the file was relayed to in full; ``ok`` is
    False when the sender aborted or disconnected (then ``receivers`` is
    empty). Size is in bytes.
    """


def hook_names() -> list[str]:
    """The names of every hook specified in this module."""
    return [name for name, value in globals().items() if _is_spec(value)]


def _is_spec(value: Any) -> bool:
    return callable(value) and hasattr(value, PROJECT + "_spec")
