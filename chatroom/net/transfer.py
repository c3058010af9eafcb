"""What the file relay's parts share: one :class:`Transfer`, and the host port (:class:`RelayHost`) they talk through.

The relay (:mod:`chatroom.net.relay`) holds its parts, each with its own
state: :class:`~chatroom.net.quota.Quota` (senders' budgets),
:class:`~chatroom.net.consent.Consent` (receivers' policies and the answer
phase of an offer), :class:`~chatroom.net.backpressure.Backpressure`
(pausing senders while receivers are full), :class:`~chatroom.net.frames.FrameGate`
(which frames a sender may send) and :class:`~chatroom.net.resume.Resumes`. They reach the server only
through :class:`RelayHost`, which :class:`chatroom.server.app.Server`
implements and the unit tests fake; a client is a
:class:`~chatroom.net.connection.Connection` (tests use any object with its
``id``, ``nick``, ``caps``, ``closed``, ``queued``, ``room``, ``frame`` and
``frame_header``). Loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chatroom.net.scheduler import Timer
from chatroom.wire.lines import sanitize
from chatroom.wire.numbers import parse_uint

if TYPE_CHECKING:
    from chatroom.net.connection import Connection as Client

__all__ = ["Plan", "RelayHost", "Transfer"]


class RelayHost(Protocol):
    """The server as the relay's parts use it (:class:`chatroom.server.app.Server`).

    ``max_file_size`` and ``max_queue`` are bytes; lines are ``str`` without
    a newline, frames whole ``bytes`` in the receiver's wire format;
    ``call_later`` delays are seconds and it returns the :class:`~chatroom.net.scheduler.Timer` (``cancel()`` it).
    """

    @property
    def max_file_size(self) -> int: ...

    @property
    def max_queue(self) -> int: ...

    def send_line(self, member: Client, text: str) -> None: ...

    def send_bytes(self, member: Client, data: bytes | memoryview) -> None: ...

    def broadcast(self, room: Any, text: str, exclude: Client | None = None) -> None: ...

    def pause_reading(self, member: Client) -> None: ...

    def resume_reading(self, member: Client) -> None: ...

    def call_hook(self, hook: str, client: Client | None, /, **kwargs: Any) -> list[Any]: ...

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, plugin: str = "core") -> Timer: ...


@dataclass(eq=False)
class Plan:
    """The chunks a session of a resumable offer carries (docs/protocol.md, "Resumable transfers"): the file's
    ``size`` and ``chunk`` size (bytes), its ``sha256``, the chunk ``indices`` to send in this order (None:
    every chunk, from 0) and ``pos``, how many of them were relayed. ``hashes`` is the offer's hash list,
    held only until the receivers got it with ``file-chunks``."""

    size: int
    chunk: int
    sha256: str
    indices: list[int] | None = None
    pos: int = 0
    hashes: bytes | None = None

    def next(self) -> tuple[int, int] | None:
        """``(index, length)`` of the next chunk to relay, or None when every chunk of the plan was."""
        if self.indices is None:
            index = self.pos
            if index * self.chunk >= self.size:
                return None
        elif self.pos < len(self.indices):
            index = self.indices[self.pos]
        else:
            return None
        return index, min(self.chunk, self.size - index * self.chunk)

    def refusal(self, tid: int, index_text: str, size: int) -> str | None:
        """Why a ``file-data TID INDEX`` frame of *size* bytes is not this plan's next chunk, or None."""
        step = self.next()
        if step is None:
            return f"file-data {tid}: every chunk was sent; file-end is next"
        if parse_uint(index_text.strip(), max_digits=6) != step[0]:
            shown = sanitize(index_text).strip()[:10] or "(none)"
            return f"file-data {tid}: chunk {shown} is not the next one ({step[0]} is)"
        if size != step[1]:
            return f"file-data {tid}: chunk {step[0]} is {step[1]} bytes, not {size}"
        return None

    def total(self) -> int:
        """Bytes of the chunks of the plan."""
        if self.indices is None:
            return self.size
        return sum(min(self.chunk, self.size - i * self.chunk) for i in self.indices)


@dataclass(eq=False)
class Transfer:
    """One file on its way from ``sender`` to ``receivers`` (client id -> Client: those who accepted).

    ``size`` is the announced size and ``relayed`` the bytes forwarded so far
    (both in bytes); ``started`` and ``last_data`` are ``clock()`` seconds,
    ``window``/``mark`` when the current progress window started and the
    bytes relayed by then. While ``asked`` (client id -> Client) is not empty
    the transfer is in its answer phase (until ``deadline``); ``accepted``,
    ``declined`` and ``timed_out`` are the nicks of the answers, for the
    sender's report (``report``: somebody was asked or declined). ``held``
    (receiver id -> buffers) is what backpressure holds back for a full
    receiver; ``charge`` the quota entry, refunded if nobody accepts.
    A session of a resumable offer has a ``plan`` (its chunks; ``size`` is
    then the plan's bytes), its ``offer`` (:class:`chatroom.model.resumable.Offer`)
    and ``legs`` (receiver id -> :class:`~chatroom.model.resumable.Leg`: the
    receivers that can resume); ``cancelled`` once it ends for good.
    """

    id: int
    sender: Client
    name: str
    size: int
    receivers: dict[int, Client]
    started: float
    last_data: float
    relayed: int = 0
    window: float = 0.0
    mark: int = 0
    held: dict[int, list[bytes | memoryview]] = field(default_factory=dict)
    asked: dict[int, Client] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    declined: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    deadline: float = 0.0
    report: bool = False
    charge: list[float] | None = None
    plan: Plan | None = None
    offer: Any = None
    legs: dict[int, Any] = field(default_factory=dict)
    cancelled: bool = False

    def abort(self, host: RelayHost, member: Client, reason: str) -> None:
        """Tell *member* (if still connected) that this transfer is over for it: ``file-abort ID REASON``, or
        ``file-pause ID REASON`` when *member* can resume it (a party of a resumable offer, not cancelled)."""
        if not member.closed:
            host.send_bytes(member, member.frame(f"{self.ending(member)} {self.id} {reason}"))

    def ending(self, member: Client) -> str:
        """The frame that ends this session for *member*: ``file-pause`` if it can resume, else ``file-abort``."""
        resumable = member.id in self.legs or (member is self.sender and self.offer is not None)
        return "file-pause" if resumable and not self.cancelled else "file-abort"

    def data_refusal(self, index_text: str, size: int, limit: int) -> str | None:
        """Why a ``file-data ID [INDEX]`` frame of *size* bytes is not what this transfer takes next (more than
        it has left, or than *limit*, a frame's most; in a session, not the plan's next chunk), or None."""
        if self.plan is not None:
            return self.plan.refusal(self.id, index_text, size)
        if size > self.size - self.relayed or size > limit:
            return f"file-data {self.id}: {size} bytes is more than the {self.size - self.relayed} left to send"
        return None

    def data_meta(self, n: int) -> tuple[str, str]:
        """The ``file-data`` meta of the next *n*-byte chunk, for receivers without and with a resumable leg
        (``file-data ID INDEX``: the plan moves on, each leg's ``sent`` grows)."""
        meta = f"file-data {self.id}"
        if self.plan is None:
            return meta, meta
        step = self.plan.next()
        assert step is not None  # data_refusal checked it
        self.plan.pos += 1
        for leg in self.legs.values():
            leg.sent += n
        return meta, f"{meta} {step[0]}"

    def idle(self, now: float, timeout: float, least: int) -> str | None:
        """Why this transfer's sender counts as gone idle at *now* (``clock()`` seconds): nothing for *timeout*
        seconds, or fewer than *least* bytes in a progress window of *timeout* seconds while some are still due;
        else None, and a window that is over starts the next one."""
        if now - self.last_data >= timeout:
            return f"the sender sent nothing for {timeout:g} s"
        if now - self.window >= timeout:
            progress = self.relayed - self.mark
            if progress < least and self.relayed < self.size:
                return f"the sender sent only {progress} bytes in {timeout:g} s (at least {least} are needed)"
            self.window, self.mark = now, self.relayed
        return None

    def end_refusal(self, digest: str) -> str | None:
        """Why ``file-end ID SHA256HEX`` cannot end this transfer (bytes missing, no digest, in a session
        another SHA-256 than the offer's), or None."""
        if self.relayed != self.size:
            return f"size mismatch: sent {self.relayed} of {self.size} bytes"
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return "file-end without a SHA-256 hex digest"
        if self.plan is not None and digest != self.plan.sha256:
            return "file-end with another SHA-256 than the one announced"
        return None
