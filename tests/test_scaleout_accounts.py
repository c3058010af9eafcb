"""Shared accounts (chatroom/scaleout/accounts.py) when Redis does not take them: SharedAccounts over a real
AccountStore (SQLite, written inline) on a fake command link (tests/redis_fakes.py) that records every call and
lets the test answer it, lose the connection or refuse it with an error reply; and its script on a real
redis-server.

An account registered or changed here is done again until Redis answered the one script that stores and
publishes it: when the link is back (``ready()``, as the node calls it) or, on a live link, on a timer that backs
off; always with the account's current record. The read of every account (``HGETALL``) is asked again likewise."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_fakes import Call, FakeLink, FakeLoop, since
from redis_kit import DEADLINE, start_node
from test_scaleout_presence import eventually, seen_and_log

from chatroom.model.accounts import AccountStore, reset_password
from chatroom.scaleout.accounts import SharedAccounts
from chatroom.scaleout.resp import ReplyError

KEY = "chatroom:accounts"
CTL = "chatroom:ctl"


def published(calls: list[Call]) -> list[list[Any]]:
    """The account records the calls publish to the other nodes on ctl (a ``PUBLISH``, or a script that stores
    and publishes)."""
    found = []
    for call in calls:
        args = call.args
        if args[0] == "PUBLISH" and args[1] == CTL:
            found.append(json.loads(json.loads(args[2])["account"]))
        elif args[0] == "EVAL" and "PUBLISH" in args[1] and CTL in args:
            found.append(json.loads(json.loads(args[-1])["account"]))
    return found


def reads(calls: list[Call]) -> list[Call]:
    """The reads of every account."""
    return [c for c in calls if c.args == ("HGETALL", KEY)]


def record(name: str, password_hash: str, created: float, changed: float) -> bytes:
    return json.dumps([name, password_hash, created, changed]).encode()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[AccountStore, FakeLink, SharedAccounts]]:
    store = AccountStore(tmp_path / "accounts.sqlite3", inline=True)
    link = FakeLink()
    shared = SharedAccounts(store, link, KEY, CTL, "a",  # type: ignore[arg-type]
                            look_later=FakeLoop().call_later)  # (link.loop: the retries alone)
    yield store, link, shared
    shared.close()
    store.close()


def back(link: FakeLink, shared: SharedAccounts) -> None:
    """Reconnected: what the node does on its link's return."""
    link.ready = True
    shared.ready()


def test_a_registration_lost_with_its_connection_is_stored_and_published_again_when_the_link_is_back(setup) -> None:  # type: ignore[no-untyped-def]
    store, link, shared = setup
    store.create("alice", "hash-1", now=100.0)
    assert [r[1] for r in published(link.calls)] == ["hash-1"]
    link.lose()  # before Redis answered: it may have stored it without publishing it (other nodes never heard)
    mark = len(link.calls)
    back(link, shared)
    (read,) = reads(since(link, mark))
    link.answer(read, [b"alice", record("alice", "hash-1", 100.0, 100.0)])  # Redis holds it: not enough
    assert [r[1] for r in published(since(link, mark))] == ["hash-1"]  # stored and published again, in one step
    link.answer_all([1])
    assert not shared.unsent
    mark = len(link.calls)
    link.lose()
    back(link, shared)
    link.answer_all([b"alice", record("alice", "hash-1", 100.0, 100.0)])
    assert not published(since(link, mark))  # once Redis took it, never again


def test_an_error_reply_is_retried_on_a_backing_off_timer_logged_once_per_account(setup, caplog) -> None:  # type: ignore[no-untyped-def]
    store, link, shared = setup
    caplog.set_level(logging.INFO, logger="chatroom.server")
    store.create("alice", "hash-a", now=100.0)
    store.create("bob", "hash-b", now=101.0)
    delays = []
    for code in ("OOM command not allowed when used memory > 'maxmemory'.", "READONLY You can't write against a "
                 "read only replica.", "BUSY Redis is busy running a script."):
        mark = len(link.calls)
        link.answer_all(ReplyError(code))
        assert not since(link, mark)  # no busy retry: nothing sent again until the timer
        delays.append(link.loop.fire())
        assert sorted(r[0] for r in published(since(link, mark))) == ["alice", "bob"]  # the link is up: again
    assert delays == sorted(delays) and delays[0] >= 0.5 and delays[-1] > delays[0], delays
    for name in ("alice", "bob"):
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR and f"account {name} " in r.getMessage()]
        assert len(errors) == 1, [r.getMessage() for r in caplog.records]  # once per failure, not per retry
    link.answer_all([1])
    assert not shared.unsent
    assert len([r for r in caplog.records if r.levelno == logging.INFO  # good news: [GENERAL], not [ERROR]
                and r.getMessage() == "account alice shared through Redis again"]) == 1
    assert not link.loop.due()  # nothing left to retry
    link.loop.timers.clear()
    store.set_password("alice", "hash-a2", now=200.0)
    link.answer_all(ReplyError("OOM command not allowed"))
    assert link.loop.fire() == delays[0]  # a new failure starts from the first delay again


def test_a_retry_sends_the_accounts_current_record_once_never_an_older_one(setup) -> None:  # type: ignore[no-untyped-def]
    store, link, shared = setup
    store.create("alice", "hash-1", now=100.0)
    store.set_password("alice", "hash-2", now=101.0)  # while the registration is in flight
    link.lose()
    for n in range(3, 50):  # changed again and again while Redis is away: one name to share, not 47 changes
        store.set_password("alice", f"hash-{n}", now=100.0 + n)
    assert shared.unsent == {"alice"}
    mark = len(link.calls)
    back(link, shared)
    assert [r[1] for r in published(since(link, mark))] == ["hash-49"]  # the current record, once
    (share,) = [c for c in link.pending if published([c])]
    link.answer(share, [1])
    link.answer_all([b"alice", record("alice", "hash-49", 100.0, 149.0)])  # (the read of every account)
    store.set_password("alice", "hash-50", now=150.0)
    (older,) = link.pending
    store.set_password("alice", "hash-51", now=151.0)  # in flight while Redis refuses hash-50
    link.answer(older, ReplyError("OOM command not allowed"))
    link.answer_all([1])  # Redis took hash-51: nothing left to share (hash-50 is never sent again)
    assert not shared.unsent
    mark = len(link.calls)
    while link.loop.due():
        link.loop.fire()
    assert not published(since(link, mark))


def test_a_full_output_queue_on_a_live_link_is_retried_on_the_timer(setup) -> None:  # type: ignore[no-untyped-def]
    store, link, shared = setup
    link.full = True
    store.create("alice", "hash-1", now=100.0)  # refused at once (Backpressure): the link stays up, no ready() comes
    link.full = False
    mark = len(link.calls)
    link.loop.fire()
    assert [r[1] for r in published(since(link, mark))] == ["hash-1"]
    link.answer_all([1])
    assert not shared.unsent


def test_redis_holding_a_newer_change_keeps_it_and_this_node_takes_it(setup) -> None:  # type: ignore[no-untyped-def]
    store, link, shared = setup
    store.create("alice", "hash-here", now=100.0)
    link.answer_all([0, record("alice", "hash-there", 100.0, 105.0)])  # another node's newer password
    assert store.get("alice").password_hash == "hash-there"  # type: ignore[union-attr]
    assert not shared.unsent


def test_the_read_of_every_account_refused_or_lost_is_read_again(setup, caplog) -> None:  # type: ignore[no-untyped-def]
    store, link, shared = setup
    caplog.set_level(logging.INFO, logger="chatroom.server")
    shared.ready()
    (read,) = reads(link.pending)
    link.answer(read, ReplyError("BUSY Redis is busy running a script."))
    mark = len(link.calls)
    link.loop.fire()
    (read,) = reads(since(link, mark))  # read again on the timer (the link is up)
    link.answer(read, [b"bob", record("bob", "hash-b", 50.0, 50.0)])
    assert store.get("bob") is not None
    link.full = True
    shared.ready()  # (the subscription came back) but the output queue is full
    link.full = False
    mark = len(link.calls)
    link.loop.fire()
    (read,) = reads(since(link, mark))
    link.lose()  # lost with the connection: read again when it is back, no timer needed
    mark = len(link.calls)
    back(link, shared)
    (read,) = reads(since(link, mark))
    link.answer(read, [b"bob", record("bob", "hash-b", 50.0, 50.0), b"carol", record("carol", "hash-c", 60.0, 60.0)])
    assert store.get("carol") is not None
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2, errors  # the error reply, the full queue; not the lost connection


def test_close_cancels_the_retry_and_ignores_late_replies(setup, caplog) -> None:  # type: ignore[no-untyped-def]
    store, link, shared = setup
    store.create("alice", "hash-1", now=100.0)
    link.answer_all(ReplyError("OOM command not allowed"))
    assert link.loop.due()  # a retry is due...
    store.set_password("alice", "hash-2", now=101.0)
    caplog.set_level(logging.INFO, logger="chatroom.server")
    caplog.clear()
    shared.close()  # ...but the server stops
    assert link.loop.timers and not link.loop.due()
    link.lose()  # (the link's close fails what was in flight)
    assert not caplog.records


def test_the_share_script_stores_and_publishes_in_one_step_unless_redis_holds_a_newer_change(redis_server) -> None:  # type: ignore[no-untyped-def]
    from chatroom.scaleout.accounts import SHARE_LUA
    from chatroom.scaleout.address import parse_redis_url
    from chatroom.scaleout.probe import BlockingRedis

    def share(name: str, password_hash: str, changed: float) -> Any:
        text = record(name, password_hash, 1.0, changed).decode()
        return redis_server.command("EVAL", SHARE_LUA, 1, KEY, name, text, repr(changed), CTL, password_hash)

    with BlockingRedis(parse_redis_url(redis_server.url)) as ctl:
        assert ctl.command("SUBSCRIBE", CTL)[0] == b"subscribe"
        assert share("alice", "hash-1", 100.5) == [1]
        assert share("alice", "hash-old", 99.0) == [0, record("alice", "hash-1", 1.0, 100.5)]  # the newer kept
        assert share("alice", "hash-1", 100.5)[0] == 0  # taken already (a retry after a lost reply): not twice
        assert share("alice", "hash-2", 101.25) == [1]
        redis_server.command("HSET", KEY, "bob", "not json")
        assert share("bob", "hash-b", 5.0) == [1]  # a record Redis holds that is not one is replaced
        assert redis_server.command("CONFIG", "SET", "maxmemory", "1") == b"OK"
        try:
            refused = share("carol", "hash-c", 7.0)
        finally:
            redis_server.command("CONFIG", "SET", "maxmemory", "0")
        assert isinstance(refused, ReplyError) and str(refused).startswith("OOM")
        messages = []
        for _ in range(10):  # the messages published before this PING, then its answer
            push = ctl.command("PING")
            if push[0] == b"pong":
                break
            messages.append(push[2])
    assert messages == [b"hash-1", b"hash-2", b"hash-b"]  # each record stored was published, the others not
    assert json.loads(redis_server.command("HGET", KEY, "alice"))[1] == "hash-2"
    assert redis_server.command("HEXISTS", KEY, "carol") == 0  # refused: neither stored nor published


def test_an_account_changed_by_another_process_is_shared_at_the_next_look(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, link, shared = setup
    looks = FakeLoop()
    shared.close()
    shared = SharedAccounts(store, link, KEY, CTL, "a", look_later=looks.call_later)  # type: ignore[arg-type]
    store.create("alice", "hash-a", now=100.0)
    link.answer_all([1])
    assert looks.fire() == 1.0  # a look every second: nothing changed
    mark = len(link.calls)
    looks.fire()
    assert not since(link, mark)
    reset_password(tmp_path / "accounts.sqlite3", "alice", lambda name: "new-password")  # the console, beside it
    looks.fire()
    (shared_record,) = published(since(link, mark))
    account = store.get("alice")
    assert account is not None and shared_record == list(account) and shared_record[1] != "hash-a"
    shared.close()
    assert not looks.due()  # closed: no more looks


def test_e2e_a_password_reset_at_a_running_nodes_console_logs_in_on_every_node(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    alice = a.connect("alice")
    alice.send("/register correct-horse-battery")
    alice.expect("OK registered alice; you are logged in")
    eventually(lambda: redis_server.command("HEXISTS", KEY, "alice") == 1, "alice shared")
    held = redis_server.command("HGET", KEY, "alice")
    done = subprocess.run(["chatroom-server", "--data-dir", str(a.data_dir), "--reset-password", "alice"],
                          input="new-password-1\n", capture_output=True, text=True, timeout=DEADLINE)
    assert (done.returncode, done.stdout) == (0, "OK password of alice reset\n"), done.stderr
    eventually(lambda: redis_server.command("HGET", KEY, "alice") != held, "node a sharing the reset",
               show=lambda: a.log_text()[-2000:])  # Redis stores and publishes it in one step: b hears it too
    for node in (b, a):
        guest = node.connect()

        def logged_in(guest=guest) -> bool:  # (b's writer may not have committed it yet: asked again)
            guest.send("/login alice new-password-1")
            guest.expect_where(lambda l: l.startswith(("OK logged in", "ERROR")), "the login's answer")
            return guest.seen[-1] == "OK logged in as alice"

        eventually(logged_in, "alice logs in with the new password", show=lambda: seen_and_log(guest, node))
        guest.send("/quit")
    late = b.connect()
    late.send("/login alice correct-horse-battery")
    late.expect("ERROR wrong password for alice")  # the old one is gone on every node
