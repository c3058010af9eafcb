"""Backpressure for the file relay: pause a sender while its receivers are full, resume when they drain.

:class:`Backpressure` is one part the relay (:class:`chatroom.net.relay.Relay`)
holds; the strategy is in the relay's module docstring. Its own state:
``paused`` (sender id -> sender whose reading is paused), ``blocked_since``
(receiver id -> ``clock()`` seconds since it first held a sender back) and
``flushing`` (ended transfers whose held buffers still wait for a slow
receiver). It reads the relay's open transfers (a mapping it never changes)
and calls ``end(transfer, reason)`` (the relay's) when a transfer loses its
last receiver for being too slow. Loop thread only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from chatroom.net.transfer import RelayHost, Transfer

if TYPE_CHECKING:
    from chatroom.net.connection import Connection as Client

__all__ = ["Backpressure"]

log = logging.getLogger("chatroom.relay")


class Backpressure:
    """Queue chunks within each receiver's budget, pause and resume senders, drop receivers that stall them.

    *high_water* (bytes queued) makes a receiver full; *stall_timeout*
    (seconds) is how long a full receiver may hold a sender back without draining.
    """

    def __init__(self, host: RelayHost, transfers: Mapping[int, Transfer], end: Callable[[Transfer, str], None], *,
                 high_water: int, stall_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.transfers = transfers
        self.end = end
        self.high_water = high_water
        self.stall_timeout = stall_timeout
        self.clock = clock
        self.paused: dict[int, Client] = {}
        self.blocked_since: dict[int, float] = {}
        self.flushing: dict[int, Transfer] = {}

    # -- queuing -------------------------------------------------------------------------------
    def send(self, transfer: Transfer, receiver: Client, *bufs: bytes | memoryview) -> bool:
        """Queue *bufs* to *receiver* if they fit in its output budget; else hold them (no copy) and return False.

        The sender is paused while anything is held, so at most about one chunk per
        receiver waits here: memory stays within connections x budget + transfers x chunk.
        """
        held = transfer.held.get(receiver.id)
        size = sum(len(b) for b in bufs)
        if held is None and (not receiver.queued or receiver.queued + size <= self.host.max_queue):
            for buf in bufs:
                self.host.send_bytes(receiver, buf)
            return True
        transfer.held.setdefault(receiver.id, []).extend(bufs)
        return False

    def drained(self, receiver: Client) -> None:
        """*receiver*'s output queue drained: give it what was held for it, resume senders it no longer blocks."""
        self.blocked_since.pop(receiver.id, None)
        for transfer in [*self.transfers.values(), *self.flushing.values()]:
            held = transfer.held.pop(receiver.id, None)
            if held is not None and self.send(transfer, receiver, *held) and not transfer.held:
                self.flushing.pop(transfer.id, None)
        if self.paused:
            self.resume_unblocked()

    def ended(self, transfer: Transfer) -> None:
        """*transfer* is no longer open: keep what it still holds for slow receivers, resume whom it blocked."""
        if transfer.held:
            self.flushing[transfer.id] = transfer
        self.resume_unblocked()

    def left(self, client: Client) -> None:
        """*client* is gone: nothing more is held for it, and it neither blocks nor is paused."""
        for transfer in list(self.flushing.values()):
            transfer.held.pop(client.id, None)
            if not transfer.held:
                del self.flushing[transfer.id]
        self.paused.pop(client.id, None)
        self.blocked_since.pop(client.id, None)
        self.resume_unblocked()

    # -- pausing senders -------------------------------------------------------------------------
    def pause(self, transfer: Transfer) -> None:
        """Pause *transfer*'s sender, and every other sender to a receiver now over the high-water mark,
        so several senders cannot pile chunks on one slow receiver (its queue stays near the high-water
        mark + 1 chunk, far below the server's --max-queue)."""
        full = {r.id for r in transfer.receivers.values() if r.queued > self.high_water} | set(transfer.held)
        for other in self.transfers.values():
            sender = other.sender
            if sender.id not in self.paused and (other is transfer or not full.isdisjoint(other.receivers)):
                self.paused[sender.id] = sender
                self.host.pause_reading(sender)

    def resume_unblocked(self) -> None:
        """Resume every paused sender none of whose receivers is full any more; its idle clock restarts."""
        for sid, sender in list(self.paused.items()):
            if not self._blocking(sender):
                del self.paused[sid]
                if not sender.closed:
                    self.host.resume_reading(sender)
                now = self.clock()  # the idle clock only runs while the sender may send
                for transfer in self.transfers.values():
                    if transfer.sender is sender:
                        transfer.last_data = transfer.window = now
                        transfer.mark = transfer.relayed

    def _blocking(self, sender: Client) -> list[Client]:
        """Receivers of *sender*'s transfers whose queue is over the high-water mark or that hold a chunk."""
        return [r for t in self.transfers.values() if t.sender is sender for r in t.receivers.values()
                if (r.queued > self.high_water or r.id in t.held) and not r.closed]

    # -- stalls ---------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Drop receivers that held a sender back, or kept an ended transfer's last bytes, for *stall_timeout*."""
        for sender in list(self.paused.values()):
            for receiver in self._blocking(sender):
                if now - self.blocked_since.setdefault(receiver.id, now) >= self.stall_timeout:
                    self._drop(sender, receiver)
        for transfer in list(self.flushing.values()):
            for rid in list(transfer.held):
                if now - self.blocked_since.setdefault(rid, now) >= self.stall_timeout:
                    del transfer.held[rid]
                    member = transfer.receivers.get(rid)
                    if member is not None:
                        transfer.abort(self.host, member, f"too slow: {self._why(member)}")
            if not transfer.held:
                del self.flushing[transfer.id]

    def _why(self, receiver: Client) -> str:
        return f"{receiver.nick} held the transfer back for {self.stall_timeout:g} s"

    def _drop(self, sender: Client, receiver: Client) -> None:
        reason = self._why(receiver)
        self.blocked_since.pop(receiver.id, None)
        for transfer in list(self.transfers.values()):
            if transfer.sender is sender and transfer.receivers.pop(receiver.id, None) is not None:
                transfer.held.pop(receiver.id, None)
                transfer.abort(self.host, receiver, f"too slow: {reason}")
                log.info("transfer %d: dropped receiver: %s", transfer.id, reason)
                if not transfer.receivers:
                    self.end(transfer, reason)
