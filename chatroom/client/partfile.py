"""The part file an incoming transfer is written to (``received/.NAME.ID.part``): :class:`PartFile`.

Written for speed on the receiving path (issue 12): each payload piece (a ``memoryview`` of the
client's receive buffer, see :mod:`chatroom.wire.stream`) goes to the kernel with one ``os.write``,
no Python-level buffer or copy in between. Behind the write position the file's pages are handed
back with ``posix_fadvise(POSIX_FADV_DONTNEED)`` over a sliding window (Linux and the BSDs; a no-op
elsewhere): the first call on a range starts its writeback, a later one drops the pages now clean.
A received file therefore does not push everything else out of the page cache, and the kernel
keeps reusing a few MiB of recently freed pages. On the benchmark machine (a virtual machine whose
fresh pages cost a fault in the host) that took writing 1 GiB from ~3 to ~0.4 CPU seconds; see
``docs/benchmarks.md``, "Receiving in chatroom-client". The loop thread is the only caller.
"""

from __future__ import annotations

import os
from pathlib import Path

from chatroom.wire.filenames import unique_path

__all__ = ["DROP_STEP", "DROP_WINDOW", "PartFile", "open_part", "place"]

#: Bytes written between two ``posix_fadvise`` calls.
DROP_STEP = 4 * 1024 * 1024
#: Bytes behind the write position each call covers.
DROP_WINDOW = 32 * 1024 * 1024
_FADVISE = getattr(os, "posix_fadvise", None)
_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", 0)


class PartFile:
    """A file created exclusively at *path* (FileExistsError if it exists; other OSError as ``open``)."""

    __slots__ = ("_dropped", "fd", "path", "pos")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        self.pos = 0  # bytes written
        self._dropped = 0  # self.pos at the last posix_fadvise

    def write(self, data: bytes | memoryview) -> None:
        """Write all of *data* at the end; raises OSError (``errno.ENOSPC`` when the disk is full)."""
        with memoryview(data) as view:
            while view:
                n = os.write(self.fd, view)
                self.pos += n
                view = view[n:]
        if self.pos - self._dropped >= DROP_STEP and _FADVISE is not None:
            start = max(0, self.pos - DROP_WINDOW)
            try:
                _FADVISE(self.fd, start, self.pos - start, _DONTNEED)
            except OSError:
                pass  # advice only
            self._dropped = self.pos

    def close(self) -> None:
        """Close it (safe to call twice); raises OSError if the kernel reports a failed write."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def open_part(folder: Path, name: str, tid: int) -> PartFile:
    """A new ``folder/.NAME.TID.part`` (``.NAME.TID.1.part``... if taken); raises OSError."""
    for n in range(100):
        extra = f".{n}" if n else ""
        try:
            return PartFile(folder / f".{name}.{tid}{extra}.part")
        except FileExistsError:
            continue
    raise FileExistsError(f"too many partial files for {name}")


def place(part: Path, folder: Path, name: str) -> Path:
    """Move the finished *part* file to a free name for *name* in *folder* (``name (1).ext``...) and return it.

    Never overwrites: a hard link to the free name is made atomically (a name taken meanwhile is skipped),
    then *part* is unlinked; where hard links are not possible, *part* is renamed to the name just found
    free. Raises OSError, FileExistsError when no name is free.
    """
    for _ in range(1000):
        dest = unique_path(folder, name)
        try:
            os.link(part, dest)
        except FileExistsError:
            continue
        except OSError:  # no hard links here: rename to the name just found free
            os.rename(part, dest)
            return dest
        os.unlink(part)
        return dest
    raise FileExistsError(f"no free name for {name}")
