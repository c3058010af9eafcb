"""Every close the IRC door decides ends on the one closing path of every door (``Loop.send_closing``, worded by
``IrcConnection.encode_closing``): ``ERROR :Closing Link: HOST (reason)``, the message IRC clients show as why they
were disconnected; a line-protocol member closed by an IRC command (``KILL``) gets its own door's ``ERROR reason``.
In-process (the server on the kit's fake I/O, its clock moved by the test)."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from chatroom import Command, hookimpl
from chatroom.model.accounts import hash_password
from chatroom.wire.irc import Message

from test_irc_fuzz import IrcFake, irc_room, registered


def _errors(client: IrcFake) -> list[list[str]]:
    return [m.params for m in client.take() if isinstance(m, Message) and m.command == "ERROR"]


def test_registration_and_ping_timeouts_close_with_the_standard_closing_link(tmp_path: Path) -> None:
    with irc_room(tmp_path) as room:
        late = IrcFake(room)
        late.line("NICK late")
        mute = registered(room, "mute")
        room.advance(65)  # past the 60 s to register
        assert late.sock.closed
        assert _errors(late) == [["Closing Link: 127.0.0.1 (registration timed out)"]]
        room.advance(130)  # silent for --irc-ping-after (120 s): PINGed
        assert any(isinstance(m, Message) and m.command == "PING" for m in mute.take())
        room.advance(130)  # and as long again: closed
        assert mute.sock.closed
        assert _errors(mute) == [["Closing Link: 127.0.0.1 (Ping timeout: 240 seconds)"]]


def test_a_wrong_server_password_closes_with_the_standard_closing_link(tmp_path: Path) -> None:
    with irc_room(tmp_path, server_password="s3cret-pass") as room:
        wrong = IrcFake(room)
        for text in ("PASS nope", "NICK wrong", "USER w 0 * :W"):
            wrong.line(text)
        got = [m for m in wrong.take() if isinstance(m, Message)]
        assert [m.command for m in got] == ["464", "ERROR"], got
        assert got[-1].params == ["Closing Link: 127.0.0.1 (wrong server password)"]
        assert wrong.sock.closed
        registered(room, "right", "PASS s3cret-pass")


def test_too_many_failed_sasl_logins_close_with_the_standard_closing_link(tmp_path: Path) -> None:
    with irc_room(tmp_path) as room:
        room.join("alice", account=True)  # an account whose password no guess matches
        guesser = IrcFake(room)
        for text in ("CAP LS 302", "CAP REQ :sasl", "NICK guesser", "USER g 0 * :G"):
            guesser.line(text)
        plain = base64.b64encode(b"\0alice\0guess").decode()
        for _ in range(3):
            guesser.line("AUTHENTICATE PLAIN")
            guesser.line(f"AUTHENTICATE {plain}")
            room.settle()
        got = [m for m in guesser.take() if isinstance(m, Message)]
        assert [m.command for m in got if m.command in ("904", "ERROR")] == ["904", "904", "904", "ERROR"], got
        assert got[-1].params == ["Closing Link: 127.0.0.1 (too many failed logins)"]
        assert guesser.sock.closed


def test_kill_closes_a_member_of_any_door_in_its_doors_words(tmp_path: Path) -> None:
    with irc_room(tmp_path, admins=["root"]) as room:
        room.server.port.accounts.create("root", hash_password("root-password"))
        root = registered(room, "boss")
        root.line("OPER root root-password")
        room.settle()
        assert any(isinstance(m, Message) and m.command == "381" for m in root.take())
        bob = registered(room, "bob")
        alice = room.join("alice")
        root.line("KILL bob :spamming")
        root.line("KILL alice")
        room.settle()
        assert bob.sock.closed and _errors(bob) == [["Closing Link: 127.0.0.1 (Killed (boss (spamming)))"]]
        assert alice.received[-1] == "ERROR Killed (boss (boss))", alice.received[-3:]
        assert room.find("alice") is None


def test_a_labeled_quit_ends_with_error_and_nothing_after_it(tmp_path: Path) -> None:
    with irc_room(tmp_path) as room:
        bob = registered(room, "bob", "CAP LS 302", "CAP REQ :labeled-response batch", "CAP END")
        bob.line("@label=q1 QUIT :bye")
        got = [m for m in bob.take() if isinstance(m, Message)]
        assert [m.command for m in got] == ["ERROR"], got
        assert got[0].params == ["Closing Link: 127.0.0.1 (Quit: bye)"]


def test_a_server_shutdown_ends_with_error_for_irc_and_the_notice_for_the_line_protocol(tmp_path: Path) -> None:
    # IRC clients got the line protocol's "* server shutting down" as a NOTICE and a bare end of stream: irssi and
    # WeeChat show a lost connection with no reason
    with irc_room(tmp_path) as room:
        bob = registered(room, "bob")
        bob.line("JOIN #team")
        alice = room.join("alice")
        bob.take()
        room.close()
        assert bob.sock.closed
        assert [m.command for m in bob.take() if isinstance(m, Message)] == ["ERROR"]
        assert _errors(bob) == [] and alice.received[-1] == "* server shutting down"


def test_a_plugin_disconnecting_an_irc_client_gives_irc_closing_link(tmp_path: Path) -> None:
    # ctx.disconnect(reason=...) sent "ERROR disconnected (...)" through the reply path: a NOTICE to an IRC client
    def bye(ctx: Any, args: Any) -> None:
        ctx.disconnect(reason="asked to leave")

    kicker = SimpleNamespace(register_commands=hookimpl(lambda: [Command("bye", bye)]))
    with irc_room(tmp_path, plugins=[("kicker", kicker)]) as room:
        bob = registered(room, "bob")
        alice = room.join("alice")
        bob.line("BYE")
        assert bob.sock.closed
        got = [m for m in bob.take() if isinstance(m, Message)]
        assert [(m.command, m.params) for m in got] == [
            ("ERROR", ["Closing Link: 127.0.0.1 (disconnected (asked to leave))"])], got
        alice.say("/bye")
        assert alice.received[-1] == "ERROR disconnected (asked to leave)"
