"""Pieces of the client's network loop that stand alone.

* :class:`Console`: where the loop prints (``line`` for server lines and
  status, ``error`` for problems); :class:`chatroom.client.console.LineConsole`
  and :class:`chatroom.client.tui.TuiConsole` implement it.
* :func:`load_transfer`: the file-transfer component, if installed.
* :func:`ready_hint`: the line shown when the send folder has a new file.
* :class:`OutQueue` (through :mod:`chatroom.client.connection`, shared with the server):
  bytes waiting for the socket, sent with ``sendmsg``.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

from chatroom.client.connection import SEND_BUFFERS, OutQueue
from chatroom.wire.lines import sanitize

__all__ = ["LOST", "SEND_BUFFERS", "Console", "OutQueue", "load_transfer", "ready_hint"]

#: What the client says (and why its transfers end) when the connection to the server is lost.
LOST = "connection to server lost"


class Console(Protocol):
    """Where the loop prints. ``line`` for server lines and status, ``error`` for problems."""

    def line(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...


def load_transfer(settle: float | None = None) -> tuple[Any, Any] | None:
    """Return ``(TransferManager, SendFolderWatcher or None)`` from the transfer component, or None.

    None when ``chatroom.client.transfer`` is not installed; the watcher is None when
    ``chatroom.client.watch`` is not. *settle* (seconds, ``--settle``; None: the
    watcher's default, :data:`chatroom.client.watch.SETTLE`) is passed to the watcher. Any other import
    error propagates (a broken module must not be silently ignored).
    """
    try:
        from chatroom.client.transfer import TransferManager
    except ModuleNotFoundError as exc:
        if exc.name == "chatroom.client.transfer":
            return None
        raise
    try:
        from chatroom.client.watch import SendFolderWatcher
    except ModuleNotFoundError as exc:
        if exc.name != "chatroom.client.watch":
            raise
        return TransferManager, None
    if settle is None:
        return TransferManager, SendFolderWatcher
    return TransferManager, functools.partial(SendFolderWatcher, settle=settle)


def ready_hint(folder: str, name: str) -> str:
    """The line printed when the watcher finds a complete file: ``send/a.txt is ready: /sendfile a.txt``; a name
    with characters no typed line keeps (control characters: see :func:`chatroom.wire.lines.sanitize`) gets no
    command that could not work."""
    shown = sanitize(name)
    if shown != name:
        return f"{folder}/{shown} is ready, but its name has characters that cannot be typed: rename it to send it"
    plain = name and not any(c.isspace() or c in "\"'\\" for c in name)
    arg = name if plain else '"' + name.replace('"', '\\"') + '"'
    return f"{folder}/{name} is ready: /sendfile {arg}"
