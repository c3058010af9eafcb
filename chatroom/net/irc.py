"""The IRC door: RFC 1459/2812 clients with IRCv3 capabilities in chatroom's rooms, on the server's one loop.

This module holds what the door's commands share (:class:`IrcDoor`: the command table, how replies, labeled
responses and room events are encoded and sent); the door's connection is
:class:`~chatroom.net.ircconn.IrcConnection` (:mod:`chatroom.net.ircconn`, re-exported here) and the listeners
are in :mod:`chatroom.net.irctransport`. A third transport beside :mod:`chatroom.net.tcp` and :mod:`chatroom.net.web`,
built the same way: an :class:`IrcTransport` *is* a
:class:`~chatroom.net.tcp.LineTransport` whose connections parse with
:class:`~chatroom.wire.irc.IrcParser`, so the line transport's code enforces
every budget on them (64 KiB read and 64 messages per pass, the flood token
bucket: each IRC command costs what its handler returns, 1 for most; the
per-address limit shared with the other doors; the output budget;
``--idle-timeout`` for an unfinished line); over TLS it holds a
:class:`~chatroom.net.tls.TLSGate`. Members are :class:`IrcConnection` objects whose ``wire_index``
is the IRC encoder's (:mod:`chatroom.wire.ircevents`), so the hub encodes each
room event once per set of negotiated tags for all IRC members.

Channels are rooms, nicks are the members' nicks, accounts are chatroom's
accounts: docs/irc.md maps every command. The commands live in
:mod:`chatroom.net.ircregister` (registration, CAP, SASL, PING, QUIT, user
queries), :mod:`chatroom.net.ircchannels` (JOIN, PART, TOPIC, NAMES, LIST,
KICK, MODE, INVITE) and :mod:`chatroom.net.ircchat` (PRIVMSG, NOTICE, TAGMSG,
AWAY, CHATHISTORY, any other command handed to chatroom's commands, whose
replies come back as NOTICEs). Loop thread only.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Callable

from chatroom.model.member import Member
from chatroom.model.notice import Event
from chatroom.model.room import Room, permitted
from chatroom.net.connection import Connection
from chatroom.net.ircconn import IrcConnection, irc_host
from chatroom.net.ircport import IrcApplication
from chatroom.net.loop import Loop
from chatroom.wire.irc import Message, encode
from chatroom.model.history import Entry
from chatroom.wire.ircevents import ACCOUNT, AWAY, TAGS, TIME, plain_privmsg, render_event
from chatroom.wire.render import iso_time

__all__ = ["IrcConnection", "IrcDoor", "irc_host", "tagged"]  # (IrcConnection, irc_host: chatroom.net.ircconn)


_SHOWN_TAGS = TIME | TAGS | ACCOUNT  # the capabilities that add tags to a chat line

#: Lines whose client-only tags the door keeps for their fan-out (they go out in the same loop pass).
CLIENT_TAGS = 1024

#: IRC commands (RFC 1459/2812, Modern IRC, IRCv3) the door does not serve but a real client or gateway may send
#: before registering: like the door's own, they never get the wrong-door notice (see :meth:`IrcDoor.not_irc`).
OTHER_IRC = frozenset((
    "ADMIN", "BATCH", "CONNECT", "CPRIVMSG", "CNOTICE", "DIE", "ENCAP", "ERROR", "HELPOP", "KNOCK", "LINKS",
    "MARKREAD", "METADATA", "MONITOR", "NJOIN", "PROTOCTL", "REDACT", "REGISTER", "REHASH", "RESTART", "SERVER",
    "SERVICE", "SERVLIST", "SETNAME", "SILENCE", "SQUERY", "SQUIT", "STARTTLS", "STATS", "SUMMON", "TRACE", "USERS",
    "VERIFY", "VERSION", "WALLOPS", "WATCH", "WEBIRC",
))


class IrcDoor:
    """What the IRC commands share: the *app* (the server assembly, through what the door needs of it:
    :class:`~chatroom.net.ircport.IrcApplication`), its hub, the *server_name*, the transport's *loop*; the command
    table (command -> handler) and how replies are sent: :meth:`send` (raw bytes, held for a labeled command) and
    :meth:`numeric`."""

    def __init__(self, app: IrcApplication, loop: Loop, server_name: str, version: str) -> None:
        self.app = app
        self.hub = app.hub
        self.loop = loop
        self.server_name = server_name
        self.version = version
        self.created = loop.clock()
        self.batches = itertools.count(1)
        self.wire_index = self.hub.add_wire(self.encode_event, once=True)
        #: WHOWAS: ``(nick, user, host, realname, when)`` of IRC members who left a nick, newest first.
        self.whowas: deque[tuple[str, str, str, str, float]] = deque(maxlen=1000)
        #: Tags an IRC sender gave a line, for the IRC members with ``message-tags``: client-only tags by
        #: ``(room, history id)`` (the latest :data:`CLIENT_TAGS` lines), and those of the private line being sent
        #: (with its ``msgid``; private lines are not stored).
        self.client_tags: OrderedDict[tuple[str, int], dict[str, str]] = OrderedDict()
        self.private_tags: dict[str, str] | None = None
        #: Most members registered at once (LUSERS).
        self.max_users = 0
        self.commands: dict[str, tuple[Callable[[IrcDoor, IrcConnection, Message], float], bool, int]] = {}
        #: ``handler(door, conn, message)`` for a command not in the table (else ``421``).
        self.fallback: Callable[[IrcDoor, IrcConnection, Message], float] | None = None
        #: The line protocol's port and whether it speaks TLS, for the wrong-door notice (0: not known).
        self.line_port = 0
        self.line_tls = False
        #: ``show_join(conn, room)``: JOIN, topic and NAMES for a room *conn* just entered; ``show_part(conn, room,
        #: reason)``: PART for one it left (chatroom.net.ircchannels installs them; see IrcConnection.joined).
        self.show_join: Callable[[IrcConnection, Room], None] = lambda conn, room: None
        self.show_part: Callable[[IrcConnection, Room, str], None] = lambda conn, room, reason: None

    def command(self, name: str, handler: Callable[[IrcDoor, IrcConnection, Message], float], *,
                registered: bool = True, params: int = 0) -> None:
        """Route the IRC command *name* to ``handler(door, conn, message) -> flood cost``; *registered*: only
        after registration (else ``451``); *params*: fewer parameters get ``461``."""
        self.commands[name] = (handler, registered, params)

    def keep_tags(self, entry: Event, tags: dict[str, str]) -> None:
        """Relay *tags* (client-only ``+name`` tags) with *entry* to IRC members that negotiated message-tags."""
        if entry.id and tags:
            self.client_tags[(entry.room, entry.id)] = tags
            while len(self.client_tags) > CLIENT_TAGS:
                self.client_tags.popitem(last=False)

    def is_op(self, member: Member, room: Room) -> bool:
        """Does *member* operate *room* (its rules, the first member's right, or a server admin)? The model's rule,
        as ``ctx.allowed("operator")``'s (:func:`chatroom.model.room.permitted`)."""
        return permitted("operator", member, room, self.is_admin(member))

    def is_admin(self, member: Member) -> bool:
        """Is *member* logged in to a server admin's account (the config's ``admins``)?"""
        return self.hub.rooms.is_admin(member.account)  # the server's one admin rule

    def replay_on_join(self, conn: IrcConnection, room: Room) -> None:
        """Replay the room's last lines (``--history-on-join``) to a client that can tell them from new ones:
        one that negotiated ``server-time`` and ``batch`` but not ``draft/chathistory`` (that one asks)."""
        caps = conn.irccaps
        count = self.app.history_on_join
        if not count or "server-time" not in caps or "batch" not in caps or "draft/chathistory" in caps:
            return
        entries = self.hub.rooms.read(conn, room, last=count)  # the access rule: a member reads
        if not entries:
            return
        ref = f"j{next(self.batches)}"
        out = [encode(Message("BATCH", [f"+{ref}", "chathistory", room.name], source=self.server_name))]
        for entry in entries:
            data = render_event(entry, conn.tagged, self.mask_of, self.server_name, history=True)
            out += [tagged(line, b"batch=" + ref.encode()) for line in data.splitlines(keepends=True)]
        out.append(encode(Message("BATCH", [f"-{ref}"], source=self.server_name)))
        self.send(conn, b"".join(out))

    # -- encoding ------------------------------------------------------------------------------------
    def mask_of(self, nick: str) -> str:
        """``nick!user@host`` of the member called *nick*; a nick no longer here gets ``nick!nick@SERVER``."""
        member = self.hub.find(nick)
        if member is None:
            return f"{nick}!{nick}@{self.server_name}"
        if isinstance(member, IrcConnection):
            return member.source
        user = getattr(member, "user", "") or member.nick
        return f"{member.nick}!{user}@{irc_host(str(getattr(member, 'host', '') or ''))}"

    def encode_event(self, entry: Event, tagged: int, current: bool, history: bool = False) -> bytes:
        """The hub's encoder for IRC members (see :func:`chatroom.wire.ircevents.render_event`); with
        ``away-notify``, a JOIN of a member who is away is followed by its AWAY."""
        if entry.__class__ is Entry and entry.kind == "msg" and not tagged & _SHOWN_TAGS:
            # hot path (once per chat line and variant): a plain PRIVMSG, as render_event makes it, with no
            # tags to look up and no Notice attribute to look for
            data = plain_privmsg(self.mask_of(entry.nick), entry.room, entry.text)
            if data is not None:
                return data
        if entry.kind == "private":
            more = self.private_tags
        else:  # hot path (once per chat line): no key to build while no line carries client-only tags
            more = self.client_tags.get((entry.room, entry.id)) if self.client_tags else None
        data = render_event(entry, tagged, self.mask_of, self.server_name, history, more)
        if entry.kind == "join" and tagged & AWAY:
            member = self.hub.find(entry.nick)
            if member is not None and member.away:
                data += encode(Message("AWAY", [member.away], source=self.mask_of(member.nick)))
        return data

    # -- output ------------------------------------------------------------------------------------------
    def send(self, conn: IrcConnection, data: bytes) -> None:
        """Queue *data* (whole lines) for *conn*, after its rooms' pending events; held while a labeled command
        is handled (see :meth:`handle`)."""
        if conn.collect is not None:
            conn.collect.append(data)
            return
        self.hub.flush_for(conn)
        conn.deliver(data)

    def message(self, conn: IrcConnection, command: str, *params: str, source: str | None = None,
                tags: dict[str, str] | None = None) -> None:
        """Send one message built from *command* and *params* (source: the server unless given)."""
        if source is None:
            source = "" if command == "ERROR" else self.server_name
        self.send(conn, encode(Message(command, params, source=source,
                                       tags=tags)))

    def close(self, conn: Connection, reason: str, logged: str = "") -> None:
        """The server closes *conn* (an IRC client, or, for ``KILL``, a member of any door of this server) for
        *reason* (``registration timed out``, ``Quit: bye``...): what its rooms owed it first, a labeled command's
        replies held so far (unlabeled: no reply follows), then its door's closing message (IRC's
        ``ERROR :Closing Link: HOST (reason)``, :meth:`IrcConnection.encode_closing`) by the path every
        server-decided close takes (:meth:`Loop.send_closing <chatroom.net.loop.Loop.send_closing>`); the
        connection closes once its output is sent. *logged*: the reason the log and the application get (default
        *reason*)."""
        held = None
        if isinstance(conn, IrcConnection):
            held, conn.collect = conn.collect, None
        self.hub.flush_for(conn)
        if held:
            conn.deliver(b"".join(held))
        self.loop.send_closing(conn, reason)
        conn.transport.close(conn, logged or reason, flush=True)

    def numeric(self, conn: IrcConnection, code: str, *params: str) -> None:
        """Send numeric *code* to *conn*: ``:SERVER CODE NICK params...`` (``*`` before registration)."""
        self.message(conn, code, conn.nick if conn.registered else (conn.want_nick or "*"), *params)

    def server_tags(self, conn: IrcConnection) -> dict[str, str]:
        """The ``time`` tag for a reply made now, if *conn* negotiated ``server-time``."""
        if "server-time" in conn.irccaps:
            return {"time": iso_time(self.hub.clock())}
        return {}

    # -- handling -------------------------------------------------------------------------------------
    def handle(self, conn: IrcConnection, msg: Message) -> float:
        """Run the handler of *msg*'s command; with ``labeled-response`` and a ``label`` tag, its replies go out
        labeled (one line), in a ``labeled-response`` batch (several) or as an ``ACK`` (none). Returns the cost."""
        conn.seen = self.loop.now
        conn.pinged = False
        name = msg.command.upper()
        label = msg.tags.get("label") if "labeled-response" in conn.irccaps else None
        if label is not None:
            conn.collect = []
        records = self.app.history.records  # (its version read directly: a property call per message costs)
        changes = records.version
        try:
            return self._run(conn, name, msg)
        finally:
            if label is not None and conn.collect is not None:  # (None: the command closed the connection)
                held, conn.collect = conn.collect, None
                self._labeled(conn, label, held)
            if records.version != changes:  # a room's state changed: the replies wait for its commit
                self.app.answer_when_saved(conn)

    def _run(self, conn: IrcConnection, name: str, msg: Message) -> float:
        entry = self.commands.get(name)
        if entry is None:
            if not conn.registered:
                self.numeric(conn, "451", name, "You have not registered")
                if not conn.told_door and self.not_irc(name):
                    conn.told_door = True
                    self.message(conn, "NOTICE", "*", self.wrong_door())
                return 1.0
            if self.fallback is None:
                self.numeric(conn, "421", name, "Unknown command")
                return 5.0
            return self.fallback(self, conn, msg)
        handler, registered, params = entry
        if registered and not conn.registered:
            self.numeric(conn, "451", name, "You have not registered")
            return 1.0
        if len(msg.params) < params or (params and not msg.params[0]):
            self.numeric(conn, "461", name, "Not enough parameters")
            return 1.0
        return handler(self, conn, msg)

    def not_irc(self, name: str) -> bool:
        """Is the command *name* (upper case) clearly no IRC, a line typed for chatroom's line protocol by a person
        with ``nc`` or a line client on the IRC port: one starting with ``/`` (no IRC command does), or a word
        that is none of the door's commands, of :data:`OTHER_IRC` and no numeric (``HELLO``)? Asked only before
        registration, for a command that got ``451``; a real client's registration burst (CAP, PASS, NICK, USER,
        PING, AUTHENTICATE, QUIT, WEBIRC, STARTTLS...) never is."""
        return name not in self.commands and name not in OTHER_IRC and not name.isdigit()

    def wrong_door(self) -> str:
        """The one NOTICE a line-protocol client on the IRC port gets: this port speaks IRC, and the port to use."""
        if self.line_port:
            where = f"port {self.line_port}" + (" (TLS: chatroom-client --tls)" if self.line_tls else "")
        else:
            where = "the port of the 'chatroom-server listening on' line"
        return (f"this port speaks IRC (irssi, WeeChat: NICK and USER first); chatroom-client and nc use {where}, "
                "where /nick and plain lines work")

    def _labeled(self, conn: IrcConnection, label: str, held: list[bytes]) -> None:
        lines = [line + b"\n" for line in b"".join(held).split(b"\n") if line]
        tag = f"label={label}".encode()
        if not lines:
            self.send(conn, encode(Message("ACK", [], source=self.server_name, tags={"label": label})))
        elif len(lines) == 1:
            self.send(conn, tagged(lines[0], tag))
        else:
            ref = f"L{next(self.batches)}"
            start = encode(Message("BATCH", [f"+{ref}", "labeled-response"], source=self.server_name,
                                   tags={"label": label}))
            inner = b"".join(tagged(line, b"batch=" + ref.encode()) for line in lines)
            self.send(conn, start + inner + encode(Message("BATCH", [f"-{ref}"], source=self.server_name)))


def tagged(line: bytes, tag: bytes) -> bytes:
    """*line* with the tag *tag* (``key=value``) added first."""
    return b"@" + tag + (b";" + line[1:] if line.startswith(b"@") else b" " + line)
