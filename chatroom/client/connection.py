"""The client's socket I/O: one connection (socket, stream parser, output queue), its TLS face, the waker.

This is the only module of the client that imports the socket plumbing it shares with the server
(:mod:`chatroom.sockets`: :class:`OutQueue` and its ``sendmsg``, :class:`Waker`, :class:`TLSSocket`).
Everything here runs on the client loop's thread, except :meth:`Waker.wake`, which any thread may call.

* :class:`Connection`: a non-blocking socket with a :class:`~chatroom.wire.stream.StreamParser`
  (frame payloads reach the transfer component as views of its buffer: no copy per chunk) and an
  :class:`OutQueue` (bytes counted when queued). :meth:`Connection.events` reads at most
  :data:`RECV_ROUNDS` times per call, so typing and pumping are never starved.
* :class:`TLSClientSocket`: the face of an ``ssl.SSLSocket`` the connection and the output queue use
  (``chatroom-client --tls``; :mod:`chatroom.client.trust` decides which certificate to trust).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from chatroom.sockets.outqueue import SEND_BUFFERS, OutQueue
from chatroom.sockets.tlssocket import TLSSocket
from chatroom.sockets.wakeup import Waker
from chatroom.wire.lines import Frame, Line, TooLong, encode_line
from chatroom.wire.stream import StreamParser

__all__ = ["RECV_ROUNDS", "RECV_SIZE", "SEND_BUFFERS", "Connection", "OutQueue", "ServerEvent", "TLSClientSocket",
           "Transport", "Waker"]

#: Bytes read from the socket per ``recv`` call after a failure (:meth:`Connection.rest`).
RECV_SIZE = 256 * 1024
#: ``recv`` calls per readable event.
RECV_ROUNDS = 16
#: What the server sends, as the parser gives it.
ServerEvent = Line | Frame | TooLong


class Connection:
    """One connected socket (plain or :class:`TLSClientSocket`), made non-blocking here.

    :attr:`closed` turns true once a read finds the end of the stream (or a reset).
    """

    def __init__(self, sock: Transport) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.parser = StreamParser()
        self.out = OutQueue()
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, text: str) -> None:
        """Queue one line (the newline is added)."""
        self.out.append(encode_line(text))

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue *data* as it is (frames of the transfer component)."""
        self.out.append(data)

    @property
    def queued(self) -> int:
        """Bytes queued and not yet taken by the kernel."""
        return self.out.size

    def events(self) -> Iterator[ServerEvent]:
        """Read what the socket holds straight into the parser's buffer and yield its events.

        Stops when the socket has nothing more, after :data:`RECV_ROUNDS` reads, or at the end of
        the stream (then :attr:`closed` is set). The caller may stop iterating at any event.
        """
        parser = self.parser
        for _ in range(RECV_ROUNDS):
            free = parser.get_buffer()
            try:
                got = self.sock.recv_into(free, len(free))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                got = 0
            if not got:
                self.closed = True
                return
            parser.buffer_updated(got)
            yield from parser.events()
            pending = getattr(self.sock, "pending", None)  # TLS: bytes decrypted and held in the SSL object
            if got < len(free) and not (pending is not None and pending()):
                return

    def rest(self) -> Iterator[ServerEvent]:
        """What the server sent before the connection broke (a failed send may come before that read)."""
        for _ in range(RECV_ROUNDS):
            try:
                data = self.sock.recv(RECV_SIZE)
            except OSError:
                return
            if not data:
                return
            yield from self.parser.feed(data)

    def flush(self) -> bool:
        """Hand the kernel what it takes of the queue; False when the connection is broken."""
        if self.out.size:
            try:
                self.out.send_to(self.sock)  # a socket, or a TLS one: both are Senders
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                return False
        return True

    def close(self) -> None:
        self.sock.close()


#: The face of an ``ssl.SSLSocket`` the client uses: the server's :class:`~chatroom.sockets.tlssocket.TLSSocket`,
#: whose ``recv`` and ``recv_into`` read until TLS wants the network (the name is kept for the client's modules).
TLSClientSocket = TLSSocket


#: A connected socket as the client uses it: plain TCP, or TLS (``chatroom-client --tls``).
Transport = socket.socket | TLSClientSocket
