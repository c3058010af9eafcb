"""Two or three ``chatroom-server --redis`` processes and one real redis-server: one chat, over real TCP.
Every line is delivered on every node in one order (Redis's), with the same history ids; a pub/sub
connection dropped by Redis, Redis restarted with and without its append-only file, Redis unreachable."""

from __future__ import annotations

import json
import signal
import time

import pytest
from redis_kit import start_node
from test_scaleout_presence import alices_room, eventually, refused_without_key, seen_and_log, who

from conftest import DEADLINE


def said(client, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Wait for the line ending in *text*; return the lines before it."""
    return client.expect_where(lambda line: line.endswith(text), text)


def collect(client, count: int, needle: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The next *count* lines holding *needle* (others skipped)."""
    found: list[str] = []
    while len(found) < count:
        line = client.next_line()
        if needle in line:
            found.append(line)
    return found


def tag(line: str, name: str) -> str:
    """A message tag's value of a tagged line (``@msgid=3;room=#lobby;... text``)."""
    tags = dict(t.split("=", 1) for t in line[1:].split(" ", 1)[0].split(";") if "=" in t)
    return tags[name]


@pytest.fixture
def two_nodes(server_factory, redis_server):  # type: ignore[no-untyped-def]
    return redis_server, start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")


def test_lines_said_on_either_node_reach_both_in_one_order_with_the_same_ids(two_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = two_nodes
    alice, bob = a.connect("alice"), b.connect("bob")
    carol = a.connect("carol")
    for c in (alice, bob, carol):
        c.send("/caps tags")
        c.expect("OK caps tags")
    for i in range(20):
        (alice if i % 2 else bob).send(f"line {i}")
    got = {who: collect(client, 20 if who == "carol" else 10, " line ") for who, client in
           (("carol", carol), ("alice", alice), ("bob", bob))}
    ids = [int(tag(line, "msgid")) for line in got["carol"]]
    assert ids == list(range(ids[0], ids[0] + 20))  # dense, in Redis's order
    order = [line.rsplit(": ", 1)[1] for line in got["carol"]]
    assert [l.rsplit(": ", 1)[1] for l in got["alice"]] == [t for t in order if int(t.split()[1]) % 2 == 0]
    assert [l.rsplit(": ", 1)[1] for l in got["bob"]] == [t for t in order if int(t.split()[1]) % 2 == 1]

    def history(client) -> list[str]:  # type: ignore[no-untyped-def]
        client.send("/history 20")
        return [l for l in client.sync() if "line " in l]

    # (a node has stored its own speaker's last line once Redis sent it back: the other's collect can end first)
    eventually(lambda: len(history(bob)) == 20, "node b's history holding all 20")
    assert history(alice) == history(bob)


def test_history_and_topics_are_the_same_on_every_node(two_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = two_nodes
    alice, bob = a.connect("alice"), b.connect("bob")
    alice.send("/topic plans for today")
    said(bob, "plans for today")
    alice.send("first")
    said(bob, "alice: first")
    late = b.connect("dave")  # joins #lobby on node b: its replay holds node a's lines
    late.send("/history 5")
    history = late.sync()
    assert any(line.endswith("alice: first") for line in history)
    late.send("/topic")
    assert any("plans for today" in line for line in late.sync())


def test_redis_unreachable_the_speaker_gets_error_and_nobody_gets_the_line(two_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = two_nodes
    alice, bob = a.connect("alice"), b.connect("bob")
    alice.send("before")
    said(bob, "alice: before")
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        alice.send("during")
        error = alice.expect_prefix("ERROR not delivered to lobby", timeout=5)
        assert "Redis" in error
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    attempt = reconnected(alice, "after")  # the links come back within the backoff; then lines flow again
    said(bob, f"alice: after {attempt}")
    bob.send("/history 50")  # Redis ran the stalled call after it resumed: too late, it stored nothing
    assert not any("during" in line for line in bob.sync())


def numbered(client, count: int, prefix: str = "alice: n ") -> list[int]:  # type: ignore[no-untyped-def]
    """The numbers of the next *count* lines ``alice: n N`` (other lines skipped)."""
    return [int(line.rsplit(" ", 1)[1]) for line in collect(client, count, prefix)]


@pytest.fixture
def flood_nodes(server_factory, redis_server):  # type: ignore[no-untyped-def]
    """Two nodes without flood control (the tests send bursts)."""
    return (redis_server, start_node(server_factory, redis_server, "a", "--flood-rate", "0"),
            start_node(server_factory, redis_server, "b", "--flood-rate", "0"))


def test_while_redis_is_down_a_topic_is_refused_and_a_rule_change_is_shared_once_it_is_back(two_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = two_nodes
    alice, bob = a.connect("alice"), b.connect("bob")
    alice.send("/register correct-horse-battery")
    alice.expect("OK registered alice; you are logged in")
    eventually(lambda: redis.command("HEXISTS", "chatroom:accounts", "alice") == 1, "the account shared")
    first_hash = json.loads(redis.command("HGET", "chatroom:accounts", "alice"))[1]
    alice.send("/join #den")
    alice.expect_prefix("OK join #den")
    alice.send("/topic plans")
    alice.expect("OK topic")
    bob.send("/join #den")
    bob.expect_prefix("OK join #den")
    bob.send("/part #den")
    redis.stop()
    alice.send("/topic new plans")
    error = alice.expect_prefix("ERROR the topic of den was not changed", timeout=5)
    assert "Redis" in error
    alice.send("/topic")
    assert alice.expect_prefix("* topic of den: ").startswith("* topic of den: plans (set by alice")
    alice.send("/key door")  # a rule: kept here, shared when Redis is back
    alice.expect_prefix("OK key")
    alice.send("/password correct-horse-battery staple-battery-horse")  # so is an account's change
    alice.expect("OK password changed")
    redis.start()
    eventually(lambda: refused_without_key(bob, "#den"), "node b enforcing the key set while Redis was down",
               show=lambda: f"{seen_and_log(bob, b)}\nnode a: {seen_and_log(alice, a)}\n#den's rules in Redis: "
               f"{redis.command('HGET', 'chatroom:{#den}:meta', 'rules')!r}")
    bob.send("/join #den door")
    bob.expect_prefix("OK join #den")
    bob.send("/topic")
    assert bob.expect_prefix("* topic of den: ").startswith("* topic of den: plans (set by alice")
    eventually(lambda: json.loads(redis.command("HGET", "chatroom:accounts", "alice"))[1] != first_hash,
               "node a sharing the password changed while Redis was down")
    guest = b.connect()
    for attempt in range(4):  # node b hears it on ctl or reads it when its links come back (few tries: throttled)
        guest.send("/login alice staple-battery-horse")
        guest.expect_where(lambda l: l.startswith(("OK logged in", "ERROR")), "the login's answer")
        if guest.seen[-1].startswith("OK logged in as alice"):
            break
        time.sleep(1.0)
    assert guest.seen[-1].startswith("OK logged in as alice"), guest.seen[-1]


def test_a_rule_change_whose_connection_drops_before_redis_ran_it_is_shared_once_the_link_is_back(two_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = two_nodes
    alice, bob = a.connect("alice"), b.connect("bob")
    alices_room(alice)
    bob.send("/join #den")  # node b holds #den: it learns the key on ctl
    bob.expect_prefix("OK join #den")
    bob.send("/part #den")
    bob.sync()
    assert redis.command("CLIENT", "PAUSE", "5000", "WRITE") == b"OK"  # Redis holds every write it gets...
    try:
        alice.send("/key door")  # ...node a's share of the key among them (written before alice's OK)
        alice.expect_prefix("OK key")
        (link,) = [c for c in redis.clients() if c.get("name") == "chatroom-a"]
        assert redis.command("CLIENT", "KILL", "ID", link["id"]) == 1  # its connection dropped before Redis ran it
        assert json.loads(redis.command("HGET", "chatroom:{#den}:meta", "rules"))["key"] == ""
    finally:
        redis.command("CLIENT", "UNPAUSE")
    eventually(lambda: refused_without_key(bob, "#den"), "node b enforcing the key whose first share was lost",
               show=lambda: f"{seen_and_log(bob, b)}\nnode a: {seen_and_log(alice, a)}")
    assert json.loads(redis.command("HGET", "chatroom:{#den}:meta", "rules"))["key"] == "door"


def test_an_account_registered_as_its_connection_drops_before_redis_ran_it_logs_in_on_another_node(two_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = two_nodes
    alice = a.connect("alice")
    assert redis.command("CLIENT", "PAUSE", "5000", "WRITE") == b"OK"  # Redis holds every write it gets...
    try:
        alice.send("/register correct-horse-battery")  # ...node a's share of the account among them
        alice.expect("OK registered alice; you are logged in")
        (link,) = [c for c in redis.clients() if c.get("name") == "chatroom-a"]
        assert redis.command("CLIENT", "KILL", "ID", link["id"]) == 1  # its connection dropped before Redis ran it
        assert redis.command("HEXISTS", "chatroom:accounts", "alice") == 0
    finally:
        redis.command("CLIENT", "UNPAUSE")
    eventually(lambda: redis.command("HEXISTS", "chatroom:accounts", "alice") == 1,
               "node a sharing the account again once its link was back", show=lambda: seen_and_log(alice, a))
    eventually(lambda: "account alice shared through Redis again" in a.log_text(), "the recovery logged")
    assert a.log_text().count("account alice could not be shared yet") == 1  # the loss logged once
    alice.send("/quit")
    guest = b.connect()

    def logged_in() -> bool:  # node b heard it when Redis stored it (one script), and node a's alice is gone
        guest.send("/login alice correct-horse-battery")
        guest.expect_where(lambda l: l.startswith(("OK logged in", "ERROR")), "the login's answer")
        return guest.seen[-1] == "OK logged in as alice"

    eventually(logged_in, "alice logs in on node b", show=lambda: seen_and_log(guest, b))


def test_redis_restarted_empty_gets_a_rooms_rules_back_from_the_node_holding_it(two_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = two_nodes
    alice, bob = a.connect("alice"), b.connect("bob")
    alices_room(alice, key="door")
    rules = lambda: redis.command("HGET", "chatroom:{#den}:meta", "rules")  # noqa: E731
    eventually(lambda: rules() is not None and json.loads(rules())["key"] == "door", "the key in Redis")
    redis.restart(empty=True)
    eventually(lambda: rules() is not None and json.loads(rules())["key"] == "door",
               "node a restoring #den's rules when its subscription came back", show=lambda: seen_and_log(alice, a))
    assert refused_without_key(bob, "#den")  # node b never held #den: it takes the chat's rules, never a new room's
    assert json.loads(rules())["owner"] == "alice"


def test_subscriptions_killed_by_redis_mid_burst_recover_every_line_exactly_once(flood_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = flood_nodes
    alice, carol, bob = a.connect("alice"), a.connect("carol"), b.connect("bob")
    for i in range(150):
        alice.send(f"n {i}")
    assert numbered(bob, 10) == list(range(10))
    assert redis.command("CLIENT", "KILL", "TYPE", "pubsub") == 2  # both nodes' subscriptions
    for i in range(150, 300):
        alice.send(f"n {i}")
    assert numbered(bob, 290) == list(range(10, 300))
    assert numbered(carol, 300) == list(range(300))
    bob.send("/history 500")
    assert [int(l.rsplit(" ", 1)[1]) for l in bob.sync() if "alice: n " in l] == list(range(300))


def test_a_tiny_pubsub_output_buffer_limit_drops_subscribers_and_nothing_is_lost(flood_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = flood_nodes
    assert redis.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 4kb 2kb 1") == b"OK"
    alice, bob = a.connect("alice"), b.connect("bob")
    for i in range(400):
        alice.send(f"n {i} " + "x" * 200)
    assert [int(l.split(" ")[2]) for l in collect(bob, 400, "alice: n ")] == list(range(400))
    assert any("overcoming of output buffer limits" in line for line in redis.log)


def reconnected(client, after: str) -> int:  # type: ignore[no-untyped-def]
    """Say ``after N`` until it is not refused (the node's links are back); returns N."""
    deadline = time.monotonic() + DEADLINE
    for attempt in range(10_000):
        client.send(f"{after} {attempt}")
        if not any(line.startswith("ERROR") for line in client.sync()):
            return attempt
        assert time.monotonic() < deadline
        time.sleep(0.05)
    raise AssertionError("never reconnected")


def test_redis_restarted_with_its_append_only_file_loses_nothing_and_ids_go_on(flood_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = flood_nodes
    alice, bob = a.connect("alice"), b.connect("bob")
    for c in (alice, bob):
        c.send("/caps tags")
        c.expect("OK caps tags")
    for i in range(5):
        alice.send(f"n {i}")
    first = [int(tag(line, "msgid")) for line in collect(bob, 5, "alice: n ")]
    redis.restart()
    attempt = reconnected(alice, "after")
    line = collect(bob, 1, f"alice: after {attempt}")[0]
    assert int(tag(line, "msgid")) == first[-1] + 1  # the refused attempts took no id
    bob.send("/history 20")
    assert not any("were lost" in l for l in bob.sync())


def test_redis_restarted_empty_ids_keep_increasing_and_a_node_that_missed_lines_is_told(flood_nodes) -> None:  # type: ignore[no-untyped-def]
    redis, a, b = flood_nodes
    alice, bob, carol = a.connect("alice"), b.connect("bob"), a.connect("carol")
    for i in range(5):
        alice.send(f"n {i}")
    assert numbered(bob, 5) == list(range(5))
    b.proc.send_signal(signal.SIGSTOP)  # node b hears nothing of the next lines...
    try:
        assert redis.command("CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes") == 2  # (nor can it resubscribe)
        for i in range(5, 8):
            alice.send(f"n {i}")
        assert numbered(carol, 8) == list(range(8))  # stored and published (node a delivered them)
        redis.restart(empty=True)  # ...and Redis forgets them before b reads them
    finally:
        b.proc.send_signal(signal.SIGCONT)
    attempt = reconnected(alice, "after")
    lines = bob.expect_where(lambda line: line.endswith(f"alice: after {attempt}"), "the new epoch's line")
    assert "* 3 lines of lobby were lost while the servers' shared store (Redis) restarted" in lines, lines
    alice.send("/caps tags")
    alice.expect("OK caps tags")
    carol.expect_where(lambda line: line.endswith(f"alice: after {attempt}"), "the line back on node a")
    alice.send("/history 1")
    assert int(tag([l for l in alice.sync() if "after" in l][-1], "msgid")) == 9  # above the 8 a knew
    # both nodes registered their members' presence and nick claims again in the empty Redis
    eventually(lambda: redis.command("HLEN", "chatroom:presence") == 3 and redis.command(
        "EXISTS", "chatroom:alive:a", "chatroom:alive:b") == 2, "presence and heartbeats registered again")
    claims = [redis.command("HGET", "chatroom:nicks", n) for n in ("alice", "bob", "carol")]
    assert [c[:2] if c else c for c in claims] == [b"a/", b"b/", b"a/"]
    eventually(lambda: "bob" in who(carol), "node a knows bob again")  # (its mirror follows Redis's presence)
    late = a.connect()
    late.send("/nick bob")
    late.expect("ERROR the nick bob is taken")


def test_a_node_restarted_catches_up_on_what_was_said_while_it_was_down(server_factory, redis_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = start_node(server_factory, redis_server, "a")
    b = start_node(server_factory, redis_server, "b", data_dir=tmp_path / "b")
    alice, bob = a.connect("alice"), b.connect("bob")
    alice.send("before")
    said(bob, "alice: before")
    carol = a.connect("carol")
    assert b.stop() == 0
    for i in range(3):
        alice.send(f"while b was down {i}")
    assert len(collect(carol, 3, "while b was down")) == 3  # stored and published (a delivered them)
    b = start_node(server_factory, redis_server, "b", data_dir=tmp_path / "b")
    dave = b.connect("dave")  # accepted once b has caught up (its doors wait for that): no polling
    dave.send("/history 10")
    history = dave.sync()
    assert [line.split("] ", 1)[1] for line in history if "alice:" in line] == [
        "alice: before", "alice: while b was down 0", "alice: while b was down 1", "alice: while b was down 2"]
    assert not any(line.startswith("alice: ") for line in dave.seen), "old lines came again as live ones"


def test_a_terminal_client_whose_node_is_killed_and_restarted_gets_what_others_said_meanwhile_once(
        server_factory, redis_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from test_e2e_transfer import ClientProcess

    a = start_node(server_factory, redis_server, "a")
    b = start_node(server_factory, redis_server, "b", data_dir=tmp_path / "b")
    alice = ClientProcess(b.port, tmp_path / "alice", "--name", "alice", "--reconnect")
    try:
        bob = a.connect("bob")
        bob.expect_where(lambda line: line == "* alice joined lobby" or line.endswith("is now known as alice"),
                         "alice on node b")
        bob.send("seen live")
        alice.expect("bob: seen live")
        b.proc.send_signal(signal.SIGKILL)  # no goodbye: its members and claims wait for the restart or the TTL
        b.proc.wait()
        alice.expect(lambda line: line.startswith("connection to server lost"))
        bob.send("missed one")
        bob.send("missed two")
        b = start_node(server_factory, redis_server, "b", "--port", str(b.port), data_dir=tmp_path / "b")
        bob.expect_where(lambda line: line == "* alice left lobby (server restarted)", "the old alice gone")
        alice.expect(lambda line: line.endswith("bob: missed two"), timeout=DEADLINE + 5)
        assert any(line.startswith("* reconnected after") for line in alice.out)
        # (as missed lines fetched by id, or live from b's own catch-up if alice asked before it was done)
        bob.send("live again")
        alice.expect("bob: live again")
        for text in ("bob: seen live", "bob: missed one", "bob: missed two", "bob: live again"):
            assert sum(line.endswith(text) for line in alice.out) == 1, text
    finally:
        alice.kill()
