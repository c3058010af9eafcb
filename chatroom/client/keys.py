"""What typing, pasting and the terminal UI's keys do (prompt_toolkit key bindings). UI thread only.

* Enter (:meth:`Typing.accept`): the line goes to the network loop and is
  echoed above the prompt (chat as ``alice: text`` in bold, commands as
  ``> /cmd``; the lines of a ``/post`` up to its ``#`` as ``> line``); the
  input is cleared without leaving the prompt application.
* A bracketed paste (``ESC[200~ ... ESC[201~``, :meth:`Typing.paste`) of one
  line is inserted at the cursor. A paste of several lines sends each as its
  own line, in order (what was typed before it joins the first one); with
  more than *paste_confirm* lines the prompt asks ``paste N lines into #room?
  (y/n)`` first and ``y`` sends them, ``n``, Escape or Ctrl-C drops them
  (like weechat). Pasted lines are not added to the input history.
* Input history: typed lines, except those holding a password or a room key
  (``/login``, ``/identify``, ``/register``, ``/password``, ``/pass``, ``/key``,
  ``/join #room KEY``) and the answers to ``name:`` and ``server password:``.
* Secrets are never shown: in those lines the password or key is drawn as
  ``*`` while typed (:class:`MaskSecrets`, an input processor) and echoed as
  ``********`` (:func:`mask_secrets`), e.g. ``> /login alice ********``.
* Rooms: Alt-Right / Ctrl-N the next joined room, Alt-Left / Ctrl-P the
  previous one, Alt-1..Alt-9 the N-th (each sends ``/join #room``, which only
  makes a joined room current); ``/switch #room`` is typed ``/join #room``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import History
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from prompt_toolkit.layout.utils import explode_text_fragments

from chatroom.client.display import Shown, own_line
from chatroom.client.rooms import Rooms

__all__ = ["SECRET_COMMANDS", "MaskSecrets", "Typing", "key_bindings", "keep_in_history", "mask_secrets",
           "secret_spans", "split_paste"]

#: Commands whose arguments hold a password or key: never written to the history file.
SECRET_COMMANDS = frozenset({"/login", "/identify", "/register", "/password", "/pass", "/key"})
#: Command -> how many of its words come before the secret ones (``/login NICK PASSWORD``: 1).
_SECRET_AFTER = {"/login": 1, "/identify": 1, "/register": 0, "/password": 0, "/pass": 0, "/key": 0, "/join": 1,
                 "/j": 1}
_WORD = re.compile(r"\S+")


def secret_spans(line: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the passwords and keys in a typed *line* (see the module
    docstring): ``/login alice pw`` -> ``[(13, 15)]``."""
    words = list(_WORD.finditer(line))
    if not words or not line.startswith("/"):
        return []
    skip = _SECRET_AFTER.get(words[0].group().lower())
    if skip is None:
        return []
    return [m.span() for m in words[1 + skip:]]


def mask_secrets(line: str) -> str:
    """*line* with each password or key replaced by ``********`` (its length is not shown either)."""
    for start, end in reversed(secret_spans(line)):
        line = line[:start] + "********" + line[end:]
    return line


class MaskSecrets(Processor):
    """Draws the passwords and keys of the line being typed as ``*`` (a prompt_toolkit input processor;
    one ``*`` per character, so the cursor stays where it is)."""

    def apply_transformation(self, transformation_input: TransformationInput) -> Transformation:
        ti = transformation_input
        document = ti.document
        spans = secret_spans(document.text)
        if not spans:
            return Transformation(ti.fragments)
        start = sum(len(line) + 1 for line in document.lines[:ti.lineno])
        fragments = explode_text_fragments(ti.fragments)
        for i, fragment in enumerate(fragments[:len(document.lines[ti.lineno])]):
            at = start + i
            if any(a <= at < b for a, b in spans):
                fragments[i] = (fragment[0], "*", *fragment[2:])
        return Transformation(fragments)


def keep_in_history(line: str) -> bool:
    """False for a blank line or one holding a secret (see :data:`SECRET_COMMANDS`, ``/join #room KEY``)."""
    words = line.split()
    if not words:
        return False
    head = words[0].lower()
    return head not in SECRET_COMMANDS and not (head in ("/join", "/j") and len(words) > 2)


def split_paste(data: str) -> list[str]:
    """The lines of pasted *data* (``\\r\\n``, ``\\r`` or ``\\n`` ends a line; one final line end dropped)."""
    data = data.replace("\r\n", "\n").replace("\r", "\n")
    if data.endswith("\n"):
        data = data[:-1]
    return data.split("\n")


class Typing:
    """Typed and pasted lines of the terminal UI (see the module docstring).

    *loop* is the :class:`~chatroom.client.loop.ClientLoop` (``submit``,
    ``naming``, ``asking_password``), *console* the
    :class:`~chatroom.client.tui.TuiConsole` (``me()``, ``look``, ``rooms``),
    *history* where typed lines are kept.
    """

    def __init__(self, loop: Any, console: Any, history: History, paste_confirm: int = 5) -> None:
        self.loop = loop
        self.console = console
        self.history = history
        self.paste_confirm = paste_confirm
        #: Lines of a paste waiting for y/n, else None.
        self.pending: list[str] | None = None
        self.in_post = False
        #: Called after the user sent a line (notifications seen).
        self.on_sent: Callable[[], None] = lambda: None

    def message(self) -> str:
        """The prompt: ``#lobby> ``, ``name: ``, ``server password: `` or the paste question."""
        room = self.console.rooms.current
        if self.loop.asking_password:
            return "server password: "
        if self.loop.naming:
            return "name: "
        if self.pending is not None:
            return f"paste {len(self.pending)} lines into {room or 'the server'}? (y/n) "
        return f"{room}> " if room else "> "

    def accept(self, buff: Buffer) -> bool:
        """Enter: send the buffer's line and clear it (prompt_toolkit ``accept_handler``; False: reset)."""
        text = buff.text
        buff.reset()  # before returning, so prompt_toolkit adds nothing to the history itself
        self.send(text, record=True)
        return False

    def send(self, text: str, *, record: bool = False) -> None:
        """Hand one line to the loop, echo it, and (*record*) keep it in the history when allowed."""
        if self.loop.asking_password or self.loop.naming:
            self.loop.submit(text)
            return
        words = text.split()
        if words and words[0].lower() == "/switch":
            text = "/join " + " ".join(words[1:])
        if text.strip():
            self._echo(text)
            if record and keep_in_history(text):
                self.history.append_string(text)
        self.loop.submit(text)
        self.on_sent()

    def _echo(self, text: str) -> None:
        look, me, room = self.console.look, self.console.me(), self.console.rooms.current
        post = self.in_post
        if post:
            self.in_post = text != "#"
        elif text.split()[0].lower() == "/post":
            self.in_post = True
        self.console.show(own_line(mask_secrets(text), me=me, current=room, look=look, raw=post))

    def paste(self, buff: Buffer, data: str) -> None:
        """A bracketed paste of *data* into *buff*."""
        if self.pending is not None:
            return
        lines = split_paste(data)
        if len(lines) == 1:
            buff.insert_text(lines[0])
            return
        lines[0] = buff.text + lines[0]
        buff.reset()
        if len(lines) > self.paste_confirm:
            self.pending = lines
        else:
            for line in lines:
                self.send(line)

    def confirm(self, yes: bool) -> None:
        """The answer to the paste question."""
        lines, self.pending = self.pending or [], None
        if yes:
            for line in lines:
                self.send(line)
        else:
            self.console.show(Shown(f"paste of {len(lines)} lines dropped"))

    def switch(self, room: str | None) -> None:
        """Make joined *room* current (None: nothing)."""
        if room is not None and room != self.console.rooms.current:
            self.loop.submit(f"/join {room}")


def key_bindings(typing: Typing, rooms: Rooms) -> KeyBindings:
    """The UI's own keys (see the module docstring); they take precedence over prompt_toolkit's."""
    kb = KeyBindings()
    confirming = Condition(lambda: typing.pending is not None)
    normal = ~confirming

    @kb.add(Keys.BracketedPaste)
    def _paste(event: KeyPressEvent) -> None:
        typing.paste(event.current_buffer, event.data)

    @kb.add("y", filter=confirming)
    @kb.add("Y", filter=confirming)
    def _yes(event: KeyPressEvent) -> None:
        typing.confirm(True)

    @kb.add("n", filter=confirming)
    @kb.add("N", filter=confirming)
    @kb.add("escape", filter=confirming)
    @kb.add("c-c", filter=confirming)
    def _no(event: KeyPressEvent) -> None:
        typing.confirm(False)

    @kb.add(Keys.Any, filter=confirming)
    @kb.add("enter", filter=confirming)
    def _ignore(event: KeyPressEvent) -> None:
        pass

    @kb.add("escape", "right", filter=normal)
    @kb.add("c-n", filter=normal)
    def _next(event: KeyPressEvent) -> None:
        typing.switch(rooms.neighbour(1))

    @kb.add("escape", "left", filter=normal)
    @kb.add("c-p", filter=normal)
    def _previous(event: KeyPressEvent) -> None:
        typing.switch(rooms.neighbour(-1))

    for n in range(1, 10):
        kb.add("escape", str(n), filter=normal)(lambda event, n=n: typing.switch(rooms.nth(n)))
    return kb
