"""The client's own commands, and ``/help``, which lists them after the server's (:class:`Help`).

The server's ``/help`` answers with one line per command and no end marker (docs/protocol.md). So after
a typed ``/help`` the client sends :data:`BARRIER`, a ``/help`` for a name no command can have (names
begin with a letter or digit): the server answers it with :data:`BARRIER_REPLY`, after the whole list,
and the client shows its own commands in that reply's place, in the server's format (``/usage -
summary``, so the terminal UI's completion learns them too). ``/help NAME`` for a command only the
client has (``/help transfers``), or whose server form is for programs (``/help sendfile``: the server's
takes a SIZE), is answered by the client alone. Loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable

from chatroom.client.io import Console

__all__ = ["BARRIER", "BARRIER_REPLY", "CLIENT_COMMANDS", "TERMINAL_COMMANDS", "Help", "help_lines"]

#: ``(usage, summary)`` of each command chatroom-client handles itself (or adds to the server's).
CLIENT_COMMANDS = (
    ("/sendfile NAME", "Send NAME from the send folder to the room (quote a name with spaces)"),
    ("/transfers", "List the files moving in and out, the offers waiting for an answer, the interrupted transfers"),
    ("/resume ID", "Resume an interrupted transfer now (see /transfers; they resume by themselves on reconnecting)"),
    ("/cancel ID", "Stop a transfer for good (see /transfers); /cancel NAME withdraws your offer still waiting"),
    ("/accept [ID]", "Accept a file offered to you (no ID: the only offer waiting)"),
    ("/decline [ID]", "Decline a file offered to you (no ID: the only offer waiting)"),
    ("/quit", "Leave: your own sends finish first, files arriving get --quit-wait seconds"),
)
#: The same for the commands of the terminal UI only.
TERMINAL_COMMANDS = (
    ("/switch #ROOM", "Make a joined room your current one (Alt-Left, Alt-Right, Alt-1..9 too)"),
)
#: Sent after a typed ``/help``; no command is called ``-end-``.
BARRIER = "/help -end-"
#: The server's answer to :data:`BARRIER`.
BARRIER_REPLY = "ERROR no such command: /-end-"
_ONLY_HERE = {"sendfile", "transfers", "resume", "cancel", "switch"}  # sendfile: the server's has SIZE
#: The server's ``/help`` lines the client's own list replaces (``/accept ID - ...``: it lists them in its words).
_REPLACED = tuple(f"{usage.split()[0]} " for usage, _ in CLIENT_COMMANDS)


def help_lines(terminal: bool, name: str | None = None) -> list[str]:
    """The client's commands as ``/help`` shows them (with the terminal UI's when *terminal*); with
    *name*, only that command's line."""
    table = CLIENT_COMMANDS + (TERMINAL_COMMANDS if terminal else ())
    lines = [f"{usage} - {summary}" for usage, summary in table
             if name is None or usage.split()[0] == "/" + name]
    return lines if name is not None else ["* chatroom-client's own commands:", *lines]


class Help:
    """``/help`` typed: the server's list, then the client's. *send* queues a line to the server."""

    def __init__(self, console: Console, send: Callable[[str], None], *, terminal: bool) -> None:
        self.console = console
        self._send = send
        self.terminal = terminal
        self._due = 0  # barriers sent whose reply has not come yet

    def typed(self, rest: str) -> bool:
        """``/help REST`` typed: True when handled here (the caller sends nothing)."""
        words = rest.split()
        if not words:
            self._send("/help")
            self._send(BARRIER)
            self._due += 1
            return True
        name = words[0].lstrip("/").lower()
        if len(words) == 1 and name in _ONLY_HERE and (name != "switch" or self.terminal):
            for line in help_lines(self.terminal, name):
                self.console.line(line)
            return True
        return False

    def reply(self, text: str) -> bool:
        """A server line: True for the barrier's reply, replaced by the client's list, and for a line of the
        server's list that the client's list gives in its own words (``/accept ID``, ``/quit``...: not twice)."""
        if not self._due:
            return False
        if text != BARRIER_REPLY:
            return text.startswith(_REPLACED) and " - " in text
        self._due -= 1
        for line in help_lines(self.terminal):
            self.console.line(line)
        return True

    def reset(self) -> None:
        """A new connection: no barrier is due."""
        self._due = 0
