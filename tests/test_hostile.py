"""Issue 8: one client can never hurt the room. Each test is one attack from the issue's table.

Black-box over TCP against the real ``chatroom-server`` (``server_factory`` and
``LineClient`` from ``conftest.py``), except the plugin tests of item 12, which
use the in-process kit (``chatroom_room``) as well. Attack numbers in the test
names are the rows of the issue's table.

Rules kept here: servers get small limits through flags so every attack bites
within seconds; every wait is on a line (or on the server closing a socket),
with a deadline; every loop is bounded in count and time. Memory is read from
``/proc/PID/status`` of the server process (``VmRSS`` now, ``VmHWM`` peak).
Servers run with ``--quiet`` so a flood of log lines cannot fill the unread
stderr pipe and stall the server for a reason that is the test's, not the
server's.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest

from chatroom import Command, hookimpl
from chatroom.wire import lines as protocol
from conftest import LineClient, ServerProcess

MiB_KIB = 1024  # KiB per MiB: /proc reports kB
RTT_LIMIT = 1.0  # seconds: a bystander's round trip while one client attacks


# -- helpers ---------------------------------------------------------------------------
def start(server_factory: Callable[..., ServerProcess], *args: str) -> ServerProcess:
    """A ``chatroom-server`` with *args*, logging to its file only (see the module docstring).

    Without ``--plugin-dir`` it loads the built-in plugins only, so third-party
    plugins installed in the same environment cannot change what these tests see.
    """
    hermetic = () if "--plugin-dir" in args else ("--no-plugins",)
    return server_factory("--quiet", *hermetic, *args)


def guest_nick(client: LineClient) -> str:
    """The ``guestN`` nick a greeting gave *client* (its first line)."""
    return client.seen[0].split("You are ")[1].split(".")[0]


def round_trip(a: LineClient, a_nick: str, b: LineClient, b_nick: str, tag: str,
               timeout: float = 10.0) -> float:
    """Seconds for chat *a* -> *b* and back *b* -> *a* (each side skips other lines)."""
    started = time.monotonic()
    a.send(f"ping {tag}")
    b.expect(f"{a_nick}: ping {tag}", timeout)
    b.send(f"pong {tag}")
    a.expect(f"{b_nick}: pong {tag}", timeout)
    return time.monotonic() - started


def assert_room_alive(server: ServerProcess, a: LineClient, a_nick: str, b: LineClient, b_nick: str,
                      tag: str = "alive") -> None:
    """The server process is up and two bystanders can still chat both ways."""
    try:
        round_trip(a, a_nick, b, b_nick, tag)
    except (ConnectionError, TimeoutError) as exc:
        try:
            rc: int | None = server.proc.wait(2)
        except subprocess.TimeoutExpired:
            rc = None
        tail = server.log_text()[-1500:]
        pytest.fail(f"the room no longer works (server exit status {rc}): {exc}\nlog tail:\n{tail}")
    assert server.proc.poll() is None


def probe(client: LineClient, tag: str = "probe", timeout: float = 5.0) -> tuple[list[str], bool]:
    """Send ``/upper TAG`` on *client* and read up to the reply.

    Returns ``(lines before the reply, closed)``; ``closed`` is True when the
    server closed the connection first (then the lines are all that came).
    """
    start_seen = len(client.seen)
    try:
        client.send(f"/upper {tag}")
        client.expect(tag.upper(), timeout)
    except (ConnectionError, BrokenPipeError, ConnectionResetError):
        return client.seen[start_seen:], True
    return client.seen[start_seen:-1], False


def expect_or_fail(client: LineClient, prefix: str, timeout: float, what: str) -> str:
    """The next line of *client* starting with *prefix*; a clear test failure if none comes in time."""
    try:
        return client.expect_prefix(prefix, timeout)
    except (TimeoutError, ConnectionError) as exc:
        pytest.fail(f"{what}: no line starting {prefix!r} ({type(exc).__name__}); last lines: {client.seen[-5:]}")


def peek(client: LineClient, size: int = 1 << 18) -> bytes | None:
    """What the server sent *client* that it has not read yet, without reading it (``None``: closed)."""
    try:
        data = client.sock.recv(size, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return b""
    except OSError:
        return None
    return data if data else None


def who_line(client: LineClient) -> str:
    """The reply to ``/who`` (``* N in lobby: a, b``), skipping other lines."""
    client.send("/who")
    client.expect_where(lambda line: line.startswith("* ") and " in lobby: " in line, "/who reply")
    return client.seen[-1]


def who_count(client: LineClient) -> int:
    """Members in the room, from ``/who``."""
    return int(who_line(client).split()[1])


def wait_who_count(client: LineClient, want: int, rounds: int = 200) -> int:
    """``/who`` until the room has *want* members (connections the kernel completed may not be accepted
    yet under load), at most *rounds* round trips; returns the last count."""
    count = who_count(client)
    for _ in range(rounds):
        if count == want:
            break
        count = who_count(client)
    return count


# -- 1: numbers from the wire ---------------------------------------------------------------
FRAME_ATTACKS = {
    "length-superscript-two": (False, b"\x10\xc2\xb2 x\n"),
    "length-5000-digits": (False, b"\x10" + b"1" * 5000 + b" x\n"),
    "file-data-id-superscript-two": (True, protocol.encode_frame("file-data \u00b2", b"abc")),
    "file-data-id-5000-digits": (True, protocol.encode_frame("file-data " + "1" * 5000, b"abc")),
}


@pytest.mark.parametrize("attack", list(FRAME_ATTACKS))
def test_1_malformed_numbers_in_frame_headers_never_crash_the_server(server_factory, attack: str) -> None:  # type: ignore[no-untyped-def]
    binary, data = FRAME_ATTACKS[attack]
    server = start(server_factory)
    alice, bob = server.connect("alice"), server.connect("bob")
    attacker = server.connect(binary=binary)  # unnamed
    nick = guest_nick(attacker)
    attacker.send_raw(data)
    assert_room_alive(server, alice, "alice", bob, "bob")
    lines, closed = probe(attacker)
    if not closed:  # still served: it was told, or its header came out as a visible line
        told = any(line.startswith("ERROR") for line in lines)
        shown = any(line.startswith(f"{nick}: ") for line in bob.seen)
        assert told or shown, f"the malformed header vanished silently: {lines}"
    assert_room_alive(server, bob, "bob", alice, "alice", "after probe")


# -- 2: command arguments never disable a plugin for everyone ----------------------------------
def test_2_bad_numeric_arguments_are_usage_errors_and_disable_nothing(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory)
    alice = server.connect("alice", binary=True)  # a receiver, so /sendfile gets past "nobody can receive"
    bob = server.connect("bob", binary=True)
    attacker = server.connect(binary=True)
    bob.send("/post")
    bob.send("line one")  # bob is in the middle of a post while the attack runs
    bad = ["/read \u00b2", "/read 99999999999999999999", "/tweets \u00b2", "/sendfile x " + "9" * 5000]
    for command in bad:
        for _ in range(6):
            attacker.send(command)
    replies = attacker.sync()
    assert len(replies) == len(bad) * 6, replies
    for i, command in enumerate(bad):
        for reply in replies[i * 6 : i * 6 + 6]:
            assert reply.startswith("ERROR usage: "), f"{command[:30]!r} -> {reply!r}"
    # bob's post survived: its rest is stored, not broadcast as chat
    bob.send("line two")
    bob.send("#")
    bob.expect("OK")
    bob.send("/read")
    assert bob.expect("#") == ["line one", "line two"]
    alice.sync("marker")
    assert not [line for line in alice.seen if line.startswith("bob: ")], alice.seen
    # board, tweet and sendfile still work for everyone
    alice.send("/post hello")
    alice.expect("OK")
    alice.send("/read")
    assert alice.expect("#") == ["line one", "line two", "hello"]
    alice.send("/tweet -u hi")
    alice.expect("OK")
    alice.send("/sendfile f 3")
    assert alice.expect_prefix("OK sendfile ").endswith(" f")


# -- 3: frames only after /caps binary, checked before any byte is buffered ---------------------
def test_3_unannounced_frames_are_refused_before_their_payload_is_buffered(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory)
    alice = server.connect("alice")
    alice.sync()
    before = server.rss_kib()
    header = protocol.encode_frame_header("x", 4 * 1024 * 1024)
    payload = b"\0" * (1024 * 1024)
    attackers = [server.connect() for _ in range(20)]  # never sent /caps binary
    for attacker in attackers:
        attacker.send_raw(header)
        attacker.send_some(payload, timeout=0.5)  # the server may stop reading or close: fine
    for attacker in attackers:
        line = expect_or_fail(attacker, "ERROR", 5, "a 4 MiB frame from a client without /caps binary")
        assert line == "ERROR frames need /caps binary first"
    deadline = time.monotonic() + 5
    for i in range(100_000):  # let the server read what it will: one round trip per pass, at most 5 s
        if server.unread_input_bytes() == 0 or time.monotonic() > deadline:
            break
        alice.sync(f"r{i}")
    grown = server.rss_kib() - before
    assert grown < 20 * MiB_KIB, f"server RSS grew {grown} KiB for 20 unfinished unannounced frames"


# -- 4: the output budget is checked when a reply is queued ----------------------------------------
def test_4_replies_are_counted_against_the_output_budget_when_queued(server_factory) -> None:  # type: ignore[no-untyped-def]
    # flood control off: the output budget alone must stop this client (with it on, the flooder is
    # merely slowed, which test 7 covers)
    server = start(server_factory, "--max-queue", "256K", "--flood-rate", "0")
    bob = server.connect("bob")
    # connect, then read nothing; from 10 loopback addresses, under the default --max-per-address 64
    idle = [server.silent_client(source=f"127.0.0.{2 + i % 10}") for i in range(300)]
    deadline = time.monotonic() + 10
    while who_count(bob) < 301 and time.monotonic() < deadline:
        pass  # each pass is one /who round trip
    assert who_count(bob) == 301
    assert len(idle) == 300
    bob.sync()
    flooder = server.silent_client(rcvbuf=4096)  # never reads
    flooder.send_raw(b"/nick flooder\n")  # not announced in a room over --announce-limit: bob asks /who
    deadline = time.monotonic() + 10
    while "flooder" not in who_line(bob) and time.monotonic() < deadline:
        pass  # each pass is one /who round trip
    server.reset_peak_rss()
    before = server.rss_kib()
    # 20,000 /who of ~2.8 KB each would be 56 MB of replies; 256 KiB is the budget
    flooder.send_some(b"/who\n" * 20_000, timeout=2.0)
    worst = max(_upper_rtt(bob, f"p{i}") for i in range(5))  # the first waits behind the flood
    assert worst < RTT_LIMIT, f"a bystander waited {worst:.2f} s during the /who flood"
    assert flooder.closed_by_server(10)
    grown = server.peak_rss_kib() - before
    assert grown < 50 * MiB_KIB, f"server peak RSS grew {grown} KiB under a 256 KiB output budget"


def _upper_rtt(client: LineClient, tag: str) -> float:
    started = time.monotonic()
    client.sync(tag)
    return time.monotonic() - started


# -- 5: relayed chunks share one buffer -------------------------------------------------------------
def test_5_a_relayed_chunk_is_not_copied_per_receiver(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory, "--max-queue", "2M")
    sender = server.connect("alice", binary=True)
    receivers = []
    for _ in range(50):  # frame-capable receivers that never read after their setup
        receiver = server.silent_client(rcvbuf=4096)
        receiver.expect_prefix("* Welcome")
        receiver.send("/caps binary")
        receiver.expect("OK caps binary")
        receivers.append(receiver)
    bob = server.connect("bob")  # no frames: a bystander
    size = 4 * 1024 * 1024
    sender.send(f"/sendfile f {size}")
    reply = sender.expect_prefix("OK sendfile ")
    tid, name = reply.split()[2:4]
    assert name == "f"
    bob.sync()
    server.reset_peak_rss()
    before = server.rss_kib()
    sender.send_some(protocol.encode_frame(f"file-data {tid}", b"\x01" * size), timeout=5.0)
    # wait until the server has read the chunk and acted on it: a receiver was sent data bytes, or
    # receivers were dropped; at most 10 s (a server that pauses the sender may do neither)
    deadline = time.monotonic() + 10
    for i in range(100_000):  # one round trip per pass
        if time.monotonic() > deadline:
            break
        if server.unread_input_bytes() == 0:
            if any(b"file-data " in (peek(r) or b"") for r in receivers) or who_count(bob) < 52:
                break
        bob.sync(f"s{i}")
    grown = server.peak_rss_kib() - before
    assert grown < 40 * MiB_KIB, f"server peak RSS grew {grown} KiB relaying one 4 MiB chunk to 50 receivers"
    assert server.proc.poll() is None


# -- 6: a closing connection is reaped even if it never reads ----------------------------------------
def test_6_quitting_clients_that_never_read_are_reaped(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory)
    alice = server.connect("alice")
    # a board of ~5.8 MB: more than the kernel buffers hold for a reader that never reads
    alice.send_raw(b"/post\n" + b"".join(b"%d %s\n" % (i, b"p" * 60_000) for i in range(96)) + b"#\n")
    alice.expect("OK")
    bob = server.connect("bob")  # paces the poll below with round trips
    baseline = server.open_fds()
    quitters = [server.silent_client(rcvbuf=4096) for _ in range(20)]
    assert wait_who_count(alice, 22) == 22
    for quitter in quitters:
        quitter.send_raw(b"/read\n/quit\n")  # and never read a byte
    sent = time.monotonic()
    open_fds = server.open_fds()
    for i in range(200_000):  # one round trip per pass, for at most 10 s
        if open_fds <= baseline or time.monotonic() - sent > 10:
            break
        bob.sync(f"t{i}")
        open_fds = server.open_fds()
    waited = time.monotonic() - sent
    assert open_fds <= baseline, f"{open_fds - baseline} of 20 quit connections still open after {waited:.1f} s"
    assert who_line(alice) == "* 2 in lobby: alice, bob"


# -- 7: unknown-command flood --------------------------------------------------------------------
def test_7_unknown_command_flood_is_slowed_or_cut_and_does_not_flood_the_log(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory, "--flood-rate", "10", "--flood-burst", "20", "--flood-kill", "2")
    alice, bob = server.connect("alice"), server.connect("bob")
    flooder = server.connect()
    log = server.data_dir / "chatroom.log"
    log_before = log.stat().st_size
    flooder.send_some(b"/x\n" * 20_000, timeout=2.0)
    flood_sent = time.monotonic()
    worst = 0.0
    for i in range(30):  # about 3 s of bystander round trips during the flood
        worst = max(worst, round_trip(alice, "alice", bob, "bob", str(i)))
        if time.monotonic() - flood_sent > 3:
            break
    assert worst < RTT_LIMIT, f"a bystander's round trip took {worst:.2f} s during the /x flood"
    # the flooder: cut with "ERROR excess flood", or slowed (far from all 20,000 replies in 5 s)
    replies, cut, closed = 0, False, False
    read_until = time.monotonic() + 5
    for _ in range(40_000):
        if time.monotonic() > read_until:
            break
        try:
            line = flooder.next_line(max(0.01, read_until - time.monotonic()))
        except TimeoutError:
            break
        except ConnectionError:
            closed = True
            break
        if line == "ERROR - Command not understood":
            replies += 1
        elif line.startswith("ERROR excess flood"):
            cut = True
    if cut:
        assert closed or flooder.closed_by_server(5), "told 'ERROR excess flood' but left connected"
    else:
        assert replies < 20_000, "all 20,000 unknown commands were answered at once: no flood control"
    grown = log.stat().st_size - log_before
    assert grown < 200_000, f"the log grew {grown} bytes from one client's /x flood"


# -- 8: chat flood ---------------------------------------------------------------------------------
def test_8_chat_flood_is_cut_with_excess_flood_and_bystanders_stay_fast(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory, "--flood-rate", "10", "--flood-burst", "20", "--flood-kill", "2")
    alice, bob = server.connect("alice"), server.connect("bob")
    flooder = server.connect("mallory")
    flood = b"".join(b"flood %d\n" % i for i in range(50_000))
    pushed = 0
    worst = 0.0
    started = time.monotonic()
    for i in range(400):  # about 4 s: push what the server takes, then a bystander round trip
        if pushed < len(flood):
            try:
                pushed += flooder.sock.send(memoryview(flood)[pushed:], socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pushed = len(flood)  # the server cut the flooder
        worst = max(worst, round_trip(alice, "alice", bob, "bob", str(i)))
        if time.monotonic() - started > 4:
            break
    assert worst < RTT_LIMIT, f"a bystander pair's round trip took {worst:.2f} s during a chat flood"
    expect_or_fail(flooder, "ERROR excess flood", 5, "50,000 chat lines at --flood-rate 10")
    assert flooder.closed_by_server(5)
    assert_room_alive(server, alice, "alice", bob, "bob")


def test_8_a_burst_of_100_lines_is_delivered_whole_and_in_order_by_default(server_factory) -> None:  # type: ignore[no-untyped-def]
    """The default burst and --flood-backlog (100 lines) hold a 100-line paste whole; only the refill rate is
    raised (2/s by default would make this a 40 s wait: the rate sets the pace, not what is kept)."""
    server = start(server_factory, "--flood-rate", "20")
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send_raw(b"".join(b"burst line %d\n" % i for i in range(100)))
    got = [bob.expect_prefix("alice: ", 10) for _ in range(100)]
    assert got == [f"alice: burst line {i}" for i in range(100)]


# -- 10: idle partial input and connections per address ------------------------------------------------
def test_10_an_unfinished_line_held_past_the_idle_timeout_is_closed(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory, "--idle-timeout", "1")
    alice = server.connect("alice")  # idle too, but with nothing unfinished
    holder = server.connect()
    holder.send_raw(b"never finished")
    line = expect_or_fail(holder, "ERROR", 5, "an unfinished line held past --idle-timeout 1")
    assert line.startswith("ERROR timeout"), line
    assert holder.closed_by_server(5)
    assert who_line(alice) == "* 1 in lobby: alice"


def test_10_connections_per_address_are_limited(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory, "--max-per-address", "3")
    first = [server.connect(n) for n in ("alice", "bob", "carol")]
    fourth = server.raw_client()
    lines, closed = probe(fourth, timeout=5)
    assert "ERROR too many connections from 127.0.0.1 (max 3)" in lines, lines
    assert closed or fourth.closed_by_server(5)
    assert_room_alive(server, first[0], "alice", first[1], "bob")
    first[2].sync()


# -- 11: joins and leaves in big rooms ------------------------------------------------------------
def test_11_joins_and_leaves_are_not_announced_above_the_announce_limit(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory, "--announce-limit", "5")
    alice, bob = server.connect("alice"), server.connect("bob")
    others = [server.connect() for _ in range(8)]
    assert len(others) == 8
    bob.send("marker one")
    alice.expect("bob: marker one")
    newcomer = server.connect()
    bob.send("marker two")
    between = alice.expect("bob: marker two")
    assert not [line for line in between if "joined" in line], between
    newcomer.close()
    deadline = time.monotonic() + 10
    while who_count(bob) != 10 and time.monotonic() < deadline:
        pass  # each pass is one /who round trip
    bob.send("marker three")
    between = alice.expect("bob: marker three")
    assert not [line for line in between if " left " in line], between


def test_11_small_rooms_still_announce_joins(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory)
    alice, bob = server.connect("alice"), server.connect("bob")
    newcomer = server.connect()
    alice.expect(f"* {guest_nick(newcomer)} joined lobby")
    bob.expect(f"* {guest_nick(newcomer)} joined lobby")


# -- 12: plugins raising BaseException -------------------------------------------------------------
class PluginBoom(BaseException):
    """Not an Exception: what a careless plugin might define."""


def _raise(exc: BaseException) -> Callable[[Any, list[str]], None]:
    def handler(ctx: Any, args: list[str]) -> None:
        raise exc
    return handler


def _exit_in_stream(ctx: Any, args: list[str]) -> None:
    def lines() -> Any:
        yield "first line"
        sys.exit(3)
    ctx.stream(lines())


def _command_plugin(name: str, handler: Callable[[Any, list[str]], None]) -> SimpleNamespace:
    @hookimpl
    def register_commands() -> list[Command]:
        return [Command(name, handler, usage=f"/{name}", summary="misbehaves", max_args=0)]
    return SimpleNamespace(register_commands=register_commands)


BASE_EXCEPTION_PLUGINS = {
    "kbint": lambda: _raise(KeyboardInterrupt()),
    "custom": lambda: _raise(PluginBoom("boom")),
    "genexit": lambda: _raise(GeneratorExit()),
    "streamexit": lambda: _exit_in_stream,
}


@pytest.mark.parametrize("name", list(BASE_EXCEPTION_PLUGINS))
def test_12_a_plugin_raising_base_exceptions_gets_the_caller_an_error_and_the_room_goes_on(
        chatroom_room, name: str) -> None:  # type: ignore[no-untyped-def]
    room = chatroom_room(plugins=[(name, _command_plugin(name, BASE_EXCEPTION_PLUGINS[name]()))])
    alice, bob = room.join("alice"), room.join("bob")
    try:
        got = alice.say(f"/{name}")
    except BaseException as exc:  # noqa: BLE001 - a KeyboardInterrupt reaching pytest would end the run
        pytest.fail(f"/{name}: {type(exc).__name__} escaped the room's loop")
    assert any(line.startswith("ERROR") for line in got), got
    assert not alice.closed
    alice.say("still here")
    assert bob.last == "alice: still here"
    assert alice.say("/upper and on") == ["AND ON"]


def test_12_e2e_a_drop_in_plugin_raising_keyboardinterrupt_does_not_stop_the_server(
        server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plugins = tmp_path / "plugs"
    plugins.mkdir()
    (plugins / "kbint.py").write_text(textwrap.dedent("""
        from chatroom import hookimpl, Command
        def interrupt(ctx, args):
            raise KeyboardInterrupt
        @hookimpl
        def register_commands():
            return [Command("kbint", interrupt, usage="/kbint", summary="Raises KeyboardInterrupt")]
    """))
    server = start(server_factory, "--plugin-dir", str(plugins))
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("/kbint")
    assert_room_alive(server, bob, "bob", alice, "alice")
    alice.sync()  # the reply to /kbint may come after bob's ping
    assert any(line.startswith("ERROR") for line in alice.seen), alice.seen


# -- 6b: fault accounting ------------------------------------------------------------------------
def test_6b_a_guest_cannot_get_a_plugin_disabled_but_hook_faults_still_count(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plugins = tmp_path / "plugs"
    plugins.mkdir()
    (plugins / "flaky.py").write_text(textwrap.dedent("""
        from chatroom import hookimpl, Command
        def flaky(ctx, args):
            if args:
                raise ValueError("cannot handle " + args[0])
            ctx.reply("OK flaky")
        @hookimpl
        def register_commands():
            return [Command("flaky", flaky, usage="/flaky [X]", summary="Fails on any argument", max_args=1)]
    """))
    (plugins / "joiner.py").write_text(textwrap.dedent("""
        from chatroom import hookimpl
        @hookimpl
        def client_joined(ctx):
            raise RuntimeError("joiner is broken")
    """))
    server = start(server_factory, "--plugin-dir", str(plugins), "--plugin-fault-limit", "3")
    alice, bob = server.connect("alice"), server.connect("bob")
    guest = server.connect()  # third client_joined fault: joiner is disabled
    for i in range(10):
        guest.send(f"/flaky {i}")
    replies = guest.sync()
    assert len(replies) == 10 and all(line.startswith("ERROR") for line in replies), replies
    bob.send("/flaky")
    assert "OK flaky" in bob.sync(), "a guest's bad input disabled the plugin for everyone"
    alice.send("/plugins")
    listing = alice.sync()
    flaky = next(line for line in listing if line.startswith("* flaky "))
    joiner = next(line for line in listing if line.startswith("* joiner "))
    assert "disabled" not in flaky
    assert "[disabled after 3 faults]" in joiner


# -- 13: relayed lines stay within the line limit -------------------------------------------------
def test_13_a_chat_line_too_long_once_prefixed_is_refused_to_its_sender(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory)
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send_raw(b"a" * 65_534 + b"\n")  # 65,535 bytes: a legal line
    alice.send("short after")
    lines = alice.sync()
    assert any(line.startswith("ERROR line too long for the room") for line in lines), lines
    event = bob.next_event()
    assert event == protocol.Line("alice: short after"), f"bob got {event!r} first"


# -- 14: confusable nicks and invisible characters ----------------------------------------------------
def test_14_a_nick_confusable_with_a_connected_one_is_refused(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory)
    server.connect("alice")
    guest = server.connect()
    guest.send("/nick aIice")  # capital i
    line = guest.next_line()
    assert line.startswith("ERROR") and "too much like" in line, line
    assert "aIice" in line and "alice" in line, line


def test_14_bidi_separator_and_zero_width_characters_are_removed_from_relayed_text(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = start(server_factory)
    alice, bob = server.connect("alice"), server.connect("bob")
    alice.send("a\u202eb\u2028c\u200bd")
    line = bob.next_line()
    assert line.startswith("alice: a"), line
    assert not set(line) & {"\u202e", "\u2028", "\u200b"}, ascii(line)
    # removed, or neutralised into plain spacing: the visible text is unchanged
    assert "".join(line.removeprefix("alice: ").split()) == "abcd", ascii(line)
