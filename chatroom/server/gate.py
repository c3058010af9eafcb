"""The shared server password (``--password-file``): who gave it, who still must.

A connection on a door without a handshake of its own (the line protocol, the
WebSocket) is *held* at :meth:`PasswordGate.hold` until ``/pass PASSWORD``;
the IRC door checks ``PASS`` itself with :meth:`PasswordGate.check`. The
password is kept only as its SHA-256 digest and compared in constant time.
Loop thread only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

__all__ = ["PASS_ASK", "PASS_TRIES", "PasswordGate"]

log = logging.getLogger("chatroom.server")

#: With a server password: the one line a new connection gets, and wrong passwords before it is disconnected.
PASS_ASK = "* This server needs a password: /pass PASSWORD"
PASS_TRIES = 3


class PasswordGate:
    """The server password *password* (None: no gate) of *server* (``loop``, ``dispatcher``, ``on_connect``,
    ``close_client``); ``held`` maps the id of each connection still waiting to its wrong tries."""

    def __init__(self, server: Any, password: str | None) -> None:
        self.server = server
        self.digest = hashlib.sha256(password.encode()).digest() if password else None
        self.held: dict[int, int] = {}

    @property
    def needed(self) -> bool:
        """True if connections must give the password first."""
        return self.digest is not None

    def check(self, given: str) -> bool:
        """Is *given* the password (compared in constant time; True when there is none)?"""
        if self.digest is None:
            return True
        return hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(), self.digest)

    def hold(self, conn: Any) -> None:
        """Hold *conn* until it gives the password: it is told :data:`PASS_ASK`."""
        self.held[conn.id] = 0
        self.server.loop.send_line(conn, PASS_ASK)

    def line(self, conn: Any, text: str) -> float:
        """A line from a held *conn*: only ``/pass PASSWORD`` (``OK pass``, then the server's ``on_connect``)
        and ``/quit`` act, the rest is ``ERROR send /pass PASSWORD first``; the :data:`PASS_TRIES`-th wrong
        one disconnects. Returns the flood cost."""
        server = self.server
        word, _, given = text.partition(" ")
        if word.lower() == "/quit":  # the built-in: OK, then disconnect
            return float(server.dispatcher.handle_line(conn, text))
        if word.lower() != "/pass":
            server.loop.send_line(conn, "ERROR send /pass PASSWORD first")
        elif self.check(given):
            del self.held[conn.id]
            server.loop.send_line(conn, "OK pass")
            server.on_connect(conn, passed=True)
        else:
            failures = self.held[conn.id] = self.held[conn.id] + 1
            log.warning("%s from %s: wrong server password (%d of %d)", conn.nick, conn.host, failures,  # never it
                        PASS_TRIES, extra={"category": "CONNECTION"})
            server.loop.send_line(conn, "ERROR wrong password")
            if failures >= PASS_TRIES:
                server.close_client(conn, "wrong server password", flush=True)
        return 1.0
