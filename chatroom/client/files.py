"""The file-transfer side of :class:`chatroom.client.loop.ClientLoop`: ``/sendfile``, the watched send
folder, offers waiting for consent, and the progress snapshot the UIs draw.

Consent (``--accept-files ask``, the default on a terminal): the server sends
``file-offer ID SIZE SENDER NAME`` and the client shows
``bob offers "NAME" (SIZE bytes): /accept ID or /decline ID``; the person
types one of them (sent to the server as typed). An offer nobody answers ends
with the server's ``file-abort ID no answer in 60 s: declined``, shown as
``offer ID of "NAME" from bob: no answer in 60 s: declined``. In ``all`` or
``none`` mode the server answers for the client (``/files``), and an offer that
still arrives is answered at once.

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
from chatroom.wire.filenames import safe_name
from chatroom.wire.lines import Frame

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
    accept_files: str
    _offered: dict[str, tuple[str, str]]  # offer id -> (name, sender), waiting for the person's answer

    def _changed(self) -> None:  # provided by ClientLoop
        raise NotImplementedError

    def _send(self, text: str) -> None:  # provided by ClientLoop
        raise NotImplementedError

    def _file_frame(self, frame: Frame) -> None:
        """A frame from the server: offers are handled here, everything else by the transfer component."""
        kind, _, rest = frame.meta.partition(" ")
        tid, _, arg = rest.partition(" ")
        offered = self._offered
        if kind == "file-offer":
            size, _, rest = arg.partition(" ")
            sender, _, raw_name = rest.partition(" ")
            if not tid.isdigit() or not size.isdigit():
                return
            if self.accept_files in ("all", "none"):
                self._send(f"/{'accept' if self.accept_files == 'all' else 'decline'} {tid}")
                return
            offered[tid] = (safe_name(raw_name), sender)
            self.console.line(f'{sender} offers "{safe_name(raw_name)}" ({size} bytes): '
                              f"/accept {tid} or /decline {tid}")
            return
        if kind in ("file-begin", "file-abort") and tid in offered:
            name, sender = offered.pop(tid)
            if kind == "file-abort":
                self.console.line(f'offer {tid} of "{name}" from {sender}: {arg.strip() or "cancelled"}')
                return
        if self._tm is not None:
            self._tm.handle_frame(frame)

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

