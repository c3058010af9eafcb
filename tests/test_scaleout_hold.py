"""A starting scale-out node's doors accept nothing until its catch-up is done, or CATCH_UP_WAIT passed."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chatroom.server.scale import CATCH_UP_WAIT, hold_until_caught_up


class _Acceptor:
    def __init__(self) -> None:
        self.held = False

    def hold(self) -> None:
        self.held = True

    def release(self) -> None:
        self.held = False


class _Transport:
    def __init__(self) -> None:
        self.acceptor = _Acceptor()


class _Loop:
    def __init__(self) -> None:
        self.timers: list[tuple[float, Any]] = []

    def call_later(self, delay: float, fn: Any, *args: Any) -> None:
        self.timers.append((delay, lambda: fn(*args)))


class _Node:
    on_ready: Any = None


def test_the_doors_open_when_the_node_is_ready_and_the_timer_then_does_nothing(caplog: pytest.LogCaptureFixture) -> None:
    loop, node, doors = _Loop(), _Node(), [_Transport(), _Transport()]
    hold_until_caught_up(loop, node, doors)  # type: ignore[arg-type]
    assert all(d.acceptor.held for d in doors)
    ready, node.on_ready = node.on_ready, None  # what Node._check_ready does
    ready()
    assert not any(d.acceptor.held for d in doors)
    [(delay, timer)] = loop.timers
    assert delay == CATCH_UP_WAIT
    doors[0].acceptor.hold()  # (a witness: the late timer must not touch the doors again)
    with caplog.at_level(logging.WARNING, logger="chatroom.server"):
        timer()
    assert doors[0].acceptor.held and not caplog.records


def test_a_catch_up_that_never_ends_opens_the_doors_after_the_wait_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    loop, node, doors = _Loop(), _Node(), [_Transport()]
    hold_until_caught_up(loop, node, doors)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="chatroom.server"):
        loop.timers[0][1]()
    assert not doors[0].acceptor.held and node.on_ready is None, "served, and a late ready does nothing"
    assert [r.getMessage() for r in caplog.records] == [
        f"serving before the catch-up through Redis finished ({CATCH_UP_WAIT:.0f} s passed)"]
