"""Pieces of the client's network loop that stand alone.

* :class:`Console`: where the loop prints (``line`` for server lines and
  status, ``error`` for problems); :class:`chatroom.client_console.LineConsole`
  and :class:`chatroom.tui.TuiConsole` implement it.
* :func:`load_transfer`: the file-transfer component, if installed.
* :func:`ready_hint`: the line shown when the send folder has a new file.
* :class:`OutQueue`: bytes waiting for the socket, sent with ``sendmsg``
  without copying the caller's buffers.
"""

from __future__ import annotations

import itertools
import socket
from collections import deque
from typing import Any, Protocol

__all__ = ["SEND_BUFFERS", "Console", "OutQueue", "load_transfer", "ready_hint"]

#: Buffers handed to one ``sendmsg`` call.
SEND_BUFFERS = 64


class Console(Protocol):
    """Where the loop prints. ``line`` for server lines and status, ``error`` for problems."""

    def line(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...


def load_transfer() -> tuple[Any, Any] | None:
    """Return ``(TransferManager, SendFolderWatcher or None)`` from the transfer component, or None.

    None when ``chatroom.transfer`` is not installed; the watcher is None when
    ``chatroom.watch`` is not. Any other import error propagates (a broken
    module must not be silently ignored).
    """
    try:
        from chatroom.transfer import TransferManager
    except ModuleNotFoundError as exc:
        if exc.name == "chatroom.transfer":
            return None
        raise
    try:
        from chatroom.watch import SendFolderWatcher
    except ModuleNotFoundError as exc:
        if exc.name != "chatroom.watch":
            raise
        return TransferManager, None
    return TransferManager, SendFolderWatcher


def ready_hint(folder: str, name: str) -> str:
    """The line printed when the watcher finds a complete file: ``send/a.txt is ready: /sendfile a.txt``."""
    plain = name and not any(c.isspace() or c in "\"'\\" for c in name)
    arg = name if plain else '"' + name.replace('"', '\\"') + '"'
    return f"{folder}/{name} is ready: /sendfile {arg}"


class OutQueue:
    """Bytes waiting for the socket, kept as the caller's buffers (no copying of 1 MiB chunks).

    ``size`` is the number of bytes queued. :meth:`send_to` hands up to
    :data:`SEND_BUFFERS` buffers to one ``sendmsg`` call and drops what the
    kernel took; it raises what ``sendmsg`` raises (``BlockingIOError`` when
    the socket buffer is full).
    """

    __slots__ = ("_bufs", "size")

    def __init__(self) -> None:
        self._bufs: deque[memoryview] = deque()
        self.size = 0

    def append(self, data: bytes) -> None:
        """Queue *data* (``bytes`` are kept as they are; other buffers are copied once)."""
        if data:
            self._bufs.append(memoryview(data if isinstance(data, bytes) else bytes(data)))
            self.size += len(data)

    def send_to(self, sock: socket.socket) -> int:
        """One ``sendmsg`` of the queued buffers; returns the bytes sent and drops them.

        Raises what ``sendmsg`` raises (``BlockingIOError`` when the socket is full).
        """
        bufs = self._bufs
        n = sock.sendmsg(list(itertools.islice(bufs, SEND_BUFFERS)))
        self.size -= n
        left = n
        while left:
            head = bufs[0]
            if len(head) <= left:
                left -= len(head)
                bufs.popleft()
            else:
                bufs[0] = head[left:]
                left = 0
        return n
