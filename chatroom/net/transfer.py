"""What the file relay's parts share: one :class:`Transfer`, and the host port (:class:`RelayHost`) they talk through.

The relay (:mod:`chatroom.net.relay`) holds three parts, each with its own
state: :class:`~chatroom.net.quota.Quota` (senders' budgets),
:class:`~chatroom.net.consent.Consent` (receivers' policies and the answer
phase of an offer) and :class:`~chatroom.net.backpressure.Backpressure`
(pausing senders while receivers are full). They reach the server only
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

if TYPE_CHECKING:
    from chatroom.net.connection import Connection as Client

__all__ = ["RelayHost", "Transfer"]


class RelayHost(Protocol):
    """The server as the relay's parts use it (:class:`chatroom.server.app.Server`).

    ``max_file_size`` and ``max_queue`` are bytes; lines are ``str`` without
    a newline, frames whole ``bytes`` in the receiver's wire format;
    ``call_later`` delays are seconds and it returns a handle with ``cancel()``.
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

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, plugin: str = "core") -> Any: ...


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

    def abort(self, host: RelayHost, member: Client, reason: str) -> None:
        """Tell *member* (if still connected) that this transfer is over for it: ``file-abort ID REASON``."""
        if not member.closed:
            host.send_bytes(member, member.frame(f"file-abort {self.id} {reason}"))
