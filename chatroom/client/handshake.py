"""The start of a connection: capabilities, file policy, name, login and the server password (:class:`Handshake`).

At start (:meth:`Handshake.start`) the client sends, pipelined, ``/caps binary`` and ``/caps resume``
(when file transfer is available; the answer to the second goes to ``on_resume``: an older server refuses
it, and transfers then cannot resume), ``/files ask`` or ``/files none`` (``--accept-files``; nothing for
``all``, the server's
default, so an old server sees today's handshake), ``/caps tags`` (when ``tags`` is set: its answer goes
to ``on_tags``, which turns on :mod:`chatroom.client.catchup`), ``/nick NAME`` and, with a password,
``/login NAME PASSWORD``. Their replies come in that order and are taken through
:class:`~chatroom.client.replies.Replies`; typed lines wait until every reply is in.

* ``caps`` / ``files``: an ``ERROR`` is shown, nothing else happens (a server
  without consent sends files without asking: the line says so).
* ``nick``: ``OK`` names the client (on a terminal: ``* you are NAME``). ``ERROR`` ends line mode with
  status 2 (``refused = "nick"``; the command line says what to do), or, interactive, says
  ``* the server refused the name NAME: type another name (or /quit)`` and makes the next typed line
  the new name (:attr:`Handshake.naming`; ``/login NICK PASSWORD`` there logs in instead, another
  ``/command`` is refused); when a login follows, the login decides instead (``/nick
  alice`` is refused for a registered nick, and ``/login`` takes it).
* ``pass``: a server started with ``--password-file`` answers the connection with one line,
  ``* This server needs a password: /pass PASSWORD``, and every other line with ``ERROR send /pass
  PASSWORD first``. When that is its first line (:meth:`Handshake.greeting`), the replies to the
  handshake already sent are ignored, ``/pass PASSWORD`` (``server_password``) is sent and the handshake
  again behind it. Without a server password, line mode prints the server's line on stderr and ends
  with status 2; on a terminal :attr:`Handshake.asking_password` is set and the next typed line is the
  password. A refused ``/pass`` is the same (the server disconnects after 3).
* ``login``: ``OK`` names the client (the server gave it the account's nick). ``ERROR`` (wrong
  password, rate limit...) ends line mode with status 2; on a terminal it is shown and the client goes
  on as a guest (asking for a name if the nick was refused too). The password is never printed.

Loop thread only. Outcomes leave through the callables given: ``changed()`` when :attr:`naming` or
:attr:`asking_password` changed (a UI redraws), ``end(status)`` to end the client, ``on_tags(ok)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from chatroom.client.io import Console
from chatroom.client.replies import Replies

__all__ = ["PASS_ASK", "SERVER_PASSWORD_ENV", "Handshake"]

#: How the first line of a server that needs the shared server password begins.
PASS_ASK = "* This server needs a password"
#: A first line that comes from another door of chatroom-server (or another server): the web port's HTTP,
#: an IRC numeric or IRC's ``ERROR`` (the server prints all three ports; only one speaks lines).
_OTHER_DOOR = re.compile(r"HTTP/\d|:\S+ \d{3} |ERROR :Closing Link")
#: The first line of a server's TLS port read in clear (chatroom.net.tls.CLEAR_ERROR; the client imports nothing
#: from the server).
_TLS_PORT = "ERROR this port speaks TLS"


def _wrong_port(first: str) -> str | None:
    """What the port whose *first* line this is speaks, and what to do, when it is not this client's (another
    door's port, or a TLS port reached without ``--tls``); None when it may be."""
    if first.startswith(_TLS_PORT):
        return "TLS: add --tls (or give --port the clear port)"
    if _OTHER_DOOR.match(first):
        door = "HTTP (the web page's port: open it in a browser)" if first.startswith("HTTP/") else "IRC"
        return (f"{door}, not chatroom's line protocol: give --port the port of the 'chatroom-server listening on' "
                "line")
    return None


#: The environment variable the server password may come from (``--server-password`` wins).
SERVER_PASSWORD_ENV = "CHATROOM_SERVER_PASSWORD"


class Handshake:
    """Name, login and server password of one client, across its connections (see the module docstring).

    *binary* asks for file frames and sends the *accept_files* policy; *tags* asks for message tags.
    """

    def __init__(self, replies: Replies, console: Console, *, name: str, interactive: bool,
                 password: str | None, server_password: str | None, binary: bool, accept_files: str, tags: bool,
                 changed: Callable[[], None], end: Callable[[int], None], on_tags: Callable[[bool], None],
                 on_resume: Callable[[bool], None] = lambda ok: None) -> None:
        self.replies = replies
        self.console = console
        self.name = name
        self.interactive = interactive
        self.password = password
        self.server_password = server_password
        self.binary = binary
        self.accept_files = accept_files
        self.tags = tags
        self._changed = changed
        self._end = end
        self._on_tags = on_tags
        self._on_resume = on_resume
        #: True while the server has refused the name and the next typed line is a new one.
        self.naming = False
        #: True while the server wants its password and the next typed line is it (a terminal only).
        self.asking_password = False
        #: Why the client ended with status 2: ``"nick"``, ``"login"``, ``"pass"`` or ``"port"`` (another door's).
        self.refused: str | None = None
        #: The server accepted a name on this connection.
        self.named = False
        #: ``* you are NAME`` was shown (once per client, not per connection).
        self.confirmed = False
        self._greeted = False

    # ---- a connection starts ------------------------------------------------------------

    def start(self) -> None:
        """A new connection: send the whole handshake."""
        self.named = False
        self._greeted = False
        self._send_handshake()

    def _send_handshake(self) -> None:
        ask = self.replies.ask
        if self.binary:
            ask("/caps binary", "caps", self._reply)
            ask("/caps resume", "resume", self._reply)
            if self.accept_files in ("ask", "none"):
                ask(f"/files {self.accept_files}", "files", self._reply)
        if self.tags:
            ask("/caps tags", "tags", self._reply)
        self._send_nick(self.name)
        if self.password:
            ask(f"/login {self.name} {self.password}", "login", self._reply)  # never echoed, never printed

    def _send_nick(self, name: str) -> None:
        self.name = name
        self.replies.ask(f"/nick {name}", "nick", self._reply)

    def greeting(self, text: str) -> bool:
        """Every server line goes here first: True if it is the first and asks for the server password, or
        comes from another door (HTTP, IRC: the client ends with status 2); then it was handled here."""
        if self._greeted:
            return False
        self._greeted = True
        wrong = _wrong_port(text)
        if wrong is not None:
            self.console.error(f"chatroom-client: this port speaks {wrong}")
            self._refuse("port")
            return True
        if not text.startswith(PASS_ASK):
            return False
        self.replies.forget()  # the handshake sent so far is refused before /pass
        if self.server_password:
            self._send_pass(self.server_password)
        elif self.interactive:
            self.console.line(text)
            self.asking_password = True
            self._changed()
        else:
            self.console.error(text)
            self.console.error(f"chatroom-client: give it with --server-password or ${SERVER_PASSWORD_ENV}")
            self._refuse("pass")
        return True

    def _send_pass(self, password: str) -> None:
        """``/pass PASSWORD`` (never printed), then the whole handshake again behind it."""
        self.asking_password = False
        self.server_password = password  # a reconnect gives it again
        self.replies.ask(f"/pass {password}", "pass", self._reply)
        self._send_handshake()

    # ---- typed lines ----------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """True once named on this connection with no name or login reply still due (tokens bound to an
        account are presented only then)."""
        return self.named and "nick" not in self.replies and "login" not in self.replies

    @property
    def wants_input(self) -> bool:
        """True while the next typed line is a name or the server password, not a line to send."""
        return self.naming or self.asking_password

    def typed(self, text: str) -> None:
        """A typed line while :attr:`wants_input`."""
        if self.asking_password:
            if text.strip():
                self._send_pass(text.strip())
                self._changed()
            else:
                self.console.error("a password is needed")
            return
        head, _, rest = text.strip().partition(" ")
        if head.lower() == "/quit":
            self._end(0)  # no name yet: nothing to say goodbye to
        elif head.lower() in ("/login", "/identify"):
            self._typed_login(rest.split())
        elif head.startswith("/") and not head.startswith("//"):
            self.console.error("type a name first (or /login NICK PASSWORD, or /quit)")
        elif text.strip():
            self.naming = False  # typed lines wait again until the server answers
            self._send_nick(text.strip())
            self._changed()
        else:
            self.console.error("a name is needed")

    def _typed_login(self, words: list[str]) -> None:
        """``/login NICK PASSWORD`` typed at the name prompt (as the server's refusal of a registered nick
        says): sent as a login, kept for reconnects like ``--password``; never printed."""
        if len(words) != 2:
            self.console.error("usage: /login NICK PASSWORD")
            return
        self.naming = False
        self.name, self.password = words
        self.replies.ask(f"/login {self.name} {self.password}", "login", self._reply)
        self._changed()

    def learn(self, reply: str) -> None:
        """A reply to a typed line: ``OK nick NAME`` and ``OK logged in as NAME`` give the name a
        reconnect asks for."""
        if reply.startswith(("OK nick ", "OK logged in as ")):
            self.name = reply.split()[-1]

    # ---- replies ----------------------------------------------------------------------------

    def _reply(self, what: str, text: str) -> None:
        ok = text.startswith("OK")
        if what == "tags":
            self._on_tags(ok)
        elif what == "resume":
            self._on_resume(ok)  # an older server says ERROR: nothing to show
        elif what == "pass" and not ok:
            self.replies.forget()  # the handshake behind the wrong /pass is refused too
            self.console.error(text)
            if not self.interactive:
                self._refuse("pass")
            else:
                self.asking_password = True
                self._changed()
        elif ok:
            if what in ("nick", "login"):
                self._named_now()  # the handshake's own OK replies are not shown
        elif what == "caps":
            self.console.line(text)
        elif what == "files":
            self.console.error(f"{text} (this server cannot ask before sending files: --accept-files "
                               f"{self.accept_files} is not honoured)")
        elif not (what == "nick" and "login" in self.replies):  # else the login decides (it takes a registered nick)
            self._refused_name(what, text)
        self._confirm()

    def _named_now(self) -> None:
        self.named = True
        if self.naming:
            self.naming = False
            self._changed()

    def _refused_name(self, what: str, text: str) -> None:
        self.console.error(text)
        if not self.interactive:
            self._refuse(what)
        elif what == "login" and self.named:
            self.console.line(f"* not logged in; you go on as {self.name}, without an account")
        else:
            self.console.line(f"* the server refused the name {self.name}: type another name (or /quit)")
            self.naming = True
            self._changed()

    def _refuse(self, what: str) -> None:
        self.refused = what
        self._end(2)

    def _confirm(self) -> None:
        """``* you are NAME`` once named (a terminal), when no name reply is still due."""
        if self.named and not self.confirmed and "nick" not in self.replies and "login" not in self.replies:
            self.confirmed = True
            if self.interactive:
                self.console.line(f"* you are {self.name}")
