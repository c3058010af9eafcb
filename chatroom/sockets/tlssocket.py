"""A TLS socket as a non-blocking loop and :class:`~chatroom.sockets.outqueue.OutQueue` use a socket.

Shared by the server's TLS transport and the client, like the output queue:
``recv`` raises BlockingIOError while TLS waits for the network, and
``sendmsg`` writes buffers as TLS records without copying them first.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

__all__ = ["RECORD", "TLSSocket"]

#: Bytes handed to one ``SSL_write``: one TLS record, so a partial write is retried with the same bytes.
RECORD = 16 * 1024
_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class TLSSocket:
    """An ``ssl.SSLSocket`` as the loop and the output queue use a socket.

    ``recv(n)`` returns decrypted bytes (``b""`` at the end), raising
    BlockingIOError while TLS waits for the network; ``sendmsg(buffers)``
    writes the buffers as TLS records of at most :data:`RECORD` bytes
    (memoryview slices: nothing copied before encryption) and returns how
    many bytes were taken, BlockingIOError if none. A record interrupted by
    ``SSLWantWriteError`` is not counted: the queue still holds it and offers
    the same bytes first on the next call, as OpenSSL requires. Other TLS
    errors are ``ssl.SSLError`` (an OSError).
    """

    __slots__ = ("ssl",)

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.ssl = sock

    def fileno(self) -> int:
        """The underlying socket's descriptor, for the selector."""
        return self.ssl.fileno()

    def getsockname(self) -> Any:
        """The local address, as the underlying socket's ``getsockname()``."""
        return self.ssl.getsockname()

    def pending(self) -> int:
        """Decrypted bytes waiting inside the SSL object."""
        return self.ssl.pending()

    def recv(self, size: int) -> bytes:
        """Up to *size* decrypted bytes; ``b""`` at the end; BlockingIOError while TLS waits for the network."""
        try:
            return self.ssl.recv(size)
        except _WANT:
            raise BlockingIOError("TLS wants more bytes") from None
        except ssl.SSLZeroReturnError:
            return b""

    def recv_into(self, buffer: Any, size: int) -> int:
        """Like :meth:`recv`, into *buffer*; 0 at the end."""
        try:
            return self.ssl.recv_into(buffer, size)
        except _WANT:
            raise BlockingIOError("TLS wants more bytes") from None
        except ssl.SSLZeroReturnError:
            return 0

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

    def close(self) -> None:
        """Send ``close_notify`` if the socket takes it at once, and close."""
        try:
            self.ssl.unwrap()
        except (OSError, ValueError):
            pass
        self.ssl.close()

    def setblocking(self, flag: bool) -> None:
        self.ssl.setblocking(flag)

    def setsockopt(self, *args: Any) -> None:
        self.ssl.setsockopt(*args)
