"""The files a client sends: :class:`Sender`, the sending half of :class:`~chatroom.client.transfer.TransferManager`.

``send_file(name)`` offers ``send_dir/name`` (docs/protocol.md, "File transfer frames"). With a server
that took ``/caps resume`` the offer can resume ("Resumable transfers"): the file is read once on a
worker thread for its SHA-256 and its chunks' hash list (:class:`~chatroom.client.journal.HashJob`), then announced with
``file-announce``; the server's ``file-id`` gives the sender's token, kept with the hash list in a
:class:`~chatroom.client.journal.SendRecord`; every ``file-data ID INDEX`` frame is one chunk. A
``file-resend ID TOKEN`` (the receivers came back) sends the chunks its bitmap names, each read again
and checked against the hash list first: a file changed since it was offered is never sent as the old
one (the offer is cancelled). Without resume, ``/sendfile "NAME" SIZE`` and ``file-data ID`` frames of up
to :data:`CHUNK` bytes, hashed as they are read, as before. Files asked for beyond
:data:`~chatroom.client.waiting.MAX_OPEN` open offers and sends wait in :class:`~chatroom.client.waiting.Waiting`. Loop thread only (the hashing thread only
fills its own result).
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from chatroom.client.journal import HashJob, Journal, SendRecord
from chatroom.client.outgoing import Outgoing, source_path
from chatroom.client.offers import human_size, took
from chatroom.client.receive import Progress
from chatroom.client.waiting import Waiting
from chatroom.wire.chunks import bitmap_size, chunk_count, chunk_span, pick_chunk, set_bits
from chatroom.wire.filenames import safe_name
from chatroom.wire.lines import encode_frame, encode_frame_header, encode_line

__all__ = ["CHUNK", "Sender"]

#: Largest file-data payload sent without resume, in bytes.
CHUNK = 1024 * 1024


class Sender:
    """Sends files from *send_dir*; *write* queues bytes, *emit* prints a line, *journal* keeps the resumable
    records (see the module docstring). ``resumable`` is set once the server took ``/caps resume``."""

    def __init__(self, send_dir: Path, write: Callable[[bytes], None], emit: Callable[[str], None],
                 journal: Journal | None, *, chunk: int = CHUNK) -> None:
        self.send_dir = Path(send_dir)
        self.write = write
        self.emit = emit
        self.journal = journal
        self.chunk = chunk
        self.resumable = False
        self._hashing: list[Outgoing] = []  # resumable offers whose hash list is being computed
        self._offers: list[Outgoing] = []  # offered, waiting for OK or ERROR sendfile
        self._sends: dict[int, Outgoing] = {}
        self._ids: dict[int, str] = {}  # file-id: transfer id -> token, until its OK sendfile
        self._resend: dict[int, tuple[str, bytearray]] = {}  # file-resend arriving in pieces
        self._turn = 0
        self.waiting = Waiting(emit)  # files waiting for fewer than MAX_OPEN open offers and sends
        self.named: set[str] = set()  # files offered on this connection (paths inside send_dir)
        #: Tokens of own resumable offers whose session ended with ``file-done`` on this connection: relayed,
        #: their record kept until ``file-gone`` says every receiver checked the file.
        self.delivered: set[str] = set()

    # -- state --------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return bool(self._hashing or self._offers or self._sends or self.waiting.names)

    def _open(self) -> int:
        return len(self._hashing) + len(self._offers) + len(self._sends)

    def queued(self) -> list[str]:
        """Names waiting in the client's queue (see :data:`~chatroom.client.waiting.MAX_OPEN`), in the order they go."""
        return list(self.waiting.names)

    def progress(self) -> list[Progress]:
        return [Progress(s.name, s.done, s.size, s.started, "send", s.id or 0) for s in self._sends.values()]

    def offered(self) -> list[str]:
        return [s.name for s in (*self._hashing, *self._offers) if not s.cancelled]

    def sending(self, token: str) -> bool:
        """Is a session of the own offer *token* running on this connection?"""
        return any(s.record is not None and s.record.token == token for s in self._sends.values())

    def present(self, record: SendRecord) -> None:
        """``file-resume TOKEN``: this client holds the own offer *record* (again)."""
        self.write(encode_frame(f"file-resume {record.token}", b""))

    # -- offering ------------------------------------------------------------------------------------
    def send_file(self, name: str) -> None:
        """Offer ``send_dir/name`` to the room (*name* already unquoted)."""
        path = self._source(name)
        if path is None:
            return
        if self.waiting.blocks(self._open()):
            self.waiting.add(name, self._open())
            return
        self._offer(path, name)

    def _offer(self, path: Path, name: str) -> None:
        try:
            file = open(path, "rb")  # noqa: SIM115 - open until the transfer ends (closed by Outgoing.close)
            size = os.fstat(file.fileno()).st_size
        except OSError as exc:
            self.emit(f"sendfile: cannot read {name!r}: {exc.strerror or exc}")
            return
        offer = Outgoing(safe_name(path.name), file, size, path.relative_to(self.send_dir.resolve()).as_posix())
        self.named.add(offer.source)
        chunk = pick_chunk(size) if self.resumable and self.journal is not None else None
        if chunk is not None:
            offer.hashing = HashJob(path, chunk)
            self._hashing.append(offer)
            return
        self._offers.append(offer)
        self.write(encode_line(f"/sendfile {shlex.quote(offer.name)} {size}"))

    def _announce(self) -> None:
        """Announce the resumable offers whose hashing finished."""
        for offer in [o for o in self._hashing if o.hashing is not None and o.hashing.finished.is_set()]:
            self._hashing.remove(offer)
            job, offer.hashing = offer.hashing, None
            assert job is not None
            if job.result is None or offer.cancelled:
                offer.close()
                if not offer.cancelled:
                    self.emit(f"sendfile: {offer.name}: {job.error}")
                continue
            sha, hashes, mtime = job.result
            offer.record = SendRecord(token="", name=offer.source, size=offer.size, mtime_ns=mtime, chunk=job.chunk,
                                      sha256=sha, hashes=hashes, path=Path())  # saved once the server gives a token
            self._offers.append(offer)
            self.write(encode_frame(f"file-announce {offer.size} {job.chunk} {sha} {offer.name}", hashes))

    def _source(self, name: str) -> Path | None:
        """``send_dir/name`` if it is a regular file inside send_dir, else emit why and return None."""
        path, why = source_path(self.send_dir, name)
        if why:
            self.emit(why)
        return path

    # -- sending --------------------------------------------------------------------------------------
    def pump(self, out_queued: Callable[[], int], out_limit: int) -> None:
        """Announce what finished hashing; queue the next chunks of running sends while the output is short."""
        if self._hashing:
            self._announce()
        for name in self.waiting.due(self._open):
            if (path := self._source(name)) is not None:
                self._offer(path, name)
        active = [s for s in self._sends.values() if not s.ended]
        while active and out_queued() < out_limit:
            self._turn = (self._turn + 1) % len(active)
            send = active[self._turn]
            self._send_chunk(send)
            if send.ended or send.id not in self._sends:
                active = [s for s in self._sends.values() if not s.ended]

    def _send_chunk(self, send: Outgoing) -> None:
        if send.record is not None:  # announced: one indexed chunk per frame, resumable or not
            self._send_indexed(send, send.record)
            return
        want = min(self.chunk, send.size - send.done)
        try:
            data = send.file.read(want) if want else b""
        except OSError as exc:
            self._stop(send, f"read failed: {exc.strerror or exc}")
            return
        if data:
            send.hasher.update(data)
            send.done += len(data)
            self.write(encode_frame_header(f"file-data {send.id}", len(data)))
            self.write(data)
        elif send.done < send.size:
            self._stop(send, f"the file shrank while sending ({send.done} of {send.size} bytes)")
            return
        if send.done >= send.size:
            send.ended = True
            send.close()
            self.write(encode_frame(f"file-end {send.id} {send.hasher.hexdigest()}", b""))

    def _send_indexed(self, send: Outgoing, record: SendRecord) -> None:
        """The next chunk of a resumable session, ``file-data ID INDEX``; a resend checks it first."""
        count = chunk_count(record.size, record.chunk)
        indices = send.plan if send.plan is not None else range(count)
        if send.pos >= len(indices):
            send.ended = True
            send.close()
            self.write(encode_frame(f"file-end {send.id} {record.sha256}", b""))
            return
        index = indices[send.pos]
        offset, length = chunk_span(record.size, record.chunk, index)
        try:
            data = os.pread(send.file.fileno(), length, offset)
            if send.plan is None:  # first session: a file written since it was hashed is not sent
                now = os.fstat(send.file.fileno())
                changed = (now.st_size, now.st_mtime_ns) != (record.size, record.mtime_ns)
            else:  # a resend checks every chunk against the list
                changed = not record.chunk_ok(index, data)
        except OSError as exc:
            self._stop(send, f"read failed: {exc.strerror or exc}")
            return
        if len(data) != length or changed:
            if record.token:
                self._sends.pop(send.id or 0, None)
                send.close()
                self._give_up(record, "the file changed since it was offered")
            else:
                self._stop(send, "the file changed while it was sent")
            return
        send.pos += 1
        send.done += length
        self.write(encode_frame_header(f"file-data {send.id} {index}", length))
        self.write(data)

    def _stop(self, send: Outgoing, reason: str) -> None:
        """End a running session: ``file-abort`` (a resumable offer only pauses: its record stays)."""
        self.write(encode_frame(f"file-abort {send.id} {reason}", b""))
        self._sends.pop(send.id or 0, None)
        send.close()
        self.emit(f'sending "{send.name}" stopped: {reason}')

    def _give_up(self, record: SendRecord, reason: str = "") -> None:
        """Cancel the own resumable offer *record* for good (``file-cancel``, with *reason* unless the user
        chose it) and forget it."""
        self.write(encode_frame(f"file-cancel {record.token} {reason}".rstrip(), b""))
        self.forget(record)
        self.emit(f'sending "{safe_name(record.name)}" cancelled' + (f": {reason}" if reason else ""))

    def forget(self, record: SendRecord) -> None:
        """Drop *record* from the journal and the disk."""
        self.delivered.discard(record.token)
        if self.journal is not None:
            self.journal.sends.pop(record.token, None)
        record.remove()

    def cancel(self, what: str) -> bool:
        """``/cancel WHAT`` (a running send's ID, an own resumable offer's token, or a waiting offer's name)."""
        send = self._sends.get(int(what)) if what.isdigit() and len(what) < 10 else None
        if send is not None:
            if send.ended:
                self.emit(f'"{send.name}" is already sent; waiting for the server to confirm')
            elif send.record is not None and send.record.token:
                self._sends.pop(send.id or 0, None)
                send.close()
                self._give_up(send.record)
            else:
                self._stop(send, "cancelled")
            return True
        record = self.journal.sends.get(what) if self.journal is not None else None
        if record is not None:
            for running in [s for s in self._sends.values() if s.record is record]:
                self._sends.pop(running.id or 0, None)
                running.close()
            self._give_up(record)
            return True
        if self.waiting.drop(what):
            return True
        for offer in (*self._hashing, *self._offers):
            if offer.name == what and not offer.cancelled:
                offer.cancelled = True
                self.emit(f'offer of "{offer.name}" cancelled')
                return True
        return False

    # -- the server's answers ----------------------------------------------------------------------------
    def _offer_named(self, name: str) -> Outgoing | None:
        """The oldest offer of *name*, else the oldest offer (a server that renamed it), else None."""
        for send in self._offers:
            if send.name == name:
                return send
        return self._offers[0] if self._offers else None

    def handle_line(self, text: str) -> bool:
        """Consume the reply to an offer (``OK sendfile ID NAME`` / ``ERROR sendfile NAME: ...``); True if consumed.

        Replies are matched to offers by NAME: the server answers an offer only when its receivers did
        (consent), so replies may come out of order.
        """
        if text.startswith("OK sendfile "):
            parts = text.split(" ", 3)
            send = self._offer_named(parts[3] if len(parts) > 3 else "")
            if send is None or len(parts) < 3 or not parts[2].isdigit():
                return False
            self._offers.remove(send)
            send.id = int(parts[2])
            send.started = time.monotonic()
            self._keep(send, self._ids.pop(send.id, None))
            if send.cancelled:
                if send.record is not None and send.record.token:
                    self._give_up(send.record)
                else:
                    self.write(encode_frame(f"file-abort {send.id} cancelled", b""))
                send.close()
                return True
            self._sends[send.id] = send
            return True
        if self._offers and text.startswith(("ERROR sendfile ", "ERROR usage: /sendfile", "ERROR file-announce")):
            named = [s for s in self._offers if text.startswith(f"ERROR sendfile {s.name}: ")]
            send = named[0] if named else self._offers[0]
            self._offers.remove(send)
            send.close()
            if text.endswith("transfers open; wait for one to finish") and not send.cancelled:
                self.waiting.refused(send.source, self._open())  # the server counts more: wait for an end
            elif not send.cancelled:
                self.emit(text)
            return True
        return False

    def _keep(self, send: Outgoing, token: str | None) -> None:
        """The server gave *send* (a resumable offer) its *token*: write its record; without one (nobody
        can resume it) it goes out without an index, as any offer."""
        draft = send.record
        if draft is None or token is None or self.journal is None:
            return
        try:
            send.record = SendRecord.create(self.send_dir, token, draft.name, draft.size, draft.mtime_ns, draft.chunk,
                                            draft.sha256, draft.hashes)
        except OSError as exc:
            self.emit(f'"{send.name}" cannot resume: cannot write its record: {exc.strerror or exc}')
            send.record = SendRecord(token, draft.name, draft.size, draft.mtime_ns, draft.chunk, draft.sha256,
                                     draft.hashes, Path(os.devnull))
        self.journal.sends[token] = send.record

    def frame(self, kind: str, tid: int, arg: str, payload: bytes | memoryview) -> bool:
        """A frame for the sending side (``file-id``, ``file-resend``, ``file-done``, ``file-abort``,
        ``file-pause``); True if it was one of this side's."""
        if kind == "file-id":
            self._ids[tid] = arg.strip()
        elif kind == "file-resend":
            self._resend_piece(tid, arg.strip(), payload)
        elif kind == "file-done":
            self._done(tid, [n for n in arg.strip().split(",") if n])
        elif kind in ("file-abort", "file-pause") and tid in self._sends:
            send = self._sends.pop(tid)
            send.close()
            if kind == "file-pause" and send.record is not None:
                self.emit(f'sending "{send.name}" paused: {arg.strip()} (it resumes when the receivers are back; '
                          f"/cancel {send.record.token[:8]} gives up)")
            else:
                if send.record is not None and send.record.token:  # file-abort: the offer is over for good
                    self.forget(send.record)
                self.emit(f'sending "{send.name}" stopped: {arg.strip() or "cancelled"}')
        else:
            return False
        return True

    def _resend_piece(self, tid: int, token: str, piece: bytes | memoryview) -> None:
        record = self.journal.sends.get(token) if self.journal is not None else None
        if record is None:
            return
        got = self._resend.setdefault(tid, (token, bytearray()))[1]
        got += piece
        count = chunk_count(record.size, record.chunk)
        if len(got) < bitmap_size(count):
            return
        del self._resend[tid]
        indices = set_bits(bytes(got), count)
        try:
            file = open(self.send_dir / record.name, "rb")  # noqa: SIM115 - closed by Outgoing.close
            size = os.fstat(file.fileno()).st_size
        except OSError as exc:
            self._give_up(record, f"cannot read it: {exc.strerror or exc}")
            return
        if indices is None or size != record.size:
            file.close()
            self._give_up(record, "the file changed since it was offered")
            return
        send = Outgoing(safe_name(record.name), file, sum(chunk_span(record.size, record.chunk, i)[1] for i in indices),
                     record.name)
        send.id, send.record, send.plan = tid, record, indices
        self._sends[tid] = send

    def _done(self, tid: int, receivers: list[str]) -> None:
        send = self._sends.pop(tid, None)
        if send is None:
            return
        who, speed = ", ".join(receivers) or "nobody", took(send.size, time.monotonic() - send.started)
        record = send.record
        if record is not None and record.token:
            self.delivered.add(record.token)
        if send.plan is not None and record is not None:
            share = 100 * send.size / max(1, record.size)
            self.emit(f'resumed "{send.name}" ({record.size} bytes) to {who}: sent the missing {send.size} bytes '
                      f"({human_size(send.size)}, {share:.1f}% of the file), {speed}")
        else:
            digest = record.sha256 if record is not None else send.hasher.hexdigest()
            self.emit(f'sent "{send.name}" ({send.size} bytes) to {who}: {speed}, sha256 {digest[:16]}')

    def gone(self, token: str, reason: str) -> None:
        """``file-gone TOKEN REASON``: the own offer *token* is over; its record goes."""
        record = self.journal.sends.get(token) if self.journal is not None else None
        if record is not None:
            self.forget(record)
            if reason != "every receiver has it":
                self.emit(f'offer of "{safe_name(record.name)}" ended: {reason}')

    def close(self, reason: str) -> None:
        """The connection ended: running sends stop (a resumable offer keeps its record and pauses)."""
        unsent = [s.source for s in (*self._hashing, *self._offers) if not s.cancelled] + self.waiting.names
        for name in unsent:  # never offered, or its receivers had not all answered: nothing can resume it
            self.emit(f'offer of "{name}" ended: {reason} (/sendfile {shlex.quote(name)} offers it again)')
        self.waiting.names.clear()
        for send in (*self._hashing, *self._offers):
            send.close()
        self._hashing.clear()
        self._offers.clear()
        for send in list(self._sends.values()):
            if not send.ended:
                if send.record is not None and send.record.token:
                    self.emit(f'sending "{send.name}" paused: {reason} (it resumes when you are both connected again)')
                else:
                    self.write(encode_frame(f"file-abort {send.id} the sender quit", b""))
                    self.emit(f'sending "{send.name}" stopped: {reason}')
            send.close()
        self._sends.clear()
