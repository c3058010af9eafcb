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


def test_e2e_wrong_door_names_the_line_port(server_factory: Any) -> None:
    server = start_irc(server_factory)
    line_port = server.port
    nc = IrcClient(server.irc_port)
    try:
        nc.send("/nick bob")
        assert nc.expect("451").params[1] == "/NICK"
        notice = nc.expect("NOTICE")
        assert f"use port {line_port}," in notice.params[1], notice
    finally:
        nc.close()
