"""A TLS socket as a non-blocking loop and :class:`~chatroom.sockets.outqueue.OutQueue` use a socket.

Shared by the server's doors and the client, like the output queue: what a
connection over TLS does differently from one in clear is its socket's, so
neither end needs a connection class of its own for TLS. ``recv`` reads
until TLS wants the network (decrypted bytes can sit inside the SSL object,
where ``select`` does not see them) and raises BlockingIOError while
nothing came; ``sendmsg`` writes buffers as TLS records without copying
them first; ``shutdown`` sends ``close_notify`` before the TCP FIN.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from typing import Any

__all__ = ["RECORD", "TLSSocket"]

#: Bytes handed to one ``SSL_write``: one TLS record, so a partial write is retried with the same bytes.
RECORD = 16 * 1024
#: What a non-blocking read or write raises while TLS (or, after ``unwrap``, the bare socket) waits.
_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError)


class TLSSocket:
    """An ``ssl.SSLSocket`` as the loop and the output queue use a socket.

    ``recv(n)`` returns up to *n* decrypted bytes, reading record after
    record until TLS wants the network (``b""`` at the end; BlockingIOError
    while nothing came), so bytes left in the SSL object (:meth:`pending`)
    mean *n* were read; ``sendmsg(buffers)`` writes the buffers as TLS
    records of at most :data:`RECORD` bytes (memoryview slices: nothing
    copied before encryption) and returns how many bytes were taken,
    BlockingIOError if none. A record interrupted by ``SSLWantWriteError``
    is not counted: the queue still holds it and offers the same bytes first
    on the next call, as OpenSSL requires. Other TLS errors are
    ``ssl.SSLError`` (an OSError). The thread that owns the socket only.
    """

    __slots__ = ("ssl",)

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.ssl = sock

    def fileno(self) -> int:
        """The underlying socket's descriptor, for the selector."""
        return self.ssl.fileno()

    def getsockname(self) -> Any:
        """The local address, as the underlying socket's ``getsockname()`` (``(host, port, ...)``)."""
        return self.ssl.getsockname()

    def pending(self) -> int:
        """Decrypted bytes waiting inside the SSL object."""
        return self.ssl.pending()

    def recv(self, size: int) -> bytes:
        """Up to *size* decrypted bytes, reading until TLS wants the network; ``b""`` at the end (an end or an
        error after some bytes is reported by the next call); BlockingIOError while nothing came."""
        chunks: list[bytes] = []
        got = 0
        while got < size:
            try:
                data = self.ssl.recv(size - got)
            except _WANT:
                if chunks:
                    break
                raise BlockingIOError("TLS wants more bytes") from None
            except ssl.SSLZeroReturnError:
                data = b""
            except OSError:
                if chunks:
                    break  # what came first is served; the error comes again, or the end, on the next call
                raise
            if not data:
                break
            chunks.append(data)
            got += len(data)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def recv_into(self, buffer: Any, size: int) -> int:
        """Like :meth:`recv`, decrypting into *buffer* (a writable buffer of at least *size* bytes); 0 at the end."""
        got = 0
        with memoryview(buffer) as view:
            while got < size:
                try:
                    n = self.ssl.recv_into(view[got:size], size - got)
                except _WANT:
                    if got:
                        break
                    raise BlockingIOError("TLS wants more bytes") from None
                except ssl.SSLZeroReturnError:
                    n = 0
                except OSError:
                    if got:
                        break
                    raise
                if not n:
                    break
                got += n
        return got

    def send(self, data: bytes) -> int:
        """Write *data* (one record's worth at most is taken); the bytes taken, BlockingIOError if none."""
        return self.sendmsg((data,))

    def sendmsg(self, buffers: Iterable[Any]) -> int:
        """Write *buffers* as TLS records; the bytes taken (see the class docstring), BlockingIOError if none."""
        sent = 0
        write = self.ssl.send
        for buf in buffers:
            with memoryview(buf) as view:
                size = len(view)
                offset = 0
                while offset < size:
                    try:
                        n = write(view[offset:offset + RECORD])
                    except _WANT:
                        if sent:
                            return sent
                        raise BlockingIOError("TLS output is full") from None
                    offset += n
                    sent += n
        return sent

    def shutdown(self, how: int) -> None:
        """Send ``close_notify`` if it goes at once (the peer's is not awaited), then shut down the TCP side
        *how* (``socket.SHUT_WR``: a FIN after it); what the peer sends afterwards reads as raw bytes. Raises
        OSError."""
        try:
            self.ssl.unwrap()
        except (OSError, ValueError):  # SSLWantReadError: close_notify is out, the peer's is not awaited
            pass
        self.ssl.shutdown(how)

    def close(self) -> None:
        """Send ``close_notify`` if the socket takes it at once, and close."""
        try:
            self.ssl.unwrap()
        except (OSError, ValueError):
            pass
        self.ssl.close()

    def setblocking(self, flag: bool) -> None:
        self.ssl.setblocking(flag)

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.ssl.setsockopt(level, option, value)


#: A connected socket as the loop and the output queue use it: plain TCP, or TLS.
Socket = socket.socket | TLSSocket
