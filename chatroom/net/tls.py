"""TLS in front of a door: the handshake in the loop and the refusal of clear text, held by the door's transport.

A :class:`TLSGate` is the ``tls=`` option of any door's transport (:class:`~chatroom.net.tcp.LineTransport`,
:class:`~chatroom.net.web.WebTransport`, :class:`~chatroom.net.irctransport.IrcTransport`); a transport without
one accepts in clear. The transport counts each accepted socket against the per-address budget and hands it to
its gate (:meth:`TLSGate.admit`), which drives the non-blocking handshake in the one loop (``do_handshake()``,
the selector mask switched on ``SSLWantReadError``/``SSLWantWriteError``), bounded by the gate's
``handshake_timeout`` seconds (default :data:`HANDSHAKE_TIMEOUT`). The first byte is peeked: a client that does
not start with a TLS handshake record (``0x16``) gets the door's clear-text answer (*answer*: the line door's is
:data:`CLEAR_ERROR`, the IRC door's an IRC ``ERROR`` message, the web door's an HTTP 400) and is drained until it
closes. A finished handshake goes back to the transport as a :class:`~chatroom.sockets.tlssocket.TLSSocket`
(:meth:`HandshakeDoor.start`), whose ``recv``, ``sendmsg`` and ``shutdown`` are all that differs afterwards; a
failed one gives its place in the budget back (:meth:`HandshakeDoor.count_out`).

Certificates: :mod:`chatroom.net.certs` (re-exported here). Loop thread only.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
from typing import Protocol

from chatroom.net.certs import (
    CERT_FILE,
    KEY_FILE,
    ensure_certificate,
    fingerprint,
    load_tls,
    server_context,
)
from chatroom.net.connection import Address, Connection
from chatroom.net.loop import Loop
from chatroom.net.logs import CONN
from chatroom.sockets.tlssocket import RECORD, TLSSocket
from chatroom.wire.lines import encode_line

__all__ = ["CERT_FILE", "CLEAR_ERROR", "HANDSHAKE_TIMEOUT", "KEY_FILE", "RECORD", "ClearTextAnswer", "HandshakeDoor",
           "TLSGate", "TLSSocket", "clear_error", "ensure_certificate", "fingerprint", "load_tls", "server_context"]

log = logging.getLogger("chatroom.server")

#: Seconds a client has from connecting to finishing the TLS handshake.
HANDSHAKE_TIMEOUT = 10.0
#: The line a clear-text client on a TLS port gets before it is closed.
CLEAR_ERROR = "ERROR this port speaks TLS; use chatroom-client --tls or openssl s_client"
#: Bytes read (and discarded) at once from a refused clear-text client.
_DRAIN = 64 * 1024


class ClearTextAnswer(Protocol):
    """What a door tells a client on its TLS port, in clear, before closing it: ``answer(spoke)`` returns the
    bytes (``b""``: nothing); *spoke* is true when the client sent clear text, false when it sent nothing
    until the handshake timeout. A plain function will do (:func:`clear_error`,
    :func:`chatroom.net.web.https_only`, :func:`chatroom.net.irctransport.irc_tls_only`)."""

    def __call__(self, spoke: bool) -> bytes: ...


def clear_error(spoke: bool) -> bytes:
    """The line door's answer: :data:`CLEAR_ERROR` either way (a person on ``nc`` waiting for a greeting
    learns why)."""
    return encode_line(CLEAR_ERROR)


class HandshakeDoor(Protocol):
    """What a gate needs of the transport that holds it: its ``loop``; ``start(sock, addr)``: a finished
    handshake becomes a connection; ``count_out(host)``: a failed one gives its place in *host*'s budget back."""

    @property
    def loop(self) -> Loop: ...

    def start(self, sock: TLSSocket, addr: Address) -> object: ...

    def count_out(self, host: str) -> None: ...


# -- the handshake ---------------------------------------------------------------------------
class _Handshake:
    """One accepted socket until its TLS handshake is done (then a connection), fails or times out."""

    __slots__ = ("gate", "door", "loop", "sock", "addr", "host", "tls", "mask", "timer", "refused")

    def __init__(self, gate: TLSGate, door: HandshakeDoor, sock: socket.socket, addr: Address) -> None:
        self.gate = gate
        self.door = door
        self.loop = door.loop
        self.sock = sock
        self.addr = addr
        self.host = str(addr[0])
        self.tls: ssl.SSLSocket | None = None
        self.refused = False  # told the door's answer; draining until the peer closes
        self.mask = selectors.EVENT_READ
        self.loop.selector.register(sock, self.mask, self.step)
        self.timer = self.loop.call_later(gate.handshake_timeout, self.expire)

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
            first = self.sock.recv(1, socket.MSG_PEEK) if not self.refused else self.sock.recv(_DRAIN)
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
            self.loop.selector.unregister(self.sock)
            self.mask = 0
            try:
                self.tls = self.gate.context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
            except (OSError, ValueError) as exc:
                self.end(f"TLS setup failed: {exc}")

    def _refuse(self, reason: str) -> None:
        """Tell a clear-text client the door's answer in clear text, then drain what it sends until it closes (no
        reset)."""
        log.info("refusing %s: %s", self.host, reason, extra=CONN)
        self.refused = True
        try:
            self.sock.recv(_DRAIN)
            self.sock.send(self.gate.answer(True))
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.end("")

    def _watch(self, mask: int) -> None:
        selector, tls = self.loop.selector, self.tls
        assert tls is not None  # watched for the handshake only once the socket is wrapped (step)
        if not self.mask:
            selector.register(tls, mask, self.step)
        elif mask != self.mask:
            selector.modify(tls, mask, self.step)
        self.mask = mask

    def expire(self) -> None:
        """The handshake took too long; a client that sent nothing may be a person on ``nc``: tell it."""
        if self.gate.handshakes.get(self) is None:
            return
        if self.tls is None and not self.refused:
            try:
                self.sock.send(self.gate.answer(False))
            except OSError:
                pass
        self.end("" if self.refused else f"TLS handshake timeout ({self.gate.handshake_timeout:g} s)")

    def _unregister(self) -> None:
        if self.mask:
            try:
                self.loop.selector.unregister(self.tls or self.sock)
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
        if self.gate.handshakes.pop(self, None) is not None:
            self.door.count_out(self.host)

    def _done(self) -> None:
        assert self.tls is not None
        self.timer.cancel()
        self._unregister()
        self.gate.handshakes.pop(self, None)
        self.door.start(TLSSocket(self.tls), self.addr)


# -- the gate ----------------------------------------------------------------------------------
class TLSGate:
    """TLS in front of one door's transport (see the module docstring): the server's ``ssl.SSLContext``
    *context*, *handshake_timeout* seconds from accept to the end of the handshake, the door's *answer* to clear
    text (:class:`ClearTextAnswer`; default :func:`clear_error`). ``handshakes`` holds the sockets still in their
    handshake. One gate per transport: it holds that door's handshakes. Loop thread only."""

    def __init__(self, context: ssl.SSLContext, *, handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 answer: ClearTextAnswer = clear_error) -> None:
        self.context = context
        self.handshake_timeout = handshake_timeout
        self.answer = answer
        self.handshakes: dict[_Handshake, bool] = {}

    def admit(self, door: HandshakeDoor, sock: socket.socket, addr: Address) -> None:
        """*sock* (accepted from *addr*, non-blocking, counted against its address's budget) begins its
        handshake; *door* gets it back as a connection, or its place in the budget."""
        self.handshakes[_Handshake(self, door, sock, addr)] = True

    @staticmethod
    def held_back(conn: Connection) -> None:
        """After a slice of *conn*'s events (or its start): if its SSL object holds decrypted bytes, which
        ``select`` cannot see, and nothing else brings it back (backlogged, paused, throttled, closing), the
        next pass reads them (``conn.more``; :meth:`~chatroom.net.tcp.LineTransport.serve` does)."""
        if conn.backlog or conn.closed or conn.closing or conn.paused or conn.throttled:
            return
        sock = conn.sock
        if isinstance(sock, TLSSocket) and sock.pending():
            conn.more = True
            conn.backlog = True
            conn.loop.backlog.add(conn)
            conn.loop.set_mask(conn)

    def shutdown(self) -> None:
        """Drop the handshakes in progress (their places in the budget given back)."""
        for handshake in list(self.handshakes):
            handshake.end("")
