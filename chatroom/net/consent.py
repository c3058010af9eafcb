"""Consent for the file relay: every receiver decides whether it takes a file.

:class:`Consent` is one part the relay (:class:`chatroom.net.relay.Relay`)
holds (``docs/protocol.md``, "File transfer frames", "Consent"). Every
frame-capable member has a policy: ``all`` (the default, what a client that
never says otherwise gets, so an old pipe client auto-accepts), ``ask``
(``/files ask``: it gets a ``file-offer`` frame and answers ``/accept ID`` or
``/decline ID``; no answer within the offer timeout counts as declined) or
``none`` (declines everything at once). :meth:`Consent.offer` sorts a new
transfer's candidates by policy and asks the ``ask`` ones; answers, leaving
members and the deadline fill the transfer's ``accepted``, ``declined`` and
``timed_out``; once nobody is left to answer, ``decided(transfer)`` (the
relay's) sends the bytes to the acceptors or refuses. A member whose door
has no file frames (``takes_links``: IRC) is always asked, with a one-time
link (:class:`~chatroom.net.filelinks.Links`, when a *links* part is given):
fetching it is its acceptance (:meth:`Consent.fetched`), ``none`` still
declines at once. Its own state: the policies and the offers waiting for
answers. Loop thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chatroom.model.errors import Refused
from chatroom.net.filelinks import Links
from chatroom.net.transfer import RelayHost, Transfer

if TYPE_CHECKING:
    from chatroom.net.connection import Connection as Client

__all__ = ["OFFER_TIMEOUT", "POLICIES", "Consent", "summary"]

#: Seconds a receiver asked for consent has to answer before it counts as declined.
OFFER_TIMEOUT = 60.0
#: What a receiver's ``/files`` may say.
POLICIES = ("ask", "all", "none")


def summary(transfer: Transfer) -> str:
    """``accepted by bob; declined by carol; no answer from dave`` (parts that are empty left out)."""
    parts = [f"{what} {', '.join(nicks)}" for what, nicks in (
        ("accepted by", transfer.accepted), ("declined by", transfer.declined), ("no answer from", transfer.timed_out))
        if nicks]
    return "; ".join(parts) or "nobody answered"


class Consent:
    """Receivers' ``/files`` policies and the offers waiting for their answers (``waiting``: id -> Transfer).

    *host* sends the offers and replies; *decided* is called with a transfer
    once every receiver answered, declined or timed out; *timeout* is the
    answer phase in ``clock()`` seconds; *links* offers files to members that take links (None: they are
    left out).
    """

    def __init__(self, host: RelayHost, decided: Callable[[Transfer], None], *, timeout: float = OFFER_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic, links: Links | None = None) -> None:
        self.host = host
        self.links = links
        self.decided = decided
        self.timeout = timeout
        self.clock = clock
        self.policies: dict[int, str] = {}  # client id -> "ask" or "none" (absent: "all")
        self.waiting: dict[int, Transfer] = {}

    def set_policy(self, client: Client, policy: str) -> None:
        """``/files ask|all|none`` from *client*; ``all`` and ``none`` also answer its waiting offers."""
        if policy not in POLICIES:
            raise Refused(f"a file policy is one of {', '.join(POLICIES)}")
        if policy == "all":
            self.policies.pop(client.id, None)
        else:
            self.policies[client.id] = policy
        if policy != "ask":
            for transfer in [t for t in self.waiting.values() if client.id in t.asked]:
                self._answer(transfer, client, policy == "all")

    def answer(self, client: Client, tid: int | None, accept: bool) -> str:
        """``/accept ID`` or ``/decline ID`` from *client*; returns ``accepted`` or ``declined`` after
        replying ``OK ...``; raises Refused when no such offer waits for *client*."""
        transfer = self.waiting.get(tid) if tid is not None else None
        if transfer is None or client.id not in transfer.asked:
            shown = "" if tid is None else f" {tid}"
            raise Refused(f"no offer{shown} is waiting for your answer (an offer counts as declined "
                          f"after {self.timeout:g} s)")
        if accept and getattr(client, "takes_links", False):
            raise Refused(f"open the link of offer {transfer.id} to take the file: fetching it accepts it")
        verb = "accepted" if accept else "declined"
        self.host.send_line(client, f'OK {verb} {transfer.id} "{transfer.name}" from {transfer.sender.nick}')
        self._answer(transfer, client, accept)
        return verb

    def offer(self, transfer: Transfer, candidates: list[Client]) -> None:
        """Sort *candidates* by their policy; ask the ``ask`` ones, or decide at once if nobody is asked."""
        links: list[Client] = []
        for member in candidates:
            policy = self.policies.get(member.id, "all")
            if getattr(member, "takes_links", False):
                if policy == "none":
                    transfer.declined.append(member.nick)
                elif self.links is not None:
                    links.append(member)
            elif policy == "all":
                transfer.receivers[member.id] = member
                transfer.accepted.append(member.nick)
            elif policy == "none":
                transfer.declined.append(member.nick)
            else:
                transfer.asked[member.id] = member
        for member in links:
            assert self.links is not None
            if self.links.offer(transfer, member, self.timeout):
                transfer.asked[member.id] = member
        transfer.report = bool(transfer.asked or transfer.declined)
        if not transfer.asked:
            self.decided(transfer)
            return
        self.waiting[transfer.id] = transfer
        transfer.deadline = self.clock() + self.timeout
        offer = f"file-offer {transfer.id} {transfer.size} {transfer.sender.nick} {transfer.name}"
        for member in transfer.asked.values():
            if member not in links:
                self.host.send_bytes(member, member.frame(offer))
        asked = ", ".join(m.nick for m in transfer.asked.values())
        self.host.send_line(transfer.sender, f'* offering "{transfer.name}" ({transfer.size} bytes) to {asked}: '
                                             f"waiting up to {self.timeout:g} s for their answers")

    def fetched(self, transfer: Transfer, member: Client, receiver: Client) -> None:
        """*member* fetched its link of *transfer*: *receiver* (the HTTP connection) takes the file in its name."""
        del transfer.asked[member.id]
        transfer.receivers[receiver.id] = receiver
        transfer.accepted.append(member.nick)
        self._settle(transfer)

    def expire(self, now: float) -> None:
        """Offers past their deadline: the receivers who did not answer count as declined."""
        for transfer in [t for t in self.waiting.values() if now >= t.deadline]:
            for member in transfer.asked.values():
                transfer.timed_out.append(member.nick)
                transfer.abort(self.host, member, f"no answer in {self.timeout:g} s: declined")
            transfer.asked.clear()
            self._settle(transfer)

    def left(self, client: Client) -> None:
        """*client* is gone: it forgets its policy, and counts as not answering the offers it was asked."""
        self.policies.pop(client.id, None)
        for transfer in [t for t in self.waiting.values() if client.id in t.asked]:
            del transfer.asked[client.id]
            transfer.timed_out.append(client.nick)
            self._settle(transfer)

    def drop(self, transfer: Transfer) -> None:
        """*transfer* ended (its sender left or cancelled): no answer for it is awaited any more."""
        self.waiting.pop(transfer.id, None)
        if self.links is not None:
            self.links.transfer_ended(transfer)

    def _answer(self, transfer: Transfer, client: Client, accept: bool) -> None:
        del transfer.asked[client.id]
        if self.links is not None:
            self.links.answered(transfer, client)
        if accept:
            transfer.receivers[client.id] = client
            transfer.accepted.append(client.nick)
        else:
            transfer.declined.append(client.nick)
        self._settle(transfer)

    def _settle(self, transfer: Transfer) -> None:
        if not transfer.asked:
            self.waiting.pop(transfer.id, None)
            if self.links is not None:
                self.links.transfer_ended(transfer)
            self.decided(transfer)
