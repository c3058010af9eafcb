"""The file-transfer side of :class:`chatroom.client.loop.ClientLoop`: ``/sendfile``, the watched send
folder, and the progress snapshot the UIs draw.

A mixin: these methods run on the client loop's thread and use its
attributes (``_tm``, the transfer manager; ``_watcher``; ``console``;
``send_dir``; ``auto_send``; ``progress``...).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

from chatroom.client.io import ready_hint

#: Seconds between refreshes of ``ClientLoop.progress``.
PROGRESS_INTERVAL = 0.2


class FileSide:
    """Transfer-related steps of the client loop (see the module docstring)."""

    _tm: Any
    _watcher: Any
    _named: bool
    _quit: str
    _next_progress: float
    console: Any
    send_dir: Path
    auto_send: bool
    progress: list[Any]

    def _changed(self) -> None:  # provided by ClientLoop
        raise NotImplementedError

    def _sendfile(self, rest: str) -> None:
        try:
            args = shlex.split(rest)
        except ValueError:
            args = []
        if len(args) != 1:
            self.console.error('usage: /sendfile NAME (quote a name with spaces: /sendfile "my file.txt")')
            return
        if self._tm is None:
            self.console.error("file transfer is not available in this client")
            return
        self._tm.send_file(args[0])

    def _drain_watcher(self) -> None:
        if self._watcher is None or not self._named or self._quit != "no":
            return
        for path in self._watcher.ready():
            name = Path(path).name
            if self.auto_send and self._tm is not None:
                self._tm.send_file(name)
            else:
                self.console.line(ready_hint(self.send_dir.as_posix(), name))

    # ---- quitting ------------------------------------------------------------------

    def _refresh_progress(self) -> None:
        if self._tm is None:
            if self.progress:
                self.progress = []
                self._changed()
            return
        now = time.monotonic()
        if now < self._next_progress:
            return
        self._next_progress = now + PROGRESS_INTERVAL
        snapshot = list(self._tm.progress())
        if snapshot or self.progress:
            self.progress = snapshot
            self._changed()

