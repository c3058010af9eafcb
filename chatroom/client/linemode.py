"""Line mode of ``chatroom-client`` (stdin or stdout is not a terminal): a thread reads stdin, the
:class:`~chatroom.client.loop.ClientLoop` runs on the main thread, every server line is printed as it
came (:class:`~chatroom.client.console.LineConsole`). At end of input the client quits (its own sends
finish, files arriving get ``--quit-wait`` seconds), and the exit status is the loop's: 0, 1, or 2 with
a hint on stderr when the name or login was refused.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import threading
from collections.abc import Callable

from chatroom.client.connection import Transport
from chatroom.client.console import LineConsole
from chatroom.client.loop import ClientLoop

__all__ = ["refusal_hint", "run_line_mode", "stdin_reader"]


def stdin_reader(read: Callable[[int], bytes], submit: Callable[[str], None], end: Callable[[], None]) -> None:
    """Split what *read(n)* returns (``b""`` at EOF) into lines for *submit*; call *end* at EOF.

    Lines are decoded as UTF-8 with replacement; ``\r\n`` is accepted; a
    last line without a newline is still submitted. Production passes
    ``os.read`` on fd 0 (no buffered-reader lock is held by this daemon
    thread, so the interpreter can exit while it blocks).
    """
    pending = b""
    try:
        while True:
            data = read(65536)
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                submit(raw.decode("utf-8", "replace").rstrip("\r"))
    except (OSError, ValueError):
        pass  # stdin closed under us: treat as end of input
    if pending:
        submit(pending.decode("utf-8", "replace").rstrip("\r"))
    end()


def refusal_hint(loop: ClientLoop, args: argparse.Namespace) -> str | None:
    """What to do after the server refused the name, the login or the server password (line mode, status 2)."""
    if loop.refused == "nick":
        return (f"chatroom-client: the server refused the name {loop.name} (its reason is above); "
                f"choose another with --name NAME, or log in to your account with --password")
    if loop.refused == "login":
        return f"chatroom-client: login as {loop.name} refused (its reason is above); check --password"
    return None


def run_line_mode(args: argparse.Namespace, sock: Transport, stdin_fd: int) -> int:
    """Plain line mode: stdin reader thread -> :class:`ClientLoop` on this thread."""
    console = LineConsole()
    loop = ClientLoop.from_args(args, sock, console, interactive=False)
    loop.on_change = lambda: console.update(loop.progress)
    reader = threading.Thread(
        target=stdin_reader,
        args=(functools.partial(os.read, stdin_fd), loop.submit, loop.end_input),
        name="stdin-reader",
        daemon=True,
    )
    reader.start()
    try:
        status = loop.run()
    except KeyboardInterrupt:
        return 130
    finally:
        console.close()
    hint = refusal_hint(loop, args) if status == 2 else None
    if hint:
        print(hint, file=sys.stderr)
    return status
