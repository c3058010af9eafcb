"""Start-up checks of ``chatroom-server``: is the data folder usable, are the stores readable?

Run before the server binds, so a mistake is one line and exit status 2,
not a traceback later or a failure for everyone at the first ``/read``.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

class StartupError(Exception):
    """A problem found before listening; its message is the one line to print."""


def check_data_dir(data_dir: Path) -> None:
    """Create *data_dir* if needed and prove it writable (a file is created and removed).

    Raises :class:`StartupError` naming the folder and the reason.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create data dir {data_dir}: {exc.strerror or exc}") from None
    if not data_dir.is_dir():
        raise StartupError(f"data dir {data_dir} is not a folder")
    for folder in (data_dir, data_dir / "plugins"):
        if not folder.exists():
            continue
        if not folder.is_dir():
            raise StartupError(f"{folder} is not a folder (plugin stores live there)")
        try:
            fd, name = tempfile.mkstemp(dir=folder, prefix=".write-test-")
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            raise StartupError(f"cannot write in data dir {folder}: {exc.strerror or exc}") from None


def check_store(path: Path, kind: str = "plugin store") -> None:
    """Open the SQLite database *path* read-write and check it (``PRAGMA quick_check``).

    Never creates a file. Raises :class:`StartupError` naming the file if it is
    not a database, is corrupt, or cannot be opened.
    """
    conn = None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=5.0)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(1)")]
    except sqlite3.Error as exc:
        raise StartupError(f"{kind} {path} is unreadable: {exc} (move it away to start afresh)") from None
    finally:
        if conn is not None:
            conn.close()
    if problems != ["ok"]:
        first = " ".join(" ".join(problems).split())[:200]  # one line, however sqlite words it
        raise StartupError(f"{kind} {path} is corrupt: {first} (move it away to start afresh)")


def check_stores(data_dir: Path) -> None:
    """:func:`check_store` on the server's own stores (``DATA_DIR/*.sqlite3``: rooms, accounts) and on
    every ``DATA_DIR/plugins/*.sqlite3``, in name order."""
    for folder, kind in ((data_dir, "store"), (data_dir / "plugins", "plugin store")):
        if folder.is_dir():
            for path in sorted(folder.glob("*.sqlite3")):
                check_store(path, kind)


#: Descriptors the server keeps for itself (its SQLite stores with their WAL files, one connection per thread,
#: the log, the lock, epoll; 37 measured with the built-in plugins): what is left of the limit is for sockets.
OWN_DESCRIPTORS = 40
#: Below this many sockets the start-up log warns that the descriptor limit, not the server, caps connections.
FEW_SOCKETS = 200


def raise_descriptor_limit() -> tuple[int, int, int]:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit (at most 2**20), as servers do: a shell's
    default soft limit (often 1,024) would cap connections long before memory does. Returns ``(before, now,
    hard)``; ``now`` is ``before`` when the kernel refuses. Main thread, at start-up."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard if hard != resource.RLIM_INFINITY else 1 << 20, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            return soft, soft, hard
        return soft, want, hard
    return soft, soft, hard
