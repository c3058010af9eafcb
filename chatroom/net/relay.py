"""Server-side file relay: forwards file frames from a sender to its room.

The server owns the sockets; it routes every frame a client sends to
:meth:`Relay.on_frame` and tells the relay when a client left
(:meth:`Relay.on_client_left`) or when a client's output queue drained
(:meth:`Relay.on_drain`). The frame flow is in ``docs/protocol.md``
("File transfer frames").

Strategy: **pause the sender** (backpressure), no spooling. Each
``file-data`` chunk (at most 1 MiB, already in memory as the parsed frame)
is appended once to every receiver's output queue and dropped; while any
receiver of any of the sender's transfers holds more than
:data:`HIGH_WATER` bytes queued, the server stops reading the sender's
socket, and it reads again when they drain. The relay's memory is therefore
bounded by (HIGH_WATER + one chunk) per receiver whatever the file size, and
the bytes never touch the disk. A receiver that holds a sender back for
:data:`STALL_TIMEOUT` seconds without its queue once draining below the
server's low-water mark (so one slower than about 1 MiB per 30 s, or
stalled) is dropped from that transfer (``file-abort``), so it cannot hold
the others back for ever; a sender that sends nothing for
:data:`IDLE_TIMEOUT` seconds loses its transfer. Quotas and consent come
first (:mod:`chatroom.net.quota`, :mod:`chatroom.net.consent`): only
receivers who accepted get bytes; which frames a sender may send is
:mod:`chatroom.net.frames`'. Members without frames (IRC) use one-time
links (:mod:`chatroom.net.filelinks`): their HTTP connections join the flow. The pausing and resuming is
:mod:`chatroom.net.backpressure`'s; the relay holds each of these parts
and talks to the server through :class:`~chatroom.net.transfer.RelayHost`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from itertools import count
from typing import TYPE_CHECKING, Any

from chatroom.model.errors import Refused
from chatroom.model.resumable import ResumeBook
from chatroom.net.backpressure import Backpressure
from chatroom.net.consent import OFFER_TIMEOUT, Consent, summary
from chatroom.net.filelinks import Link, Links
from chatroom.net.frames import FRAME_KINDS, FrameGate
from chatroom.net.malloc import tune_malloc
from chatroom.net.quota import Quota, quota_key
from chatroom.net.resume import KINDS as RESUME_KINDS
from chatroom.net.resume import Resumes
from chatroom.net.transfer import Plan, RelayHost, Transfer
from chatroom.wire.filenames import safe_name
from chatroom.wire.lines import Frame, sanitize

if TYPE_CHECKING:
    from chatroom.net.connection import Connection as Client

__all__ = ["HIGH_WATER", "IDLE_TIMEOUT", "MAX_ACTIVE", "MIN_PROGRESS", "OFFER_TIMEOUT", "STALL_TIMEOUT", "Relay",
           "Transfer", "tune_malloc"]

log = logging.getLogger("chatroom.relay")

#: Pause the sender while a receiver has more than this many bytes queued.
HIGH_WATER = 1024 * 1024
#: Seconds a receiver may block a sender without making progress.
STALL_TIMEOUT = 30.0
#: Seconds a transfer may go without data from its (unpaused) sender...
IDLE_TIMEOUT = 60.0
#: ... and the least it must relay in that time (bytes), so a trickle cannot hold its receivers for ever.
MIN_PROGRESS = 64 * 1024
#: Transfers one sender may have open at once.
MAX_ACTIVE = 8
#: Seconds between checks for stalled receivers and idle senders.
TICK = 1.0


class Relay:
    """Relays file frames for one server (*server*: a :class:`~chatroom.net.transfer.RelayHost`).

    It holds five parts, each with its own state: ``quota`` (:class:`~chatroom.net.quota.Quota`), ``consent``
    (:class:`~chatroom.net.consent.Consent`), ``flow`` (:class:`~chatroom.net.backpressure.Backpressure`), ``gate``
    (:class:`~chatroom.net.frames.FrameGate`: which frames a sender may send) and ``resumes`` (:class:`~chatroom.net.resume.Resumes`, over *book*, the :class:`~chatroom.model.resumable.ResumeBook`;
    default: one in memory); the relay itself owns the open ``transfers`` (id ->
    :class:`~chatroom.net.transfer.Transfer`), the id counter, and the tick timer.

    Keyword arguments override the module constants (tests use small ones); ``offer_timeout`` is how long asked
    receivers have to answer (seconds); ``files_per_hour`` and ``bytes_per_day`` are the per-sender quotas (0:
    unlimited); ``clock`` returns seconds (``time.monotonic`` by default).
    """

    def __init__(
        self,
        server: RelayHost,
        *,
        high_water: int = HIGH_WATER,
        stall_timeout: float = STALL_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        max_active: int = MAX_ACTIVE,
        min_progress: int = MIN_PROGRESS,
        tick: float = TICK,
        offer_timeout: float = OFFER_TIMEOUT,
        files_per_hour: int = 0,
        bytes_per_day: int = 0,
        clock: Callable[[], float] = time.monotonic,
        book: ResumeBook | None = None,
    ) -> None:
        self.server = server
        self.idle_timeout = idle_timeout
        self.max_active = max_active
        self.min_progress = min_progress
        self.tick = tick
        self.clock = clock
        self.transfers: dict[int, Transfer] = {}
        self.quota = Quota(files_per_hour, bytes_per_day, clock)
        self.links = Links(server, clock=clock)
        self.consent = Consent(server, self._decided, timeout=offer_timeout, clock=clock, links=self.links)
        self.flow = Backpressure(server, self.transfers, self._end, high_water=high_water,
                                 stall_timeout=stall_timeout, clock=clock)
        self.resumes = Resumes(server, book if book is not None else ResumeBook(None), self)
        self.gate = FrameGate(self.transfers, self.resumes)  # which frames a sender may send; late ones of ended ids
        self._ids = count(1)
        self._timer: Any = None

    # -- called by the sendfile command ------------------------------------------
    def start(self, client: Client, name: str, size: int, *, plan: Plan | None = None,
              behalf: Client | None = None) -> int:
        """Open a transfer of *name* (*size* bytes) from *client* to its room; return its id. With *plan*
        (a ``file-announce``: chunk size, SHA-256 and hash list) it can resume (docs/protocol.md,
        "Resumable transfers").

        *behalf* is the member an upload link's HTTP connection (*client*) sends for: it is not offered its own
        file, and quota and hooks count the file as its.

        Checks, before any byte moves: the sender announced ``/caps binary``,
        *size* is within ``server.max_file_size``, the sender has fewer than
        ``max_active`` open transfers, some other member of the room can
        receive frames, no ``file_offered`` hookimpl refuses, and the sender's
        quota allows it. Raises :class:`~chatroom.model.errors.Refused` with the
        reason otherwise. Then the room hears ``* NICK is sending "NAME" (SIZE
        bytes)`` and the answer phase starts (:meth:`Consent.offer <chatroom.net.consent.Consent.offer>`):
        the sender gets ``OK sendfile ID NAME`` and the acceptors ``file-begin``
        once every answer is in, at once when nobody has to be asked.
        """
        name = safe_name(name)
        if "binary" not in client.caps:
            raise Refused("files travel in frames: send /caps binary first (chatroom-client does)")
        if size < 0:
            raise Refused("size must be a number of bytes")
        if size > (limit := self.server.max_file_size):
            raise Refused(f"{size} bytes is over the server's limit of {limit} bytes (--max-file-size)")
        if sum(1 for t in self.transfers.values() if t.sender is client) >= self.max_active:
            raise Refused(f"you already have {self.max_active} transfers open; wait for one to finish")
        if client.room is None:
            raise Refused("you are in no room: /join #room first")
        owner = behalf or client
        receivers = [c for c in client.room.members.values() if c is not client and c is not behalf and not c.closed
                     and ("binary" in c.caps or getattr(c, "takes_links", False))]
        if not receivers:
            raise Refused(f"nobody else in {client.room.label} can receive files")
        for result in self.server.call_hook("file_offered", owner, name=name, size=size):
            if isinstance(result, str):
                raise Refused(result)
        if over := self.quota.check(quota_key(owner), size):
            raise Refused(over)
        now = self.clock()
        tid = next(self._ids)
        transfer = Transfer(tid, client, name, size, {}, now, now, window=now, plan=plan)
        transfer.charge = self.quota.charge(quota_key(owner), size)
        self.transfers[tid] = transfer
        self.server.broadcast(client.room, f'* {client.nick} is sending "{name}" ({size} bytes)', exclude=owner)
        if away := sum(1 for c in client.room.members.values() if "remote" in c.caps):  # scale-out: other nodes'
            self.server.broadcast(client.room, f'* "{name}" reaches only the members on {client.nick}\'s server: files '
                                  f'are not relayed between servers ({away} in {client.room.label} are on others)')
        self.consent.offer(transfer, receivers)
        self._arm_timer()
        return tid

    def set_policy(self, client: Client, policy: str) -> None:
        """``/files ask|all|none`` (see :meth:`chatroom.net.consent.Consent.set_policy`)."""
        self.consent.set_policy(client, policy)

    def answer(self, client: Client, tid: int | None, accept: bool) -> str:
        """``/accept ID`` or ``/decline ID`` (see :meth:`chatroom.net.consent.Consent.answer`)."""
        return self.consent.answer(client, tid, accept)

    def fetch(self, receiver: Client, token: str) -> Link | int:
        """A download link was fetched on the HTTP connection *receiver*: it receives in the link's member's name
        (its answer: accepted). Returns the link, or the HTTP status (404: no such link; 410: spent, offer over)."""
        link = self.links.fetch(token)
        if isinstance(link, int):
            return link
        transfer = link.transfer
        assert transfer is not None
        receiver.nick = link.member.nick
        self.consent.fetched(transfer, link.member, receiver)
        return link

    def upload(self, sender: Client, token: str, name: str, size: int) -> Client | int:
        """An upload link was used on the HTTP connection *sender* for *name* (*size* bytes): it offers the file to
        the link's room in its member's name (:meth:`start`, which may raise Refused). The member, or 404/410."""
        link = self.links.put(token)
        if isinstance(link, int):
            return link
        member, room = link.member, link.room
        if member.rooms.get(room.name) is not room:
            raise Refused(f"you are no longer in {room.label}")
        sender.nick, sender.account, sender.room = member.nick, member.account, room
        sender.caps = frozenset({"binary"})
        self.start(sender, name, size, behalf=member)
        return member

    def _decided(self, transfer: Transfer) -> None:
        """Every receiver answered (or timed out): ``file-begin`` to the acceptors and ``OK sendfile`` to the
        sender, or, when nobody accepted, ``ERROR sendfile`` and the quota refunded."""
        sender = transfer.sender
        if not transfer.receivers:
            self._forget(transfer)
            self.quota.refund(quota_key(sender), transfer.charge)
            self.server.send_line(sender, f"ERROR sendfile {transfer.name}: nobody accepted the file "
                                          f"({summary(transfer)})")
            self.server.call_hook("file_delivered", sender, name=transfer.name, size=transfer.size,
                                  receivers=[], ok=False)
            return
        if transfer.report:
            self.server.send_line(sender, f'* "{transfer.name}": {summary(transfer)}')
        now = self.clock()
        transfer.started = transfer.last_data = transfer.window = now
        if transfer.plan is not None:
            self.resumes.register(transfer, quota_key(sender))  # tokens to the parties, before file-begin
        begin = f"file-begin {transfer.id} {transfer.size} {sender.nick} {transfer.name}"
        for receiver in transfer.receivers.values():
            self.server.send_bytes(receiver, receiver.frame(begin))
        self.server.send_line(sender, f"OK sendfile {transfer.id} {transfer.name}")
        log.info("transfer %d: %s sends %r (%d bytes) to %d receivers", transfer.id, sender.nick,
                 transfer.name, transfer.size, len(transfer.receivers))
        self._arm_timer()

    # -- called by the server ------------------------------------------------------
    def check_frame(self, client: Client, meta: str, size: int) -> str | None:
        """May *client* send a frame with this header? None, or why not (``""``: drop it quietly); called before
        any payload byte is buffered (:meth:`chatroom.net.frames.FrameGate.check`)."""
        return self.gate.check(client, meta, size)

    def on_frame(self, client: Client, frame: Frame) -> float:
        """Handle one frame *client* sent: ``file-data``, ``file-end``, ``file-abort``, or one of the
        resumable kinds (:mod:`chatroom.net.resume`); returns its flood cost (0 for file frames).

        A frame for an unknown transfer, or one that is not the client's, is
        answered with an ``ERROR`` line (quietly dropped if the transfer just
        ended, since chunks already in flight still arrive).
        """
        kind, _, rest = frame.meta.partition(" ")
        if kind in RESUME_KINDS:
            return self.resumes.on_frame(client, kind, rest, frame.payload)
        tid_text, _, arg = rest.partition(" ")
        if kind not in FRAME_KINDS:
            self.server.send_line(client, f"ERROR unknown frame kind: {sanitize(kind)[:40]}")
            return 0.0
        found = self.gate.own(client, kind, tid_text)
        if isinstance(found, str):
            if found:
                self.server.send_line(client, f"ERROR {found}")
            return 0.0
        transfer = found
        if transfer.asked and kind != "file-abort":
            self.server.send_line(client, f"ERROR {kind} {transfer.id}: the receivers have not answered yet")
        elif kind == "file-data":
            why = transfer.plan.refusal(transfer.id, arg, len(frame.payload)) if transfer.plan is not None else None
            if why:
                self.server.send_line(client, f"ERROR {why}")
            else:
                self._data(transfer, frame)
        elif kind == "file-end":
            self._finish(transfer, arg.strip().lower())
        else:
            reason = sanitize(arg).strip()[:200] or "cancelled"
            why = "paused by the sender" if transfer.offer is not None else "sender cancelled"
            self._end(transfer, f"{why}: {reason}", tell_sender=False)
        return 0.0

    def on_client_left(self, client: Client) -> None:
        """*client* is gone: abort its own transfers and remove it as a receiver."""
        for transfer in list(self.transfers.values()):
            if transfer.sender is client:
                self._end(transfer, f"{client.nick} disconnected", tell_sender=False)
            elif transfer.receivers.pop(client.id, None) is not None:
                transfer.held.pop(client.id, None)
                if not transfer.receivers and not transfer.asked:
                    self._end(transfer, "every receiver left")
        self.consent.left(client)
        self.links.left(client)
        self.flow.left(client)
        self.resumes.left(client)

    def on_drain(self, client: Client) -> None:
        """*client*'s output queue drained: give it what was held for it, resume senders it no longer blocks."""
        self.flow.drained(client)

    # -- sessions of resumable offers (called by self.resumes) ---------------------------------------
    def adopt(self, transfer: Transfer) -> None:
        """Run *transfer* (a session :class:`~chatroom.net.resume.Resumes` made; no answer phase)."""
        self.transfers[transfer.id] = transfer
        self._arm_timer()

    def new_id(self) -> int:
        """A transfer id never used before by this relay."""
        return next(self._ids)

    def stop(self, transfer: Transfer, reason: str, *, cancel: bool = False, receiver: Client | None = None) -> None:
        """End a session early (see :meth:`_end`), telling its sender too; with *receiver*, take only it out (it
        cancelled, or another connection replaced it): the session ends when nobody is left."""
        if receiver is not None:
            if transfer.receivers.pop(receiver.id, None) is None:
                return
            transfer.held.pop(receiver.id, None)
            self.flow.resume_unblocked()
        if transfer.id in self.transfers and (receiver is None or not transfer.receivers):
            self._end(transfer, reason, cancel=cancel)

    # -- the flow -------------------------------------------------------------------
    def _data(self, transfer: Transfer, frame: Frame) -> None:
        payload = frame.payload
        n = len(payload)
        if transfer.relayed + n > transfer.size:
            self._end(transfer, f"more data than the announced {transfer.size} bytes", cancel=True)
            return
        transfer.relayed += n
        transfer.last_data = self.clock()
        (meta, indexed), legs = transfer.data_meta(n), transfer.legs  # receivers that can resume get the index
        flow = self.flow
        blocked = False
        for receiver in transfer.receivers.values():  # one payload object, shared by every receiver's queue
            header = receiver.frame_header(indexed if receiver.id in legs else meta, n)  # a few bytes
            if not flow.send(transfer, receiver, header, payload) or receiver.queued > flow.high_water:
                blocked = True
        if blocked:
            flow.pause(transfer)

    def _finish(self, transfer: Transfer, digest: str) -> None:
        why = transfer.end_refusal(digest)
        if why:
            self._end(transfer, why, cancel=True)
            return
        end = f"file-end {transfer.id} {digest}"
        for receiver in transfer.receivers.values():
            self.flow.send(transfer, receiver, receiver.frame(end))
        nicks = [r.nick for r in transfer.receivers.values()]
        self._forget(transfer)
        self.resumes.ended(transfer, complete=True)
        self.server.send_bytes(transfer.sender, transfer.sender.frame(f"file-done {transfer.id} {','.join(nicks)}".rstrip()))
        elapsed = max(self.clock() - transfer.started, 1e-9)
        log.info(
            "transfer %d: %r (%d bytes) from %s delivered to %s, %.1f MB/s",
            transfer.id, transfer.name, transfer.size, transfer.sender.nick, ", ".join(nicks),
            transfer.size / elapsed / 1e6,
        )  # fmt: skip
        self.server.call_hook("file_delivered", transfer.sender, name=transfer.name, size=transfer.size,
                              receivers=nicks, ok=True)

    def _end(self, transfer: Transfer, reason: str, tell_sender: bool = True, cancel: bool = False) -> None:
        """End *transfer* early: ``file-abort`` to its receivers (and its sender if *tell_sender*), or
        ``file-pause`` to the parties that can resume it; with *cancel* (the sender broke the protocol) a
        resumable offer is over for good (``file-abort``, then ``file-gone``)."""
        transfer.cancelled = transfer.cancelled or cancel
        transfer.held.clear()  # the receivers discard (or keep) what they have anyway
        for receiver in [*transfer.receivers.values(), *transfer.asked.values()]:
            transfer.abort(self.server, receiver, reason)
        self._forget(transfer)
        if tell_sender:
            transfer.abort(self.server, transfer.sender, reason)
        self.resumes.ended(transfer, complete=False)
        if cancel and transfer.offer is not None:  # the parties of this session were told with file-abort
            told = {leg.key for leg in transfer.legs.values()} | ({transfer.offer.key} if tell_sender else set())
            self.resumes.drop(transfer.offer, reason, told=told)
        log.info("transfer %d: %r from %s aborted: %s", transfer.id, transfer.name, transfer.sender.nick, reason)
        self.server.call_hook("file_delivered", transfer.sender, name=transfer.name, size=transfer.size, receivers=[], ok=False)

    def _forget(self, transfer: Transfer) -> None:
        self.transfers.pop(transfer.id, None)
        self.consent.drop(transfer)
        self.gate.ended(transfer)
        self.flow.ended(transfer)

    def _arm_timer(self) -> None:
        if self._timer is None and (self.transfers or self.flow.flushing):
            self._timer = self.server.call_later(self.tick, self._on_tick, plugin="sendfile")

    def _on_tick(self) -> None:
        """Expire offers, drop receivers that held a sender back too long, end transfers whose sender went idle."""
        self._timer = None
        now = self.clock()
        self.consent.expire(now)
        self.links.expire(now)
        self.flow.tick(now)
        for transfer in list(self.transfers.values()):
            if transfer.sender.id in self.flow.paused or transfer.asked:
                continue
            if idle := transfer.idle(now, self.idle_timeout, self.min_progress):
                self._end(transfer, idle)
        self.flow.resume_unblocked()
        self._arm_timer()

