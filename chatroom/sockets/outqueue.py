"""An output queue for one non-blocking socket: bytes waiting to be sent, counted as they are queued.

Used by the server for every connection and by the client for its one
connection. Imports nothing of chatroom, so both sides share it.

Large buffers (a fanned-out batch of chat lines, a relayed file chunk) are
kept by reference, never copied: one chunk queued to 400 receivers is one
buffer in memory. Small writes (replies, single lines) are coalesced into a
private ``bytearray`` tail so a backlog of many short lines costs little more
than its bytes. :meth:`OutQueue.send_to` hands up to :data:`SEND_BUFFERS`
buffers to one ``sendmsg`` call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

__all__ = ["COALESCE", "SEND_BUFFERS", "OutQueue", "Sender"]

#: Buffers handed to one ``sendmsg`` call.
SEND_BUFFERS = 64
#: Writes shorter than this (bytes) are copied into the queue's tail instead of referenced.
COALESCE = 4096
_TAIL_MAX = 64 * 1024


class Sender(Protocol):
    """What :meth:`OutQueue.send_to` writes to: a ``socket.socket``, or a TLS socket of this package
    (:class:`chatroom.sockets.tlssocket.TLSSocket`) with the same ``sendmsg(buffers) -> bytes sent``."""

    def sendmsg(self, buffers: Iterable[bytes | bytearray | memoryview], /) -> int: ...


class OutQueue:
    """Bytes waiting for a socket; ``size`` is the number of bytes queued (``int``).

    The caller must not mutate a ``bytes``-like object after appending it
    (``bytes`` and ``memoryview`` of immutable data are kept as they are;
    a ``bytearray`` is copied). Not thread-safe: one thread owns it.
    """

    __slots__ = ("_bufs", "size")

    def __init__(self) -> None:
        self._bufs: list[bytes | bytearray | memoryview] = []
        self.size = 0

    def __bool__(self) -> bool:
        return self.size > 0

    def __len__(self) -> int:
        return self.size

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Queue *data*; small pieces are coalesced, large ones referenced (see the module docstring)."""
        n = len(data)
        if not n:
            return
        self.size += n
        bufs = self._bufs
        if n < COALESCE:
            if bufs:
                tail = bufs[-1]
                if tail.__class__ is bytearray and len(tail) < _TAIL_MAX:
                    tail += data
                    return
                bufs.append(bytearray(data))  # a tail to coalesce the next small pieces into
            else:  # an empty queue keeps the (immutable) buffer itself: no copy per recipient
                bufs.append(data if data.__class__ is bytes else bytes(data))
        elif data.__class__ is bytearray:
            bufs.append(bytes(data))
        else:
            bufs.append(data)

    def clear(self) -> None:
        """Drop everything queued (the connection is gone)."""
        self._bufs = []
        self.size = 0

    def send_to(self, sock: Sender, limit: int = 0) -> int:
        """One ``sendmsg`` of the queued buffers (at most about *limit* bytes when *limit* > 0:
        a coalesced tail of up to 64 KiB is sent whole); returns the bytes sent and drops them.

        Raises what ``sendmsg`` raises (``BlockingIOError`` when the socket is full,
        ``OSError`` when the peer is gone).
        """
        bufs = self._bufs
        if not bufs:
            return 0
        if len(bufs) == 1 and (not limit or len(bufs[0]) <= limit):  # hot path: one buffer, a pass's fan-out
            head = bufs[0]
            n = sock.sendmsg(bufs)
            self.size -= n
            if n == len(head):
                bufs.clear()
            elif head.__class__ is bytearray:  # the coalesced tail: ours, resized in place
                del head[:n]
            else:
                bufs[0] = memoryview(head)[n:]
            return n
        batch = bufs[:SEND_BUFFERS]
        if limit:
            total = 0
            for i, buf in enumerate(batch):
                total += len(buf)
                if total >= limit:
                    batch = batch[: i + 1]
                    if total > limit and buf.__class__ is not bytearray:  # never export the tail: it is resized
                        batch[i] = memoryview(buf)[: len(buf) - (total - limit)]
                    break
        n = sock.sendmsg(batch)
        del batch  # drop any view before the tail is resized below
        self.size -= n
        left = n
        i = 0
        while left:
            head = bufs[i]
            size = len(head)
            if size <= left:
                left -= size
                i += 1
            else:
                if isinstance(head, bytearray):  # the coalesced tail: ours, resized in place
                    del head[:left]
                else:
                    bufs[i] = memoryview(head)[left:]
                left = 0
        if i:
            del bufs[:i]
        return n
