"""The backing-off retry timer shared by the scale-out rules and accounts (chatroom/scaleout/retry.py), on a fake
loop whose timers the test fires."""

from __future__ import annotations

from redis_fakes import FakeLoop

from chatroom.scaleout.retry import RetryTimer


def test_the_delay_doubles_to_its_cap_one_timer_at_a_time_and_starts_over_after_reset() -> None:
    loop = FakeLoop()
    runs: list[int] = []
    timer = RetryTimer(loop.call_later, lambda: runs.append(1))
    delays = []
    for _ in range(8):
        timer.schedule()
        timer.schedule()  # (a second failure while a retry is pending adds nothing)
        assert len(loop.due()) == 1 and timer.pending
        delays.append(loop.fire())
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0] and len(runs) == 8 and not timer.pending
    timer.reset()
    timer.schedule()
    assert loop.fire() == 1.0


def test_close_cancels_the_pending_retry_and_schedules_no_more() -> None:
    loop = FakeLoop()
    runs: list[int] = []
    timer = RetryTimer(loop.call_later, lambda: runs.append(1))
    timer.schedule()
    timer.close()
    assert not loop.due() and not timer.pending
    timer.schedule()
    assert not loop.due() and not runs
