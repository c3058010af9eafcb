"""The loop-owned Redis connection (chatroom/scaleout/link.py) against a real redis-server on a unix socket:
pipelining, error replies, Pub/Sub, CLIENT KILL, a tiny Pub/Sub output buffer limit, Redis restarted with and
without its append-only file, Redis stopped (SIGSTOP) or gone, the bounded output queue. Every wait is a
bounded number of loop passes with a deadline."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from chatroom.net.loop import Loop
from chatroom.scaleout.address import RedisAddress, parse_redis_url
from chatroom.scaleout.link import Backpressure, RedisLink, Unavailable
from chatroom.scaleout.resp import ReplyError

DEADLINE = 10.0


def pump(loop: Loop, done: Callable[[], bool], timeout: float = DEADLINE) -> float:
    """Run loop passes until *done()*; returns the longest pass (seconds). Fails after *timeout*."""
    deadline = time.monotonic() + timeout
    longest = 0.0
    while not done():
        assert time.monotonic() < deadline, "timed out"
        start = time.monotonic()
        loop.run_once(min(0.05, loop.timeout() if loop.timeout() is not None else 0.05))
        longest = max(longest, time.monotonic() - start)
    return longest


class Probe:
    """A link's callbacks, recorded."""

    def __init__(self) -> None:
        self.ready = 0
        self.lost: list[str] = []
        self.pushes: list[Any] = []
        self.replies: list[Any] = []

    def on_ready(self) -> None:
        self.ready += 1

    def on_lost(self, reason: str) -> None:
        self.lost.append(reason)


@pytest.fixture
def loop() -> Any:
    loop = Loop()
    yield loop
    loop.close()


def open_link(loop: Loop, url: str | RedisAddress, **options: Any) -> tuple[RedisLink, Probe]:
    probe = Probe()
    address = parse_redis_url(url) if isinstance(url, str) else url
    link = RedisLink(loop, address, name=options.pop("name", "test"), on_ready=probe.on_ready,
                     on_lost=probe.on_lost, on_push=probe.pushes.append, **options)
    link.start()
    return link, probe


def test_pipelined_commands_get_their_replies_in_order(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    link, probe = open_link(loop, redis_server.url)
    pump(loop, lambda: link.ready)
    assert probe.ready == 1 and redis_server.wait_for_clients("test", 1)
    for _ in range(2000):
        link.call("INCR", "n", on_reply=probe.replies.append)
    link.call("LPUSH", "n", "x", on_reply=probe.replies.append)  # an error reply is a value, the link stays
    link.call("GET", "n", on_reply=probe.replies.append)
    pump(loop, lambda: len(probe.replies) == 2002)
    assert probe.replies[:2000] == list(range(1, 2001))
    assert isinstance(probe.replies[2000], ReplyError) and probe.replies[2000].code == "WRONGTYPE"
    assert probe.replies[2001] == b"2000"
    assert link.ready and link.in_flight == 0 and not probe.lost
    link.close()
    with pytest.raises(Unavailable):
        link.call("PING")


def test_auth_and_select_come_from_the_url(loop, redis_factory) -> None:  # type: ignore[no-untyped-def]
    redis = redis_factory(extra=("--requirepass", "s3cret pw"))
    link, probe = open_link(loop, f"unix://:s3cret%20pw@{redis.socket_path}?db=3")
    pump(loop, lambda: link.ready)
    link.call("SET", "k", "in db 3", on_reply=probe.replies.append)
    pump(loop, lambda: probe.replies)
    assert redis.command("AUTH", "s3cret pw") == b"OK"
    wrong, bad = open_link(loop, f"unix://:nope@{redis.socket_path}", name="wrong")
    pump(loop, lambda: wrong.last_error != "")
    assert "refused the handshake" in wrong.last_error and "WRONGPASS" in wrong.last_error
    assert not wrong.ready and bad.ready == 0
    wrong.close()
    link.close()


def test_a_missing_redis_is_retried_with_backoff_and_commands_fail_at_once(loop, redis_factory,
                                                                             tmp_path) -> None:  # type: ignore[no-untyped-def]
    redis = redis_factory()
    path = redis.socket_path
    redis.stop()  # the socket file is gone: every attempt fails
    link, probe = open_link(loop, f"unix://{path}", backoff=(0.02, 0.1))
    longest = pump(loop, lambda: link.losses == 0 and "cannot connect" in link.last_error)
    start = time.monotonic()
    with pytest.raises(Unavailable, match="not connected.*cannot connect"):
        link.call("PING")
    assert time.monotonic() - start < 0.01
    attempts = []
    pump(loop, lambda: attempts.append(link.state) or len([s for s in attempts if s == "down"]) > 20, timeout=5)
    redis.start()  # same folder, same socket path: the next attempt gets in
    longest = max(longest, pump(loop, lambda: link.ready))
    assert probe.ready == 1 and not probe.lost  # never connected before: nothing was lost
    assert longest < 0.5
    link.close()


def test_client_kill_fails_what_was_in_flight_then_the_link_reconnects(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    link, probe = open_link(loop, redis_server.url)
    pump(loop, lambda: link.ready)
    link.call("BLPOP", "never", 0, on_reply=probe.replies.append)  # waits in Redis until the kill
    loop.run_once(0)
    redis_server.wait_for_clients("test", 1)
    assert redis_server.command("CLIENT", "KILL", "SKIPME", "no", "ID", redis_server.clients()[0]["id"]) in (1, b"OK")
    pump(loop, lambda: probe.replies)
    assert isinstance(probe.replies[0], Unavailable) and "lost" in str(probe.replies[0])
    assert probe.lost and "closed" in probe.lost[0]
    pump(loop, lambda: probe.ready == 2)
    link.call("PING", on_reply=probe.replies.append)
    pump(loop, lambda: len(probe.replies) == 2)
    assert probe.replies[1] == b"PONG" and link.losses == 1
    link.close()


def subscribed(loop: Loop, url: str, channel: str, **options: Any) -> tuple[RedisLink, Probe]:
    """A subscriber link that (re)subscribes to *channel* every time it is ready."""
    probe = Probe()
    link = RedisLink(loop, parse_redis_url(url), name="sub", subscriber=True, on_lost=probe.on_lost,
                     on_push=probe.pushes.append, **options)

    def ready() -> None:
        probe.ready += 1
        link.send("SUBSCRIBE", channel)

    link.on_ready = ready
    link.start()
    return link, probe


def messages(probe: Probe) -> list[bytes]:
    return [p[2] for p in probe.pushes if p[0] == b"message"]


def test_pubsub_recovers_from_client_kill_type_pubsub(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    sub, probe = subscribed(loop, redis_server.url, "ch")
    pump(loop, lambda: [b"subscribe", b"ch", 1] in probe.pushes)
    assert redis_server.command("PUBLISH", "ch", "one") == 1
    pump(loop, lambda: messages(probe) == [b"one"])
    assert redis_server.command("CLIENT", "KILL", "TYPE", "pubsub") == 1
    pump(loop, lambda: probe.ready == 2 and probe.pushes.count([b"subscribe", b"ch", 1]) == 2)
    assert probe.lost == ["Redis closed the connection"]
    assert redis_server.command("PUBLISH", "ch", "two") == 1
    pump(loop, lambda: messages(probe) == [b"one", b"two"])
    sub.close()


def test_pubsub_recovers_when_redis_drops_a_subscriber_over_its_output_buffer_limit(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    assert redis_server.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 16kb 8kb 1") == b"OK"
    sub, probe = subscribed(loop, redis_server.url, "ch")
    pump(loop, lambda: [b"subscribe", b"ch", 1] in probe.pushes)
    assert redis_server.command("PUBLISH", "ch", b"x" * 100_000) == 1  # over the hard limit: Redis drops it
    pump(loop, lambda: probe.ready == 2 and probe.pushes.count([b"subscribe", b"ch", 1]) == 2)
    assert probe.lost and not messages(probe)
    assert any("scheduled to be closed ASAP for overcoming of output buffer limits" in line for line in redis_server.log)
    assert redis_server.command("PUBLISH", "ch", b"small") == 1
    pump(loop, lambda: messages(probe) == [b"small"])
    sub.close()


def test_a_silent_subscriber_connection_is_pinged_and_answers(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    sub, probe = subscribed(loop, redis_server.url, "ch", timeout=0.4)
    pump(loop, lambda: [b"pong", b""] in probe.pushes, timeout=3)
    assert sub.ready and not probe.lost
    sub.close()


@pytest.mark.parametrize("appendonly", [True, False])
def test_redis_restarted_with_or_without_its_append_only_file(loop, redis_factory, appendonly: bool) -> None:  # type: ignore[no-untyped-def]
    redis = redis_factory(appendonly=appendonly)
    link, probe = open_link(loop, redis.url)
    sub, sub_probe = subscribed(loop, redis.url, "ch")
    pump(loop, lambda: link.ready and sub_probe.ready == 1)
    for _ in range(3):
        link.call("INCR", "counter", on_reply=probe.replies.append)
    pump(loop, lambda: len(probe.replies) == 3)
    redis.kill()  # SIGKILL: no shutdown
    pump(loop, lambda: probe.lost and sub_probe.lost)
    with pytest.raises(Unavailable):
        link.call("INCR", "counter")
    redis.start()
    pump(loop, lambda: probe.ready == 2 and sub_probe.ready == 2)
    link.call("INCR", "counter", on_reply=probe.replies.append)
    pump(loop, lambda: len(probe.replies) == 4)
    assert probe.replies == [1, 2, 3, 4 if appendonly else 1]
    pump(loop, lambda: sub_probe.pushes.count([b"subscribe", b"ch", 1]) == 2)
    assert redis.command("PUBLISH", "ch", "after") == 1
    pump(loop, lambda: messages(sub_probe) == [b"after"])
    link.close()
    sub.close()


def test_a_redis_that_stops_answering_fails_commands_within_the_timeout_and_never_blocks_the_loop(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    link, probe = open_link(loop, redis_server.url, timeout=0.5, backoff=(0.05, 0.2))
    pump(loop, lambda: link.ready)
    ticks: list[float] = []

    def tick() -> None:  # a timer of the loop: it keeps running while Redis is frozen
        ticks.append(time.monotonic())
        loop.call_later(0.02, tick)

    tick()
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        link.call("PING", on_reply=probe.replies.append)
        longest = pump(loop, lambda: probe.replies, timeout=3)
        failed_after = time.monotonic() - start
        assert isinstance(probe.replies[0], Unavailable) and "did not answer within 0.5 s" in str(probe.replies[0])
        assert 0.45 < failed_after < 2.5  # (the upper bound leaves room for a crowded machine's scheduling)
        assert longest < 0.4 and len(ticks) > 10  # no pass waited for Redis (that would take the 0.5 s timeout)
        with pytest.raises(Unavailable):
            link.call("PING")
        attempts = link.losses
        pump(loop, lambda: "no connection" in link.last_error, timeout=3)  # Redis accepts, never answers HELLO
        assert link.losses == attempts
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    pump(loop, lambda: link.ready, timeout=5)
    link.call("PING", on_reply=probe.replies.append)
    pump(loop, lambda: len(probe.replies) == 2)
    assert probe.replies[1] == b"PONG"
    link.close()


def test_the_output_queue_is_bounded(loop, redis_server) -> None:  # type: ignore[no-untyped-def]
    link, probe = open_link(loop, redis_server.url, max_output=64 * 1024, timeout=5)
    pump(loop, lambda: link.ready)
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        refused = 0
        for _ in range(200):  # 200 passes of 100 KB: the socket buffers fill, then the queue
            for _ in range(10):
                try:
                    link.call("SET", "k", b"v" * 10_000, on_reply=probe.replies.append)
                except Backpressure:
                    refused += 1
            loop.run_once(0)
            assert link.queued <= 64 * 1024
        assert refused > 0
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    pump(loop, lambda: link.in_flight == 0)
    assert probe.replies and all(r == b"OK" for r in probe.replies)
    assert len(probe.replies) == 2000 - refused
    link.close()


def test_a_redis_still_loading_its_data_after_a_restart_is_not_ready_until_it_has_loaded(loop, redis_factory) -> None:  # type: ignore[no-untyped-def]
    """A restarted Redis accepts connections and answers CLIENT SETNAME while it loads its data, but -LOADING
    to HSET: a link ready then would lose the writes its owner queues first (a scale-out node re-sharing a
    room's rules). The handshake ends with PING, which Redis refuses while loading: ready means loaded."""
    redis = redis_factory(appendonly=False, extra=("--enable-debug-command", "yes"))
    assert redis.command("DEBUG", "POPULATE", "1000000") == b"OK"  # about half a second to load
    assert redis.command("SAVE") == b"OK"
    link, probe = open_link(loop, redis.url, backoff=(0.01, 0.02))
    pump(loop, lambda: link.ready)
    redis.stop()
    pump(loop, lambda: bool(probe.lost))
    errors: set[str] = set()

    def ready() -> None:  # as a node does: what waited for the link is written as soon as it is ready
        probe.on_ready()
        link.call("HSET", "h", "f", "v", on_reply=probe.replies.append)

    link.on_ready = ready
    starter = threading.Thread(target=redis.start)  # the loop keeps dialling while Redis starts and loads
    starter.start()
    try:
        pump(loop, lambda: errors.add(link.last_error) or bool(probe.replies))
    finally:
        starter.join(DEADLINE)
    assert probe.replies == [1]  # not ReplyError('LOADING Redis is loading the dataset in memory')
    assert any("LOADING" in error for error in errors), errors  # the link met Redis loading, and waited
    link.close()


def test_a_host_name_is_resolved_off_the_loop_and_a_closed_port_is_retried(loop) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as probe_sock:  # a port nobody listens on
        probe_sock.bind(("127.0.0.1", 0))
        port = probe_sock.getsockname()[1]
    link, probe = open_link(loop, f"redis://localhost:{port}/0", backoff=(0.02, 0.05))
    pump(loop, lambda: "cannot connect" in link.last_error)
    assert "refused" in link.last_error.lower()
    link.close()
    bad, _ = open_link(loop, "redis://no-such-host.invalid:6379/0", backoff=(0.02, 0.05))
    pump(loop, lambda: "cannot resolve" in bad.last_error)
    bad.close()
    assert not loop.before_write  # closed links leave the loop as they found it
