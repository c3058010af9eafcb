"""The IRC door's listeners: IRC over TCP and over TLS on the server's loop, with the line transport's budgets.

An :class:`IrcTransport` *is* a :class:`~chatroom.net.tcp.LineTransport` (over TLS: holding a
:class:`~chatroom.net.tls.TLSGate`) whose connections are :class:`~chatroom.net.irc.IrcConnection` objects
(they parse with :class:`~chatroom.wire.irc.IrcParser`), so every budget of the line transport holds (see
:mod:`chatroom.net.irc`). A connection stays in the ``pending`` table until it registers
(``REGISTRATION_TIMEOUT``), then joins the server's table and the application greets it; a silent registered
client gets a PING after ``ping_after`` seconds (``--irc-ping-after``, default :data:`PING_AFTER`) and is
closed with ``ERROR`` after as many more.
:func:`open_irc` builds the door (:class:`~chatroom.net.irc.IrcDoor` and its commands) and binds the listeners.
Loop thread only.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Unpack

from chatroom.net.connection import Address, Application, Connection
from chatroom.net.loop import Loop
from chatroom.net.irc import IrcConnection, IrcDoor
from chatroom.net.ircchannels import install as install_channels
from chatroom.net.ircchat import install as install_chat
from chatroom.net.ircfiles import install as install_files
from chatroom.net.ircinfo import install as install_info
from chatroom.net.ircinfo import remember
from chatroom.net.ircport import IrcApplication
from chatroom.net.ircregister import install as install_register
from chatroom.net.logs import CONN
from chatroom.net.scheduler import Timer
from chatroom.net.tcp import DoorOptions, LineOptions, LineTransport
from chatroom.net.tls import HANDSHAKE_TIMEOUT, TLSGate
from chatroom.sockets.tlssocket import Socket
from chatroom.wire.irc import Message, TooLong, encode

__all__ = ["CLEAR_CLOSING", "PING_AFTER", "REGISTRATION_TIMEOUT", "IrcTransport", "irc_tls_only", "open_irc"]

log = logging.getLogger("chatroom.server")

#: Seconds a connection may take to register (NICK, USER, CAP END) before it is closed.
REGISTRATION_TIMEOUT = 60.0
#: Seconds of silence after which the server PINGs a client, and then waits as long for anything.
PING_AFTER = 120.0
#: Why a clear-text client on the IRC TLS port is closed (the trailing text of its ``ERROR``).
CLEAR_CLOSING = "Closing Link: this port speaks TLS; connect with TLS (port 6697 convention)"


def irc_tls_only(spoke: bool) -> bytes:
    """The IRC door's clear-text answer on its TLS port (a :class:`~chatroom.net.tls.ClearTextAnswer`), either way:
    ``ERROR :Closing Link: ...`` CR LF (:data:`CLEAR_CLOSING`), an IRC message a client shows as the reason it
    was closed (RFC 2812 3.7.4; "Modern IRC": ``ERROR <reason>``), not the line protocol's bare ``ERROR`` line."""
    return encode(Message("ERROR", [CLEAR_CLOSING]))


class IrcTransport(LineTransport):
    """IRC on *listener*: :class:`~chatroom.net.tcp.LineTransport`'s keyword arguments (``share=`` the main
    transport; ``tls=`` a :class:`~chatroom.net.tls.TLSGate` for IRC over TLS) plus *door*, the :class:`IrcDoor`
    with the command table, and *ping_after* (seconds of silence before the keep-alive PING; as many more
    without an answer close the connection)."""

    def __init__(self, loop: Loop, app: Application, listener: socket.socket, *, door: IrcDoor,
                 ping_after: float = PING_AFTER, **options: Unpack[LineOptions]) -> None:
        super().__init__(loop, app, listener, **options)
        self.door = door
        self.ping_after = ping_after
        self.sweep_every = min(5.0, ping_after / 4)
        self.server_name = door.server_name
        self.pending: dict[int, IrcConnection] = {}  # connections not registered yet
        self._timer: Timer | None = None

    def _connection(self, cid: int, sock: Socket, addr: Address) -> Connection:
        conn = IrcConnection(cid, sock, addr, self.loop, self, tokens=self.flood.burst, now=self.loop.now,
                             wire_index=self.door.wire_index)
        conn.seen = self.loop.now
        conn.password_ok = not self.door.app.gate.needed  # the server's password gate
        return conn

    def _greet(self, conn: Connection) -> None:
        """A new connection waits for NICK and USER; it enters the server's table once registered."""
        assert isinstance(conn, IrcConnection)  # made by _connection
        self.pending[conn.id] = conn
        if self._timer is None:
            self._timer = self.loop.call_later(self.sweep_every, self._keepalive)

    def _too_many(self, text: str) -> bytes:
        return encode(Message("ERROR", [f"Closing Link: {text}"]))

    def _other(self, conn: Connection, event: object) -> float:
        assert isinstance(conn, IrcConnection)  # made by _connection
        if event.__class__ is Message:
            return self.door.handle(conn, event)
        if event.__class__ is TooLong:
            self.door.numeric(conn, "417", "Input line was too long")
            return 2.0
        return 0.0

    def _line_size(self, event: object) -> int:
        """An IRC message is a line for the flood policy (``--flood-backlog``): a throttled client sending more
        of them than it allows is flooding, as on the line protocol."""
        if event.__class__ is Message:
            return len(event.command) + sum(len(p) + 1 for p in event.params) + 1
        return super()._line_size(event)

    def welcome(self, conn: IrcConnection) -> None:
        """*conn* registered: it leaves the pending table for the server's (the application greets it)."""
        self.pending.pop(conn.id, None)
        self.connections[conn.id] = conn
        self.app.on_connect(conn, passed=True)  # PASS gave the server password already, if there is one

    def _keepalive(self) -> None:
        """Every ``sweep_every`` s (5 s, or a quarter of ``ping_after``): close connections that did not register
        within REGISTRATION_TIMEOUT s of connecting (whatever they sent meanwhile: PINGs do not buy time); PING
        clients silent for ``ping_after`` s, close those silent for twice as long (``ERROR``)."""
        self._timer = None
        now = self.loop.now = self.loop.clock()
        for conn in list(self.pending.values()):
            if not conn.closed and not conn.closing and now - conn.arrived >= REGISTRATION_TIMEOUT:
                self.door.close(conn, "registration timed out", "registration timeout")
        for member in list(self.connections.values()):
            if not isinstance(member, IrcConnection) or member.closed or member.closing or member.transport is not self:
                continue
            if now - member.seen >= self.ping_after * (2 if member.pinged else 1):
                if member.pinged:
                    self.door.close(member, f"Ping timeout: {self.ping_after * 2:g} seconds", "ping timeout")
                else:
                    member.pinged = True
                    self.door.message(member, "PING", self.server_name)
        self._timer = self.loop.call_later(self.sweep_every, self._keepalive)

    def close(self, conn: Connection, reason: str, *, flush: bool = False) -> None:
        """As the line transport's; a connection that never registered is closed without the application."""
        if isinstance(conn, IrcConnection) and not conn.registered and not conn.closed:
            self.pending.pop(conn.id, None)
            return self.close_unseen(conn, flush=flush)
        if isinstance(conn, IrcConnection) and not conn.closing and not conn.closed:
            remember(self.door, conn)
        super().close(conn, reason, flush=flush)

    def shutdown(self) -> None:
        """Stop accepting; close the connections that never registered."""
        for conn in list(self.pending.values()):
            self.close(conn, "shutdown")
        if self._timer is not None:
            self._timer.cancel()
        super().shutdown()


def open_irc(loop: Loop, app: IrcApplication, listener: socket.socket | None, tls_listener: socket.socket | None = None,
             *, server_name: str = "", version: str = "", tls: ssl.SSLContext | None = None,
             handshake_timeout: float = HANDSHAKE_TIMEOUT, ping_after: float = PING_AFTER,
             **options: Unpack[DoorOptions]) -> list[IrcTransport]:
    """Serve IRC for *app* on *listener* (a bound listening socket, or None) and, with the ``ssl.SSLContext``
    *tls*, IRC over TLS on *tls_listener*. *server_name* (default: the host name) is the source of server
    messages; *ping_after*, seconds of silence before the keep-alive PING (``--irc-ping-after``); *options*,
    :class:`~chatroom.net.tcp.LineTransport`'s (``share``, the line protocol's transport, is also the port the
    door names to a line client that reached it by mistake: :meth:`~chatroom.net.irc.IrcDoor.wrong_door`). Returns the transports (the clear one
    first)."""
    door = IrcDoor(app, loop, server_name or socket.gethostname() or "chatroom", version)
    for install in (install_register, install_channels, install_chat, install_info, install_files):
        install(door)
    line = options.get("share")  # the line protocol's transport: its port, for the wrong-door notice
    if line is not None:
        door.line_port, door.line_tls = int(line.listener.getsockname()[1]), line.tls is not None
    transports: list[IrcTransport] = []
    if listener is not None:
        transports.append(IrcTransport(loop, app, listener, door=door, ping_after=ping_after, **options))
    if tls is not None and tls_listener is not None:
        gate = TLSGate(tls, handshake_timeout=handshake_timeout, answer=irc_tls_only)  # clear text: an IRC ERROR
        transports.append(IrcTransport(loop, app, tls_listener, door=door, ping_after=ping_after, tls=gate, **options))
    log.info("IRC door as %s", door.server_name, extra=CONN)
    return transports
