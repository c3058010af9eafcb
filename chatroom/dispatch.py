"""What a line from a client means: captured input, a command, or chat.

The server loop hands every complete line here; nothing in this module
touches a socket, so the plugin test kit drives the same code with a fake
server. *server* needs ``plugins`` (a :class:`~chatroom.plugins.PluginHost`),
``send_line(client, text)`` and ``broadcast(room, text, exclude)``, plus
whatever the :class:`~chatroom.context.Context` methods the plugins call use.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chatroom import protocol
from chatroom.commands import NOT_UNDERSTOOD, CommandError, UsageError, split_command
from chatroom.context import Context
from chatroom.logs import ERR
from chatroom.plugins import FAULT

if TYPE_CHECKING:
    from chatroom.connection import Client

log = logging.getLogger("chatroom.server")


class Dispatcher:
    """Routes lines from clients to captures, commands and the room."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.plugins = server.plugins

    def handle_line(self, client: Client, text: str, *, bypass_capture: bool = False) -> None:
        """Act on one line from *client*: captured input, a command, or chat."""
        text = protocol.sanitize(text)
        if client.capture is not None and not bypass_capture:
            plugin, on_line, _ = client.capture
            if self.plugins.is_active(plugin):
                try:
                    result = self.plugins.run(plugin, on_line, Context(self.server, plugin, client), text)
                except CommandError as exc:
                    self.server.send_line(client, f"ERROR {exc}")
                else:
                    if result is FAULT:
                        self.server.send_line(client, f"ERROR internal error in plugin {plugin}")
                return
            client.capture = None  # its plugin was disabled after faults: the input is the client's again
        if text[:1] == "/" and text[:2] != "//":
            self._command(client, text)
        elif text:
            self.chat(client, text[1:] if text[:2] == "//" else text)

    def chat(self, client: Client, text: str) -> None:
        """Broadcast *text* from *client* to its room as ``NICK: text``, after the chat_message hook."""
        if self.plugins.implemented("chat_message"):
            filtered = self.plugins.chain("chat_message", lambda p: Context(self.server, p, client), "text", text)
            if filtered is None:
                return
            text = protocol.sanitize(filtered)
        self.server.broadcast(client.room, f"{client.nick}: {text}", exclude=client)

    def _command(self, client: Client, text: str) -> None:
        name, rest = split_command(text)
        command = self.plugins.registry.get(name)
        if command is None:
            self.server.send_line(client, NOT_UNDERSTOOD)
            hint = self.plugins.registry.suggest(name)
            if hint:
                self.server.send_line(client, f"* did you mean /{hint}?")
            log.info("%s sent an unknown command /%s", client.nick, name[:40], extra=ERR)
            return
        ctx = Context(self.server, command.plugin, client, rest)
        try:
            ctx.args = command.parse_args(rest)
            result = self.plugins.run(command.plugin, command.handler, ctx, ctx.args)
        except UsageError as exc:
            self.server.send_line(client, f"ERROR usage: {exc}")
        except CommandError as exc:
            self.server.send_line(client, f"ERROR {exc}")
        else:
            if result is FAULT:
                self.server.send_line(client, f"ERROR /{command.name} failed: internal error in plugin {command.plugin}")
