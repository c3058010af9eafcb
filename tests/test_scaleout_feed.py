"""A room's delivery order on one node (chatroom/scaleout/feed.py), without Redis: in order, gaps fetched,
duplicates dropped, what the stream lost reported, a new epoch, a resync after a lost subscription."""

from __future__ import annotations

from chatroom.scaleout.bus import Batch
from chatroom.scaleout.feed import FETCH_COUNT, Deliver, Feed, Fetch, Lost


def batch(first: int, count: int, epoch: str = "e1", notice: bool = False) -> Batch:
    events = [(i, b"l%d" % i) for i in range(first, first + count)]
    if notice:
        events.insert(0, (0, b"joined"))
    return Batch(epoch, first, first + count - 1, events)


def lines(first: int, last: int, skip: frozenset[int] = frozenset()) -> list[tuple[int, bytes]]:
    return [(i, b"l%d" % i) for i in range(first, last + 1) if i not in skip]


def test_batches_in_order_are_delivered_as_they_come() -> None:
    feed = Feed()
    assert feed.receive(batch(1, 2, notice=True)) == [Deliver([(0, b"joined"), (1, b"l1"), (2, b"l2")])]
    assert feed.receive(Batch("e1", 3, 2, [(0, b"a notice")])) == [Deliver([(0, b"a notice")])]
    assert feed.receive(batch(3, 1)) == [Deliver([(3, b"l3")])]
    assert feed.next_id == 4


def test_a_gap_is_fetched_and_later_batches_wait_behind_it() -> None:
    feed = Feed(5, "e1")
    assert feed.receive(batch(8, 2)) == [Fetch(5, 7)]
    assert feed.receive(batch(10, 1, notice=True)) == []  # held
    assert feed.fetched(lines(5, 7)) == [Deliver(lines(5, 7)), Deliver(lines(8, 9)),
                                         Deliver([(0, b"joined"), (10, b"l10")])]
    assert feed.next_id == 11 and feed.fetching is None and not feed.held


def test_what_the_stream_no_longer_holds_is_reported_lost() -> None:
    feed = Feed(5, "e1")
    assert feed.receive(batch(9, 1)) == [Fetch(5, 8)]
    assert feed.fetched(lines(7, 8)) == [Lost(2, 5), Deliver(lines(7, 8)), Deliver(lines(9, 9))]
    feed = Feed(5, "e1")
    feed.receive(batch(9, 1))
    assert feed.fetched([]) == [Lost(4, 5), Deliver(lines(9, 9))]
    feed = Feed(1, "e1")
    feed.receive(batch(6, 1))
    assert feed.fetched(lines(1, 5, skip=frozenset({3}))) == [Lost(1, 3), Deliver(lines(1, 5, frozenset({3}))),
                                                              Deliver(lines(6, 6))]


def test_a_long_gap_is_fetched_in_pieces() -> None:
    feed = Feed(1, "e1")
    last = FETCH_COUNT * 2 + 10
    assert feed.receive(batch(last + 1, 1)) == [Fetch(1, last)]
    assert feed.fetched(lines(1, FETCH_COUNT)) == [Deliver(lines(1, FETCH_COUNT)), Fetch(FETCH_COUNT + 1, last)]
    out = feed.fetched(lines(FETCH_COUNT + 1, FETCH_COUNT * 2))
    assert out[-1] == Fetch(FETCH_COUNT * 2 + 1, last)
    assert feed.fetched(lines(FETCH_COUNT * 2 + 1, last)) == [Deliver(lines(FETCH_COUNT * 2 + 1, last)),
                                                             Deliver(lines(last + 1, last + 1))]


def test_a_resync_fetches_to_the_end_and_drops_what_it_delivered_from_held_batches() -> None:
    feed = Feed(4, "e1")
    assert feed.resync() == [Fetch(4, 0)]
    assert feed.resync() == []  # one at a time
    assert feed.receive(batch(6, 2, notice=True)) == []  # arrived while fetching: lines 6-7 are in the fetch
    assert feed.fetched(lines(4, 7)) == [Deliver(lines(4, 7)), Deliver([(0, b"joined")])]
    assert feed.next_id == 8
    assert feed.receive(batch(8, 1)) == [Deliver(lines(8, 8))]


def test_duplicates_are_dropped() -> None:
    feed = Feed(1, "e1")
    feed.receive(batch(1, 3))
    assert feed.receive(batch(2, 2)) == []
    assert feed.receive(batch(3, 2)) == [Deliver(lines(4, 4))]


def test_a_new_epoch_reports_the_ids_this_node_never_saw_and_goes_on_from_there() -> None:
    feed = Feed(1)
    feed.receive(batch(1, 10))
    assert feed.receive(batch(14, 1, epoch="e2")) == [Lost(3, 11, True), Deliver(lines(14, 14))]
    assert feed.epoch == "e2" and feed.next_id == 15
    assert feed.receive(batch(15, 1, epoch="e3")) == [Deliver(lines(15, 15))]  # nothing missed: no loss
    assert feed.receive(batch(9, 1, epoch="e4")) == [Deliver(lines(9, 9))]  # a lower start is the truth too


def test_a_hole_found_by_a_fetch_with_a_new_epoch_waiting_is_blamed_on_the_restart() -> None:
    feed = Feed(1)
    feed.receive(batch(1, 5))
    assert feed.resync() == [Fetch(6, 0)]
    assert feed.receive(batch(9, 1, epoch="e2")) == []  # the new epoch's first line, held
    assert feed.fetched(lines(9, 9)) == [Lost(3, 6, True), Deliver(lines(9, 9))]


def test_a_hole_found_by_a_fetch_that_read_a_new_epoch_is_blamed_on_the_restart() -> None:
    feed = Feed(1)
    feed.receive(batch(1, 5))
    assert feed.resync() == [Fetch(6, 0)]
    # the new epoch's first line is in the stream before its published batch reached this node
    assert feed.fetched(lines(9, 9), "e2") == [Lost(3, 6, True), Deliver(lines(9, 9))]
    assert feed.epoch == "e2" and feed.next_id == 10
    assert feed.receive(batch(9, 1, epoch="e2")) == []  # (its batch, late: a duplicate)
    assert feed.receive(batch(10, 1, epoch="e2")) == [Deliver(lines(10, 10))]


def test_a_hole_in_the_same_epoch_is_not_blamed_on_a_restart() -> None:
    feed = Feed(1)
    feed.receive(batch(1, 5))
    assert feed.resync() == [Fetch(6, 0)]
    assert feed.fetched(lines(9, 9), "e1") == [Lost(3, 6, False), Deliver(lines(9, 9))]


def test_a_new_epoch_read_with_no_line_yet_labels_the_loss_and_waits_for_its_first_batch() -> None:
    feed = Feed(1)
    feed.receive(batch(1, 5))
    assert feed.receive(batch(9, 1)) == [Fetch(6, 8)]  # a gap in the old epoch...
    assert feed.fetched([], "e2") == [Lost(3, 6, True), Deliver(lines(9, 9))]  # ...Redis lost it: restarted
    assert feed.epoch == "e1"
    feed = Feed(1)
    feed.receive(batch(1, 5))
    assert feed.resync() == [Fetch(6, 0)]
    assert feed.fetched([], "e2") == [] and feed.epoch == "e1"  # (a room's meta made by a pass of notices)
    assert feed.receive(batch(9, 1, epoch="e2")) == [Lost(3, 6, True), Deliver(lines(9, 9))]
