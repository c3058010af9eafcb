"""The terminal UI of ``chatroom-client`` (stdin and stdout are TTYs).

A prompt_toolkit ``PromptSession`` reads lines on the main thread (in an
asyncio loop) while :class:`~chatroom.client.loop.ClientLoop` runs the
connection on a background thread. Everything is printed under
``patch_stdout(raw=True)``, so incoming lines appear above the prompt and the
line being typed stays intact. Transfer progress is drawn in the prompt's
bottom toolbar with ``tqdm.format_meter`` (refreshed every 0.2 s; hidden when
no transfer runs): tqdm's own bars would garble the prompt.

Keys: Enter sends the line; Ctrl-D (on an empty line) quits (after running
transfers finish); Ctrl-C once keeps the typed line and says how to quit, twice
within 2 s quits, a third time aborts running transfers
(:class:`chatroom.client.inputs.CtrlC`). When the server
refuses the name the prompt turns into ``name: `` and the next line is the new
name. When the server asks for its password, the prompt turns into
``server password: `` and what is typed is not shown (prompt_toolkit's
``is_password``).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
import time
import traceback

from prompt_toolkit import PromptSession
from prompt_toolkit.application.current import get_app_or_none
from prompt_toolkit.filters import Condition
from prompt_toolkit.patch_stdout import patch_stdout

from chatroom.client.console import format_bars
from chatroom.client.inputs import CTRL_C_HINT, CtrlC
from chatroom.client.io import load_transfer
from chatroom.client.loop import ClientLoop

__all__ = ["TuiConsole", "run_tui"]

#: Seconds between redraws of the progress toolbar.
REFRESH = 0.2


class TuiConsole:
    """Prints through whatever ``sys.stdout`` is at call time (prompt_toolkit's proxy while the UI runs)."""

    def line(self, text: str) -> None:
        print(text, file=sys.stdout, flush=True)

    def error(self, text: str) -> None:
        print(text, file=sys.stdout, flush=True)


def _columns() -> int:
    app = get_app_or_none()
    if app is None:
        return 80
    try:
        return app.output.get_size().columns
    except Exception:  # noqa: BLE001 - size unknown (not a terminal any more): use a default
        return 80


def run_tui(args: argparse.Namespace, sock: socket.socket) -> int:
    """Run the terminal UI on a connected *sock* until quit; returns the exit status.

    A SIGINT that lands between two prompts (not as a Ctrl-C key inside one)
    cancels the UI: the session quits at once and the status is 130.
    """
    try:
        return asyncio.run(_run(args, sock))
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace, sock: socket.socket) -> int:
    session: PromptSession[str] = PromptSession()
    loop = ClientLoop(
        sock,
        args.name,
        TuiConsole(),
        interactive=True,
        send_dir=args.send_dir,
        received_dir=args.received_dir,
        auto_send=args.auto_send,
        transfer=load_transfer(),
        quit_wait=args.quit_wait,
        on_change=session.app.invalidate,
        accept_files=args.accept_files or "ask",
        password=args.password,
        server_password=getattr(args, "server_password", None),
        tags=True,
        connect=getattr(args, "connect", None),
    )
    session.message = lambda: "server password: " if loop.asking_password else "name: " if loop.naming else "> "
    session.is_password = Condition(lambda: loop.asking_password)
    aio = asyncio.get_running_loop()
    finished = asyncio.Event()
    status: list[int] = []

    def stop_prompt() -> None:
        # On the asyncio thread: end a running prompt (it then returns None).
        future = session.app.future
        if finished.is_set() and future is not None and not future.done():
            session.app.exit(result=None)

    def on_finished() -> None:
        finished.set()
        stop_prompt()

    def network() -> None:
        try:
            status.append(loop.run())
        except Exception:  # noqa: BLE001 - report, never hang the UI
            traceback.print_exc()
            status.append(1)
        finally:
            aio.call_soon_threadsafe(on_finished)

    def toolbar() -> str:
        return format_bars(loop.progress, _columns())

    async def refresh() -> None:
        shown = False
        while True:
            await asyncio.sleep(REFRESH)
            live = bool(loop.progress)
            if live or shown:
                session.bottom_toolbar = toolbar if live else None
                session.app.invalidate()
            shown = live

    with patch_stdout(raw=True):
        thread = threading.Thread(target=network, name="chatroom-network", daemon=True)
        thread.start()
        refresher = asyncio.create_task(refresh())
        ctrl_c = CtrlC()
        kept = ""  # the line being typed when Ctrl-C came: given back to the next prompt
        try:
            while not finished.is_set():
                # KeyboardInterrupt / EOFError come out of the prompt as exceptions (Ctrl-C / Ctrl-D);
                # the prompt runs in this coroutine, not in a task, so they never escape asyncio.
                try:
                    text = await session.prompt_async(pre_run=stop_prompt, default=kept)
                    kept = ""
                except KeyboardInterrupt:
                    kept = session.default_buffer.text
                    action = ctrl_c.press(time.monotonic())
                    if action == "hint":
                        print(CTRL_C_HINT, flush=True)
                    else:
                        loop.request_quit(force=action == "abort")
                    continue
                except EOFError:
                    loop.end_input()
                    continue
                if text is None:
                    break
                loop.submit(text)
        finally:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
            if not finished.is_set():
                loop.request_quit(force=True)
                await finished.wait()
    thread.join(timeout=5)
    return status[0] if status else 1
