"""End-to-end tests of chatroom-server over real TCP, with raw line clients (like nc)."""

from __future__ import annotations

import signal
import socket
import textwrap
import time

from conftest import LineClient, ServerProcess


def test_first_line_names_the_address_and_port(server: ServerProcess) -> None:
    assert server.host == "127.0.0.1"
    assert 0 < server.port < 65536


def test_broadcast_reaches_every_other_client_as_nick_colon_text(server: ServerProcess) -> None:
    alice, bob, carol = (server.connect(n) for n in ("alice", "bob", "carol"))
    alice.send("hello room")
    assert bob.expect_prefix("alice: ") == "alice: hello room"
    assert carol.expect_prefix("alice: ") == "alice: hello room"
    bob.send("hi alice")
    assert alice.expect_prefix("bob: ") == "bob: hi alice"
    # the sender does not get its own line back: the next thing alice sees is bob's line
    assert "alice: hello room" not in alice.seen


def test_joins_nick_changes_and_leaves_are_announced(server: ServerProcess) -> None:
    alice = server.connect("alice")
    guest = server.connect()
    guest_nick = guest.seen[0].split("You are ")[1].split(".")[0]
    assert alice.expect_prefix("* guest") == f"* {guest_nick} joined lobby"
    guest.send("/nick bob")
    guest.expect("OK nick bob")
    alice.expect(f"* {guest_nick} is now known as bob")
    guest.send("/QUIT")
    guest.expect("OK")
    assert guest.closed_by_server()
    alice.expect("* bob left lobby (quit)")


def test_double_slash_sends_a_literal_slash_line(server: ServerProcess) -> None:
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("//quit is how you leave")
    bob.expect("alice: /quit is how you leave")


def test_upper_replies_to_the_caller_only(server: ServerProcess) -> None:
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/upper hello, World")
    alice.expect("HELLO, WORLD")
    alice.send("marker")
    assert bob.expect("alice: marker") == []  # bob saw nothing before the marker


def test_unknown_command_and_hint(server: ServerProcess) -> None:
    alice = server.connect("alice")
    alice.send("/frobnicate")
    assert alice.next_line() == "ERROR - Command not understood"
    alice.send("/hlep")
    assert alice.next_line() == "ERROR - Command not understood"
    assert alice.next_line() == "* did you mean /help?"


def test_command_names_are_case_insensitive_and_misuse_gets_usage(server: ServerProcess) -> None:
    alice = server.connect("alice")
    alice.send("/UpPeR shout")
    alice.expect("SHOUT")
    alice.send("/nick")
    alice.expect("ERROR usage: /nick NAME")
    alice.send('/nick "unbalanced')
    alice.expect("ERROR usage: /nick NAME")


def test_taken_and_invalid_nicks_are_refused(server: ServerProcess) -> None:
    server.connect("alice")
    bob = server.connect("bob")
    bob.send("/nick ALICE")
    assert bob.next_line() == "ERROR the nick ALICE is taken"
    for bad in ("9lives", "a" * 33, "guest7", "has/slash"):
        bob.send(f"/nick {bad}")
        assert bob.next_line().startswith("ERROR ")
    bob.send("/who")
    assert bob.next_line() == "* 2 in lobby: alice, bob"


def test_msg_is_private(server: ServerProcess) -> None:
    alice, bob, carol = (server.connect(n) for n in ("alice", "bob", "carol"))
    alice.send("/msg bob it's a secret")
    alice.expect("OK sent to bob")
    bob.expect("alice (private): it's a secret")
    alice.send("public")
    assert carol.expect("alice: public") == []
    alice.send("/msg nobody hi")
    alice.expect("ERROR no such nick: nobody")


def test_help_lists_every_command_with_usage(server: ServerProcess) -> None:
    alice = server.connect("alice")
    alice.send("/help")
    alice.send("/upper end")
    lines = alice.expect("END")
    for usage in ("/quit", "/upper TEXT", "/nick NAME", "/who", "/msg NAME TEXT", "/help [COMMAND]"):
        assert any(line.startswith(usage + " ") or line.startswith(usage + ",") for line in lines), usage
    alice.send("/help msg")
    assert alice.next_line() == "/msg NAME TEXT, /tell - Send a private line to one user"


def test_over_long_line_is_refused_and_connection_stays_usable(server: ServerProcess) -> None:
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send_raw(b"x" * 100_000 + b"\nstill here\n")
    assert alice.expect_prefix("ERROR") == "ERROR line too long (100001 bytes, max 65536)"
    assert bob.expect_prefix("alice: ") == "alice: still here"
    assert "line of 100001 bytes" in server.log_text()


def test_invalid_utf8_and_escapes_are_cleaned_before_relay(server: ServerProcess) -> None:
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send_raw(b"caf\xc3\xa9 \xff ok\n")
    assert bob.next_line() == "alice: café \ufffd ok"
    alice.send_raw(b"\x1b[2J\x1b]0;owned\x07clear \x07screen\n")
    assert bob.next_line() == "alice: clear screen"


def test_a_client_that_never_reads_is_dropped_and_does_not_stall_others(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--max-queue", "256K", "--flood-rate", "0")  # alice's 200 lines at once: no paste limit
    sleeper = socket.socket()
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sleeper.connect((server.host, server.port))  # connects and never reads
    server.clients.append(LineClient.__new__(LineClient))
    server.clients[-1].sock = sleeper
    alice, bob = server.connect("alice"), server.connect("bob")
    big = "y" * 60_000
    started = time.monotonic()
    dropped = False
    for i in range(200):  # at most 12 MB of chat; the sleeper's queue passes 256 KiB long before
        alice.send(f"{i} {big}")
        bob.expect_prefix(f"alice: {i} ")  # every line still reaches bob, in order
        if "* guest1 left lobby (too slow)" in bob.seen:
            dropped = True
            break
    assert dropped, "the silent client was never dropped"
    assert time.monotonic() - started < 10
    alice.send("/upper still fast")
    alice.expect("STILL FAST", timeout=2)
    assert "output queue" in server.log_text() and "[CONNECTION]" in server.log_text()
    sleeper.close()


def test_sigterm_tells_clients_and_exits_zero(server: ServerProcess) -> None:
    alice = server.connect("alice")
    assert server.stop(signal.SIGTERM) == 0
    alice.expect("* server shutting down")
    assert alice.closed_by_server()
    log = server.log_text()
    assert "[GENERAL]" in log and "stopped" in log


def test_sigint_also_stops_cleanly(server: ServerProcess) -> None:
    alice = server.connect("alice")
    assert server.stop(signal.SIGINT) == 0
    alice.expect("* server shutting down")


def test_log_has_the_origin_categories(server: ServerProcess) -> None:
    alice = server.connect("alice")
    alice.send("/nosuch")
    alice.expect("ERROR - Command not understood")
    alice.send("/quit")
    alice.expect("OK")
    assert alice.closed_by_server()
    server.stop()
    log = server.log_text()
    assert "[GENERAL] chatroom.server: listening on 127.0.0.1:" in log
    assert "[CONNECTION] chatroom.server: guest1 connected from 127.0.0.1:" in log
    assert "[CONNECTION] chatroom.server: guest1 is now known as alice" in log
    assert "[ERROR] chatroom.server: alice sent an unknown command /nosuch" in log
    assert "[CONNECTION] chatroom.server: alice disconnected (quit)" in log


def test_a_raising_command_gets_an_error_and_the_server_goes_on(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plugins = tmp_path / "plugs"
    plugins.mkdir()
    (plugins / "boom.py").write_text(textwrap.dedent("""
        from chatroom import hookimpl, Command
        def explode(ctx, args):
            raise ZeroDivisionError("kaboom")
        @hookimpl
        def register_commands():
            return [Command("boom", explode, usage="/boom", summary="Always fails")]
    """))
    server = server_factory("--plugin-dir", str(plugins))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/boom")
    assert alice.expect_prefix("ERROR") == "ERROR /boom failed: internal error in plugin boom"
    alice.send("after the fault")
    bob.expect("alice: after the fault")
    log = server.log_text()
    assert "[ERROR] chatroom.plugins: plugin boom raised:" in log and "ZeroDivisionError: kaboom" in log


def test_lan_host_prints_lan_addresses_line_or_only_listening(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--host", "0.0.0.0")
    assert server.host == "0.0.0.0"
    client = server.raw_client("127.0.0.1")
    client.expect_prefix("* Welcome")


def test_replies_after_a_streamed_listing_keep_their_order(server: ServerProcess) -> None:
    alice = server.connect("alice")
    alice.send_raw(b"/post\n" + b"".join(b"line %d\n" % i for i in range(3000)) + b"#\n/read\n/upper after\n")
    alice.expect("OK")
    lines = alice.expect("AFTER")
    assert lines == [f"line {i}" for i in range(3000)] + ["#"]


def test_quit_right_after_a_listing_still_gets_the_listing_and_ok(server: ServerProcess) -> None:
    alice = server.connect("alice")
    alice.send_raw(b"/post\n" + b"".join(b"row %d\n" % i for i in range(2000)) + b"#\n")
    alice.expect("OK")
    alice.send_raw(b"/read\n/quit\n")
    assert alice.expect("OK") == [f"row {i}" for i in range(2000)] + ["#"]
    assert alice.closed_by_server()


def test_sigterm_right_after_the_first_line_stops_the_server(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A signal that lands before the loop starts serving must still stop it (it once set a flag the loop reset)."""
    for _ in range(3):
        server = server_factory("--quiet")
        assert server.stop(signal.SIGTERM, timeout=10) == 0
