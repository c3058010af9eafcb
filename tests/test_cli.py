"""``chatroom-server``'s command line, as a new user meets it: real subprocesses.

Every start-up mistake (bad port, unusable data folder, log file or plugin
store, a busy or foreign address) must end in one line on stderr, no
traceback and exit status 2 before any plugin is loaded. Wildcard hosts
print the LAN addresses; IPv6 hosts work. Synchronisation is on what the
server prints, with deadlines.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import DEADLINE, LineClient

from chatroom.server import cli as server_cli
from chatroom.server.options import ServerOptions

# ---- helpers -----------------------------------------------------------------------------


def run_server(*args: str, timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    """Run ``chatroom-server`` that is expected to stop by itself; return its outcome."""
    return subprocess.run(["chatroom-server", *args], capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int, *parts: str) -> str:
    """*result* failed with *status*, printed nothing on stdout and one error line naming *parts*."""
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("chatroom-server: error: "), lines
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


class Started:
    """A ``chatroom-server`` subprocess that is expected to listen; reads what it prints on stdout."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(["chatroom-server", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr = ""
        assert self.proc.stdout is not None
        self.first = self.proc.stdout.readline().rstrip("\n")
        if not self.first.startswith("chatroom-server listening on "):
            self.stop()
            raise AssertionError(f"server did not start: {self.first!r} {self.stderr!r}")
        self.port = int(self.first.rpartition(":")[2])

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().rstrip("\n")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, self.stderr = self.proc.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.stderr = self.proc.communicate()
        return self.proc.returncode


@pytest.fixture
def started():
    """``started(*args)`` starts a server; all are stopped at the end."""
    servers: list[Started] = []

    def start(*args: str) -> Started:
        servers.append(Started(*args))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


# ---- a. ports ----------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["70000", "65536", "-1", "99999999999999999999", "²", "http"])
def test_a_port_out_of_range_is_one_line_and_status_2(tmp_path: Path, port: str) -> None:
    result = run_server("--port", port, "--data-dir", str(tmp_path / "d"))
    assert_one_line_error(result, 2, "argument --port", repr(port), "0-65535")
    assert not (tmp_path / "d").exists(), "nothing is created for a refused command line"


def test_parse_port_accepts_the_whole_range() -> None:
    assert [server_cli.parse_port(p) for p in ("0", "1", "65535", " 80 ")] == [0, 1, 65535, 80]


# ---- b. data dir, log file and plugin stores ------------------------------------------------------


def test_a_data_dir_under_a_regular_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = run_server("--data-dir", str(tmp_path / "file" / "data"))
    assert_one_line_error(result, 2, "cannot create data dir", str(tmp_path / "file" / "data"), "Not a directory")


def test_a_data_dir_that_is_a_regular_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = run_server("--data-dir", str(tmp_path / "file"))
    assert_one_line_error(result, 2, str(tmp_path / "file"))


def test_a_plugins_folder_that_is_a_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "plugins").write_text("oops")
    result = run_server("--data-dir", str(tmp_path / "data"))
    assert_one_line_error(result, 2, str(tmp_path / "data" / "plugins"), "not a folder")


def test_a_log_file_that_cannot_be_opened_is_one_line_and_status_2(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    result = run_server("--data-dir", str(tmp_path / "data"), "--log-file", str(tmp_path / "logs"))
    assert_one_line_error(result, 2, "cannot open log file", str(tmp_path / "logs"))


def test_a_board_store_that_is_not_a_database_is_one_line_and_status_2(tmp_path: Path) -> None:
    store = tmp_path / "data" / "plugins" / "board.sqlite3"
    store.parent.mkdir(parents=True)
    garbage = bytes(range(256)) * 40
    store.write_bytes(garbage)
    result = run_server("--data-dir", str(tmp_path / "data"))
    assert_one_line_error(result, 2, f"plugin store {store}", "not a database")
    assert store.read_bytes() == garbage, "the check must not touch the file"


@pytest.mark.parametrize("name", ["rooms.sqlite3", "accounts.sqlite3"])
def test_a_damaged_room_or_account_store_is_one_line_and_status_2(tmp_path: Path, name: str) -> None:
    store = tmp_path / "data" / name
    store.parent.mkdir(parents=True)
    store.write_bytes(bytes(range(256)) * 40)
    result = run_server("--data-dir", str(tmp_path / "data"))
    assert_one_line_error(result, 2, f"store {store}", "not a database")


def test_a_store_with_corrupt_pages_is_one_line_and_status_2(tmp_path: Path) -> None:
    store = tmp_path / "data" / "plugins" / "board.sqlite3"
    store.parent.mkdir(parents=True)
    conn = sqlite3.connect(store)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("CREATE INDEX t_body ON t (body)")
    conn.executemany("INSERT INTO t (body) VALUES (?)", [(f"line {i} " * 10,) for i in range(3000)])
    conn.commit()
    conn.close()
    data = bytearray(store.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    data[10 * page:14 * page] = b"\xa5" * (4 * page)  # header intact, b-tree pages garbage
    store.write_bytes(bytes(data))
    result = run_server("--data-dir", str(tmp_path / "data"))
    assert_one_line_error(result, 2, f"plugin store {store}")


def test_a_server_restarts_on_its_own_healthy_stores(tmp_path: Path, started) -> None:
    first = started("--data-dir", str(tmp_path / "data"), "--quiet")
    alice = LineClient("127.0.0.1", first.port)
    try:
        alice.expect_prefix("* Welcome")
        alice.send("/post")
        alice.send("kept")
        alice.send("#")
        alice.expect("OK")
    finally:
        alice.close()
    assert first.stop() == 0
    assert (tmp_path / "data" / "plugins" / "board.sqlite3").exists()
    second = started("--data-dir", str(tmp_path / "data"), "--quiet")
    bob = LineClient("127.0.0.1", second.port)
    try:
        bob.expect_prefix("* Welcome")
        bob.send("/read")
        assert bob.expect("#") == ["kept"]
    finally:
        bob.close()


# ---- c. addresses --------------------------------------------------------------------------


def test_address_in_use_is_printed_once_with_status_2(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        quiet = run_server("--port", str(port), "--data-dir", str(tmp_path / "d"), "--quiet")
        loud = run_server("--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert_one_line_error(quiet, 2, f"cannot listen on 127.0.0.1:{port}", "Address already in use")
    assert loud.returncode == 2 and "Traceback" not in loud.stderr
    assert loud.stderr.count("Address already in use") == 1, loud.stderr
    assert "cannot listen on" in (tmp_path / "d" / "chatroom.log").read_text(), "still logged in the log file"


def _global_ipv4_from_ip_tool() -> set[str]:
    """Global IPv4 addresses as ``ip -o -4 addr`` lists them (empty if there is no ``ip``)."""
    if shutil.which("ip") is None:
        return set()
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, timeout=DEADLINE).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3}


def test_a_wildcard_host_prints_the_lan_addresses_and_each_one_works(tmp_path: Path, started) -> None:
    expected = server_cli.lan_addresses()
    assert _global_ipv4_from_ip_tool() <= set(expected), "every global interface address is found"
    server = started("--host", "0.0.0.0", "--data-dir", str(tmp_path / "d"), "--quiet")
    assert server.first == f"chatroom-server listening on 0.0.0.0:{server.port}"
    printed = [server.readline() for _ in expected]
    assert printed == [f"chatroom-server LAN address {address}:{server.port}" for address in expected]
    for address in expected:
        assert not address.startswith("127.")
        client = LineClient(address, server.port)
        try:
            client.expect_prefix("* Welcome")
        finally:
            client.close()


def test_a_wildcard_host_prints_the_lan_addresses_of_the_tls_and_irc_ports_too(tmp_path: Path, started) -> None:
    """LAN machines need the address of every door, not only the main port's: it used to print
    ``IRC on 0.0.0.0:PORT``, which no other machine can use, and nothing for ``--tls-port``."""
    expected = server_cli.lan_addresses()  # none on a machine without a network: the bound lines alone
    server = started("--host", "0.0.0.0", "--data-dir", str(tmp_path / "d"), "--quiet", "--tls-port", "0",
                     "--web-port", "off", "--irc-port", "0")
    lines: list[str] = []
    while sum(line.startswith("chatroom-server IRC on ") for line in lines) < 1 + len(expected):
        lines.append(server.readline())
    tls_port = int(next(line for line in lines if line.startswith("chatroom-server TLS on ")).split()[3].rpartition(":")[2])
    assert [f"chatroom-server LAN address {address}:{tls_port} (TLS)" for address in expected] == [
        line for line in lines if line.endswith(" (TLS)")]
    irc = [line for line in lines if line.startswith("chatroom-server IRC on ")]
    irc_port = int(irc[0].rpartition(":")[2])
    assert irc == [f"chatroom-server IRC on {address}:{irc_port}" for address in ["0.0.0.0", *expected]]
    with socket.create_connection(([*expected, "127.0.0.1"][0], irc_port), timeout=DEADLINE) as sock:
        sock.sendall(b"NICK lan\r\nUSER lan 0 * :lan\r\n")
        got = b""
        while b" 001 lan " not in got:
            chunk = sock.recv(4096)
            assert chunk, got
            got += chunk


def test_lan_addresses_leave_out_loopback_and_link_local() -> None:
    for family in (socket.AF_INET, socket.AF_INET6):
        for address in server_cli.lan_addresses(family):
            assert address not in ("127.0.0.1", "::1", "0.0.0.0", "::")
            assert not address.startswith(("127.", "fe80:"))
            assert (":" in address) == (family == socket.AF_INET6)


def test_parse_if_inet6_reads_the_proc_file_format() -> None:
    text = ("00000000000000000000000000000001 01 80 10 80       lo\n"
            "fd000000000000000000000000000002 04 40 00 80     eth0\n"
            "garbage\n\n")
    assert server_cli.parse_if_inet6(text) == {"::1", "fd00::2"}


def test_ipv6_loopback_listens_and_prints_the_address_in_brackets(tmp_path: Path, started) -> None:
    server = started("--host", "::1", "--data-dir", str(tmp_path / "d"), "--quiet")
    assert server.first == f"chatroom-server listening on [::1]:{server.port}"
    client = LineClient("::1", server.port)
    try:
        client.expect_prefix("* Welcome")
    finally:
        client.close()


# ---- d. flood control and limits ---------------------------------------------------------------


LIMITS = ("flood_rate", "flood_burst", "flood_kill", "flood_backlog", "idle_timeout", "max_per_address",
          "announce_limit", "default_room", "history_on_join", "history_keep", "record_history", "max_rooms")


def limit_options(*argv: str) -> dict[str, object]:
    """The limit and room fields of the ServerOptions the command line *argv* builds."""
    options = ServerOptions.from_args(server_cli.build_parser().parse_args(list(argv)))
    return {name: getattr(options, name) for name in LIMITS}


def test_limit_options_have_the_documented_defaults_and_server_names() -> None:
    assert limit_options() == {
        "flood_rate": 2.0, "flood_burst": 20.0, "flood_kill": 0.0, "flood_backlog": 100,
        "idle_timeout": 60.0, "max_per_address": 64, "announce_limit": 200,
        "default_room": "#lobby", "history_on_join": 20, "history_keep": (None, None),
        "record_history": True, "max_rooms": 1000,
    }
    assert limit_options(
        "--flood-rate", "0", "--flood-burst", "10.5", "--flood-kill", "0", "--flood-backlog", "7",
        "--idle-timeout", "2.5",
        "--max-per-address", "0", "--announce-limit", "0", "--default-room", "Class",
        "--history-on-join", "0", "--history-keep", "1000,7d", "--max-rooms", "5") == {
        "flood_rate": 0.0, "flood_burst": 10.5, "flood_kill": 0.0, "flood_backlog": 7,
        "idle_timeout": 2.5, "max_per_address": 0, "announce_limit": 0,
        "default_room": "#class", "history_on_join": 0, "history_keep": (1000, 7.0),
        "record_history": True, "max_rooms": 5,
    }
    assert set(LIMITS) <= {f.name for f in dataclasses.fields(ServerOptions)}
    assert limit_options("--no-history")["record_history"] is False


@pytest.mark.parametrize("option, value", [
    ("--flood-rate", "-1"), ("--flood-rate", "inf"), ("--flood-burst", "0"), ("--flood-kill", "nan"),
    ("--flood-backlog", "-1"), ("--flood-backlog", "2.5"),
    ("--idle-timeout", "0"), ("--max-per-address", "-3"), ("--max-per-address", "1.5"), ("--announce-limit", "x"),
])
def test_a_bad_limit_is_one_line_and_status_2(tmp_path: Path, option: str, value: str) -> None:
    result = run_server(option, value, "--data-dir", str(tmp_path / "d"))
    assert_one_line_error(result, 2, f"argument {option}", repr(value))


def test_the_help_gives_units_and_defaults_of_every_limit() -> None:
    result = run_server("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option, words in [("--flood-rate R", ("per second", "default 2", "0 disables")),
                          ("--flood-burst B", ("default 20",)),
                          ("--flood-backlog N", ("lines", "default 100")),
                          ("--flood-kill S", ("seconds", "default 0: never")),
                          ("--idle-timeout S", ("seconds", "default 60")),
                          ("--max-per-address N", ("default 64", "0: unlimited")),
                          ("--announce-limit N", ("default 200", "0: always announce"))]:
        start = text.rindex(option)  # the help entry, not the usage line
        for word in words:
            assert word in text[start:start + 400], (option, word)


def test_the_help_is_grouped_with_a_short_usage_line() -> None:
    """A person reading ``chatroom-server --help`` sees a one-line usage, then the few options every run
    uses, then one titled group per subject (the usage block used to run to 22 lines, and files, plugins
    and passwords were mixed into the first group)."""
    result = run_server("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: chatroom-server [OPTION]...\n\n")
    groups: dict[str, list[str]] = {}
    title = ""
    for line in result.stdout.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line[:-1]
        elif line.startswith("  -"):
            groups.setdefault(title, []).append(line.split()[0].rstrip(","))
    assert groups["options"] == ["-h", "--host", "--port", "--data-dir", "--log-file", "--config", "--quiet", "-v",
                                 "--version"]
    assert groups["file transfer"][0] == "--max-file-size" and "--resume-keep" in groups["file transfer"]
    assert "--plugin-dir" in groups["plugins"] and "--slow-hook-ms" in groups["plugins"]
    assert groups["passwords"] == ["--password-file", "--reset-password"]
    assert "--max-queue" in groups["flood control and connection limits"]


def test_a_server_with_every_limit_set_starts_and_serves(tmp_path: Path, started) -> None:
    server = started("--data-dir", str(tmp_path / "d"), "--quiet", "--flood-rate", "5", "--flood-burst", "50",
                     "--flood-kill", "10", "--idle-timeout", "30", "--max-per-address", "8",
                     "--announce-limit", "0")
    client = LineClient("127.0.0.1", server.port)
    try:
        client.expect_prefix("* Welcome")
        client.send("/upper ok")
        client.expect("OK")
    finally:
        client.close()


def test_limit_options_reach_the_server_constructor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_server(options: ServerOptions, **parts: object) -> None:
        seen.update(vars(options), parts=set(parts))
        raise server_cli.StartupError("stop here")

    monkeypatch.setattr(server_cli, "Server", fake_server)
    monkeypatch.setattr(server_cli, "setup_logging", lambda *a, **k: None)
    status = server_cli.main(["--data-dir", str(tmp_path / "d"), "--flood-rate", "7", "--max-per-address", "3",
                              "--no-plugins", "--quiet"])
    assert status == 2
    assert seen["flood_rate"] == 7.0 and seen["max_per_address"] == 3 and seen["idle_timeout"] == 60.0
    assert seen["announce_limit"] == 200 and seen["flood_burst"] == 20.0 and seen["flood_kill"] == 0.0
    assert seen["flood_backlog"] == 100
    assert seen["parts"] == {"plugins", "claim"}, "I/O parts are arguments of their own, not options"


def test_non_negative_int_and_floats_refuse_what_they_should() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        server_cli.non_negative_int("-1")
    with pytest.raises(argparse.ArgumentTypeError):
        server_cli.positive_float("0")
    assert server_cli.non_negative_float("0") == 0.0 and server_cli.non_negative_int("12") == 12
