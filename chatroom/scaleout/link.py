"""One Redis connection owned by the server's loop: non-blocking, bounded, never waited for.

A :class:`RedisLink` is a socket registered in the loop's selector like any client connection (its
callback runs when the socket is readable, or writable while output waits), with the RESP codec of
:mod:`chatroom.scaleout.resp` in front of it. Nothing here blocks the loop:

- **connect** is non-blocking (``connect_ex``, then the writable event); a host name is resolved on a
  worker thread (``Scheduler.run_in_thread``), a numeric address or a unix socket at once;
- **commands** are queued (:meth:`RedisLink.call`), pipelined, and written at the end of the pass (a
  ``before_write`` step of the loop) with one ``send``; a reply comes back to its callback, in order,
  on the loop thread. The output queue is bounded (*max_output* bytes): past it :meth:`call` raises
  :class:`Backpressure` at once;
- **deadlines**: a command without its reply after *timeout* seconds (the connect and the handshake
  too) drops the connection; a subscriber link sends ``PING`` when it heard nothing for *timeout* / 2
  and drops the connection after *timeout* of silence. Every command in flight then gets
  :class:`Unavailable` (its outcome is unknown: it may have run);
- **reconnects** with exponential backoff (*backoff*: first and longest delay, each with jitter)
  for ever, until :meth:`close`; ``on_ready`` runs on every (re)connection after the handshake
  (``AUTH``, ``SELECT``, ``CLIENT SETNAME``, then ``PING``, which a Redis still loading its data after a
  restart refuses with ``-LOADING``: the link retries until it answers), ``on_lost(reason)`` on every loss.
  While not ready,
  :meth:`call` raises :class:`Unavailable` at once.

A *subscriber* link (RESP2 Pub/Sub needs a connection of its own) hands every reply after the
handshake to ``on_push`` (``[b"message", channel, data]``, ``[b"subscribe", channel, count]``,
``[b"pong", b""]``...); its owner subscribes with :meth:`send` from ``on_ready``.

Loop thread only (the callbacks too). Reference: the Redis protocol specification (RESP2) and the
commands' pages on redis.io.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import selectors
import socket
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatroom.scaleout.address import RedisAddress
from chatroom.scaleout.resp import Codec, ProtocolError, Reply, ReplyError, pack

if TYPE_CHECKING:
    from chatroom.net.loop import Loop
    from chatroom.net.scheduler import Timer

__all__ = ["Backpressure", "RedisLink", "Unavailable"]

log = logging.getLogger("chatroom.server")

#: Bytes read from the socket per event at most (the rest is read on the next pass).
READ_SIZE = 256 * 1024
#: Default bound of the output queue (bytes).
MAX_OUTPUT = 8 * 1024 * 1024
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_IN_PROGRESS = {errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EALREADY}

Callback = Callable[[Any], None]


class Unavailable(Exception):
    """Redis cannot take a command now (not connected, connection lost, deadline passed); ``str()`` says why.

    Given to a callback instead of a reply, the command's outcome is unknown (it may have run)."""


class Backpressure(Unavailable):
    """The link's output queue is full (Redis reads more slowly than commands come): refused, not queued."""


class RedisLink:
    """A loop-owned connection to Redis at *address* (see the module docstring).

    *name* is given to ``CLIENT SETNAME`` (letters, digits, ``-_.:``); *timeout* (seconds) bounds the
    connect, the handshake and every reply; *max_output* bounds the queued output (bytes); *backoff* is
    ``(first, longest)`` delay between attempts (seconds). ``state`` is ``"down"`` (waiting to retry),
    ``"connecting"``, ``"handshake"``, ``"ready"`` or ``"closed"``. Call :meth:`start` once.
    """

    def __init__(self, loop: Loop, address: RedisAddress, *, name: str = "chatroom", subscriber: bool = False,
                 timeout: float = 2.0, max_output: int = MAX_OUTPUT, backoff: tuple[float, float] = (0.05, 2.0),
                 on_ready: Callable[[], None] | None = None, on_lost: Callable[[str], None] | None = None,
                 on_push: Callable[[Any], None] | None = None) -> None:
        self.loop = loop
        self.address = address
        self.name = name
        self.subscriber = subscriber
        self.timeout = timeout
        self.max_output = max_output
        self.backoff = backoff
        self.on_ready = on_ready or (lambda: None)
        self.on_lost = on_lost or (lambda reason: None)
        self.on_push = on_push or (lambda reply: None)
        self.state = "down"
        #: Times the link became ready (1 after the first connection), and lost it.
        self.connects = 0
        self.losses = 0
        self.last_error = ""
        self._sock: socket.socket | None = None
        self._mask = 0
        self._codec = Codec()
        self._out = bytearray()
        self._pending: deque[tuple[float, Callback | None]] = deque()  # (deadline, callback) per reply awaited
        self._failures = 0  # attempts failed in a row (the backoff's exponent)
        self._since = 0.0  # loop time the current state began
        self._heard = 0.0  # loop time bytes last came from Redis
        self._retry: Timer | None = None
        self._tick: Timer | None = None
        self._sockaddr: Any = None
        loop.before_write.append(self.flush)

    @property
    def where(self) -> str:
        """Which connection, for the log: ``Redis at ADDRESS (commands)`` or ``(subscription)`` (a node has both,
        and each says when it is lost and back)."""
        return f"Redis at {self.address} ({'subscription' if self.subscriber else 'commands'})"

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Begin connecting (at once; later attempts follow the backoff)."""
        if self.state == "down" and self._retry is None:
            self._connect()

    def close(self) -> None:
        """Close for good: in-flight commands get :class:`Unavailable`, no reconnection, the loop forgets it."""
        if self.state == "closed":
            return
        self._teardown("closed")
        self.state = "closed"
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.flush in self.loop.before_write:
            self.loop.before_write.remove(self.flush)

    @property
    def ready(self) -> bool:
        """Connected, past the handshake: :meth:`call` queues."""
        return self.state == "ready"

    @property
    def in_flight(self) -> int:
        """Commands sent (or queued) whose reply has not come."""
        return len(self._pending)

    @property
    def queued(self) -> int:
        """Bytes of commands not written to the socket yet."""
        return len(self._out)

    # -- commands -----------------------------------------------------------------------------------
    def call(self, *args: str | bytes | int | float, on_reply: Callback | None = None) -> None:
        """Queue one command (written at the end of the pass); ``on_reply(reply)`` gets its reply (a
        :class:`~chatroom.scaleout.resp.ReplyError` value for an error reply) or an :class:`Unavailable` if
        the connection is lost first. Raises :class:`Unavailable` when not ready, :class:`Backpressure` when
        the output queue would pass *max_output*; TypeError on a subscriber link (use :meth:`send`)."""
        if self.subscriber:
            raise TypeError("a subscriber link takes no commands with replies: use send()")
        self._check()
        self._queue(pack(*args), on_reply)

    def send(self, *args: str | bytes | int | float) -> None:
        """Queue a command whose replies go to ``on_push`` (``SUBSCRIBE``, ``UNSUBSCRIBE``, ``PING`` on a
        subscriber link). Raises like :meth:`call`."""
        self._check()
        data = pack(*args)
        if len(self._out) + len(data) > self.max_output:
            raise Backpressure(f"Redis output queue full ({len(self._out)} bytes)")
        self._out += data

    def _check(self) -> None:
        if self.state != "ready":
            raise Unavailable(f"Redis is not connected ({self.last_error or self.state})")

    def _queue(self, data: bytes, on_reply: Callback | None) -> None:
        if len(self._out) + len(data) > self.max_output:
            raise Backpressure(f"Redis output queue full ({len(self._out)} bytes)")
        self._out += data
        self._pending.append((self.loop.clock() + self.timeout, on_reply))

    def flush(self) -> None:
        """Write what is queued (one ``send``); the rest waits for the socket to be writable. Loop thread."""
        if not self._out or self._sock is None or self.state not in ("handshake", "ready"):
            return
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(f"write failed: {exc.strerror or exc}")
            return
        del self._out[:sent]
        self._watch(_READ | (_WRITE if self._out else 0))

    # -- connecting ---------------------------------------------------------------------------------
    def _connect(self) -> None:
        self._retry = None
        if self.state == "closed":
            return
        self._enter("connecting")
        self._arm_tick()
        address = self.address
        if address.family == socket.AF_UNIX:
            self._dial(socket.AF_UNIX, address.host)
        elif self._sockaddr is not None:  # resolved before: dial it (a name is resolved again on failure)
            self._dial(*self._sockaddr)
        else:
            try:  # a numeric address resolves without the network
                info = socket.getaddrinfo(address.host, address.port, 0, socket.SOCK_STREAM, 0,
                                          socket.AI_NUMERICHOST)
            except socket.gaierror:
                self.loop.scheduler.run_in_thread(self._resolve, self._resolved)
                return
            self._dial(info[0][0], info[0][4])

    def _resolve(self) -> Any:  # worker thread
        return socket.getaddrinfo(self.address.host, self.address.port, 0, socket.SOCK_STREAM)

    def _resolved(self, info: Any, error: BaseException | None) -> None:
        if self.state != "connecting":
            return
        if error is not None or not info:
            self._failed(f"cannot resolve {self.address.host}: {error}")
            return
        self._sockaddr = (info[0][0], info[0][4])
        self._dial(*self._sockaddr)

    def _dial(self, family: int, sockaddr: Any) -> None:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._sock = sock
        err = sock.connect_ex(sockaddr)
        if err == 0:
            self._connected()
        elif err in _IN_PROGRESS:
            self._watch(_WRITE)
        else:
            self._failed(f"cannot connect to {self.address}: {_strerror(err)}")

    def _connected(self) -> None:
        self._enter("handshake")
        self._heard = self.loop.clock()
        self._codec = Codec()
        steps: list[tuple[Any, ...]] = []
        if self.address.password is not None:
            steps.append(("AUTH", self.address.username, self.address.password) if self.address.username
                         else ("AUTH", self.address.password))
        if self.address.db:
            steps.append(("SELECT", self.address.db))
        steps.append(("CLIENT", "SETNAME", self.name))
        # Last, PING: a restarted Redis accepts connections and answers AUTH, SELECT and CLIENT while it still
        # loads its data, but -LOADING to PING and to every read and write; the link is not ready until then.
        steps.append(("PING",))
        left = [len(steps)]

        def answered(reply: Any) -> None:
            if isinstance(reply, Exception):
                if self.state == "handshake":
                    self._lost(f"Redis refused the handshake: {reply}")
                return
            left[0] -= 1
            if not left[0] and self.state == "handshake":
                self._ready()

        for step in steps:
            self._queue(pack(*step), answered)
        self._watch(_READ | _WRITE)

    def _ready(self) -> None:
        if self.connects and self._failures:
            log.info("%s is back", self.where)
        self._enter("ready")
        self.connects += 1
        self._failures = 0
        self.last_error = ""
        self._guard(self.on_ready)

    def _enter(self, state: str) -> None:
        self.state = state
        self._since = self.loop.clock()

    # -- events ---------------------------------------------------------------------------------------
    def _on_event(self) -> None:
        """The selector reported the socket (readable, or writable while connecting or output waits)."""
        sock = self._sock
        if sock is None:
            return
        if self.state == "connecting":
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._failed(f"cannot connect to {self.address}: {_strerror(err)}")
            else:
                self._connected()
            return
        try:
            data = sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            data = None
        except OSError as exc:
            self._lost(f"read failed: {exc.strerror or exc}")
            return
        if data is not None:
            if not data:
                self._lost("Redis closed the connection")
                return
            self._heard = self.loop.clock()
            self._codec.feed(data)
            try:
                for reply in self._codec.replies():
                    self._dispatch(reply)
                    if self._sock is not sock:  # a callback closed or lost the connection
                        return
            except ProtocolError as exc:
                self._lost(f"protocol error: {exc}")
                return
        self.flush()

    def _dispatch(self, reply: Reply) -> None:
        if self._pending:
            _, callback = self._pending.popleft()
            if callback is not None:
                self._guard(callback, reply)
        elif self.subscriber:
            self._guard(self.on_push, reply)
        elif isinstance(reply, ReplyError):
            log.warning("Redis error without a command: %s", reply)
        else:
            self._lost("a reply nobody asked for")

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a bug of the owner's callback: log it, keep the connection
            log.error("Redis callback failed:\n%s", traceback.format_exc().rstrip())

    # -- deadlines -------------------------------------------------------------------------------------
    def _arm_tick(self) -> None:
        if self._tick is None:
            self._tick = self.loop.call_later(min(self.timeout / 4, 0.25), self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._tick = None
        if self.state in ("down", "closed"):
            return
        now = self.loop.clock()
        if self.state in ("connecting", "handshake") and now - self._since > self.timeout:
            self._lost(f"no connection to {self.address} within {self.timeout:g} s")
        elif self._pending and self._pending[0][0] < now:
            self._lost(f"Redis did not answer within {self.timeout:g} s")
        elif self.subscriber and self.state == "ready" and now - self._heard > self.timeout:
            self._lost(f"Redis said nothing for {self.timeout:g} s")
        else:
            if self.subscriber and self.state == "ready" and now - self._heard > self.timeout / 2 and not self._out:
                self._out += pack("PING")
            self._arm_tick()

    # -- losing it ---------------------------------------------------------------------------------------
    def _failed(self, reason: str) -> None:
        """A connection attempt failed."""
        self._lost(reason)

    def _lost(self, reason: str) -> None:
        """Drop the socket, fail what was in flight, tell the owner, retry later."""
        was_ready = self.state == "ready"
        self._teardown(reason)
        if self.state == "closed":
            return
        if was_ready or not self._failures:
            log.warning("%s: %s; reconnecting", self.where, reason)
        self.last_error = reason
        self.losses += was_ready
        first, longest = self.backoff
        delay = min(longest, first * 2 ** min(self._failures, 30)) * random.uniform(0.5, 1.0)
        self._failures += 1
        if self.address.family != socket.AF_UNIX and self._failures > 1:
            self._sockaddr = None  # resolve the name again
        self._enter("down")
        if self._retry is not None:  # a loss inside a loss (teardown failing a handshake reply): one retry only,
            self._retry.cancel()  # or two dials would race and the first socket would leak, still registered
        self._retry = self.loop.call_later(delay, self._connect)
        if was_ready:
            self._guard(self.on_lost, reason)

    def _teardown(self, reason: str) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._mask:
                self.loop.selector.unregister(sock)
            self._mask = 0
            sock.close()
        self._out.clear()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        pending, self._pending = self._pending, deque()
        error = Unavailable(f"Redis connection lost ({reason})")
        for _, callback in pending:
            if callback is not None:
                self._guard(callback, error)

    def _watch(self, mask: int) -> None:
        sock = self._sock
        if sock is None or mask == self._mask:
            return
        if not self._mask:
            self.loop.selector.register(sock, mask, self._on_event)
        else:
            self.loop.selector.modify(sock, mask, self._on_event)
        self._mask = mask


def _strerror(err: int) -> str:
    return f"{os.strerror(err)} ({errno.errorcode.get(err, err)})"
