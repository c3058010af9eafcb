"""One file a client sends (:class:`Outgoing`), and where ``/sendfile NAME`` finds it (:func:`source_path`).

Used by :class:`chatroom.client.send.Sender`, on the client's loop thread only.
"""

from __future__ import annotations

import hashlib
import stat
import time
from pathlib import Path
from typing import IO

from chatroom.client.journal import HashJob, SendRecord

__all__ = ["Outgoing", "source_path"]


class Outgoing:
    """A file on its way out: *name* as the room sees it, the open *file*, *size* bytes (of this session),
    *source* its path inside the send folder; ``id`` once the server gave one, ``done`` bytes sent so far."""

    __slots__ = ("cancelled", "done", "ended", "file", "hasher", "hashing", "id", "name", "plan", "pos", "record",
                 "size", "source", "started")

    def __init__(self, name: str, file: IO[bytes], size: int, source: str) -> None:
        self.name, self.file, self.size, self.source = name, file, size, source
        self.id: int | None = None
        self.done = 0
        self.hasher = hashlib.sha256()
        self.started = time.monotonic()
        self.ended = False  # file-end written; waiting for file-done
        self.cancelled = False  # /cancel while the offer waited for OK: abort as soon as the ID is known
        self.hashing: HashJob | None = None  # a resumable offer being hashed before its announce
        self.record: SendRecord | None = None  # a resumable offer's record (its token, hash list)
        self.plan: list[int] | None = None  # a resumable session's chunks (None: all, in order)
        self.pos = 0

    def close(self) -> None:
        self.file.close()


def source_path(send_dir: Path, name: str) -> tuple[Path | None, str]:
    """``send_dir/name`` if it is a regular file inside *send_dir* (a path, ``""``), else ``(None, why not)``."""
    folder = send_dir.name or str(send_dir)
    if not name or "\x00" in name:
        return None, "usage: /sendfile NAME (a file in the send folder; quote names with spaces)"
    root = send_dir.resolve()
    path = (send_dir / name).resolve()
    if Path(name).is_absolute() or not path.is_relative_to(root) or path == root:
        return None, f"sendfile: {name!r} is not inside {folder}/"
    try:
        mode = path.stat().st_mode
    except OSError:
        return None, f"sendfile: no file {name!r} in {folder}/"
    if not stat.S_ISREG(mode):
        return None, f"sendfile: {folder}/{name} is not a regular file"
    return path, ""
