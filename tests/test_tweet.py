"""The ttweet plugin (chatroom.builtin.tweet).

The first tests run a whole room in-process with the test kit
(``chatroom_room``: the real server with fake sockets); the end-to-end tests
at the end run the real ``chatroom-server`` and talk TCP."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from chatroom.builtin import tweet
from chatroom.plugins.commands import CommandError
from chatroom.testing import InProcessRoom

TOO_LONG = "ERROR message too long: 151 characters, max 150"
EMPTY = "ERROR empty message: a tweet needs 1 to 150 characters"


@pytest.fixture
def room(chatroom_room) -> InProcessRoom:  # type: ignore[no-untyped-def]
    return chatroom_room()  # the built-ins: core, board, tweet, sendfile


def test_upload_and_download(room: InProcessRoom) -> None:
    alice = room.join("alice")
    assert alice.say("/tweet -d") == ["Empty Message"]
    assert alice.say("/tweet -u hello world") == ["OK"]
    assert alice.say("/tweet -d") == ["hello world"]
    assert alice.say('/tweet -u "quoted  message"') == ["OK"]
    assert alice.say("/tweet -d") == ["quoted  message"]
    assert alice.say("/tweet -u don't stop") == ["OK"]  # unbalanced quote: taken as typed
    assert alice.say("/tweet -d") == ["don't stop"]
    assert alice.say('/tweet -u "a" "b"') == ["OK"]  # two quoted words: taken as typed
    assert alice.say("/tweet -d") == ['"a" "b"']
    assert "[GENERAL] chatroom.plugin.tweet: tweet 1 by alice: hello world" in room.logs


def test_length_limits(room: InProcessRoom) -> None:
    alice = room.join("alice")
    assert alice.say("/tweet -u " + "x" * 150) == ["OK"]
    assert alice.say("/tweet -u " + "é" * 150) == ["OK"]  # characters, not bytes
    assert alice.say("/tweet -u " + "y" * 151) == [TOO_LONG]
    assert alice.say('/tweet -u "' + "z" * 151 + '"') == [TOO_LONG]
    for empty in ("/tweet -u", '/tweet -u ""', "/tweet -u    ", '/tweet -u "   "'):
        assert alice.say(empty) == [EMPTY], empty
    assert alice.say("/tweet -d") == ["é" * 150]  # nothing rejected was stored
    assert "[ERROR] chatroom.plugin.tweet: tweet from alice rejected: " + TOO_LONG[6:] in room.logs


def test_usage(room: InProcessRoom) -> None:
    alice = room.join("alice")
    for bad in ("/tweet", "/tweet hello", "/tweet -x", "/tweet -d #a #b", "/tweets 0", "/tweets x"):
        reply = alice.say(bad)
        assert len(reply) == 1 and reply[0].startswith("ERROR usage: "), bad


def test_counts_are_bounded_ascii_digits_and_misuse_is_never_a_fault(room: InProcessRoom) -> None:
    """Issue 8, item 2: "/tweets ²" once raised in the handler, and five faults disabled the
    plugin for everyone; now each is a usage error, however often it is sent."""
    alice = room.join("alice")
    alice.say("/tweet -u one #x")
    bad = ["²", "٣", "0", "1001", "+1", " 1_0", "99999999999999999999", "9" * 5000, "5 6", "#x #y", "5 #x 6"]
    for _ in range(6):  # more than the plugin host's fault limit
        for arg in bad:
            for command in ("/tweets", "/tweet -l"):
                reply = alice.say(f"{command} {arg}")
                assert len(reply) == 1 and reply[0].startswith("ERROR usage: "), (command, arg, reply)
    assert room.faults == []
    assert alice.say("/tweets 1000")[-1] == "OK 1 tweet"
    assert alice.say("/tweets #x 01")[-1] == "OK 1 tweet"
    assert alice.say("/tweet -l 1 #x")[-1] == "OK 1 tweet"


def test_a_full_disk_is_reported_and_the_store_still_works(room: InProcessRoom, monkeypatch: pytest.MonkeyPatch) -> None:
    class FullDisk:  # the store's COMMIT fails as SQLite's does when the disk is full
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn, self.full = conn, True

        def __getattr__(self, name: str) -> object:
            return getattr(self.conn, name)

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if self.full and sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
            return self.conn.execute(sql, *args)

    real = tweet._db
    disk = FullDisk(real(room.context("tweet")))
    monkeypatch.setattr(tweet, "_db", lambda ctx: (real(ctx), disk)[1])
    alice = room.join("alice")
    assert alice.say("/tweet -u lost #x") == ["ERROR tweet not saved: disk full"]
    disk.full = False
    assert alice.say("/tweet -d") == ["Empty Message"]
    assert alice.say("/tweet -u kept") == ["OK"]  # no transaction was left open
    assert alice.say("/tweets")[-1] == "OK 1 tweet"
    assert room.faults == []


def test_hashtags() -> None:
    assert tweet.hashtags("#Cats and #dogs, #cats again; C# is no tag, nor a##b") == ["cats", "dogs"]
    assert tweet.hashtags("#snake_case #42 #ünïcode!") == ["snake_case", "42", "ünïcode"]
    assert tweet.parse_tag("#Cats") == tweet.parse_tag("cats") == "cats"
    with pytest.raises(CommandError):
        tweet.parse_tag("#not a tag")


def test_download_by_hashtag(room: InProcessRoom) -> None:
    alice = room.join("alice")
    alice.say("/tweet -u first #cats")
    alice.say("/tweet -u then #dogs")
    alice.say("/tweet -u no tag at all")
    assert alice.say("/tweet -d #cats") == ["first #cats"]
    assert alice.say("/tweet -d #CATS") == ["first #cats"]
    assert alice.say("/tweet -d #dogs") == ["then #dogs"]
    assert alice.say("/tweet -d #birds") == ["Empty Message"]
    assert alice.say("/tweet -d") == ["no tag at all"]


def test_subscribe_push_and_unsubscribe(room: InProcessRoom) -> None:
    alice, bob, carol = room.join("alice"), room.join("bob"), room.join("carol")
    assert bob.say("/subscribe") == ["OK no subscriptions"]
    assert bob.say("/subscribe #cats") == ["OK subscribed to #cats"]
    assert bob.say("/subscribe Dogs") == ["OK subscribed to #dogs"]
    assert bob.say("/subscribe #cats") == ["OK already subscribed to #cats"]
    assert bob.say("/subscribe") == ["OK your subscriptions: #cats #dogs"]  # a listing, not a new subscription
    assert alice.say("/subscribe #cats") == ["OK subscribed to #cats"]
    for client in (alice, bob, carol):
        client.clear()
    assert alice.say("/tweet -u my #Cats and #dogs") == ["OK"]  # the author is not pushed her own
    assert bob.received == ["alice (tweet): my #Cats and #dogs"]  # once, though two tags match
    assert carol.received == []
    bob.clear()
    assert carol.say("/tweet -u only #birds") == ["OK"]
    assert bob.received == [] and alice.received == ["OK"]
    alice.clear()
    assert carol.say("/tweet -u more #cats") == ["OK"]
    assert bob.received == alice.received == ["carol (tweet): more #cats"]
    alice.clear()
    assert bob.say("/unsubscribe #cats") == ["OK unsubscribed from #cats"]
    assert bob.say("/unsubscribe #cats") == ["ERROR not subscribed to #cats"]
    bob.clear()
    carol.say("/tweet -u again #cats")
    assert bob.received == [] and alice.received == ["carol (tweet): again #cats"]


def test_subscriptions_are_dropped_when_the_client_leaves(room: InProcessRoom) -> None:
    alice, bob = room.join("alice"), room.join("bob")
    bob.say("/subscribe #cats")
    bob.leave()
    state = room.context("tweet").state
    assert state["by_tag"] == {} and state["by_client"] == {}
    assert alice.say("/tweet -u hi #cats") == ["OK"]
    assert room.errors == []


def test_subscription_limit(room: InProcessRoom) -> None:
    bob = room.join("bob")
    for i in range(tweet.MAX_SUBSCRIPTIONS):
        assert bob.say(f"/subscribe #t{i}") == [f"OK subscribed to #t{i}"]
    assert bob.say("/subscribe #onemore")[0].startswith("ERROR too many subscriptions")


def test_list_recent(room: InProcessRoom) -> None:
    alice, bob = room.join("alice"), room.join("bob")
    assert alice.say("/tweets") == ["OK 0 tweets"]
    for i in range(12):
        (alice if i % 2 else bob).say(f"/tweet -u number {i}" + (" #even" if i % 2 == 0 else ""))
    out = alice.say("/tweets")
    assert len(out) == 11 and out[-1] == "OK 10 tweets"
    assert out[0].startswith("tweet 3 by bob at ") and out[0].endswith(" UTC: number 2 #even")
    assert out[1].startswith("tweet 4 by alice at ")
    expected = [f"number {i}" + (" #even" if i % 2 == 0 else "") for i in range(2, 12)]
    assert [line.split(": ", 1)[1] for line in out[:-1]] == expected
    out = alice.say("/tweets 2 #even")
    assert [line.split(": ", 1)[1] for line in out[:-1]] == ["number 8 #even", "number 10 #even"]
    assert out[-1] == "OK 2 tweets"
    assert alice.say("/tweet -l 1")[-1] == "OK 1 tweet"


def test_tweets_persist_in_the_store(chatroom_room, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = chatroom_room(data_dir=tmp_path / "data")
    first.join("alice").say("/tweet -u kept #x")
    first.close()
    bob = chatroom_room(data_dir=tmp_path / "data").join("bob")
    assert bob.say("/tweet -d") == ["kept #x"]
    assert bob.say("/tweet -d #x") == ["kept #x"]


# -- end to end: the real chatroom-server over TCP ------------------------------------------


def test_e2e_upload_limits_and_empty_message(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory("--quiet")
    alice = srv.connect("alice")
    alice.send("/tweet -d")
    assert alice.expect("Empty Message") == []
    at_limit = "a" * 149 + "!"
    alice.send(f"/tweet -u {at_limit}")
    assert alice.expect("OK") == []
    alice.send('/tweet -u "' + "b" * 151 + '"')
    assert alice.expect("ERROR message too long: 151 characters, max 150") == []
    alice.send("/tweet -u")
    assert alice.expect_prefix("ERROR empty message") == "ERROR empty message: a tweet needs 1 to 150 characters"
    alice.send("/tweet -d")
    assert alice.expect(at_limit) == []  # the rejected ones stored nothing
    alice.send('/tweet -u "hello from alice"')
    alice.expect("OK")
    alice.send("/tweet -d")
    assert alice.expect("hello from alice") == []
    alice.send("/tweets")
    lines = alice.expect("OK 2 tweets")
    assert [line.split(" at ")[0] for line in lines] == ["tweet 1 by alice", "tweet 2 by alice"]
    assert lines[1].endswith(" UTC: hello from alice")
    log = srv.log_text()
    assert "[GENERAL] chatroom.plugin.tweet: tweet 2 by alice: hello from alice" in log
    assert "[ERROR] chatroom.plugin.tweet: tweet from alice rejected: message too long: 151 characters" in log


def test_e2e_hashtag_filter_and_subscription(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory("--quiet")
    bob = srv.connect("bob")
    alice = srv.connect("alice")
    bob.send("/subscribe #cats")
    bob.expect("OK subscribed to #cats")
    alice.send("/tweet -u only #dogs here")
    alice.expect("OK")
    alice.send("/tweet -u now #Cats too")
    alice.expect("OK")
    pushed = bob.expect_prefix("alice (tweet): ")
    assert pushed == "alice (tweet): now #Cats too"  # the #dogs tweet was not pushed before it
    alice.send("/tweet -d #dogs")
    assert alice.expect("only #dogs here") == []
    alice.send("/tweet -d #cats")
    assert alice.expect("now #Cats too") == []
    alice.send("/tweet -d #birds")
    assert alice.expect("Empty Message") == []
    bob.send("/unsubscribe #cats")
    bob.expect("OK unsubscribed from #cats")
    alice.send("/tweet -u more #cats")
    alice.expect("OK")
    alice.send("sync")
    assert not [line for line in bob.expect("alice: sync") if "(tweet)" in line]


def test_e2e_tweets_survive_sigkill(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "tweet-data"
    srv = server_factory("--quiet", data_dir=data)
    alice = srv.connect("alice")
    alice.send("/tweet -u kept #x")
    alice.expect("OK")
    alice.send("/tweet -u latest")
    alice.expect("OK")
    srv.stop(signal.SIGKILL)
    srv = server_factory("--quiet", data_dir=data)
    bob = srv.connect("bob")
    bob.send("/tweet -d")
    assert bob.expect("latest") == []
    bob.send("/tweet -d #x")
    assert bob.expect("kept #x") == []
