"""What a line from a client means: captured input, a command, or chat.

The server loop hands every complete line here; nothing in this module
touches a socket, so the plugin test kit drives the same code with a fake
server. *server* needs ``plugins`` (a :class:`~chatroom.plugins.manager.PluginHost`),
``send_line(client, text)`` and ``broadcast(room, text, exclude)``, plus
whatever the :class:`~chatroom.plugins.context.Context` methods the plugins call use.

:meth:`Dispatcher.handle_line` returns what the line costs the sender's flood
token bucket (:mod:`chatroom.net.budget`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chatroom.model.errors import Refused
from chatroom.net.budget import UNKNOWN_COST
from chatroom.net.logs import log_rejected
from chatroom.model.names import nick_key
from chatroom.plugins.commands import NOT_UNDERSTOOD, Command, UsageError, split_command
from chatroom.plugins.context import Context
from chatroom.plugins.manager import FAULT
from chatroom.plugins.ratelimit import RateLimiter
from chatroom.wire import lines as protocol

if TYPE_CHECKING:
    from chatroom.model.history import Entry
    from chatroom.model.room import Room
    from chatroom.net.connection import Client

log = logging.getLogger("chatroom.server")

#: Per connection: at most HINT_BURST did-you-mean lookups, and one log line about unknown commands,
#: per HINT_INTERVAL seconds.
HINT_INTERVAL = 10.0
HINT_BURST = 3
#: Cost of a line captured by a plugin (a post's body): stored, not fanned out.
CAPTURED_COST = 0.0
#: Cost of a chat line.
CHAT_COST = 1.0
#: Bytes kept free in a relayed line for the prefixes a reader may see (``[#room] ``, message tags).
PREFIX_RESERVE = 256


class Dispatcher:
    """Routes lines from clients to captures, commands and the room."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.plugins = server.plugins
        self.rates = RateLimiter()

    def handle_line(self, client: Client, text: str, *, bypass_capture: bool = False) -> float:
        """Act on one line from *client*: captured input, a command, or chat; return its flood cost."""
        text = protocol.sanitize(text)
        if client.capture is not None and not bypass_capture:
            self._captured(client, text)
            return CAPTURED_COST
        if text[:1] == "/" and text[:2] != "//":
            return self._command(client, text)
        if text:
            self.chat(client, text[1:] if text[:2] == "//" else text)
        return CHAT_COST

    def _captured(self, client: Client, text: str) -> None:
        plugin, on_line, _, terminator = client.capture  # type: ignore[misc]
        if plugin == "":  # what is left of a capture whose plugin went away: swallowed up to its terminator
            if text == terminator:
                client.capture = None
                self.server.send_line(client, "ERROR what you typed was discarded: the plugin that took it is gone")
            return
        if not self.plugins.is_active(plugin):
            self._orphan(client, terminator, text)
            return
        try:
            result = self.plugins.run(plugin, on_line, Context(self.server, plugin, client), text)
        except Refused as exc:
            self.server.send_line(client, f"ERROR {exc}")
        else:
            if result is FAULT:
                self.server.send_line(client, f"ERROR internal error in plugin {plugin}")

    def _orphan(self, client: Client, terminator: str | None, text: str) -> None:
        """The capturing plugin was disabled: its input is discarded, never broadcast."""
        if terminator is None or text == terminator:
            client.capture = None
            self.server.send_line(client, "ERROR what you typed was discarded: the plugin that took it is gone")
        else:
            client.capture = ("", None, None, terminator)

    def chat(self, client: Client, text: str, kind: str = "msg", room: Room | None = None) -> Entry | None:
        """Say *text* from *client* in *room* (default: its current room; another of its rooms does not become
        current) (``NICK: text``; ``* NICK text`` for ``kind="me"``), after the chat_message hook; recorded in the
        room's history. Returns the event, or None if nothing was said (refused, or dropped by a hook).

        A line that would not fit the protocol's line limit with its prefixes
        (``NICK: ``, a room tag, message tags: :data:`PREFIX_RESERVE` bytes) is
        refused with ``ERROR`` to its sender, never cut.
        """
        room = room or client.room
        if room is None:
            self.server.send_line(client, "ERROR you are in no room: /join #room first")
            return None
        if not room.may_speak(client) and (client.account or "").casefold() not in getattr(self.server, "admins", ()):
            self.server.send_line(client, f"ERROR {room.name} is moderated: only its operators and voiced members speak")
            return None
        if self.plugins.implemented("chat_message"):
            filtered = self.plugins.chain("chat_message", lambda p: Context(self.server, p, client), "text", text)
            if filtered is None:
                return None
            text = protocol.sanitize(filtered)
        line = f"{client.nick}: {text}"
        size = (len(line) if line.isascii() else len(line.encode("utf-8", "replace"))) + 1
        if size + PREFIX_RESERVE > protocol.MAX_LINE:
            self.server.send_line(client, f"ERROR line too long for the room ({size} bytes with your name, "
                                          f"max {protocol.MAX_LINE - PREFIX_RESERVE})")
            return None
        try:
            return self.server.hub.say(client, room, text, kind)  # type: ignore[no-any-return]
        except Refused as exc:  # the history store cannot keep it: neither kept nor delivered
            self.server.send_line(client, f"ERROR {exc}")
            return None

    def _command(self, client: Client, text: str) -> float:
        history = self.server.history
        mark = history.version
        try:
            return self._run_command(client, text)
        finally:
            if history.version != mark:  # it changed a room's state: its answer waits for the commit
                self.server.answer_when_saved(client)

    def _run_command(self, client: Client, text: str) -> float:
        name, rest = split_command(text)
        top = self.plugins.registry.get(name)
        if top is None:
            self._unknown(client, name)
            return UNKNOWN_COST
        command, rest = top.resolve(rest)
        ctx = Context(self.server, command.plugin, client, rest, command)
        requires = command.required(rest)
        try:
            if requires != "anyone":  # the declared permission, checked before the handler runs
                word = rest.split(None, 1)[0].lower() if requires != command.requires else ""
                ctx.require(requires, f"/{command.name}" + (f" {word}" if word else ""))
            ctx.args = command.parse_args(rest, self.server.find_client)  # type: ignore[assignment]
            if command.rate is not None and not self._within_rate(ctx, command):
                return command.cost
            result = self.plugins.run(command.plugin, command.handler, ctx, ctx.args)
        except UsageError as exc:
            self.server.send_line(client, f"ERROR usage: {str(exc) or command.usage_line()}")
        except Refused as exc:
            self.server.send_line(client, f"ERROR {exc}")
        else:
            if result is FAULT:
                self.server.send_line(client, f"ERROR /{command.name} failed: internal error in plugin {command.plugin}")
        return command.cost

    def _within_rate(self, ctx: Context, command: Command) -> bool:
        """Check and record the command's :class:`~chatroom.plugins.ratelimit.Rate`; answer a call too soon."""
        rate = command.rate
        assert rate is not None
        if ctx.is_admin:
            return True
        account = ctx.client.account if ctx.client is not None else None
        member, room, now = (f"@{account}" if account else nick_key(ctx.nick)), ctx.room.name, self.server.now
        left = self.rates.wait(command.name, rate, member, room, now)
        if left > 0:
            self.server.send_line(ctx.client, "ERROR " + self.rates.refusal(command.name, rate, left))
            return False
        self.rates.record(command.name, rate, member, room, now)
        return True

    def _unknown(self, client: Client, name: str) -> None:
        """``ERROR - Command not understood``; the did-you-mean lookup and the log line are rate-limited."""
        self.server.send_line(client, NOT_UNDERSTOOD)
        now = self.server.now
        if now - client.hint_at >= HINT_INTERVAL:
            client.hint_at, client.hints = now, 0
        if client.hints < HINT_BURST:
            client.hints += 1
            hint = self.plugins.registry.suggest(name[:64])
            if hint:
                self.server.send_line(client, f"* did you mean /{hint}?")
        log_rejected(client, f"an unknown command /{name[:40]}", now)
