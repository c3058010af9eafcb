"""Console output for the line-mode client, and progress-bar text for both UIs.

:class:`LineConsole` prints server lines to stdout and problems to stderr.
When stderr is a terminal it also draws one tqdm bar per running transfer
(``disable=None``: no bars when stderr is not a TTY), and while bars are live
it routes every printed line through ``tqdm.write`` so bars and text never
garble each other. :func:`format_bars` renders the same progress as plain
text lines with ``tqdm.format_meter`` for the terminal UI's bottom toolbar,
shortened (never cut off) to the terminal's width.

A progress item (from the transfer component's ``progress()``) has ``.desc``
(str), ``.done`` and ``.total`` (bytes), ``.started`` (``time.monotonic()``
seconds) and ``.direction`` (``"send"`` or ``"recv"``).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, NoReturn, TextIO

from tqdm import tqdm
from tqdm.utils import disp_len

__all__ = ["ARROWS", "LineConsole", "format_bars"]

#: Marker shown before a bar's description: upload or download.
ARROWS = {"send": "↑", "recv": "↓"}


def _key(item: Any) -> tuple[str, str, float]:
    return (item.direction, item.desc, item.started)


#: Richest first: the bar text for each width tier (tqdm ``bar_format``); ``{bar}`` takes what is left.
_TIERS = (
    "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]",
    "{l_bar}{bar}| {n_fmt}/{total_fmt} {rate_fmt}",
    "{l_bar}{bar}| {n_fmt}/{total_fmt}",
    "{l_bar}{bar}|",
)
#: The same for a transfer of unknown or zero size (no percentage, no bar).
_UNSIZED = ("{desc}: {n_fmt}B [{elapsed}, {rate_fmt}]", "{desc}: {n_fmt}B")
#: Fewest columns kept for the bar itself and for the description before a richer tier is given up.
_MIN_BAR, _MIN_DESC = 4, 12


def _shorten(text: str, room: int) -> str:
    """*text* cut to *room* display columns, ending in ``…`` when cut."""
    if disp_len(text) <= room:
        return text
    cut = text
    while cut and disp_len(cut) > room - 1:
        cut = cut[:-1]
    return cut + "…" if room > 0 else ""


def _meter(item: Any, elapsed: float, prefix: str, bar_format: str, ncols: int | None) -> str:
    total = item.total or None  # None: a size not known yet, tqdm's documented "no total"
    return str(tqdm.format_meter(item.done, total, elapsed,  # type: ignore[arg-type]  # types-tqdm lacks total=None
                                 ncols=ncols, prefix=prefix, unit="B",
                                 unit_scale=True, unit_divisor=1024, bar_format=bar_format))


def format_bars(items: Iterable[Any], width: int, now: float | None = None) -> str:
    """One progress line per item, joined by newlines (``""`` when none), each at most ``width - 1`` columns.

    *width* is the terminal's column count; *now* a ``time.monotonic()``
    value (default: the current one). A narrow terminal shortens a line
    instead of cutting it off: first the ETA goes, then the rate, then the
    sizes, and the description (``↓ NAME from SENDER``) is cut with ``…``;
    the arrow, the start of the name, the percentage and a bar stay
    (down to about 20 columns).
    """
    now = time.monotonic() if now is None else now
    cols = max(12, width - 1)
    lines = []
    for item in items:
        prefix = f"{ARROWS.get(item.direction, ' ')} {item.desc}"
        elapsed = max(0.0, now - item.started)
        tiers = _TIERS if item.total else _UNSIZED
        for bar_format in tiers:
            rest = disp_len(_meter(item, elapsed, "", bar_format.replace("{bar}", ""), None)) + 2  # + ": "
            room = cols - rest - (_MIN_BAR if "{bar}" in bar_format else 0)
            if room >= min(disp_len(prefix), _MIN_DESC) or bar_format == tiers[-1]:
                lines.append(_meter(item, elapsed, _shorten(prefix, max(room, 3)), bar_format, cols))
                break
    return "\n".join(lines)


class LineConsole:
    """Line-mode output: *out* for lines (default stdout), *err* for errors and bars (default stderr).

    Thread-safe: ``line``/``error`` may be called from any thread.
    ``update(items)`` (from the loop thread) creates, advances and closes the
    tqdm bars; it does nothing when *err* is not a terminal.
    """

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self._lock = threading.Lock()
        self._bars: dict[tuple[str, str, float], tqdm[NoReturn]] = {}  # bars without an iterable
        try:
            self._bars_enabled = self.err.isatty()
        except (AttributeError, ValueError):
            self._bars_enabled = False

    def _print(self, text: str, stream: TextIO) -> None:
        with self._lock:
            try:
                if self._bars:
                    tqdm.write(text, file=stream)
                else:
                    stream.write(text + "\n")
                stream.flush()
            except BrokenPipeError:
                pass  # nobody is reading our output any more; keep the session going

    def line(self, text: str) -> None:
        """Print one line to the output stream."""
        self._print(text, self.out)

    def error(self, text: str) -> None:
        """Print one line to the error stream."""
        self._print(text, self.err)

    def update(self, items: list[Any]) -> None:
        """Make the bars match *items* (progress items, see the module docstring)."""
        if not self._bars_enabled:
            return
        with self._lock:
            live = {_key(item): item for item in items}
            for key in [k for k in self._bars if k not in live]:
                self._bars.pop(key).close()
            for key, item in live.items():
                bar = self._bars.get(key)
                if bar is None:
                    bar = tqdm(
                        total=item.total or None,
                        desc=f"{ARROWS.get(item.direction, ' ')} {item.desc}",
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        leave=False,
                        position=len(self._bars),
                        file=self.err,
                        disable=None,
                        mininterval=0.2,
                    )
                    self._bars[key] = bar
                if item.done > bar.n:
                    bar.update(item.done - bar.n)

    def close(self) -> None:
        """Close every live bar."""
        self.update([])
