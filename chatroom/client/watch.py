"""Watch the send folder with watchdog and report files that are complete, once.

:class:`SendFolderWatcher` runs a watchdog observer on ``send_dir`` (not
recursive) plus one worker thread of its own:

* the observer's handler only puts events on a queue (it runs on the
  observer's thread);
* the worker decides when a file is complete, puts its path on the ready
  queue and calls ``wake()`` so the client's loop drains :meth:`ready` (and
  :meth:`changed`).

The rule (``chatroom-client --auto-send``, ``--settle``): a file is complete

* when it was closed after writing and then stayed closed and unchanged (size
  and mtime) for ``settle`` seconds (default :data:`SETTLE`, 1 s): a file
  appended to in several steps, each closing it, is reported once, whole, as
  long as the steps come less than ``settle`` seconds apart; or
* when it is renamed or moved into the folder (``FileMovedEvent`` for a rename
  inside it; a ``mv`` from elsewhere on the same file system gives only
  ``FileCreatedEvent`` with the full content, confirmed once nobody has it
  open and it stayed the same for ``settle`` seconds). Writing elsewhere (or
  as ``NAME.part``) and then renaming is therefore the safe way.

Opens and closes are counted (inotify's ``FileOpenedEvent``,
``FileClosedEvent``, ``FileClosedNoWriteEvent``): a file somebody still has
open is not confirmed. Observers without open and close events (polling,
other systems) confirm every created, modified or moved-in file by the settle
check alone. Dotfiles and partial downloads (``*.part``, ``*.crdownload``...)
are ignored.

A file is reported once. If it changes in place after it was reported, it is
not reported again; :meth:`changed` names it once (the client says how to
send it again: ``/sendfile NAME``); a ``touch`` that changes only the mtime
is no change (the SHA-256 is compared). A file deleted, or replaced by a new
one renamed or moved over it, is a new file. Files present at start are not
reported, but one of them rewritten later is (that content was never
reported).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirModifiedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

__all__ = ["SETTLE", "SendFolderWatcher", "ignored"]

log = logging.getLogger("chatroom.client.watch")

#: Default seconds a file closed after writing (or moved in, or polled) must stay closed and unchanged
#: (``chatroom-client --settle``, whose help repeats the value).
SETTLE = 1.0
_PARTIAL_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", ".swp", "~")


def ignored(name: str) -> bool:
    """True for names the watcher never reports: dotfiles and partial or temporary files."""
    return not name or name.startswith(".") or name.lower().endswith(_PARTIAL_SUFFIXES)


class _Handler(FileSystemEventHandler):
    def __init__(self, events: queue.SimpleQueue[Any]) -> None:
        self.events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        if not event.is_directory and not isinstance(event, DirModifiedEvent):
            self.events.put(event)


class SendFolderWatcher:
    """Reports complete files appearing in *send_dir*; ``wake()`` is called (from
    a watcher thread) whenever :meth:`ready` or :meth:`changed` has something new.

    *settle* is in seconds (see the module docstring). *observer_factory*
    builds the watchdog observer (default ``watchdog.observers.Observer``;
    tests pass ``PollingObserver``). :meth:`start`, :meth:`stop`,
    :meth:`ready` and :meth:`changed` may be called from any one thread.
    """

    def __init__(
        self,
        send_dir: Path,
        wake: Callable[[], None],
        *,
        settle: float = SETTLE,
        observer_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.send_dir = Path(send_dir)
        self.wake = wake
        self.settle = settle
        self._factory = observer_factory or Observer
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._changed: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._observer: Any = None
        self._thread: threading.Thread | None = None
        self._close_events = False
        # worker-thread state
        self._known: dict[str, tuple[int, int, str | None]] = {}  # path -> (size, mtime_ns, sha256 or None)
        self._reported: dict[str, bool] = {}  # path reported -> told changed() about a later change already
        self._open: dict[str, int] = {}  # path -> opens seen minus closes seen
        self._pending: dict[str, tuple[float, tuple[int, int] | None]] = {}  # path -> (deadline, stat seen)

    # -- public API ----------------------------------------------------------------
    def start(self) -> None:
        """Create the folder if needed, remember the files already there, start watching."""
        self.send_dir.mkdir(parents=True, exist_ok=True)
        self._dir = os.path.realpath(self.send_dir)
        for entry in os.scandir(self._dir):
            st = self._stat(entry.path)
            if st is not None:
                self._known[entry.path] = (*st, None)
        self._observer = self._factory()
        self._close_events = type(self._observer).__name__ == "InotifyObserver"
        self._observer.schedule(_Handler(self._events), self._dir, recursive=False)
        self._observer.start()
        self._thread = threading.Thread(target=self._run, name="chatroom-send-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the observer and the worker; safe to call twice or before start()."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        if self._thread is not None:
            self._events.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def ready(self) -> list[Path]:
        """The complete files found since the last call (``send_dir / name``), oldest first."""
        return self._take(self._ready)

    def changed(self) -> list[Path]:
        """Files reported earlier whose content changed in place since (each named once), oldest first."""
        return self._take(self._changed)

    @staticmethod
    def _take(source: queue.SimpleQueue[Path]) -> list[Path]:
        found = []
        while True:
            try:
                found.append(source.get_nowait())
            except queue.Empty:
                return found

    # -- worker thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            timeout = None
            if self._pending:
                timeout = max(0.0, min(d for d, _ in self._pending.values()) - time.monotonic())
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                event = False
            if event is None:
                return
            try:
                if event is not False:
                    self._on_event(event)
                self._check_pending()
            except Exception:  # never let one odd file stop the watcher
                log.exception("send folder watcher: error handling %r", event)

    def _on_event(self, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        if isinstance(event, FileMovedEvent):
            self._forget(src)
            dest = os.fsdecode(event.dest_path)
            if self._watched(dest):
                self._forget(dest)  # renamed over: a new file
                self._consider(dest) if self._close_events else self._wait(dest)
            return
        if not self._watched(src):
            return
        if isinstance(event, FileDeletedEvent):
            self._forget(src)
        elif isinstance(event, FileOpenedEvent):
            self._open[src] = self._open.get(src, 0) + 1
        elif isinstance(event, (FileClosedEvent, FileClosedNoWriteEvent)):
            left = self._open.pop(src, 0) - 1
            if left > 0:
                self._open[src] = left
            if isinstance(event, FileClosedEvent):
                self._wait(src)
        elif isinstance(event, FileCreatedEvent):
            self._forget(src)  # a new inode at this path: created, or moved in from elsewhere
            self._wait(src)
        elif isinstance(event, FileModifiedEvent) and not self._close_events:
            self._wait(src)

    def _watched(self, path: str) -> bool:
        return os.path.dirname(path) == self._dir and not ignored(os.path.basename(path))

    def _forget(self, path: str) -> None:
        self._known.pop(path, None)
        self._reported.pop(path, None)
        self._open.pop(path, None)
        self._pending.pop(path, None)

    def _wait(self, path: str) -> None:
        """Confirm *path* once nobody has it open and its size and mtime stayed the same for ``settle`` s."""
        self._pending[path] = (time.monotonic() + self.settle, self._stat(path))

    def _check_pending(self) -> None:
        now = time.monotonic()
        for path, (deadline, seen) in list(self._pending.items()):
            if deadline > now:
                continue
            current = self._stat(path)
            if current is None:
                del self._pending[path]
            elif current == seen and not self._open.get(path):
                del self._pending[path]
                self._consider(path)
            else:
                self._pending[path] = (now + self.settle, current)

    def _consider(self, path: str) -> None:
        """Report *path* if it is a regular file whose content is new (or name it in changed())."""
        st = self._stat(path)
        if st is None:
            return
        size, mtime = st
        known = self._known.get(path)
        if known is not None and known[:2] == st:
            return
        digest = self._hash(path)
        if digest is None:
            return
        self._known[path] = (size, mtime, digest)
        if known is not None and known[0] == size and known[2] == digest:
            return  # touched, same content
        told = self._reported.get(path)
        if told is None:
            self._reported[path] = False
            self._ready.put(self.send_dir / os.path.basename(path))
        elif not told:
            self._reported[path] = True
            self._changed.put(self.send_dir / os.path.basename(path))
        else:
            return
        self.wake()

    @staticmethod
    def _stat(path: str) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or ignored(os.path.basename(path)):
            return None
        return st.st_size, st.st_mtime_ns

    @staticmethod
    def _hash(path: str) -> str | None:
        hasher = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1024 * 1024):
                    hasher.update(chunk)
        except OSError:
            return None
        return hasher.hexdigest()
