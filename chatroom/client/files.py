"""The client's file transfers (:class:`Transfers`): ``/sendfile``, the watched send folder, offers waiting
for consent, giving up on files still arriving when quitting, and the progress snapshot the UIs draw.

Consent (``--accept-files ask``, the default on a terminal): the server sends
``file-offer ID SIZE SENDER NAME`` and the client shows
``bob offers "NAME" (SIZE bytes): /accept ID or /decline ID``; the person
types one of them (sent to the server), or ``/accept`` / ``/decline`` alone
for the only offer waiting (with several, the IDs are listed and nothing is
sent). An offer nobody answers ends with the server's ``file-abort ID no
answer in 60 s: declined``, shown as ``offer ID of "NAME" from bob: no
answer in 60 s: declined``. In ``all`` or ``none`` mode the server answers
for the client (``/files``), and an offer that still arrives is answered at
once.

``/transfers`` lists the transfers in and out with their progress, the own
offers still waiting for answers, the offers made to this person, and the
interrupted transfers that can resume (:func:`chatroom.client.offers.transfer_lines`;
docs/protocol.md, "Resumable transfers"): those are kept in a
:class:`~chatroom.client.journal.Journal` that lives as long as the client,
are presented again on every new connection (once the server took ``/caps
resume`` and the name and login are settled), and ``/resume ID`` presents one
at once (ID: the first digits of its token, as ``/transfers`` shows them).
``/cancel ID`` stops one (a resumable one for good, on both ends):
an own running send gets ``file-abort``; a file arriving is discarded (part
file removed, its later frames ignored; the protocol has no receiver abort,
so the relay still sends its bytes); an offer not answered yet is declined;
an accepted offer whose file has not begun is ignored when it begins;
``/cancel NAME`` withdraws an own offer still waiting for the receivers'
answers (aborted as soon as the server names its ID).

The file-transfer component itself (:class:`~chatroom.client.transfer.TransferManager`, optional: see
:func:`chatroom.client.io.load_transfer`) is made per connection through the *manager* factory, with
the :class:`Link`'s ``write`` and ``queued``; the send-folder watcher (optional too) lives as long as
the client. Loop thread only, except the watcher's own threads, which only call ``wake``.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from chatroom.client.io import LOST, Console, ready_hint
from chatroom.client.journal import Journal
from chatroom.client.offers import Offer, Paused, pick_offer, transfer_lines
from chatroom.wire.filenames import safe_name
from chatroom.wire.lines import Frame

__all__ = ["PROGRESS_INTERVAL", "Link", "Transfers"]

#: Seconds between refreshes of :attr:`Transfers.progress`.
PROGRESS_INTERVAL = 0.2


class Link(Protocol):
    """The connection as the transfer side sees it (its output queue)."""

    def send(self, text: str) -> None:
        """Queue one line."""

    def write(self, data: bytes) -> None:
        """Queue bytes as they are (frames)."""

    def queued(self) -> int:
        """Bytes queued, not yet taken by the kernel."""


class Transfers:
    """Files in and out over the client's connections (see the module docstring).

    *manager* is ``TransferManager``'s class or a factory with its signature ``(send_dir,
    received_dir, write, out_queued, emit)``, None when file transfer is not installed; *watcher* is a
    factory ``(send_dir, wake)`` or None. *changed* is called when :attr:`progress` changed.
    """

    def __init__(self, link: Link, console: Console, *, manager: Any, watcher: Any, send_dir: Path,
                 received_dir: Path, auto_send: bool, accept_files: str, wake: Callable[[], None],
                 changed: Callable[[], None]) -> None:
        self.link = link
        self.console = console
        self.send_dir = Path(send_dir)
        self.received_dir = Path(received_dir)
        self.auto_send = auto_send
        self.accept_files = accept_files
        self._changed = changed
        self._manager = manager
        self._tm: Any = None
        self._watcher: Any = None
        self.journal: Journal | None = None  # resumable transfers, across connections
        self._resumes = False  # the server took /caps resume on this connection
        self._presented = False  # the journal's records were presented on this connection
        self._offered: dict[str, Offer] = {}  # offer id -> offer, waiting for the person's answer or for its file
        #: Snapshot of the running transfers (``progress()`` items), refreshed every :data:`PROGRESS_INTERVAL`.
        self.progress: list[Any] = []
        self._next_progress = 0.0
        if manager is not None:
            self.send_dir.mkdir(parents=True, exist_ok=True)
            self.received_dir.mkdir(parents=True, exist_ok=True)
            self.journal = Journal(self.send_dir, self.received_dir)
            self._tm = self._new_manager()
            if watcher is not None:
                self._watcher = watcher(self.send_dir, wake)

    def _new_manager(self) -> Any:
        return self._manager(self.send_dir, self.received_dir, self.link.write, self.link.queued, self.console.line,
                             journal=self.journal)

    @property
    def available(self) -> bool:
        """True when file transfer is installed (the handshake asks for frames)."""
        return self._manager is not None

    @property
    def busy(self) -> bool:
        """True while file transfers are in flight."""
        return bool(self._tm is not None and self._tm.busy)

    @property
    def receiving(self) -> bool:
        """True while a file is arriving (not discarded)."""
        return bool(self._tm is not None and self._tm.receiving)

    # ---- the connection's life ------------------------------------------------------

    def start(self) -> None:
        """Start watching the send folder."""
        if self._watcher is not None:
            self._watcher.start()

    def connected(self) -> None:
        """A new connection after a lost one: a fresh manager, no offers."""
        self._offered.clear()
        self._resumes = self._presented = False
        if self._manager is not None and self._tm is None:
            self._tm = self._new_manager()

    def resume_answered(self, ok: bool) -> None:
        """The server's answer to ``/caps resume``: with OK, offers can resume and records are presented."""
        self._resumes = ok
        if ok and self._tm is not None:
            self._tm.server_resumes()

    def ready(self) -> None:
        """Named and logged in on this connection: present every resumable record once."""
        if self._resumes and not self._presented and self._tm is not None:
            self._presented = True
            self._tm.present_all()

    def lost(self) -> None:
        """The connection is gone: every transfer ends (``sending "NAME" stopped: connection to server lost``)."""
        if self._tm is not None:
            self._tm.close(LOST)
            self._tm = None
        for offer in self._offered.values():  # the server forgets them with this connection
            if offer.answer in ("", "accepted"):
                self.console.line(f'offer {offer.tid} of "{offer.name}" from {offer.sender} ended: {LOST}')
        self._offered.clear()
        self.progress = []
        self._changed()

    def abort(self, reason: str = "the client quit") -> None:
        """Ctrl-C while quitting (or the client ends): end every transfer now, saying *reason* (a file that can
        resume pauses)."""
        if self._tm is not None:
            self._tm.close(reason)
            self._tm = None

    def discard_incoming(self, reason: str) -> None:
        """Give up on every file still arriving (their part files removed; a line each says why)."""
        if self._tm is not None:
            self._tm.discard_incoming(reason)

    def stop(self) -> None:
        """The client ends: the watcher stops, transfers end, no progress."""
        if self._watcher is not None:
            self._watcher.stop()
        self.abort()
        if self.journal is not None:
            self.journal.close()
        self.progress = []
        self._changed()

    # ---- what the server sends -------------------------------------------------------

    def frame(self, frame: Frame) -> None:
        """A frame from the server: offers are handled here, everything else by the transfer component."""
        if self._tm is None:
            return
        kind, _, rest = frame.meta.partition(" ")
        tid, _, arg = rest.partition(" ")
        offered = self._offered
        if kind == "file-offer":
            size, _, rest = arg.partition(" ")
            sender, _, raw_name = rest.partition(" ")
            if not tid.isdigit() or not size.isdigit():
                return
            if self.accept_files in ("all", "none"):
                self.link.send(f"/{'accept' if self.accept_files == 'all' else 'decline'} {tid}")
                return
            offered[tid] = Offer(tid, safe_name(raw_name), sender, int(size))
            self.console.line(f'{sender} offers "{safe_name(raw_name)}" ({size} bytes): '
                              f"/accept {tid} or /decline {tid}")
            return
        if kind in ("file-begin", "file-abort") and tid in offered:
            offer = offered.pop(tid)
            if kind == "file-abort":
                self.console.line(f'offer {tid} of "{offer.name}" from {offer.sender}: {arg.strip() or "cancelled"}')
                return
            if offer.answer == "cancelled":
                return  # never started here: its data and end frames find no transfer and are ignored
        self._tm.handle_frame(frame)

    def line(self, text: str) -> bool:
        """A server line: True if it was the reply to an own offer (consumed, not shown)."""
        return bool(self._tm is not None and self._tm.handle_line(text))

    # ---- typed commands ----------------------------------------------------------------

    def command(self, cmd: str, rest: str) -> bool:
        """A typed ``/sendfile``, ``/transfers``, ``/cancel``, ``/accept`` or ``/decline`` (*cmd* lower case,
        *rest* its arguments): act on it and return True; False for any other command."""
        if cmd == "/sendfile":
            self._sendfile(rest)
        elif cmd == "/transfers":
            tm = self._tm
            progress = tm.progress() if tm is not None else []
            for line in transfer_lines(progress, tm.offered() if tm is not None else [], list(self._offered.values()),
                                       paused=self._paused(), queued=tm.queued() if tm is not None else []):
                self.console.line(line)
        elif cmd == "/resume":
            self._resume(rest.strip())
        elif cmd == "/cancel":
            self._cancel(rest.strip())
        elif cmd in ("/accept", "/decline"):
            self._answer(cmd[1:], rest.strip())
        else:
            return False
        return True

    def _answer(self, verb: str, arg: str) -> None:
        """``/accept [ID]`` / ``/decline [ID]``: sent to the server with the ID (the only waiting offer's
        when none is given); the server's ``OK accepted ...`` / ``ERROR ...`` reply is shown as usual."""
        offer, why = pick_offer(self._offered, arg, verb)
        if why is not None:
            self.console.error(why)
            return
        if offer is not None:
            offer.answer = f"{verb}ed" if verb == "accept" else "declined"
        self.link.send(f"/{verb} {offer.tid if offer is not None else arg}")

    def _paused(self) -> list[Paused]:
        """The resumable transfers not moving on this connection now, for ``/transfers``."""
        journal, tm = self.journal, self._tm
        if journal is None:
            return []
        moving = tm.running if tm is not None else (lambda token: False)
        delivered = tm.delivered if tm is not None else (lambda token: False)
        found = [Paused(t, "up", safe_name(r.name), 0, r.size, t in journal.refused, delivered(t))
                 for t, r in journal.sends.items() if not moving(t)]
        return found + [Paused(t, "down", f"{r.name} from {r.sender}", r.done, r.size, t in journal.refused)
                        for t, r in journal.incoming.items() if not moving(t)]

    def _token(self, arg: str, verb: str) -> str | None:
        """The one resumable record whose token starts with *arg* (``/resume ID``, ``/cancel ID``), or None
        (the reason shown)."""
        found = self.journal.find(arg) if self.journal is not None else []
        if len(found) == 1:
            return found[0]
        if found:
            self.console.error(f"{arg} is the start of {len(found)} transfers' ids: give more of it (see /transfers)")
        elif verb == "resume":
            self.console.error(f"no interrupted transfer {arg} (see /transfers)" if arg
                               else "usage: /resume ID (see /transfers)")
        return None

    def _resume(self, arg: str) -> None:
        """``/resume ID``: present one resumable record to the server now."""
        token = self._token(arg, "resume")
        if token is None or self._tm is None or self.journal is None:
            return
        if not self._resumes:
            self.console.error("this connection cannot resume transfers (not connected, or an older server)")
        elif self._tm.running(token):
            self.console.error(f"{arg} is moving already (see /transfers)")
        else:
            self.journal.refused.discard(token)
            self._tm.present(token)

    def _cancel(self, arg: str) -> None:
        """``/cancel ID`` (or ``/cancel NAME`` for an own offer still waiting for the receivers' answers)."""
        args = _words(arg)
        if len(args) != 1:
            self.console.error("usage: /cancel ID (see /transfers)")
            return
        what = args[0]
        offer = self._offered.get(what)
        if offer is not None and not offer.answer:
            self._answer("decline", what)
            return
        if self._tm is not None and self._tm.cancel(what):
            return
        if offer is not None:  # accepted, its file has not begun: ignore it when it does
            offer.answer = "cancelled"
            self.console.line(f'offer {what} of "{offer.name}" from {offer.sender}: cancelled')
            return
        token = self._token(what, "cancel")
        if token is not None and self._tm is not None and self._tm.cancel(token):
            return
        self.console.error(f"no transfer {what} (see /transfers)" if self._tm is not None or token is None
                           else "not connected: cancel it once the connection is back")

    def _sendfile(self, rest: str) -> None:
        args = _words(rest)
        if len(args) != 1:
            self.console.error('usage: /sendfile NAME (quote a name with spaces: /sendfile "my file.txt")')
            return
        if self._tm is None:
            self.console.error("file transfer is not available in this client")
            return
        self._tm.send_file(args[0])

    # ---- each pass -----------------------------------------------------------------------

    def poll_watcher(self) -> None:
        """Announce (or, with *auto_send*, send) the files the watcher found complete."""
        if self._watcher is None:
            return
        for path in self._watcher.ready():
            name = Path(path).name
            if self._tm is not None and self._tm.sent_before(name):
                continue  # sent already: /sendfile was typed before the file settled
            if self.auto_send and self._tm is not None:
                self._tm.send_file(name)
            else:
                self.console.line(ready_hint(self.send_dir.as_posix(), name))
        changed = getattr(self._watcher, "changed", list)  # optional in the watcher contract
        for path in changed():  # changed in place after it was reported: never resent by itself
            hint = ready_hint(self.send_dir.as_posix(), Path(path).name)
            if self.auto_send and self._tm is not None and " is ready: " in hint:
                folder_name, _, command = hint.partition(" is ready: ")
                self.console.line(f"{folder_name} changed after it was sent; not sent again ({command} sends it)")
            else:
                self.console.line(hint)

    def pump(self) -> None:
        """Let the transfer component queue its next chunks."""
        if self._tm is not None:
            self._tm.pump()

    def refresh(self) -> None:
        """Refresh :attr:`progress` (at most every :data:`PROGRESS_INTERVAL` seconds)."""
        if self._tm is None:
            if self.progress:
                self.progress = []
                self._changed()
            return
        now = time.monotonic()
        if now < self._next_progress:
            return
        self._next_progress = now + PROGRESS_INTERVAL
        tick = getattr(self._tm, "tick", None)  # optional in the manager contract
        if tick is not None:
            tick()
        snapshot = list(self._tm.progress())
        if snapshot or self.progress:
            self.progress = snapshot
            self._changed()


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return []
