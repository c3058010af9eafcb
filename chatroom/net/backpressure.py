"""Backpressure for the file relay: pause a sender while its receivers are full, resume when they drain.

A mixin of :class:`chatroom.net.relay.Relay` (see its module docstring for the
strategy): it uses the relay's ``server``, ``clock``, ``transfers``,
``high_water``, ``stall_timeout`` and ``_paused``/``_blocked_since``/``_end``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any


__all__ = ["BackpressureSide"]

log = logging.getLogger("chatroom.relay")

Client = Any
Transfer = Any


class BackpressureSide:
    """Pausing and resuming senders, dropping receivers that stall them (a mixin, see the module docstring)."""

    server: Any
    clock: Callable[[], float]
    transfers: dict[int, Any]
    high_water: int
    stall_timeout: float
    _paused: dict[int, Any]
    _blocked_since: dict[int, float]

    def _end(self, transfer: Any, reason: str, tell_sender: bool = True) -> None:  # provided by Relay
        raise NotImplementedError

    def _pause_senders(self, transfer: Transfer) -> None:
        """Pause *transfer*'s sender, and every other sender to a receiver now over the high-water mark,
        so several senders cannot pile chunks on one slow receiver (its queue stays near HIGH_WATER + 1 chunk,
        far below the server's --max-queue)."""
        full = {r.id for r in transfer.receivers.values() if r.queued > self.high_water} | set(transfer.held)
        for other in self.transfers.values():
            sender = other.sender
            if sender.id not in self._paused and (other is transfer or not full.isdisjoint(other.receivers)):
                self._paused[sender.id] = sender
                self.server.pause_reading(sender)

    def _blocking(self, sender: Client) -> list[Client]:
        """Receivers of *sender*'s transfers whose queue is over the high-water mark or that hold a chunk."""
        return [
            r
            for t in self.transfers.values()
            if t.sender is sender
            for r in t.receivers.values()
            if (r.queued > self.high_water or r.id in t.held) and not r.closed
        ]

    def _resume_unblocked(self) -> None:
        for sid, sender in list(self._paused.items()):
            if not self._blocking(sender):
                del self._paused[sid]
                if not sender.closed:
                    self.server.resume_reading(sender)
                now = self.clock()  # the idle clock only runs while the sender may send
                for transfer in self.transfers.values():
                    if transfer.sender is sender:
                        transfer.last_data = transfer.window = now
                        transfer.mark = transfer.relayed

    def _drop_receiver(self, sender: Client, receiver: Client) -> None:
        reason = f"{receiver.nick} held the transfer back for {self.stall_timeout:g} s"
        self._blocked_since.pop(receiver.id, None)
        for transfer in list(self.transfers.values()):
            if transfer.sender is sender and transfer.receivers.pop(receiver.id, None) is not None:
                transfer.held.pop(receiver.id, None)
                self.server.send_bytes(receiver, receiver.frame(f"file-abort {transfer.id} too slow: {reason}"))
                log.info("transfer %d: dropped receiver: %s", transfer.id, reason)
                if not transfer.receivers:
                    self._end(transfer, reason)
