"""publish.lua through the bus (chatroom/scaleout/bus.py) on a real redis-server: one call per room per pass
gives dense ids, appends to the stream, trims it to the retention, publishes the pass with its ids and the
room's epoch; a room Redis lost starts over above the caller's floor with a new epoch."""

from __future__ import annotations

from typing import Any

import pytest
from test_redis_link import messages, pump, subscribed

from chatroom.net.loop import Loop
from chatroom.scaleout.address import parse_redis_url
from chatroom.scaleout.bus import Batch, Keys, Publisher, parse_batch
from chatroom.scaleout.link import RedisLink

KEYS = Keys("t")


@pytest.fixture
def loop() -> Any:
    loop = Loop()
    yield loop
    loop.close()


class Bus:
    """A command link with a Publisher (script loaded on every connection) and a subscriber on #lobby."""

    def __init__(self, loop: Loop, url: str) -> None:
        self.loop = loop
        self.replies: list[Any] = []
        self.link = RedisLink(loop, parse_redis_url(url), name="bus", on_ready=lambda: self.publisher.load())
        self.publisher = Publisher(self.link, KEYS)
        self.link.start()
        self.sub, self.sub_probe = subscribed(loop, url, KEYS.channel("#lobby"))
        pump(loop, lambda: self.link.ready and [b"subscribe", KEYS.channel("#lobby").encode(), 1] in self.sub_probe.pushes)

    def publish(self, events: list[tuple[bool, bytes]], **options: Any) -> Any:
        count = len(self.replies)
        self.publisher.publish("#lobby", events, on_reply=self.replies.append, **options)
        pump(self.loop, lambda: len(self.replies) > count)
        return self.replies[-1]

    def batches(self) -> list[Batch]:
        return [parse_batch(m) for m in messages(self.sub_probe)]

    def close(self) -> None:
        self.link.close()
        self.sub.close()


def stream_ids(redis: Any) -> list[bytes]:
    return [entry[0] for entry in redis.command("XRANGE", KEYS.stream("#lobby"), "-", "+")]


def test_a_pass_gets_dense_ids_is_stored_and_published_in_order(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    bus = Bus(loop, redis_server.url)
    epoch, first, last = bus.publish([(True, b"one"), (False, b"joined"), (True, b"two")])
    assert (first, last) == (1, 2) and len(epoch) == 16
    assert bus.publish([(True, b"three")], epoch="ignored") == (epoch, 3, 3)  # the room's epoch stays
    assert bus.publish([(False, b"only a notice")]) == (epoch, 4, 3)  # nothing stored: first = last + 1
    pump(loop, lambda: len(bus.batches()) == 3)
    assert bus.batches() == [Batch(epoch, 1, 2, [(1, b"one"), (0, b"joined"), (2, b"two")]),
                             Batch(epoch, 3, 3, [(3, b"three")]),
                             Batch(epoch, 4, 3, [(0, b"only a notice")])]
    assert stream_ids(redis_server) == [b"1-0", b"2-0", b"3-0"]
    entries = redis_server.command("XRANGE", KEYS.stream("#lobby"), "2-0", "2-0")
    assert entries == [[b"2-0", [b"l", b"stwo"]]]
    assert redis_server.command("HGETALL", KEYS.meta("#lobby")) in (
        [b"epoch", epoch.encode(), b"seq", b"3"], [b"seq", b"3", b"epoch", epoch.encode()])
    bus.close()


def test_the_stream_is_trimmed_to_the_retention(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    assert redis_server.command("CONFIG", "SET", "stream-node-max-entries", "10") == b"OK"
    bus = Bus(loop, redis_server.url)
    for n in range(20):
        bus.publish([(True, b"line %d" % (5 * n + i)) for i in range(5)], keep=30)
    ids = stream_ids(redis_server)
    assert 30 <= len(ids) <= 40 and ids[-1] == b"100-0"  # "~": at least 30, whole stream nodes go
    assert bus.publish([(True, b"next")], keep=30)[1:] == (101, 101)
    bus.close()


def test_a_room_redis_does_not_hold_starts_above_the_floor_with_a_new_epoch(loop, redis_factory) -> None:  # type: ignore[no-untyped-def]
    redis = redis_factory(appendonly=False)
    bus = Bus(loop, redis.url)
    epoch, first, last = bus.publish([(True, b"a")], floor=41)
    assert (first, last) == (42, 42)
    assert bus.publish([(True, b"b")], floor=10) == (epoch, 43, 43)  # a floor matters only for a new room
    redis.restart(empty=True)  # Redis restarted empty: the room is gone
    pump(loop, lambda: bus.link.connects == 2 and bus.sub_probe.ready == 2 and len(bus.sub_probe.pushes) >= 3)
    new_epoch, first, last = bus.publish([(True, b"c")], floor=43)
    assert new_epoch != epoch and (first, last) == (44, 44)  # ids keep increasing
    pump(loop, lambda: len(bus.batches()) == 3)
    assert [b.epoch for b in bus.batches()] == [epoch, epoch, new_epoch]
    bus.close()


def test_redis_restarted_with_its_append_only_file_keeps_ids_and_epoch(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    bus = Bus(loop, redis_server.url)
    epoch, _, _ = bus.publish([(True, b"a"), (True, b"b")])
    redis_server.kill()
    redis_server.start()
    pump(loop, lambda: bus.link.connects == 2)
    assert bus.publish([(True, b"c")]) == (epoch, 3, 3)
    assert stream_ids(redis_server) == [b"1-0", b"2-0", b"3-0"]
    bus.close()


def test_a_stream_that_outlived_its_meta_keeps_its_ids(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    bus = Bus(loop, redis_server.url)
    bus.publish([(True, b"x")] * 7)
    assert redis_server.command("DEL", KEYS.meta("#lobby")) == 1
    assert bus.publish([(True, b"y")], floor=2)[1:] == (8, 8)
    bus.close()


def test_a_flushed_script_cache_is_invisible_to_the_caller(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    bus = Bus(loop, redis_server.url)
    bus.publish([(True, b"a")])
    assert redis_server.command("SCRIPT", "FLUSH") == b"OK"
    assert bus.publish([(True, b"b")])[1:] == (2, 2)
    bus.close()


@pytest.mark.parametrize("message", [b"e 1", b"e 1 x\nsa", b"e 1 1\nxa", b"e 1 2\nsa"])
def test_parse_batch_refuses_what_the_script_never_publishes(message: bytes) -> None:
    with pytest.raises(ValueError):
        parse_batch(message)


def test_keys_and_their_room() -> None:
    assert KEYS.channel("#a-b") == "t:{#a-b}" and KEYS.room_of(b"t:{#a-b}") == "#a-b"
    with pytest.raises(ValueError):
        KEYS.room_of("u:{#a}")
    with pytest.raises(ValueError):
        Keys("a{b")


def test_a_call_redis_runs_after_its_deadline_stores_and_publishes_nothing(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    import time

    bus = Bus(loop, redis_server.url)
    assert bus.publish([(True, b"in time")], deadline=time.time() + 5)[1:] == (1, 1)
    late = bus.publish([(True, b"late")], deadline=time.time() - 1)
    assert late.code == "STALE"
    assert stream_ids(redis_server) == [b"1-0"]
    assert bus.publish([(True, b"next")])[1:] == (2, 2)
    pump(loop, lambda: len(bus.batches()) == 2)
    assert [b.events for b in bus.batches()] == [[(1, b"in time")], [(2, b"next")]]
    bus.close()
