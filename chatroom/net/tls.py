"""TLS for the line transport: the non-blocking handshake in the loop, TLS connections and their socket.

:class:`TLSTransport` is a :class:`~chatroom.net.tcp.LineTransport` whose
accepted sockets first go through a :class:`_Handshake` driven by the one
loop (``do_handshake()``, the selector mask switched on
``SSLWantReadError``/``SSLWantWriteError``), bounded by
:data:`HANDSHAKE_TIMEOUT` seconds and counted against the per-address
budget from the moment they are accepted. Its first byte is peeked: a client
that does not start with a TLS handshake record (``0x16``) gets
:data:`CLEAR_ERROR` in clear text and is closed. After the handshake the
connection is an ordinary connection whose socket is a :class:`TLSSocket`.

Reading follows the TLS rule: decrypted bytes can sit inside the SSL object
while the raw socket is empty (``select`` no longer reports them), so each
pass reads until ``SSLWantReadError`` but at most
:data:`~chatroom.net.tcp.READ_SIZE` bytes; bytes left in the SSL object
(``pending()``) put the connection back in the loop's backlog so the next
pass reads them. Writing: SSL sockets have no ``sendmsg``; :class:`TLSSocket`
gives the output queue one that writes its buffers record by record (views,
not copies) and reports partial writes.

Certificates: :mod:`chatroom.net.certs` (re-exported here).
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
from typing import Any

from chatroom.net.certs import (
    CERT_FILE,
    KEY_FILE,
    ensure_certificate,
    fingerprint,
    load_tls,
    server_context,
)
from chatroom.net.connection import Application, Connection
from chatroom.net.loop import Loop
from chatroom.net.logs import CONN
from chatroom.net.tcp import READ_SIZE, LineTransport
from chatroom.wire.lines import encode_line

__all__ = ["CERT_FILE", "CLEAR_ERROR", "HANDSHAKE_TIMEOUT", "KEY_FILE", "TLSConnection", "TLSSocket", "TLSTransport",
           "ensure_certificate", "fingerprint", "load_tls", "server_context"]

from chatroom.sockets.tlssocket import RECORD, TLSSocket  # noqa: E402,F401 - re-exported

log = logging.getLogger("chatroom.server")

#: Seconds a client has from connecting to finishing the TLS handshake.
HANDSHAKE_TIMEOUT = 10.0
#: The line a clear-text client on a TLS port gets before it is closed.
CLEAR_ERROR = "ERROR this port speaks TLS; use chatroom-client --tls or openssl s_client"
_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


# -- the connection ------------------------------------------------------------------------
class TLSConnection(Connection):
    """A connection over TLS; its ``more`` (:class:`~chatroom.net.connection.Connection`'s) is true while
    decrypted bytes wait in its SSL object for the next pass."""

    __slots__ = ()


# -- the handshake ---------------------------------------------------------------------------
class _Handshake:
    """One accepted socket until its TLS handshake is done (then a connection), fails or times out."""

    __slots__ = ("transport", "sock", "addr", "host", "tls", "mask", "timer", "refused")

    def __init__(self, transport: TLSTransport, sock: socket.socket, addr: Any) -> None:
        self.transport = transport
        self.sock = sock
        self.addr = addr
        self.host = str(addr[0]) if isinstance(addr, tuple) else ""
        self.tls: ssl.SSLSocket | None = None
        self.refused = False  # told CLEAR_ERROR; draining until the peer closes
        self.mask = selectors.EVENT_READ
        transport.loop.selector.register(sock, self.mask, self.step)
        self.timer = transport.loop.call_later(transport.handshake_timeout, self.expire)

    def step(self) -> None:
        """The socket is ready: peek at the first byte, then drive ``do_handshake()``."""
        if self.tls is None:
            self._sniff()
            if self.tls is None:
                return
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            self._watch(selectors.EVENT_WRITE)
        except (OSError, ValueError) as exc:
            self.end(f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}")
        else:
            self._done()

    def _sniff(self) -> None:
        try:
            first = self.sock.recv(1, socket.MSG_PEEK) if not self.refused else self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            first = b""
        if not first:
            self.end("closed by the client before the TLS handshake" if not self.refused else "")
        elif self.refused:
            return  # discard until the peer closes or the timer ends it
        elif first != b"\x16":
            self._refuse("clear text on the TLS port")
        else:
            self.transport.loop.selector.unregister(self.sock)
            self.mask = 0
            try:
                self.tls = self.transport.context.wrap_socket(self.sock, server_side=True,
                                                              do_handshake_on_connect=False)
            except (OSError, ValueError) as exc:
                self.end(f"TLS setup failed: {exc}")

    def _refuse(self, reason: str) -> None:
        """Tell a clear-text client in clear text, then drain what it sends until it closes (no reset)."""
        log.info("refusing %s: %s", self.host, reason, extra=CONN)
        self.refused = True
        try:
            self.sock.recv(READ_SIZE)
            self.sock.send(self.transport._clear_text_answer(spoke=True))
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.end("")

    def _watch(self, mask: int) -> None:
        selector, tls = self.transport.loop.selector, self.tls
        assert tls is not None  # watched for the handshake only once the socket is wrapped (step)
        if not self.mask:
            selector.register(tls, mask, self.step)
        elif mask != self.mask:
            selector.modify(tls, mask, self.step)
        self.mask = mask

    def expire(self) -> None:
        """The handshake took too long; a client that sent nothing may be a person on ``nc``: tell it."""
        if self.transport.handshakes.get(self) is None:
            return
        if self.tls is None and not self.refused:
            try:
                self.sock.send(self.transport._clear_text_answer(spoke=False))
            except OSError:
                pass
        self.end("" if self.refused else f"TLS handshake timeout ({self.transport.handshake_timeout:g} s)")

    def _unregister(self) -> None:
        if self.mask:
            try:
                self.transport.loop.selector.unregister(self.tls or self.sock)
            except (KeyError, ValueError):
                pass
            self.mask = 0

    def end(self, reason: str) -> None:
        """Give up: close the socket and release its place in the per-address budget."""
        self._forget()
        if reason:
            log.info("closing %s: %s", self.host, reason, extra=CONN)
        (self.tls or self.sock).close()

    def _forget(self) -> None:
        self.timer.cancel()
        self._unregister()
        if self.transport.handshakes.pop(self, None) is not None:
            self.transport._count_out(self.host)

    def _done(self) -> None:
        assert self.tls is not None
        self.timer.cancel()
        self._unregister()
        self.transport.handshakes.pop(self, None)
        self.transport._start(TLSSocket(self.tls), self.addr)


# -- the transport ---------------------------------------------------------------------------
class TLSTransport(LineTransport):
    """The line protocol over TLS on *listener*; *context* is the server's ``ssl.SSLContext``.

    Takes the keyword arguments of :class:`~chatroom.net.tcp.LineTransport`
    (pass ``share=`` the clear transport to serve the same rooms and budgets)
    and *handshake_timeout* (seconds). ``handshakes`` holds the sockets still
    in their handshake. Loop thread only.
    """

    def __init__(self, loop: Loop, app: Application, listener: Any, *, context: ssl.SSLContext,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT, **options: Any) -> None:
        super().__init__(loop, app, listener, **options)
        self.context = context
        self.handshake_timeout = handshake_timeout
        self.handshakes: dict[_Handshake, bool] = {}
        self._scratch = memoryview(bytearray(READ_SIZE))  # one read's bytes, copied by the parser at once

    def _admit(self, sock: socket.socket, addr: Any) -> None:
        if self._count_in(sock, addr):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.handshakes[_Handshake(self, sock, self._shared_host(addr))] = True

    def _clear_text_answer(self, spoke: bool) -> bytes:
        """What a client that sent clear text (*spoke*) or nothing to this TLS port is told, in clear, before it
        is closed: :data:`CLEAR_ERROR` either way (a person on ``nc`` waiting for a greeting learns why)."""
        return encode_line(CLEAR_ERROR)

    def _connection(self, cid: int, sock: Any, addr: Any) -> Connection:
        return TLSConnection(cid, sock, addr, self.loop, self, tokens=self.flood.burst, now=self.loop.now)

    def _start(self, sock: Any, addr: Any) -> Connection:
        conn = super()._start(sock, addr)
        if not conn.closed and sock.pending():  # bytes that came with the handshake's last flight
            self._again(conn)
        return conn

    def readable(self, conn: Connection) -> None:
        """Read until TLS wants more from the network, at most READ_SIZE bytes, and handle what it completes."""
        sock, scratch = conn.sock, self._scratch
        got = 0
        conn.more = False
        while got < READ_SIZE:
            try:
                n = sock.recv_into(scratch[got:], READ_SIZE - got)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                n = 0
            if not n:
                if got:
                    break  # serve what came first; the end is read again on the next pass
                self.close(conn, "connection lost")
                return
            got += n
        if got:
            conn.parser.receive_data(scratch[:got])
        self.serve(conn)

    def serve(self, conn: Connection) -> None:
        """Handle up to SLICE events; when input runs dry but the SSL object holds bytes, read them next pass."""
        if conn.more and not (conn.paused or conn.throttled or conn.closing):
            self.readable(conn)
            return
        super().serve(conn)
        sock = conn.sock  # a TLSSocket: every connection of this transport is made by _Handshake._done
        if (not (conn.backlog or conn.closed or conn.closing or conn.paused or conn.throttled)
                and isinstance(sock, TLSSocket) and sock.pending()):
            self._again(conn)

    def _again(self, conn: Connection) -> None:
        conn.more = True
        conn.backlog = True
        self.loop.backlog.add(conn)
        self.loop.set_mask(conn)

    def _shut(self, sock: Any) -> None:
        """Send TLS ``close_notify`` if it goes at once, then shut down the TCP writing side; what the peer
        sends afterwards is drained as raw bytes (the SSL object is dropped). Raises OSError."""
        if not isinstance(sock, TLSSocket):
            return super()._shut(sock)
        try:
            sock.ssl.unwrap()
        except (OSError, ValueError):  # SSLWantReadError: close_notify is out, the peer's is not awaited
            pass
        sock.ssl.shutdown(socket.SHUT_WR)
        return None

    def shutdown(self) -> None:
        """Stop accepting and drop the handshakes in progress."""
        for handshake in list(self.handshakes):
            handshake.end("")
        super().shutdown()
