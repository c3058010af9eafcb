"""Issue 17, row 4: flood control that stops floods, and closes that say why.

Black-box over TCP against the real ``chatroom-server`` (``server_factory``
and ``LineClient`` from ``conftest.py``), with the default flood budget unless
a test says otherwise. Every server-initiated close must leave the client its
last line followed by a clean end of stream (``recv`` returning ``b""``),
never a reset, even when the client still has unread input in the server's
socket: that is what ``nc`` needs to show ``ERROR excess flood``.
How many of a flooder's lines reach the room is measured in
``bench/abuse.py`` (docs/benchmarks.md); here it is only bounded.
"""

from __future__ import annotations

import signal
import socket
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

from conftest import LineClient, ServerProcess
from chatroom.wire import lines as protocol


def start(server_factory: Callable[..., ServerProcess], *args: str) -> ServerProcess:
    """A ``chatroom-server`` with the built-in plugins only (and *args*), logging to its file only."""
    hermetic = () if "--plugin-dir" in args else ("--no-plugins",)
    return server_factory("--quiet", *hermetic, *args)


def read_to_end(client: LineClient, timeout: float = 10.0) -> tuple[list[str], str]:
    """Every line *client* still gets, and how its stream ended: ``"eof"`` (a clean close), ``"reset"`` or
    ``"timeout"`` (still open after *timeout* seconds)."""
    got = list(client.seen)
    parser = protocol.Parser(max_frame=64 * 1024 * 1024)
    for event in client.pending:
        if isinstance(event, protocol.Line):
            got.append(event.text)
    client.pending.clear()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got, "timeout"
        client.sock.settimeout(left)
        try:
            data = client.sock.recv(1 << 20)
        except socket.timeout:
            return got, "timeout"
        except ConnectionResetError:
            return got, "reset"
        if not data:
            return got, "eof"
        got += [e.text for e in parser.feed(data) if isinstance(e, protocol.Line)]


def told_then_closed(client: LineClient) -> list[str]:
    """Read *client* to its end: it must be a clean close (EOF, not a reset); returns every line it got."""
    lines, end = read_to_end(client)
    assert end == "eof", f"the stream ended with a {end}, not a clean close; last lines {lines[-3:]}"
    return lines


def push(client: LineClient, data: bytes, timeout: float = 10.0) -> int:
    """Send all of *data* without reading (as ``nc < file`` does); the bytes the server took before it closed."""
    return client.send_some(data, timeout=timeout)


def said_by(lines: list[str], nick: str) -> list[str]:
    return [line for line in lines if line.startswith(f"{nick}: ")]


# -- a flood is cut, with the reason -------------------------------------------------------------------
def test_a_flood_of_5000_lines_from_a_client_that_never_reads_is_cut_in_tens_with_excess_flood(
        server_factory: Any) -> None:
    server = start(server_factory)
    bob = server.connect("bob")
    mallory = server.connect("mallory")
    flood = b"".join(b"flood %04d %s\n" % (i, b"z" * 88) for i in range(5000))  # 500 KB: more than one read
    push(mallory, flood)
    assert told_then_closed(mallory)[-1] == "ERROR excess flood"
    before = bob.expect("* mallory left lobby (excess flood)")
    got = said_by(before, "mallory")
    assert got == [f"mallory: flood {i:04d} {'z' * 88}" for i in range(len(got))], "lines reached bob out of order"
    assert 1 <= len(got) <= 40, f"bob got {len(got)} of the flooder's 5,000 lines"
    assert bob.sync() == [], "more of the flood reached bob after mallory left"


def test_a_flood_over_tls_is_cut_with_excess_flood_and_a_clean_close(server_factory: Any) -> None:
    import ssl

    server = start(server_factory, "--tls")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((server.host, server.port), timeout=10)
    client = LineClient.from_socket(context.wrap_socket(raw))
    server.clients.append(client)
    client.expect_prefix("* Welcome")
    client.send_some(b"".join(b"tls flood %04d %s\n" % (i, b"z" * 84) for i in range(5000)), timeout=10)
    assert told_then_closed(client)[-1] == "ERROR excess flood"


def test_a_paste_of_20_lines_passes_whole_and_at_once(server_factory: Any) -> None:
    server = start(server_factory)
    alice, bob = server.connect("alice"), server.connect("bob")
    started = time.monotonic()
    alice.send_raw(b"".join(b"pasted line %d\n" % i for i in range(20)))
    got = [bob.expect_prefix("alice: ", 10) for _ in range(20)]
    assert got == [f"alice: pasted line {i}" for i in range(20)]
    assert time.monotonic() - started < 3.0, "a 20-line paste was slowed"
    assert not [line for line in alice.sync() if line.startswith("ERROR")]  # still connected, not warned


def test_a_bot_answering_faster_than_the_rate_is_slowed_never_cut_off(server_factory: Any) -> None:
    # the default backlog (100 lines), a rate fast enough to keep the test short: 80 answers at once, 3x the burst
    server = start(server_factory, "--flood-rate", "40", "--flood-burst", "20")
    bot, bob = server.connect("bot"), server.connect("bob")
    started = time.monotonic()
    bot.send_raw(b"".join(b"answer %d\n" % i for i in range(80)))
    got = [bob.expect_prefix("bot: ", 10) for _ in range(80)]
    assert got == [f"bot: answer {i}" for i in range(80)]
    assert time.monotonic() - started >= 60 / 40 * 0.8, "80 lines at once were not slowed to the rate"
    assert not [line for line in bot.sync() if line.startswith("ERROR")], "the bot was warned"


def test_more_lines_waiting_than_the_backlog_is_a_flood(server_factory: Any) -> None:
    server = start(server_factory, "--flood-burst", "5", "--flood-backlog", "10")
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send_raw(b"".join(b"line %d\n" % i for i in range(30)))  # 4 handled (one token went on /nick), 26 wait
    assert told_then_closed(alice)[-1] == "ERROR excess flood"
    before = bob.expect("* alice left lobby (excess flood)")
    assert said_by(before, "alice") == [f"alice: line {i}" for i in range(4)]


# -- every close the server decides says why, then closes cleanly -----------------------------------------------
def test_a_client_too_slow_to_read_gets_what_was_queued_then_too_slow(server_factory: Any) -> None:
    server = start(server_factory, "--max-queue", "64K", "--flood-rate", "0")
    bob = server.connect("bob")
    slow = server.silent_client(rcvbuf=4096)  # reads nothing until the server gave up on it
    slow.send_raw(b"/nick slow\n")
    bob.expect("* guest2 is now known as slow")
    # 8 MB for slow: more than the kernel's buffers take for one loopback connection (about 3 MB), so the rest
    # waits in the server's queue, past --max-queue
    bob.send_raw(b"".join(b"chat %d %s\n" % (i, b"z" * 1000) for i in range(8_000)))
    bob.expect("* slow left lobby (too slow)")
    lines = told_then_closed(slow)
    assert lines[-1].startswith("ERROR too slow"), lines[-3:]
    chat = [line for line in lines if line.startswith("bob: chat ")]
    assert chat and chat == [f"bob: chat {i} {'z' * 1000}" for i in range(len(chat))], "a line was cut or lost"


def test_an_unfinished_line_past_the_idle_timeout_gets_its_error_then_a_clean_close(server_factory: Any) -> None:
    server = start(server_factory, "--idle-timeout", "1")
    holder = server.connect()
    holder.send_raw(b"never finished")
    assert told_then_closed(holder)[-1].startswith("ERROR timeout: unfinished line")


def test_a_wrong_password_three_times_with_more_input_unread_closes_cleanly(server_factory: Any,
                                                                             tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret-door\n")
    server = start(server_factory, "--password-file", str(secret))
    guesser = server.raw_client()
    guesser.expect_prefix("* This server needs a password")
    push(guesser, b"/pass a\n/pass b\n/pass c\n" + b"/pass d\n" * 20_000)  # far more than it reads before
    lines = told_then_closed(guesser)
    assert lines[-1] == "ERROR wrong password" and lines.count("ERROR wrong password") == 3, lines[-5:]


def test_a_plugin_disconnecting_a_member_tells_it_why(server_factory: Any, tmp_path: Path) -> None:
    plugins = tmp_path / "plugs"
    plugins.mkdir()
    (plugins / "boot.py").write_text(textwrap.dedent("""
        from chatroom import hookimpl, Command
        def boot(ctx, args):
            target = ctx.find(args[0])
            ctx.disconnect(target, reason=f"booted by {ctx.nick}")
            ctx.reply(f"OK boot {args[0]}")
        @hookimpl
        def register_commands():
            return [Command("boot", boot, usage="/boot NICK", summary="Disconnect someone", min_args=1)]
    """))
    server = start(server_factory, "--plugin-dir", str(plugins))
    alice, bob = server.connect("alice"), server.connect("bob")
    push(bob, b"busy typing\n" * 10)  # input it may not all have been read
    alice.send("/boot bob")
    alice.expect("OK boot bob")
    assert told_then_closed(bob)[-1] == "ERROR disconnected (booted by alice)"


def test_quit_with_more_input_unread_closes_cleanly(server_factory: Any) -> None:
    server = start(server_factory)
    alice = server.connect("alice")
    push(alice, b"/quit\n" + b"after quit\n" * 20_000)
    assert told_then_closed(alice)[-1] == "OK"


def test_shutdown_tells_every_client_then_closes_cleanly(server_factory: Any) -> None:
    server = start(server_factory)
    alice = server.connect("alice")
    bob = server.connect("bob")
    push(bob, b"typing while the server stops\n" * 50)
    server.stop(signal.SIGTERM)
    for client in (alice, bob):
        assert told_then_closed(client)[-1] == "* server shutting down"
