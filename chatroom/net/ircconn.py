"""The IRC door's connection: one IRC client, a member of the room model once it registered.

An :class:`IrcConnection` is a :class:`~chatroom.net.connection.Connection` whose parser is
:class:`~chatroom.wire.irc.IrcParser` and whose ``wire_index`` is the IRC encoder's, so the line transport
enforces every budget on it and the hub encodes each room event once per set of negotiated tags. It keeps what
the IRC commands (:mod:`chatroom.net.ircregister` and the others) learn about the client (``USER``, the
capabilities, the SASL exchange, keep-alive) and turns what the server says to it directly (a reply of
chatroom's commands, a close, a rename, a join made elsewhere) into IRC messages. What the commands share is
:class:`chatroom.net.irc.IrcDoor`, which the connection reaches through its transport (:class:`DoorPort`).
Loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from chatroom.model.room import Room
from chatroom.net.connection import Address, Connection, Transport
from chatroom.net.loop import Loop
from chatroom.sockets.tlssocket import Socket
from chatroom.wire.irc import IrcParser, Message, encode

__all__ = ["DoorPort", "IrcConnection", "IrcTransportPort", "irc_host"]


class DoorPort(Protocol):
    """What an IRC connection tells its door (:class:`chatroom.net.irc.IrcDoor`): JOIN, topic and NAMES for a
    room it entered (``show_join``), PART for one it left (``show_part``), one message (``message``)."""

    show_join: Callable[[IrcConnection, Room], None]
    show_part: Callable[[IrcConnection, Room, str], None]

    def message(self, conn: IrcConnection, command: str, *params: str, source: str | None = None,
                tags: dict[str, str] | None = None) -> None: ...


class IrcTransportPort(Transport, Protocol):
    """What an IRC connection needs of its transport (:mod:`chatroom.net.irctransport`): the door, and
    ``welcome(conn)`` once it registered."""

    @property
    def door(self) -> DoorPort: ...

    def welcome(self, conn: IrcConnection) -> None: ...


class IrcConnection(Connection):
    """An IRC client: a member once registered (``registered``), speaking IRC messages.

    ``user`` and ``realname`` come from ``USER``; ``want_nick`` is the nick asked before registration;
    ``irccaps`` the IRCv3 capabilities negotiated (``cap_open`` while ``CAP LS``/``REQ`` hold registration);
    ``umodes`` the user modes set (``i``, ``w``); ``collect`` the replies of a labeled command being handled
    (``None`` when none); ``seen`` when the client last sent anything (loop seconds); ``pinged`` whether the
    server's keep-alive PING waits for an answer; ``sasl`` the SASL exchange state; ``password_ok`` whether
    ``PASS`` gave the server password (or none is needed); ``failures`` wrong passwords; ``arrived`` when it
    connected (loop seconds).
    """

    __slots__ = ("wire_index", "registered", "user", "realname", "want_nick", "irccaps", "cap_open", "cap_version",
                 "umodes", "collect", "seen", "pinged", "sasl", "password_ok", "failures", "mask_text",
                 "mask_nick", "shown_nick", "arrived", "told_door", "replies")

    transport: IrcTransportPort

    greeted = False  # no welcome line and no automatic join: an IRC client joins its channels
    takes_links = True  # no file frames: files come and go as one-time links (chatroom.net.filelinks)

    def __init__(self, cid: int, sock: Socket, addr: Address, loop: Loop, transport: IrcTransportPort, *,
                 tokens: float = 0.0, now: float = 0.0, wire_index: int = 0) -> None:
        super().__init__(cid, sock, addr, loop, transport, tokens=tokens, now=now)
        self.parser = IrcParser()
        self.wire_index = wire_index
        self.registered = False
        self.user = ""
        self.realname = ""
        self.want_nick = ""
        self.irccaps: frozenset[str] = frozenset()
        self.cap_open = False
        self.cap_version = 0
        self.umodes = ""
        self.collect: list[bytes] | None = None
        self.seen = 0.0
        self.pinged = False
        self.sasl: Any = None
        self.password_ok = True
        self.failures = 0
        self.mask_text = "!"
        self.mask_nick = ""  # the nick (the very string) mask_text was made for
        self.shown_nick = ""
        self.arrived = now  # when it connected: registration must end REGISTRATION_TIMEOUT s later
        self.told_door = False  # the wrong-door NOTICE was sent (once per connection)
        #: While ``HELP`` runs chatroom's ``/help``: its reply lines, kept here instead of sent (see encode_text).
        self.replies: list[str] | None = None

    def encode_text(self, text: str) -> bytes:
        """A reply or notice of chatroom's commands (``OK ...``, ``* ...``) as a server ``NOTICE`` to this client;
        nothing while ``HELP`` collects ``/help``'s lines in ``replies`` (it sends them as 704-706), nor while a
        labeled command runs (``collect``: the NOTICE is held there, to go out with the command's label)."""
        if self.replies is not None:
            self.replies.append(text)
            return b""
        server = getattr(self.transport, "server_name", "chatroom")
        data = encode(Message("NOTICE", [self.nick if self.registered else "*", text], source=server))
        if self.collect is not None:
            self.collect.append(data)
            return b""
        return data

    def joined(self, room: Room) -> None:
        """JOIN, the topic and NAMES for *room*, however this member entered it (IRC clients keep channel state
        from these: a plugin's ``ctx.join`` without them would leave the client outside a channel it is in)."""
        if self.registered:
            self.transport.door.show_join(self, room)

    def left(self, room: Room, reason: str) -> None:
        """PART for *room*, however this member left it but a kick (see :meth:`joined`)."""
        if self.registered and not self.closed:
            self.transport.door.show_part(self, room, reason)

    def encode_closing(self, reason: str) -> bytes:
        """The server closes this client for *reason*: IRC's ``ERROR :Closing Link: HOST (reason)``, the message
        clients show as why they were disconnected (Modern IRC, "ERROR"), as a QUIT's is worded."""
        return encode(Message("ERROR", [f"Closing Link: {self.host or 'client'} ({reason})"]))

    def encode_farewell(self, reason: str) -> bytes:
        """The server stops: IRC's closing message (:meth:`encode_closing`), which clients show and reconnect after,
        not a NOTICE and a bare end of stream."""
        return self.encode_closing(reason)

    def frame(self, meta: str, payload: bytes = b"") -> bytes:
        """The relay's word about an offer made by link (``file-abort ID REASON``) as a server ``NOTICE``;
        an IRC client never gets a file's bytes."""
        kind, _, rest = meta.partition(" ")
        tid, _, reason = rest.partition(" ")
        if kind == "file-abort":
            return self.encode_text(f"* file {tid} is no longer offered: {reason}")
        return b""

    def changed(self) -> None:
        """The hub changed this member's nick (its own NICK, or a login elsewhere that took it back): the client
        hears ``:old!user@host NICK new``, as IRC clients track their own nick from it."""
        if self.registered and not self.closed and self.nick != self.shown_nick:
            old = self.source.replace(self.nick, self.shown_nick, 1) if self.shown_nick else self.source
            self.shown_nick = self.nick
            self.transport.door.message(self, "NICK", self.nick, source=old)

    @property
    def echoed(self) -> bool:  # type: ignore[override]  # Member.echoed is a plain class attribute (False)
        """With several servers (``--redis``), ``echo-message`` comes with the stored line (chatroom.model.member)."""
        return "echo-message" in self.irccaps

    @property
    def source(self) -> str:
        """``nick!user@host`` as other clients see this one (made again when the nick changed); before it registered,
        with the nick it asked for (``NICK``; ``*`` before any), never the guest nick it holds meanwhile."""
        nick = self.nick if self.registered else (self.want_nick or "*")
        if nick is self.mask_nick:  # hot path (every line said and relayed): one identity check
            return self.mask_text
        self.mask_nick = nick
        mask = self.mask_text = f"{nick}!{self.user or '~' + nick}@{irc_host(self.host)}"
        return mask


def irc_host(address: str) -> str:
    """An address as an IRC host: as it is, but an IPv6 address that starts with ``:`` gets a ``0`` first
    (``::1`` -> ``0::1``: a host may not start with ``:`` in a message source); ``chatroom`` when unknown."""
    if not address:
        return "chatroom"
    return "0" + address if address.startswith(":") else address
