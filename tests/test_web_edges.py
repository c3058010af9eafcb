"""The web door's edges (issue 17, rows 10, 15 and 16), end to end: the real ``chatroom-server`` spoken to with
raw HTTP over TCP and a wsproto WebSocket client (tests/web_kit.py). ``Host`` against DNS rebinding, symlinks
out of ``--web-static``, nothing after the server's Close frame, flood control for refused frames and pings,
the headers and texts of refusals, clear HTTP on the HTTPS port, WebSocket versions, silent connections, and
one guest number per page load. Every wait is on received bytes with a deadline."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from test_web_e2e import get, web  # noqa: F401
from web_kit import WSClient, close_all, closed_by_peer, connect, http, server_frames, web_url
from wsproto.events import BytesMessage, Ping

import pytest

from chatroom.wire.lines import encode_frame

CLOSE = 0x8


@pytest.fixture(autouse=True)
def _close_websockets():  # type: ignore[no-untyped-def]
    yield
    close_all()


def refusal(answer: tuple[int, dict[str, str], bytes], status: int) -> bytes:
    """Check a refusal: its status, never cached, no referrer, not sniffed, no Python repr in its text."""
    got, headers, body = answer
    assert got == status, (got, body)
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff" and headers["content-type"] == "text/plain; charset=utf-8"
    assert not any(mark in body for mark in (b"bytearray(", b"b'", b'b"', b"\\x")), body
    return body


def until_closed(client: WSClient) -> list[tuple[int, bytes]]:
    """Every frame the server sends *client* from now until it closes the TCP connection."""
    return server_frames(closed_by_peer(client.sock))


def close_of(frames: list[tuple[int, bytes]]) -> tuple[int, str]:
    """The code and reason of the Close frame, which must be the last frame and the only one."""
    assert [op for op, _ in frames].count(CLOSE) == 1 and frames[-1][0] == CLOSE, frames[-3:]
    payload = frames[-1][1]
    return int.from_bytes(payload[:2], "big"), payload[2:].decode()


# -- row 10: Host, against DNS rebinding --------------------------------------------------------------------


def test_only_the_servers_own_names_and_addresses_are_answered(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web("--web-host", "chat.lan", "--web-host", "203.0.113.7")
    body = refusal(http(host, port, f"GET / HTTP/1.1\r\nHost: rebind.example:{port}\r\n\r\n".encode()), 403)
    assert body == b"this server does not answer to the name rebind.example:%d (chatroom-server --web-host NAME " \
                   b"adds it)\n" % port
    # the page of another site, its name rebound to this server: Origin equals Host, and still no WebSocket
    assert WSClient(host, port, name="rebind.example").status == 403
    assert "host 'rebind.example:%d' is not one of the server's" % port in server.log_text()
    for name in ("10.1.2.3", "[2001:db8::1]", "localhost.example", "chat.lan.evil.example"):
        assert http(host, port, f"GET / HTTP/1.1\r\nHost: {name}:{port}\r\n\r\n".encode())[0] == 403, name
    answered = [f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST.", f"app.localhost:{port}", "127.0.0.2",
                f"[::1]:{port}", f"{socket.gethostname()}:{port}", f"chat.lan:{port}", "Chat.LAN", "203.0.113.7:80"]
    for name in answered:
        assert http(host, port, f"GET / HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())[0] == 200, name
    assert http(host, port, b"GET / HTTP/1.0\r\n\r\n")[0] == 200  # no Host at all: not a browser
    assert WSClient(host, port, name="chat.lan").status == 101  # --web-host: its own page may connect


def test_web_host_star_answers_any_name(web) -> None:  # type: ignore[no-untyped-def]
    _, host, port = web("--web-host", "*")
    assert http(host, port, f"GET / HTTP/1.1\r\nHost: behind.a.proxy:{port}\r\n\r\n".encode())[0] == 200


# -- row 16 ----------------------------------------------------------------------------------------------------


def test_web_static_serves_no_symlink_out_of_its_folder(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret"
    (secret / "dir").mkdir(parents=True)
    (secret / "key.txt").write_text("do not serve")
    (secret / "dir" / "inner.txt").write_text("nor this")
    static = tmp_path / "static"
    (static / "sub").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>t</title>")
    (static / "sub" / "page.txt").write_text("inside")
    os.symlink(secret / "key.txt", static / "key.txt")
    os.symlink(secret / "dir", static / "outside")
    os.symlink("/etc/passwd", static / "passwd")
    os.symlink(static / "sub" / "page.txt", static / "alias.txt")  # a link that stays inside is served
    os.symlink(static / "sub", static / "same")
    server = server_factory("--web-port", "0", "--web-static", str(static))
    _, host, port = web_url(server)
    for path in ("/key.txt", "/outside/inner.txt", "/passwd"):
        assert get(host, port, path)[0] == 404, path
    for path in ("/alias.txt", "/same/page.txt", "/sub/page.txt"):
        assert get(host, port, path)[2] == b"inside", path


def test_nothing_follows_the_servers_close_frame(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web("--flood-rate", "2", "--flood-burst", "5", "--flood-kill", "1")
    quitter = WSClient(host, port)
    quitter.sync()
    quitter.send("/quit")
    assert close_of(until_closed(quitter)) == (1000, "quit")
    flooder = WSClient(host, port)
    flooder.sync()
    flooder.send("\n".join(f"spam {i}" for i in range(300)))
    frames = until_closed(flooder)
    assert close_of(frames) == (1008, "excess flood")
    assert b'"text":"ERROR excess flood"' in frames[-2][1]


def test_refused_frames_and_pings_are_charged_to_flood_control(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web("--flood-rate", "2", "--flood-burst", "5", "--flood-kill", "1")
    for attack in ([BytesMessage(data=b"file-end 99 " + b"0" * 64 + b"\n")] * 300,
                   [BytesMessage(data=b"file-explode 1\n")] * 300,
                   [Ping(payload=b"p")] * 2000):
        client = WSClient(host, port)
        client.sync()
        client.sock.sendall(b"".join(client.ws.send(event) for event in attack))
        frames = until_closed(client)
        assert close_of(frames) == (1008, "excess flood")
        assert len(frames) < 100  # not an answer (an ERROR, a pong) per frame
    tcp = server.connect("tom", binary=True)  # the same rule on the line protocol: the relay refuses, flood pays
    tcp.send_raw(encode_frame("file-end 99 " + "0" * 64, b"") * 300)
    tcp.expect_prefix("ERROR excess flood")


def test_refusals_carry_safety_headers_and_no_python_reprs(web) -> None:  # type: ignore[no-untyped-def]
    _, host, port = web("--web-request-timeout", "1")
    refusal(http(host, port, b"BLAH\x00\xff\r\n\r\n"), 400)
    refusal(http(host, port, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"), 400)
    refusal(http(host, port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"), 431)
    refusal(http(host, port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 403)
    refusal(get(host, port, "/", "Content-Length: 0", method="POST"), 405)
    assert refusal(get(host, port, "/ws", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                       "Origin: http://evil.example"), 403) == b"origin http://evil.example is not allowed " \
                                                               b"(chatroom-server --web-origin)\n"
    status, headers, body = get(host, port, "/nope")  # a 404 of the page's files: the page's headers
    assert status == 404 and headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-cache"
    with connect(host, port) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        answer = closed_by_peer(slow, timeout=5)
        assert answer.startswith(b"HTTP/1.1 408 ") and b"referrer-policy: no-referrer\r\n" in answer
        assert b"cache-control: no-store\r\n" in answer


def test_a_websocket_version_other_than_13_gets_426_naming_13(web) -> None:  # type: ignore[no-untyped-def]
    _, host, port = web()
    for version in ("8", "14", "13, 8"):
        status, headers, body = get(host, port, "/ws", "Upgrade: websocket", "Connection: Upgrade",
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", f"Sec-WebSocket-Version: {version}")
        assert (status, headers["sec-websocket-version"], headers["upgrade"]) == (426, "13", "websocket")
        assert body == b"only WebSocket version 13 (RFC 6455) is spoken here\n"


def test_clear_http_on_the_https_port_gets_a_short_http_error_and_nothing_else_in_clear(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web("--tls", "--max-per-address", "2")
    with socket.create_connection((host, port), timeout=10) as clear:
        clear.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = closed_by_peer(clear)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"ERROR" not in answer
    assert answer.endswith(b"\r\n\r\nthis port speaks HTTPS: use https:// in the address\n")
    held = [connect(host, port, tls=True) for _ in range(2)]  # the per-address budget, taken by two HTTPS pages
    with socket.create_connection((host, port), timeout=10) as third:
        third.sendall(b"\x16\x03\x01\x00\x05hello")  # the start of a TLS handshake
        assert closed_by_peer(third) == b""  # no 503 in clear on the HTTPS port: the browser could not read it
    for sock in held:
        sock.close()


def test_a_connection_that_sends_nothing_is_closed_after_the_request_timeout(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web("--web-request-timeout", "1", "--idle-timeout", "60")
    member = WSClient(host, port)
    member.expect("you")
    started = time.monotonic()
    with connect(host, port) as silent:
        assert closed_by_peer(silent, timeout=5) == b""  # closed, not answered: it asked nothing
    assert 0.9 <= time.monotonic() - started < 5
    member.sync()  # a WebSocket member idles on, with no request timer


def test_a_page_load_costs_one_guest_number(web) -> None:  # type: ignore[no-untyped-def]
    _, host, port = web()
    nicks = []
    for _ in range(3):  # a browser loads the page's files over several connections, then opens the WebSocket
        files = [connect(host, port) for _ in range(6)]
        for sock, path in zip(files, ["/", "/app.js", "/style.css", "/img/logo.svg", "/", "/app.js"]):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        client = WSClient(host, port)
        nicks.append(client.next()["nick"])
        for sock in files:
            sock.close()
    first = int(nicks[0].removeprefix("guest"))
    assert nicks == [f"guest{first}", f"guest{first + 1}", f"guest{first + 2}"]
