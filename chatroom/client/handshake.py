"""The start of a connection for :class:`chatroom.client.loop.ClientLoop`: capabilities, file policy,
name and login.

A mixin: these methods run on the client loop's thread. At start the loop
sends, pipelined, ``/caps binary`` (when the transfer component is
installed), ``/files ask`` or ``/files none`` (``--accept-files``; nothing
for ``all``, the server's default, so an old server sees today's handshake),
``/nick NAME`` and, with a password, ``/login NAME PASSWORD``. Their replies
come in that order and are consumed here (``_pending`` lists what is still
expected); typed lines wait until every reply is in.

* ``caps`` / ``files``: an ``ERROR`` is shown, nothing else happens (a server
  without consent sends files without asking: the line says so).
* ``nick``: ``OK`` names the client. ``ERROR`` ends line mode with status 2,
  or, interactive, makes the next typed line the new name; when a login
  follows, the login decides instead (``/nick alice`` is refused for a
  registered nick, and ``/login`` takes it).
* ``login``: ``OK`` names the client (the server gave it the account's nick).
  ``ERROR`` (wrong password, rate limit...) ends line mode with status 2; on a
  terminal it is shown and the client goes on as a guest (asking for a name if
  the nick was refused too). The password is never printed.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["HandshakeSide"]


class HandshakeSide:
    """Handshake steps of the client loop (see the module docstring)."""

    name: str
    interactive: bool
    naming: bool
    console: Any
    password: str | None
    accept_files: str
    _pending: deque[str]
    _named: bool
    _status: int | None
    _tm: Any

    def _send(self, text: str) -> None:  # provided by ClientLoop
        raise NotImplementedError

    def _changed(self) -> None:  # provided by ClientLoop
        raise NotImplementedError

    def _start_handshake(self) -> None:
        if self._tm is not None:
            self._send("/caps binary")
            self._pending.append("caps")
            if self.accept_files in ("ask", "none"):
                self._send(f"/files {self.accept_files}")
                self._pending.append("files")
        self._send_nick(self.name)
        if self.password:
            self._send(f"/login {self.name} {self.password}")  # never echoed, never printed
            self._pending.append("login")

    def _send_nick(self, name: str) -> None:
        self.name = name
        self._send(f"/nick {name}")
        self._pending.append("nick")

    def _named_now(self) -> None:
        self._named = True
        if self.naming:
            self.naming = False
            self._changed()

    def _handshake_reply(self, what: str, text: str) -> None:
        if text.startswith("OK"):
            if what in ("nick", "login"):
                self._named_now()
            return  # the handshake's own OK replies are not shown
        if what == "caps":
            self.console.line(text)
            return
        if what == "files":
            self.console.error(f"{text} (this server cannot ask before sending files: --accept-files "
                               f"{self.accept_files} is not honoured)")
            return
        if what == "nick" and "login" in self._pending:
            return  # the login decides (it takes a registered nick)
        self.console.error(text)
        if not self.interactive:
            self._status = 2
            return
        if what == "login" and self._named:
            return  # go on as a guest under the nick the server accepted
        self.naming = True
        self._changed()
