"""The IRC door across ``chatroom-server --redis`` nodes (real redis-server, two real nodes, real TCP).

Who operates a room, who has a voice and who was invited are the same on every node: the first member of a
room operates it everywhere, ``+v`` given on one node lets a member of another speak in a moderated room,
``-v`` silences it again, and an ``INVITE`` to a member of another node lets it into an invite-only room.
A client's catch-up by message id (``draft/chathistory``) works on any node: the ids are the same everywhere."""

from __future__ import annotations

from irc_kit import IrcClient
from redis_kit import start_node

from test_scaleout_presence import eventually


def _irc(node) -> IrcClient:  # type: ignore[no-untyped-def]
    line = next(l for l in node.startup_lines if l.startswith("chatroom-server IRC on "))
    return IrcClient(int(line.strip().rpartition(":")[2]))


def test_operators_voices_and_invitations_reach_the_members_node(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    irc_args = ("--irc-port", "0", "--irc-server-name", "irc.test")
    a = start_node(server_factory, redis_server, "a", *irc_args)
    b = start_node(server_factory, redis_server, "b", *irc_args)
    ivy = _irc(a)
    ivy.register("ivy")
    ivy.send("JOIN #den")
    ivy.expect("JOIN")
    nora = b.connect("nora")  # a guest (no account): her voice is held by member id

    def nora_in_den() -> bool:
        nora.send("/join #den")
        return any(l.startswith(("OK join #den", "ERROR you are in #den")) for l in nora.sync())

    eventually(nora_in_den, "nora joins #den on node b")
    ivy.expect("JOIN", lambda m: (m.source or "").startswith("nora"))
    ivy.send("MODE #den +m")
    ivy.expect("MODE", lambda m: m.params[1:] == ["+m"])

    def silenced() -> bool:
        nora.send("/join #den")
        nora.send("may I?")
        return any(l == "ERROR #den is moderated: only its operators and voiced members speak" for l in nora.sync())

    eventually(silenced, "node b enforcing +m")
    ivy.send("MODE #den +v nora")
    ivy.expect("MODE", lambda m: m.params[1:] == ["+v", "nora"])

    def heard() -> bool:
        nora.send("now with a voice")
        return not any(l.startswith("ERROR #den is moderated") for l in nora.sync())

    eventually(heard, "nora's voice reaching node b")
    ivy.expect("PRIVMSG", lambda m: m.params == ["#den", "now with a voice"])
    ivy.send("MODE #den -v nora")
    ivy.expect("MODE", lambda m: m.params[1:] == ["-v", "nora"])
    eventually(silenced, "nora silenced again on node b")

    iris = _irc(b)  # on node b: sees ivy (node a) as the operator of #den
    iris.register("iris")
    iris.send("NAMES #den")
    assert "@ivy" in iris.expect("353").params[-1].split()
    ivy.send("MODE #den +i")
    ivy.expect("MODE", lambda m: m.params[1:] == ["+i"])

    def refused() -> bool:
        iris.send("JOIN #den")
        return any(m.command == "473" for m in iris.sync())

    eventually(refused, "node b enforcing +i")
    ivy.send("INVITE iris #den")
    ivy.expect("341")
    iris.expect("NOTICE", lambda m: "invites you to #den" in m.params[-1])
    iris.send("JOIN #den")
    answer = iris.next()
    while answer.command not in ("JOIN", "473"):
        answer = iris.next()
    assert answer.command == "JOIN" and answer.params[0] == "#den", answer
    ivy.expect("JOIN", lambda m: (m.source or "").startswith("iris"))
    for client in (ivy, iris):
        client.close()


def test_chathistory_after_a_msgid_seen_on_one_node_works_on_another(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    caps = ("batch", "message-tags", "server-time", "draft/chathistory", "echo-message")
    irc_args = ("--irc-port", "0", "--irc-server-name", "irc.test")
    a = start_node(server_factory, redis_server, "a", *irc_args)
    b = start_node(server_factory, redis_server, "b", *irc_args)
    ivy = _irc(a)
    ivy.register("ivy", *caps)
    ivy.send("JOIN #log")
    ivy.expect("JOIN")
    echoes = []
    for text in ("one", "two", "three", "four"):
        ivy.send(f"PRIVMSG #log :{text}")
        echoes.append(ivy.expect("PRIVMSG", lambda m, t=text: m.params == ["#log", t]))
    seen = echoes[1].tags["msgid"]  # what a client on node a last saw before it moved to node b
    iris = _irc(b)
    iris.register("iris", *caps)
    iris.send("JOIN #log")
    iris.expect("JOIN", lambda m: (m.source or "").startswith("iris"))

    def after() -> list[tuple[str, str]]:
        iris.send(f"CHATHISTORY AFTER #log msgid={seen} 10")
        start = iris.expect("BATCH", lambda m: m.params[1:] == ["chathistory", "#log"])
        lines = iris.until("BATCH", lambda m: m.params[0] == "-" + start.params[0][1:])
        return [(m.params[1], m.tags["msgid"]) for m in lines if m.command == "PRIVMSG"]

    want = [(e.params[1], e.tags["msgid"]) for e in echoes[2:]]
    eventually(lambda: after() == want, "node b's history holding node a's lines with node a's ids")
    for client in (ivy, iris):
        client.close()


def test_a_member_quitting_on_another_node_leaves_the_irc_clients_channels(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a = start_node(server_factory, redis_server, "a", "--irc-port", "0", "--irc-server-name", "irc.test")
    b = start_node(server_factory, redis_server, "b")
    ivy = _irc(a)
    ivy.register("ivy")
    ivy.send("JOIN #lobby")
    ivy.expect("JOIN")
    nora = b.connect("nora")
    ivy.expect("NICK", lambda m: m.params[0] == "nora")
    nora.send("/quit")
    left = ivy.expect("PART", lambda m: (m.source or "").startswith("nora"))
    assert left.params[0] == "#lobby" and "quit" in left.params[-1]
    ivy.send("NAMES #lobby")
    assert "nora" not in [n.lstrip("@+") for n in ivy.expect("353").params[-1].split()]
    ivy.close()


def test_away_set_on_one_node_shows_on_another(server_factory, redis_server) -> None:  # type: ignore[no-untyped-def]
    a = start_node(server_factory, redis_server, "a", "--irc-port", "0", "--irc-server-name", "irc.test")
    b = start_node(server_factory, redis_server, "b", "--irc-port", "0", "--irc-server-name", "irc.test")
    ivy, iris = _irc(a), _irc(b)
    ivy.register("ivy", "away-notify")
    iris.register("iris")
    for client in (ivy, iris):
        client.send("JOIN #den")
        client.expect("JOIN")
    ivy.expect("JOIN", lambda m: (m.source or "").startswith("iris"))
    iris.send("AWAY :at lunch")
    iris.expect("306")
    away = ivy.expect("AWAY", lambda m: (m.source or "").startswith("iris"))
    assert away.params == ["at lunch"]
    ivy.send("WHOIS iris")
    assert ivy.expect("301").params[-1] == "at lunch"
    iris.send("AWAY")
    iris.expect("305")
    assert ivy.expect("AWAY", lambda m: (m.source or "").startswith("iris")).params == []
    for client in (ivy, iris):
        client.close()
