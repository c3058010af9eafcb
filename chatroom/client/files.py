"""The file-transfer side of :class:`chatroom.client.loop.ClientLoop`: ``/sendfile``, the watched send
folder, offers waiting for consent, and the progress snapshot the UIs draw.

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
offers still waiting for answers, and the offers made to this person
(:func:`chatroom.client.offers.transfer_lines`). ``/cancel ID`` stops one:
an own running send gets ``file-abort``; a file arriving is discarded (part
file removed, its later frames ignored; the protocol has no receiver abort,
so the relay still sends its bytes); an offer not answered yet is declined;
an accepted offer whose file has not begun is ignored when it begins;
``/cancel NAME`` withdraws an own offer still waiting for the receivers'
answers (aborted as soon as the server names its ID).

A mixin: these methods run on the client loop's thread and use its
attributes (``_tm``, the transfer manager; ``_watcher``; ``console``;
``send_dir``; ``auto_send``; ``progress``...).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

from chatroom.client.io import ready_hint
from chatroom.client.offers import Offer, pick_offer, transfer_lines
from chatroom.wire.filenames import safe_name
from chatroom.wire.lines import Frame

#: Seconds between refreshes of ``ClientLoop.progress``.
PROGRESS_INTERVAL = 0.2


class FileSide:
    """Transfer-related steps of the client loop (see the module docstring)."""

    _tm: Any
    _watcher: Any
    _named: bool
    _quit: str
    _next_progress: float
    console: Any
    send_dir: Path
    auto_send: bool
    progress: list[Any]
    accept_files: str
    _offered: dict[str, Offer]  # offer id -> offer, waiting for the person's answer or for its file

    def _changed(self) -> None:  # provided by ClientLoop
        raise NotImplementedError

    def _send(self, text: str) -> None:  # provided by ClientLoop
        raise NotImplementedError

    def _file_frame(self, frame: Frame) -> None:
        """A frame from the server: offers are handled here, everything else by the transfer component."""
        kind, _, rest = frame.meta.partition(" ")
        tid, _, arg = rest.partition(" ")
        offered = self._offered
        if kind == "file-offer":
            size, _, rest = arg.partition(" ")
            sender, _, raw_name = rest.partition(" ")
            if not tid.isdigit() or not size.isdigit():
                return
            if self.accept_files in ("all", "none"):
                self._send(f"/{'accept' if self.accept_files == 'all' else 'decline'} {tid}")
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
        if self._tm is not None:
            self._tm.handle_frame(frame)

    def _file_command(self, cmd: str, rest: str) -> bool:
        """A typed ``/sendfile``, ``/transfers``, ``/cancel``, ``/accept`` or ``/decline`` (*cmd* lower case,
        *rest* its arguments): act on it and return True; False for any other command."""
        if cmd == "/sendfile":
            self._sendfile(rest)
        elif cmd == "/transfers":
            tm = self._tm
            progress = tm.progress() if tm is not None else []
            for line in transfer_lines(progress, tm.offered() if tm is not None else [], list(self._offered.values())):
                self.console.line(line)
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
        self._send(f"/{verb} {offer.tid if offer is not None else arg}")

    def _cancel(self, arg: str) -> None:
        """``/cancel ID`` (or ``/cancel NAME`` for an own offer still waiting for the receivers' answers)."""
        try:
            args = shlex.split(arg)
        except ValueError:
            args = []
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
        self.console.error(f"no transfer {what} (see /transfers)")

    def _sendfile(self, rest: str) -> None:
        try:
            args = shlex.split(rest)
        except ValueError:
            args = []
        if len(args) != 1:
            self.console.error('usage: /sendfile NAME (quote a name with spaces: /sendfile "my file.txt")')
            return
        if self._tm is None:
            self.console.error("file transfer is not available in this client")
            return
        self._tm.send_file(args[0])

    def _drain_watcher(self) -> None:
        if self._watcher is None or not self._named or self._quit != "no":
            return
        for path in self._watcher.ready():
            name = Path(path).name
            if self.auto_send and self._tm is not None:
                self._tm.send_file(name)
            else:
                self.console.line(ready_hint(self.send_dir.as_posix(), name))
        changed = getattr(self._watcher, "changed", list)  # optional in the watcher contract
        for path in changed():  # changed in place after it was reported: never resent by itself
            hint = ready_hint(self.send_dir.as_posix(), Path(path).name)
            if self.auto_send and self._tm is not None:
                folder_name, _, command = hint.partition(" is ready: ")
                self.console.line(f"{folder_name} changed after it was sent; not sent again ({command} sends it)")
            else:
                self.console.line(hint)

    # ---- quitting ------------------------------------------------------------------

    def _refresh_progress(self) -> None:
        if self._tm is None:
            if self.progress:
                self.progress = []
                self._changed()
            return
        now = time.monotonic()
        if now < self._next_progress:
            return
        self._next_progress = now + PROGRESS_INTERVAL
        snapshot = list(self._tm.progress())
        if snapshot or self.progress:
            self.progress = snapshot
            self._changed()

