"""In-memory stand-ins for the server's I/O, used by :mod:`chatroom.testing`.

A fake listener, client sockets, wakeup socket and selector let a real
:class:`chatroom.net.loop.Server` run its loop with no network; a fake
scheduler runs timers on a clock the test moves and worker-thread jobs on the
test's own thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

from chatroom.net.scheduler import Timer


class _FakeSocket:
    """The server's end of one fake connection: bytes in (``inbound``), bytes out (to the FakeClient)."""

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self.inbound = bytearray()
        self.eof = False
        self.closed = False
        self.stalled = False
        self._deliver = deliver

    # the socket methods the server uses
    def recv(self, n: int) -> bytes:
        if self.inbound:
            data = bytes(self.inbound[:n])
            del self.inbound[:n]
            return data
        if self.eof:
            return b""
        raise BlockingIOError

    def send(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise OSError("socket closed")
        if self.stalled:
            raise BlockingIOError
        self._deliver(bytes(data))
        return len(data)

    def sendmsg(self, buffers: list[Any]) -> int:
        return self.send(b"".join(buffers))

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def close(self) -> None:
        self.closed = True

    def setblocking(self, flag: bool) -> None:
        pass

    def setsockopt(self, *args: Any) -> None:
        pass

    def fileno(self) -> int:
        return -1


class _FakeListener:
    def __init__(self) -> None:
        self.pending: list[_FakeSocket] = []
        self._ports = itertools.count(40000)

    def accept(self) -> tuple[_FakeSocket, tuple[str, int]]:
        if not self.pending:
            raise BlockingIOError
        return self.pending.pop(0), ("127.0.0.1", next(self._ports))

    def close(self) -> None:
        pass


class _FakeWaker:
    """Stands in for :class:`chatroom.wire.wakeup.Waker`: the in-process room never blocks, so nothing to wake."""

    def wake(self) -> None:
        pass

    def drain(self) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


class _FakeSelector:
    """Remembers what the server registered; the kit asks it who wants reads and writes."""

    def __init__(self) -> None:
        self.masks: dict[Any, int] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> None:
        self.masks[fileobj] = events

    def modify(self, fileobj: Any, events: int, data: Any = None) -> None:
        self.masks[fileobj] = events

    def unregister(self, fileobj: Any) -> None:
        self.masks.pop(fileobj, None)

    def select(self, timeout: float | None = None) -> list[Any]:
        return []

    def close(self) -> None:
        self.masks.clear()

    def wants(self, fileobj: Any, event: int) -> bool:
        return bool(self.masks.get(fileobj, 0) & event)


class _FakeScheduler:
    """``call_later`` on a fake clock; ``run_in_thread`` work runs on the next pass, on this thread."""

    def __init__(self, run: Callable[..., Any]) -> None:
        self._run = run
        self.now = 0.0
        self.timers: list[tuple[float, int, Timer]] = []
        self.jobs: list[tuple[Callable[[], Any], Callable[[Any, BaseException | None], None], str]] = []
        self._seq = itertools.count()

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, plugin: str = "core") -> Timer:
        timer = Timer(self.now + max(0.0, delay), fn, args, plugin)
        heapq.heappush(self.timers, (timer.when, next(self._seq), timer))
        return timer

    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None],
                      *, plugin: str = "core") -> None:
        self.jobs.append((fn, on_done, plugin))

    def timeout(self) -> float | None:
        return None

    def next_due(self) -> float | None:
        while self.timers and self.timers[0][2].cancelled:
            heapq.heappop(self.timers)
        return self.timers[0][0] if self.timers else None

    def run_ready(self) -> int:
        """Run queued thread work (then its callback) and due timers; return how many ran."""
        ran = 0
        jobs, self.jobs = self.jobs, []
        for fn, on_done, plugin in jobs:
            try:
                result, error = fn(), None
            except Exception as exc:
                result, error = None, exc
            self._run(plugin, on_done, result, error)
            ran += 1
        while self.timers and self.timers[0][0] <= self.now:
            timer = heapq.heappop(self.timers)[2]
            if not timer.cancelled:
                self._run(timer.plugin, timer.fn, *timer.args)
                ran += 1
        return ran

    def close(self) -> None:
        self.timers.clear()
        self.jobs.clear()


class _LogCollector(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        category = getattr(record, "category", "ERROR" if record.levelno >= logging.WARNING else "GENERAL")
        self.lines.append(f"[{category}] {record.name}: {record.getMessage()}")


# -- the public kit ------------------------------------------------------------------
