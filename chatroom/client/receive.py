"""The files arriving at a client: :class:`Receiver` (the receiving half of
:class:`~chatroom.client.transfer.TransferManager`), and :class:`Progress`, one running transfer.

Incoming ``file-begin`` / ``file-data`` / ``file-end`` / ``file-abort`` frames (docs/protocol.md, "File
transfer frames") are written to ``received_dir/.NAME.ID.part`` (a
:class:`~chatroom.client.partfile.PartFile`: ``file-data`` payloads may be pieces, ``memoryview``
slices of the loop's receive buffer, written and hashed without a copy) and moved into place (never
overwriting: ``name (1).ext``) only when the size and SHA-256 match; otherwise the part file is
removed and the reason emitted. A file given up on (discarded, cancelled, failed) keeps its ID until its
``file-end`` or ``file-abort``, so the rest of its frames are ignored. The client loop's thread only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chatroom.client.offers import took
from chatroom.client.partfile import PartFile, open_part, place
from chatroom.wire.filenames import safe_name

__all__ = ["Progress", "Receiver"]


@dataclass
class Progress:
    """One running transfer, for a progress bar: ``done``/``total`` bytes,
    ``started`` (``time.monotonic()``), ``direction`` ``"send"`` or ``"recv"``."""

    desc: str
    done: int
    total: int
    started: float
    direction: str
    tid: int = 0


class _Recv:
    __slots__ = ("done", "file", "hasher", "id", "name", "part", "sender", "size", "started")

    def __init__(self, tid: int, name: str, sender: str, size: int, part: Path, file: PartFile) -> None:
        self.id, self.name, self.sender, self.size, self.part, self.file = tid, name, sender, size, part, file
        self.done = 0
        self.hasher = hashlib.sha256()
        self.started = time.monotonic()


class Receiver:
    """Files arriving into *received_dir*; *emit* prints one status line. Never raises for a transfer's
    problems: they are emitted."""

    def __init__(self, received_dir: Path, emit: Callable[[str], None]) -> None:
        self.received_dir = Path(received_dir)
        self.emit = emit
        self._recvs: dict[int, _Recv | None] = {}  # None: given up on, its frames ignored until it ends

    @property
    def receiving(self) -> bool:
        """True while any incoming file is still being written (not given up on)."""
        return any(recv is not None for recv in self._recvs.values())

    def progress(self) -> list[Progress]:
        """The files arriving."""
        return [Progress(f"{r.name} from {r.sender}", r.done, r.size, r.started, "recv", r.id)
                for r in self._recvs.values() if r is not None]

    def discard_incoming(self, reason: str) -> int:
        """Give up on every incoming file: remove its part file, emit why, ignore its later frames.

        Returns how many were discarded. The emitted line is
        ``discarded "NAME" from SENDER: REASON (DONE of SIZE bytes)``.
        """
        live = [recv for recv in self._recvs.values() if recv is not None]
        for recv in live:
            self._fail(recv, f"{reason} ({recv.done} of {recv.size} bytes)")
        return len(live)

    def cancel(self, tid: int) -> bool:
        """``/cancel TID`` of a file arriving: discarded (the protocol has no receiver abort, so its bytes
        still arrive, and are ignored); False if *tid* is no file arriving."""
        recv = self._recvs.get(tid)
        if recv is None:
            return False
        self._fail(recv, f"cancelled ({recv.done} of {recv.size} bytes)")
        return True

    # ---- frames ------------------------------------------------------------------------

    def begin(self, tid: int, arg: str) -> None:
        """``file-begin TID SIZE SENDER NAME`` (*arg* is ``SIZE SENDER NAME``)."""
        size_text, _, rest = arg.partition(" ")
        sender, _, raw_name = rest.partition(" ")
        if not size_text.isdigit() or tid in self._recvs:
            return
        name = safe_name(raw_name)
        try:
            self.received_dir.mkdir(parents=True, exist_ok=True)
            file = open_part(self.received_dir, name, tid)
        except OSError as exc:
            self._recvs[tid] = None
            self.emit(f'discarded "{name}" from {sender}: cannot write in {self.received_dir}: {exc.strerror or exc}')
            return
        self._recvs[tid] = _Recv(tid, name, sender, int(size_text), file.path, file)

    def data(self, tid: int, payload: bytes | memoryview) -> None:
        """A piece of file *tid*: written and hashed as it is (a view of the receive buffer: never copied)."""
        recv = self._recvs.get(tid)
        if recv is None:
            return
        size = len(payload)
        if recv.done + size > recv.size:
            self._fail(recv, f"more data than the announced {recv.size} bytes")
            return
        try:
            recv.file.write(payload)
        except OSError as exc:
            self._fail(recv, "disk full" if exc.errno == 28 else f"write failed: {exc.strerror or exc}")
            return
        recv.hasher.update(payload)
        recv.done += size

    def end(self, tid: int, digest: str) -> None:
        """``file-end TID SHA256HEX``: checked, then moved into place."""
        if tid not in self._recvs:
            return
        recv = self._recvs.pop(tid)
        if recv is None:
            return
        try:
            recv.file.close()
        except OSError as exc:
            self._discard(recv, "disk full" if exc.errno == 28 else f"write failed: {exc.strerror or exc}")
            return
        if recv.done != recv.size:
            self._discard(recv, f"size mismatch: got {recv.done} of {recv.size} bytes")
            return
        got = recv.hasher.hexdigest()
        if got != digest:
            self._discard(recv, f"sha256 mismatch (announced {digest[:16]}, got {got[:16]})")
            return
        try:
            dest = place(recv.part, self.received_dir, recv.name)
        except OSError as exc:
            self._discard(recv, f"cannot move it into place: {exc.strerror or exc}")
            return
        self.emit(f'received "{recv.name}" ({recv.size} bytes) from {recv.sender}: '
                  f"{took(recv.size, time.monotonic() - recv.started)}, sha256 ok -> {dest}")

    def abort(self, tid: int, reason: str) -> bool:
        """``file-abort TID REASON``: True if *tid* was a file arriving here (then discarded)."""
        if tid not in self._recvs:
            return False
        recv = self._recvs.pop(tid)
        if recv is not None:
            self._discard(recv, reason)
        return True

    def close(self, reason: str = "connection closed before the file was complete") -> None:
        """The connection ended (or the client quits): discard every partial file, saying *reason*."""
        for recv in list(self._recvs.values()):
            if recv is not None:
                self._discard(recv, reason)
        self._recvs.clear()

    # ---- the part file -------------------------------------------------------------------

    def _fail(self, recv: _Recv, reason: str) -> None:
        """Stop writing *recv* (its remaining frames are ignored) and discard it."""
        self._recvs[recv.id] = None
        self._discard(recv, reason)

    def _discard(self, recv: _Recv, reason: str) -> None:
        try:
            recv.file.close()
        except OSError:
            pass
        try:
            recv.part.unlink()
        except FileNotFoundError:
            pass
        self.emit(f'discarded "{recv.name}" from {recv.sender}: {reason}')
