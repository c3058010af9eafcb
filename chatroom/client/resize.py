"""Resizing the terminal without leaving stale prompt lines behind (prompt_toolkit, non-full-screen).

On a resize prompt_toolkit erases what it drew by moving the cursor up as
many rows as it drew above the cursor, then redraws. Most terminals today
(tmux, VTE/GNOME Terminal, Konsole, kitty, iTerm2, Windows Terminal) *re-wrap*
their lines when they get narrower: a prompt row wider than the new width
becomes two or more rows, the cursor ends up lower than prompt_toolkit
believes, and the rows it does not climb over stay on screen, and later in the
scrollback, as stale copies of the prompt (issue 12).

:func:`fix_resize` wraps the application's resize handler: before
prompt_toolkit's own erase, it moves the cursor up by the rows that re-wrapping
added above it (from the last rendered screen). Terminals that do not re-wrap
(xterm, rxvt, the Linux console: :func:`terminal_rewraps`) are left alone,
since climbing there would erase lines of chat instead. UI thread only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["extra_rows", "fix_resize", "terminal_rewraps"]


def terminal_rewraps(env: Mapping[str, str]) -> bool:
    """False for terminals known not to re-wrap lines on a resize (xterm, rxvt, the Linux console)."""
    term = env.get("TERM", "")
    if env.get("TMUX"):
        return True
    return not (env.get("XTERM_VERSION") or term.startswith(("rxvt", "linux")))


def _row_width(row: Mapping[int, Any]) -> int:
    used = [x for x, cell in row.items() if cell.char not in (" ", "")]
    return max(used) + 1 if used else 0


def extra_rows(rows: list[int], cursor_x: int, width: int) -> int:
    """Rows re-wrapping to *width* columns adds above the cursor.

    *rows* are the widths (columns used) of the rows drawn above the cursor's
    row, *cursor_x* the cursor's column on its row.
    """
    if width <= 0:
        return 0
    extra = sum(max(0, (w - 1) // width) for w in rows)
    return extra + cursor_x // width


def fix_resize(app: Any) -> None:
    """Make *app* (a prompt_toolkit ``Application``, before it runs) climb over re-wrapped rows on a resize."""
    original = app._on_resize
    renderer = app.renderer

    def on_resize() -> None:
        screen, last = renderer._last_screen, renderer._last_size
        if screen is not None and last is not None:
            width = app.output.get_size().columns
            if width < last.columns:
                pos = renderer._cursor_pos
                above = [_row_width(screen.data_buffer[y]) for y in range(pos.y)]
                climb = extra_rows(above, pos.x, width)
                if climb:
                    app.output.cursor_up(climb)
        original()

    app._on_resize = on_resize
