"""TLS end to end: the real ``chatroom-server`` (``--tls``, ``--tls-port``) and ``chatroom-client --tls``.

Clients are the stdlib ``ssl`` module over the :class:`LineClient` of
``conftest.py``, and real ``chatroom-client`` processes. Every wait is on a
printed line or a received event, with a deadline.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import DEADLINE, LineClient, ServerProcess
from test_e2e_transfer import ClientProcess, starts
from web_kit import WSClient

from chatroom.net.tls import CLEAR_ERROR
from chatroom.wire.irc import IrcParser, Message

MiB = 1024 * 1024


def tls_line(server: ServerProcess) -> tuple[int, str]:
    """Read the server's ``chatroom-server TLS on HOST:PORT fingerprint SHA256:...`` line: (port, fingerprint)."""
    assert server.proc.stdout is not None
    line = server.proc.stdout.readline().strip()
    words = line.split()
    assert words[:3] == ["chatroom-server", "TLS", "on"] and words[4] == "fingerprint", line
    return int(words[3].rpartition(":")[2]), words[5]


def start_tls(server_factory: Any, *args: str, data_dir: Path | None = None) -> tuple[ServerProcess, int, str]:
    server = server_factory(*args, data_dir=data_dir)
    port, fingerprint = tls_line(server)
    server.tls_port = port  # type: ignore[attr-defined]
    return server, port, fingerprint


def unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def tls_client(server: ServerProcess, port: int, context: ssl.SSLContext | None = None) -> LineClient:
    """A :class:`LineClient` over TLS to *port* (closed at teardown)."""
    raw = socket.create_connection((server.host, port), timeout=DEADLINE)
    sock = (context or unverified()).wrap_socket(raw, server_hostname="localhost")
    client = LineClient.from_socket(sock)
    server.clients.append(client)
    return client


def der_fingerprint(der: bytes) -> str:
    return "SHA256:" + hashlib.sha256(der).hexdigest().upper()


def colons(fingerprint: str) -> str:
    hexdigits = fingerprint.removeprefix("SHA256:").replace(":", "")
    return "SHA256:" + ":".join(hexdigits[i:i + 2] for i in range(0, len(hexdigits), 2))


def run_client(port: int, cwd: Path, home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``chatroom-client`` in line mode with *stdin*, its config dir under *home*; returns when it exits."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    return subprocess.run(["chatroom-client", "--port", str(port), *args], cwd=cwd, input=stdin, env=env,
                          capture_output=True, text=True, timeout=DEADLINE)


# -- certificates ------------------------------------------------------------------------


def test_certificate_is_made_once_with_a_private_key_and_its_fingerprint_printed(server_factory: Any,
                                                                                  tmp_path: Path) -> None:
    data = tmp_path / "data"
    server, port, printed = start_tls(server_factory, "--tls", data_dir=data)
    assert port == server.port  # --tls alone: the main port speaks TLS, and the first line names it
    cert, key = data / "tls-cert.pem", data / "tls-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert printed == colons(der_fingerprint(ssl.PEM_cert_to_DER_cert(cert.read_text())))
    client = tls_client(server, port)
    assert colons(der_fingerprint(client.sock.getpeercert(binary_form=True))) == printed
    client.expect_prefix("* Welcome")
    pem = cert.read_bytes(), key.read_bytes()
    assert server.stop() == 0
    again, _, printed_again = start_tls(server_factory, "--tls", data_dir=data)
    assert printed_again == printed and (cert.read_bytes(), key.read_bytes()) == pem
    tls_client(again, again.port).expect_prefix("* Welcome")


def test_given_certificate_and_key_are_served(server_factory: Any, tmp_path: Path) -> None:
    first, _, printed = start_tls(server_factory, "--tls", data_dir=tmp_path / "made")
    first.stop()
    cert, key = tmp_path / "made" / "tls-cert.pem", tmp_path / "made" / "tls-key.pem"
    server, port, again = start_tls(server_factory, "--tls-cert", str(cert), "--tls-key", str(key), "--tls-port", "0",
                                    data_dir=tmp_path / "other")
    assert again == printed and port != server.port
    assert not (tmp_path / "other" / "tls-cert.pem").exists()
    context = ssl.create_default_context(cafile=str(cert))  # the self-signed certificate as its own CA
    tls_client(server, port, context).expect_prefix("* Welcome")


# -- two listeners, one set of rooms ---------------------------------------------------------


def test_clear_and_tls_at_once_share_rooms_and_history(server_factory: Any) -> None:
    server, port, _ = start_tls(server_factory, "--tls-port", "0")
    alice = server.connect("alice")
    alice.send("said before bob came")
    alice.sync()
    bob = tls_client(server, port)
    welcome = bob.expect_prefix("* Welcome")
    assert "You are guest" in welcome
    bob.expect_where(lambda line: line.endswith("alice: said before bob came"), "history replayed over TLS")
    bob.send("/nick bob")
    bob.expect("OK nick bob")
    alice.expect_where(lambda line: line.endswith("is now known as bob"), "bob named")
    bob.send("hello over tls")
    alice.expect_where(lambda line: line.endswith("bob: hello over tls"), "bob's line")
    alice.send("hello in clear")
    bob.expect_where(lambda line: line.endswith("alice: hello in clear"), "alice's line")
    bob.send("/who")
    who = bob.expect_prefix("* 2 in lobby")
    assert "alice" in who and "bob" in who


def test_a_burst_over_tls_is_read_to_its_last_byte(server_factory: Any) -> None:
    """Reads stop at READ_SIZE, maybe inside a TLS record: what stays in the SSL object must still be served.

    The server is throttled (flood control) while two records arrive: 1000
    bytes, then 64 KiB ending in ``/upper done``. Its next read takes 64 KiB
    and stops 1000 bytes short, inside the last record, with the socket empty.
    """
    server, port, _ = start_tls(server_factory, "--tls", "--flood-rate", "5", "--flood-burst", "6")
    client = tls_client(server, port)
    client.expect_prefix("* Welcome")
    client.send_raw(b"".join(b"/upper p%d\n" % i for i in range(7)))
    client.expect("P5")  # the 7th line is held: the bucket is empty, the socket is not read for 0.2 s
    client.send_raw(b"/upper " + b"x" * 992 + b"\n")
    client.send_raw(b"y" * (65536 - 13) + b"\n/upper done\n")
    client.expect("P6")
    client.expect("DONE", timeout=5.0)


def test_openssl_s_client_works_like_nc(server_factory: Any) -> None:
    server, port, _ = start_tls(server_factory, "--tls-port", "0")
    proc = subprocess.Popen(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{port}"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    watchdog = threading.Timer(DEADLINE, proc.kill)  # a silent server cannot block readline past the deadline
    watchdog.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"/nick sam\n/upper over openssl\n")
        proc.stdin.flush()
        seen: list[bytes] = []
        deadline = time.monotonic() + DEADLINE
        while b"OVER OPENSSL\n" not in seen:
            assert time.monotonic() < deadline, f"no reply through openssl s_client; saw {seen}"
            line = proc.stdout.readline()
            assert line, f"openssl s_client ended; saw {seen}"
            seen.append(line)
        assert seen[0].startswith(b"* Welcome") and b"OK nick sam\n" in seen
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            stream.close()  # type: ignore[union-attr]


# -- confusion between the ports, handshake timeout ---------------------------------------------


def test_clear_client_on_the_tls_port_is_told_and_closed(server_factory: Any) -> None:
    server, port, _ = start_tls(server_factory, "--tls-port", "0")
    client = LineClient(server.host, port)
    server.clients.append(client)
    client.send("hello")
    assert client.next_line() == CLEAR_ERROR
    assert client.closed_by_server(5.0)
    server.connect("still").sync()  # the server serves on


def test_chatroom_client_without_tls_on_the_tls_port_is_told_to_add_it(server_factory: Any, tmp_path: Path) -> None:
    server, port, _ = start_tls(server_factory, "--tls-port", "0")
    (tmp_path / "c").mkdir()
    run = run_client(port, tmp_path / "c", tmp_path / "home", "--name", "carol", stdin="hi\n")
    assert run.returncode == 2, run  # a usage mistake, as another door's port is (1 is a server lost)
    assert "chatroom-client: this port speaks TLS: add --tls (or give --port the clear port)" in run.stderr, run
    server.connect("still").sync()


def test_tls_client_on_the_clear_port_is_closed_at_once(server_factory: Any) -> None:
    server, _, _ = start_tls(server_factory, "--tls-port", "0")
    started = time.monotonic()
    with pytest.raises(ssl.SSLError):
        tls_client(server, server.port)
    assert time.monotonic() - started < 3.0
    raw = server.raw_client()
    raw.expect_prefix("* Welcome")
    raw.send_raw(b"\x16")  # a ClientHello's first byte alone, no newline
    assert raw.closed_by_server(3.0)
    assert "speaks TLS on the clear port" in server.log_text()


def test_handshake_timeout_closes_a_silent_client(server_factory: Any) -> None:
    server, port, _ = start_tls(server_factory, "--tls-port", "0", "--tls-handshake-timeout", "1")
    silent = LineClient(server.host, port)
    server.clients.append(silent)
    started = time.monotonic()
    assert silent.next_line(5.0) == CLEAR_ERROR  # a person on nc waiting for a greeting learns why
    assert silent.closed_by_server(5.0)
    assert 0.9 <= time.monotonic() - started < 5.0
    half = socket.create_connection((server.host, port), timeout=DEADLINE)  # a handshake begun, never finished
    half.sendall(b"\x16\x03\x01\x00\x10")
    half.settimeout(5.0)
    assert half.recv(100) == b""
    half.close()
    assert "TLS handshake timeout" in server.log_text()


def test_handshakes_count_against_the_per_address_budget(server_factory: Any) -> None:
    server, port, _ = start_tls(server_factory, "--tls-port", "0", "--max-per-address", "2")
    waiting = [socket.create_connection((server.host, port), timeout=DEADLINE) for _ in range(2)]
    third = LineClient(server.host, port)
    server.clients.append(third)
    assert third.next_line() == "ERROR too many connections from 127.0.0.1 (max 2)"
    for sock in waiting:
        sock.close()
    deadline = time.monotonic() + DEADLINE
    while True:  # the closed handshakes give their places back as the server notices them
        try:
            tls_client(server, port).expect_prefix("* Welcome", timeout=2.0)
            break
        except OSError:  # refused in clear text: the TLS handshake fails (ssl.SSLError), or the socket closes
            assert time.monotonic() < deadline, "the budget was never given back"


def every_tls_door(server_factory: Any, *args: str) -> tuple[ServerProcess, dict[str, int]]:
    """A server with a TLS port on every door (line, web, IRC): the server and each door's TLS port."""
    server = server_factory("--tls-port", "0", "--web-port", "0", "--irc-port", "0", "--irc-tls-port", "0", *args)
    ports: dict[str, int] = {}
    for _ in range(10):
        line = server.proc.stdout.readline()
        words = line.split()
        if line.startswith("chatroom-server TLS on "):
            ports["line"] = int(words[3].rpartition(":")[2])
        elif line.startswith("chatroom-server web https://"):
            ports["web"] = int(words[2].rstrip("/").rpartition(":")[2])
        elif line.startswith("chatroom-server IRC TLS on "):
            ports["irc"] = int(words[4].rpartition(":")[2])
        if len(ports) == 3:
            return server, ports
    raise AssertionError(f"the server did not print every TLS port: {ports}")


def read_to_the_end(sock: socket.socket) -> bytes:
    """What *sock* receives until the server closes it (DEADLINE at most)."""
    sock.settimeout(DEADLINE)
    got = b""
    while data := sock.recv(65536):
        got += data
    return got


def test_every_door_tells_clear_text_on_its_tls_port_in_its_own_words(server_factory: Any) -> None:
    """Each door's TLS gate answers a client that speaks clear text (at once) or nothing (at the handshake
    timeout) with that door's answer: the line protocol's ERROR line, an IRC ``ERROR :Closing Link: ...`` message
    (parsed as one, as a client would), an HTTP 400 or nothing on the web door."""
    server, ports = every_tls_door(server_factory, "--tls-handshake-timeout", "1")
    error = (CLEAR_ERROR + "\n").encode()
    closing = b"ERROR :Closing Link: this port speaks TLS; connect with TLS (port 6697 convention)\r\n"
    parser = IrcParser()
    parser.receive_data(closing)
    said_irc = parser.next_event()
    assert isinstance(said_irc, Message) and said_irc.command == "ERROR" and said_irc.params == [
        "Closing Link: this port speaks TLS; connect with TLS (port 6697 convention)"]
    answers = {"line": error, "irc": closing, "web": b""}
    spoken = {"line": (b"hello\n", error), "irc": (b"NICK x\r\nUSER x 0 * :X\r\n", closing),
              "web": (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", None)}
    for door, (said, answer) in spoken.items():
        with socket.create_connection((server.host, ports[door]), timeout=DEADLINE) as talker, \
                socket.create_connection((server.host, ports[door]), timeout=DEADLINE) as silent:
            talker.sendall(said)
            got = read_to_the_end(talker)
            if answer is None:
                assert got.startswith(b"HTTP/1.1 400 ")
                assert got.endswith(b"\r\n\r\nthis port speaks HTTPS: use https:// in the address\n"), got
            else:
                assert got == answer, door
            started = time.monotonic()
            assert read_to_the_end(silent) == answers[door], door
            assert 0.5 <= time.monotonic() - started < 5.0
    assert "Traceback" not in server.log_text()


def test_shutdown_with_handshakes_in_flight_on_every_door(server_factory: Any) -> None:
    """Handshakes begun, or not begun, on every door's TLS port do not hold up a shutdown nor break it."""
    server, ports = every_tls_door(server_factory, "--tls-handshake-timeout", "60")
    waiting = []
    for port in ports.values():
        begun = socket.create_connection((server.host, port), timeout=DEADLINE)
        begun.sendall(b"\x16\x03\x01\x00\x10")  # a handshake record's header, its body never sent
        waiting += [begun, socket.create_connection((server.host, port), timeout=DEADLINE)]
    tls_client(server, ports["line"]).expect_prefix("* Welcome")  # accepted after the waiting ones
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 5.0
    for sock in waiting:
        assert read_to_the_end(sock) == b""
        sock.close()
    assert "Traceback" not in server.log_text()


def test_a_wss_member_at_shutdown_gets_the_notice_then_a_close_frame(server_factory: Any) -> None:
    """The shutdown closes each member at once after its notice: over WSS the close frame goes out on the
    TLS socket, like the notice (1001, going away), and the server stops cleanly."""
    server, ports = every_tls_door(server_factory)
    member = WSClient(server.host, ports["web"], tls=True, name="localhost")
    try:
        member.expect("hello")
        member.sync()
        assert server.stop() == 0
        member.expect_line("* server shutting down")
        assert member.expect_close() == 1001
    finally:
        member.close()
    assert "Traceback" not in server.log_text()


def test_unusable_certificate_is_one_line_and_status_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    run = subprocess.run(["chatroom-server", "--port", "0", "--data-dir", str(tmp_path / "d"), "--tls-cert", str(bad),
                          "--tls-key", str(bad)], capture_output=True, text=True, timeout=DEADLINE)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith(f"chatroom-server: error: cannot use TLS certificate {bad} with key {bad}: ")
    half = subprocess.run(["chatroom-server", "--port", "0", "--data-dir", str(tmp_path / "d"), "--tls-cert", str(bad)],
                          capture_output=True, text=True, timeout=DEADLINE)
    assert half.returncode == 2 and half.stderr == "chatroom-server: error: --tls-cert and --tls-key go together\n"


# -- chatroom-client --tls ----------------------------------------------------------------------


def test_client_trusts_on_first_use_and_refuses_a_changed_certificate(server_factory: Any, tmp_path: Path) -> None:
    server, port, printed = start_tls(server_factory, "--tls", data_dir=tmp_path / "d1")
    home = tmp_path / "home"
    first = run_client(port, tmp_path / "c", home, "--tls", "--name", "carol", stdin="hi over tls\n")
    assert first.returncode == 0, first.stderr
    assert f"trusting 127.0.0.1:{port} on first use: certificate {printed}" in first.stderr
    known = home / ".config" / "chatroom" / "known_hosts"
    assert known.read_text() == f"127.0.0.1:{port} {printed}\n"
    second = run_client(port, tmp_path / "c", home, "--tls", "--name", "carol", stdin="/who\n")
    assert second.returncode == 0 and "trusting" not in second.stderr and "carol: hi over tls" in second.stdout
    server.stop()
    other, _, new = start_tls(server_factory, "--tls", "--port", str(port), data_dir=tmp_path / "d2")
    assert other.port == port and new != printed
    refused = run_client(port, tmp_path / "c", home, "--tls", "--name", "carol", stdin="secret\n")
    assert refused.returncode == 1
    line = refused.stderr.strip()
    assert line.startswith("chatroom-client: REFUSED: the certificate of 127.0.0.1:") and "CHANGED" in line
    assert printed in line and new in line and "\n" not in line
    assert known.read_text() == f"127.0.0.1:{port} {printed}\n"
    watcher = tls_client(other, port)
    watcher.send("/history 20")
    assert not any("secret" in text for text in watcher.sync())


def test_client_fingerprint_pin_and_ca(server_factory: Any, tmp_path: Path) -> None:
    server, port, printed = start_tls(server_factory, "--tls-port", "0")
    home = tmp_path / "home"
    pinned = run_client(port, tmp_path / "c", home, "--fingerprint", printed.lower(), "--name", "dan",
                        stdin="pinned hello\n")
    assert pinned.returncode == 0, pinned.stderr
    assert not (home / ".config" / "chatroom" / "known_hosts").exists()
    wrong = "SHA256:" + ":".join(["AB"] * 32)
    refused = run_client(port, tmp_path / "c", home, "--tls", "--fingerprint", wrong, "--name", "dan", stdin="x\n")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"chatroom-client: REFUSED: the certificate of 127.0.0.1:{port} has "
                                      f"fingerprint {printed}, not the pinned {wrong}")
    ca = run_client(port, tmp_path / "c", home, "--ca", str(server.data_dir / "tls-cert.pem"), "--name", "dan",
                    stdin="/who\n")
    assert ca.returncode == 0 and "dan: pinned hello" in ca.stdout, ca.stderr
    other_ca = tmp_path / "other.pem"
    first, _, _ = start_tls(server_factory, "--tls", data_dir=tmp_path / "elsewhere")
    first.stop()
    other_ca.write_bytes((tmp_path / "elsewhere" / "tls-cert.pem").read_bytes())
    bad = run_client(port, tmp_path / "c", home, "--ca", str(other_ca), "--name", "dan", stdin="x\n")
    assert bad.returncode == 1 and "REFUSED" in bad.stderr and str(other_ca) in bad.stderr
    clear = run_client(server.port, tmp_path / "c", home, "--tls", "--name", "dan", stdin="x\n")
    assert clear.returncode == 1 and clear.stderr.startswith(f"chatroom-client: cannot connect to 127.0.0.1:{server.port}: "
                                                             "no TLS handshake")


def test_file_transfer_between_two_clients_over_tls(server_factory: Any, tmp_path: Path) -> None:
    server, port, printed = start_tls(server_factory, "--tls-port", "0")
    pin = ("--fingerprint", printed)
    bob = ClientProcess(port, tmp_path / "bob", "--name", "bob", *pin)
    alice = None
    try:
        bob.expect(starts("* Welcome"))
        alice = ClientProcess(port, tmp_path / "alice", "--name", "alice", *pin)
        alice.expect(starts("* Welcome"))
        bob.expect(lambda line: line.endswith("is now known as alice"))
        content = os.urandom(5 * MiB + 321)
        (alice.send_dir / "over tls.bin").write_bytes(content)
        alice.send('/sendfile "over tls.bin"')
        sent = alice.expect(starts('sent "over tls.bin"'))
        assert f"({len(content)} bytes) to bob" in sent
        got = bob.expect(starts('received "over tls.bin"'))
        assert "sha256 ok" in got
        assert (bob.received_dir / "over tls.bin").read_bytes() == content
    finally:
        bob.kill()
        if alice is not None:
            alice.kill()
