"""How the terminal UI shows a line: timestamps, nick colours, highlights, and its command-line options.

Pure functions of an :class:`~chatroom.client.events.Event` and a
:class:`Look`, called on any thread; the result is a ``str`` holding ANSI SGR
escape sequences (ECMA-48) or none at all. Line mode never comes here: it
prints what the server sends, unchanged.

* **Timestamps**: ``--timestamps FORMAT`` (``time.strftime``, local time,
  default ``%H:%M``; ``--no-timestamps``). A live line reads ``12:03 bob: hi``;
  a history line ``[12:01] dave: earlier`` (``[2026-12-01 12:01]`` when not
  from today), in grey when colours are on, so history never looks live.
* **Colours**: one per nick, from a CRC-32 of the lower-cased nick (stable
  across sessions and machines; Python's ``hash`` is not). 256 colours when
  ``$TERM`` or ``$COLORTERM`` says so, else 16; none at all with ``NO_COLOR``
  set (https://no-color.org), ``TERM=dumb`` or ``--color never``.
* **Highlights**: your own lines in bold; a line that mentions your nick (a
  whole word, any case) in bold with the nick in reverse video, and reported
  as a mention (:attr:`Shown.mention`) so the UI can ring the bell. A private
  line (``bob (private): hi``) is reported as :attr:`Shown.private`.
* **Rooms**: a line from a room other than the UI's current one starts with
  ``[#room] `` (the room's own colour).
* **Wrapping** (:func:`hang`): a line wider than the terminal is cut into rows
  by the client, each row after the first indented under the line's text
  (after ``12:03 bob: ``; :attr:`Shown.indent`), as irssi and WeeChat do. So
  nothing a person says can start a row of its own: a line padded with spaces
  up to ``bob: ...`` shows that text indented, inside the speaker's line.
* **Your own lines** (:func:`format_own`): chat as ``12:03 alice: text``, ``/me
  waves`` as ``12:03 * alice waves``, other commands as ``12:03 > /cmd``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from prompt_toolkit.utils import get_cwidth

from chatroom.client.events import Event

__all__ = [
    "DISPLAY_DEFAULTS",
    "Look",
    "Shown",
    "add_display_options",
    "color_depth",
    "format_event",
    "format_own",
    "hang",
    "nick_sgr",
    "own_line",
    "paint",
    "width",
    "write_line",
]

#: ``dest -> default`` of every option :func:`add_display_options` adds (for a config file to fill in).
DISPLAY_DEFAULTS: dict[str, object] = {
    "timestamps": "%H:%M",
    "color": "auto",
    "bell": True,
    "title": True,
    "paste_confirm": 5,
    "history_file": None,
}

#: Nick colours: 256-colour indexes readable on dark and light backgrounds, and the 16-colour fallback.
PALETTE_256 = (33, 37, 41, 64, 69, 99, 128, 130, 135, 161, 166, 172, 178, 202, 31, 70)
PALETTE_16 = (31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96)
GREY = {256: "38;5;244", 16: "90"}
NOTICE = {256: "38;5;73", 16: "36"}
ERROR = {256: "38;5;160", 16: "31"}
_PRIVATE = re.compile(r"([^\s:]+) \(private\): ")
_STAMP = re.compile(r"(?:\[#[^\]\s]+\] )?\[(?:\d{4}-\d{2}-\d{2} )?\d{2}:\d{2}\] ")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid count: {text!r} (an integer, 0 or more)")
    return value


def add_display_options(parser: argparse.ArgumentParser) -> None:
    """Add the terminal UI's display and typing options to *parser* (dests: :data:`DISPLAY_DEFAULTS`)."""
    g = parser.add_argument_group("terminal UI (ignored in line mode, which prints lines exactly as they come)")
    g.add_argument("--timestamps", metavar="FORMAT", default=DISPLAY_DEFAULTS["timestamps"],
                   help="time in front of each line, a strftime format (default: %(default)s)")
    g.add_argument("--no-timestamps", dest="timestamps", action="store_const", const="", help="no timestamps")
    g.add_argument("--color", choices=("auto", "always", "never"), default=DISPLAY_DEFAULTS["color"],
                   help="colours: auto (off with NO_COLOR or TERM=dumb), always or never (default: %(default)s)")
    g.add_argument("--bell", action=argparse.BooleanOptionalAction, default=DISPLAY_DEFAULTS["bell"],
                   help="ring the terminal bell on a mention of your nick or a private message (default: on)")
    g.add_argument("--title", action=argparse.BooleanOptionalAction, default=DISPLAY_DEFAULTS["title"],
                   help="show mentions and private messages in the window title (default: on)")
    g.add_argument("--paste-confirm", type=_count, metavar="N", default=DISPLAY_DEFAULTS["paste_confirm"],
                   help="ask before sending a paste of more than N lines (default: %(default)s)")
    g.add_argument("--history-file", type=Path, metavar="FILE", default=DISPLAY_DEFAULTS["history_file"],
                   help="typed lines kept across sessions (default: $XDG_DATA_HOME/chatroom/history; "
                   "lines holding passwords are never kept)")
    g.add_argument("--no-history-file", dest="history_file", action="store_const", const=Path(),
                   help="keep no typed lines across sessions")


def color_depth(option: str, env: Mapping[str, str]) -> int:
    """0 (no colour), 16 or 256, from ``--color`` *option* and the environment *env*."""
    term = env.get("TERM", "")
    if option == "never" or (option == "auto" and (env.get("NO_COLOR") or term in ("dumb", ""))):
        return 0
    if "256" in term or env.get("COLORTERM") in ("truecolor", "24bit"):
        return 256
    return 16


@dataclass(frozen=True)
class Look:
    """How lines look: *depth* 0, 16 or 256 colours; *timestamps* a strftime format (``""``: none)."""

    depth: int = 0
    timestamps: str = "%H:%M"


class Shown(NamedTuple):
    """A line ready to print (``text``), what it means to the user, and the columns its wrapped rows are
    indented by (``indent``: the width of its time, room and nick)."""

    text: str
    mention: bool = False
    private: bool = False
    indent: int = 0


def write_line(text: str) -> None:
    """Print *text* and its newline in **one** ``write`` to whatever ``sys.stdout`` is now; any thread.

    Under ``patch_stdout`` two threads printing at once (incoming lines, the
    echo of a typed one) must not interleave: ``print`` writes the text and the
    newline separately, so another thread's line could land between them and
    two lines would merge into one.
    """
    out = sys.stdout
    try:
        out.write(text + "\n")
        out.flush()
    except (BrokenPipeError, ValueError):
        pass  # the terminal is gone: nothing to show it on


def paint(text: str, sgr: str, look: Look) -> str:
    """*text* wrapped in ``ESC[{sgr}m ... ESC[0m`` (nothing when colours are off or *sgr* is empty)."""
    if not look.depth or not sgr or not text:
        return text
    return f"\x1b[{sgr}m{text}\x1b[0m"


def nick_sgr(nick: str, depth: int) -> str:
    """The SGR parameters of *nick*'s colour (same nick, same colour, in every session)."""
    if not depth:
        return ""
    crc = zlib.crc32(nick.lower().encode("utf-8"))
    if depth == 256:
        return f"38;5;{PALETTE_256[crc % len(PALETTE_256)]}"
    return str(PALETTE_16[crc % len(PALETTE_16)])


def _stamp(ts: float | None, look: Look, history: bool, now: float) -> str:
    if not look.timestamps:
        return ""
    when = time.localtime(now if ts is None else ts)
    fmt = look.timestamps
    if history and when[:3] != time.localtime(now)[:3]:
        fmt = "%Y-%m-%d " + fmt
    text = time.strftime(fmt, when)
    return f"[{text}] " if history else f"{text} "


def _mentions(text: str, me: str) -> re.Pattern[str] | None:
    if not me:
        return None
    pattern = re.compile(rf"(?<![\w.-]){re.escape(me)}(?![\w-])", re.IGNORECASE)
    return pattern if pattern.search(text) else None


def _nick_body(nick: str, rest: str, sep: str, look: Look, *, own: bool, mention: re.Pattern[str] | None) -> str:
    """``nick{sep}rest`` with the nick coloured; bold for *own*; *mention* words reversed."""
    bold = "1;" if own or mention else ""
    head = paint(nick, bold + nick_sgr(nick, look.depth), look)
    if mention is not None and look.depth:
        rest = mention.sub(lambda m: f"\x1b[7m{m.group(0)}\x1b[27m", rest)
    strong = "1" if own or mention else ""
    return head + paint(sep, strong, look) + paint(rest, strong, look)


def format_event(ev: Event, *, me: str, current: str | None, look: Look, now: float | None = None) -> Shown:
    """Show server line *ev* to user *me* whose UI is in room *current* (None: no room)."""
    now = time.time() if now is None else now
    if not ev.tags:
        return _format_untagged(ev.text, me=me, look=look, now=now)
    body = ev.body
    kind, nick, room = ev.kind, ev.nick or "", ev.room
    own = bool(me) and nick.lower() == me.lower()
    mention = None if own or kind not in ("msg", "me") else _mentions(body, me)
    head = 0  # columns of the nick part, for the indent of wrapped rows
    if kind == "msg" and nick and body.startswith(nick + ": "):
        shown = _nick_body(nick, body[len(nick) + 2:], ": ", look, own=own, mention=mention)
        head = width(nick) + 2
    elif kind == "me" and nick and body.startswith(f"* {nick} "):
        shown = "* " + _nick_body(nick, body[len(nick) + 3:], " ", look, own=own, mention=mention)
        head = width(nick) + 3
    elif kind in ("notice", "topic"):
        shown = paint(body, NOTICE.get(look.depth, ""), look)
    else:
        shown = body
    if ev.history:
        shown = paint(_strip_sgr(shown), GREY.get(look.depth, ""), look)
    marker = ""
    if room and room != current:
        marker = paint(f"[{room}]", nick_sgr(room, look.depth), look) + " "
    stamp = paint(_stamp(ev.time, look, ev.history, now), GREY.get(look.depth, ""), look)
    live = not ev.history
    return Shown(stamp + marker + shown, mention=live and mention is not None,
                 indent=width(stamp + marker) + head)


def _format_untagged(text: str, *, me: str, look: Look, now: float) -> Shown:
    stamp = paint(_stamp(None, look, False, now), GREY.get(look.depth, ""), look)
    if _STAMP.match(text):  # history without tags: replayed on connecting (before "/caps tags"), or caught up
        return Shown(paint(text, GREY.get(look.depth, ""), look))
    m = _PRIVATE.match(text)
    if m is not None:
        nick = m.group(1)
        head = paint(nick, "1;" + nick_sgr(nick, look.depth), look) + " " + paint("(private)", "1;35" if look.depth
                                                                              else "", look)
        return Shown(stamp + head + ": " + paint(text[m.end():], "1", look), private=True,
                     indent=width(stamp) + m.end())
    if text.startswith("ERROR"):
        return Shown(stamp + paint(text, ERROR.get(look.depth, ""), look), indent=width(stamp))
    if text.startswith("* "):
        return Shown(stamp + paint(text, NOTICE.get(look.depth, ""), look), indent=width(stamp))
    return Shown(stamp + text, indent=width(stamp))


def format_own(text: str, *, me: str, current: str | None, look: Look, now: float | None = None,
               raw: bool = False) -> str:
    """Show a line *me* typed: chat as ``12:03 alice: text`` in bold, ``/me waves`` as ``12:03 * alice
    waves`` (as the others see it), another command (or any line, *raw*: input a command took over,
    such as a ``/post`` body) as ``12:03 > text``."""
    return own_line(text, me=me, current=current, look=look, now=now, raw=raw).text


def own_line(text: str, *, me: str, current: str | None, look: Look, now: float | None = None,
             raw: bool = False) -> Shown:
    """:func:`format_own` with the indent of its wrapped rows."""
    now = time.time() if now is None else now
    stamp = paint(_stamp(None, look, False, now), GREY.get(look.depth, ""), look)
    head, _, rest = text.partition(" ")
    if not raw and head.lower() == "/me" and rest.strip() and me:
        return Shown(stamp + "* " + _nick_body(me, rest, " ", look, own=True, mention=None),
                     indent=width(stamp) + width(me) + 3)
    if raw or (text.startswith("/") and not text.startswith("//")):
        return Shown(stamp + paint("> " + text, GREY.get(look.depth, ""), look), indent=width(stamp) + 2)
    said = text[1:] if text.startswith("//") else text
    return Shown(stamp + _nick_body(me, said, ": ", look, own=True, mention=None),
                 indent=width(stamp) + width(me) + 2)


_SGR = re.compile(r"\x1b\[[0-9;]*m")


def _strip_sgr(text: str) -> str:
    return _SGR.sub("", text)


def width(text: str) -> int:
    """Terminal columns *text* takes (SGR sequences take none; wide characters two)."""
    return sum(get_cwidth(c) for c in _SGR.sub("", text))


_PIECE = re.compile(r"\x1b\[[0-9;]*m|.", re.DOTALL)
_RESETS = ("\x1b[0m", "\x1b[m")


def _words(text: str) -> list[tuple[bool, list[str]]]:
    """*text* as runs of spaces and of other characters: ``(spaces, pieces)``, a piece being one character
    or one SGR sequence (which joins the run it is in); tabs become spaces up to the next multiple of 8."""
    runs: list[tuple[bool, list[str]]] = []
    column = 0
    for piece in _PIECE.findall(text):
        if len(piece) > 1:
            if not runs:
                runs.append((False, []))
            runs[-1][1].append(piece)
            continue
        pieces = [" "] * (8 - column % 8) if piece == "\t" else [piece]
        column += len(pieces) if piece == "\t" else get_cwidth(piece)
        spaces = pieces[0] == " "
        if runs and runs[-1][0] == spaces and (spaces or any(len(p) == 1 for p in runs[-1][1])):
            runs[-1][1].extend(pieces)
        else:
            runs.append((spaces, pieces))
    return runs


def hang(text: str, columns: int, indent: int) -> str:
    """*text* (one line, maybe with SGR sequences) cut into rows of at most *columns* columns, joined by
    newlines, the way chat clients wrap: between words where it can (the spaces at a break are
    dropped), inside a word longer than a row; every row after the first starts with *indent* spaces
    (colours end before a row's end and resume after the indent). A terminal too narrow for that
    (under *indent* + 8 columns) gets *text* as it is."""
    runs = _words(text)
    if columns < indent + 8 or sum(get_cwidth(p) for _, pieces in runs for p in pieces if len(p) == 1) <= columns:
        return text
    rows: list[str] = []
    row: list[str] = []
    active: list[str] = []  # SGR sequences in effect since the last reset
    used = start = 0

    def put(piece: str) -> int:
        nonlocal active
        row.append(piece)
        if len(piece) == 1:
            return get_cwidth(piece)
        active = [] if piece in _RESETS else [*active, piece]
        return 0

    def next_row() -> None:
        nonlocal row, used, start
        while len(row) > 1 and row[-1] == " ":  # the spaces before a break go with it
            row.pop()
        rows.append("".join(row) + ("\x1b[0m" if active else ""))
        row = [" " * indent, *active]
        used = start = indent

    for spaces, pieces in runs:
        cells = sum(get_cwidth(p) for p in pieces if len(p) == 1)
        if used + cells <= columns:
            used += sum(put(p) for p in pieces)
            continue
        if spaces:  # a break: the spaces are dropped, their colours kept
            for piece in pieces:
                if len(piece) > 1:
                    put(piece)
            next_row()
            continue
        if used > start and cells <= columns - indent:
            next_row()  # the word fits on a row of its own
        for piece in pieces:
            if len(piece) == 1 and used + get_cwidth(piece) > columns:
                next_row()
            used += put(piece)
    rows.append("".join(row))
    return "\n".join(rows)
