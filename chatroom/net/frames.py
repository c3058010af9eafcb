"""Which file frames a sender may send: the relay's check of a frame's header, and the ids of ended transfers.

The transport asks :meth:`FrameGate.check` (through ``Relay.check_frame``) before any payload byte is buffered,
so a refused payload is skipped as it arrives; :meth:`FrameGate.own` finds the sender's open transfer a frame
names. Chunks already in flight still arrive after a transfer ends: the gate remembers the last
:data:`ENDED_MEMORY` ended ids and their senders, so those frames are dropped quietly instead of answered with
``ERROR``. The frame flow is in ``docs/protocol.md`` ("File transfer frames"). Loop thread only.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from chatroom.net.resume import KINDS as RESUME_KINDS
from chatroom.net.resume import Resumes
from chatroom.net.transfer import Transfer
from chatroom.wire.lines import MAX_FRAME, sanitize
from chatroom.wire.numbers import parse_uint

if TYPE_CHECKING:
    from chatroom.net.connection import Connection as Client

__all__ = ["ENDED_MEMORY", "FRAME_KINDS", "FrameGate", "parse_id"]

#: Ended transfer ids remembered, so late frames from their sender are dropped quietly.
ENDED_MEMORY = 1024
#: The frames a client may send (docs/protocol.md, "File transfer frames").
FRAME_KINDS = ("file-data", "file-end", "file-abort")


def parse_id(text: str) -> int | None:
    """A transfer id from the wire: 1-18 ASCII digits, else None (see :func:`chatroom.wire.numbers.parse_uint`)."""
    return parse_uint(text, max_digits=18)


class FrameGate:
    """Checks frames against *transfers* (the relay's open ones: id -> Transfer; *resumes* checks the resumable
    kinds) and owns the memory of recently ended ids (id -> sender id, the oldest dropped first)."""

    def __init__(self, transfers: dict[int, Transfer], resumes: Resumes) -> None:
        self.transfers = transfers
        self.resumes = resumes
        self._ended: OrderedDict[int, int] = OrderedDict()

    def check(self, client: Client, meta: str, size: int) -> str | None:
        """May *client* send a frame with this header? None, or why not (``""``: drop it quietly).

        Called by the parser before any payload byte is buffered: only a
        client that sent ``/caps binary`` may send frames, only of the
        :data:`FRAME_KINDS`, each for one of its open transfers; a ``file-data``
        payload must fit in what is left of it, and other frames carry no
        payload. A refused payload is skipped as it arrives, never held in
        memory, and the transport charges the refusal to flood control.
        """
        if "binary" not in client.caps:
            return "frames need /caps binary first"
        kind, _, rest = meta.partition(" ")
        if kind in RESUME_KINDS:
            return self.resumes.check(client, kind, rest, size)
        if kind not in FRAME_KINDS:
            return f"unknown frame kind: {sanitize(kind)[:40]}"
        found = self.own(client, kind, rest.partition(" ")[0])
        if isinstance(found, str):
            return found
        if kind != "file-data":
            return None if size <= 4096 else f"{kind} frames carry no payload"
        transfer, tid = found, found.id
        if transfer.asked:
            return f"file-data {tid}: the receivers have not answered yet; wait for OK sendfile"
        return transfer.data_refusal(rest.partition(" ")[2], size, MAX_FRAME)

    def own(self, client: Client, kind: str, tid_text: str) -> Transfer | str:
        """*client*'s open transfer *tid_text* names, or why not (``""``: it just ended; drop the frame quietly,
        as chunks already in flight still arrive)."""
        tid = parse_id(tid_text)
        transfer = self.transfers.get(tid) if tid is not None else None
        if transfer is not None and transfer.sender is client:
            return transfer
        if tid is not None and self._ended.get(tid) == client.id:
            return ""
        return f"{kind}: no transfer {sanitize(tid_text)[:20]} of yours is open"

    def ended(self, transfer: Transfer) -> None:
        """*transfer* is over: its sender's late frames are dropped quietly from now on."""
        self._ended[transfer.id] = transfer.sender.id
        while len(self._ended) > ENDED_MEMORY:
            self._ended.popitem(last=False)
