"""Tab completion for the terminal UI: commands, nicks and room names (a prompt_toolkit ``Completer``).

The word before the cursor decides what is completed:

* ``/jo`` as the first word: a command, from :data:`COMMANDS` (the server's
  built-ins and the client's own) plus any learnt from ``/help`` output
  (:meth:`ChatCompleter.learn_help`), so a plugin's commands complete once
  ``/help`` was shown;
* ``#de``: a room, from :meth:`chatroom.client.rooms.Rooms.names`;
* anything else: a nick seen in the rooms (most recent first); at the
  start of a line it gets ``": "`` after it (``bo`` -> ``bob: ``), as in IRC clients.

Matching is case-insensitive on the prefix. ``get_completions`` runs on the
UI thread; :meth:`ChatCompleter.learn_help` may be called from any thread.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from chatroom.client.commands import CLIENT_COMMANDS, TERMINAL_COMMANDS
from chatroom.client.rooms import Rooms

__all__ = ["COMMANDS", "ChatCompleter"]

#: Commands known without asking: the server's built-in ones, their aliases, and the client's own.
COMMANDS = tuple(sorted({
    "/accept", "/ban", "/bans", "/caps", "/decline", "/deop", "/files", "/help", "/history", "/identify",
    "/j", "/join", "/key", "/kick", "/leave", "/login", "/me", "/msg", "/names", "/nick", "/op", "/part",
    "/password", "/plugins", "/post", "/quit", "/read", "/register", "/rooms", "/sendfile", "/switch",
    "/tell", "/topic", "/tweet", "/tweets", "/unban", "/upper", "/who",
    *(usage.split()[0] for usage, _ in CLIENT_COMMANDS + TERMINAL_COMMANDS),
}))
_HELP = re.compile(r"(/[A-Za-z][\w-]*)(?:[^-]*?)(?: - |$)")
_ALIAS = re.compile(r", (/[A-Za-z][\w-]*)")


class ChatCompleter(Completer):
    """Completes commands, rooms and nicks (see the module docstring); *rooms* supplies the last two."""

    def __init__(self, rooms: Rooms, commands: Iterable[str] = COMMANDS) -> None:
        self.rooms = rooms
        self._lock = threading.Lock()
        self._commands = set(commands)

    def learn_help(self, line: str) -> None:
        """Learn the commands named by one ``/help`` line (``/join #room [KEY], /j - Join ...``)."""
        m = _HELP.match(line)
        if m is None:
            return
        head = line.split(" - ", 1)[0]
        found = [m.group(1), *_ALIAS.findall(head)]
        with self._lock:
            self._commands.update(name.lower() for name in found)

    def commands(self) -> list[str]:
        """The known commands, sorted."""
        with self._lock:
            return sorted(self._commands)

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        word = before.split(" ")[-1]
        first = before == word
        low = word.lower()
        if first and word.startswith("/"):
            for name in self.commands():
                if name.startswith(low) and name != low:
                    yield Completion(name + " ", -len(word), display=name)
            return
        if word.startswith("#"):
            for name in self.rooms.names():
                if name.startswith(low):
                    yield Completion(name + " ", -len(word), display=name)
            return
        if not word:
            return
        for nick in self.rooms.nicks():
            if nick.lower().startswith(low):
                yield Completion(nick + (": " if first else " "), -len(word), display=nick)
