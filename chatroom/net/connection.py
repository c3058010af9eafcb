"""One connection as the loop sees it: a member of the rooms, plus its socket, parser, output queue and budgets."""

from __future__ import annotations

import selectors
from collections import deque
from typing import Iterator, Protocol

from chatroom.model.history import Entry
from chatroom.model.member import Member
from chatroom.wire.lines import Frame, FrameFilter, Parser, encode_frame, encode_frame_header, encode_line
from chatroom.sockets.outqueue import OutQueue
from chatroom.sockets.tlssocket import Socket

#: A peer's address as ``socket.accept()`` gives it: ``(host, port)`` over IPv4, ``(host, port, flowinfo,
#: scope_id)`` over IPv6.
Address = tuple[str, int] | tuple[str, int, int, int]


class EventParser(Protocol):
    """What a connection's parser offers the line transport: the interface of :class:`chatroom.wire.lines.Parser`
    (sans-I/O: bytes in, events out, in the style of h11), which a door's own parser has too
    (:class:`chatroom.wire.irc.IrcParser`, :class:`chatroom.net.webproto.WebParser`).

    :meth:`next_event` returns the next event or None until more bytes come: a
    :class:`~chatroom.wire.lines.Line`, :class:`~chatroom.wire.lines.Frame`,
    :class:`~chatroom.wire.lines.TooLong` or :class:`~chatroom.wire.lines.Refused`, or an event of the door's
    own, which its transport's ``_other`` handles. ``partial``: an unfinished line or message is held;
    ``in_frame``: it is a frame; ``frame_filter(meta, size)``: None to accept a frame, else the reason.
    """

    frame_filter: FrameFilter | None

    @property
    def partial(self) -> bool: ...

    @property
    def in_frame(self) -> bool: ...

    def receive_data(self, data: bytes | memoryview) -> None: ...

    def next_event(self) -> object: ...


class Application(Protocol):
    """The door interface, upward: what every door (the line transport over TCP and TLS, the web transport, the
    IRC door) calls on the application, :class:`chatroom.server.app.Server`. Loop thread only.

    ``on_connect``: *conn* takes part (``passed``: it gave the server password already); ``on_line``: a line of
    text (no newline) as the line protocol's commands and chat read it, returning its flood cost (tokens);
    ``on_frame``: a file frame (:class:`~chatroom.wire.lines.Frame`), returning its flood cost; ``check_frame``: None to accept a frame of
    *size* payload bytes with header text *meta*, else the reason; ``on_close``: *conn* is gone (*reason*).
    """

    def on_connect(self, conn: Connection, *, passed: bool = False) -> None: ...

    def on_line(self, conn: Connection, text: str) -> float: ...

    def on_frame(self, conn: Connection, frame: Frame) -> float: ...

    def check_frame(self, conn: Connection, meta: str, size: int) -> str | None: ...

    def on_close(self, conn: Connection, reason: str) -> None: ...


class Writer(Protocol):
    """What a connection needs of the loop that writes it (:class:`chatroom.net.loop.Loop`): ``max_queue``
    (bytes of output a connection may have queued), ``dirty`` (the connections with output queued this pass),
    ``backlog`` (those with bytes read ahead to serve next pass), ``too_slow(conn)`` (*conn* is over its output
    budget: dropped) and ``set_mask(conn)`` (the selector's events for *conn* again). Loop thread only."""

    max_queue: int
    dirty: list[Connection]
    backlog: set[Connection]

    def too_slow(self, conn: Connection) -> None: ...

    def set_mask(self, conn: Connection) -> None: ...


class Transport(Protocol):
    """The door interface, downward: what the loop and the server call on a door's transport
    (:class:`chatroom.net.tcp.LineTransport` and the transports built on it). Loop thread only.

    ``readable``: read *conn*'s socket once and serve it; ``serve``: handle a slice of the events already parsed;
    ``close``: close *conn* (``flush``: after its queued output); ``connections``: the members by id (shared by
    the transports of a server); ``app``: the :class:`Application` it calls.
    """

    connections: dict[int, Connection]

    @property
    def app(self) -> Application: ...

    def readable(self, conn: Connection) -> None: ...

    def serve(self, conn: Connection) -> None: ...

    def close(self, conn: Connection, reason: str, *, flush: bool = False) -> None: ...


class Connection(Member):
    """One client connection; a :class:`~chatroom.model.member.Member` the room model delivers to.

    Plugins read ``nick``, ``room``, ``rooms``, ``caps``, ``addr``, ``id``,
    ``closed``. The rest is the loop's bookkeeping: ``out`` (an
    :class:`~chatroom.sockets.outqueue.OutQueue`; the output budget is checked
    against its size when bytes are queued, in :meth:`deliver`), ``tokens``
    and ``stamp`` (the flood token bucket and when it was last refilled, loop
    seconds), ``lagged`` (the bucket is empty: input is read ahead into
    ``held``, a deque of events not handled yet, or None), ``throttled``
    (reading stopped: lagged behind a frame or a paused transfer),
    ``flood_since`` (start of the current throttling episode, 0 when none),
    ``partial_since`` (since when an unfinished line or frame has been held,
    0 when none), ``deadline`` (when a closing connection is reaped), ``more`` (its socket is a
    :class:`~chatroom.sockets.tlssocket.TLSSocket` holding decrypted bytes the selector cannot see: the next
    pass reads them). ``sock`` is a ``socket.socket`` or, behind a door's TLS gate, a ``TLSSocket``: the only
    difference between a connection in clear and one over TLS.
    ``transport`` is the object that reads it (:class:`~chatroom.net.tcp.LineTransport`), ``loop``
    the :class:`~chatroom.net.loop.Loop` that writes it (seen through :class:`Writer`).
    Slots keep an idle connection small (docs/benchmarks.md). Loop thread only.
    """

    __slots__ = (
        "sock", "addr", "parser", "out", "loop", "transport",
        "closed", "closing", "doomed", "dirty", "want_write", "paused", "throttled", "lagged", "backlog",
        "streams", "mask", "tokens", "stamp", "held", "flood_since", "partial_since", "deadline",
        "hint_at", "hints", "unknown_at", "unknown_quiet", "more",
    )

    def __init__(self, cid: int, sock: Socket, addr: Address, loop: Writer, transport: Transport, *,
                 tokens: float = 0.0, now: float = 0.0) -> None:
        super().__init__(cid, f"guest{cid}")
        self.sock = sock
        self.addr = addr
        self.parser: EventParser = Parser()
        self.out = OutQueue()
        self.loop = loop
        self.transport = transport
        self.closed = False
        self.closing = False  # no more input; close once output is flushed (or at `deadline`)
        self.doomed = ""  # the reason, when the connection must be closed at the end of the pass
        self.dirty = False
        self.want_write = False
        self.paused = False  # the relay paused reading (file backpressure)
        self.throttled = False  # not reading: lagged behind an event that is not a line
        self.lagged = False  # the flood bucket is empty: events wait in `held`
        self.backlog = False  # parsed input is waiting for the next loop pass
        self.mask = selectors.EVENT_READ  # what the selector watches; 0 when unregistered
        self.streams: list[tuple[Iterator[str], str]] | None = None
        self.tokens = tokens
        self.stamp = now
        self.held: deque[object] | None = None  # events of its parser
        self.flood_since = 0.0
        self.partial_since = 0.0
        self.deadline = 0.0
        self.hint_at = -1e9
        self.hints = 0
        self.unknown_at = -1e9
        self.unknown_quiet = 0
        self.more = False

    def deliver(self, data: bytes | memoryview) -> None:
        """Queue *data* within the output budget; past ``loop.max_queue`` the connection is dropped as too slow.

        The check is made here, when bytes are queued, so memory never runs
        ahead of the budget (an empty queue always takes one item, whatever its size).
        """
        if self.closed or self.doomed:
            return
        out = self.out
        if out.size and out.size + len(data) > self.loop.max_queue:
            self.loop.too_slow(self)
            return
        out.append(data)
        if not self.dirty:
            self.dirty = True
            self.loop.dirty.append(self)

    def vet_frame(self, meta: str, size: int) -> str | None:
        """The parser's frame filter: may this connection send a frame with this header? (the application's
        ``check_frame``). A bound method, not a closure per connection: an idle connection stays small."""
        return self.transport.app.check_frame(self, meta, size)

    # -- the connection's wire: a transport with another format overrides these -------------------
    def encode_text(self, text: str) -> bytes:
        """One line (a reply, a listing line: ``str``, no newline) as this connection's wire carries it."""
        return encode_line(text)

    def encode_closing(self, reason: str) -> bytes:
        """The last line before the server closes this connection for *reason* (``excess flood``, ``too slow: ...``,
        ``timeout: ...``, ``internal error``): on the line protocol ``ERROR reason``, as :meth:`encode_text` words
        it; a door whose protocol has its own closing message overrides it (IRC's ``ERROR :Closing Link``)."""
        return self.encode_text(f"ERROR {reason}")

    def encode_farewell(self, reason: str) -> bytes:
        """The last line when the whole server stops for *reason* (``server shutting down``): on the line protocol
        the notice ``* reason`` (what chatroom-client waits for), as :meth:`encode_text` words it; a door whose
        protocol has its own closing message overrides it (IRC's ``ERROR :Closing Link``)."""
        return self.encode_text(f"* {reason}")

    def hit(self, entry: Entry, line: str) -> None:
        """A search hit: *line* as any reply (:meth:`encode_text`), so a door with its own wire words it."""
        self.deliver(self.encode_text(line))

    def frame(self, meta: str, payload: bytes = b"") -> bytes:
        """A whole file frame (docs/protocol.md, "Frames") with *meta* text and *payload*."""
        return encode_frame(meta, payload)

    def frame_header(self, meta: str, size: int) -> bytes:
        """What precedes *size* payload bytes of a frame with *meta* text: the relay queues it, then the
        payload buffer it shares with every receiver."""
        return encode_frame_header(meta, size)

    @property
    def queued(self) -> int:
        """Bytes waiting in the output queue."""
        return self.out.size

    @property
    def host(self) -> str:
        """The peer's address without the port (``str``; ``""`` if unknown)."""
        return str(self.addr[0]) if isinstance(self.addr, tuple) and self.addr else ""


#: The name plugins and older code knew a connection by.
Client = Connection
