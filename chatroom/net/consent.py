"""Consent and quotas for the file relay: receivers decide, senders have a budget.

Two parts of :class:`chatroom.net.relay.Relay`, kept here so the relay stays
small (``docs/protocol.md``, "File transfer frames", "Consent"):

* :class:`Quota`: per-sender sliding windows, *files per hour* and *bytes per
  day* (0: unlimited), checked before any byte moves and charged when an offer
  is made (refunded when nobody accepts it). Prosody's ``mod_http_file_share``
  is the model: a per-user daily byte budget, refused with a clear reason.
* :class:`OfferSide`: the answer phase of a transfer. Every frame-capable
  member has a policy: ``all`` (the default, what a client that never says
  otherwise gets: today's behaviour, so an old pipe client auto-accepts for
  free), ``ask`` (``/files ask``: it gets a ``file-offer`` frame and answers
  ``/accept ID`` or ``/decline ID``; no answer within the offer timeout counts
  as declined) or ``none`` (declines everything at once). Only receivers who
  accepted get ``file-begin`` and the bytes; the sender hears who accepted,
  declined or did not answer, then ``OK sendfile ID NAME`` (or ``ERROR
  sendfile NAME: nobody accepted ...``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from chatroom.model.errors import Refused

__all__ = ["DAY", "HOUR", "OFFER_TIMEOUT", "POLICIES", "OfferSide", "Quota", "quota_key"]

HOUR = 3600.0
DAY = 86400.0
#: Seconds a receiver asked for consent has to answer before it counts as declined.
OFFER_TIMEOUT = 60.0
#: What a receiver's ``/files`` may say.
POLICIES = ("ask", "all", "none")
#: Senders remembered by one :class:`Quota` before a sweep drops the idle ones.
_SWEEP_AT = 4096


def quota_key(client: Any) -> str:
    """Whom a quota is charged to: the account when logged in, else the address (a nick is free to change)."""
    account = getattr(client, "account", None)
    if account:
        return f"account:{account.lower()}"
    host = getattr(client, "host", "")
    return f"address:{host}" if host else f"nick:{client.nick.lower()}"


class Quota:
    """Per-sender budgets: at most *files_per_hour* offers per hour and *bytes_per_day* bytes a day.

    Sliding windows over ``clock()`` seconds; 0 disables a limit (then nothing
    is recorded for it). Memory: one ``[time, size]`` entry per offer in the
    last day (or hour), per sender key.
    """

    def __init__(self, files_per_hour: int = 0, bytes_per_day: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.files_per_hour = files_per_hour
        self.bytes_per_day = bytes_per_day
        self.clock = clock
        self._log: dict[str, deque[list[float]]] = {}

    @property
    def active(self) -> bool:
        """True when any quota is set (0 means unlimited)."""
        return bool(self.files_per_hour or self.bytes_per_day)

    def _entries(self, key: str, now: float) -> deque[list[float]]:
        span = DAY if self.bytes_per_day else HOUR
        entries = self._log.get(key, deque())
        while entries and entries[0][0] <= now - span:
            entries.popleft()
        if len(self._log) > _SWEEP_AT:
            for other in [k for k, e in self._log.items() if not e or e[-1][0] <= now - span]:
                del self._log[other]
        return entries

    def check(self, key: str, size: int) -> str | None:
        """Why *key* may not offer *size* more bytes now (a sentence with the wait in seconds), or None."""
        if not self.active:
            return None
        now = self.clock()
        entries = self._entries(key, now)
        if self.files_per_hour:
            recent = [e for e in entries if e[0] > now - HOUR]
            if len(recent) >= self.files_per_hour:
                wait = math.ceil(recent[-self.files_per_hour][0] + HOUR - now)
                return (f"quota: you offered {len(recent)} files in the last hour and the server allows "
                        f"{self.files_per_hour} (--quota-files-per-hour); try again in {wait} s")
        if self.bytes_per_day:
            if size > self.bytes_per_day:
                return (f"quota: {size} bytes is more than the {self.bytes_per_day} bytes a day the server "
                        f"allows each sender (--quota-bytes-per-day)")
            used = int(sum(e[1] for e in entries))
            if used + size > self.bytes_per_day:
                freed, wait = 0, DAY
                for t, n in entries:
                    freed += int(n)
                    if used - freed + size <= self.bytes_per_day:
                        wait = t + DAY - now
                        break
                return (f"quota: you sent {used} of the {self.bytes_per_day} bytes a day the server allows "
                        f"(--quota-bytes-per-day) and this file needs {size}; try again in {math.ceil(wait)} s")
        return None

    def charge(self, key: str, size: int) -> list[float] | None:
        """Record one offer of *size* bytes by *key*; returns the entry (for :meth:`refund`), None if unlimited."""
        if not self.active:
            return None
        entry = [self.clock(), float(size)]
        self._log.setdefault(key, deque()).append(entry)
        return entry

    def refund(self, key: str, entry: list[float] | None) -> None:
        """Forget an offer nobody accepted."""
        entries = self._log.get(key)
        if entry is not None and entries is not None:
            try:
                entries.remove(entry)
            except ValueError:
                pass


def _nicks(names: list[str]) -> str:
    return ", ".join(names)


def summary(transfer: Any) -> str:
    """``accepted by bob; declined by carol; no answer from dave`` (parts that are empty left out)."""
    parts = []
    if transfer.accepted:
        parts.append(f"accepted by {_nicks(transfer.accepted)}")
    if transfer.declined:
        parts.append(f"declined by {_nicks(transfer.declined)}")
    if transfer.timed_out:
        parts.append(f"no answer from {_nicks(transfer.timed_out)}")
    return "; ".join(parts) or "nobody answered"


class OfferSide:
    """The answer phase of :class:`~chatroom.net.relay.Relay` (a mixin: uses its ``server``, ``clock``,
    ``transfers``, ``offer_timeout``, ``quota`` and ``_go``/``_forget``/``_end``/``_arm_timer``)."""

    server: Any
    clock: Callable[[], float]
    transfers: dict[int, Any]
    offer_timeout: float
    quota: Quota
    policies: dict[int, str]

    def _go(self, transfer: Any) -> None:  # provided by Relay
        raise NotImplementedError

    def _forget(self, transfer: Any) -> None:  # provided by Relay
        raise NotImplementedError

    def _arm_timer(self) -> None:  # provided by Relay
        raise NotImplementedError

    # -- receivers' answers ------------------------------------------------------------
    def set_policy(self, client: Any, policy: str) -> None:
        """``/files ask|all|none`` from *client*; ``all`` and ``none`` also answer its waiting offers."""
        if policy not in POLICIES:
            raise Refused(f"a file policy is one of {', '.join(POLICIES)}")
        if policy == "all":
            self.policies.pop(client.id, None)
        else:
            self.policies[client.id] = policy
        if policy != "ask":
            for transfer in [t for t in self.transfers.values() if client.id in t.asked]:
                self._answer(transfer, client, policy == "all")

    def answer(self, client: Any, tid: int | None, accept: bool) -> str:
        """``/accept ID`` or ``/decline ID`` from *client*; returns the reply line (raises Refused)."""
        transfer = self.transfers.get(tid) if tid is not None else None
        if transfer is None or client.id not in transfer.asked:
            shown = "" if tid is None else f" {tid}"
            raise Refused(f"no offer{shown} is waiting for your answer (an offer counts as declined "
                          f"after {self.offer_timeout:g} s)")
        verb = "accepted" if accept else "declined"
        self.server.send_line(client, f'OK {verb} {transfer.id} "{transfer.name}" from {transfer.sender.nick}')
        self._answer(transfer, client, accept)
        return verb

    def _answer(self, transfer: Any, client: Any, accept: bool) -> None:
        del transfer.asked[client.id]
        if accept:
            transfer.receivers[client.id] = client
            transfer.accepted.append(client.nick)
        else:
            transfer.declined.append(client.nick)
        if not transfer.asked:
            self._decided(transfer)

    # -- the offer ---------------------------------------------------------------------------
    def _offer(self, transfer: Any, candidates: list[Any]) -> None:
        """Sort *candidates* by their policy; ask the ``ask`` ones, or go at once if nobody is asked."""
        for member in candidates:
            policy = self.policies.get(member.id, "all")
            if policy == "all":
                transfer.receivers[member.id] = member
                transfer.accepted.append(member.nick)
            elif policy == "none":
                transfer.declined.append(member.nick)
            else:
                transfer.asked[member.id] = member
        transfer.report = bool(transfer.asked or transfer.declined)
        if not transfer.asked:
            self._decided(transfer)
            return
        transfer.deadline = self.clock() + self.offer_timeout
        offer = f"file-offer {transfer.id} {transfer.size} {transfer.sender.nick} {transfer.name}"
        for member in transfer.asked.values():
            self.server.send_bytes(member, member.frame(offer))
        asked = _nicks([m.nick for m in transfer.asked.values()])
        self.server.send_line(transfer.sender, f'* offering "{transfer.name}" ({transfer.size} bytes) to {asked}: '
                                               f"waiting up to {self.offer_timeout:g} s for their answers")
        self._arm_timer()

    def _decided(self, transfer: Any) -> None:
        """Every receiver answered (or timed out): start sending to the acceptors, or refuse."""
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
        self._go(transfer)

    def _expire_offers(self, now: float) -> None:
        """Offers past their deadline: the receivers who did not answer count as declined."""
        for transfer in [t for t in self.transfers.values() if t.asked and now >= t.deadline]:
            abort = f"file-abort {transfer.id} no answer in {self.offer_timeout:g} s: declined"
            for member in transfer.asked.values():
                transfer.timed_out.append(member.nick)
                if not member.closed:
                    self.server.send_bytes(member, member.frame(abort))
            transfer.asked.clear()
            self._decided(transfer)
