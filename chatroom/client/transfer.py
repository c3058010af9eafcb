"""Client side of file transfer: :class:`TransferManager`, one per connection.

The client loop owns the socket; the manager only turns user requests and server events into bytes and
files, following ``docs/protocol.md`` ("File transfer frames", "Resumable transfers"). It routes to its
parts, each with its own state, all on the client's loop thread:

* :class:`~chatroom.client.send.Sender`: ``/sendfile`` (announced with a hash list when the server can
  resume), the chunks, ``file-done``, the resends a receiver that came back asks for;
* :class:`~chatroom.client.receive.Receiver`: files that cannot resume, written to a part file and moved
  into place only when size and SHA-256 match;
* :class:`~chatroom.client.arrivals.Arrivals`: files that can resume (``file-chunks`` comes first), kept
  with a sidecar of verified chunks in the client's :class:`~chatroom.client.journal.Journal`.

:meth:`TransferManager.discard_incoming` gives up on the files still arriving (the client loop calls it
when quitting takes too long: see :mod:`chatroom.client.loop`): a file that can resume keeps what it has.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chatroom.client.arrivals import Arrivals
from chatroom.client.journal import Journal
from chatroom.client.receive import Progress, Receiver
from chatroom.client.send import CHUNK, Sender
from chatroom.wire.chunks import is_token
from chatroom.wire.filenames import safe_name
from chatroom.wire.lines import Frame
from chatroom.wire.numbers import parse_uint

__all__ = ["CHUNK", "OUT_LIMIT", "Progress", "TransferManager"]

#: pump() queues more chunks only while the client's output queue holds fewer bytes than this.
OUT_LIMIT = 1024 * 1024


class TransferManager:
    """Sends files from *send_dir* and receives them into *received_dir*.

    *write* queues bytes for the server socket; *out_queued* returns the bytes still waiting in the
    client's output buffer; *emit* prints one status line (``str``); *journal* holds the resumable
    transfers across connections (default: a new one over the two folders). No method raises for transfer
    problems: they are emitted and the connection stays usable.
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
        journal: Journal | None = None,
    ) -> None:
        self.send_dir = Path(send_dir)
        self.received_dir = Path(received_dir)
        self.write = write
        self.out_queued = out_queued
        self.emit = emit
        self.out_limit = out_limit
        self.journal = journal if journal is not None else Journal(self.send_dir, self.received_dir)
        self._out = Sender(self.send_dir, write, emit, self.journal, chunk=chunk)
        self._in = Receiver(self.received_dir, emit)
        self._resumable = Arrivals(self.received_dir, emit, write, self.journal)

    # -- state ------------------------------------------------------------------
    @property
    def resumable(self) -> bool:
        """True once the server took ``/caps resume`` on this connection."""
        return self._out.resumable

    @property
    def busy(self) -> bool:
        """True while any file is offered, being sent, or being received (discarded ones do not count)."""
        return self._out.busy or self.receiving

    @property
    def receiving(self) -> bool:
        """True while any incoming file is still being written (not discarded)."""
        return self._in.receiving or self._resumable.receiving

    def discard_incoming(self, reason: str) -> int:
        """Give up on every incoming file (see :meth:`Receiver.discard_incoming`; a file that can resume is
        kept, paused); returns how many."""
        paused = sum(1 for _ in self._resumable.progress())
        self._resumable.close(reason)
        return self._in.discard_incoming(reason) + paused

    def progress(self) -> list[Progress]:
        """The running transfers, sends first."""
        return self._out.progress() + self._in.progress() + self._resumable.progress()

    def offered(self) -> list[str]:
        """Names of this client's offers still waiting for the server's ``OK sendfile`` (not cancelled)."""
        return self._out.offered()

    def sent_before(self, name: str) -> bool:
        """Was ``send_dir/name`` offered on this connection already, or is it waiting in the client's queue to be
        (a typed ``/sendfile``)?"""
        return name in self._out.named or name in self._out.waiting.names

    def queued(self) -> list[str]:
        """Names of files waiting in this client's queue to be offered (more than eight at once)."""
        return self._out.queued()

    def running(self, token: str) -> bool:
        """Is the resumable transfer *token* (either side) moving on this connection now?"""
        return self._out.sending(token) or self._resumable.arriving(token)

    def delivered(self, token: str) -> bool:
        """Was the own resumable offer *token* relayed in full on this connection (its receivers not all
        confirmed yet)?"""
        return token in self._out.delivered

    def cancel(self, what: str) -> bool:
        """``/cancel WHAT``: stop one transfer; False if *what* names none of this manager's.

        *what* is a transfer ID (a running send gets ``file-abort ID cancelled``, a resumable one
        ``file-cancel``; a file arriving is discarded, part file removed, and its remaining frames ignored),
        a resumable transfer's token, or the name of an own offer still waiting for the receivers.
        """
        if self._out.cancel(what) or self._resumable.cancel(what):
            return True
        tid = parse_uint(what, max_digits=18)
        return tid is not None and self._in.cancel(tid)

    def tick(self) -> None:
        """A few times a second: verified chunks waiting longer than the sync delay are recorded, even when the
        stream stalls (see :mod:`chatroom.client.journal`)."""
        self._resumable.tick()

    # -- resuming ------------------------------------------------------------------
    def server_resumes(self) -> None:
        """The server took ``/caps resume``: offers from now on can resume."""
        self._out.resumable = True

    def present(self, token: str, *, auto: bool = False) -> bool:
        """Tell the server this client holds the resumable transfer *token* (``file-resume``); False if no
        record has it."""
        record = self.journal.sends.get(token)
        if record is not None:
            self._out.present(record)
            return True
        incoming = self.journal.incoming.get(token)
        if incoming is not None:
            self._resumable.present(incoming, auto=auto)
            return True
        return False

    def present_all(self) -> None:
        """A new connection: every record not refused before is presented (a reconnect, a restart)."""
        for token in [*self.journal.sends, *self.journal.incoming]:
            if token not in self.journal.refused and not self.running(token):
                self.present(token)

    # -- sending ------------------------------------------------------------------
    def send_file(self, name: str) -> None:
        """Offer ``send_dir/name`` to the room (*name* already unquoted)."""
        self._out.send_file(name)

    def pump(self) -> None:
        """Queue the next chunks of running sends while the output queue is below the limit."""
        self._out.pump(self.out_queued, self.out_limit)

    # -- server events --------------------------------------------------------------
    def handle_line(self, text: str) -> bool:
        """Consume the reply to an offer (``OK sendfile ID NAME`` / ``ERROR sendfile NAME: ...``) or to a
        resume (``OK resume``, ``ERROR resume``, ``OK cancel``); True if consumed."""
        if self._out.handle_line(text):
            return True
        parts = text.split(" ", 3)
        token = parts[2].rstrip(":") if len(parts) > 2 else ""
        if parts[0] not in ("OK", "ERROR") or len(parts) < 3 or parts[1] not in ("resume", "cancel", "pause") \
                or not is_token(token):
            return False
        journal, news = self.journal, parts[3] if len(parts) > 3 else ""
        if parts[1] in ("cancel", "pause"):  # the answer to an own file-cancel (its record is gone) or file-pause
            return True
        if token not in journal.sends and token not in journal.incoming:
            return False
        if parts[0] == "OK":
            self.emit(f"* {news}")
        elif token not in journal.refused:
            journal.refused.add(token)
            send, incoming = journal.sends.get(token), journal.incoming.get(token)
            what = (f'sending "{safe_name(send.name)}"' if send is not None
                    else f'"{incoming.name}" from {incoming.sender}' if incoming is not None else token[:8])
            self.emit(f"{what}: {news} (/resume {token[:8]} asks again, /cancel {token[:8]} forgets it)")
        return True

    def handle_frame(self, frame: Frame) -> None:
        """Act on one frame from the server (unknown kinds and ids are ignored)."""
        kind, _, rest = frame.meta.partition(" ")
        tid_text, _, arg = rest.partition(" ")
        if kind == "file-gone":
            if not self._resumable.gone(tid_text, arg.strip()):
                self._out.gone(tid_text, arg.strip())
            return
        tid = parse_uint(tid_text, max_digits=18)
        if tid is None:
            return
        if kind == "file-chunks":
            self._resumable.chunks(tid, arg, frame.payload)
        elif self._resumable.owns(tid):
            self._arrival(kind, tid, arg, frame.payload)
        elif kind == "file-data":
            self._in.data(tid, frame.payload)
        elif kind == "file-begin":
            self._in.begin(tid, arg)
        elif kind == "file-end":
            self._in.end(tid, arg.strip().lower())
        elif kind in ("file-abort", "file-pause") and self._in.abort(tid, arg.strip() or "cancelled"):
            return
        else:
            self._out.frame(kind, tid, arg, frame.payload)

    def _arrival(self, kind: str, tid: int, arg: str, payload: bytes | memoryview) -> None:
        resumable = self._resumable
        if kind == "file-data":
            resumable.data(tid, arg, payload)
        elif kind == "file-begin":
            resumable.begin(tid, arg)
        elif kind == "file-end":
            resumable.end(tid)
        elif kind == "file-pause":
            resumable.pause(tid, arg.strip())
        elif kind == "file-abort":
            resumable.abort(tid, arg.strip() or "cancelled")

    # -- shutdown ----------------------------------------------------------------------
    def close(self, reason: str | None = None) -> None:
        """The connection ended (or the client quits, *reason* saying why): running sends stop (``file-abort``;
        resumable ones pause), partial files that cannot resume are discarded, the others keep what they have."""
        self._out.close(reason or "cancelled")
        self._in.close(reason or "connection closed before the file was complete")
        self._resumable.close(reason or "cancelled")
