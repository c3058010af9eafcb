"""An operator's review of ``chatroom-server --redis`` (real redis-server, real nodes, real TCP): what members
on different nodes do to each other, and what a speaker is told while Redis is away.

- a member who logs in (``/register``, ``/login``) under the nick it already has is logged in on every node:
  an operator on another node can make it an operator, ban its account (it is put out on its own node), and
  ``/op`` is refused to nobody for "not logged in";
"""

from __future__ import annotations

from redis_kit import start_node

from test_scaleout_presence import alices_room, eventually, who


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

