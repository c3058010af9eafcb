"""``chatroom-server --plugin-dir DIR --reload``: reload a drop-in plugin when its file changes.

A watchdog observer (inotify on Linux) watches each plugin folder, not
recursively. Its handler runs on the observer's thread and only hands the
path to the loop (``Scheduler.call_soon_threadsafe``); on the loop, a path
is reloaded :data:`SETTLE` seconds after its last change, so an editor's
save (truncate, write, rename) is one reload. The reload itself, with its
checks and rollback, is :meth:`chatroom.plugins.reloading.Reloader.reload_file`.
Files starting with ``_`` or ``.`` and anything but ``*.py`` are ignored; a
deleted file leaves its plugin running (restart to drop it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from chatroom.plugins.context import Context
from chatroom.plugins.manager import FAULT
from chatroom.plugins.reloading import import_file

__all__ = ["SETTLE", "PluginReloader"]

log = logging.getLogger("chatroom.plugins")

#: Seconds a file must stay unchanged before it is reloaded.
SETTLE = 0.3


class _Handler(FileSystemEventHandler):
    """Runs on the observer's thread: only queues the path for the loop."""

    def __init__(self, reloader: PluginReloader) -> None:
        self.reloader = reloader

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write", "deleted") or event.is_directory:
            return
        raw = getattr(event, "dest_path", "") or event.src_path
        path = Path(raw.decode() if isinstance(raw, bytes) else raw)
        if path.suffix == ".py" and not path.name.startswith(("_", ".")) and path.parent in self.reloader.folders:
            self.reloader.port.call_soon_threadsafe(self.reloader.changed, (path,), "core")


class PluginReloader:
    """Watches *folders* for *server* (its ``plugins``, ``events`` and plugin ``port``). :meth:`start` and
    :meth:`stop` from the loop's thread; the rest runs on the loop."""

    def __init__(self, server: Any, folders: list[Path]) -> None:
        self.plugins, self.events, self.port = server.plugins, server.events, server.port
        self.folders = {Path(f).resolve() for f in folders}
        self._observer: Any = None
        self._timers: dict[Path, Any] = {}

    def start(self) -> None:
        """Start watching (one observer thread)."""
        self._observer = Observer()
        handler = _Handler(self)
        for folder in sorted(self.folders):
            self._observer.schedule(handler, str(folder), recursive=False)
        self._observer.daemon = True
        self._observer.start()
        log.info("watching %s for plugin changes (--reload)", ", ".join(map(str, sorted(self.folders))))

    def stop(self) -> None:
        """Stop watching and wait for the observer thread (at most 2 s)."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2.0)
            self._observer = None

    def changed(self, path: Path) -> None:
        """*path* changed: (re)start its settle timer (loop thread)."""
        timer = self._timers.pop(path, None)
        if timer is not None:
            timer.cancel()
        self._timers[path] = self.port.call_later(SETTLE, self.reload, path)

    def reload(self, path: Path) -> bool:
        """Reload the plugin in *path* now; True if the new version runs (loop thread)."""
        self._timers.pop(path, None)
        if not path.exists():
            return False
        return bool(self.plugins.reload_file(path.stem, path, import_file=import_file,
                                             on_swap=self._swap, call_hook=self._call_one))

    def _swap(self, name: str) -> None:
        self.port.cancel_timers(name)
        self.port.plugin_state(name).clear()  # a new version starts with an empty ctx.state

    def _call_one(self, hook: str, name: str) -> bool:
        """Call *hook* (``startup`` or ``shutdown``) of the plugin *name* only; False if it raised."""
        ok = True
        for impl in self.plugins.impls(hook):
            if impl.plugin_name == name:
                ctx = Context(self.port, name)
                result = self.plugins.call_safely(name, impl.function,
                                                  **({"ctx": ctx} if "ctx" in impl.argnames else {}))
                ok = ok and result is not FAULT
        self.events.refresh()
        return ok
