"""The acceptor out of file descriptors: it stops listening, logs once, and listens again as soon as a socket
of its transport closes (not only after ACCEPT_PAUSE)."""

from __future__ import annotations

import errno
import logging
from typing import Any

import pytest

from chatroom.net.accept import ACCEPT_PAUSE, Acceptor


class _Selector:
    def __init__(self) -> None:
        self.registered: dict[Any, Any] = {}

    def register(self, sock: Any, events: int, data: Any) -> None:
        assert sock not in self.registered, "registered twice"
        self.registered[sock] = data

    def unregister(self, sock: Any) -> None:
        del self.registered[sock]


class _Loop:
    def __init__(self) -> None:
        self.selector = _Selector()
        self.timers: list[tuple[float, Any]] = []

    def call_later(self, delay: float, fn: Any) -> None:
        self.timers.append((delay, fn))


class _Listener:
    """accept() answers from a script: an OSError errno, "again" (EAGAIN) or a connection."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return 3

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 5000)

    def close(self) -> None:
        pass

    def accept(self) -> tuple[str, tuple[str, int]]:
        step = self.script.pop(0) if self.script else "again"
        if step == "again":
            raise BlockingIOError
        if isinstance(step, int):
            raise OSError(step, "Too many open files")
        return step, ("127.0.0.1", 1)


def test_out_of_descriptors_pauses_then_a_freed_socket_resumes_at_once(caplog: pytest.LogCaptureFixture) -> None:
    loop = _Loop()
    admitted: list[Any] = []
    listener = _Listener(["a", errno.EMFILE, errno.EMFILE, "b", "c"])
    acceptor = Acceptor(loop, listener, lambda sock, addr: admitted.append(sock))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="chatroom.server"):
        acceptor.accept()
        assert admitted == ["a"] and listener not in loop.selector.registered, "paused: not listening"
        assert [delay for delay, _ in loop.timers] == [ACCEPT_PAUSE]
        acceptor.freed()  # a connection closed: try again now, not in ACCEPT_PAUSE s
        assert loop.selector.registered[listener] == acceptor.accept
        acceptor.accept()  # still out: paused again, not logged again, the old timer kept
        assert listener not in loop.selector.registered and len(loop.timers) == 1
        loop.timers[0][1]()  # the pause's timer: listen again
        acceptor.freed()  # idempotent: never registered twice
        acceptor.accept()
    assert admitted == ["a", "b", "c"]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("on 127.0.0.1:5000: " in m and "pausing new connections" in m for m in messages) == 1
    assert messages.count("accepting connections again on 127.0.0.1:5000") == 1


def test_freed_without_an_episode_changes_nothing() -> None:
    loop = _Loop()
    listener = _Listener([])
    acceptor = Acceptor(loop, listener, lambda sock, addr: None)  # type: ignore[arg-type]
    acceptor.freed()
    assert loop.selector.registered == {listener: acceptor.accept} and not loop.timers
    acceptor.close()
    assert not loop.selector.registered


def test_held_accepts_nothing_until_released_even_when_a_socket_is_freed() -> None:
    loop = _Loop()
    listener = _Listener(["a"])
    admitted: list[Any] = []
    acceptor = Acceptor(loop, listener, lambda sock, addr: admitted.append(sock))  # type: ignore[arg-type]
    acceptor.hold()
    assert listener not in loop.selector.registered
    acceptor.freed()  # no out-of-descriptors episode: nothing changes; held stays held
    assert listener not in loop.selector.registered
    acceptor.release()
    assert loop.selector.registered == {listener: acceptor.accept}
    acceptor.release()  # idempotent: never registered twice
    acceptor.accept()
    assert admitted == ["a"]
