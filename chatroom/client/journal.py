"""The client's resumable transfers on disk: what survives a lost connection, a server restart and a client restart.

docs/protocol.md, "Resumable transfers", is the wire; this module is the two records a client keeps:

* **Sending** (:class:`SendRecord`): ``send_dir/.NAME.TOKEN.send`` (NAME: the file's safe name, at most 200
  bytes), one JSON object: the sender's token,
  the file's name, size and modification time, the chunk size, the whole-file SHA-256 and the hash list.
  Written when the server gives the token (``file-id``), removed when the server says the offer is over
  (``file-gone``) or it is cancelled. The send folder's watcher ignores dotfiles.
* **Receiving** (:class:`Incoming`): ``received_dir/.NAME.TOKEN.part`` (the file's bytes, each chunk at its
  offset) and its sidecar ``received_dir/.NAME.TOKEN.chunks``: a first line of JSON (token, name, sender,
  size, chunk size, SHA-256, hash list), written and synced before any byte of the file, then one line
  per **verified** chunk (its index). A chunk counts only when its bytes hashed to its entry in the hash
  list, and its line is appended only after those bytes were flushed to the disk, in batches
  (:class:`chatroom.client.chunklog.ChunkLog`, the sidecar's own object). So a crash loses at most
  the last two batches (one being synced, one waiting), and never makes a chunk count that is not on the disk: neither a prefix of the part
  file nor a zero-filled hole is ever trusted. Before a transfer resumes, every chunk the sidecar lists is
  read back and hashed again (:meth:`Incoming.verify`): one damaged on the disk meanwhile is asked for
  again. When every chunk is in, the whole file's SHA-256 is checked (computed as the chunks arrive when
  they arrive in order from the first, else read back) and the part file is moved into place atomically
  (a hard link to a free name, never overwriting, then the part file and the sidecar are removed).

Records older than :data:`MAX_AGE` are removed when loaded (the server keeps an offer at most 30 days).
Loop thread only; every method raises OSError for I/O failures it does not handle itself. The syncs of a
batch run in order on a thread of the sidecar's own (:class:`~chatroom.client.chunklog.ChunkLog`), so the
loop goes on reading while the disk catches up; ``incoming.log.flush()`` waits for them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from chatroom.client.chunklog import ChunkLog, close_quietly, start, write_atomically
from chatroom.client.partfile import place
from chatroom.wire.chunks import DIGEST, chunk_count, chunk_span, is_sha256, is_token
from chatroom.wire.filenames import safe_name

__all__ = ["MAX_AGE", "HashJob", "Incoming", "Journal", "SendRecord", "load_incoming", "load_sends"]

#: Records older than this (seconds since their last change) are removed when loaded.
MAX_AGE = 30 * 86400.0
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _int(value: object) -> int:
    """A record's number (JSON's int, or a float or digits) as an ``int``; TypeError for anything else."""
    if isinstance(value, (int, float, str)):
        return int(value)
    raise TypeError(f"not a number: {value!r}")


def _meta_ok(meta: dict[str, object]) -> bool:
    """Is *meta* (a record's JSON) well formed: a token, a name, sizes, a SHA-256 and a hash list that fit?"""
    try:
        size, chunk = _int(meta["size"]), _int(meta["chunk"])
        hashes = bytes.fromhex(str(meta["hashes"]))
    except (KeyError, TypeError, ValueError):
        return False
    return (is_token(str(meta.get("token"))) and bool(meta.get("name")) and size >= 0 and chunk > 0
            and is_sha256(str(meta.get("sha256"))) and len(hashes) == chunk_count(size, chunk) * DIGEST)


# -- sending ------------------------------------------------------------------------------------------------
class HashJob:
    """The SHA-256 of the file at *path* and of each of its *chunk*-byte chunks (a new offer's), computed on a
    daemon thread (the whole-file hash on a second one, in step): ``finished`` is set with ``result``
    (SHA-256 hex, hash list, ``st_mtime_ns``) or ``error`` (why not; also when the file changed while it was
    read). The thread only fills these."""

    def __init__(self, path: Path, chunk: int) -> None:
        self.path, self.chunk = path, chunk
        self.result: tuple[str, bytes, int] | None = None  # sha256 hex, hash list, mtime_ns
        self.error: str | None = None
        self.finished = threading.Event()
        threading.Thread(target=self._run, name="chatroom-hash", daemon=True).start()

    def _run(self) -> None:
        try:
            with open(self.path, "rb") as file, ThreadPoolExecutor(1, thread_name_prefix="chatroom-hash") as pool:
                before = os.fstat(file.fileno())
                whole, digests = hashlib.sha256(), []
                while block := file.read(self.chunk):  # hashlib lets go of the GIL: the two hashes run at once
                    both = pool.submit(whole.update, block)
                    digests.append(hashlib.sha256(block).digest())
                    both.result()
                after = os.fstat(file.fileno())
            if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
                self.error = "the file changed while it was read"
            else:
                self.result = (whole.hexdigest(), b"".join(digests), after.st_mtime_ns)
        except OSError as exc:
            self.error = f"cannot read it: {exc.strerror or exc}"
        self.finished.set()


@dataclass
class SendRecord:
    """An own offer that can resume: *token* (the sender's), *name* (the file in the send folder), its *size*
    and ``mtime_ns`` when it was hashed, *chunk* size, *sha256* and *hashes* (the hash list); *path* is the
    record's file."""

    token: str
    name: str
    size: int
    mtime_ns: int
    chunk: int
    sha256: str
    hashes: bytes
    path: Path

    @classmethod
    def create(cls, folder: Path, token: str, name: str, size: int, mtime_ns: int, chunk: int, sha256: str,
               hashes: bytes) -> SendRecord:
        """Write a new record in *folder*, named after the file's safe name (*name* may be a long one, or a
        path inside the send folder; the record keeps it whole)."""
        path = Path(folder) / f".{safe_name(Path(name).name)}.{token}.send"
        record = cls(token, name, size, mtime_ns, chunk, sha256, hashes, path)
        write_atomically(record.path, json.dumps({
            "format": "chatroom-send/1", "token": token, "name": name, "size": size, "mtime_ns": mtime_ns,
            "chunk": chunk, "sha256": sha256, "hashes": hashes.hex()}))
        return record

    def chunk_ok(self, index: int, data: bytes | memoryview) -> bool:
        """Does *data* hash to chunk *index*'s entry in the hash list?"""
        return hashlib.sha256(data).digest() == self.hashes[index * DIGEST:(index + 1) * DIGEST]

    def remove(self) -> None:
        """Forget it (the file stays)."""
        self.path.unlink(missing_ok=True)


def load_sends(folder: Path) -> list[SendRecord]:
    """The send records in *folder* (malformed or too old ones removed)."""
    found = []
    for path in sorted(Path(folder).glob(".*.send")):
        try:
            meta = json.loads(path.read_text())
            if time.time() - path.stat().st_mtime > MAX_AGE or not _meta_ok(meta):
                raise ValueError(path)
            found.append(SendRecord(meta["token"], meta["name"], int(meta["size"]), int(meta.get("mtime_ns", 0)),
                                    int(meta["chunk"]), meta["sha256"], bytes.fromhex(meta["hashes"]), path))
        except (OSError, ValueError, TypeError, KeyError):
            path.unlink(missing_ok=True)
    return found


# -- receiving ----------------------------------------------------------------------------------------------
class Incoming:
    """A resumable file arriving (see the module docstring): the part file, its sidecar, the verified chunks.

    ``verified`` holds every chunk that hashed right; ``log`` (:class:`~chatroom.client.chunklog.ChunkLog`)
    records them in the sidecar (``log.pending``: those not synced and recorded yet); the open chunk is the
    one whose pieces are arriving.
    """

    def __init__(self, meta: dict[str, object], part: Path, sidecar: Path, verified: set[int]) -> None:
        self.token, self.name, self.sender = str(meta["token"]), str(meta["name"]), str(meta.get("sender", ""))
        self.size, self.chunk = _int(meta["size"]), _int(meta["chunk"])
        self.sha256 = str(meta["sha256"])
        self.hashes = bytes.fromhex(str(meta["hashes"]))
        self.count = chunk_count(self.size, self.chunk)
        self.part, self.sidecar, self.verified = part, sidecar, verified
        self._fd = os.open(part, os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o666)
        #: The sidecar, where the verified chunks are recorded in batches.
        self.log = ChunkLog(sidecar, self._fd)
        self._open: tuple[int, int, int, hashlib._Hash] | None = None  # index, offset, bytes so far, its hash
        self._whole: hashlib._Hash | None = hashlib.sha256() if not verified else None  # in order from chunk 0
        self._next = 0  # the chunk the in-order hash expects
        self.started = time.monotonic()
        self.session_bytes = 0  # bytes received in the current session

    @classmethod
    def create(cls, folder: Path, *, token: str, name: str, sender: str, size: int, chunk: int, sha256: str,
               hashes: bytes) -> Incoming:
        """A new record in *folder*: the sidecar's header is written and synced before the part file exists."""
        stem = Path(folder) / f".{name}.{token}"
        meta = {"format": "chatroom-chunks/1", "token": token, "name": name, "sender": sender, "size": size,
                "chunk": chunk, "sha256": sha256, "hashes": hashes.hex()}
        if not _meta_ok(meta):
            raise ValueError("the offer's hash list does not fit its size and chunk size")
        sidecar = stem.with_name(stem.name + ".chunks")
        start(sidecar, json.dumps(meta))
        return cls(meta, stem.with_name(stem.name + ".part"), sidecar, set())

    @property
    def done(self) -> int:
        """Bytes of the verified chunks (recorded in the sidecar or about to be)."""
        return sum(chunk_span(self.size, self.chunk, i)[1] for i in self.verified)

    def missing(self) -> list[int]:
        """The chunks still needed, ascending."""
        return [i for i in range(self.count) if i not in self.verified]

    # -- chunks arriving ---------------------------------------------------------------------------------
    def write(self, index: int, piece: bytes | memoryview) -> bool | None:
        """The next *piece* of chunk *index* (pieces of one chunk come in order): written at its offset.
        Returns None while the chunk is incomplete, then True if it verified, False if it did not (its
        bytes on the disk then count for nothing). Raises IndexError for an index past the end."""
        opened = self._open
        if opened is None or opened[0] != index:
            offset, _ = chunk_span(self.size, self.chunk, index)
            opened = (index, offset, 0, hashlib.sha256())
        index, offset, got, hasher = opened
        length = chunk_span(self.size, self.chunk, index)[1]
        n = len(piece)
        if got + n > length:
            self._open = None
            return False
        view = memoryview(piece)
        while view:
            view = view[os.pwrite(self._fd, view, offset + got + len(piece) - len(view)):]
        hasher.update(piece)
        self.session_bytes += n
        if self._whole is not None and index == self._next:
            self._whole.update(piece)
        got += n
        if got < length:
            self._open = (index, offset, got, hasher)
            return None
        self._open = None
        if hasher.digest() != self.hashes[index * DIGEST:(index + 1) * DIGEST]:
            self._whole = None
            return False
        if self._whole is not None:
            if index == self._next:
                self._next += 1
            else:
                self._whole = None
        if index not in self.verified:
            self.verified.add(index)
            self.log.add(index, length)
        return True

    def interrupted(self) -> None:
        """The session stopped: a chunk half arrived counts for nothing, and the verified ones are recorded."""
        if self._open is not None:
            self._open = None
            self._whole = None  # it took pieces of a chunk that never completed
        self.log.flush()

    def verify(self) -> list[int]:
        """Read back and hash every recorded chunk; the ones that no longer match are dropped (the sidecar
        is rewritten without them). Returns the dropped indices."""
        self.log.flush()
        bad = []
        for index in sorted(self.verified):
            offset, length = chunk_span(self.size, self.chunk, index)
            data = os.pread(self._fd, length, offset)
            if hashlib.sha256(data).digest() != self.hashes[index * DIGEST:(index + 1) * DIGEST]:
                bad.append(index)
        if bad:
            self.verified.difference_update(bad)
            self._whole = None
            self.log.rewrite(self.verified)
        return bad

    # -- the end ---------------------------------------------------------------------------------------------
    def whole_sha256(self) -> str:
        """The SHA-256 of the whole part file: from the in-order hash when every chunk came in order, else
        read back."""
        if self._whole is not None and self._next == self.count:
            return self._whole.hexdigest()
        hasher = hashlib.sha256()
        for index in range(self.count):
            offset, length = chunk_span(self.size, self.chunk, index)
            hasher.update(os.pread(self._fd, length, offset))
        return hasher.hexdigest()

    def finish(self, folder: Path) -> Path:
        """Every chunk is in: check the whole file's SHA-256, move the file into place under a free name and
        remove the sidecar; returns where it went. Raises ValueError when the SHA-256 does not match (the
        record is then removed) and OSError when it cannot be moved."""
        self.log.flush()
        if self.size == 0:
            os.ftruncate(self._fd, 0)
        got = self.whole_sha256()
        if got != self.sha256:
            self.discard()
            raise ValueError(f"sha256 mismatch (announced {self.sha256[:16]}, got {got[:16]})")
        os.ftruncate(self._fd, self.size)  # a part written past the end by nobody stays exactly SIZE bytes
        os.fsync(self._fd)
        self.close()
        dest = place(self.part, Path(folder), self.name)
        self.sidecar.unlink(missing_ok=True)
        return dest

    def close(self) -> None:
        """Close the files (safe twice) once the sync thread is done with them; the record stays on the disk."""
        self.log.close()
        self._fd = close_quietly(self._fd)

    def discard(self) -> None:
        """Remove the part file and the sidecar."""
        self.close()
        self.part.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)


def load_incoming(folder: Path) -> list[Incoming]:
    """The receive records in *folder* (their sidecars' chunks, not verified yet: :meth:`Incoming.verify`);
    malformed or too old ones are removed."""
    found = []
    for sidecar in sorted(Path(folder).glob(".*.chunks")):
        part = sidecar.with_name(sidecar.name[:-len(".chunks")] + ".part")
        try:
            head, _, body = sidecar.read_text().partition("\n")
            meta = json.loads(head)
            if time.time() - sidecar.stat().st_mtime > MAX_AGE or not _meta_ok(meta):
                raise ValueError(sidecar)
            count = chunk_count(int(meta["size"]), int(meta["chunk"]))
            lines = body.split("\n")[:-1]  # a torn last line (no newline) does not count
            verified = {int(x) for x in lines if x.isascii() and x.isdigit() and int(x) < count}
            found.append(Incoming(meta, part, sidecar, verified))
        except (OSError, ValueError, TypeError, KeyError):
            part.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
    return found


class Journal:
    """Every resumable transfer of one client, by token: ``sends`` (:class:`SendRecord`) and ``incoming``
    (:class:`Incoming`), loaded from *send_dir* and *received_dir* once and kept across connections.
    ``refused`` holds the tokens the server did not know this run (not presented again until ``/resume``)."""

    def __init__(self, send_dir: Path, received_dir: Path) -> None:
        self.send_dir, self.received_dir = Path(send_dir), Path(received_dir)
        self.sends = {r.token: r for r in load_sends(self.send_dir)} if self.send_dir.is_dir() else {}
        self.incoming = {r.token: r for r in load_incoming(self.received_dir)} if self.received_dir.is_dir() else {}
        self.refused: set[str] = set()

    def find(self, prefix: str) -> list[str]:
        """The tokens of the records whose token starts with *prefix* (at least 4 hex digits), else []."""
        prefix = prefix.lower()
        if len(prefix) < 4:
            return []
        return [t for t in (*self.sends, *self.incoming) if t.startswith(prefix)]

    def close(self) -> None:
        """The client ends: every arriving file's verified chunks are recorded and its files closed."""
        for incoming in self.incoming.values():
            try:
                incoming.interrupted()
            except OSError:
                pass
            incoming.close()
