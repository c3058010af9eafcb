"""Printing above the prompt without letting the terminal echo what is being typed (prompt_toolkit).

prompt_toolkit's ``patch_stdout`` hands every batch of printed text to
``run_in_terminal``, which erases the prompt, **switches the terminal to
cooked mode** (so that a subprocess could read from it), writes, and switches
back. While the terminal is in cooked mode its line discipline echoes every
key that arrives: a key typed while chat pours in is shown twice, once by the
kernel in the middle of the incoming text (``floNod 10515``) and once in the
prompt. That was issue 12's "fast typing leaves a stray copy of the typed line".

:class:`ChatStdout` is ``patch_stdout``'s proxy with that one step changed:
on the application's event loop it erases the prompt, writes the text raw and
redraws, never leaving raw mode (the typed keys wait in the input until the
loop reads them). When some other ``run_in_terminal`` is under way (a
READLINE_LIKE completion list) it falls back to the usual path. Text is
batched every :data:`BATCH` seconds (prompt_toolkit's default is 0.2 s).

Use :func:`chat_stdout` instead of ``patch_stdout(raw=True)``. ``write`` may be
called from any thread; whole lines should be written in one call
(:func:`chatroom.client.display.write_line`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO, cast

from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.patch_stdout import StdoutProxy

__all__ = ["BATCH", "ChatStdout", "chat_stdout"]

#: Seconds the flush thread waits between two batches of printed text while the prompt runs.
BATCH = 0.05


class ChatStdout(StdoutProxy):
    """``StdoutProxy(raw=True)`` that prints without cooked mode (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(sleep_between_writes=BATCH, raw=True)

    def _write_and_flush(self, loop: asyncio.AbstractEventLoop | None, text: str) -> None:
        output = self._output

        def write() -> None:
            output.enable_autowrap()
            output.write_raw(text)
            output.flush()

        def in_loop() -> None:
            app = self.app_session.app
            if app is None or not app.is_running:
                write()
            elif app._running_in_terminal:  # someone else's run_in_terminal: queue behind it
                run_in_terminal(write, in_executor=False)
            else:
                app.renderer.erase()
                write()
                app.renderer.reset()
                app._request_absolute_cursor_position()
                app._redraw()

        if loop is None:
            write()
        else:
            loop.call_soon_threadsafe(in_loop)


@contextmanager
def chat_stdout() -> Iterator[ChatStdout]:
    """``sys.stdout`` and ``sys.stderr`` go through a :class:`ChatStdout` inside the block."""
    proxy = ChatStdout()
    with proxy:
        original_stdout, original_stderr = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = cast(TextIO, proxy)
        try:
            yield proxy
        finally:
            sys.stdout, sys.stderr = original_stdout, original_stderr
