"""The resumable files arriving at a client: :class:`Arrivals` (docs/protocol.md, "Resumable transfers").

Beside :class:`~chatroom.client.receive.Receiver` (files that cannot resume), the
:class:`~chatroom.client.transfer.TransferManager` sends here every session the server opens with
``file-chunks ID TOKEN SIZE CHUNK SHA256`` (+ the hash list the first time), then ``file-begin``,
``file-data ID INDEX`` chunks and ``file-end``. Each file is an
:class:`~chatroom.client.journal.Incoming` in the client's :class:`~chatroom.client.journal.Journal`: a
part file and a sidecar of verified chunks, kept across connections and restarts.

* A chunk that does not hash to its entry in the list counts for nothing; when the session ends with
  chunks missing, the client asks for them again (``file-resume``; at most :data:`RETRIES` times in a
  row without progress, then ``/resume ID`` is needed).
* ``file-pause`` (the sender left, the connection broke, the server restarts) keeps what arrived; the
  client says what it still needs at once (``file-resume TOKEN`` + bitmap) so that the session starts
  again as soon as the sender is back. ``file-abort`` (cancelled) and ``file-gone`` discard the record.
* No room left (a full disk, a quota): the client stops the session with ``file-pause TOKEN`` and keeps what
  it verified; ``/resume ID`` (or the next connection) asks for the rest once there is room.
* :meth:`Arrivals.present` is what a (re)connected client does for each record: read back and hash every
  recorded chunk (:meth:`Incoming.verify`), then ask for the rest, or, when nothing is missing, check the
  whole file, move it into place and say ``file-received``.

Loop thread only; problems are emitted, never raised.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from pathlib import Path

from chatroom.client.journal import Incoming, Journal
from chatroom.client.offers import human_size, took
from chatroom.client.receive import Progress
from chatroom.wire.chunks import DIGEST, bitmap, chunk_count, is_sha256, is_token
from chatroom.wire.filenames import safe_name
from chatroom.wire.lines import encode_frame
from chatroom.wire.numbers import parse_uint

__all__ = ["RETRIES", "Arrivals"]

#: Times in a row the client asks again for chunks that did not arrive (or did not verify) by itself.
RETRIES = 5
#: Write errors that mean "no room": the file pauses (ENOSPC, EDQUOT, EFBIG) instead of ending.
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _percent(incoming: Incoming) -> str:
    return f"{100 * incoming.done // max(1, incoming.size)}%" if incoming.size else "100%"


class Arrivals:
    """Resumable files arriving into *received_dir* (see the module docstring); *write* queues bytes to the
    server, *emit* prints a line, *journal* holds the records."""

    def __init__(self, received_dir: Path, emit: Callable[[str], None], write: Callable[[bytes], None],
                 journal: Journal) -> None:
        self.received_dir = Path(received_dir)
        self.emit = emit
        self.write = write
        self.journal = journal
        self._lists: dict[int, tuple[str, int, int, str, bytearray]] = {}  # file-chunks arriving in pieces
        self._sessions: dict[int, Incoming | None] = {}  # None: given up on, its frames ignored
        self._tries: dict[str, int] = {}  # token -> asks in a row without a verified chunk
        self._bad: dict[int, int] = {}  # session -> chunks that did not match their hash (the first one is shown)

    @property
    def receiving(self) -> bool:
        return any(s is not None for s in self._sessions.values())

    def owns(self, tid: int) -> bool:
        """Is *tid* a resumable session (announced by ``file-chunks``)?"""
        return tid in self._lists or tid in self._sessions

    def arriving(self, token: str) -> bool:
        return any(s is not None and s.token == token for s in self._sessions.values())

    def progress(self) -> list[Progress]:
        return [Progress(f"{s.name} from {s.sender}", s.done, s.size, s.started, "recv", tid)
                for tid, s in self._sessions.items() if s is not None]

    def tick(self) -> None:
        """Record the verified chunks that waited :data:`~chatroom.client.chunklog.SYNC_SECONDS` for a sync."""
        for tid, incoming in list(self._sessions.items()):
            if incoming is not None and incoming.log.due():
                try:
                    incoming.log.sync()
                except OSError as exc:
                    self._write_failed(tid, incoming, exc)

    # -- frames ----------------------------------------------------------------------------------------
    def chunks(self, tid: int, arg: str, piece: bytes | memoryview) -> None:
        """``file-chunks TID TOKEN SIZE CHUNK SHA256`` + (a piece of) the hash list."""
        if tid in self._lists:
            self._lists[tid][4].extend(piece)
            return
        parts = arg.split()
        size = parse_uint(parts[1], max_digits=19) if len(parts) == 4 else None
        chunk = parse_uint(parts[2], max_digits=8) if size is not None else None
        if size is None or chunk is None or not chunk or not is_token(parts[0]) or not is_sha256(parts[3]):
            return
        self._lists[tid] = (parts[0], size, chunk, parts[3], bytearray(piece))

    def begin(self, tid: int, arg: str) -> None:
        """``file-begin TID SIZE SENDER NAME`` of a session announced by ``file-chunks``."""
        token, size, chunk, sha, hashes = self._lists.pop(tid)
        _, _, rest = arg.partition(" ")
        sender, _, raw_name = rest.partition(" ")
        incoming = self.journal.incoming.get(token)
        if incoming is not None and (incoming.size, incoming.chunk, incoming.sha256) != (size, chunk, sha):
            incoming.discard()
            del self.journal.incoming[token]
            incoming = None
        if incoming is None:
            if len(hashes) != chunk_count(size, chunk) * DIGEST:  # a resume of a record this client lost
                self._sessions[tid] = None
                self.write(encode_frame(f"file-cancel {token} the receiver lost its partial file", b""))
                return
            try:
                self.received_dir.mkdir(parents=True, exist_ok=True)
                incoming = Incoming.create(self.received_dir, token=token, name=safe_name(raw_name), sender=sender,
                                           size=size, chunk=chunk, sha256=sha, hashes=bytes(hashes))
            except (OSError, ValueError) as exc:
                self._sessions[tid] = None
                why = getattr(exc, "strerror", None) or exc
                self.emit(f'discarded "{safe_name(raw_name)}" from {sender}: cannot write in '
                          f"{self.received_dir}: {why}")
                self.write(encode_frame(f"file-cancel {token} the receiver cannot write it", b""))
                return
            self.journal.incoming[token] = incoming
        incoming.started, incoming.session_bytes = time.monotonic(), 0
        self._sessions[tid] = incoming

    def data(self, tid: int, index_text: str, piece: bytes | memoryview) -> None:
        """A piece of chunk INDEX of session *tid*: written at its place and, once whole, verified."""
        incoming = self._sessions.get(tid)
        index = parse_uint(index_text.strip(), max_digits=6)
        if incoming is None or index is None or index >= incoming.count:
            return
        try:
            ok = incoming.write(index, piece)
        except OSError as exc:
            self._write_failed(tid, incoming, exc)
            return
        if ok is False:
            bad = self._bad[tid] = self._bad.get(tid, 0) + 1
            if bad == 1:  # one line, not one per chunk of a file that changed under its sender
                self.emit(f'chunk {index} of "{incoming.name}" did not match its SHA-256: it is asked for again')
        elif ok:
            self._tries.pop(incoming.token, None)

    def end(self, tid: int) -> None:
        """``file-end``: the session is over; the file is finished, or what is missing is asked for again."""
        incoming = self._sessions.pop(tid, None)
        bad = self._bad.pop(tid, 0)
        if incoming is not None:
            self._settle(incoming, f"{bad} chunks did not match their SHA-256" if bad > 1 else
                         "some chunks did not arrive whole")

    def pause(self, tid: int, reason: str) -> bool:
        """``file-pause TID REASON``: keep what arrived and say what is still needed; True if *tid* was ours."""
        if tid not in self._sessions:
            return False
        self._bad.pop(tid, None)
        incoming = self._sessions.pop(tid)
        if incoming is not None:
            try:
                incoming.interrupted()
            except OSError:
                pass
            self.emit(f'"{incoming.name}" from {incoming.sender} paused at {_percent(incoming)}: {reason} '
                      f"(it resumes when {incoming.sender} is back; /cancel {incoming.token[:8]} gives up)")
            self.present(incoming, auto=True)
        return True

    def abort(self, tid: int, reason: str) -> bool:
        """``file-abort TID REASON``: the transfer is cancelled for good; True if *tid* was ours."""
        if tid not in self._sessions and tid not in self._lists:
            return False
        self._lists.pop(tid, None)
        self._bad.pop(tid, None)
        incoming = self._sessions.pop(tid, None)
        if incoming is not None:
            self._drop(incoming, reason)
        return True

    def gone(self, token: str, reason: str) -> bool:
        """``file-gone TOKEN REASON``: the server ended the transfer; its record goes. True if it was ours."""
        incoming = self.journal.incoming.get(token)
        if incoming is None or self.arriving(token):
            return False
        self._drop(incoming, reason)
        return True

    # -- asking -----------------------------------------------------------------------------------------
    def present(self, incoming: Incoming, *, auto: bool = False) -> None:
        """Tell the server this client holds *incoming*'s token, with the chunks it needs (read back and hashed
        first); with nothing missing, finish it. *auto*: an ask the client makes by itself (bounded)."""
        if auto:
            tries = self._tries[incoming.token] = self._tries.get(incoming.token, 0) + 1
            if tries > RETRIES:
                self.emit(f'"{incoming.name}": asked {RETRIES} times without progress; /resume '
                          f"{incoming.token[:8]} asks again")
                return
        try:
            bad = incoming.verify()
        except OSError as exc:
            self.emit(f'"{incoming.name}": cannot read its partial file: {exc.strerror or exc}')
            return
        if bad:
            self.emit(f'"{incoming.name}": {len(bad)} chunk{"s" * (len(bad) > 1)} on the disk no longer '
                      f"matched their SHA-256 and will be fetched again")
        missing = incoming.missing()
        if not missing:
            self._finish(incoming)
            return
        self.write(encode_frame(f"file-resume {incoming.token}", bitmap(missing, incoming.count)))

    def _settle(self, incoming: Incoming, why: str) -> None:
        try:
            incoming.interrupted()
        except OSError as exc:
            self._drop(incoming, f"write failed: {exc.strerror or exc}")
            return
        if incoming.missing():
            self.emit(f'"{incoming.name}" from {incoming.sender}: {why}; asking for the rest')
            self.present(incoming, auto=True)
        else:
            self._finish(incoming)

    def _finish(self, incoming: Incoming) -> None:
        """Every chunk is in: whole-file check, move into place, ``file-received``."""
        self.journal.incoming.pop(incoming.token, None)
        self._tries.pop(incoming.token, None)
        try:
            dest = incoming.finish(self.received_dir)
        except ValueError as exc:  # every chunk matched its hash but not the whole: the sender's list lied
            self.write(encode_frame(f"file-cancel {incoming.token} {exc}", b""))
            self.emit(f'discarded "{incoming.name}" from {incoming.sender}: {exc}')
            return
        except OSError as exc:
            self.journal.incoming[incoming.token] = incoming
            self.emit(f'"{incoming.name}": cannot move it into place: {exc.strerror or exc} (/resume '
                      f"{incoming.token[:8]} tries again)")
            return
        self.write(encode_frame(f"file-received {incoming.token}", b""))
        moved = incoming.session_bytes
        resumed = f" (resumed: {human_size(moved)} of it this time)" if moved < incoming.size else ""
        self.emit(f'received "{incoming.name}" ({incoming.size} bytes) from {incoming.sender}: '
                  f"{took(moved, time.monotonic() - incoming.started)}, sha256 ok -> {dest}{resumed}")

    # -- giving up ---------------------------------------------------------------------------------------
    def cancel(self, what: str) -> bool:
        """``/cancel WHAT``: a running session's ID or a record's token; the transfer is cancelled for good."""
        tid = parse_uint(what, max_digits=9)
        incoming = self._sessions.get(tid) if tid is not None else None
        if incoming is None:
            incoming = self.journal.incoming.get(what)
            tid = next((t for t, s in self._sessions.items() if s is incoming), None)
        if incoming is None:
            return False
        if tid is not None:
            self._sessions[tid] = None  # its remaining frames are ignored
        self.write(encode_frame(f"file-cancel {incoming.token}", b""))
        self._drop(incoming, "cancelled")
        return True

    def _write_failed(self, tid: int, incoming: Incoming, exc: OSError) -> None:
        """Writing *incoming* raised *exc*: no room left pauses it (:meth:`_hold`), anything else fails it."""
        if exc.errno in _NO_ROOM:
            self._hold(tid, incoming, exc)
        else:
            self._fail(tid, incoming, f"write failed: {exc.strerror or exc}")

    def _hold(self, tid: int, incoming: Incoming, exc: OSError) -> None:
        """No room left for *incoming* (disk full, quota, file size limit): stop its session with ``file-pause``,
        keep the verified chunks, and wait for ``/resume`` (or the next connection) once there is room."""
        self._sessions[tid] = None  # the frames still in flight are ignored
        self._bad.pop(tid, None)
        try:
            incoming.interrupted()
        except OSError:
            pass  # chunks not recorded are fetched again
        self.write(encode_frame(f"file-pause {incoming.token} no room left", b""))
        self.emit(f'"{incoming.name}" from {incoming.sender} paused at {_percent(incoming)}: no room left in '
                  f"{self.received_dir} ({exc.strerror or exc}); make room, then /resume {incoming.token[:8]}")

    def _fail(self, tid: int, incoming: Incoming, reason: str) -> None:
        self._sessions[tid] = None
        self.write(encode_frame(f"file-cancel {incoming.token} {reason}", b""))
        self._drop(incoming, reason)

    def _drop(self, incoming: Incoming, reason: str) -> None:
        self.journal.incoming.pop(incoming.token, None)
        self._tries.pop(incoming.token, None)
        incoming.discard()
        self.emit(f'discarded "{incoming.name}" from {incoming.sender}: {reason}')

    def close(self, reason: str) -> None:
        """The connection ended (or the client quits): every file arriving keeps what it has, paused."""
        for incoming in [s for s in self._sessions.values() if s is not None]:
            try:
                incoming.interrupted()
            except OSError:
                pass
            self.emit(f'"{incoming.name}" from {incoming.sender} paused at {_percent(incoming)}: {reason} '
                      f"(/transfers lists it; it resumes when you are both connected)")
        self._sessions.clear()
        self._lists.clear()
        self._bad.clear()
