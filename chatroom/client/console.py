"""Console output for the line-mode client, and progress-bar text for both UIs.

:class:`LineConsole` prints server lines to stdout and problems to stderr.
When stderr is a terminal it also draws one tqdm bar per running transfer
(``disable=None``: no bars when stderr is not a TTY), and while bars are live
it routes every printed line through ``tqdm.write`` so bars and text never
garble each other. :func:`format_bars` renders the same progress as plain
text lines with ``tqdm.format_meter`` for the terminal UI's bottom toolbar.

A progress item (from the transfer component's ``progress()``) has ``.desc``
(str), ``.done`` and ``.total`` (bytes), ``.started`` (``time.monotonic()``
seconds) and ``.direction`` (``"send"`` or ``"recv"``).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["ARROWS", "LineConsole", "format_bars"]

#: Marker shown before a bar's description: upload or download.
ARROWS = {"send": "↑", "recv": "↓"}


def _key(item: Any) -> tuple[str, str, float]:
    return (item.direction, item.desc, item.started)


def format_bars(items: Iterable[Any], width: int, now: float | None = None) -> str:
    """One ``tqdm.format_meter`` line per progress item, joined by newlines (``""`` when none).

    *width* is the terminal's column count; *now* a ``time.monotonic()``
    value (default: the current one).
    """
    now = time.monotonic() if now is None else now
    lines = []
    for item in items:
        prefix = f"{ARROWS.get(item.direction, ' ')} {item.desc}"
        lines.append(
            tqdm.format_meter(
                item.done,
                item.total or None,
                max(0.0, now - item.started),
                ncols=max(20, width - 1),
                prefix=prefix,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
            )
        )
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
        self._bars: dict[tuple[str, str, float], tqdm] = {}
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
