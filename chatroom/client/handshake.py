"""The start of a connection for :class:`chatroom.client.loop.ClientLoop`: capabilities, file policy,
name and login.

A mixin: these methods run on the client loop's thread. At start the loop
sends, pipelined, ``/caps binary`` (when the transfer component is
installed), ``/files ask`` or ``/files none`` (``--accept-files``; nothing
for ``all``, the server's default, so an old server sees today's handshake),
``/caps tags`` (when ``tags`` is set: its reply turns on :mod:`chatroom.client.catchup`),
``/nick NAME`` and, with a password, ``/login NAME PASSWORD``. Their replies
come in that order and are consumed here (``_pending`` lists what is still
expected); typed lines wait until every reply is in.

* ``caps`` / ``files``: an ``ERROR`` is shown, nothing else happens (a server
  without consent sends files without asking: the line says so).
* ``nick``: ``OK`` names the client (on a terminal: ``* you are NAME``). ``ERROR`` ends line mode with
  status 2 (``refused = "nick"``; the command line says what to do), or, interactive, says
  ``* the server refused the name NAME: type another name (or /quit)`` and makes the next typed line the new name; when a login
  follows, the login decides instead (``/nick alice`` is refused for a
  registered nick, and ``/login`` takes it).
* ``pass``: a server started with ``--password-file`` answers the connection with one line,
  ``* This server needs a password: /pass PASSWORD``, and every other line with ``ERROR send /pass
  PASSWORD first``. When that is its first line, the replies to the handshake already sent are
  ignored, ``/pass PASSWORD`` (``server_password``) is sent and the handshake again behind it. Without
  a server password, line mode prints the server's line on stderr and ends with status 2; on a terminal
  :attr:`asking_password` is set and the next typed line is the password. A refused ``/pass`` is
  the same (the server disconnects after 3).
* ``login``: ``OK`` names the client (the server gave it the account's nick).
  ``ERROR`` (wrong password, rate limit...) ends line mode with status 2; on a
  terminal it is shown and the client goes on as a guest (asking for a name if
  the nick was refused too). The password is never printed.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

__all__ = ["PASS_ASK", "SERVER_PASSWORD_ENV", "HandshakeSide"]

#: How the first line of a server that needs the shared server password begins.
PASS_ASK = "* This server needs a password"
#: The environment variable the server password may come from (``--server-password`` wins).
SERVER_PASSWORD_ENV = "CHATROOM_SERVER_PASSWORD"


class HandshakeSide:
    """Handshake steps of the client loop (see the module docstring)."""

    name: str
    interactive: bool
    naming: bool
    console: Any
    password: str | None
    server_password: str | None
    tags: bool
    refused: str | None
    #: True while the server wants its password and the next typed line is it (a terminal only).
    asking_password: bool
    accept_files: str
    _stale: int  # replies still to come for lines the server refused before /pass: ignored
    _pending: deque[str]
    _named: bool
    _status: int | None
    _tm: Any
    _confirmed: bool  # "* you are NAME" was shown

    def _send(self, text: str) -> None:  # provided by ClientLoop
        raise NotImplementedError

    def _changed(self) -> None:  # provided by ClientLoop
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by RoomSide (type-only: no stub shadows it)
        def _after_reply(self) -> None: ...

    def _start_handshake(self) -> None:
        if self._tm is not None:
            self._send("/caps binary")
            self._pending.append("caps")
            if self.accept_files in ("ask", "none"):
                self._send(f"/files {self.accept_files}")
                self._pending.append("files")
        if self.tags:
            self._send("/caps tags")
            self._pending.append("tags")
        self._send_nick(self.name)
        if self.password:
            self._send(f"/login {self.name} {self.password}")  # never echoed, never printed
            self._pending.append("login")

    def _asked_for_password(self, text: str) -> bool:
        """*text* is the server's first line: True if it asks for the server password (then handled here)."""
        if not text.startswith(PASS_ASK):
            return False
        self._stale += len(self._pending)  # the handshake sent so far is refused before /pass
        self._pending.clear()
        if self.server_password:
            self._send_pass(self.server_password)
        elif self.interactive:
            self.console.line(text)
            self.asking_password = True
            self._changed()
        else:
            self.console.error(text)
            self.console.error(f"chatroom-client: give it with --server-password or ${SERVER_PASSWORD_ENV}")
            self._status = 2
            self.refused = "pass"
        return True

    def _send_pass(self, password: str) -> None:
        """``/pass PASSWORD`` (never printed), then the whole handshake again behind it."""
        self.asking_password = False
        self.server_password = password  # a reconnect gives it again
        self._send(f"/pass {password}")
        self._pending.append("pass")
        self._start_handshake()

    def _typed_password(self, text: str) -> None:
        if text.strip():
            self._send_pass(text.strip())
            self._changed()
        else:
            self.console.error("a password is needed")

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
        if what == "pass" and not text.startswith("OK"):
            self._stale += len(self._pending)  # the handshake behind the wrong /pass is refused too
            self._pending.clear()
            self.console.error(text)
            if not self.interactive:
                self._status = 2
                self.refused = "pass"
            else:
                self.asking_password = True
                self._changed()
            return
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
            self.refused = what
            return
        if what == "login" and self._named:
            self.console.line(f"* not logged in; you go on as {self.name}, without an account")
            return  # go on as a guest under the nick the server accepted
        self.console.line(f"* the server refused the name {self.name}: type another name (or /quit)")
        self.naming = True
        self._changed()

    def _after_handshake_reply(self) -> None:
        """After each consumed handshake reply: ``* you are NAME`` once named (a terminal), then the next
        step of :mod:`chatroom.client.catchup`."""
        if self._named and not self._confirmed and not any(p in ("nick", "login") for p in self._pending):
            self._confirmed = True
            if self.interactive:
                self.console.line(f"* you are {self.name}")
        self._after_reply()
