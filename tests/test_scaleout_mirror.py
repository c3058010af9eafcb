"""The mirror of other nodes' members (chatroom/scaleout/presence.py) when what reaches a node comes in another
order than it happened: the subscription (batches, ``ctl``) and the command connection (snapshots of the
presence hash) are two connections, so a snapshot or a rename can be newer than a batch processed after it.
No Redis here: the link is a stub that records the commands and lets the test answer them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from redis_fakes import FakeLink, since

from chatroom.model.errors import Refused
from chatroom.model.hub import Hub
from chatroom.model.member import Member
from chatroom.model.notice import Notice
from chatroom.scaleout.bus import Keys
from chatroom.scaleout.presence import Presence


class StubLink:
    """What Presence uses of a RedisLink: ``call`` (recorded; replies handed back by the test) and ``ready``."""

    ready = True

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], Callable[[Any], None] | None]] = []

    def call(self, *args: Any, on_reply: Callable[[Any], None] | None = None) -> None:
        self.calls.append((args, on_reply))

    def answer(self, command: str, reply: Any) -> None:
        """Answer the oldest unanswered *command* with *reply*."""
        for i, (args, on_reply) in enumerate(self.calls):
            if args[0] == command and on_reply is not None:
                del self.calls[i]
                on_reply(reply)
                return
        raise AssertionError(f"no {command} waiting")


class Timer:
    def cancel(self) -> None:
        pass


def node() -> tuple[Hub, Presence, StubLink]:
    hub = Hub(None)
    link = StubLink()
    presence = Presence(hub, link, Keys("chatroom"), "a", tell=lambda member, line: None,  # type: ignore[arg-type]
                        call_later=lambda *args: Timer())
    return hub, presence, link


class Listener(Member):
    """A local member that keeps what it is sent (``seen``: the line protocol's lines)."""

    def __init__(self, mid: int, nick: str) -> None:
        super().__init__(mid, nick)
        self.seen: list[str] = []

    def deliver(self, data: bytes | memoryview) -> None:
        self.seen.append(bytes(data).decode())


def listening(hub: Hub) -> list[str]:
    """alice, a local member in the lobby; the lines she is sent."""
    alice = Listener(7, "alice")
    hub.add(alice)
    hub.join(alice, hub.default_room)
    return alice.seen


def join(nick: str) -> Any:  # a Notice, which the hub passes as an Entry
    return Notice("#lobby", 0, 0.0, "join", nick, None, f"{nick} joined lobby")


def test_a_join_batch_older_than_a_rename_leaves_the_mirror_its_new_nick() -> None:
    hub, presence, link = node()
    presence.on_control(json.dumps({"k": "nick", "node": "b", "id": 10003, "nick": "bob", "account": None}).encode())
    presence.batch_event(hub.default_room, "b", 10003, join("guest10003"))  # published before the rename
    assert hub.find("bob") is not None and hub.find("guest10003") is None
    assert [m.nick for m in hub.default_room.members.values()] == ["bob"]


def test_a_snapshot_read_before_a_join_does_not_undo_it() -> None:
    hub, presence, link = node()
    presence.resnapshot()
    presence.batch_event(hub.default_room, "b", 10003, join("bob"))  # reached this node first
    link.answer("HGETALL", [])  # read in Redis before bob's record: bob is not in it
    assert [m.nick for m in hub.default_room.members.values()] == ["bob"]
    presence.resnapshot()
    link.answer("HGETALL", [])  # a snapshot asked after the join, without bob: he is gone from Redis
    assert hub.find("bob") is None and not hub.default_room.members


def test_a_snapshot_read_before_a_departure_does_not_bring_the_member_back() -> None:
    hub, presence, link = node()
    presence.batch_event(hub.default_room, "b", 10003, join("bob"))
    presence.resnapshot()
    presence.on_control(json.dumps({"k": "gone", "node": "b", "id": 10003}).encode())
    link.answer("HGETALL", [b"b/10003", json.dumps(["bob", None, ["#lobby"], ""]).encode()])
    assert hub.find("bob") is None and not hub.default_room.members


def test_a_node_taken_for_dead_registers_its_members_again() -> None:
    hub, presence, link = node()

    alice = Member(7, "alice")  # a member of this node
    alice.rooms["#lobby"] = hub.default_room
    hub.members[7] = alice
    presence.ready()  # the link came up: registered, listed
    link.answer("SADD", 1)
    link.calls.clear()
    presence._beat()  # a beat after this process stalled past the TTL...
    link.answer("SADD", 1)  # ...finds that a reaper took it out of the nodes set
    sent = [args for args, _ in link.calls]
    assert ("SET", "chatroom:alive:a", "1", "PX", 3000) in sent
    assert ("HSET", "chatroom:presence", "a/7", json.dumps(["alice", None, ["#lobby"], ""])) in sent
    assert any(args[0] == "EVAL" and "a/7" in args and "alice" in args for args in sent)  # the nick claimed again
    assert sent[-1][0] == "PUBLISH" and json.loads(sent[-1][2])["k"] == "hello"
    link.calls.clear()
    presence._beat()
    link.answer("SADD", 0)  # listed: nothing more
    assert not any(args[0] == "HSET" for args, _ in link.calls)


def test_a_claim_lost_before_the_winners_rename_arrives_leaves_the_nick_to_the_winner_at_once() -> None:
    """Two nodes gave ``racer`` at the same moment and node b's claim ran first in Redis. Node b published
    its member's rename before claiming, but on the subscription: node a can read its own claim's answer
    (``taken``, by ``b/10001``) first. From then on ``racer`` is b/10001's on node a too (a ``/msg racer`` sent
    there reaches it), not unknown until the rename comes; the rename, when it comes, changes nothing."""
    hub, presence, link = node()
    told: list[str] = []
    presence.tell = lambda member, line: told.append(line)
    alice = Member(7, "guest7")
    hub.add(alice)
    presence.batch_event(hub.default_room, "b", 10001, join("guest10001"))  # b's member, known here
    hub.rename(alice, "racer")  # node a's own check passes: nobody here is called racer yet
    link.answer("EVAL", [b"taken", b"b/10001"])  # before b's rename reached this node
    assert told == ["ERROR the nick racer was taken on another server at the same moment: you are guest7 again "
                    "(/nick NAME)"]
    winner = hub.find("racer")
    assert winner is not None and (winner.id, winner.nick) == (10001, "racer")
    assert hub.find("guest10001") is None and alice.nick == "guest7"
    presence.on_control(json.dumps({"k": "nick", "node": "b", "id": 10001, "nick": "racer",
                                    "account": None}).encode())  # the rename, late
    assert hub.find("racer") is winner and sorted(m.nick for m in hub.members.values()) == ["guest7", "racer"]


def test_a_lost_claim_does_not_take_the_winner_back_to_a_nick_it_left_since() -> None:
    """As above, but node a read the winner's rename and its next rename (to ``racer2``) before its own claim's
    answer: the answer is older than what the mirror knows, and changes nothing."""
    hub, presence, link = node()
    presence.tell = lambda member, line: None
    alice = Member(7, "guest7")
    hub.add(alice)
    presence.batch_event(hub.default_room, "b", 10001, join("guest10001"))
    hub.rename(alice, "racer")
    for nick in ("racer", "racer2"):
        presence.on_control(json.dumps({"k": "nick", "node": "b", "id": 10001, "nick": nick,
                                        "account": None}).encode())
    link.answer("EVAL", [b"taken", b"b/10001"])
    assert hub.find("racer") is None and hub.find("racer2") is not None and hub.find("racer2").id == 10001
    assert alice.nick == "guest7"


def test_a_login_without_a_rename_reaches_the_mirror_by_ctl_and_by_snapshot() -> None:
    """``/register`` or ``/login`` under the nick a member has renames nobody: the login itself is shared
    (``login`` on ``ctl``, and the presence record), so other nodes can make it an operator or ban its account."""
    hub, presence, link = node()
    bob = Member(7, "bob")
    hub.add(bob)
    link.calls.clear()
    hub.set_account(bob, "bob")
    sent = [args for args, _ in link.calls]
    assert ("HSET", "chatroom:presence", "a/7", json.dumps(["bob", "bob", [], ""])) in sent
    assert any(args[0] == "PUBLISH" and json.loads(args[2]) == {"k": "login", "id": 7, "account": "bob", "node": "a"}
               for args in sent)
    presence.batch_event(hub.default_room, "b", 10003, join("carol"))  # carol of node b, a guest so far
    presence.on_control(json.dumps({"k": "login", "node": "b", "id": 10003, "account": "carol"}).encode())
    carol = hub.find("carol")
    assert carol is not None and carol.account == "carol"
    presence.batch_event(hub.default_room, "b", 10004, join("dave"))
    presence.resnapshot()  # dave's login missed (the subscription was down): the snapshot has it
    link.answer("HGETALL", [b"b/10003", json.dumps(["carol", "carol", ["#lobby"], ""]).encode(),
                            b"b/10004", json.dumps(["dave", "dave", ["#lobby"], ""]).encode()])
    dave = hub.find("dave")
    assert dave is not None and dave.account == "dave"


def test_a_private_line_to_another_nodes_member_is_refused_or_its_loss_told_never_lost_unsaid() -> None:
    """Redis unreachable: the hub refuses the line (its sender is answered ``ERROR``, not ``OK``). Redis took
    it but nobody listens on the member's node (dead, not reaped yet): the sender is told once Redis says so."""
    hub = Hub(None)
    link = FakeLink()
    told: list[tuple[str, str]] = []
    presence = Presence(hub, link, Keys("chatroom"), "a", tell=lambda m, line: told.append((m.nick, line)),  # type: ignore[arg-type]
                        call_later=link.loop.call_later)
    alice = Member(7, "alice")
    hub.add(alice)
    presence.batch_event(hub.default_room, "b", 10003, join("bob"))
    bob = hub.find("bob")
    assert bob is not None
    link.ready = False
    with pytest.raises(Refused, match="^not delivered to bob: the servers' shared store \\(Redis\\) is unavailable"):
        hub.private("alice", None, bob, "are you there?")
    link.ready = True
    mark = len(link.calls)
    hub.private("alice", None, bob, "hello")
    (call,) = [c for c in since(link, mark) if c.args[:2] == ("PUBLISH", "chatroom:node:b")]
    link.answer(call, 0)  # no subscriber on node b's channel
    assert told == [("alice", "ERROR your private line to bob was not delivered: bob's server is not answering; "
                              "try again")]
    hub.private("alice", None, bob, "hello again")
    link.answer([c for c in link.pending if c.args[:2] == ("PUBLISH", "chatroom:node:b")][0], 1)
    assert len(told) == 1


def test_a_restarted_node_never_heard_before_has_its_previous_lifes_members_announced_as_leaving() -> None:
    """Node b started before this node: its first hello heard here is of its next life (killed, restarted at
    once by a supervisor under the same name; its restart cleared its old members from Redis). The mirrors of
    its old life leave with a line (``quit``: this node cannot tell a restart from a reconnection of a life it never
    heard from): silently dropped, an IRC client kept them in NAMES."""
    hub, presence, link = node()
    seen = listening(hub)
    presence.resnapshot()
    link.answer("HGETALL", [b"b/10003", json.dumps(["bob", None, ["#lobby"], ""]).encode()])
    assert hub.find("bob") is not None
    seen.clear()
    presence.on_control(json.dumps({"k": "hello", "node": "b", "boot": "second-life"}).encode())
    link.answer("HGETALL", [])  # its new life has no members yet
    hub.flush()
    assert hub.find("bob") is None and [m.nick for m in hub.default_room.members.values()] == ["alice"]
    assert "* bob left lobby (quit)\n" in seen


def test_a_node_taken_for_dead_that_comes_back_has_its_members_announced_as_joining_again() -> None:
    """Node b stalled past the TTL (SIGSTOP, a long pause): its members were announced as leaving (``server
    lost``; IRC: PART). When it runs again it registers them and says hello under the same life: they join
    again, said as such (else an IRC client's nick list, which followed the PART, never has them back)."""
    hub, presence, link = node()
    seen = listening(hub)
    bob_record = [b"b/10003", json.dumps(["bob", None, ["#lobby"], ""]).encode()]
    presence.on_control(json.dumps({"k": "hello", "node": "b", "boot": "life1"}).encode())
    link.answer("HGETALL", bob_record)
    presence.on_control(json.dumps({"k": "dead", "node": "c", "dead": "b"}).encode())
    assert hub.find("bob") is None and seen[-1] == "* bob left lobby (server lost)\n"
    presence.on_control(json.dumps({"k": "hello", "node": "b", "boot": "life1"}).encode())  # back, same life
    link.answer("HGETALL", bob_record)
    hub.flush()
    assert hub.find("bob") is not None and seen[-1] == "* bob joined lobby\n"
    seen.clear()
    presence.on_control(json.dumps({"k": "hello", "node": "b", "boot": "life1"}).encode())  # a reconnection
    link.answer("HGETALL", bob_record)
    hub.flush()
    assert seen == []  # nothing to say: bob never left


def test_ctx_private_to_an_unreachable_member_refuses_in_a_command_and_is_false_in_a_hook() -> None:
    """A plugin's private line to another node's member while Redis is away: a command's caller is answered
    ``ERROR`` (Refused, as ``/msg``); a hook or a timer gets False, never an exception that counts as its fault."""
    from chatroom.plugins.commands import Command
    from chatroom.plugins.context import Context

    hub = Hub(None)
    link = FakeLink()
    Presence(hub, link, Keys("chatroom"), "a", tell=lambda m, line: None,  # type: ignore[arg-type]
             call_later=link.loop.call_later)
    sender = Member(7, "alice")
    hub.add(sender)
    hub.join(sender, hub.default_room)
    hub.fanout.bus = None

    class Host:
        loop_thread = None

        def find_client(self, nick: str) -> Member | None:
            return hub.find(nick)

        def private(self, member: Member, target: Member, text: str, *, notice: bool = False) -> bool:
            hub.private(member.nick, member.account, target, text, notice=notice)
            return True

    presence = hub.observer.__self__  # type: ignore[union-attr]
    presence.batch_event(hub.default_room, "b", 10003, join("bob"))
    link.ready = False
    hook = Context(Host(), "bot", sender)  # type: ignore[arg-type]
    assert hook.private("bob", "hello") is False
    command = Context(Host(), "bot", sender, "", Command("greet", lambda ctx, args: None, plugin="bot"))  # type: ignore[arg-type]
    with pytest.raises(Refused, match="^not delivered to bob"):
        command.private("bob", "hello")
