"""Presence across ``chatroom-server --redis`` nodes over real TCP: who is where on every node, private lines
between nodes, guest numbers unique across nodes, a SIGKILLed node's members announced as leaving within the
stated TTL and its nick claims released, and a 20-round race of two nodes claiming one nick."""

from __future__ import annotations

import json
import signal
import time

from redis_kit import start_node

from conftest import DEADLINE

TTL_BOUND = 3.0 + 1.0 + 2.0  # chatroom.scaleout.presence: TTL + BEAT, and the reaper's own beat


def who(client, room: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    client.send(f"/who {room}".strip())
    line = client.expect_where(lambda l: l.startswith("* ") and " in " in l and ":" in l, "/who")
    reply = client.seen[-1]
    return sorted(reply.split(": ", 1)[1].split(", ")) if ": " in reply else []


def refused_without_key(client, room: str) -> bool:  # type: ignore[no-untyped-def]
    """Does *client*'s node refuse it *room* without a key? (Let in before the rules reached it: out again.)"""
    client.send(f"/join {room}")
    lines = client.sync()
    if any(l.startswith(f"OK join {room}") for l in lines):
        client.send(f"/part {room}")
        client.sync()
    return any(l == f"ERROR {room} needs a key: /join {room} KEY" for l in lines)


def alices_room(alice, key: str = "", room: str = "#den") -> None:  # type: ignore[no-untyped-def]
    """*alice* registers (password ``correct-horse-battery``) and creates *room*, which she owns, keyed with *key*."""
    alice.send("/register correct-horse-battery")
    alice.expect("OK registered alice; you are logged in")
    alice.send(f"/join {room}")
    alice.expect_prefix(f"OK join {room}")
    if key:
        alice.send(f"/key {key}")
        alice.expect_prefix("OK key")


def eventually(check, what: str, timeout: float = DEADLINE, *, show=None) -> None:  # type: ignore[no-untyped-def]
    """Poll ``check()`` every 50 ms until it is true; past *timeout* seconds fail saying *what*, and what
    ``show()`` returns (the lines a client got, a node's log...) when given."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}" + (f"; {show()}" if show is not None else "")
        time.sleep(0.05)


def seen_and_log(client, node) -> str:  # type: ignore[no-untyped-def]
    """For a failed :func:`eventually`: *client*'s last lines and the tail of *node*'s log."""
    return f"last lines: {client.seen[-6:]}; log of the node:\n{node.log_text()[-2000:]}"


def test_who_and_private_lines_across_nodes_and_guest_numbers_unique(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    guests = [a.raw_client(), b.raw_client(), a.raw_client(), b.raw_client()]
    numbers = [g.next_line().split(" You are ")[1].split(".")[0] for g in guests]
    assert len(set(numbers)) == 4, numbers
    alice, bob = a.connect("alice"), b.connect("bob")
    eventually(lambda: "bob" in who(alice) and "alice" in who(bob), "both see both")
    assert who(alice) == who(bob)
    alice.send("/msg bob psst")
    alice.expect("OK sent to bob")
    bob.expect("alice (private): psst")
    bob.send("/msg alice back")
    alice.expect("bob (private): back")
    bob.send("/nick robert")
    bob.expect("OK nick robert")
    alice.expect_where(lambda l: l == "* bob is now known as robert", "the rename")
    eventually(lambda: "robert" in who(alice), "robert on a")
    alice.send("/nick robert")
    alice.expect("ERROR the nick robert is taken")
    alice.send("/join #side")
    bob.send("/join #side")
    alice.expect_where(lambda l: "robert joined" in l, "robert joins #side")
    eventually(lambda: who(alice, "#side") == ["alice", "robert"], "#side on a")
    bob.send("/quit")
    alice.expect_where(lambda l: l.startswith("* robert left side"), "robert leaves")
    eventually(lambda: "robert" not in who(alice, "#lobby"), "robert gone from a")


def test_a_sigkilled_node_leaves_every_other_node_within_the_ttl_and_frees_its_nicks(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    alice, bob = a.connect("alice"), b.connect("bob")
    eventually(lambda: "bob" in who(alice), "bob on a")
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    killed = time.monotonic()
    alice.expect_where(lambda l: l == "* bob left lobby (server lost)", "bob's leave", timeout=TTL_BOUND + 2)
    assert time.monotonic() - killed < TTL_BOUND
    assert who(alice) == ["alice"]
    newcomer = a.connect("bob")  # the dead node's claim is gone
    assert newcomer is not None
    assert redis_server.command("HGET", "chatroom:nicks", "bob").startswith(b"a/")


def test_a_node_stalled_past_the_ttl_is_taken_for_dead_then_its_members_come_back(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    alice, bob = a.connect("alice"), b.connect("bob")
    eventually(lambda: "bob" in who(alice), "bob on a")
    b.proc.send_signal(signal.SIGSTOP)  # alive, but silent: no heartbeat
    try:
        alice.expect_where(lambda l: l == "* bob left lobby (server lost)", "bob's leave", timeout=TTL_BOUND + 2)
    finally:
        b.proc.send_signal(signal.SIGCONT)
    eventually(lambda: "bob" in who(alice), "bob back on a once node b runs again")
    eventually(lambda: "* bob joined lobby" in alice.seen or "* bob joined lobby" in alice.sync(),
               "bob's return told on node a")  # (told he left: told he is back, as an IRC client's JOIN)
    bob.send("still here")
    alice.expect_where(lambda l: l.endswith("bob: still here"), "bob's line")
    newcomer = a.connect()
    newcomer.send("/nick bob")
    newcomer.expect_prefix("ERROR ")  # taken, or claimed on another server at the same moment: never two bobs
    assert redis_server.command("HGET", "chatroom:nicks", "bob").startswith(b"b/")


def test_two_nodes_racing_for_one_nick_twenty_times_end_with_exactly_one_holder(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    left, right, watch = a.connect(), b.connect(), a.connect("watcher")
    for round_ in range(20):
        nick = f"racer{round_}"
        left.send(f"/nick {nick}")
        right.send(f"/nick {nick}")
        answers = [left.expect_where(lambda l: l.startswith(("OK nick", "ERROR")), "left's answer"),
                   right.expect_where(lambda l: l.startswith(("OK nick", "ERROR")), "right's answer")]
        answers = [c.seen[-1] for c in (left, right)]
        holders = [c for c, line in zip((left, right), answers) if line == f"OK nick {nick}"]
        assert holders, answers  # one of them at least took it locally

        def settled() -> bool:
            names = who(watch)
            return names.count(nick) == 1 and sum(1 for n in names if n.startswith("racer")) <= 2

        def state() -> str:
            return (f"round {round_}: answers {answers}; watcher's /who {who(watch)}; claims "
                    f"{redis_server.command('HGETALL', 'chatroom:nicks')}; left {left.received()}; "
                    f"right {right.received()}; log of a:\n{a.log_text()[-1500:]}\nlog of b:\n{b.log_text()[-1500:]}")

        eventually(settled, f"one {nick}", show=state)
        owner = (redis_server.command("HGET", "chatroom:nicks", nick) or b"").decode()
        assert owner.split("/")[0] in ("a", "b"), state()
        winner, loser = (right, left) if owner.startswith("b/") else (left, right)
        if len(holders) == 2:  # both passed their node's check: the claim's loser is told and renamed
            loser.expect_where(lambda l: l.startswith(f"ERROR the nick {nick} was taken on another server"),
                               "the loser told")
        for sender in (watch, loser):  # on both nodes, the nick reaches its one holder
            sender.send(f"/msg {nick} hello {round_}")
            sender.expect_where(lambda l: l.startswith(("OK sent to", "ERROR")), "the /msg answer")
            answer = sender.seen[-1]
            assert answer == f"OK sent to {nick}", f"{'watcher' if sender is watch else 'loser'}: {state()}"
            winner.expect_where(lambda l: l.endswith(f"(private): hello {round_}"), "the private line")


def test_a_file_offered_on_one_node_is_refused_to_the_others_with_a_clear_message(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    alice, carol, bob = a.connect("alice", binary=True), a.connect("carol", binary=True), b.connect("bob", binary=True)
    eventually(lambda: "bob" in who(alice) and "carol" in who(bob), "all three everywhere")
    alice.send("/sendfile notes.txt 3")
    notice = ('* "notes.txt" reaches only the members on alice\'s server: files are not relayed between servers '
              '(1 in lobby are on others)')
    bob.expect_where(lambda l: l == '* alice is sending "notes.txt" (3 bytes)', "the offer's notice")
    bob.expect(notice)
    before = alice.expect_where(lambda l: l == notice, "the sender told too")
    assert any(l.startswith("OK sendfile ") for l in before)  # carol, on alice's node, gets it as ever


def test_a_web_page_on_one_node_and_nc_on_another_are_one_room(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    import re

    from web_kit import WSClient, close_all

    a = start_node(server_factory, redis_server, "a", "--web-port", "0")
    b = start_node(server_factory, redis_server, "b")
    host, port = re.search(r"web http://([^:/]+):(\d+)/", "".join(a.startup_lines)).groups()  # type: ignore[union-attr]
    nc = b.connect("nora")
    browser = WSClient(host, int(port))
    try:  # (WSClient.opened keeps every client until close_all: unclosed, its socket warned at the session's end)
        browser.send("/nick wendy")
        browser.expect_line("OK nick wendy")
        nc.expect_where(lambda line: line.endswith(" is now known as wendy"), "the rename on node b")
        browser.send("hello from the page")
        nc.expect("wendy: hello from the page")
        nc.send("hello from nc")
        event = browser.expect("msg", nick="nora")
        assert (event["room"], event["text"]) == ("#lobby", "hello from nc") and isinstance(event["id"], int)
        nc.send("/who")
        assert nc.expect_prefix("* 2 in lobby: ") in ("* 2 in lobby: nora, wendy", "* 2 in lobby: wendy, nora")
    finally:
        close_all()


def test_room_rules_are_the_same_on_every_node_and_a_kick_reaches_the_members_node(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    alice, bob = a.connect("alice"), b.connect("bob")
    alice.send("/register correct-horse-battery")
    alice.expect("OK registered alice; you are logged in")
    alice.send("/join #den")  # a logged-in creator owns the room
    alice.expect_prefix("OK join #den")
    alice.send("/key door")
    alice.expect("OK key set")

    eventually(lambda: refused_without_key(bob, "#den"), "node b enforcing node a's key",
               show=lambda: seen_and_log(bob, b))
    bob.send("/join #den door")
    bob.expect_prefix("OK join #den (2 members)")
    eventually(lambda: who(alice, "#den") == ["alice", "bob"], "bob in #den on node a")
    alice.send("/kick bob")
    alice.expect("OK kick bob")
    bob.expect_where(lambda l: l == "* alice kicked bob from den", "bob told he was kicked")
    bob.send("/who #den")
    assert bob.expect_prefix("ERROR ") == "ERROR #den has a key: only its members can read it (/join #den KEY)"
    eventually(lambda: who(alice, "#den") == ["alice"], "bob out of #den on a")
    bob.send("/join #lobby")
    bob.send("hello from lobby")  # bob's current room is no longer #den on his node
    alice.expect_where(lambda l: l == "[#lobby] bob: hello from lobby" or l == "bob: hello from lobby", "bob in lobby")
    assert sum(l == "* alice kicked bob from den" for l in bob.sync()) == 0  # told once


def test_a_node_that_never_held_a_room_takes_its_rules_from_redis_when_a_member_creates_it(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a = start_node(server_factory, redis_server, "a")
    alice = a.connect("alice")
    alices_room(alice, key="door")
    alice.send("/part #den")  # #den is quiet: a node started now does not hold it
    alice.expect_prefix("OK part")
    b = start_node(server_factory, redis_server, "b")
    bob = b.connect("bob")
    bob.send("/register staple-battery-horse")
    bob.expect("OK registered bob; you are logged in")
    bob.send("/join #den")  # node b creates it, as its first member's (bob's) room...
    bob.expect_where(lambda l: l == "ERROR #den needs a key: /join #den KEY", "the key from Redis", timeout=3)
    rules = json.loads(redis_server.command("HGET", "chatroom:{#den}:meta", "rules"))
    assert rules["owner"] == "alice" and rules["key"] == "door"  # ...never taking it over
    bob.send("/join #den door")
    bob.expect_prefix("OK join #den")
    eventually(lambda: who(alice, "#den") == ["bob"], "bob in #den on node a")


def test_an_account_registered_on_one_node_logs_in_on_another(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    alice = a.connect("alice")
    alice.send("/register correct-horse-battery")
    alice.expect("OK registered alice; you are logged in")
    alice.send("/quit")
    guest = b.connect()

    def logged_in() -> bool:  # once node b has the account (and node a's alice is gone)
        guest.send("/login alice correct-horse-battery")
        lines = guest.expect_where(lambda l: l.startswith(("OK logged in", "ERROR")), "the login's answer")
        return guest.seen[-1] == "OK logged in as alice"

    eventually(logged_in, "alice logs in on node b")
    other = b.connect()
    other.send("/nick alice")
    assert other.expect_prefix("ERROR") in ("ERROR the nick alice is taken", "ERROR alice is registered; /login alice PASSWORD")
    assert redis_server.command("HEXISTS", "chatroom:accounts", "alice") == 1


def test_an_irc_client_on_one_node_and_nc_on_another_are_one_channel(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    from irc_kit import IrcClient

    a = start_node(server_factory, redis_server, "a", "--irc-port", "0", "--irc-server-name", "irc.test")
    b = start_node(server_factory, redis_server, "b")
    line = next(l for l in a.startup_lines if l.startswith("chatroom-server IRC on "))
    irc = IrcClient(int(line.strip().rpartition(":")[2]))
    irc.register("ivy")
    irc.send("JOIN #lobby")
    irc.expect("JOIN")
    nora = b.connect("nora")
    irc.expect("JOIN", lambda m: m.source is not None and m.source.startswith("guest"))  # a join on node b
    irc.expect("NICK", lambda m: m.params[0] == "nora")
    nora.send("hello from nc")
    msg = irc.expect("PRIVMSG")
    assert msg.params == ["#lobby", "hello from nc"] and msg.source.startswith("nora")  # type: ignore[union-attr]
    irc.send("PRIVMSG #lobby :hello from irc")
    nora.expect("ivy: hello from irc")
    irc.send("NAMES #lobby")
    names = irc.expect("353").params[-1].split()
    assert {"ivy", "nora"} <= {n.lstrip("@+") for n in names}
    irc.send("PRIVMSG nora :psst")
    nora.expect("ivy (private): psst")
    irc.close()
