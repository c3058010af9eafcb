"""The sidecar of a resumable file arriving (``received_dir/.NAME.TOKEN.chunks``): :class:`ChunkLog`.

docs/protocol.md, "Resumable transfers", is the wire; :mod:`chatroom.client.journal` the records. The sidecar
is a first line of JSON (the offer: token, name, sender, size, chunk size, SHA-256, hash list), written and
synced before any byte of the file (:func:`start`), then one line per **verified** chunk (its index). A
chunk's line is appended only after its bytes were flushed to the disk (``fdatasync`` of the part file, then
the line, then ``fsync`` of the sidecar), in batches of :data:`SYNC_BYTES` or :data:`SYNC_SECONDS`, whichever
comes first, and whenever the transfer stops. The syncs of a batch run in order on a thread of the log's own,
so the loop goes on reading while the disk catches up; :meth:`ChunkLog.flush` waits for them. A crash
therefore loses at most the last two batches (one being synced, one waiting), and never makes a chunk count
that is not on the disk.

Loop thread only (the sync thread runs only :func:`_record_batch`); every method raises OSError for I/O
failures, an earlier batch's included.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

__all__ = ["SYNC_BYTES", "SYNC_SECONDS", "ChunkLog", "close_quietly", "start", "write_atomically"]

#: Verified bytes written before the part file is synced and their chunks recorded in the sidecar.
SYNC_BYTES = 4 * 1024 * 1024
#: Seconds after which verified chunks are synced and recorded even when fewer bytes wait.
SYNC_SECONDS = 0.5
_FADVISE = getattr(os, "posix_fadvise", None)
_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def write_atomically(path: Path, text: str) -> None:
    """*text* into *path* via a temporary file, synced, then renamed over it (a record is whole or absent)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def close_quietly(fd: int) -> int:
    """Close the file descriptor *fd* unless it is -1 (closed already), ignoring errors; returns -1."""
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
    return -1


def start(path: Path, header: str) -> None:
    """A new sidecar at *path* holding only its *header* (one line of JSON, no newline), synced."""
    write_atomically(path, header + "\n")


class ChunkLog:
    """The sidecar at *path* (its header written: :func:`start`) of the part file open as *part_fd*, which it
    syncs but never closes. ``pending`` holds the verified chunks not handed to the sync thread yet."""

    def __init__(self, path: Path, part_fd: int) -> None:
        self.path = path
        self.pending: list[int] = []
        self._pending_bytes = 0
        self._pending_since = 0.0
        self._part = part_fd
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | _CLOEXEC)
        self._syncer: ThreadPoolExecutor | None = None  # one thread: batches reach the disk in order
        self._syncing: list[Future[None]] = []  # batches handed to it and not yet seen done

    def add(self, index: int, length: int) -> None:
        """Chunk *index* (*length* bytes, written to the part file) verified: it joins the batch, which goes to
        the sync thread (:meth:`sync`) once it holds :data:`SYNC_BYTES` or waited :data:`SYNC_SECONDS`."""
        self.pending.append(index)
        self._pending_bytes += length
        self._pending_since = self._pending_since or time.monotonic()
        if self._pending_bytes >= SYNC_BYTES or time.monotonic() - self._pending_since >= SYNC_SECONDS:
            self.sync()

    def due(self) -> bool:
        """Have verified chunks waited :data:`SYNC_SECONDS` or more for :meth:`sync`?"""
        return bool(self.pending) and time.monotonic() - self._pending_since >= SYNC_SECONDS

    def sync(self) -> None:
        """Hand the verified chunks waiting for a sync to the sync thread: it flushes the part file to the disk,
        then appends their lines to the sidecar and syncs it. Waits while the batch before is still in flight,
        so a crash loses at most two batches. Raises the OSError an earlier batch met."""
        self._reap(wait=False)
        if not self.pending:
            return
        lines = "".join(f"{i}\n" for i in self.pending).encode()
        self.pending.clear()
        self._pending_bytes = 0
        self._pending_since = 0.0
        if self._syncer is None:
            self._syncer = ThreadPoolExecutor(1, thread_name_prefix="chatroom-sync")
        if self._syncing:  # one batch in flight at most: a slow disk slows the transfer, not the record
            self._syncing[0].result()
            self._syncing.pop(0)
        self._syncing.append(self._syncer.submit(_record_batch, self._part, self._fd, lines))

    def flush(self) -> None:
        """:meth:`sync`, then wait until every batch is on the disk; raises the OSError one met."""
        self.sync()
        self._reap(wait=True)

    def _reap(self, *, wait: bool) -> None:
        """Forget the batches that are done (all of them, waiting, when *wait*); raise the first one's error."""
        error = None
        while self._syncing and (wait or self._syncing[0].done()):
            error = error or self._syncing.pop(0).exception()
        if error is not None:
            raise error

    def rewrite(self, chunks: Iterable[int]) -> None:
        """Replace the recorded chunks by *chunks* (the header stays), atomically: after :meth:`flush`, when
        chunks read back no longer hash right."""
        header = self.path.read_text().split("\n", 1)[0]
        write_atomically(self.path, header + "\n" + "".join(f"{i}\n" for i in sorted(chunks)))
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | _CLOEXEC)

    def close(self) -> None:
        """Close the sidecar (safe twice) once the sync thread is done with it; an earlier batch's error is
        dropped (the chunks it held are simply not recorded)."""
        try:
            self._reap(wait=True)
        except OSError:
            pass
        if self._syncer is not None:
            self._syncer.shutdown()
            self._syncer = None
        self._fd = close_quietly(self._fd)


def _record_batch(fd: int, side: int, lines: bytes) -> None:
    """On a log's sync thread: the part file *fd* to the disk, then the verified chunks' *lines* appended
    to the sidecar *side* and that synced; the part's clean pages are handed back, as PartFile does."""
    os.fdatasync(fd)
    os.write(side, lines)
    os.fsync(side)
    if _FADVISE is not None:
        try:
            _FADVISE(fd, 0, 0, _DONTNEED)
        except OSError:
            pass
