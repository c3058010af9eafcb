"""WAL checkpoints on a thread of their own: no commit pays for the ``fsync``.

With WAL and ``synchronous=NORMAL`` a commit is a ``write`` to the WAL and no
``fsync``; the ``fsync`` come with the checkpoint that copies the WAL into the
database file, which SQLite runs *inside the commit* that crosses 1,000 WAL
pages (``wal_autocheckpoint``). Measured here during connection churn beside
a 1 GiB transfer: one such commit took 825 ms of wall time for 2.4 ms of CPU,
and while it ran on the loop thread the whole room waited (issue 17, row 5).

So every connection that writes for the server (a :class:`~chatroom.model.writer.Writer`'s,
a plugin's ``ctx.store``) turns ``wal_autocheckpoint`` off (:func:`no_autocheckpoint`),
and a :class:`Checkpointer` thread runs ``PRAGMA wal_checkpoint(PASSIVE)`` on
its own connection at most every :data:`CHECKPOINT_EVERY` seconds after the
file was written: a passive checkpoint never blocks a writer nor waits for a
reader, so a slow disk delays nobody. It learns of writes from :meth:`Checkpointer.poke`
(a writer thread calls it after each commit) or, for a connection it does not
see (a plugin's store, written on the loop), by watching the WAL file's size
and modification time at each turn. The WAL stays bounded: it is reused from
its start once a checkpoint has copied all of it.

Threads: :meth:`Checkpointer.poke` and :meth:`Checkpointer.close` from any
thread. Standard library and :mod:`chatroom.model.store` only.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from chatroom.model.store import open_store

__all__ = ["CHECKPOINT_EVERY", "Checkpointer", "no_autocheckpoint"]

#: Seconds between two checkpoints (at most; none while nothing was written).
CHECKPOINT_EVERY = 0.5


def no_autocheckpoint(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Turn SQLite's automatic checkpoint off on *conn* (a :class:`Checkpointer` does it); returns *conn*."""
    conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


class Checkpointer:
    """The thread that checkpoints the SQLite file *path* (named *name*, for ``ps -L``).

    ``watch=True``: it also checks the WAL file (``PATH-wal``) every :data:`CHECKPOINT_EVERY` seconds
    and checkpoints when it changed; without it, only after a :meth:`poke`. A failing checkpoint (the
    file locked, a full disk) is tried again at the next turn. A daemon thread, started at once.
    """

    def __init__(self, path: Path, *, name: str = "chatroom-checkpoint", watch: bool = False) -> None:
        self.path = Path(path)
        self._wal = Path(f"{self.path}-wal")
        self._watch = watch
        self._seen: tuple[int, int] | None = None  # the WAL's (size, mtime_ns) at the last checkpoint
        self._written = threading.Event()  # a commit since the last checkpoint
        self._stop = threading.Event()
        #: Checkpoints run (statistics, ``int``).
        self.checkpoints = 0
        try:  # opened now, not at the first checkpoint: the process's files stay the same while it runs
            self._conn: sqlite3.Connection | None = open_store(self.path, check_same_thread=False)
        except (sqlite3.Error, OSError):
            self._conn = None  # opened at the first checkpoint
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Any thread: *path* was written (a commit); checkpoint soon."""
        self._written.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (the file's last closer checkpoints the rest: :func:`~chatroom.model.store.close_store`)."""
        self._stop.set()
        self._written.set()
        self._thread.join(timeout)

    def _changed(self) -> bool:
        try:
            st = os.stat(self._wal)
        except OSError:
            return False
        seen = (st.st_size, st.st_mtime_ns)
        if seen == self._seen:
            return False
        self._seen = seen
        return True

    def _run(self) -> None:
        conn, self._conn = self._conn, None
        try:
            while not self._stop.is_set():
                if not self._written.wait(CHECKPOINT_EVERY if self._watch else None) and not self._changed():
                    continue
                if self._stop.is_set():
                    return
                self._written.clear()
                try:
                    if conn is None:
                        conn = open_store(self.path, check_same_thread=False)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:
                    if conn is not None:
                        conn.close()
                    conn = None  # tried again at the next turn
                    self._seen = None
                if self._stop.wait(CHECKPOINT_EVERY):
                    return
        finally:
            if conn is not None:
                conn.close()
