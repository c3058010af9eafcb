"""The terminal UI of ``chatroom-client`` (stdin and stdout are TTYs).

A prompt_toolkit ``PromptSession`` reads lines on the main thread (in an
asyncio loop) while :class:`~chatroom.client.loop.ClientLoop` runs the
connection on a background thread. Everything is printed through
:func:`chatroom.client.screenout.chat_stdout` (prompt_toolkit's ``patch_stdout``
without its switch to cooked mode, which echoed keys typed meanwhile), so
incoming lines appear above the prompt and the line being typed stays intact. The prompt is **one** long-running
application: Enter hands the line to the loop and clears the input without
leaving the application (its ``accept_handler``), so there is never a moment
between two prompts where output could land on a half-drawn prompt (which
left stray copies of typed lines).

What is shown (:mod:`chatroom.client.display`): each line with a timestamp,
nicks in their colours, your own lines (echoed when you press Enter) in bold,
mentions of your nick highlighted, history in grey; lines from other rooms
marked ``[#room]``. The client asks the server for message tags (``/caps
tags``) and reads rooms, nicks and times from them (:mod:`chatroom.client.events`).
The prompt shows the current room (``#lobby> ``); the bottom toolbar lists
the joined rooms with unread counts (``#design (3)``, ``@1`` for mentions) and,
while files move, one progress bar per transfer (``tqdm.format_meter``,
refreshed every 0.2 s).

Keys (:mod:`chatroom.client.keys`): Enter sends; Tab completes commands,
``#rooms`` and nicks (:mod:`chatroom.client.complete`); Up/Down walk the input
history (kept across sessions, ``--history-file``); Alt-Right/Alt-Left or
Ctrl-N/Ctrl-P switch to the next/previous joined room, Alt-1..Alt-9 to the
N-th (as ``/join #room`` of a joined room does; ``/switch #room`` is the same);
a pasted block sends each line as its own line, asking first when it has more
than ``--paste-confirm`` lines; Ctrl-D (on an empty line) quits (after running
transfers finish); Ctrl-C once keeps the typed line and says how to quit, twice
within 2 s quits, a third time aborts running transfers
(:class:`chatroom.client.inputs.CtrlC`).

A mention or a private message rings the bell (``--no-bell``) and shows in
the window title (``--no-title``) until the next line you send. When the
server refuses the name the prompt turns into ``name: `` and the next line is
the new name; when it asks for its password, ``server password: `` and what is
typed is not shown. Neither goes into the input history.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application
from prompt_toolkit.application.current import get_app_or_none
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.output import ColorDepth
from prompt_toolkit.shortcuts import CompleteStyle
from prompt_toolkit.styles import Style
from prompt_toolkit.utils import is_dumb_terminal

from chatroom.client.complete import ChatCompleter
from chatroom.client.connection import Transport
from chatroom.client.console import format_bars
from chatroom.client.display import ERROR, Look, Shown, color_depth, format_event, hang, paint, write_line
from chatroom.client.events import Event, parse
from chatroom.client.inputs import CTRL_C_HINT, CtrlC
from chatroom.client.keys import MaskSecrets, Typing, key_bindings
from chatroom.client.loop import ClientLoop
from chatroom.client.resize import fix_resize, terminal_rewraps
from chatroom.client.rooms import Rooms
from chatroom.client.screenout import chat_stdout

__all__ = ["TuiConsole", "history_path", "run_tui"]

#: Seconds between redraws of the toolbar (progress bars, unread counts).
REFRESH = 0.2

STYLE = Style.from_dict({
    "bottom-toolbar": "noreverse",  # no full-width bar: a resize never re-wraps it into stale rows
    "room": "",
    "room.current": "reverse bold",
    "room.unread": "bold",
    "room.mention": "bold underline",
})


class TuiConsole:
    """Shows server lines the terminal UI's way; prints through whatever ``sys.stdout`` is at call time.

    ``line``/``error`` run on the network thread, :meth:`show` on any. *rooms*
    learns from every line, *completer* from ``/help`` lines; *notify*
    (thread-safe) is called with the shown line and its event for a mention
    or a private message. *columns* gives the terminal's width now: lines
    wider are wrapped with their rows indented (:func:`~chatroom.client.display.hang`).
    """

    def __init__(self, look: Look, rooms: Rooms, completer: ChatCompleter,
                 notify: Callable[[Shown, Event], None] | None = None,
                 columns: Callable[[], int] = lambda: 80) -> None:
        self.look = look
        self.rooms = rooms
        self.completer = completer
        self.notify = notify
        self.columns = columns
        self.nick = ""  # learnt from replies; before that, fallback_nick()
        self.fallback_nick: Callable[[], str] = lambda: ""

    def show(self, shown: Shown) -> None:
        """Print *shown*, its rows after the first indented (never less than 2 columns, never more
        than half the terminal)."""
        columns = self.columns()
        write_line(hang(shown.text, columns, max(2, min(shown.indent, columns // 2))))

    def me(self) -> str:
        """The user's nick as far as the UI knows."""
        return self.nick or self.fallback_nick()

    def _learn_nick(self, ev: Event) -> None:
        text = ev.body
        if text.startswith("OK nick "):
            self.nick = text[8:].strip()
        elif text.startswith("OK logged in as "):
            self.nick = text[16:].split()[0] if text[16:].split() else self.nick
        elif text.startswith("* you are ") and " now" in text:
            self.nick = text[10:].split(" now", 1)[0]
        elif ev.kind == "notice" and " is now known as " in text:
            old, _, new = text[2:].partition(" is now known as ")
            if old == self.me():
                self.nick = new.strip()

    def line(self, text: str) -> None:
        """One server line as text (replies, private lines; room lines when the server sends no tags)."""
        self.event(parse(text))

    def event(self, ev: Event) -> None:
        """One server line with its tags (:mod:`chatroom.client.catchup` hands room lines here)."""
        text = ev.text
        self._learn_nick(ev)
        current = self.rooms.current
        if ev.history and ev.room and not self.rooms.joined(ev.room):
            current = ev.room  # the history of a room being joined comes before its "OK join"
        shown = format_event(ev, me=self.me(), current=current, look=self.look)
        self.rooms.seen(ev, me=self.me(), mention=shown.mention)
        if not ev.tags and text.startswith("/"):
            self.completer.learn_help(text)
        self.show(shown)
        if (shown.mention or shown.private) and self.notify is not None:
            self.notify(shown, ev)

    def error(self, text: str) -> None:
        self.show(Shown(paint(text, ERROR.get(self.look.depth, ""), self.look)))


def _columns(app: Application[str] | None = None) -> int:
    """The terminal's width: of *app* (any thread), else of the running application (UI thread); 80
    when unknown."""
    app = app if app is not None else get_app_or_none()
    if app is None:
        return 80
    try:
        return app.output.get_size().columns
    except Exception:  # noqa: BLE001 - size unknown (not a terminal any more): use a default
        return 80


def history_path(option: Path | None, env: dict[str, str]) -> Path | None:
    """Where typed lines are kept: *option* (``--history-file``; ``Path()`` means none), else
    ``$XDG_DATA_HOME/chatroom/history`` (platformdirs' user data dir)."""
    if option is not None:
        return None if option == Path() else option
    import platformdirs

    base = env.get("XDG_DATA_HOME")
    return (Path(base) / "chatroom" if base else Path(platformdirs.user_data_dir("chatroom"))) / "history"


def _history(path: Path | None) -> tuple[History, str | None]:
    if path is None:
        return InMemoryHistory(), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    except OSError as exc:
        return InMemoryHistory(), f"input history not kept: {path}: {exc.strerror or exc}"
    return FileHistory(str(path)), None


def run_tui(args: argparse.Namespace, sock: Transport) -> int:
    """Run the terminal UI on a connected *sock* until quit; returns the exit status.

    A SIGINT that lands between two prompts (not as a Ctrl-C key inside one)
    cancels the UI: the session quits at once and the status is 130.
    """
    try:
        return asyncio.run(_run(args, sock))
    except KeyboardInterrupt:
        return 130


def _opt(args: argparse.Namespace, name: str, default: object) -> object:
    return getattr(args, name, default)


async def _run(args: argparse.Namespace, sock: Transport) -> int:
    env = dict(os.environ)
    look = Look(depth=color_depth(str(_opt(args, "color", "auto")), env),
                timestamps=str(_opt(args, "timestamps", "%H:%M")))
    rooms = Rooms()
    completer = ChatCompleter(rooms)
    history_file: Path | None = getattr(args, "history_file", None)  # (argparse's values are untyped)
    history, history_problem = _history(history_path(history_file, env))
    aio = asyncio.get_running_loop()
    console = TuiConsole(look, rooms, completer)
    loop = ClientLoop.from_args(args, sock, console, interactive=True)
    console.fallback_nick = lambda: loop.name
    paste_confirm: int = getattr(args, "paste_confirm", 5)
    typing = Typing(loop, console, history, paste_confirm=int(paste_confirm))
    session: PromptSession[str] = PromptSession(
        history=history,
        completer=completer,
        complete_style=CompleteStyle.READLINE_LIKE,
        complete_while_typing=False,
        input_processors=[MaskSecrets()],
        key_bindings=key_bindings(typing, rooms),
        style=STYLE,
        color_depth=None if look.depth else ColorDepth.DEPTH_1_BIT,
    )
    loop.on_change = session.app.invalidate
    console.columns = lambda: _columns(session.app)
    if terminal_rewraps(env):
        fix_resize(session.app)
    dumb = is_dumb_terminal()
    if not dumb:
        session.default_buffer.accept_handler = typing.accept
    session.message = typing.message
    session.is_password = Condition(lambda: loop.asking_password)
    notifier = Notifier(session, bool(_opt(args, "bell", True)), bool(_opt(args, "title", True)))
    typing.on_sent = notifier.seen

    def notify(shown: Shown, ev: Event) -> None:  # the network thread: ring on the UI thread
        aio.call_soon_threadsafe(notifier.ring, shown, ev)

    console.notify = notify
    finished = asyncio.Event()
    status: list[int] = []

    def stop_prompt() -> None:
        # On the asyncio thread: end a running prompt (it then returns None).
        future = session.app.future
        if finished.is_set() and future is not None and not future.done():
            session.app.exit()  # the prompt returns None

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

    def toolbar() -> StyleAndTextTuples:
        parts: StyleAndTextTuples = []
        for tab in rooms.tabs():
            style = "class:room.current" if tab.current else "class:room.unread" if tab.unread else "class:room"
            label = tab.name + (f" ({tab.unread}" + (f", @{tab.mentions}" if tab.mentions else "") + ")"
                                if tab.unread else "")
            parts += [("", " ") if parts else ("", ""), (style, label)]
        bars = format_bars(loop.progress, _columns())
        if bars:
            parts.append(("", "\n" + bars if parts else bars))
        return parts

    async def refresh() -> None:
        seen = -1
        live = False
        while True:
            await asyncio.sleep(REFRESH)
            was, live = live, bool(loop.progress)
            if live or was or rooms.version != seen:
                seen = rooms.version
                session.app.invalidate()

    session.bottom_toolbar = toolbar
    with chat_stdout():
        if history_problem:
            console.error(history_problem)
        thread = threading.Thread(target=network, name="chatroom-network", daemon=True)
        thread.start()
        refresher = asyncio.create_task(refresh())
        ctrl_c = CtrlC()
        kept = ""  # the line being typed when Ctrl-C came: given back to the next prompt
        try:
            while not finished.is_set():
                # KeyboardInterrupt / EOFError come out of the prompt as exceptions (Ctrl-C / Ctrl-D);
                # the prompt runs in this coroutine, not in a task, so they never escape asyncio.
                # Enter does not end the prompt (typing.accept), except on a dumb terminal.
                try:
                    text = await session.prompt_async(pre_run=stop_prompt, default=kept)
                    kept = ""
                except KeyboardInterrupt:
                    kept = session.default_buffer.text
                    action = ctrl_c.press(time.monotonic())
                    if action == "hint":
                        console.show(Shown(CTRL_C_HINT))
                    else:
                        loop.request_quit(force=action == "abort")
                    continue
                except EOFError:
                    loop.end_input()
                    continue
                if text is None:
                    break
                typing.send(text)
        finally:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
            if not finished.is_set():
                loop.request_quit(force=True)
                await finished.wait()
            notifier.restore()
    thread.join(timeout=5)
    return status[0] if status else 1


class Notifier:
    """Bell and window title for mentions and private messages; UI thread only."""

    def __init__(self, session: PromptSession[str], bell: bool, title: bool) -> None:
        self.session = session
        self.bell = bell
        self.title = title
        self.count = 0
        self._pushed = False

    def ring(self, shown: Shown, ev: Event) -> None:
        """One mention or private message arrived (*ev*)."""
        out = self.session.app.output
        self.count += 1
        if self.bell:
            out.write_raw("\a")
        if self.title:
            if not self._pushed:
                out.write_raw("\x1b[22;0t")  # xterm: keep the user's title, restored at exit
                self._pushed = True
            who = ev.nick or ev.text.split(" (private)", 1)[0]
            what = "private message from" if shown.private else "mentioned by"
            where = f" in {ev.room}" if ev.room else ""
            out.set_title(f"chatroom: {self.count} new - {what} {who}{where}")
        out.flush()

    def seen(self) -> None:
        """The user sent a line: the notifications were seen."""
        if self.count and self.title:
            self.session.app.output.set_title("chatroom")
            self.session.app.output.flush()
        self.count = 0

    def restore(self) -> None:
        """Give the terminal its title back (at exit)."""
        if self._pushed:
            self.session.app.output.write_raw("\x1b[23;0t")
            self.session.app.output.flush()
