"""The ttweet plugin (chatroom.builtin.tweet).

Unit tests drive the plugin through the real Context against a small stand-in for
the server (no sockets); the end-to-end tests at the end run the real
``chatroom-server`` and talk TCP."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest

from chatroom.builtin import tweet
from chatroom.commands import CommandError, Registry, UsageError, split_command
from chatroom.context import Context
from chatroom.store import close_store, open_store, plugin_store_path

PLUGIN = "tweet"


class FakeClient:
    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.closed = False
        self.capture = None
        self.out: list[str] = []


class FakeServer:
    """Just what Context calls for this plugin: state, store, line output."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.state: dict[str, Any] = {}
        self.conn: sqlite3.Connection | None = None
        self.registry = Registry()
        for command in tweet.register_commands():
            self.registry.add(command)

    def plugin_state(self, plugin: str) -> dict[str, Any]:
        return self.state

    def plugin_store(self, plugin: str) -> sqlite3.Connection:
        if self.conn is None:
            self.conn = open_store(plugin_store_path(self.data_dir, plugin))
        return self.conn

    def send_line(self, client: FakeClient, text: str) -> None:
        client.out.append(text)

    def type(self, client: FakeClient, line: str) -> list[str]:
        """Run the command *line* as *client*; return and clear its output."""
        name, text = split_command(line)
        command = self.registry.get(name)
        assert command is not None, line
        ctx = Context(self, PLUGIN, client, text)  # type: ignore[arg-type]
        try:
            command.handler(ctx, command.parse_args(text))
        except UsageError as exc:
            client.out.append(f"ERROR usage: {exc}")
        except CommandError as exc:
            client.out.append(f"ERROR {exc}")
        out, client.out = client.out, []
        return out

    def leave(self, client: FakeClient) -> None:
        client.closed = True
        tweet.client_left(Context(self, PLUGIN, client), "quit")  # type: ignore[arg-type]

    def close(self) -> None:
        if self.conn is not None:
            close_store(self.conn)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FakeServer]:
    srv = FakeServer(tmp_path)
    yield srv
    srv.close()


def test_upload_and_download(server: FakeServer) -> None:
    alice = FakeClient("alice")
    assert server.type(alice, "/tweet -d") == ["Empty Message"]
    assert server.type(alice, "/tweet -u hello world") == ["OK"]
    assert server.type(alice, "/tweet -d") == ["hello world"]
    assert server.type(alice, '/tweet -u "quoted  message"') == ["OK"]
    assert server.type(alice, "/tweet -d") == ["quoted  message"]
    assert server.type(alice, "/tweet -u don't stop") == ["OK"]  # unbalanced quote: taken as typed
    assert server.type(alice, "/tweet -d") == ["don't stop"]
    assert server.type(alice, '/tweet -u "a" "b"') == ["OK"]  # two quoted words: taken as typed
    assert server.type(alice, "/tweet -d") == ['"a" "b"']


def test_length_limits(server: FakeServer) -> None:
    alice = FakeClient("alice")
    assert server.type(alice, "/tweet -u " + "x" * 150) == ["OK"]
    assert server.type(alice, "/tweet -u " + "é" * 150) == ["OK"]  # characters, not bytes
    assert server.type(alice, "/tweet -u " + "y" * 151) == ["ERROR message too long: 151 characters, max 150"]
    assert server.type(alice, '/tweet -u "' + "z" * 151 + '"') == ["ERROR message too long: 151 characters, max 150"]
    for empty in ("/tweet -u", '/tweet -u ""', "/tweet -u    ", '/tweet -u "   "'):
        reply = server.type(alice, empty)
        assert reply == ["ERROR empty message: a tweet needs 1 to 150 characters"], empty
    assert server.type(alice, "/tweet -d") == ["é" * 150]  # nothing rejected was stored


def test_usage(server: FakeServer) -> None:
    alice = FakeClient("alice")
    for bad in ("/tweet", "/tweet hello", "/tweet -x", "/tweet -d #a #b", "/tweets 0", "/tweets x"):
        reply = server.type(alice, bad)
        assert len(reply) == 1 and reply[0].startswith("ERROR usage: "), bad


def test_hashtags() -> None:
    assert tweet.hashtags("#Cats and #dogs, #cats again; C# is no tag, nor a##b") == ["cats", "dogs"]
    assert tweet.hashtags("#snake_case #42 #ünïcode!") == ["snake_case", "42", "ünïcode"]
    assert tweet.parse_tag("#Cats") == tweet.parse_tag("cats") == "cats"
    with pytest.raises(CommandError):
        tweet.parse_tag("#not a tag")


def test_download_by_hashtag(server: FakeServer) -> None:
    alice = FakeClient("alice")
    server.type(alice, "/tweet -u first #cats")
    server.type(alice, "/tweet -u then #dogs")
    server.type(alice, "/tweet -u no tag at all")
    assert server.type(alice, "/tweet -d #cats") == ["first #cats"]
    assert server.type(alice, "/tweet -d #CATS") == ["first #cats"]
    assert server.type(alice, "/tweet -d #dogs") == ["then #dogs"]
    assert server.type(alice, "/tweet -d #birds") == ["Empty Message"]
    assert server.type(alice, "/tweet -d") == ["no tag at all"]


def test_subscribe_push_and_unsubscribe(server: FakeServer) -> None:
    alice, bob, carol = FakeClient("alice"), FakeClient("bob"), FakeClient("carol")
    assert server.type(bob, "/subscribe") == ["OK no subscriptions"]
    assert server.type(bob, "/subscribe #cats") == ["OK subscribed to #cats"]
    assert server.type(bob, "/subscribe Dogs") == ["OK subscribed to #dogs"]
    assert server.type(bob, "/subscribe #cats") == ["OK already subscribed to #cats"]
    assert server.type(bob, "/subscribe") == ["OK subscribed to #cats #dogs"]
    assert server.type(alice, "/subscribe #cats") == ["OK subscribed to #cats"]
    assert server.type(alice, "/tweet -u my #Cats and #dogs") == ["OK"]  # the author is not pushed her own
    assert bob.out == ["alice (tweet): my #Cats and #dogs"]  # once, though two tags match
    assert carol.out == []
    bob.out.clear()
    assert server.type(carol, "/tweet -u only #birds") == ["OK"]
    assert bob.out == [] and alice.out == []
    assert server.type(carol, "/tweet -u more #cats") == ["OK"]
    assert bob.out == ["carol (tweet): more #cats"] and alice.out == ["carol (tweet): more #cats"]
    bob.out.clear()
    alice.out.clear()
    assert server.type(bob, "/unsubscribe #cats") == ["OK unsubscribed from #cats"]
    assert server.type(bob, "/unsubscribe #cats") == ["ERROR not subscribed to #cats"]
    server.type(carol, "/tweet -u again #cats")
    assert bob.out == [] and alice.out == ["carol (tweet): again #cats"]


def test_subscriptions_are_dropped_when_the_client_leaves(server: FakeServer) -> None:
    alice, bob = FakeClient("alice"), FakeClient("bob")
    server.type(bob, "/subscribe #cats")
    server.leave(bob)
    assert server.state["by_tag"] == {} and server.state["by_client"] == {}
    server.type(alice, "/tweet -u hi #cats")
    assert bob.out == []


def test_subscription_limit(server: FakeServer) -> None:
    bob = FakeClient("bob")
    for i in range(tweet.MAX_SUBSCRIPTIONS):
        assert server.type(bob, f"/subscribe #t{i}") == [f"OK subscribed to #t{i}"]
    reply = server.type(bob, "/subscribe #onemore")
    assert reply[0].startswith("ERROR too many subscriptions")


def test_list_recent(server: FakeServer) -> None:
    alice, bob = FakeClient("alice"), FakeClient("bob")
    assert server.type(alice, "/tweets") == ["OK 0 tweets"]
    for i in range(12):
        server.type(alice if i % 2 else bob, f"/tweet -u number {i}" + (" #even" if i % 2 == 0 else ""))
    out = server.type(alice, "/tweets")
    assert len(out) == 11 and out[-1] == "OK 10 tweets"
    assert out[0].startswith("tweet 3 by bob at ") and out[0].endswith(" UTC: number 2 #even")
    assert [line.rsplit(": ", 1)[1] for line in out[:-1]] == [f"number {i}" + (" #even" if i % 2 == 0 else "") for i in range(2, 12)]
    assert out[1].startswith("tweet 4 by alice at ")
    out = server.type(alice, "/tweets 2 #even")
    assert [line.split(": ", 1)[1] for line in out[:-1]] == ["number 8 #even", "number 10 #even"]
    assert out[-1] == "OK 2 tweets"
    assert server.type(alice, "/tweet -l 1")[-1] == "OK 1 tweet"


def test_tweets_persist_in_the_store(tmp_path: Path) -> None:
    first = FakeServer(tmp_path)
    first.type(FakeClient("alice"), "/tweet -u kept #x")
    first.close()
    second = FakeServer(tmp_path)
    bob = FakeClient("bob")
    assert second.type(bob, "/tweet -d") == ["kept #x"]
    assert second.type(bob, "/tweet -d #x") == ["kept #x"]
    second.close()


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
