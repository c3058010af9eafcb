"""Test helpers for the IRC door: start the real ``chatroom-server --irc-port 0`` and speak raw IRC over TCP.

:func:`start_irc` starts a server (through the ``server_factory`` fixture of conftest.py) and reads the
``chatroom-server IRC on HOST:PORT`` line it prints; :class:`IrcClient` is a bare socket that sends lines and
waits for messages by command, with deadlines, parsing what it reads with the project's codec.
"""

from __future__ import annotations

import socket
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

from chatroom.wire.irc import IrcParser, Message, TooLong

DEADLINE = 10.0


def start_irc(server_factory: Any, *args: str) -> Any:
    """A running server with an IRC door; ``server.irc_port`` is the port it printed, ``server.web_url`` the
    web listener's URL (None with ``--web-port off``). Flood control is off (``--flood-rate 0``): these tests
    send their set-up in bursts, as IRC clients do on connecting."""
    server = server_factory("--irc-port", "0", "--irc-server-name", "irc.test", "--flood-rate", "0", *args)
    server.web_url = None
    for _ in range(20):
        line = server.proc.stdout.readline()
        if line.startswith("chatroom-server web "):
            server.web_url = line.split()[2].rstrip("/")
        if line.startswith("chatroom-server IRC on "):
            server.irc_port = int(line.strip().rpartition(":")[2])
            return server
    raise AssertionError("the server printed no IRC address")


def start_with_plugin(server_factory: Any, tmp_path: Path, name: str, source: str) -> Any:
    """:func:`start_irc` with the plugin *name* (its *source*, dedented, as ``NAME.py``) in a plugin folder."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return start_irc(server_factory, "--plugin-dir", str(folder))


def operator_and_other(server: Any, room: str, *caps: str) -> tuple[IrcClient, IrcClient]:
    """Two registered IRC clients of *server* (both with the capabilities *caps*): ``carol``, the first member of
    the new, unowned *room*, who operates it, and ``dave``, in no room."""
    carol, dave = IrcClient(server.irc_port), IrcClient(server.irc_port)
    carol.register("carol", *caps)
    dave.register("dave", *caps)
    carol.send(f"JOIN {room}")
    carol.expect("366")
    return carol, dave


class IrcClient:
    """One IRC connection: :meth:`send` a line, :meth:`expect` a message by command (and a test)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=DEADLINE)
        self.parser = IrcParser(max_line=8192, max_tags=8192)
        self.seen: list[Message] = []  # every message received, in order

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def next(self, timeout: float = DEADLINE) -> Message:
        """The next message from the server (AssertionError after *timeout* s or at end of stream)."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.parser.next_event()
            if isinstance(event, Message):
                self.seen.append(event)
                return event
            assert not isinstance(event, TooLong), "the server sent an over-long line"
            left = deadline - time.monotonic()
            assert left > 0, "no message from the server in time"
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            self.parser.receive_data(data)

    def expect(self, command: str, test: Callable[[Message], bool] = lambda m: True,
               timeout: float = DEADLINE) -> Message:
        """Skip messages until one with *command* that passes *test*; return it."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.next(max(0.01, deadline - time.monotonic()))
            if msg.command == command and test(msg):
                return msg

    def until(self, command: str, test: Callable[[Message], bool] = lambda m: True) -> list[Message]:
        """Every message up to and including the first with *command* passing *test*."""
        out = []
        while True:
            msg = self.next()
            out.append(msg)
            if msg.command == command and test(msg):
                return out

    def sync(self, token: str = "sync") -> list[Message]:
        """PING the server and return every message received before its PONG (all that was queued)."""
        self.send(f"PING {token}")
        return self.until("PONG", lambda m: m.params[-1] == token)[:-1]

    def register(self, nick: str, *caps: str, user: str = "u", password: str | None = None) -> list[Message]:
        """CAP LS / REQ caps, PASS, NICK, USER, CAP END; returns the messages up to the end of the welcome."""
        if caps:
            self.send("CAP LS 302")
        if password:
            self.send(f"PASS {password}")
        self.send(f"NICK {nick}")
        self.send(f"USER {user} 0 * :Real {nick}")
        if caps:
            self.expect("CAP", lambda m: m.params[1] == "LS")
            self.send("CAP REQ :" + " ".join(caps))
            self.expect("CAP", lambda m: m.params[1] == "ACK")
            self.send("CAP END")
        return self.until("422")

    def close(self) -> None:
        self.sock.close()
