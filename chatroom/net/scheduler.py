"""Timers and worker threads for the event loop, so nothing on it needs to block.

``call_later`` keeps a heap of deadlines the loop checks each pass;
``run_in_thread`` runs blocking work on a small thread pool (completion order
undefined) or, with ``serial=True``, on one worker thread per plugin (jobs run
one at a time in submission order), and queues the result, waking the loop
through its wakeup socket so the callback runs on the loop thread;
``call_soon_threadsafe`` queues a call from any thread the same way. Callbacks
run with the plugin host's fault isolation. :meth:`Scheduler.drain` (at
shutdown) waits for queued jobs and runs their callbacks.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class Timer:
    """A pending ``call_later``; ``cancel()`` stops it. ``when`` is a ``time.monotonic()`` deadline."""

    __slots__ = ("when", "fn", "args", "plugin", "cancelled")

    def __init__(self, when: float, fn: Callable[..., Any], args: tuple[Any, ...], plugin: str) -> None:
        self.when, self.fn, self.args, self.plugin, self.cancelled = when, fn, args, plugin, False

    def cancel(self) -> None:
        """Stop the call if it has not run yet; no error otherwise."""
        self.cancelled = True


log = logging.getLogger("chatroom.server")

Runner = Callable[..., Any]  # run(plugin, fn, *args) with fault isolation


class Scheduler:
    """Timers and thread results for one loop; ``wake()`` must make the loop call :meth:`run_ready`."""

    def __init__(self, run: Runner, wake: Callable[[], None], workers: int = 4, *,
                 clock: Callable[[], float] = time.monotonic, inline: bool = False) -> None:
        self._run = run
        self._wake = wake
        self._workers = workers
        self.clock = clock
        self.inline = inline  # run_in_thread work runs on the loop thread at the next run_ready (test kit)
        self._jobs: list[tuple[Callable[[], Any], Callable[[Any, BaseException | None], None], str]] = []
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._done: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], str]] = queue.SimpleQueue()
        self._executor: ThreadPoolExecutor | None = None
        self._serial: dict[str, ThreadPoolExecutor] = {}  # plugin -> its single worker thread
        self._lock = threading.Lock()
        self._outstanding = 0  # worker jobs submitted whose callback is not queued yet
        self._signal = threading.Event()  # set whenever a callback is queued (wait_done)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, plugin: str = "core") -> Timer:
        """Call ``fn(*args)`` on the loop thread after *delay* seconds (``float``)."""
        timer = Timer(self.clock() + max(0.0, delay), fn, args, plugin)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def run_in_thread(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None],
                      *, plugin: str = "core", serial: bool = False) -> None:
        """Run ``fn()`` on a worker thread, then ``on_done(result, error)`` on the loop thread.

        Without *serial*, on a pool of ``workers`` threads: completion order is undefined. With
        *serial*, on *plugin*'s own worker thread (created on first use): its serial jobs run one at a
        time, in submission order, and their ``on_done`` calls come in that order too. With
        ``inline=True`` (the test kit) ``fn`` runs on the loop thread at the next :meth:`run_ready`.
        """
        if self.inline:
            self._jobs.append((fn, on_done, plugin))
            return
        if serial:
            executor = self._serial.get(plugin)
            if executor is None:
                executor = self._serial[plugin] = ThreadPoolExecutor(1, thread_name_prefix=f"chatroom-{plugin}")
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="chatroom-worker")
            executor = self._executor

        def finished(future: Future[Any]) -> None:
            cancelled = future.cancelled()
            error = RuntimeError("the server stopped before this job ran") if cancelled else future.exception()
            self._queue(on_done, (None if error else future.result(), error), plugin)
            with self._lock:
                self._outstanding -= 1

        with self._lock:
            self._outstanding += 1
        executor.submit(fn).add_done_callback(finished)

    def call_soon_threadsafe(self, fn: Callable[..., Any], args: tuple[Any, ...], plugin: str = "core") -> None:
        """Queue ``fn(*args)`` to run on the loop thread at its next pass (callable from any thread)."""
        self._queue(fn, args, plugin)

    def _queue(self, fn: Callable[..., Any], args: tuple[Any, ...], plugin: str) -> None:
        self._done.put((fn, args, plugin))
        self._signal.set()
        self._wake()

    @property
    def outstanding(self) -> int:
        """Worker jobs submitted whose ``on_done`` is not queued yet (thread-safe read)."""
        return self._outstanding

    def wait_done(self, timeout: float) -> bool:
        """Block up to *timeout* seconds until a callback is queued (test kit with real threads)."""
        hit = self._signal.wait(timeout)
        self._signal.clear()
        return hit or not self._done.empty()

    def drain(self, timeout: float = 5.0) -> bool:
        """At shutdown (loop thread): wait for every queued and running worker job and run the
        callbacks, at most *timeout* seconds; False (and logged) if jobs were still left."""
        deadline = time.monotonic() + timeout
        for _ in range(1_000_000):
            self._jobs_and_done()
            if not self._outstanding and self._done.empty() and not self._jobs:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.wait_done(min(left, 0.05))
        log.error("shutdown: %d worker jobs still unfinished after %.1f s; their on_done will not run",
                  self._outstanding, timeout, extra={"category": "ERROR"})
        return False

    def timeout(self) -> float | None:
        """Seconds until the next timer is due (None: no timers; 0 when inline jobs wait)."""
        if self._jobs:
            return 0.0
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - self.clock())

    def next_due(self) -> float | None:
        """The clock time of the next pending timer, or None."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def cancel_plugin(self, plugin: str) -> int:
        """Cancel every pending timer of *plugin* (a plugin being reloaded); returns how many. Loop thread only."""
        timers = [t for _, _, t in self._timers if t.plugin == plugin and not t.cancelled]
        for timer in timers:
            timer.cancel()
        return len(timers)

    def pending(self) -> list[Timer]:
        """Pending (not cancelled) timers, soonest first."""
        return [t for _, _, t in sorted(self._timers) if not t.cancelled]

    def run_ready(self) -> int:
        """Run finished thread callbacks, inline jobs and due timers (loop thread only); return how many ran."""
        ran = self._jobs_and_done()
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                self._run(timer.plugin, timer.fn, *timer.args)
                ran += 1
        return ran

    def _jobs_and_done(self) -> int:
        ran = 0
        done = self._done
        while not done.empty():  # (no Empty raised and caught every pass: only this thread takes from it)
            fn, args, plugin = done.get_nowait()
            self._run(plugin, fn, *args)
            ran += 1
        if not self._jobs:
            return ran
        jobs, self._jobs = self._jobs, []
        for fn, on_done, plugin in jobs:
            try:
                result, error = fn(), None
            except Exception as exc:  # noqa: BLE001 - handed to on_done, as a worker thread would
                result, error = None, exc
            self._run(plugin, on_done, result, error)
            ran += 1
        return ran

    def close(self) -> None:
        """Stop the worker threads; jobs not started yet are dropped (:meth:`drain` first to run them)."""
        self._timers.clear()
        self._jobs.clear()
        for executor in [self._executor, *self._serial.values()]:
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
