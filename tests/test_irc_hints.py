"""Two gaps a new user and a plugin author found in the IRC door: a line client (or a person with ``nc``) on the IRC
port by mistake is told once, after IRC's ``451``, that the port speaks IRC and which port speaks lines; and IRC's
``HELP CMD`` gives the very text of the line protocol's ``/help CMD`` (subcommands, parameters, examples) as
704/705/706. In-process (the kit's fake I/O) and end to end against the real ``chatroom-server --irc-port 0``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from irc_kit import IrcClient, start_irc
from test_irc_fuzz import IrcFake, irc_room

from chatroom.wire.irc import Message


def _messages(fake: IrcFake) -> list[Message]:
    out = fake.take()
    assert all(isinstance(m, Message) for m in out), out
    return out  # type: ignore[return-value]


def test_a_line_client_on_the_irc_port_is_told_once_after_451(tmp_path: Path) -> None:
    with irc_room(tmp_path) as room:
        nc = IrcFake(room)
        nc.line("/nick bob")
        first = _messages(nc)
        assert [m.command for m in first] == ["451", "NOTICE"], first  # 451 first: chatroom-client detects it
        assert first[0].params[1:] == ["/NICK", "You have not registered"]
        assert first[1].params[0] == "*" and "this port speaks IRC" in first[1].params[1], first[1]
        for text in ("hello", "/join #x"):
            nc.line(text)
            assert [m.command for m in _messages(nc)] == ["451"]  # once per connection, not per line
        hello = IrcFake(room)  # a plain word is no IRC command either
        hello.line("hello")
        assert [m.command for m in _messages(hello)] == ["451", "NOTICE"]


def test_a_real_registration_burst_never_gets_the_wrong_door_notice(tmp_path: Path) -> None:
    with irc_room(tmp_path) as room:
        client = IrcFake(room)
        for text in ("CAP LS 302", "PASS x", "WEBIRC pw gw host 1.2.3.4", "STARTTLS", "PING :t", "JOIN #early",
                     "PRIVMSG #early :hi", "MODE alice +i", "AUTHENTICATE PLAIN", "REGISTER * x", "CAP REQ :sasl",
                     "NICK alice", "USER a 0 * :A", "CAP END"):
            client.line(text)
        got = _messages(client)
        assert not [m for m in got if m.command == "NOTICE"], got
        assert "001" in [m.command for m in got], got


def _help_lines(fake: IrcFake, subject: str) -> list[Message]:
    fake.line(f"HELP {subject}".rstrip())
    return [m for m in _messages(fake) if m.command in ("704", "705", "706")]


def test_help_cmd_is_the_line_protocols_help_text(tmp_path: Path) -> None:
    with irc_room(tmp_path) as room:
        alice = room.join("alice")
        bob = IrcFake(room)
        for text in ("NICK bob", "USER b 0 * :Bob"):
            bob.line(text)
        bob.take()
        for subject in ("nick", "upper", "help", "plugins", ""):
            alice.clear()
            alice.say(f"/help {subject}".rstrip())
            want = alice.received[:]
            got = _help_lines(bob, subject)
            assert [m.command for m in got] == ["704", *["705"] * (len(got) - 2), "706"], got
            assert all(m.params[1] == (subject or "*") for m in got), got
            text = [m.params[2] for m in got[:-1]]
            if not subject:
                text = text[1:]  # the list's heading (how IRC clients send chatroom's commands)
            assert text == want, (subject, text, want)
        nick = _help_lines(bob, "nick")
        assert any("e.g. /nick carol" in m.params[2] for m in nick), nick  # the examples, not only the usage
        assert _help_lines(bob, "/upper")[0].params[2].startswith("/upper TEXT")
        privmsg = _help_lines(bob, "PRIVMSG")
        assert privmsg[0].params[1:] == ["privmsg", "PRIVMSG: an IRC command"]
        carol = IrcFake(room)  # labeled-response: the help's lines in the command's batch, in order
        for text in ("CAP REQ :labeled-response batch", "NICK carol", "USER c 0 * :Carol", "CAP END"):
            carol.line(text)
        carol.take()
        carol.line("@label=h1 HELP upper")
        batch = _messages(carol)
        assert [m.command for m in batch] == ["BATCH", "704", "705", "706", "BATCH"], batch
        assert batch[0].tags["label"] == "h1" and batch[2].params[2].startswith("  e.g. /upper")
        bob.line("HELP nosuchthing")
        assert [(m.command, m.params[1]) for m in _messages(bob)] == [("524", "nosuchthing")]


def test_e2e_wrong_door_names_the_line_port_and_help_shows_examples(server_factory: Any) -> None:
    server = start_irc(server_factory)
    line_port = server.port
    nc = IrcClient(server.irc_port)
    bob = IrcClient(server.irc_port)
    try:
        nc.send("/nick bob")
        assert nc.expect("451").params[1] == "/NICK"
        notice = nc.expect("NOTICE")
        assert f"use port {line_port}," in notice.params[1], notice
        bob.register("bob")
        bob.send("HELP upper")
        start = bob.expect("704")
        assert start.params[1:] == ["upper", "/upper TEXT - Echo TEXT back in upper case, to you only"]
        txt = bob.expect("705")
        assert txt.params[2] == "  e.g. /upper hello, world  ->  HELLO, WORLD", txt
        bob.expect("706")
    finally:
        nc.close()
        bob.close()
