"""The context object: the only way a plugin acts on the room.

Plugins never touch sockets. Each hook call and command call gets a
:class:`Context` bound to the server, to the plugin being called (so
``ctx.state`` and ``ctx.store`` are that plugin's own) and, for client
events and commands, to the client concerned. Everything here runs on the
event-loop thread and returns at once; output is queued and written by the
loop.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from chatroom.net.connection import Client
    from chatroom.net.room_legacy import Room
    from chatroom.net.scheduler import Timer
    from chatroom.net.loop import Server

LineHandler = Callable[["Context", str], None]


class Context:
    """What a plugin may do, bound to ``(server, plugin, client)``.

    Attributes: ``plugin`` (``str``, the plugin's name), ``client`` (the
    :class:`~chatroom.net.loop.Client` concerned, or None for server events),
    ``args`` and ``text`` (for a command: the split arguments and the raw
    argument text).
    """

    __slots__ = ("server", "plugin", "client", "args", "text")

    def __init__(self, server: Server, plugin: str, client: Client | None = None, text: str = "") -> None:
        self.server = server
        self.plugin = plugin
        self.client = client
        self.args: list[str] = []
        self.text = text

    # -- who and where ---------------------------------------------------
    @property
    def nick(self) -> str:
        """The calling client's nick (``""`` for server events)."""
        return self.client.nick if self.client else ""

    @property
    def room(self) -> Room:
        """The calling client's room (the lobby for server events)."""
        return self.client.room if self.client else self.server.lobby

    def find(self, nick: str) -> Client | None:
        """The connected client named *nick* (case-insensitive), or None."""
        return self.server.find_client(nick)

    def members(self) -> list[Client]:
        """The clients in the caller's room, in join order."""
        return list(self.room.members.values())

    # -- per-plugin resources ----------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        """A dict private to this plugin, kept for the server's lifetime."""
        return self.server.plugin_state(self.plugin)

    @property
    def store(self) -> sqlite3.Connection:
        """This plugin's SQLite connection (``DATA_DIR/plugins/<plugin>.sqlite3``), opened on first use.

        WAL mode, ``synchronous=NORMAL``, ``isolation_level=None`` (use
        explicit ``BEGIN``/``COMMIT`` or ``with store:``). See
        :mod:`chatroom.model.store` for schema migrations.
        """
        return self.server.plugin_store(self.plugin)

    @property
    def config(self) -> Mapping[str, Any]:
        """This plugin's settings, read-only (empty when it has none).

        They come from the ``[plugins.NAME]`` table of the server's
        ``--config`` TOML file (``NAME`` is the plugin's name, as
        ``/plugins`` shows it), or from ``chatroom_room(config={NAME: {...}})``
        in the test kit. Values are TOML types (``str``, ``int``, ``float``,
        ``bool``, lists, tables). Example: ``ctx.config.get("words", [])``.
        """
        return self.server.plugins.config_for(self.plugin)

    @property
    def log(self) -> logging.Logger:
        """A logger for this plugin; records are tagged ``[GENERAL]`` unless
        given ``extra={"category": "ERROR"}`` (or use ``log.error``)."""
        return logging.getLogger("chatroom.plugin." + self.plugin)

    # -- output -------------------------------------------------------------
    def reply(self, text: str) -> None:
        """Send one line (``str``, no newline) to the caller."""
        if self.client is not None:
            self.server.send_line(self.client, text)

    def send(self, to: Client | str, text: str) -> bool:
        """Send one line to the client *to* (or the nick *to*); False if there is no such client."""
        client = self.server.find_client(to) if isinstance(to, str) else to
        if client is None or client.closed:
            return False
        self.server.send_line(client, text)
        return True

    def broadcast(self, text: str, *, include_self: bool = False) -> None:
        """Send one line to everyone in the caller's room (the caller too if *include_self*)."""
        exclude = None if include_self else self.client
        self.server.broadcast(self.room, text, exclude=exclude)

    def stream(self, lines: Iterable[str]) -> None:
        """Send many lines to the caller, pulled lazily as its output queue drains.

        *lines* is any iterable of ``str``; it is consumed on the loop thread,
        at most 2,000 lines per loop pass and only while the caller's queue is
        below its 256 KiB low-water mark, so a huge listing never sits in
        memory and never stalls other clients. Lines later sent to the caller
        with :meth:`reply` or :meth:`send` queue behind the stream, keeping
        replies in order; room broadcasts may arrive in between.
        """
        if self.client is not None:
            self.server.stream(self.client, iter(lines), self.plugin)

    def disconnect(self, client: Client | None = None, reason: str = "disconnected") -> None:
        """Close *client* (default: the caller) after its queued output is sent."""
        target = client or self.client
        if target is not None:
            self.server.close_client(target, reason, flush=True)

    # -- input ---------------------------------------------------------------
    def capture(self, on_line: LineHandler, on_end: Callable[[Context, str], None] | None = None,
                *, terminator: str | None = None) -> None:
        """Take over the caller's next lines until :meth:`release`.

        Every line the caller sends (sanitized ``str``) goes to
        ``on_line(ctx, line)`` instead of chat or commands. ``on_end(ctx,
        reason)`` is called if the client leaves while captured.
        *terminator* is the line that ends the input (``"#"`` for a post):
        if the plugin is disabled while it holds the capture, the server
        discards the caller's lines up to and including the terminator, so
        the rest of the input is never broadcast as chat (without a
        terminator, the capture ends at once). Raises RuntimeError if the
        caller's input is already captured.
        """
        if self.client is None:
            raise RuntimeError("capture needs a client")
        if self.client.capture is not None:
            raise RuntimeError("input already captured")
        self.client.capture = (self.plugin, on_line, on_end, terminator)

    def release(self) -> None:
        """Give the caller's input back to chat and commands."""
        if self.client is not None:
            self.client.capture = None

    def dispatch(self, line: str) -> None:
        """Handle *line* as if the caller typed it (chat or command), bypassing any capture."""
        if self.client is not None:
            self.server.dispatcher.handle_line(self.client, line, bypass_capture=True)

    # -- time and threads ------------------------------------------------------
    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Call ``fn(*args)`` on the loop thread after *delay* seconds; returns a handle with ``cancel()``."""
        return self.server.call_later(delay, fn, *args, plugin=self.plugin)

    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None]) -> None:
        """Run blocking ``fn()`` on a worker thread; then ``on_done(result, error)`` on the loop thread."""
        self.server.run_in_thread(fn, on_done, plugin=self.plugin)

    # -- files --------------------------------------------------------------------
    def start_transfer(self, name: str, size: int) -> int:
        """Open a relay of the file *name* (*size* bytes) from the caller to the room's other
        frame-capable members; returns the transfer id.

        Raises :class:`~chatroom.plugins.commands.CommandError` with the reason if the
        caller never sent ``/caps binary``, *size* is negative or over
        ``--max-file-size``, the caller has too many transfers open, nobody
        else can receive files, or a ``file_offered`` hook refuses (see
        :meth:`chatroom.net.relay.Relay.start`).
        """
        assert self.client is not None
        return self.server.relay.start(self.client, name, size)
