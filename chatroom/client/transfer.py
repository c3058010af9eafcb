"""Client side of file transfer: :class:`TransferManager`.

The client loop owns the socket; the manager only turns user requests and
server events into bytes and files, following ``docs/protocol.md`` ("File
transfer frames"). Everything runs on the client's loop thread:

* ``send_file(name)`` opens ``send_dir/name`` and offers it with
  ``/sendfile "NAME" SIZE``; after the server's ``OK sendfile ID NAME``,
  :meth:`TransferManager.pump` streams ``file-data ID`` frames of up to
  :data:`CHUNK` bytes while the client's output queue is below
  :data:`OUT_LIMIT`, hashing with SHA-256 as it reads, and ends with
  ``file-end ID SHA256HEX``. The server answers ``file-done ID NICKS`` (or
  ``file-abort ID reason``), and a one-line summary is emitted.
* Incoming ``file-begin`` / ``file-data`` / ``file-end`` / ``file-abort``
  frames go to the manager's :class:`~chatroom.client.receive.Receiver`, which
  writes each file to a part file and moves it into place only when its size
  and SHA-256 match.
* :meth:`TransferManager.discard_incoming` gives up on the files still
  arriving (the client loop calls it when quitting takes too long: see
  :mod:`chatroom.client.loop`); the rest of their frames are ignored.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from chatroom.client.offers import took
from chatroom.client.receive import Progress, Receiver
from chatroom.wire.filenames import safe_name
from chatroom.wire.lines import Frame, encode_frame, encode_frame_header, encode_line

__all__ = ["CHUNK", "OUT_LIMIT", "Progress", "TransferManager"]

#: Largest file-data payload sent, in bytes.
CHUNK = 1024 * 1024
#: pump() queues more chunks only while the client's output queue holds fewer bytes than this.
OUT_LIMIT = 1024 * 1024


class _Send:
    __slots__ = ("cancelled", "done", "ended", "file", "hasher", "id", "name", "size", "started")

    def __init__(self, name: str, file: IO[bytes], size: int) -> None:
        self.name, self.file, self.size = name, file, size
        self.id: int | None = None
        self.done = 0
        self.hasher = hashlib.sha256()
        self.started = time.monotonic()
        self.ended = False  # file-end written; waiting for file-done
        self.cancelled = False  # /cancel while the offer waited for OK: abort as soon as the ID is known

    def close(self) -> None:
        self.file.close()


class TransferManager:
    """Sends files from *send_dir* and receives them into *received_dir*.

    *write* queues bytes for the server socket; *out_queued* returns the
    bytes still waiting in the client's output buffer; *emit* prints one
    status line (``str``). No method raises for transfer problems: they are
    emitted and the connection stays usable.
    """

    def __init__(
        self,
        send_dir: Path,
        received_dir: Path,
        write: Callable[[bytes], None],
        out_queued: Callable[[], int],
        emit: Callable[[str], None],
        *,
        chunk: int = CHUNK,
        out_limit: int = OUT_LIMIT,
    ) -> None:
        self.send_dir = Path(send_dir)
        self.received_dir = Path(received_dir)
        self.write = write
        self.out_queued = out_queued
        self.emit = emit
        self.chunk = chunk
        self.out_limit = out_limit
        self._offers: list[_Send] = []  # /sendfile written, waiting for OK or ERROR (replies come in order)
        self._sends: dict[int, _Send] = {}
        self._in = Receiver(self.received_dir, emit)
        self._turn = 0

    # -- state ------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while any file is offered, being sent, or being received (discarded ones do not count)."""
        return bool(self._offers or self._sends or self.receiving)

    @property
    def receiving(self) -> bool:
        """True while any incoming file is still being written (not discarded)."""
        return self._in.receiving

    def discard_incoming(self, reason: str) -> int:
        """Give up on every incoming file (see :meth:`Receiver.discard_incoming`); returns how many."""
        return self._in.discard_incoming(reason)

    def progress(self) -> list[Progress]:
        """The running transfers, sends first."""
        items = [Progress(s.name, s.done, s.size, s.started, "send", s.id or 0) for s in self._sends.values()]
        return items + self._in.progress()

    def offered(self) -> list[str]:
        """Names of this client's offers still waiting for the server's ``OK sendfile`` (not cancelled)."""
        return [s.name for s in self._offers if not s.cancelled]

    def cancel(self, what: str) -> bool:
        """``/cancel WHAT``: stop one transfer; False if *what* names none of this manager's.

        *what* is a transfer ID (a running send gets ``file-abort ID cancelled``; a file
        arriving is discarded, part file removed, and its remaining frames ignored: the
        protocol has no receiver abort, so its bytes still arrive) or the name of an own
        offer still waiting for the receivers (aborted as soon as the server gives its ID).
        """
        if what.isdigit():
            tid = int(what)
            send = self._sends.get(tid)
            if send is not None:
                if send.ended:
                    self.emit(f'"{send.name}" is already sent; waiting for the server to confirm')
                else:
                    self._cancel_send(send, "cancelled")
                return True
            if self._in.cancel(tid):
                return True
        for send in self._offers:
            if send.name == what and not send.cancelled:
                send.cancelled = True
                self.emit(f'offer of "{send.name}" cancelled')
                return True
        return False

    # -- sending ------------------------------------------------------------------
    def send_file(self, name: str) -> None:
        """Offer ``send_dir/name`` to the room (*name* already unquoted)."""
        path = self._source(name)
        if path is None:
            return
        try:
            file = open(path, "rb")  # noqa: SIM115 - open until the transfer ends (closed by _Send.close)
            size = os.fstat(file.fileno()).st_size
        except OSError as exc:
            self.emit(f"sendfile: cannot read {name!r}: {exc.strerror or exc}")
            return
        offer = _Send(safe_name(path.name), file, size)
        self._offers.append(offer)
        self.write(encode_line(f"/sendfile {shlex.quote(offer.name)} {size}"))

    def _source(self, name: str) -> Path | None:
        """``send_dir/name`` if it is a regular file inside send_dir, else emit why and return None."""
        folder = self.send_dir.name or str(self.send_dir)
        if not name or "\x00" in name:
            self.emit("usage: /sendfile NAME (a file in the send folder; quote names with spaces)")
            return None
        root = self.send_dir.resolve()
        path = (self.send_dir / name).resolve()
        if Path(name).is_absolute() or not path.is_relative_to(root) or path == root:
            self.emit(f"sendfile: {name!r} is not inside {folder}/")
            return None
        try:
            mode = path.stat().st_mode
        except OSError:
            self.emit(f"sendfile: no file {name!r} in {folder}/")
            return None
        if not stat.S_ISREG(mode):
            self.emit(f"sendfile: {folder}/{name} is not a regular file")
            return None
        return path

    def pump(self) -> None:
        """Queue the next chunks of running sends while the output queue is below the limit."""
        active = [s for s in self._sends.values() if not s.ended]
        while active and self.out_queued() < self.out_limit:
            self._turn = (self._turn + 1) % len(active)
            send = active[self._turn]
            self._send_chunk(send)
            if send.ended or send.id not in self._sends:
                active = [s for s in self._sends.values() if not s.ended]

    def _send_chunk(self, send: _Send) -> None:
        want = min(self.chunk, send.size - send.done)
        try:
            data = send.file.read(want) if want else b""
        except OSError as exc:
            self._cancel_send(send, f"read failed: {exc.strerror or exc}")
            return
        if data:
            send.hasher.update(data)
            send.done += len(data)
            self.write(encode_frame_header(f"file-data {send.id}", len(data)))
            self.write(data)
        elif send.done < send.size:
            self._cancel_send(send, f"the file shrank while sending ({send.done} of {send.size} bytes)")
            return
        if send.done >= send.size:
            send.ended = True
            send.close()
            self.write(encode_frame(f"file-end {send.id} {send.hasher.hexdigest()}", b""))

    def _cancel_send(self, send: _Send, reason: str) -> None:
        self.write(encode_frame(f"file-abort {send.id} {reason}", b""))
        self._sends.pop(send.id or 0, None)
        send.close()
        self.emit(f'sending "{send.name}" stopped: {reason}')

    # -- server events --------------------------------------------------------------
    def _offer_named(self, name: str) -> _Send | None:
        """The oldest offer of *name*, else the oldest offer (a server that renamed it), else None."""
        for send in self._offers:
            if send.name == name:
                return send
        return self._offers[0] if self._offers else None

    def handle_line(self, text: str) -> bool:
        """Consume the reply to an offer (``OK sendfile ID NAME`` / ``ERROR sendfile NAME: ...``); True if consumed.

        Replies are matched to offers by NAME: the server answers an offer only
        when its receivers did (consent), so replies may come out of order.
        """
        if text.startswith("OK sendfile "):
            parts = text.split(" ", 3)
            send = self._offer_named(parts[3] if len(parts) > 3 else "")
            if send is None or len(parts) < 3 or not parts[2].isdigit():
                return False
            self._offers.remove(send)
            send.id = int(parts[2])
            send.started = time.monotonic()
            if send.cancelled:
                self.write(encode_frame(f"file-abort {send.id} cancelled", b""))
                send.close()
                return True
            self._sends[send.id] = send
            return True
        if self._offers and text.startswith(("ERROR sendfile ", "ERROR usage: /sendfile")):
            named = [s for s in self._offers if text.startswith(f"ERROR sendfile {s.name}: ")]
            send = named[0] if named else self._offers[0]
            self._offers.remove(send)
            send.close()
            if not send.cancelled:
                self.emit(text)
            return True
        return False

    def handle_frame(self, frame: Frame) -> None:
        """Act on one frame from the server (unknown kinds and ids are ignored)."""
        kind, _, rest = frame.meta.partition(" ")
        tid_text, _, arg = rest.partition(" ")
        if not tid_text.isdigit():
            return
        tid = int(tid_text)
        if kind == "file-data":
            self._in.data(tid, frame.payload)
        elif kind == "file-begin":
            self._in.begin(tid, arg)
        elif kind == "file-end":
            self._in.end(tid, arg.strip().lower())
        elif kind == "file-abort":
            if not self._in.abort(tid, arg.strip() or "cancelled"):
                self._abort(tid, arg.strip() or "cancelled")
        elif kind == "file-done":
            self._done(tid, [n for n in arg.strip().split(",") if n])

    def _done(self, tid: int, receivers: list[str]) -> None:
        send = self._sends.pop(tid, None)
        if send is None:
            return
        who = ", ".join(receivers) or "nobody"
        self.emit(
            f'sent "{send.name}" ({send.size} bytes) to {who}: {took(send.size, time.monotonic() - send.started)}, '
            f"sha256 {send.hasher.hexdigest()[:16]}"
        )

    def _abort(self, tid: int, reason: str) -> None:
        send = self._sends.pop(tid, None)
        if send is not None:
            send.close()
            self.emit(f'sending "{send.name}" stopped: {reason}')

    # -- shutdown ----------------------------------------------------------------------
    def close(self, reason: str = "cancelled") -> None:
        """Abort running sends (``file-abort``; ``sending "NAME" stopped: REASON``) and discard partial receives."""
        for send in self._offers:
            send.close()
        self._offers.clear()
        for send in list(self._sends.values()):
            if not send.ended:
                self.write(encode_frame(f"file-abort {send.id} the sender quit", b""))
                self.emit(f'sending "{send.name}" stopped: {reason}')
            send.close()
        self._sends.clear()
        self._in.close()
