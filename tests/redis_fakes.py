"""A fake Redis command link and a fake timer for unit tests of what a node shares through Redis
(tests/test_scaleout_rules.py, tests/test_scaleout_accounts.py).

:class:`FakeLink` records every call and lets the test answer it (a reply, or an error reply as
:class:`~chatroom.scaleout.resp.ReplyError`), refuse it at once (``ready`` False: ``Unavailable``; ``full``:
``Backpressure``) or lose the connection (every call in flight gets ``Unavailable``, in order, as RedisLink's
teardown does). Its ``loop.call_later`` records timers; the test fires them (:meth:`FakeLoop.fire`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatroom.scaleout.link import Backpressure, Unavailable


@dataclass
class Call:
    args: tuple[Any, ...]
    on_reply: Any


class FakeTimer:
    def __init__(self, delay: float, fn: Any) -> None:
        self.delay, self.fn, self.cancelled = delay, fn, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """``call_later`` records timers; the test fires them (:meth:`fire`)."""

    def __init__(self) -> None:
        self.timers: list[FakeTimer] = []

    def call_later(self, delay: float, fn: Any, *args: Any, owner: str = "core") -> FakeTimer:
        self.timers.append(FakeTimer(delay, lambda: fn(*args)))
        return self.timers[-1]

    def due(self) -> list[FakeTimer]:
        """The timers not cancelled (nor fired)."""
        return [t for t in self.timers if not t.cancelled]

    def fire(self) -> float:
        """Run the timers due (each once); returns the longest delay among them."""
        due = self.due()
        assert due, "no timer pending"
        self.timers = []
        for timer in due:
            timer.fn()
        return max(t.delay for t in due)


class FakeLink:
    """A command link as the shared state sees it: ``call`` queues (raising ``Unavailable`` when down,
    ``Backpressure`` when *full*); :meth:`answer` gives a call its reply, :meth:`lose` fails every call in flight,
    in order."""

    def __init__(self) -> None:
        self.loop = FakeLoop()
        self.ready = True
        self.full = False
        self.calls: list[Call] = []
        self.pending: list[Call] = []

    def call(self, *args: Any, on_reply: Any = None) -> None:
        if not self.ready:
            raise Unavailable("Redis is not connected (test)")
        if self.full:
            raise Backpressure("Redis output queue full (test)")
        self.calls.append(Call(args, on_reply))
        self.pending.append(self.calls[-1])

    def answer(self, call: Call, reply: Any) -> None:
        self.pending.remove(call)
        if call.on_reply is not None:
            call.on_reply(reply)

    def answer_all(self, reply: Any = 1) -> None:
        for call in list(self.pending):
            self.answer(call, reply)

    def lose(self) -> None:
        self.ready = False
        pending, self.pending = self.pending, []
        for call in pending:
            if call.on_reply is not None:
                call.on_reply(Unavailable("Redis connection lost (test)"))


def since(link: FakeLink, mark: int) -> list[Call]:
    """The calls *link* got since ``len(link.calls)`` was *mark*."""
    return link.calls[mark:]
