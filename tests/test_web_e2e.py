"""End to end: the real ``chatroom-server`` serving HTTP and WebSocket on ``--web-port 0`` (the URL read from
what it prints), spoken to by raw sockets, a wsproto WebSocket client, TCP line clients and ``chatroom-client``-
style frame clients. No browser here (tests of the page drive Chromium). Every wait is on received bytes with a
deadline."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
from web_kit import Responses, WSClient, close_all, closed_by_peer, connect, http, web_url

from chatroom.wire.lines import Frame, encode_frame, encode_frame_header


@pytest.fixture(autouse=True)
def _close_websockets():  # type: ignore[no-untyped-def]
    yield
    close_all()


@pytest.fixture
def web(server_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start a server with a web listener: ``web(*args) -> (server, host, port)``; a test page in *static*."""
    static = tmp_path / "static"
    (static / "img").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>t</title><script type=module src=app.js></script>")
    (static / "app.js").write_text("export const x = 1;\n")
    (static / "style.css").write_text("body { color: black }\n")
    (static / "img" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (static / ".secret").write_text("no")

    def start(*args: str):  # type: ignore[no-untyped-def]
        server = server_factory("--web-port", "0", "--web-static", str(static), *args)
        scheme, host, port = web_url(server)
        assert scheme == ("https" if "--tls" in args else "http")
        return server, host, port

    return start


def get(host: str, port: int, path: str, *extra: str, method: str = "GET", tls: bool = False):  # type: ignore[no-untyped-def]
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", *extra, "", ""]
    return http(host, port, "\r\n".join(lines).encode(), tls)


def test_static_files_types_caching_and_safety_headers(web) -> None:  # type: ignore[no-untyped-def]
    _, host, port = web()
    status, headers, body = get(host, port, "/")
    assert status == 200 and body.startswith(b"<!doctype html>")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"].startswith("default-src 'self'; connect-src 'self' "
                                                         f"ws://{host}:{port} wss://{host}:{port};")
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-cache"
    for path, kind in [("/app.js?v=2", "text/javascript; charset=utf-8"), ("/style.css", "text/css; charset=utf-8"),
                       ("/img/logo.svg", "image/svg+xml")]:
        status, headers, _ = get(host, port, path)
        assert (status, headers["content-type"]) == (200, kind)
    status, headers, body = get(host, port, "/app.js")
    etag = headers["etag"]
    status, headers, body = get(host, port, "/app.js", f"If-None-Match: {etag}")
    assert (status, body) == (304, b"")
    status, headers, body = get(host, port, "/app.js", method="HEAD")
    assert status == 200 and headers["content-length"] == str(len("export const x = 1;\n")) and body == b""
    for path in ("/.secret", "/../pyproject.toml", "/%2e%2e/x", "/nope"):
        assert get(host, port, path)[0] == 404
    status, headers, _ = get(host, port, "/", "Content-Length: 0", method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_keep_alive_serves_several_requests_on_one_connection(web) -> None:  # type: ignore[no-untyped-def]
    _, host, port = web()
    with connect(host, port) as sock:
        request = f"GET /style.css HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        sock.sendall(request * 3)  # pipelined
        responses = Responses(sock)
        for _ in range(3):
            assert responses.next()[0] == 200


def test_http_bounds_head_size_header_count_body_and_time(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web("--web-request-timeout", "1")
    status, headers, _ = http(host, port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
    assert status == 431 and headers["connection"] == "close"
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(65))
    assert http(host, port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")[0] == 431
    assert http(host, port, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")[0] == 400
    assert http(host, port, b"BLAH\x00\r\n\r\n")[0] == 400
    with connect(host, port) as slow:  # slowloris: a head that never ends
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        slow.sendall(b"X-A: 1\r\n")
        answer = closed_by_peer(slow, timeout=5)
        assert answer.startswith(b"HTTP/1.1 408 ")
    still = WSClient(host, port)  # the server is fine
    assert still.status == 101
    assert "request timeout" in server.log_text()


def test_web_connections_count_against_the_per_address_limit(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web("--max-per-address", "2")
    tcp = server.connect("tom")
    browser = WSClient(host, port)
    browser.expect("you")
    status, headers, body = get(host, port, "/")  # the third connection from 127.0.0.1
    assert status == 503 and body == b"too many connections from 127.0.0.1 (max 2)\n"
    browser.close()
    tcp.expect_where(lambda line: line.endswith("(connection lost)"), "the browser's leave")
    assert get(host, port, "/")[0] == 200


def test_upgrade_origin_check_and_hello(web) -> None:  # type: ignore[no-untyped-def]
    _, host, port = web("--web-origin", "https://chat.example.org")
    client = WSClient(host, port)
    assert client.status == 101
    hello = client.next()
    assert hello["type"] == "hello" and hello["protocol"] == 1 and hello["nick"].startswith("guest")
    assert "#lobby" in hello["rooms"] and hello["max_line"] == 65536
    assert hello["flood"] == {"rate": 2.0, "burst": 20.0}  # the defaults (--flood-rate, --flood-burst)
    client.expect_line("* Welcome to chatroom")
    assert client.expect("members", room="#lobby")["nicks"] == [hello["nick"]]
    assert client.expect("you")["room"] == "#lobby"
    evil = WSClient(host, port, origin="http://evil.example")
    assert evil.status == 403
    assert WSClient(host, port, origin="https://chat.example.org").status == 101
    assert WSClient(host, port, origin=None).status == 101  # not a browser: no Origin to check
    status, headers, _ = get(host, port, "/ws")
    assert status == 426 and headers["upgrade"] == "websocket"
    status, headers, _ = get(host, port, "/ws", "Upgrade: websocket", "Connection: Upgrade")  # no version
    assert status == 426 and headers["sec-websocket-version"] == "13"
    assert get(host, port, "/ws", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13")[0] == 400


def test_oversized_messages_bad_frames_and_bad_utf8(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web()
    client = WSClient(host, port)
    client.expect("you")
    client.send("x" * 70000)
    assert client.expect("line", kind="error")["text"] == "ERROR line too long (70000 bytes, max 65536)"
    client.send_bytes(b"file-data 1\n" + b"\0" * (4 * 1024 * 1024 + 1))
    assert client.expect("line", kind="error")["text"].startswith("ERROR frame too long")
    client.send_bytes(b"file-data 99\nabc")
    assert client.expect("line", kind="error")["text"] == "ERROR file-data: no transfer 99 of yours is open"
    client.sync()  # still usable
    client.sock.sendall(b"\x81\x82abcd" + bytes([0xFF ^ ord("a"), 0xFE ^ ord("b")]))  # text frame, not UTF-8
    assert client.expect_close() == 1007
    other = WSClient(host, port)
    other.expect("you")
    other.sync()
    assert server.proc.poll() is None


def test_chat_between_websocket_tcp_and_nc_clients_in_two_rooms(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web()
    tcp = server.connect("tom", binary=True)
    nc = server.connect()
    browser = WSClient(host, port)
    browser.send("/nick wendy")
    browser.expect("you", nick="wendy")
    browser.expect_line("OK nick wendy")
    tcp.expect_where(lambda line: line.endswith(" is now known as wendy"), "the rename")
    browser.send("hello from the browser")
    assert tcp.expect_prefix("wendy: ") == "wendy: hello from the browser"
    assert nc.expect_prefix("wendy: ") == "wendy: hello from the browser"
    tcp.send("hello from tcp")
    event = browser.expect("msg", nick="tom")
    assert (event["room"], event["text"], event["history"]) == ("#lobby", "hello from tcp", False)
    assert isinstance(event["id"], int) and event["time"].endswith("Z")
    nc.send("/nick nick")
    assert browser.expect("nick")["old"].startswith("guest")
    browser.send("/join #den")
    assert browser.expect("members", room="#den")["nicks"] == ["wendy"]
    assert browser.expect("you", room="#den")["rooms"] == ["#lobby", "#den"]
    tcp.send("/join #den")
    tcp.expect_prefix("OK join #den")
    joined = browser.expect("join", room="#den")
    assert (joined["nick"], joined["text"]) == ("tom", "tom joined den")
    browser.send("in the den")
    assert tcp.expect_prefix("wendy: ") == "wendy: in the den"
    nc.send("still the lobby")
    event = browser.expect("msg", nick="nick")
    assert event["room"] == "#lobby"  # another room than its current one: the field says so, no "[#lobby]"
    browser.send("/msg tom psst")
    assert tcp.expect_prefix("wendy (private)") == "wendy (private): psst"
    tcp.send("/msg wendy <img src=x onerror=alert(1)>")
    private = browser.expect("private")
    assert (private["nick"], private["to"], private["text"]) == ("tom", "wendy", "<img src=x onerror=alert(1)>")
    browser.send("/part #den bye")
    assert tcp.expect_prefix("* wendy left") == "* wendy left den (bye)"
    browser.send("/quit")
    browser.expect_line("OK")
    assert browser.expect_close() == 1000
    assert nc.expect_prefix("* wendy left") == "* wendy left lobby (quit)"


def test_history_on_join_over_a_websocket(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web()
    tcp = server.connect("tom")
    for i in range(3):
        tcp.send(f"line {i}")
    tcp.sync()
    browser = WSClient(host, port)
    members = browser.expect("members", room="#lobby")
    assert "tom" in members["nicks"]
    replayed = [browser.expect("msg", history=True) for _ in range(3)]
    assert [e["text"] for e in replayed] == ["line 0", "line 1", "line 2"]
    ids = [e["id"] for e in replayed]
    assert ids == sorted(ids) and all(e["nick"] == "tom" for e in replayed)
    browser.send(f"/history #lobby before {ids[-1]} 1")
    assert browser.expect("msg", history=True)["id"] == ids[-2]
    browser.expect_line("OK history #lobby 1")


def _tcp_file(client, tid: int) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    """Read a TCP client's frames for transfer *tid* up to ``file-end``: (begin meta, the bytes)."""
    begin, data = "", bytearray()
    for _ in range(10_000):
        event = client.next_event()
        if isinstance(event, Frame):
            if event.meta.startswith(f"file-begin {tid} "):
                begin = event.meta
            elif event.meta == f"file-data {tid}":
                data += event.payload
            elif event.meta.startswith(f"file-end {tid} "):
                assert event.meta.split()[2] == hashlib.sha256(data).hexdigest()
                return begin, bytes(data)
    raise AssertionError("no file-end")


def tom_and_wendy(web, *commands: str):  # type: ignore[no-untyped-def]
    """A server; tom, a frame-capable TCP client; wendy, a WebSocket client that sent *commands* after /nick."""
    server, host, port = web()
    tcp = server.connect("tom", binary=True)
    browser = WSClient(host, port)
    browser.send("\n".join(["/nick wendy", *commands]))
    browser.expect_line("OK nick wendy")
    return tcp, browser


def test_a_file_from_a_websocket_to_a_tcp_client_and_back(web) -> None:  # type: ignore[no-untyped-def]
    tcp, browser = tom_and_wendy(web)
    payload = bytes(range(256)) * 5000  # 1.28 MB: two chunks
    browser.send(f"/sendfile report.bin {len(payload)}")
    ok = browser.expect_line("OK sendfile ")["text"]
    tid = int(ok.split()[2])
    for start in range(0, len(payload), 1 << 20):
        browser.send_bytes(f"file-data {tid}\n".encode() + payload[start:start + (1 << 20)])
    browser.send_bytes(f"file-end {tid} {hashlib.sha256(payload).hexdigest()}\n".encode())
    begin, got = _tcp_file(tcp, tid)
    assert begin == f"file-begin {tid} {len(payload)} wendy report.bin" and got == payload
    meta, _ = browser.expect_binary()
    assert meta == f"file-done {tid} tom"
    back = hashlib.sha256(b"back" * 300_000).digest() * 10_000  # 320 KB
    tcp.send(f"/sendfile back.bin {len(back)}")
    tid2 = int(tcp.expect_prefix("OK sendfile ").split()[2])
    tcp.send_raw(encode_frame_header(f"file-data {tid2}", len(back)) + back)
    tcp.send_raw(encode_frame(f"file-end {tid2} {hashlib.sha256(back).hexdigest()}", b""))
    received = bytearray()
    meta, _ = browser.expect_binary()
    assert meta == f"file-begin {tid2} {len(back)} tom back.bin"
    for _ in range(1000):
        meta, chunk = browser.expect_binary()
        if meta != f"file-data {tid2}":
            break
        received += chunk
    assert meta == f"file-end {tid2} {hashlib.sha256(back).hexdigest()}"
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(back).hexdigest()


def test_file_offers_reach_a_browser_that_asks(web) -> None:  # type: ignore[no-untyped-def]
    tcp, browser = tom_and_wendy(web, "/files ask")
    browser.expect_line("OK files ask")
    tcp.send("/sendfile a.txt 5")
    meta, _ = browser.expect_binary()
    assert meta.startswith("file-offer ") and meta.endswith(" 5 tom a.txt")
    browser.send(f"/decline {meta.split()[1]}")
    browser.expect_line("OK declined")
    assert tcp.expect_prefix("ERROR sendfile a.txt") == "ERROR sendfile a.txt: nobody accepted the file (declined by wendy)"


def test_flood_control_applies_to_websockets(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web("--flood-rate", "2", "--flood-burst", "5", "--flood-kill", "1")
    tcp = server.connect("tom")
    browser = WSClient(host, port)
    browser.expect("you")
    browser.send("\n".join(f"spam {i}" for i in range(200)))
    assert browser.expect_line("ERROR excess flood")["kind"] == "error"
    assert browser.expect_close() == 1008
    tcp.expect_where(lambda line: line.endswith("(excess flood)"), "the flood leave")
    assert sum(1 for line in tcp.seen if line.startswith("guest")) < 20  # slowed: far fewer than 200 got through


def test_tls_serves_https_and_wss_with_the_same_certificate(web) -> None:  # type: ignore[no-untyped-def]
    server, host, port = web("--tls")
    status, headers, _ = get(host, port, "/", tls=True)
    assert status == 200 and f"wss://{host}:{port}" in headers["content-security-policy"]
    browser = WSClient(host, port, tls=True)
    assert browser.status == 101
    browser.expect("you")
    browser.send("/upper secure")
    browser.expect_line("SECURE")
    with socket.create_connection((host, port), timeout=10) as clear:  # clear text on the TLS web port
        clear.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = closed_by_peer(clear)  # a short HTTP answer the person's browser shows, not line-protocol text
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert answer.endswith(b"\r\n\r\nthis port speaks HTTPS: use https:// in the address\n")


def test_the_web_port_can_be_turned_off(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--web-port", "off")
    client = server.connect("tom")
    client.sync()
    server.stop()
    rest = server.proc.stdout.read()
    assert "chatroom-server web" not in rest
