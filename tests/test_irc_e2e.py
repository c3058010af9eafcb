"""The IRC door end to end: the real ``chatroom-server --irc-port 0``, raw IRC over TCP beside line-protocol
clients (what ``nc`` speaks) in the same rooms, with the same rules."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from irc_kit import IrcClient, start_irc


@pytest.fixture
def irc(server_factory: Any) -> Any:
    server = start_irc(server_factory)
    clients: list[IrcClient] = []

    def connect(nick: str | None = None, *caps: str) -> IrcClient:
        client = IrcClient(server.irc_port)
        clients.append(client)
        if nick:
            client.register(nick, *caps)
        return client

    server.irc = connect
    yield server
    for client in clients:
        client.close()


def test_registration_welcome_isupport_and_no_automatic_join(irc: Any) -> None:
    lobby = irc.connect("bob")  # a line-protocol member of #lobby
    alice = irc.irc()
    welcome = alice.register("alice")
    commands = [m.command for m in welcome]
    for code in ("001", "002", "003", "004", "005", "251", "422"):
        assert code in commands
    assert welcome[0].source == "irc.test" and welcome[0].params[0] == "alice"
    tokens = {t.split("=")[0]: t.partition("=")[2] for m in welcome if m.command == "005" for t in m.params[1:-1]}
    assert tokens["NICKLEN"] == "32" and tokens["CASEMAPPING"] == "ascii" and tokens["LINELEN"] == "512"
    assert tokens["CHANTYPES"] == "#" and tokens["PREFIX"] == "(ov)@+" and "TARGMAX" in tokens and "WHOX" in tokens
    assert not any(m.command in ("JOIN", "NOTICE") for m in alice.sync())  # no welcome line, no #lobby
    lobby.send("/who")
    lobby.expect("* 1 in lobby: bob")  # alice never joined the default room


def test_nick_rules_are_the_same_for_every_door(irc: Any) -> None:
    irc.connect("bob")
    alice = irc.irc()
    alice.send("NICK b@d")
    assert alice.expect("432").params[1] == "b@d"
    alice.send("NICK BOB")  # taken by a line-protocol member: one case mapping for everyone
    assert alice.expect("433").params[1] == "BOB"
    alice.send("NICK b0b")  # too like bob: the look-alike rule too
    alice.expect("433")
    alice.register("alice")


def test_irc_and_line_members_talk_in_one_room(irc: Any) -> None:
    bob = irc.connect("bob")
    bob.send("/join #chat")
    bob.expect_prefix("OK join #chat")
    alice = irc.irc("alice")
    alice.send("JOIN #chat")
    assert alice.expect("JOIN").params == ["#chat"]
    names = alice.expect("353")
    assert set(names.params[-1].split()) == {"@bob", "alice"}  # bob made the room: its operator
    bob.expect("* alice joined chat")
    alice.send("PRIVMSG #chat :hello from irc")
    bob.expect("alice: hello from irc")
    bob.send("hello from nc")
    msg = alice.expect("PRIVMSG")
    assert msg.params == ["#chat", "hello from nc"] and msg.source.startswith("bob!")
    alice.send("PRIVMSG #chat :\x01ACTION waves\x01")  # /me
    bob.expect("* alice waves")
    bob.send("/me nods")
    assert alice.expect("PRIVMSG").params == ["#chat", "\x01ACTION nods\x01"]
    alice.send("TOPIC #chat :irc topic")
    assert alice.expect("TOPIC").params == ["#chat", "irc topic"]  # the setter hears it too
    bob.expect("* alice set the topic of chat: irc topic")
    bob.send("/topic nc topic")
    assert alice.expect("TOPIC").params == ["#chat", "nc topic"]
    alice.send("PRIVMSG bob :psst")  # private lines both ways
    bob.expect("alice (private): psst")
    bob.send("/msg alice hi back")
    assert alice.expect("PRIVMSG").params == ["alice", "hi back"]
    alice.send("PART #chat :later")
    bob.expect("* alice left chat (later)")


def test_chat_to_a_channel_does_not_switch_rooms_for_other_doors(irc: Any) -> None:
    bob = irc.connect("bob")
    for room in ("#one", "#two"):
        bob.send(f"/join {room}")
        bob.expect_prefix(f"OK join {room}")
    alice = irc.irc("alice")
    alice.send("JOIN #one,#two")
    alice.expect("366", lambda m: m.params[1] == "#two")
    alice.send("PRIVMSG #one :to one")
    alice.send("PRIVMSG #two :to two")
    bob.expect("[#one] alice: to one")  # bob's current room is #two
    bob.expect("alice: to two")


def test_kick_mode_and_quit_reach_every_door(irc: Any) -> None:
    alice = irc.irc("alice")
    alice.send("JOIN #ops")
    assert "@alice" in alice.expect("353").params[-1]  # the first member operates an unowned room
    bob = irc.connect("bob")
    bob.send("/join #ops")
    bob.expect_prefix("OK join #ops")
    carol = irc.irc("carol")
    carol.send("JOIN #ops")
    carol.expect("366")
    alice.send("MODE #ops +k door")
    assert alice.expect("MODE").params == ["#ops", "+k", "door"]
    bob.expect("* alice set a key on ops: /join #ops KEY")
    alice.send("KICK #ops bob :enough")
    kick = carol.expect("KICK")
    assert kick.params == ["#ops", "bob", "enough"] and kick.source.startswith("alice!")
    bob.expect("* alice kicked bob from ops (enough)")  # the line member is told, as /kick tells it
    bob.send("/join #ops")
    bob.expect("ERROR #ops needs a key: /join #ops KEY")  # one room rule for every door
    bob.send("/join #ops door")
    bob.expect_prefix("OK join #ops")
    carol.send("JOIN #other")
    carol.expect("366")
    alice.send("JOIN #other")
    alice.expect("366")
    alice.send("QUIT :bye")
    alice.expect("ERROR")
    quits = [m for m in carol.sync() if m.command in ("QUIT", "PART")]
    assert [(m.command, m.params) for m in quits] == [("QUIT", ["Quit: bye"])]  # once, though two rooms shared
    bob.expect("* alice left ops (bye)")


def test_an_invite_from_irc_lets_a_line_member_in_once(irc: Any) -> None:
    """An invitation is the model's, whatever the invited member's door: INVITE from an IRC operator lets a
    line-protocol member past the key and invite-only once (it said so, and /join must keep that promise)."""
    alice = irc.irc("alice")
    alice.send("JOIN #den")
    alice.expect("366")
    alice.send("MODE #den +ik door")
    alice.expect("MODE")
    bob = irc.connect("bob")
    bob.send("/join #den")
    bob.expect("ERROR #den is invite-only: it needs an invitation")
    alice.send("INVITE bob #den")
    assert alice.expect("341").params[1:] == ["bob", "#den"]
    bob.expect("* alice invites you to #den: /join #den")
    bob.send("/join #den")  # no key: the invitation passes it
    bob.expect_prefix("OK join #den")
    assert alice.expect("JOIN").source.startswith("bob!")
    bob.send("/part #den")
    bob.expect_prefix("OK part #den")
    bob.send("/join #den")  # used up
    bob.expect("ERROR #den is invite-only: it needs an invitation")


def test_a_moderated_room_silences_every_door(irc: Any) -> None:
    alice = irc.irc("alice")
    alice.send("JOIN #quiet")
    alice.expect("366")
    bob = irc.connect("bob")
    bob.send("/join #quiet")
    bob.expect_prefix("OK join #quiet")
    alice.send("MODE #quiet +m")
    assert alice.expect("MODE").params == ["#quiet", "+m"]
    bob.send("may I?")
    bob.expect("ERROR #quiet is moderated: only its operators and voiced members speak")
    alice.send("MODE #quiet +v bob")
    alice.expect("MODE")
    bob.send("thanks")
    assert alice.expect("PRIVMSG").params == ["#quiet", "thanks"]


def test_unknown_commands_reach_chatroom_commands_with_notice_replies(irc: Any) -> None:
    alice = irc.irc("alice")
    alice.send("UPPER hello there")
    notice = alice.expect("NOTICE")
    assert notice.params == ["alice", "HELLO THERE"] and notice.source == "irc.test"
    alice.send("NOSUCHTHING")
    assert alice.expect("421").params[1] == "NOSUCHTHING"


def test_long_lines_from_other_doors_are_split_with_one_msgid(irc: Any) -> None:
    bob = irc.connect("bob")
    bob.send("/join #long")
    bob.expect_prefix("OK join #long")
    alice = irc.irc("alice", "message-tags", "server-time")
    alice.send("JOIN #long")
    alice.expect("366")
    text = " ".join(f"word{i:04d}" for i in range(300))  # about 2,700 bytes
    bob.send(text)
    first = alice.expect("PRIVMSG")
    parts = [first] + [m for m in alice.sync() if m.command == "PRIVMSG"]  # one buffer: all there by the PONG
    assert len(parts) >= 6 and "".join(p.params[1] for p in parts) == text
    assert len({p.tags["msgid"] for p in parts}) == 1 and all("time" in p.tags for p in parts)


def test_sasl_plain_logs_in_to_a_chatroom_account(irc: Any) -> None:
    bob = irc.connect("alice")
    bob.send("/register correct-horse")
    bob.expect_prefix("OK registered alice")
    bob.send("/quit")
    bob.expect("OK")
    for password, code in (("wrong-horse", "904"), ("correct-horse", "903")):
        client = irc.irc()
        client.send("CAP REQ :sasl")
        client.send("NICK alice")
        client.send("USER a 0 * :A")
        client.expect("CAP")
        client.send("AUTHENTICATE PLAIN")
        client.expect("AUTHENTICATE")
        client.send("AUTHENTICATE " + base64.b64encode(f"alice\0alice\0{password}".encode()).decode())
        client.expect(code)
        client.send("CAP END")
        if code == "904":
            client.expect("433")  # the registered nick is refused without its account
            client.close()
    assert client.expect("001").params[0] == "alice"
    client.send("WHOIS alice")
    assert client.expect("330").params[2] == "alice"


def test_labeled_response_echo_and_chathistory(irc: Any) -> None:
    alice = irc.irc("alice", "labeled-response", "echo-message", "batch", "message-tags", "server-time",
                    "draft/chathistory")
    alice.send("JOIN #h")
    alice.expect("366")
    alice.send("@label=x1 PRIVMSG #h :first")
    echo = alice.expect("PRIVMSG")
    assert echo.tags["label"] == "x1" and echo.params == ["#h", "first"] and "msgid" in echo.tags
    alice.send("PRIVMSG #h :second")
    second = alice.expect("PRIVMSG")
    alice.send("@label=x2 WHOIS alice")
    start = alice.expect("BATCH")
    assert start.tags["label"] == "x2" and start.params[1] == "labeled-response"
    alice.send("CHATHISTORY BEFORE #h msgid=" + second.tags["msgid"] + " 10")
    batch = alice.expect("BATCH", lambda m: m.params[1:] == ["chathistory", "#h"])
    lines = alice.until("BATCH", lambda m: m.params[0] == "-" + batch.params[0][1:])
    said = [m.params[1] for m in lines if m.command == "PRIVMSG"]
    assert said == ["first"] and lines[0].tags["msgid"] == echo.tags["msgid"]


def test_secret_rooms_are_hidden_from_non_members_of_every_door(irc: Any) -> None:
    alice = irc.irc("alice")
    alice.send("JOIN #hidden")
    alice.expect("366")
    alice.send("MODE #hidden +s")
    alice.expect("MODE")
    bob = irc.connect("bob")
    bob.send("/rooms")
    listed = bob.expect_where(lambda line: line.startswith("OK"), "the end of /rooms")
    assert not any("#hidden" in line for line in listed)
    carol = irc.irc("carol")
    carol.send("LIST")
    assert not any(m.command == "322" and m.params[1] == "#hidden" for m in carol.until("323"))


def test_over_long_input_is_refused_not_relayed(irc: Any) -> None:
    alice = irc.irc("alice")
    alice.send("JOIN #x")
    alice.expect("366")
    alice.send("PRIVMSG #x :" + "a" * 600)
    alice.expect("417")
    alice.send("PRIVMSG #x :" + "a" * 480)  # fits the 512 bytes, not with alice's address for the others
    alice.expect("417")


def test_a_client_the_server_closes_is_told_why_in_an_irc_error(server_factory: Any) -> None:
    # the server's own closes (here an unfinished line past --idle-timeout; excess flood and too slow alike) end
    # with IRC's ERROR :Closing Link, which clients show as the reason, not a NOTICE worded for the line protocol
    server = start_irc(server_factory, "--idle-timeout", "1")
    alice = IrcClient(server.irc_port)
    alice.register("alice")
    alice.sock.sendall(b"PRIVMSG #lobby :never finished")
    error = alice.expect("ERROR", timeout=5)
    assert error.params == ["Closing Link: 127.0.0.1 (timeout: unfinished line for 1 s)"], error
    assert alice.sock.recv(100) == b"", "still connected after the ERROR"
    assert not [m for m in alice.seen if m.command == "NOTICE" and "timeout" in m.params[-1]]
    alice.sock.close()


def test_irc_over_tls_with_the_server_certificate(server_factory: Any) -> None:
    import socket
    import ssl

    from chatroom.wire.irc import IrcParser, Message

    server = server_factory("--tls", "--irc-port", "0", "--irc-tls-port", "0", "--irc-server-name", "irc.test")
    irc: list[str] = []
    for _ in range(10):  # the start-up lines: listening, TLS, web, IRC, IRC TLS
        line = server.proc.stdout.readline()
        if line.startswith("chatroom-server IRC"):
            irc.append(line)
        if len(irc) == 2:
            break
    assert irc[0].startswith("chatroom-server IRC on ") and irc[1].startswith("chatroom-server IRC TLS on ")
    port = int(irc[1].strip().rpartition(":")[2])
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the self-signed certificate
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10)) as sock:
        sock.sendall(b"NICK tls\r\nUSER t 0 * :T\r\n")
        parser, got = IrcParser(), []
        while not any(isinstance(m, Message) and m.command == "001" for m in got):
            data = sock.recv(65536)
            assert data, "closed before the welcome"
            got += parser.feed(data)


def test_an_irc_client_hears_its_nick_taken_back_by_a_login_elsewhere(irc: Any) -> None:
    owner = irc.connect("alice")
    owner.send("/register correct-horse")
    owner.expect_prefix("OK registered alice")
    owner.send("/quit")
    owner.expect("OK")
    client = irc.irc()
    client.send("CAP REQ :sasl")
    client.send("NICK alice")
    client.send("USER a 0 * :A")
    client.expect("CAP")
    client.send("AUTHENTICATE PLAIN")
    client.expect("AUTHENTICATE")
    client.send("AUTHENTICATE " + base64.b64encode(b"alice\0alice\0correct-horse").decode())
    client.expect("903")
    client.send("CAP END")
    client.expect("001")
    terminal = irc.connect()
    terminal.send("/login alice correct-horse")
    terminal.expect_prefix("OK")
    renamed = client.expect("NICK")
    assert renamed.source.startswith("alice!") and renamed.params[0].startswith("guest")
    client.send("WHOIS " + renamed.params[0])
    assert client.expect("311").params[1] == renamed.params[0]
