"""An operator's review of ``chatroom-server --redis`` (real redis-server, real nodes, real TCP): what members
on different nodes do to each other, and what a speaker is told while Redis is away.

- a member who logs in (``/register``, ``/login``) under the nick it already has is logged in on every node:
  an operator on another node can make it an operator, ban its account (it is put out on its own node), and
  ``/op`` is refused to nobody for "not logged in";
- a private line to a member of another node while Redis is unreachable is refused to its sender
  (``ERROR not delivered to NICK ...``), on the line protocol and on the IRC door, never answered ``OK`` and
  lost; once Redis is back it goes through;
- a second process started under a running node's ``--node`` name is refused (exit 2, one line).
"""

from __future__ import annotations

import signal
import subprocess

from redis_kit import start_node

from conftest import DEADLINE
from test_scaleout_irc import _irc
from test_scaleout_presence import alices_room, eventually, who


def redis_down(redis, node) -> None:  # type: ignore[no-untyped-def]
    """Kill *redis* and wait until *node* found its connection lost (a command sent in the moment before is
    answered OK, then told that it may not have been delivered: its outcome is unknown)."""
    redis.kill()
    eventually(lambda: any("(commands): " in l and l.endswith("; reconnecting") for l in node.log_text().splitlines()),
               "the loss seen", show=lambda: node.log_text()[-800:])


def refused(client, command: str, ok: str, error: str) -> None:  # type: ignore[no-untyped-def]
    """*command* sent by *client* until it is answered with a line starting *error*; never *ok*."""
    def answered() -> bool:
        client.send(command)
        replies = client.sync()
        assert ok not in replies, f"{command}: answered {ok!r} while Redis is down"
        return any(l.startswith(error) for l in replies)

    eventually(answered, f"{command} refused while Redis is down", show=lambda: client.seen[-4:])


def test_a_member_logged_in_under_its_own_nick_on_another_node_can_be_made_operator_and_banned(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    alice, bob = a.connect("alice"), b.connect("bob")
    alices_room(alice)  # alice owns #den (node a)
    bob.send("/register bobs-password-1")  # his nick does not change: only his account does
    bob.expect("OK registered bob; you are logged in")
    bob.send("/join #den")
    bob.expect_prefix("OK join #den")
    eventually(lambda: who(alice, "#den") == ["alice", "bob"], "bob in #den on node a")

    def made_operator() -> bool:
        alice.send("/op bob")
        return "OK op bob" in alice.sync()

    eventually(made_operator, "alice makes bob (logged in on node b) an operator", show=lambda: alice.seen[-4:])
    bob.expect_where(lambda l: l == "* alice made bob an operator of den", "bob told on node b")
    alice.send("/deop bob")
    alice.expect("OK deop bob")
    alice.send("/ban bob")
    alice.expect("OK ban bob")  # by account: it holds on every node
    bob.expect_where(lambda l: l.startswith("* bob is banned from"), "bob put out on node b")
    eventually(lambda: who(alice, "#den") == ["alice"], "bob out of #den on node a")
    bob.send("/join #den")
    bob.expect("ERROR you are banned from #den")


def test_a_private_line_to_another_node_while_redis_is_down_is_refused_not_lost(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a = start_node(server_factory, redis_server, "a", "--irc-port", "0", "--irc-server-name", "irc.test")
    b = start_node(server_factory, redis_server, "b")
    alice, bob = a.connect("alice"), b.connect("bob")
    ivy = _irc(a)
    ivy.register("ivy")
    eventually(lambda: "bob" in who(alice), "bob on node a")
    redis_down(redis_server, a)
    refused(alice, "/msg bob are you there?", "OK sent to bob",
            "ERROR not delivered to bob: the servers' shared store (Redis) is unavailable")
    ivy.send("PRIVMSG bob :and from IRC?")
    ivy.expect("NOTICE", lambda m: m.params[-1].startswith("ERROR not delivered to bob: the servers' shared "
                                                           "store (Redis) is unavailable"))
    ivy.close()
    redis_server.start()  # (until node b's subscription is back too, a line to bob reaches nobody: alice is told)
    eventually(lambda: all("(subscription) is back" in n.log_text() for n in (a, b)), "both nodes back")

    def delivered() -> bool:
        alice.send("/msg bob back again")
        return "OK sent to bob" in alice.sync()

    eventually(delivered, "alice's private line sent once Redis is back")
    bob.expect("alice (private): back again")
    assert not any("are you there" in l for l in bob.seen)
    log = a.log_text().splitlines()  # each of the node's two connections says, once, that it was lost and is back
    for link in ("commands", "subscription"):
        where = f"Redis at unix:{redis_server.socket_path} ({link})"
        assert len([l for l in log if f"[ERROR] chatroom.server: {where}: " in l and "; reconnecting" in l]) == 1, log
        assert len([l for l in log if l.endswith(f"[GENERAL] chatroom.server: {where} is back")]) == 1, log


def test_a_second_process_with_a_running_nodes_name_exits_2_and_leaves_that_node_alone(server_factory, redis_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two processes under one ``--node`` name (a copied command line; containers sharing a host name with PID 1)
    would each take the other's members for a previous life of their own: cleared from Redis, nicks claimable
    twice. The second is refused at start-up; a name whose node is dead (its heartbeat not refreshed) is taken."""
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    alice, bob = a.connect("alice"), b.connect("bob")
    eventually(lambda: "alice" in who(bob), "alice on node b")
    done = subprocess.run(["chatroom-server", "--port", "0", "--web-port", "off", "--data-dir", str(tmp_path / "a2"),
                           "--redis", redis_server.url, "--node", "a"], capture_output=True, text=True,
                          timeout=DEADLINE)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "chatroom-server: error: the node name a is in use: a running chatroom-server shares rooms under "
        "--node a through this Redis (its heartbeat is alive); give each process its own --node"]
    assert redis_server.command("HGET", "chatroom:nicks", "alice").startswith(b"a/")
    alice.send("still one alice")
    bob.expect("alice: still one alice")
    a.proc.send_signal(signal.SIGKILL)  # dead: its name is free at once for its supervisor's restart
    a.proc.wait()
    start_node(server_factory, redis_server, "a")
    bob.expect_where(lambda l: l == "* alice left lobby (quit)", "node a's previous life cleared")


def test_guest_numbers_stay_unique_after_redis_restarted_empty(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    """Redis restarted empty loses the counter of member ids (``chatroom:ids``): a node that reserves a block then
    (started, restarted, or past half of its block) began again at 1, giving ids, and guest nicks, that the other
    nodes' members hold (the other node's mirror of one replaced its own member of that id)."""
    a, b = start_node(server_factory, redis_server, "a"), start_node(server_factory, redis_server, "b")
    first = a.raw_client()
    number = first.next_line().split(" You are ")[1].split(".")[0]  # guestN of node a's first block
    redis_server.restart(empty=True)
    eventually(lambda: redis_server.command("HLEN", "chatroom:presence") == 1, "node a registered again",
               show=lambda: a.log_text()[-1500:])
    b.stop()
    b = start_node(server_factory, redis_server, "b")
    guests = [b.raw_client() for _ in range(3)]
    numbers = [g.next_line().split(" You are ")[1].split(".")[0] for g in guests]
    assert number not in numbers, (number, numbers)
    eventually(lambda: sorted(who(first)) == sorted([number, *numbers]), "node a sees four guests, one of each")


def test_a_kick_of_another_nodes_member_while_redis_is_down_is_refused_not_undone_unsaid(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    """A kick its member's node cannot hear (Redis unreachable) was answered ``OK kick``, took the member out of
    the room on the kicker's node only, and was undone without a word when Redis came back (the member's node
    registered it again, in the room). Now it is refused, on the line protocol and on the IRC door; so is an IRC
    ``INVITE`` of such a member (answered 341 and lost before)."""
    irc_args = ("--irc-port", "0", "--irc-server-name", "irc.test")
    a, b = start_node(server_factory, redis_server, "a", *irc_args), start_node(server_factory, redis_server, "b")
    alice, bob = a.connect("alice"), b.connect("bob")
    alices_room(alice)
    bob.send("/register bobs-password-1")
    bob.expect("OK registered bob; you are logged in")
    bob.send("/join #den")
    bob.expect_prefix("OK join #den")
    eventually(lambda: who(alice, "#den") == ["alice", "bob"], "bob in #den on node a")
    ivy = _irc(a)
    ivy.register("ivy")
    ivy.send("JOIN #irc")  # an unowned room: its first member operates it
    ivy.expect("JOIN")
    ivy.send("JOIN #irc2")
    ivy.expect("JOIN", lambda m: m.params[0] == "#irc2")
    bob.send("/join #irc")
    ivy.expect("JOIN", lambda m: (m.source or "").startswith("bob"))
    redis_down(redis_server, a)
    refused(alice, "/kick bob go", "OK kick bob",
            "ERROR bob was not kicked from den: the servers' shared store (Redis) is unavailable")
    assert who(alice, "#den") == ["alice", "bob"]
    alice.send("/ban bob")  # the ban holds (shared when Redis is back); that bob could not be put out is said
    said = [l for l in alice.sync() if "bob" in l]
    assert len(said) == 2 and said[1] == "OK ban bob", said
    assert said[0].startswith("* bob was not kicked from den: the servers' shared store (Redis) is unavailable")
    ivy.send("KICK #irc bob :go")
    ivy.expect("NOTICE", lambda m: m.params[-1].startswith("ERROR bob was not kicked from irc: the servers' shared "
                                                           "store (Redis) is unavailable"))
    ivy.send("INVITE bob #irc2")  # (an invitation its node never gets: refused too, never 341 and lost)
    ivy.expect("NOTICE", lambda m: m.params[-1].startswith("ERROR bob was not invited to #irc2: the servers' "
                                                           "shared store (Redis) is unavailable"))
    ivy.close()
    redis_server.start()
    eventually(lambda: all("(subscription) is back" in n.log_text() for n in (a, b)), "both nodes back")

    def kicked() -> bool:  # once Redis is back (node a's link too), it works, and holds
        alice.send("/kick bob go")
        return "OK kick bob" in alice.sync()

    eventually(kicked, "the kick done once Redis is back", show=lambda: alice.seen[-4:])
    bob.expect_where(lambda l: l == "* alice kicked bob from den (go)", "bob kicked on node b")
    eventually(lambda: who(alice, "#den") == ["alice"], "bob out of #den on node a")
