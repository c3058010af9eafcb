"""Resumable transfers for the file relay: the frames that announce, resume, cancel and finish them.

:class:`Resumes` is one part the relay (:class:`chatroom.net.relay.Relay`) holds (docs/protocol.md,
"Resumable transfers"), beside quotas, consent and backpressure. What may resume, who may resume it and
for how long is :class:`chatroom.model.resumable.ResumeBook`'s rule; this part speaks the frames of a
client that sent ``/caps resume``:

* ``file-announce SIZE CHUNK SHA256 NAME`` + the hash list: an offer that can resume (the relay's
  :meth:`~chatroom.net.relay.Relay.start` with a :class:`~chatroom.net.transfer.Plan`); once the
  receivers answered, :meth:`Resumes.register` keeps it in the book and gives each party its token
  (``file-id`` to the sender, ``file-chunks`` with the hash list to each receiver that can resume);
* ``file-resume TOKEN`` + (a receiver's) bitmap of the chunks it needs: the party is back; once the
  sender and a receiver are both back, a session carries what that receiver needs (``file-resend`` with
  the bitmap to the sender, ``file-chunks`` and ``file-begin`` to the receiver);
* ``file-cancel TOKEN [REASON]``: the party gives up for good; the others hear ``file-gone``;
* ``file-received TOKEN``: the receiver has the whole file, checked; its leg ends;
* ``file-pause TOKEN [REASON]``: a receiver stops its running session (its disk is full) and keeps its
  leg: it presents the token again when it can take the rest.

Any token that is not the caller's gets one answer, ``ERROR resume TOKEN: no transfer of yours has this
id ...`` (or ``ERROR cancel ...``; ``file-received`` gets none), whatever the reason. Loop thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Protocol

from chatroom.model.errors import Refused
from chatroom.model.resumable import Leg, Offer, ResumeBook
from chatroom.net.transfer import Plan, RelayHost, Transfer
from chatroom.wire.chunks import DIGEST, MAX_CHUNK, MAX_CHUNKS, MIN_CHUNK, bitmap, bitmap_size, chunk_count, \
    is_sha256, is_token, set_bits
from chatroom.wire.filenames import safe_name
from chatroom.wire.lines import sanitize
from chatroom.wire.numbers import parse_uint

if TYPE_CHECKING:
    from chatroom.net.connection import Connection as Client

__all__ = ["COSTS", "KINDS", "Resumes", "Sessions"]

log = logging.getLogger("chatroom.relay")

#: Flood cost of each frame a client sends about resumable transfers (docs/protocol.md, "Budgets").
COSTS = {"file-announce": 1.0, "file-resume": 2.0, "file-cancel": 1.0, "file-received": 1.0, "file-pause": 1.0}
KINDS = tuple(COSTS)
#: The one answer to a token that is not the caller's.
NOT_YOURS = "no transfer of yours has this id (it may have finished, been cancelled or expired)"


class Sessions(Protocol):
    """The relay as this part uses it."""

    clock: Callable[[], float]

    def start(self, client: Client, name: str, size: int, *, plan: Plan | None = None) -> int: ...

    def adopt(self, transfer: Transfer) -> None: ...

    def new_id(self) -> int: ...

    def stop(self, transfer: Transfer, reason: str, *, cancel: bool = False, receiver: Client | None = None) -> None:
        ...



class Resumes:
    """The resumable side of the relay: *book* keeps the offers, *host* sends, *sessions* (the relay) runs them."""

    def __init__(self, host: RelayHost, book: ResumeBook, sessions: Sessions) -> None:
        self.host = host
        self.book = book
        self.sessions = sessions
        self._held: dict[int, dict[int, tuple[Offer, Leg | None]]] = {}  # client id -> what it presented

    # -- frames ----------------------------------------------------------------------------------------
    def check(self, client: Client, kind: str, rest: str, size: int) -> str | None:
        """May *client* send this frame (*kind*, the meta's *rest*, *size* payload bytes)? None, or why not."""
        if "resume" not in client.caps:
            return f"{kind} needs /caps resume first"
        if kind == "file-announce":
            return _announce(rest, size)[1]
        if kind == "file-resume":
            return None if size <= bitmap_size(MAX_CHUNKS) else "file-resume: the bitmap is too long"
        return None if size == 0 else f"{kind} frames carry no payload"

    def on_frame(self, client: Client, kind: str, rest: str, payload: bytes | memoryview) -> float:
        """Handle one of :data:`KINDS` from *client*; returns its flood cost."""
        token, _, arg = rest.partition(" ")
        if kind == "file-announce":
            self._announce(client, rest, bytes(payload))
        elif not is_token(token):
            if kind != "file-received":
                self.host.send_line(client, f"ERROR {kind[5:]} {sanitize(token)[:40]}: not a transfer id")
        elif kind == "file-resume":
            self.present(client, token, bytes(payload))
        elif kind == "file-cancel":
            self.cancel(client, token, sanitize(arg).strip()[:200])
        elif kind == "file-pause":
            self.hold(client, token, sanitize(arg).strip()[:200])
        else:
            self.received(client, token)
        return COSTS[kind]

    def _announce(self, client: Client, rest: str, hashes: bytes) -> None:
        parsed, why = _announce(rest, len(hashes))
        if parsed is None:
            self.host.send_line(client, f"ERROR {why}")
            return
        size, chunk, sha, name = parsed
        try:
            self.sessions.start(client, name, size, plan=Plan(size, chunk, sha, hashes=hashes))
        except Refused as exc:
            self.host.send_line(client, f"ERROR sendfile {safe_name(name)}: {exc}")

    # -- an offer that can resume ------------------------------------------------------------------------
    def register(self, transfer: Transfer, sender_key: str) -> None:
        """*transfer*'s receivers answered: keep it if any of them can resume, give every party its token
        (``file-id ID TOKEN`` to the sender, ``file-chunks ID TOKEN SIZE CHUNK SHA256`` + the hash list to each
        such receiver). Call before ``file-begin`` and ``OK sendfile``."""
        plan = transfer.plan
        assert plan is not None
        hashes, plan.hashes = plan.hashes or b"", None
        able = [r for r in transfer.receivers.values() if "resume" in r.caps]
        made = self.book.create(name=transfer.name, size=plan.size, sha256=plan.sha256, chunk=plan.chunk,
                                sender=transfer.sender, sender_key=sender_key, receivers=able) if able else None
        if made is None:
            return
        offer, token, tokens = made
        transfer.offer = offer
        self._hold(transfer.sender, offer, None)
        self._send(transfer.sender, f"file-id {transfer.id} {token}")
        for leg in offer.legs.values():
            receiver = leg.receiver
            transfer.legs[receiver.id] = leg
            leg.session = transfer
            self._hold(receiver, offer, leg)
            self._send(receiver, f"file-chunks {transfer.id} {tokens[receiver.id]} {plan.size} {plan.chunk} "
                                 f"{plan.sha256}", hashes)

    def ended(self, transfer: Transfer, complete: bool) -> None:
        """A session ended (*complete*: every chunk of it was relayed): its legs wait for their receivers
        to say what they need next (``file-resume``) or that they have the file (``file-received``)."""
        offer = transfer.offer
        if offer is None:
            return
        for leg in transfer.legs.values():
            if leg.session is transfer:
                leg.session = None
                leg.missing = [] if complete and leg.receiver is not None and \
                    leg.receiver.id in transfer.receivers else None
                if transfer.cancelled:  # told with file-abort: no file-gone after it
                    self._unhold(leg.receiver, leg)
                    leg.receiver = None
        if transfer.cancelled:
            self._unhold(offer.sender, offer)
            offer.sender = None
        if offer.key in self.book.offers:
            self.book.touch(offer)

    # -- a party comes back -------------------------------------------------------------------------------
    def present(self, client: Client, token: str, bits: bytes) -> None:
        """``file-resume TOKEN`` + *bits*: *client* holds *token* now; start every session it makes possible."""
        found = self.book.find(token, client)
        if found is None:
            why = self.book.ended(token, client)  # it ended while this party was away: it hears why, once
            if why is not None:
                self._send(client, f"file-gone {token} {why}")
            else:
                self.host.send_line(client, f"ERROR resume {token}: {NOT_YOURS}")
            return
        offer, leg = found
        if leg is None:
            self._sender_back(client, token, offer)
        else:
            self._receiver_back(client, token, leg, bits)

    def _sender_back(self, client: Client, token: str, offer: Offer) -> None:
        old, offer.sender, offer.token = offer.sender, client, token
        self._hold(client, offer, None)
        for leg in offer.legs.values():
            if leg.session is not None and old is not client:  # a session from a connection this one replaces
                self.sessions.stop(leg.session, f"{offer.sender_nick} reconnected")
        started, waiting = [], []
        for leg in list(offer.legs.values()):
            if leg.session is not None:
                continue
            if self._present(leg.receiver) and leg.missing:
                self.open_session(offer, leg)
                started.append(leg.nick)
            else:
                waiting.append(leg.nick)
        news = [f"resuming to {', '.join(started)}"] if started else []
        news += [f"waiting for {', '.join(waiting)}"] if waiting else []
        self.host.send_line(client, f"OK resume {token} {offer.name}: {'; '.join(news) or 'nothing to resume'}")

    def _receiver_back(self, client: Client, token: str, leg: Leg, bits: bytes) -> None:
        offer = leg.offer
        missing = set_bits(bits, chunk_count(offer.size, offer.chunk))
        if missing is None:
            self.host.send_line(client, f"ERROR resume {token}: the bitmap must be "
                                        f"{bitmap_size(chunk_count(offer.size, offer.chunk))} bytes")
            return
        session = leg.session
        if session is not None:
            if leg.receiver is client and client.id in session.receivers:
                self.host.send_line(client, f"ERROR resume {token}: {offer.name} is arriving already")
                return
            if leg.receiver is not None and leg.receiver.id in session.receivers:  # a connection this one replaces
                self.sessions.stop(session, f"{leg.nick} reconnected", receiver=leg.receiver)
            session.legs.pop(getattr(leg.receiver, "id", None), None)
            leg.session = None
        leg.receiver, leg.token, leg.missing = client, token, missing
        self._hold(client, offer, leg)
        if not missing:
            self.host.send_line(client, f"OK resume {token} {offer.name}: nothing is missing")
            self._leg_over(leg, "every receiver has it")
        elif self._present(offer.sender):
            self.host.send_line(client, f"OK resume {token} {offer.name}: resuming from {offer.sender_nick} "
                                        f"({len(missing)} chunks to go)")
            self.open_session(offer, leg)
        else:
            self.host.send_line(client, f"OK resume {token} {offer.name}: waiting for {offer.sender_nick}")

    def open_session(self, offer: Offer, leg: Leg) -> Transfer:
        """A session of *offer* from its (present) sender to *leg*'s (present) receiver, carrying the chunks
        the receiver said it needs; no answer phase (it accepted the file before)."""
        plan = Plan(offer.size, offer.chunk, offer.sha256, indices=list(leg.missing or []))
        now = self.sessions.clock()
        transfer = Transfer(self.sessions.new_id(), offer.sender, offer.name, plan.total(),
                            {leg.receiver.id: leg.receiver}, now, now, window=now, plan=plan, offer=offer)
        self.sessions.adopt(transfer)
        self.session_frames(offer, leg, transfer)
        log.info("transfer %d: %s resumes %r to %s (%d of %d bytes)", transfer.id, offer.sender_nick, offer.name,
                 leg.nick, transfer.size, offer.size)
        return transfer

    def session_frames(self, offer: Offer, leg: Leg, transfer: Transfer) -> None:
        """Tell both parties a session starts: ``file-chunks`` and ``file-begin`` to the receiver,
        ``file-resend`` + the bitmap of the chunks to send to the sender."""
        receiver, indices = leg.receiver, leg.missing or []
        transfer.legs[receiver.id] = leg
        leg.session = transfer
        self._send(receiver, f"file-chunks {transfer.id} {leg.token} {offer.size} {offer.chunk} {offer.sha256}")
        self._send(receiver, f"file-begin {transfer.id} {offer.size} {offer.sender_nick} {offer.name}")
        self._send(offer.sender, f"file-resend {transfer.id} {offer.token}",
                   bitmap(indices, chunk_count(offer.size, offer.chunk)))
        self.book.touch(offer)

    # -- a party gives up, or has the file ------------------------------------------------------------------
    def cancel(self, client: Client, token: str, reason: str) -> None:
        """``file-cancel TOKEN [REASON]``: the sender ends the offer for every receiver, a receiver its leg."""
        found = self.book.find(token, client)
        if found is None:
            self.host.send_line(client, f"ERROR cancel {token}: {NOT_YOURS}")
            return
        offer, leg = found
        why = f"cancelled by {client.nick}" + (f": {reason}" if reason else "")
        self.host.send_line(client, f"OK cancel {token} {offer.name}")
        if leg is None:
            self._unhold(client, offer)
            offer.sender = None  # the canceller hears no file-gone
            told = {offer.key}  # and neither do the receivers the sessions tell with file-abort
            for each in list(offer.legs.values()):
                if each.session is not None:
                    if self._present(each.receiver):
                        told.add(each.key)
                    each.session.cancelled = True
                    self.sessions.stop(each.session, why, cancel=True)
            self.drop(offer, why, told=told)
            return
        receiver, session = leg.receiver, leg.session
        ending: set[str] = set()
        if session is not None and receiver is not None and receiver.id in session.receivers:
            session.legs.pop(receiver.id, None)
            if len(offer.legs) == 1 and len(session.receivers) == 1:  # the offer ends with this session: its
                session.cancelled = True  # sender hears file-abort WHY, not a pause and then file-gone
                ending.add(offer.key)
            self.sessions.stop(session, why, receiver=receiver)
        self._leg_over(leg, why, told=ending)

    def hold(self, client: Client, token: str, reason: str) -> None:
        """``file-pause TOKEN [REASON]`` from a receiver: its running session stops (the sender hears
        ``file-pause ID NICK: REASON`` when nobody else is in it); the leg waits for its next ``file-resume``."""
        found = self.book.find(token, client)
        if found is None or found[1] is None:
            self.host.send_line(client, f"ERROR pause {token}: {NOT_YOURS}")
            return
        leg = found[1]
        session = leg.session
        self.host.send_line(client, f"OK pause {token} {leg.offer.name}")
        if session is None or leg.receiver is not client or client.id not in session.receivers:
            return
        session.legs.pop(client.id, None)
        leg.session = leg.missing = None
        self.sessions.stop(session, f"{client.nick}: {reason or 'paused'}", receiver=client)

    def received(self, client: Client, token: str) -> None:
        """``file-received TOKEN``: the receiver checked the whole file; its leg is over (no reply, ever)."""
        found = self.book.find(token, client)
        if found is not None and found[1] is not None and found[1].session is None:
            self._leg_over(found[1], "every receiver has it")

    def _leg_over(self, leg: Leg, why: str, *, told: Collection[str] = ()) -> None:
        """*leg* is over (its receiver has the file, or cancelled); the last one ends the offer, and its sender
        hears ``file-gone TOKEN WHY`` (unless its key is in *told*: see :meth:`drop`)."""
        offer = leg.offer
        self._unhold(leg.receiver, leg)
        if self.book.drop_leg(leg):
            self.drop(offer, why, told=told)

    def drop(self, offer: Offer, why: str, *, told: Collection[str] = ()) -> None:
        """*offer* is over: the parties still holding its token hear ``file-gone TOKEN WHY`` (once); those
        away (but the keys *told* otherwise) hear it when they present their token again, unless it expired."""
        if offer.told:  # a cancelled session dropped it already
            return
        offer.told = True
        self.book.drop(offer)
        away: list[tuple[str, str | None]] = []
        parties: list[tuple[Any, str | None, Offer | Leg, str | None]] = [
            (offer.sender, offer.token, offer, offer.sender_account),
            *((leg.receiver, leg.token, leg, leg.account) for leg in offer.legs.values())]
        for holder, token, what, account in parties:
            if self._present(holder):
                self._send(holder, f"file-gone {token} {why}")
            elif what.key not in told:
                away.append((what.key, account))
            self._unhold(holder, what)
        if away and why != "expired":
            self.book.remember_end(away, why)
        offer.sender = None
        for leg in offer.legs.values():
            leg.receiver = None

    def expire(self) -> None:
        """Drop the offers idle past the book's ``keep`` (their present parties hear ``file-gone ... expired``)."""
        for offer in self.book.expire():
            self.drop(offer, "expired")

    def left(self, client: Client) -> None:
        """*client* is gone: the tokens it presented wait for their party to come back."""
        for offer, leg in self._held.pop(client.id, {}).values():
            if leg is None and offer.sender is client:
                offer.sender = None
            elif leg is not None and leg.receiver is client:
                leg.receiver = leg.missing = None
                if leg.session is not None and leg.session.sender is not client:  # a session going on to others
                    leg.session.legs.pop(client.id, None)
                    leg.session = None

    # -- helpers ------------------------------------------------------------------------------------------------
    def _hold(self, client: Client, offer: Offer, leg: Leg | None) -> None:
        self._held.setdefault(client.id, {})[id(leg or offer)] = (offer, leg)

    def _unhold(self, client: Any, what: Offer | Leg) -> None:
        if client is not None:
            held = self._held.get(client.id)
            if held is not None:
                held.pop(id(what), None)
                if not held:
                    del self._held[client.id]

    @staticmethod
    def _present(client: Any) -> bool:
        return client is not None and not client.closed

    def _send(self, client: Client, meta: str, payload: bytes = b"") -> None:
        if payload:
            self.host.send_bytes(client, client.frame_header(meta, len(payload)))
            self.host.send_bytes(client, payload)  # one buffer shared by every receiver
        else:
            self.host.send_bytes(client, client.frame(meta))


def _announce(rest: str, size: int) -> tuple[tuple[int, int, str, str] | None, str | None]:
    """``SIZE CHUNK SHA256 NAME`` of a ``file-announce`` with *size* payload bytes: the parsed values, or why not."""
    parts = rest.split(" ", 3)
    if len(parts) != 4:
        return None, "usage: file-announce SIZE CHUNK SHA256 NAME, then the chunks' SHA-256 digests"
    file_size, chunk = parse_uint(parts[0], max_digits=19), parse_uint(parts[1], max_digits=8)
    sha, name = parts[2].lower(), parts[3]
    if file_size is None or chunk is None or not is_sha256(sha) or not name.strip():
        return None, "usage: file-announce SIZE CHUNK SHA256 NAME, then the chunks' SHA-256 digests"
    if not MIN_CHUNK <= chunk <= MAX_CHUNK:
        return None, f"file-announce: a chunk is {MIN_CHUNK} to {MAX_CHUNK} bytes, not {chunk}"
    count = chunk_count(file_size, chunk)
    if count > MAX_CHUNKS:
        return None, f"file-announce: {count} chunks is more than {MAX_CHUNKS}; take larger chunks"
    if size != count * DIGEST:
        return None, f"file-announce: {count} chunks need {count * DIGEST} bytes of digests, not {size}"
    return (file_size, chunk, sha, name), None
