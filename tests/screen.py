"""A terminal for tests: ``chatroom-client`` on a pseudo-terminal (pexpect), drawn by a terminal emulator (pyte).

:class:`Term` starts the real console script with its stdin, stdout and
stderr on a pty of the given size, feeds everything it writes to a
``pyte.HistoryScreen`` and lets a test wait, with a deadline, until the screen
shows something: what a person would see, not the bytes. ``raw`` keeps every
byte too, for what a screen does not show (the bell, title changes, colour
escape sequences). Nothing sleeps: every wait reads the pty until its
condition holds or its deadline passes (then ``TimeoutError`` with the screen).
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte

__all__ = ["PASTE_END", "PASTE_START", "Term"]

DEADLINE = 5.0
PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"


class _Screen(pyte.HistoryScreen):
    """A HistoryScreen that answers the terminal's questions (cursor position reports) through *reply*."""

    def __init__(self, cols: int, rows: int, reply: Callable[[str], object]) -> None:
        super().__init__(cols, rows, history=5000)
        self._reply = reply

    def write_process_input(self, data: str) -> None:
        self._reply(data)


class Term:
    """``chatroom-client ARGS`` in *cwd* on a *cols* x *rows* pty; *env* is added to the environment.

    The screen answers cursor position requests as a terminal does (prompt_toolkit
    shows its bottom toolbar only once it knows where the cursor is). The
    environment gets ``TERM`` (default ``xterm-256color``) and
    ``XDG_DATA_HOME``/``XDG_CONFIG_HOME`` inside *cwd*, so no test touches the
    user's files.
    """

    def __init__(self, args: list[str], cwd: Path, *, cols: int = 80, rows: int = 24,
                 env: dict[str, str] | None = None, command: str = "chatroom-client") -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLORTERM", "PROMPT_TOOLKIT_NO_CPR")}
        full.update({"TERM": "xterm-256color", "XDG_DATA_HOME": str(cwd / "data"), "XDG_CONFIG_HOME": str(cwd / "config")})
        full.update(env or {})
        self.raw = b""
        self._lines: tuple[tuple[int, int, int], list[str]] | None = None  # lines(), for the output so far
        self.child = pexpect.spawn(command, args, cwd=str(cwd), env=full, dimensions=(rows, cols))
        self.child.delaybeforesend = None  # pexpect sleeps 50 ms before every send by default
        self.screen = _Screen(cols, rows, self.child.send)
        self.stream = pyte.ByteStream(self.screen)

    # ---- reading -------------------------------------------------------------------

    def _pump(self, timeout: float) -> bool:
        """Read what the client wrote within *timeout* seconds; False at end of output."""
        try:
            data = self.child.read_nonblocking(65536, timeout=max(0.0, timeout))
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.raw += data
        self.stream.feed(data)
        return True

    def wait(self, test: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
        """Read until ``test()`` holds; TimeoutError (with the screen) after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        while not test():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"never saw {what}; screen:\n{self.text()}")
            if not self._pump(min(left, 0.5)) and not test():
                raise EOFError(f"terminal closed before {what}; screen:\n{self.text()}")

    def wait_for(self, pattern: str, what: str | None = None, timeout: float = DEADLINE) -> re.Match[str]:
        """Read until regex *pattern* matches the whole screen text (scrollback included); the match."""
        found: list[re.Match[str]] = []

        def test() -> bool:
            m = re.search(pattern, self.text(), re.MULTILINE)
            if m is not None:
                found.append(m)
            return m is not None

        self.wait(test, what or repr(pattern), timeout)
        return found[0]

    def settle(self, timeout: float = 0.3) -> None:
        """Read whatever arrives within *timeout* seconds (a bounded drain, not a synchronisation)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and self._pump(left):
            pass

    # ---- what is shown --------------------------------------------------------------

    @staticmethod
    def _row(line: dict[int, pyte.screens.Char], cols: int) -> str:
        return "".join(line[x].data for x in range(cols)).rstrip()

    def lines(self) -> list[str]:
        """Every row: the scrolled-off history, then the screen (trailing blanks stripped)."""
        key = (len(self.raw), self.screen.columns, self.screen.lines)
        if self._lines is None or self._lines[0] != key:
            cols = self.screen.columns
            rows = [self._row(row, cols) for row in self.screen.history.top] + [r.rstrip() for r in self.screen.display]
            self._lines = (key, rows)
        return list(self._lines[1])

    def text(self) -> str:
        """:meth:`lines` joined by newlines."""
        return "\n".join(self.lines())

    def shows(self, text: str) -> bool:
        """True if *text* is on the screen (scrollback included) however it was wrapped: compared with
        every space and row break taken out (the client wraps long lines itself, indenting the rows)."""
        squeeze = str.maketrans("", "", " \n")
        return text.translate(squeeze) in self.text().translate(squeeze)

    def cursor_row(self) -> str:
        """The screen row the cursor is on (the prompt line)."""
        return self.screen.display[self.screen.cursor.y].rstrip()

    def chars(self, needle: str) -> list[pyte.screens.Char]:
        """The cells of the first on-screen occurrence of *needle* (KeyError when not shown)."""
        for y, row in enumerate(self.screen.display):
            x = row.find(needle)
            if x >= 0:
                return [self.screen.buffer[y][x + i] for i in range(len(needle))]
        raise KeyError(needle)

    # ---- typing ---------------------------------------------------------------------

    def type(self, keys: str) -> None:
        """Send *keys* as typed (``\\r`` is Enter, ``\\t`` Tab, ``\\x1b...`` escape sequences)."""
        self.child.send(keys)

    def paste(self, text: str) -> None:
        """Paste *text* as a terminal with bracketed paste mode does."""
        self.child.send(PASTE_START + text + PASTE_END)

    def resize(self, cols: int, rows: int) -> None:
        """Resize the pty and the screen (the client gets SIGWINCH)."""
        self.screen.resize(rows, cols)
        self.child.setwinsize(rows, cols)

    def exit_status(self, timeout: float = DEADLINE) -> int | None:
        """Wait for the client to end (reading its output); its exit status."""
        deadline = time.monotonic() + timeout
        while self.child.isalive() and time.monotonic() < deadline:
            self._pump(min(0.2, deadline - time.monotonic()))
        if self.child.isalive():
            raise TimeoutError(f"client still running; screen:\n{self.text()}")
        self.child.close()
        return self.child.exitstatus

    def close(self) -> None:
        """Kill the client if it still runs (SIGKILL, then wait for it: pexpect's own ``terminate`` gives up
        after 0.1 s, too short on a loaded machine)."""
        if self.child.isalive():
            self.child.kill(signal.SIGKILL)
            self.child.wait()
        self.child.close(force=True)
