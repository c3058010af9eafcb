"""What a line from a client means: captured input, a command, or chat.

The server loop hands every complete line here; nothing in this module
touches a socket. It reaches the server only through the plugin port
(:class:`chatroom.plugins.port.Host`: ``send_line``, ``find_client``, ``say``,
``now``), the same host every :class:`~chatroom.plugins.context.Context` it
makes is bound to.

:meth:`Dispatcher.handle_line` returns what the line costs the sender's flood
token bucket (:mod:`chatroom.net.budget`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chatroom.model.errors import Refused
from chatroom.net.budget import UNKNOWN_COST
from chatroom.net.logs import log_rejected
from chatroom.plugins.commands import NOT_UNDERSTOOD, Command, UsageError, split_command
from chatroom.plugins.context import Capture, Context
from chatroom.plugins.manager import FAULT
from chatroom.plugins.ratelimit import Rate, RateLimiter
from chatroom.wire import lines as protocol

if TYPE_CHECKING:
    from chatroom.model.history import Entry
    from chatroom.model.member import Member
    from chatroom.model.room import Room
    from chatroom.net.connection import Client
    from chatroom.plugins.manager import PluginHost
    from chatroom.plugins.port import Host

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

    def __init__(self, host: Host, plugins: PluginHost) -> None:
        self.host = host
        self.plugins = plugins
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
        capture: Capture = client.capture
        plugin, on_line, terminator = capture.plugin, capture.on_line, capture.terminator
        if plugin == "" or on_line is None:  # what is left of a capture whose plugin went away: swallowed up to its terminator
            if text == terminator:
                client.capture = None
                self.host.send_line(client, "ERROR what you typed was discarded: the plugin that took it is gone")
            return
        if not self.plugins.is_active(plugin):
            self._orphan(client, terminator, text)
            return
        try:
            result = self.plugins.run(plugin, on_line, Context(self.host, plugin, client), text)
        except Refused as exc:
            self.host.send_line(client, f"ERROR {exc}")
        else:
            if result is FAULT:
                self.host.send_line(client, f"ERROR internal error in plugin {plugin}")

    def _orphan(self, client: Client, terminator: str | None, text: str) -> None:
        """The capturing plugin was disabled: its input is discarded, never broadcast."""
        if terminator is None or text == terminator:
            client.capture = None
            self.host.send_line(client, "ERROR what you typed was discarded: the plugin that took it is gone")
        else:
            client.capture = Capture("", None, None, terminator)

    def chat(self, client: Client, text: str, kind: str = "msg", room: Room | None = None) -> Entry | None:
        """Say *text* from *client* in *room* (default: its current room; another of its rooms does not become
        current) (``NICK: text``; ``* NICK text`` for ``kind="me"``) if the room's speak rule lets it
        (:meth:`Host.speak_refusal <chatroom.plugins.port.RoomPort.speak_refusal>`: else ``ERROR`` with the
        reason), then as :meth:`speak`. Returns the event, or None if nothing was said (refused, or dropped
        by a hook). What typing a line, ``/me`` and a plugin's ``ctx.chat`` do."""
        if room is None:  # (never "room or ...": an empty room is falsy, and a Room's len() is a call)
            room = client.room
        if room is None:
            self.host.send_line(client, "ERROR you are in no room: /join #room first")
            return None
        refused = self.host.speak_refusal(client, room)
        if refused is not None:
            self.host.send_line(client, f"ERROR {refused}")
            return None
        return self.speak(client, room, text, kind)

    def speak(self, client: Client, room: Room, text: str, kind: str = "msg") -> Entry | None:
        """*client*'s *text* in *room*, which the speak rule let it say (:meth:`chat` asks it; a door that
        answers a refusal in its own words, IRC's ``404``, asks it itself): after the ``chat_message`` hooks,
        recorded in the room's history and fanned out. Returns the event, or None if a hook dropped it.

        A line that would not fit the protocol's line limit with its prefixes
        (``NICK: ``, a room tag, message tags: :data:`PREFIX_RESERVE` bytes) is
        refused with ``ERROR`` to its sender, never cut.
        """
        if self.plugins.implemented("chat_message"):
            filtered = self.plugins.chain("chat_message", lambda p: Context(self.host, p, client, room=room), "text",
                                          text, room=room)
            if filtered is None:
                return None
            text = protocol.sanitize(filtered)
        nick = client.nick  # the relayed line is "NICK: text" and its newline: its size, without building it
        size = ((len(nick) if nick.isascii() else len(nick.encode("utf-8", "replace"))) + 3
                + (len(text) if text.isascii() else len(text.encode("utf-8", "replace"))))
        if size + PREFIX_RESERVE > protocol.MAX_LINE:
            self.host.send_line(client, f"ERROR line too long for the room ({size} bytes with your name, "
                                          f"max {protocol.MAX_LINE - PREFIX_RESERVE})")
            return None
        try:
            return self.host.say(client, room, text, kind)
        except Refused as exc:  # the history store cannot keep it: neither kept nor delivered
            self.host.send_line(client, f"ERROR {exc}")
            return None

    def private(self, sender: Member | None, target: Member, text: str, *, notice: bool = False) -> bool:
        """*sender*'s (None: the server's) private line *text* to *target* after the ``private_message`` hooks
        (which may rewrite or drop it), ``NICK (private): text`` (*notice*: an IRC ``NOTICE``): what ``/msg``,
        ``ctx.private`` and IRC's ``PRIVMSG nick`` do. False if a hook dropped it."""
        if self.plugins.implemented("private_message"):
            filtered = self.plugins.chain("private_message", lambda p: Context(self.host, p, sender), "text", text,
                                          target=target)
            if filtered is None:
                return False
            text = filtered
        nick, account = (sender.nick, sender.account) if sender is not None else ("", None)
        self.host.send_private(nick, account, target, text, notice=notice)
        return True

    def _command(self, client: Client, text: str) -> float:
        name, rest = split_command(text)
        top = self.plugins.registry.get(name)
        if top is None:
            self._unknown(client, name)
            return UNKNOWN_COST
        command, rest = top.resolve(rest)
        ctx = Context(self.host, command.plugin, client, rest, command)
        requires = command.required(rest)
        try:
            if requires != "anyone":  # the declared permission, checked before the handler runs
                word = rest.split(None, 1)[0].lower() if requires != command.requires else ""
                ctx.require(requires, f"/{command.name}" + (f" {word}" if word else ""))
            ctx.args = command.parse_args(rest, self.host.find_client)
            charge = self._within_rate(ctx, command) if command.rate is not None else None
            if charge is False:
                return command.cost
            result = self.plugins.run(command.plugin, command.handler, ctx, ctx.args)
        except UsageError as exc:
            self.host.send_line(client, f"ERROR usage: {str(exc) or command.usage_line()}")
        except Refused as exc:
            self.host.send_line(client, f"ERROR {exc}")
        else:
            if result is FAULT:
                self.host.send_line(client, f"ERROR /{command.name} failed: internal error in plugin {command.plugin}")
            elif isinstance(charge, tuple):  # only a call that succeeded counts against its Rate
                self.rates.record(*charge)
        return command.cost

    def _within_rate(self, ctx: Context, command: Command) -> tuple[str, Rate, str, str, float] | bool:
        """Check the command's :class:`~chatroom.plugins.ratelimit.Rate`: False (answered) for a call too soon,
        True for an admin (never limited), else what to record (:meth:`RateLimiter.record`'s arguments) once the
        handler succeeded: a call the handler refuses (``CommandError``), or that fails, does not count.

        The ``user`` scope is keyed by account for a logged-in caller, else by connection (a ``/nick`` keeps
        it); a guest's connection also waits out what guests who left from its address still owe, so
        reconnecting gives no fresh bucket either (see :meth:`left`)."""
        rate = command.rate
        assert rate is not None and ctx.client is not None
        if ctx.is_admin:
            return True
        member, address = rate_keys(ctx.client, ctx.address())
        room, now = ctx.room.name, self.host.now
        left = self.rates.wait(command.name, rate, member, room, now, also=address)
        if left > 0:
            self.host.send_line(ctx.client, "ERROR " + self.rates.refusal(command.name, rate, left))
            return False
        return command.name, rate, member, room, now

    def left(self, client: Client) -> None:
        """*client* disconnected: what a guest's connection owes its ``Rate(user=...)`` limits passes to its
        address, so a guest who reconnects from there waits it out all the same."""
        if client.account is None:
            member, address = rate_keys(client, getattr(client, "host", ""))
            if address:
                self.rates.move(member, address)

    def _unknown(self, client: Client, name: str) -> None:
        """``ERROR - Command not understood``; the did-you-mean lookup and the log line are rate-limited."""
        self.host.send_line(client, NOT_UNDERSTOOD)
        now = self.host.now
        if now - client.hint_at >= HINT_INTERVAL:
            client.hint_at, client.hints = now, 0
        if client.hints < HINT_BURST:
            client.hints += 1
            hint = self.plugins.registry.suggest(name[:64])
            if hint:
                self.host.send_line(client, f"* did you mean /{hint}?")
        log_rejected(client, f"an unknown command /{name[:40]}", now)


def rate_keys(client: Member, address: str) -> tuple[str, str]:
    """The ``Rate(user=...)`` keys of *client*: ``("@account", "")`` when logged in, else its connection's
    ``("#id", "=address")`` (``""`` for an unknown address)."""
    if client.account:
        return f"@{client.account.casefold()}", ""
    return f"#{client.id}", f"={address}" if address else ""
